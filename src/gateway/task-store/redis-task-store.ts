// The TaskStore adapter on Redis through @upstash/redis (REST). Each task is one hash with a TTL
// (refreshed when it ends); every write is one Lua script per chunk, so a state change is checked
// and made inside Redis (no read-modify-write race between two results, or a cancel and a result);
// a read of 1,000 ids is one round trip. The hub's outbox stays in its own SQLite: this adapter
// runs the hub's alongside writes after its own write succeeded (see AlongsideWrites in port.ts).

import type { Redis } from '@upstash/redis/cloudflare';
import { endpointOfId } from '../../protocol/ids';
import { canTransition, isFinal, TASK_STATES, type TaskState, type TransitionEvent, type Transitions } from '../../protocol/task-state';
import { LuaScript, type RedisReply } from './redis-client';
import { groupKey, taskKey } from './redis-keys';
import type { AlongsideWrites, FinishAlongside, FinishReport, NewTaskBatch, TaskOutcome, TaskRecord, TaskStateRow, TaskStore } from './port';

/** Tasks per script call: bounds one request body (Upstash caps them) and Redis's time in one script. */
const WRITE_CHUNK = 1000;
const READ_CHUNK = 2000;

/** Optional values travel as '' (null) or '=' + value, so an empty string stays an empty string. */
function opt(value: string | null | undefined): string {
  return value === null || value === undefined ? '' : `=${value}`;
}

const CREATE = new LuaScript(`
local ttl = tonumber(ARGV[1])
local created = ARGV[2]
local optional = { 'workflow_id', 'campaign_id', 'rs', 'owner' }
local entries = {}
for i = 2, #KEYS do
  local j = 9 + (i - 2) * 2
  local key = KEYS[i]
  -- A retried request finds its tasks already there: nothing is written twice.
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'state', 'waiting-for-ep', 'group', ARGV[3], 'fn', ARGV[j + 1], 'req', ARGV[4], 'created', created, 'attempts', '0', 't:waiting-for-ep', created)
    for f = 1, 4 do
      local v = ARGV[4 + f]
      if v ~= '' then redis.call('HSET', key, optional[f], string.sub(v, 2)) end
    end
    redis.call('EXPIRE', key, ttl)
    entries[#entries + 1] = ARGV[j] .. ' ' .. created
  end
end
for s = 1, #entries, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(entries, s, math.min(s + 999, #entries)))
end
if #entries > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return #entries
`);

const STATES = new LuaScript(`
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], 'state', 't:waiting-for-ep', 't:waiting-for-nodes', 't:running', 't:success', 't:failed', 't:cancelled')
end
return out
`);

const RECORDS = new LuaScript(`
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
`);

const TRANSITION = new LuaScript(`
local applied = 0
for i = 1, #KEYS do
  local b = (i - 1) * 3
  if redis.call('HGET', KEYS[i], 'state') == ARGV[b + 1] then
    redis.call('HSET', KEYS[i], 'state', ARGV[b + 2], 't:' .. ARGV[b + 2], ARGV[b + 3])
    applied = applied + 1
  end
end
return applied
`);

// ARGV: ttl, n, then per outcome: state, result, result_ref, exception, stdout, completion_t,
// execution, counts_attempt, reported_attempt, transitions ("state at state at …").
const FINISH = new LuaScript(`
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local final = { success = true, failed = true, cancelled = true }
local fields = { 'result', 'result_ref', 'exception', 'stdout', 'completion_t', 'execution' }
local out = {}
for i = 1, n do
  local key = KEYS[i]
  local b = 2 + (i - 1) * 10
  local state = redis.call('HGET', key, 'state')
  local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
  local counts = tonumber(ARGV[b + 8])
  local reported = tonumber(ARGV[b + 9])
  if state and not final[state] then
    redis.call('HSET', key, 'state', ARGV[b + 1], 'attempts', math.max(attempts + counts, reported))
    for f = 1, 6 do
      local v = ARGV[b + 1 + f]
      if v == '' then redis.call('HDEL', key, fields[f]) else redis.call('HSET', key, fields[f], string.sub(v, 2)) end
    end
    for name, at in string.gmatch(ARGV[b + 10], '(%S+) (%S+)') do redis.call('HSET', key, 't:' .. name, at) end
    redis.call('EXPIRE', key, ttl)
    out[i] = 1
  else
    if state and counts == 1 then redis.call('HSET', key, 'attempts', math.max(attempts + 1, reported)) end
    out[i] = 0
  end
end
for i = n + 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBY', KEYS[i], 'attempts', 1) end
end
return out
`);

