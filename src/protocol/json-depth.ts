// How deeply JSON may nest. Recursive decoders (zod's schemas for JSON values, JSON.parse,
// JSON.stringify) overflow the stack on a value a few thousand levels deep, and a stack overflow
// unwinds the whole process: every boundary checks the nesting first, without recursion: decoded
// values with a walk that keeps its own stack, JSON text with one scan that does not parse it.

import { taskException, type TaskException } from './errors';

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
  return taskException('FERRY_RESULT_NOT_SERIALIZABLE', `The result cannot be encoded as JSON: it nests arrays or objects deeper than the limit of ${MAX_JSON_DEPTH} levels`);
}

const OPEN_ARRAY = 0x5b; // [
const OPEN_OBJECT = 0x7b; // {
const CLOSE_ARRAY = 0x5d; // ]
const CLOSE_OBJECT = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Whether JSON `text` opens more than `maxDepth` arrays and objects inside one another. Brackets inside
 * strings do not count; malformed text is the parser's to report, so only nesting is judged here.
 */
export function textNestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) depth--;
  }
  return false;
}
