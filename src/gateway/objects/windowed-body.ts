// An object's bytes as a response body read one range (window) at a time, each range piped natively
// into the response as the client takes it.
//
// Why not `(await bucket.get(key)).body`: the embedded gateway's R2 (Miniflare's, in workerd)
// assembles an object uploaded in parts by piping every part into one stream, and that pipe runs
// ahead of a client slower than the disk: a 200 MiB object read by a slow client put the whole 200
// MiB in workerd's memory (test/e2e/objects.test.ts, "a reader that pauses"). Read a window at a
// time, it holds at most the parts one window touches. On Cloudflare's R2 a window costs one more
// read operation and one more wait for a first byte per 16 MiB.

/** Bytes per range read; a larger object (or slice) is read in windows. */
export const READ_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * The body for `length` bytes of `key` from `offset`: one range read when it fits in a window,
 * else windows read in turn, the next only once the client has taken the one before. `keepAlive`
 * holds the request open while windows remain (the route's `waitUntil`). A window that comes back
 * missing (the object was deleted mid-read) errors the stream: the client sees a cut body, never
 * wrong bytes (it also has the Content-Length and the digest).
 */
export async function windowedBody(
  bucket: R2Bucket,
  key: string,
  offset: number,
  length: number,
  keepAlive: (work: Promise<unknown>) => void,
  windowBytes = READ_WINDOW_BYTES,
): Promise<ReadableStream<Uint8Array> | null> {
  if (length <= windowBytes) {
    const whole = await bucket.get(key, { range: { offset, length } });
    return whole?.body ?? null;
  }
  const first = await bucket.get(key, { range: { offset, length: windowBytes } });
  if (!first) return null;
  const { readable, writable } = new FixedLengthStream(length);
  const pump = async () => {
    let body: ReadableStream<Uint8Array> = first.body;
    let at = offset + windowBytes;
    const end = offset + length;
    try {
      for (;;) {
        await body.pipeTo(writable, { preventClose: true });
        if (at >= end) break;
        const size = Math.min(windowBytes, end - at);
        const next = await bucket.get(key, { range: { offset: at, length: size } });
        if (!next) throw new Error(`the object was deleted while it was being read (at byte ${at - offset} of ${length})`);
        body = next.body;
        at += size;
      }
      await writable.close();
    } catch (err) {
      // The client went away (the pipe's own abort already ended the stream), or a window failed.
      await writable.abort(err).catch(() => {});
    }
  };
  keepAlive(pump());
  return readable;
}
