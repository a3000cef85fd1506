// Function code for submits: this isolate's memory first, then KV (`fn:<uuid>`, a cache of code that
// never changes under its id), then the owner's Registry. Only existence can change (a delete):
// memory forgets a function after MEMO_TTL_MS or at once when this isolate deletes it, which is no
// staler than KV itself (edge reads may lag a delete by up to a minute).

import type { Runtime } from '../protocol/api';
import { FerryError } from '../protocol/errors';
import type { FunctionSpec } from '../protocol/wire';
import type { GatewayEnv } from './env';
import { registryOf } from './registry';
import type { ForeignFunctions } from './endpoint-hub/sharing-guard';
import { isolateAccess } from './sharing/access-cache';

interface CachedFunction {
  owner: string;
  runtime: Runtime;
  code: string;
  name: string;
}

const MEMO_TTL_MS = 5_000;
const MEMO_MAX_ENTRIES = 10_000;
const memo = new Map<string, { value: CachedFunction; until: number }>();

function remember(functionUuid: string, value: CachedFunction): void {
  if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
  memo.set(functionUuid, { value, until: Date.now() + MEMO_TTL_MS });
}

function recall(functionUuid: string): CachedFunction | null {
  const hit = memo.get(functionUuid);
  if (!hit) return null;
  if (hit.until < Date.now()) {
    memo.delete(functionUuid);
    return null;
  }
  return hit.value;
}

function cacheKey(functionUuid: string): string {
  return `fn:${functionUuid}`;
}

export async function cacheFunction(env: GatewayEnv, functionUuid: string, value: CachedFunction): Promise<void> {
  await env.CACHE.put(cacheKey(functionUuid), JSON.stringify(value));
}

export async function uncacheFunction(env: GatewayEnv, functionUuid: string): Promise<void> {
  memo.delete(functionUuid);
  await env.CACHE.delete(cacheKey(functionUuid));
}

/** A function's owner, code and name: this isolate's memory, then KV (null: not cached). */
async function cachedFunction(env: GatewayEnv, functionUuid: string): Promise<CachedFunction | null> {
  let cached = recall(functionUuid);
  if (!cached) {
    cached = await env.CACHE.get<CachedFunction>(cacheKey(functionUuid), 'json');
    // Remembered from the moment it was read, never extended by hits: a delete elsewhere shows within the TTL.
    if (cached) remember(functionUuid, cached);
  }
  return cached;
}

/**
 * How `user` may use another owner's function: `shared` (with them, a group of theirs, or public:
 * anywhere they may run), `grant` (listed in, or covered by `"*"` of, a grant of one of the owner's
 * endpoints: there only; the hub checks), or null (it stays 404 to them).
 */
export async function foreignUse(env: GatewayEnv, functionOwner: string, user: string, functionUuid: string): Promise<'shared' | 'grant' | null> {
  const access = await isolateAccess.accessOf(env, functionOwner, user);
  if (access.functions.includes(functionUuid)) return 'shared';
  for (const grant of Object.values(access.endpoints)) if (grant === '*' || grant.includes(functionUuid)) return 'grant';
  return null;
}

/** The owner of a function `user` may read: their own, or one shared with them (null: 404 to them). */
export async function readableFunctionOwner(env: GatewayEnv, user: string, functionUuid: string): Promise<string | null> {
  const cached = await cachedFunction(env, functionUuid);
  if (!cached || cached.owner === user) return user;
  return (await foreignUse(env, cached.owner, user, functionUuid)) === 'shared' ? cached.owner : null;
}

async function resolveOne(env: GatewayEnv, owner: string, functionUuid: string, foreign: ForeignFunctions): Promise<FunctionSpec> {
  const cached = await cachedFunction(env, functionUuid);
  if (cached) {
    if (cached.owner !== owner) {
      // Another owner's function: usable when shared with the caller (cached like keys; see sharing/access-cache.ts).
      const via = await foreignUse(env, cached.owner, owner, functionUuid);
      if (via === null) throw new FerryError('NOT_FOUND', `function ${functionUuid} not found`, { function_uuid: functionUuid });
      foreign[functionUuid] = { owner: cached.owner, via };
    }
    return specOf(functionUuid, cached);
  }
  const doc = await registryOf(env, owner).getFunction(functionUuid);
  if (!doc) throw new FerryError('NOT_FOUND', `function ${functionUuid} not found`, { function_uuid: functionUuid });
  const value: CachedFunction = { owner, runtime: doc.meta.runtime, code: doc.function_code, name: doc.function_name };
  await cacheFunction(env, functionUuid, value);
  remember(functionUuid, value);
  return specOf(functionUuid, value);
}

/** The spec an endpoint gets: the code, and for Python the entry point (its name is part of its id). */
function specOf(functionUuid: string, fn: CachedFunction): FunctionSpec {
  const spec: FunctionSpec = { function_uuid: functionUuid, runtime: fn.runtime, code: fn.code };
  if (fn.runtime === 'python') spec.name = fn.name;
  return spec;
}

/**
 * The code of each function, or NOT_FOUND for the first the caller may not use (not theirs, not
 * shared with them). `foreign`: those that are another owner's (undefined when all are the caller's).
 */
export async function resolveFunctions(env: GatewayEnv, owner: string, functionUuids: readonly string[]): Promise<{ functions: FunctionSpec[]; foreign: ForeignFunctions | undefined }> {
  const foreign: ForeignFunctions = {};
  const functions = await Promise.all(functionUuids.map((id) => resolveOne(env, owner, id, foreign)));
  for (const _ in foreign) return { functions, foreign };
  return { functions, foreign: undefined };
}
