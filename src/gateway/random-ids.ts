// Random parts of ids: the base-36 suffix of task and task group ids (src/protocol/ids.ts).
// Task ids are time-ordered (see taskSuffixes).

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const SUFFIX_LENGTH = 20;
/** 7 * 36: bytes at or above it are skipped so that every character is equally likely. */
const UNBIASED_BELOW = 252;

/**
 * Task id suffixes in the order of submission: 9 base-36 characters of the time in ms, 4 of the
 * task's place in its batch, then 11 random ones (~57 bits); 24 in all. Ids that grow with time
 * keep every index keyed by task id (the hub's tasks, outbox and lineage tables) appending to its
 * last pages instead of rewriting pages all over the b-tree: 20,000 random ids dirty every leaf.
 */
export function taskSuffixes(count: number, nowMs = Date.now()): string[] {
  const time = Math.floor(nowMs).toString(36).padStart(9, '0');
  const random = randomSuffixes(count, 11);
  for (let i = 0; i < count; i++) random[i] = time + i.toString(36).padStart(4, '0') + random[i];
  return random;
}

/** `count` suffixes of `length` base-36 characters (20: ~103 bits each), from one CSPRNG call per batch. */
export function randomSuffixes(count: number, length = SUFFIX_LENGTH): string[] {
  // getRandomValues fills at most 65,536 bytes per call.
  const bytes = new Uint8Array(Math.min(65_536, Math.ceil(count * length * 1.1) + 16));
  crypto.getRandomValues(bytes);
  const out: string[] = new Array(count);
  let at = 0;
  for (let n = 0; n < count; n++) {
    let suffix = '';
    while (suffix.length < length) {
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
