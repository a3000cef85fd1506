// Random parts of ids: the base-36 suffix of task and task group ids (src/protocol/ids.ts).

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const SUFFIX_LENGTH = 20;
/** 7 * 36: bytes at or above it are skipped so that every character is equally likely. */
const UNBIASED_BELOW = 252;

/** `count` suffixes of 20 base-36 characters (~103 bits each), from one CSPRNG call per batch. */
export function randomSuffixes(count: number): string[] {
  // getRandomValues fills at most 65,536 bytes per call.
  const bytes = new Uint8Array(Math.min(65_536, Math.ceil(count * SUFFIX_LENGTH * 1.1) + 16));
  crypto.getRandomValues(bytes);
  const out: string[] = new Array(count);
  let at = 0;
  for (let n = 0; n < count; n++) {
    let suffix = '';
    while (suffix.length < SUFFIX_LENGTH) {
      if (at >= bytes.length) {
        crypto.getRandomValues(bytes);
        at = 0;
      }
      const b = bytes[at++]!;
      if (b < UNBIASED_BELOW) suffix += ALPHABET[b % 36];
    }
    out[n] = suffix;
  }
  return out;
}

export function randomSuffix(): string {
  return randomSuffixes(1)[0]!;
}
