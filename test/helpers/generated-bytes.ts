// Deterministic pseudo-random bytes made on the fly (xorshift32), so tests and the benchmark can move
// hundreds of MiB without holding them: a stream that hashes what it yields, and can keep one range.

import { createHash } from 'node:crypto';

const PIECE = 1024 * 1024;

export interface GeneratedBytes {
  stream: ReadableStream<Uint8Array>;
  /** The sha256 of everything read so far (call once the stream is done). */
  digest(): string;
  /** The bytes of the range asked for at creation, once the stream has passed it. */
  kept(): Uint8Array;
}

export function generated(total: number, seed: number, keep?: { start: number; end: number }): GeneratedBytes {
  const hash = createHash('sha256');
  const keptBytes = new Uint8Array(keep ? keep.end - keep.start : 0);
  let made = 0;
  let x = seed >>> 0 || 1;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (made >= total) return controller.close();
      const n = Math.min(PIECE, total - made);
      const words = new Uint32Array(Math.ceil(n / 4));
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x >>> 0;
      }
      const bytes = new Uint8Array(words.buffer, 0, n);
      hash.update(bytes);
      if (keep && made < keep.end && made + n > keep.start) {
        const from = Math.max(keep.start, made);
        const to = Math.min(keep.end, made + n);
        keptBytes.set(bytes.subarray(from - made, to - made), from - keep.start);
      }
      made += n;
      controller.enqueue(bytes);
    },
  });
  return { stream, digest: () => hash.digest('hex'), kept: () => keptBytes };
}
