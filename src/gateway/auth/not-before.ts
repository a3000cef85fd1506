// A user's token not-before (POST /v3/users/me/revoke): tokens whose `iat` is before it are refused.
// The source of truth is the owner's Registry; requests read it from this isolate's memory, asking
// the Registry again at most every NOT_BEFORE_TTL_MS per user, so the hot path pays no round trip.
// The isolate that serves a revoke knows at once (under `npm start` and in the tests there is one
// isolate); another isolate of a deployed gateway learns within NOT_BEFORE_TTL_MS.

import type { GatewayEnv } from '../env';
import { registryOf } from '../registry';

export const NOT_BEFORE_TTL_MS = 5_000;
const MEMO_MAX_ENTRIES = 10_000;
const memo = new Map<string, { notBeforeMs: number; until: number }>();

export function rememberNotBefore(owner: string, notBeforeMs: number): void {
  if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
  memo.set(owner, { notBeforeMs, until: Date.now() + NOT_BEFORE_TTL_MS });
}

/** The owner's not-before in ms (0: never revoked). */
export async function notBeforeMs(env: GatewayEnv, owner: string): Promise<number> {
  const hit = memo.get(owner);
  if (hit && hit.until > Date.now()) return hit.notBeforeMs;
  const value = await registryOf(env, owner).notBeforeMs();
  rememberNotBefore(owner, value);
  return value;
}

/** The not-before a revoke at `nowMs` sets: the next whole second, since `iat` counts whole seconds (a token of this second is refused too). */
export function notBeforeAfter(nowMs: number): number {
  return (Math.floor(nowMs / 1000) + 1) * 1000;
}
