// How deeply a decoded JSON value may nest. Recursive decoders (zod's schemas for JSON values,
// JSON.stringify) overflow the stack on a value a few thousand levels deep, and a stack overflow
// unwinds the whole process: every boundary checks the nesting first, with this walk, which keeps
// its own stack and so cannot overflow.

import type { TaskException } from './errors';

/** The deepest a task's arguments or result may nest (a scalar is 0, `[]` is 1); a few times below where zod overflows. */
export const MAX_JSON_DEPTH = 512;

/**
 * Levels a wire message may add around the values it carries (a dispatch: message → tasks → task →
 * payload → args → value); a message is checked against MAX_JSON_DEPTH plus this.
 */
export const MESSAGE_ENVELOPE_DEPTH = 8;

/** Whether arrays and objects in `value` nest more than `limit` levels deep. Stops at the first level past it. */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: unknown[] = [value];
  const depths: number[] = [0];
  while (pending.length > 0) {
    const v = pending.pop();
    const depth = depths.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child === null || typeof child !== 'object') continue;
      pending.push(child);
      depths.push(depth + 1);
    }
  }
  return false;
}

/** The failure of a task whose result nests deeper than MAX_JSON_DEPTH. */
export function resultTooDeepException(): TaskException {
  return {
    code: 'FERRY_RESULT_NOT_SERIALIZABLE',
    name: 'ResultNotSerializable',
    message: `The result cannot be encoded as JSON: it nests arrays or objects deeper than the limit of ${MAX_JSON_DEPTH} levels`,
  };
}
