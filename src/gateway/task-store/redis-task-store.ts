// The TaskStore adapter on Redis through @upstash/redis (REST). Each task is one hash with a TTL
// (refreshed when it ends); every write is one Lua script per chunk, so a state change is checked
// and made inside Redis (no read-modify-write race between two results, or a cancel and a result);
// a read of 1,000 ids is one round trip. The hub's outbox stays in its own SQLite: this adapter
// runs the hub's alongside writes after its own write succeeded (see AlongsideWrites in port.ts).

import type { Redis } from '@upstash/redis/cloudflare';
import { endpointOfId } from '../../protocol/ids';
import { canTransition, isFinal, TASK_STATES, type TaskState, type TransitionEvent, type Transitions } from '../../protocol/task-state';
import { LuaScript, type RedisReply } from './redis-client';
import { groupKey, taskCounterKey, taskIndexKey, taskKey } from './redis-keys';
import type { AlongsideWrites, FinishAlongside, FinishReport, NewTaskBatch, TaskListFilter, TaskListPage, TaskListRow, TaskOutcome, TaskRecord, TaskStateRow, TaskStore } from './port';

/** Tasks per script call: bounds one request body (Upstash caps them) and Redis's time in one script. */
const WRITE_CHUNK = 1000;
const READ_CHUNK = 2000;
/** Newest tasks an endpoint's index keeps for listing (older ones stay readable by id). */
const TASK_INDEX_CAP = 200_000;

/** Optional values travel as '' (null) or '=' + value, so an empty string stays an empty string. */
function opt(value: string | null | undefined): string {
  return value === null || value === undefined ? '' : `=${value}`;
}

// KEYS: the group's list, the endpoint's task index and its counter, then the tasks' hashes.
const CREATE = new LuaScript(`
local ttl = tonumber(ARGV[1])
local created = ARGV[2]
local optional = { 'workflow_id', 'campaign_id', 'rs', 'owner' }
local entries = {}
local added = {}
for i = 4, #KEYS do
  local j = 9 + (i - 4) * 2
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
    added[#added + 1] = ARGV[j]
  end
end
if #added > 0 then
  -- The endpoint's tasks in submission order (a score per task from one counter), for listing.
  local last = redis.call('INCRBY', KEYS[3], #added)
  local first = last - #added
  for s = 1, #added, 500 do
    local args = {}
    for k = s, math.min(s + 499, #added) do
      args[#args + 1] = first + k
      args[#args + 1] = added[k]
    end
    redis.call('ZADD', KEYS[2], unpack(args))
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[#ARGV]) + 1))
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
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
    const endpointId = endpointOfId(batch.task_group_id)!;
    for (const chunk of chunks(batch.tasks, WRITE_CHUNK)) {
      await CREATE.run(
        this.redis,
        [groupKey(batch.task_group_id), taskIndexKey(endpointId), taskCounterKey(endpointId), ...chunk.map((t) => taskKey(t.task_id))],
        [...head, ...chunk.flatMap((t) => [t.task_id, t.function_uuid]), TASK_INDEX_CAP],
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
    return (await this.readRecords(taskIds)).map(({ owner, ...record }) => ({ ...record, submitter: owner }));
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

  async listTasks(filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<TaskListPage> {
    if (this.endpointId === undefined) throw new Error('RedisTaskStore: listing needs the endpoint id');
    const index = taskIndexKey(this.endpointId);
    const rows: TaskListRow[] = [];
    let below = before ?? Number.MAX_SAFE_INTEGER;
    let scanned = 0;
    // Reads the index downwards in chunks until the page is full or the budget spent.
    while (scanned < budget) {
      const take = Math.min(budget - scanned, Math.max(2 * limit, 200));
      const flat = (await this.redis.zrange(index, `(${below}`, '-inf', { byScore: true, rev: true, offset: 0, count: take, withScores: true })) as Array<string | number>;
      const entries: Array<{ id: string; pos: number }> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ id: String(flat[i]), pos: Number(flat[i + 1]) });
      if (entries.length === 0) return { rows, next: 0 };
      scanned += entries.length;
      const records = new Map((await this.readRecords(entries.map((e) => e.id))).map((r) => [r.task_id, r]));
      for (const { id, pos } of entries) {
        below = pos;
        const r = records.get(id);
        // Gone (expired) or not matching: skipped.
        if (!r || (filter.status !== undefined && r.state !== filter.status) || (filter.function_uuid !== undefined && r.function_uuid !== filter.function_uuid)) continue;
        if ((filter.workflow_id !== undefined && r.workflow_id !== filter.workflow_id) || (filter.task_group_id !== undefined && r.task_group_id !== filter.task_group_id)) continue;
        rows.push({ pos, task_id: id, status: r.state, function_uuid: r.function_uuid, task_group_id: r.task_group_id, workflow_id: r.workflow_id, created_at: r.created_at, completion_t: r.completion_t, attempts: r.attempts });
        if (rows.length === limit) return { rows, next: pos };
      }
      if (entries.length < take) return { rows, next: 0 };
    }
    return { rows, next: below };
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
