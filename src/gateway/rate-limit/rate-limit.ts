// Per-user limits on submissions: requests and tasks per fixed window. Counters live in the
// owner's Registry Durable Object (SQLite, the default) or in Redis with TASK_STORE=redis. A
// refused request stores nothing: the check runs before the hub sees the batch.

import { FerryError } from '../../protocol/errors';
import { rateLimits, redisSettings, taskStoreKind, type GatewayEnv, type RateLimits } from '../env';
import { registryOf } from '../registry';
import { LuaScript } from '../task-store/redis-client';
import { redisClient } from '../task-store/redis-client';
import { rateKey } from '../task-store/redis-keys';

/** Counts of one owner's window after a decision. */
export interface WindowCounts {
  admitted: boolean;
  requests: number;
  tasks: number;
}

/** Where an owner's counters live. */
export interface RateCounter {
  admit(owner: string, windowStart: number, limits: RateLimits, tasks: number): Promise<WindowCounts>;
}

/** Whether one more request of `tasks` tasks fits the window. 0 means no limit. */
export function fits(counts: { requests: number; tasks: number }, limits: RateLimits, tasks: number): boolean {
  return (limits.requests === 0 || counts.requests + 1 <= limits.requests) && (limits.tasks === 0 || counts.tasks + tasks <= limits.tasks);
}

export const durableObjectCounter = (env: GatewayEnv): RateCounter => ({
  admit: (owner, windowStart, limits, tasks) => registryOf(env, owner).admitSubmission(windowStart, limits, tasks),
});

const ADMIT = new LuaScript(`
local requests = tonumber(redis.call('HGET', KEYS[1], 'requests') or '0')
local tasks = tonumber(redis.call('HGET', KEYS[1], 'tasks') or '0')
local maxRequests, maxTasks, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if (maxRequests > 0 and requests + 1 > maxRequests) or (maxTasks > 0 and tasks + n > maxTasks) then
  return { 0, requests, tasks }
end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBY', KEYS[1], 'tasks', n)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return { 1, requests + 1, tasks + n }
`);

export const redisCounter = (env: GatewayEnv): RateCounter => ({
  async admit(owner, windowStart, limits, tasks) {
    const reply = (await ADMIT.run(redisClient(redisSettings(env)), [rateKey(owner, windowStart)], [limits.requests, limits.tasks, tasks, Math.ceil(limits.windowS) + 5])) as number[];
    return { admitted: reply[0] === 1, requests: Number(reply[1]), tasks: Number(reply[2]) };
  },
});

export interface Admission {
  window_start: number;
  limits: RateLimits;
  counts: WindowCounts;
}

/**
 * Counts a submission of `tasks` tasks against the owner's window, or throws RATE_LIMITED (429,
 * `details.retry_after_s`: the seconds until the window ends). Null when no limit is configured.
 */
export async function admitSubmission(env: GatewayEnv, owner: string, tasks: number, now = Date.now() / 1000): Promise<Admission | null> {
  const limits = rateLimits(env);
  if (!limits) return null;
  if (limits.tasks > 0 && tasks > limits.tasks) {
    throw new FerryError('TOO_MANY_TASKS', `${tasks} tasks in one request; this gateway accepts at most ${limits.tasks} per ${limits.windowS} s (split the batch)`, { max_tasks: limits.tasks });
  }
  const windowStart = Math.floor(now / limits.windowS) * limits.windowS;
  const counter = taskStoreKind(env) === 'redis' ? redisCounter(env) : durableObjectCounter(env);
  const counts = await counter.admit(owner, windowStart, limits, tasks);
  if (!counts.admitted) {
    const retryAfter = Math.max(1, Math.ceil(windowStart + limits.windowS - now));
    throw new FerryError('RATE_LIMITED', `over ${describe(limits)} per ${limits.windowS} s: retry in ${retryAfter} s`, { retry_after_s: retryAfter, ...limitsOf(limits) });
  }
  return { window_start: windowStart, limits, counts };
}

/** Headers of an admitted submission: the window it was counted in and what is left of it. */
export function admissionHeaders(admission: Admission): Record<string, string> {
  const { limits, counts } = admission;
  const headers: Record<string, string> = { 'x-ratelimit-window': String(admission.window_start), 'x-ratelimit-window-seconds': String(limits.windowS) };
  if (limits.requests > 0) headers['x-ratelimit-remaining-requests'] = String(Math.max(0, limits.requests - counts.requests));
  if (limits.tasks > 0) headers['x-ratelimit-remaining-tasks'] = String(Math.max(0, limits.tasks - counts.tasks));
  return headers;
}

function limitsOf(limits: RateLimits): Record<string, number> {
  return { ...(limits.requests > 0 ? { max_requests: limits.requests } : {}), ...(limits.tasks > 0 ? { max_tasks: limits.tasks } : {}), window_s: limits.windowS };
}

function describe(limits: RateLimits): string {
  return [limits.requests > 0 ? `${limits.requests} requests` : '', limits.tasks > 0 ? `${limits.tasks} tasks` : ''].filter(Boolean).join(' or ');
}
