// Length-prefixed frames over a stream socket: the framing between the interchange and managers.
// A frame is an 8-byte prefix (the header's byte length, then the body's, both uint32 big-endian),
// a JSON header (UTF-8), and a body of raw bytes (a result part, the bytes of a read; empty for
// every other message). Bytes travel as bytes: no base64, no escaping, and the declared lengths
// come before anything else, so a reader refuses an oversized frame before buffering its body.

import type { Socket } from 'node:net';

/** Bytes of a frame's prefix: header length, body length. */
export const FRAME_PREFIX_BYTES = 8;

export interface ReadOptions {
  /**
   * The largest frame accepted (prefix excluded), in bytes. Asked at each frame's prefix, so a
   * reader may raise it once a peer has proved who it is. Default: no cap.
   */
  maxFrameBytes?: () => number;
  /** Why the reader closed the socket (a frame over the cap, a header that is not JSON); called once. */
  onRefused?: (reason: string) => void;
}

/**
 * Calls `onFrame` with each frame's parsed header and its body. The body is a view into the
 * reader's buffers, valid during the call only (a caller that keeps it copies it). A frame whose
 * declared length is over the cap, or whose header is not JSON, closes the socket: a peer declaring
 * 400 MiB is refused at its prefix, and an unended frame is never held beyond the cap.
 */
export function readFrames(socket: Socket, onFrame: (header: unknown, body: Buffer) => void, opts: ReadOptions = {}): void {
  // Chunks not yet consumed; joined only once a whole frame is in, so a frame arriving in many
  // chunks is copied once.
  let chunks: Buffer[] = [];
  let buffered = 0;
  let headerBytes = -1; // -1: the prefix of the next frame is not read yet
  let bodyBytes = 0;
  let refused = false;
  const refuse = (reason: string) => {
    refused = true;
    chunks = [];
    buffered = 0;
    socket.destroy();
    opts.onRefused?.(reason);
  };
  /** The first `n` bytes buffered (n ≤ buffered), removed from the buffers. */
  const take = (n: number): Buffer => {
    let out: Buffer;
    const first = chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) chunks.shift();
      else chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(chunks, buffered);
      out = joined.subarray(0, n);
      chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    buffered -= n;
    return out;
  };
  socket.on('data', (chunk: Buffer) => {
    if (refused) return;
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (headerBytes < 0) {
        if (buffered < FRAME_PREFIX_BYTES) return;
        const prefix = take(FRAME_PREFIX_BYTES);
        headerBytes = prefix.readUInt32BE(0);
        bodyBytes = prefix.readUInt32BE(4);
        const cap = opts.maxFrameBytes?.();
        if (cap !== undefined && headerBytes + bodyBytes > cap) return refuse(`a frame longer than ${cap} bytes`);
      }
      if (buffered < headerBytes + bodyBytes) return;
      const frame = take(headerBytes + bodyBytes);
      const headerText = frame.toString('utf8', 0, headerBytes);
      const body = frame.subarray(headerBytes);
      headerBytes = -1;
      let header: unknown;
      try {
        header = JSON.parse(headerText);
      } catch {
        return refuse('a frame whose header is not JSON');
      }
      onFrame(header, body);
      if (socket.destroyed || refused) return;
    }
  });
}

/** One frame's bytes: the prefix and header in one buffer, the body as given (not copied). */
export function encodeFrame(header: unknown, body?: Uint8Array): { head: Buffer; body: Uint8Array | undefined; bytes: number } {
  const json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json);
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + jsonBytes);
  head.writeUInt32BE(jsonBytes, 0);
  head.writeUInt32BE(body?.byteLength ?? 0, 4);
  head.write(json, FRAME_PREFIX_BYTES);
  return { head, body: body && body.byteLength > 0 ? body : undefined, bytes: jsonBytes + (body?.byteLength ?? 0) };
}

/** Writes one frame (header, optional body); `onWritten` runs once it has been handed to the OS (or at once on a closed socket). */
export function sendFrame(socket: Socket, header: unknown, body?: Uint8Array, onWritten?: () => void): void {
  writeFrame(socket, encodeFrame(header, body), onWritten);
}

/** Writes a frame already encoded; for a sender that measured it first. */
export function writeFrame(socket: Socket, frame: ReturnType<typeof encodeFrame>, onWritten?: () => void): void {
  if (socket.destroyed) return onWritten?.();
  const done = onWritten && (() => onWritten());
  if (!frame.body) return void socket.write(frame.head, done);
  // Corked: the prefix, header and body leave in one write to the OS.
  socket.cork();
  socket.write(frame.head);
  socket.write(frame.body, done);
  socket.uncork();
}