const GROUP = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('LRANGE', KEYS[1], 0, -1)
`);

export interface RedisTaskStoreOptions {
  redis: Redis;
  /** Seconds a task lives after it is created, and again after it ends. */
  ttlSeconds: number;
  /** Only ids of this endpoint are read or written: a hub's store sees its own tasks only. */
  endpointId?: string;
  /** Runs the hub's alongside writes in one local transaction (`ctx.storage.transactionSync`). */
  local?: (writes: () => void) => void;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function transitionsOf(values: ReadonlyArray<RedisReply>): Transitions {
  const transitions: Transitions = {};
  TASK_STATES.forEach((state, i) => {
    const at = values[i];
    if (typeof at === 'string') transitions[state] = Number(at);
  });
  return transitions;
}

function numberOrNull(value: string | undefined): number | null {
  return value === undefined ? null : Number(value);
}

/** A task record from a hash's HGETALL (a flat field/value list); null when the hash is gone. */
export function recordFromHash(taskId: string, flat: RedisReply): (TaskRecord & { owner: string | null }) | null {
  if (!Array.isArray(flat) || flat.length === 0) return null;
  const h = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) h.set(String(flat[i]), String(flat[i + 1]));
  const state = h.get('state');
  if (state === undefined) return null;
  const transitions: Transitions = {};
  for (const s of TASK_STATES) {
    const at = h.get(`t:${s}`);
    if (at !== undefined) transitions[s] = Number(at);
  }
  return {
    task_id: taskId,
    task_group_id: h.get('group') ?? '',
    function_uuid: h.get('fn') ?? '',
    state: state as TaskState,
    transitions_json: JSON.stringify(transitions),
    attempts: Number(h.get('attempts') ?? 0),
    created_at: Number(h.get('created') ?? 0),
    result_json: h.get('result') ?? null,
    result_ref: h.get('result_ref') ?? null,
    exception_json: h.get('exception') ?? null,
    stdout: h.get('stdout') ?? null,
    completion_t: numberOrNull(h.get('completion_t')),
    execution_json: h.get('execution') ?? null,
    workflow_id: h.get('workflow_id') ?? null,
    campaign_id: h.get('campaign_id') ?? null,
    resource_specification_json: h.get('rs') ?? null,
    owner: h.get('owner') ?? null,
  };
}

export class RedisTaskStore implements TaskStore {
  private readonly redis: Redis;
  private readonly ttl: number;
  private readonly endpointId: string | undefined;
  private readonly local: (writes: () => void) => void;

  constructor(options: RedisTaskStoreOptions) {
    this.redis = options.redis;
    this.ttl = Math.max(1, Math.ceil(options.ttlSeconds));
    this.endpointId = options.endpointId;
    this.local = options.local ?? ((writes) => writes());
  }

  /** Ids this store may touch: well-formed, and of its endpoint when it has one. */
  private mine(id: string): boolean {
    const endpoint = endpointOfId(id);
    return endpoint !== null && (this.endpointId === undefined || endpoint === this.endpointId);
  }

  async createTasks(batch: NewTaskBatch, alongside?: AlongsideWrites): Promise<void> {
    if (!this.mine(batch.task_group_id) || batch.tasks.some((t) => !this.mine(t.task_id))) throw new Error('RedisTaskStore: a task or group id of another endpoint');
    const head = [this.ttl, String(batch.created_at), batch.task_group_id, batch.request_id, opt(batch.workflow_id), opt(batch.campaign_id), opt(batch.resource_specification_json), opt(batch.owner)];
    for (const chunk of chunks(batch.tasks, WRITE_CHUNK)) {
      await CREATE.run(
        this.redis,
        [groupKey(batch.task_group_id), ...chunk.map((t) => taskKey(t.task_id))],
        [...head, ...chunk.flatMap((t) => [t.task_id, t.function_uuid])],
      );
    }
    if (alongside) this.local(alongside);
  }

  async readStates(taskIds: readonly string[]): Promise<Map<string, TaskStateRow>> {
    const states = new Map<string, TaskStateRow>();
    const ids = [...new Set(taskIds)].filter((id) => this.mine(id));
    const replies = await Promise.all(chunks(ids, READ_CHUNK).map((chunk) => STATES.run(this.redis, chunk.map(taskKey), [])));
    let i = 0;
    for (const reply of replies) {
      for (const row of reply as RedisReply[][]) {
        const taskId = ids[i++]!;
        const state = row[0];
        if (typeof state !== 'string') continue;
        states.set(taskId, { task_id: taskId, state: state as TaskState, transitions: transitionsOf(row.slice(1)) });
      }
    }
    return states;
  }

  async readTasks(taskIds: readonly string[]): Promise<TaskRecord[]> {
    return (await this.readRecords(taskIds)).map(({ owner: _owner, ...record }) => record);
  }

  /** Records with the owner who submitted them: lets a route check ownership without the hub. */
  async readRecords(taskIds: readonly string[]): Promise<Array<TaskRecord & { owner: string | null }>> {
    const ids = [...new Set(taskIds)].filter((id) => this.mine(id));
    const replies = await Promise.all(chunks(ids, READ_CHUNK).map((chunk) => RECORDS.run(this.redis, chunk.map(taskKey), [])));
    const records: Array<TaskRecord & { owner: string | null }> = [];
    let i = 0;
    for (const reply of replies) {
      for (const flat of reply as RedisReply[]) {
        const record = recordFromHash(ids[i++]!, flat);
        if (record) records.push(record);
      }
    }
    return records;
  }

  async saveTransitions(moves: readonly TransitionEvent[], alongside?: AlongsideWrites): Promise<void> {
    const legal = moves.filter((m) => canTransition(m.from, m.to) && this.mine(m.task_id));
    for (const chunk of chunks(legal, WRITE_CHUNK)) {
      await TRANSITION.run(this.redis, chunk.map((m) => taskKey(m.task_id)), chunk.flatMap((m) => [m.from, m.to, String(m.at)]));
    }
    if (alongside) this.local(alongside);
  }

  async finishTasks(outcomes: readonly TaskOutcome[], extraAttempts: readonly string[], alongside?: FinishAlongside): Promise<FinishReport> {
    const report: FinishReport = { finished: [], refused: [] };
    const valid = outcomes.filter((o) => {
      if (isFinal(o.state) && this.mine(o.task_id)) return true;
      report.refused.push(o.task_id);
      return false;
    });
    const extras = extraAttempts.filter((id) => this.mine(id));
    const outcomeChunks = chunks(valid, WRITE_CHUNK);
    if (outcomeChunks.length === 0 && extras.length > 0) outcomeChunks.push([]);
    for (let c = 0; c < outcomeChunks.length; c++) {
      const chunk = outcomeChunks[c]!;
      const extraKeys = c === outcomeChunks.length - 1 ? extras.map(taskKey) : [];
      const args: Array<string | number> = [this.ttl, chunk.length];
      for (const o of chunk) {
        const transitions = Object.entries(o.transitions).map(([state, at]) => `${state} ${at}`).join(' ');
        args.push(o.state, opt(o.result_json), opt(o.result_ref), opt(o.exception_json), opt(o.stdout), opt(o.completion_t === null ? null : String(o.completion_t)), opt(o.execution_json), o.counts_attempt ? 1 : 0, o.reported_attempt, transitions);
      }
      const stored = (await FINISH.run(this.redis, [...chunk.map((o) => taskKey(o.task_id)), ...extraKeys], args)) as number[];
      chunk.forEach((o, i) => (stored[i] === 1 ? report.finished : report.refused).push(o.task_id));
    }
    if (alongside) this.local(() => alongside(report.finished));
    return report;
  }

  async groupExists(taskGroupId: string): Promise<boolean> {
    if (!this.mine(taskGroupId)) return false;
    return (await this.redis.exists(groupKey(taskGroupId))) === 1;
  }

  async groupTasks(taskGroupId: string): Promise<Array<{ task_id: string; created_at: number }> | null> {
    if (!this.mine(taskGroupId)) return null;
    const entries = await GROUP.run(this.redis, [groupKey(taskGroupId)], []);
    if (!Array.isArray(entries)) return null;
    return entries.map((entry) => {
      const [task_id, created_at] = String(entry).split(' ');
      return { task_id: task_id!, created_at: Number(created_at) };
    });
  }
}
