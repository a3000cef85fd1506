// Function code for submits: this isolate's memory first, then KV (`fn:<uuid>`, a cache of code that
// never changes under its id), then the owner's Registry. Only existence can change (a delete):
// memory forgets a function after MEMO_TTL_MS or at once when this isolate deletes it, which is no
// staler than KV itself (edge reads may lag a delete by up to a minute).

import type { Runtime } from '../protocol/api';
import { FerryError } from '../protocol/errors';
import type { FunctionSpec } from '../protocol/wire';
import type { GatewayEnv } from './env';
import { registryOf } from './registry';

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

async function resolveOne(env: GatewayEnv, owner: string, functionUuid: string): Promise<FunctionSpec> {
  let cached = recall(functionUuid);
  if (!cached) {
    cached = await env.CACHE.get<CachedFunction>(cacheKey(functionUuid), 'json');
    // Remembered from the moment it was read, never extended by hits: a delete elsewhere shows within the TTL.
    if (cached) remember(functionUuid, cached);
  }
  if (cached) {
    if (cached.owner !== owner) throw new FerryError('NOT_FOUND', `function ${functionUuid} not found`, { function_uuid: functionUuid });
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

/** The code of each function, or NOT_FOUND for the first that is not the owner's. */
export async function resolveFunctions(env: GatewayEnv, owner: string, functionUuids: readonly string[]): Promise<FunctionSpec[]> {
  return Promise.all(functionUuids.map((id) => resolveOne(env, owner, id)));
}
