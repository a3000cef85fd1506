// One Durable Object per endpoint: its record, its tasks (through the TaskStore port) and outbox,
// the agent's WebSocket (hibernation API), credits and reconcile, and the clients waiting on its
// tasks. Routes reach it by RPC; every method checks the caller owns the endpoint.

import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { EVENTS_LIMITS } from '../../protocol/events';
import { LIMITS, type EndpointDoc, type EndpointStatus, type ResultRef, type StatusReport } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import { canTransition, isFinal, transition, type TaskState, type TransitionEvent } from '../../protocol/task-state';
import type { StatusSample } from '../../protocol/task-list';
import { traceHop, type TraceHops } from '../../protocol/trace';
import { CLOSE_GATEWAY_RESTART, FrameTooDeep, PROTOCOL_VERSION, chunkBySize, parseAgentFrame, seqOf, type AgentFrame, type FunctionSpec, type TaskResult } from '../../protocol/wire';
import type { TaskLineage } from '../../provenance/prov-document';
import { discardProvenance, type ProvenanceSink } from '../../provenance/task-events';
import { LineageIndex, type LineageQuery, type SegmentReader } from '../lineage-index';
import { registerHub } from '../drain';
import { heartbeatSeconds, lineageEnabled, taskStoreKind, type GatewayEnv } from '../env';
import { fail, ok, type HubReply } from '../hub-reply';
import { validationError } from '../http-errors';
import { logEvent } from '../log';
import { randomSuffix, taskSuffixes } from '../random-ids';
import { redisTaskStoreFor } from '../task-store/redis-task-store-for';
import { SqliteTaskStore } from '../task-store/sqlite-task-store';
import type { TaskListFilter, TaskListPage, TaskOutcome, TaskRecord, TaskStore } from '../task-store/port';
import { isOverBytes } from '../text-size';
import { AgentSessionStore, type AgentSession } from './agent-session';
import { allowListOf, createEndpointSchema, endpointDoc, hasEndpointSchema, migrateEndpointSchema, readEndpoint, writeEndpoint, type EndpointFields, type EndpointRecord } from './endpoint-record';
import { lineageRecord, lineageRecords } from './lineage-capture';
import { LineagePending, type PendingBatch } from './lineage-pending';
import { lineageSegmentKey, putLines, putSegment, r2SegmentReader } from '../lineage-segments';
import { FrameOrder } from './frame-order';
import { Outbox } from './outbox';
import { SubmitKeys, type KeyedSubmission } from './submit-keys';
import { buildTaskFrames, TASK_FRAME_BUDGET } from './task-frames';
import { TaskWaiters } from './task-waiters';
import { StatusHistory } from './status-history';
import { objectResultRef, resultObjectKey, spilledResultKey, taskDocJson } from './task-doc-json';
import { ChangeCounter, changedTasks, migrateEventLog, readStatusEvent, recentStart, statusKey, writeStatusEvent, type EventsPage, type HubEvent, type HubFilter } from './event-log';
import { EVENTS_SOCKET_PATH, EventSubscribers } from './event-subscribers';
import { AuditLog } from './audit-log';
import { SharingGuard, type ForeignFunctions } from './sharing-guard';
import { migrateSubmitter } from './submitter-column';
import type { AuditPage, GuestEndpointStatus } from '../../protocol/sharing-api';

/** Headers by which the gateway tells the hub who opens the agent socket (already authenticated). */
export const AGENT_SOCKET_HEADERS = { endpointId: 'x-ferry-endpoint-id', owner: 'x-ferry-owner', generation: 'x-ferry-secret-gen' } as const;

const EVENTS_NEED_SQLITE = 'event streams need the default task store (TASK_STORE=sqlite): with Redis, nothing records the order of changes';

const REVOKED_MESSAGE = 'the endpoint secret was revoked; register the endpoint again for a new secret';

/** Close codes the hub uses (4000–4999 are the application's). */
const CLOSE = { unsupportedProtocol: 4000, replaced: 4001, revoked: 4003, endpointDeleted: 4004, badFrame: 1008, normal: 1000 } as const;

/** A batch of tasks the gateway has validated; the hub checks ownership and the allow-list. */
export interface Submission {
  request_id: string;
  task_group_id?: string | undefined;
  workflow_id?: string | undefined;
  campaign_id?: string | undefined;
  resource_specification_json?: string | undefined;
  /** The code of every function the tasks name, resolved from the owner's registry. */
  functions: FunctionSpec[];
  /** Each payload already encoded as JSON text; it is spliced into the delivery message as is. */
  tasks: Array<{ function_uuid: string; payload_json: string }>;
  /** The client's `Idempotency-Key` and the digest of what it asked for (see submit-keys.ts). */
  idempotency?: { key: string; fingerprint: string } | undefined;
  /** A traced run (src/protocol/trace.ts): the gateway's hops so far. One task only. */
  trace?: TraceHops | undefined;
  /** Functions that are not the submitter's (shared with them, or granted on an endpoint): absent when all are theirs. */
  foreign?: ForeignFunctions | undefined;
  /** The instrument key that made the request (the audit log's key_used). */
  key_id?: string | undefined;
}

export interface Submitted {
  task_group_id: string;
  /** In the order of `Submission.tasks`. */
  task_ids: string[];
  /** The request that stored them: this one's, or, for a key sent again, the first one's. */
  request_id: string;
}

export interface RunOutcome {
  task_id: string;
  final: boolean;
  doc: string;
  /** A traced run's hops, the endpoint's between the hub's. */
  trace?: TraceHops;
}

/** What routes call on a hub. Declared plainly: the RPC stub's mapped types recurse without end on JsonValue. */
export type HubApi = Pick<EndpointHub, 'register' | 'update' | 'secretGeneration' | 'checkSecret' | 'revokeSecret' | 'describe' | 'status' | 'remove' | 'submit' | 'run' | 'taskDoc' | 'taskDocs' | 'taskGroup' | 'listTasks' | 'statusHistory' | 'cancel' | 'lineage' | 'lineageCount' | 'events' | 'holdsWorkflow' | 'sharingChanged' | 'credentialRevoked' | 'audit' | 'fetch'>;

export function hubOf(env: GatewayEnv, endpointId: string): HubApi {
  return env.ENDPOINT_HUB.get(env.ENDPOINT_HUB.idFromName(endpointId)) as unknown as HubApi;
}

interface SocketTag {
  session_id: string;
  /** The agent frame seq due next on this socket (absent until its first numbered frame). */
  next_seq?: number;
}

const DISPATCH_ROUND_ROWS = 5_000;
/** With a remote store: how often the outbox is swept while it holds undelivered rows and an agent is connected. */
const OUTBOX_SWEEP_MS = 30_000;
const SWEEP_CHUNK = 2_000;
/**
 * Lineage records are written in segments of LINEAGE_BATCH, as soon as a full one waits (off the
 * results path, after the frame's acknowledgement); fewer are written this long after the first of
 * them ended (an alarm). Queries write what waits first, and each waiting record is kept in SQLite
 * (a pending row, or its task's outbox row), so the wait costs neither freshness nor durability; it
 * saves object-store writes (each a billed R2 operation): a 20-task/s endpoint writes one segment
 * per 5 s, not ten a second.
 */
const LINEAGE_DELAY_MS = 5_000;
/** Ended tasks whose records one transaction writes, as one segment in the object store. */
const LINEAGE_BATCH = 1_000;

const EMPTY_REPORT: StatusReport = { total_workers: 0, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 0, blocks: 0 };

function nowSeconds(): number {
  return Date.now() / 1000;
}

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // Already closing or closed: nothing left to do.
  }
}

export class EndpointHub extends DurableObject<GatewayEnv> {
  private readonly sql: SqlStorage;
  private taskStore: TaskStore | undefined;
  private readonly sqliteStore: SqliteTaskStore;
  /** Task state outside this object (Redis): the outbox may then hold rows of tasks already final. */
  private readonly remoteStore: boolean;
  private readonly outbox: Outbox;
  private readonly submitKeys: SubmitKeys;
  /** Keyed submissions being stored, by owner and key. */
  private readonly keyedInFlight = new Map<string, Promise<HubReply<KeyedSubmission>>>();
  /** Traced runs' hops by task id, from the store until the run answers (src/protocol/trace.ts). */
  private readonly traces = new Map<string, TraceHops>();
  private readonly sessions: AgentSessionStore;
  /** Positions of the event log (event-log.ts) and the streams told of each new one. */
  private readonly changes: ChangeCounter;
  private readonly subscribers: EventSubscribers;
  /** Lineage records of this endpoint's ended tasks, written with their outcomes. */
  private readonly lineageIndex: LineageIndex;
  /** Records built from the endpoint's facts when their tasks ended, as NDJSON lines, until written to a segment. */
  private readonly lineagePending: LineagePending;
  /** The last hour of status reports (the dashboard's chart). */
  private readonly statusSamples: StatusHistory;
  /** Records the pending rows hold, as far as this instance knows; null: not counted since it woke. */
  private pendingRecords: number | null = null;
  private readonly lineageOn: boolean;
  private readonly waiters = new TaskWaiters();
  private readonly provenance: ProvenanceSink = discardProvenance;
  /** Tasks whose large result is being written to the object store by an earlier frame. */
  private readonly largeResultsInFlight = new Set<string>();
  /** Security events besides the tasks' (audit-log.ts). */
  private readonly auditLog: AuditLog;
  /** Guests' grants, cached (sharing-guard.ts). */
  private readonly guard: SharingGuard;
  private schemaReady: boolean;
  private record: EndpointRecord | null | undefined;
  /** undefined: not looked up since the object woke up. */
  private agentSocket: WebSocket | null | undefined;

  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.subscribers = new EventSubscribers(ctx);
    this.changes = new ChangeCounter(this.sql, (position, ended) => this.subscribers.tick(position, ended));
    this.sqliteStore = new SqliteTaskStore(ctx.storage, this.changes);
    this.remoteStore = taskStoreKind(env) === 'redis';
    this.outbox = new Outbox(this.sql);
    this.submitKeys = new SubmitKeys(this.sql);
    this.sessions = new AgentSessionStore(this.sql);
    this.lineageIndex = new LineageIndex(this.sql);
    this.lineagePending = new LineagePending(this.sql);
    this.statusSamples = new StatusHistory(this.sql);
    this.lineageOn = lineageEnabled(env);
    this.auditLog = new AuditLog(this.sql, {
      bucket: env.OBJECTS,
      endpointId: () => this.endpoint()!.endpoint_id,
      transaction: (writes) => this.ctx.storage.transactionSync(writes),
      defer: (work) => this.ctx.waitUntil(work.catch((err: unknown) => logEvent('warn', 'audit segment write failed; its events wait in SQLite for the next batch', { error: String(err) }))),
    });
    this.guard = new SharingGuard(env);
    // An id nobody registered gets no tables: probing random ids leaves nothing behind.
    this.schemaReady = hasEndpointSchema(this.sql);
    if (this.schemaReady) {
      migrateEndpointSchema(this.sql);
      this.outbox.migrate();
      // Endpoints registered before lineage existed get its tables on wake (IF NOT EXISTS).
      this.lineageIndex.createSchema();
      this.lineagePending.createSchema();
      this.statusSamples.createSchema();
      migrateEventLog(this.sql);
      this.auditLog.createSchema();
      migrateSubmitter(this.sql);
    }
    if (registerHub(ctx.id.toString())) this.drainForShutdown();
  }

  /** The gateway shuts down: agents reconnect later (1012), long polls answer with the task as it stands. */
  drainForShutdown(): void {
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CLOSE_GATEWAY_RESTART, 'gateway shutting down; reconnect');
    this.agentSocket = null;
    this.waiters.wakeAll();
  }

  /** The TaskStore the configuration names; a Redis store is scoped to this hub's endpoint. */
  private get store(): TaskStore {
    if (this.taskStore) return this.taskStore;
    if (!this.remoteStore) return (this.taskStore = this.sqliteStore);
    const endpointId = this.endpoint()?.endpoint_id;
    const store = redisTaskStoreFor(this.env, { ...(endpointId ? { endpointId } : {}), local: (writes) => this.ctx.storage.transactionSync(writes) });
    if (endpointId) this.taskStore = store;
    return store;
  }

  // ---- the endpoint record ----

  private endpoint(): EndpointRecord | null {
    if (!this.schemaReady) return null;
    if (this.record === undefined) this.record = readEndpoint(this.sql);
    return this.record;
  }

  /** The record when `owner` owns it; tasks of a deleted endpoint stay readable by their owner. */
  private owned(owner: string, allowDeleted = false): EndpointRecord | null {
    const record = this.endpoint();
    if (!record || record.owner !== owner || (record.deleted && !allowDeleted)) return null;
    return record;
  }

  private createSchema(): void {
    this.ctx.storage.transactionSync(() => {
      createEndpointSchema(this.sql);
      this.sqliteStore.createSchema();
      this.outbox.createSchema();
      this.sessions.createSchema();
      this.lineageIndex.createSchema();
      this.lineagePending.createSchema();
      this.statusSamples.createSchema();
      migrateEventLog(this.sql);
      this.auditLog.createSchema();
      migrateSubmitter(this.sql);
    });
    this.schemaReady = true;
  }

  async register(owner: string, endpointId: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    if (!this.schemaReady) this.createSchema();
    const existing = this.endpoint();
    if (existing && (existing.owner !== owner || existing.deleted || existing.endpoint_id !== endpointId)) return fail('NOT_FOUND');
    const record: EndpointRecord = {
      endpoint_id: endpointId,
      owner,
      endpoint_name: fields.endpoint_name,
      display_name: fields.display_name ?? null,
      allowed_functions: allowListOf(fields),
      metadata: fields.metadata ?? {},
      created_at: existing?.created_at ?? new Date().toISOString(),
      deleted: false,
      secret_gen: existing?.secret_gen ?? 0,
    };
    writeEndpoint(this.sql, record);
    this.record = record;
    return ok(endpointDoc(record));
  }

  async update(owner: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    const existing = this.owned(owner);
    if (!existing) return fail('NOT_FOUND');
    return this.register(owner, existing.endpoint_id, fields);
  }

  /** The current secret generation, which a freshly minted secret carries. */
  async secretGeneration(owner: string): Promise<HubReply<number>> {
    const record = this.owned(owner);
    return record ? ok(record.secret_gen) : fail('NOT_FOUND', 'endpoint not found');
  }

  /** Whether a secret or access token of generation `gen` is still good for this endpoint. */
  async checkSecret(owner: string, endpointId: string, gen: number): Promise<HubReply<number>> {
    const record = this.owned(owner);
    if (!record || record.endpoint_id !== endpointId) return fail('NOT_FOUND', 'endpoint not found');
    if (gen !== record.secret_gen) return fail('TOKEN_REVOKED', REVOKED_MESSAGE);
    return ok(record.secret_gen);
  }

  /**
   * Bumps the secret generation: the old secret and every access token minted from it stop working
   * now, and the connected agent (authenticated with one of them) is refused and disconnected.
   */
  async revokeSecret(owner: string): Promise<HubReply<number>> {
    const record = this.owned(owner);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    const bumped = { ...record, secret_gen: record.secret_gen + 1 };
    writeEndpoint(this.sql, bumped);
    this.record = bumped;
    for (const ws of this.agentSockets()) this.refuse(ws, 'TOKEN_REVOKED', REVOKED_MESSAGE, CLOSE.revoked);
    this.agentSocket = null;
    this.noteStatus();
    this.auditLog.append('secret_revoked', owner, { secret_generation: bumped.secret_gen });
    return ok(bumped.secret_gen);
  }

  async describe(owner: string): Promise<HubReply<EndpointDoc>> {
    const record = this.owned(owner);
    return record ? ok(endpointDoc(record)) : fail('NOT_FOUND');
  }

  /** The owner's full status; a guest's (a user the endpoint is shared with): online and queue length only. */
  async status(caller: string): Promise<HubReply<EndpointStatus | GuestEndpointStatus>> {
    if (this.owned(caller)) return ok(this.currentStatus());
    const record = this.live();
    if (!record || !(await this.guard.isGuest(record, caller))) {
      if (record) this.auditLog.refused(caller, { action: 'status', reason: 'not_shared' });
      return fail('NOT_FOUND');
    }
    const full = this.currentStatus();
    return ok({ status: full.status, details: { queue_length: this.outbox.counts().queued + full.details.pending_tasks } });
  }

  /** The endpoint's record unless it was deleted (whoever asks: callers check who they are). */
  private live(): EndpointRecord | null {
    const record = this.endpoint();
    return record && !record.deleted ? record : null;
  }

  // ---- sharing and audit (sharing-guard.ts, audit-log.ts) ----

  /** The owner changed the endpoint's grants (or a group granted it): forget cached access, log it. */
  async sharingChanged(owner: string, detail: Record<string, unknown>): Promise<HubReply<null>> {
    const record = this.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    this.guard.access.forgetOwner(owner);
    this.auditLog.append('sharing_changed', owner, detail);
    return ok(null);
  }

  /** The owner revoked a key that could reach this endpoint, or all their tokens: logged here. */
  async credentialRevoked(owner: string, kind: 'key_revoked' | 'tokens_revoked', detail: Record<string, unknown>): Promise<HubReply<null>> {
    if (!this.owned(owner)) return fail('NOT_FOUND', 'endpoint not found');
    this.auditLog.append(kind, owner, detail);
    return ok(null);
  }

  /** A page of the audit log: the owner's only (a guest or a stranger gets 404). */
  async audit(owner: string, cursor: string | undefined, limit: number): Promise<HubReply<AuditPage>> {
    const record = this.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    // Tasks that ended are in their lineage records before the page is read.
    await this.flushLineage();
    const page = await this.auditLog.page(cursor, limit, this.segmentReader);
    return ok({ endpoint_id: record.endpoint_id, ...page });
  }

  private currentStatus(): EndpointStatus {
    const session = this.sessions.current();
    const last = this.sessions.lastStatus();
    const lastSignOfLife = Math.max(last?.last_heartbeat ?? 0, session?.hello_at ?? 0);
    const connected = this.currentSocket() !== null && (session?.phase === 'held' || session?.phase === 'ready');
    const online = connected && nowSeconds() - lastSignOfLife <= 3 * heartbeatSeconds(this.env);
    return { status: online ? 'online' : 'offline', details: { ...(last?.report ?? EMPTY_REPORT), last_heartbeat: last?.last_heartbeat ?? null } };
  }

  async remove(owner: string): Promise<HubReply<null>> {
    const record = this.owned(owner);
    if (!record) return fail('NOT_FOUND');
    const deleted = { ...record, deleted: true };
    writeEndpoint(this.sql, deleted);
    this.record = deleted;
    const session = this.sessions.current();
    if (session) this.sessions.save({ ...session, phase: 'closed' });
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CLOSE.endpointDeleted, 'endpoint deleted');
    this.agentSocket = null;
    this.noteStatus();
    return ok(null);
  }

  // ---- tasks ----

  async submit(owner: string, submission: Submission): Promise<HubReply<Submitted>> {
    const idempotency = submission.idempotency;
    if (!idempotency) return this.storeSubmission(owner, submission);
    // Keys are the submitter's own: two owners' equal keys name different requests.
    const key = `${owner}\n${idempotency.key}`;
    // The same key while its first request is still being stored: the answer is that request's.
    const inFlight = this.keyedInFlight.get(key);
    if (inFlight) return this.replay(await inFlight, idempotency.fingerprint);
    const stored = this.live() ? this.submitKeys.find(key, nowSeconds()) : null;
    if (stored) return this.replay(ok(stored), idempotency.fingerprint);
    const storing = this.storeSubmission(owner, submission, { key, fingerprint: idempotency.fingerprint }).then((reply) =>
      reply.ok ? ok({ ...reply.value, fingerprint: idempotency.fingerprint }) : reply,
    );
    this.keyedInFlight.set(key, storing);
    try {
      return this.replay(await storing, idempotency.fingerprint);
    } finally {
      this.keyedInFlight.delete(key);
    }
  }

  /** A keyed submission's answer, unless the key came back with another request. */
  private replay(reply: HubReply<KeyedSubmission>, fingerprint: string): HubReply<Submitted> {
    if (!reply.ok) return reply;
    if (reply.value.fingerprint !== fingerprint) {
      return fail('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with another request; use a new key for a new request');
    }
    return ok({ task_group_id: reply.value.task_group_id, task_ids: reply.value.task_ids, request_id: reply.value.request_id });
  }

  /** Stores the tasks and queues them; with `keyed` (the owner-scoped key), remembers the answer in the same transaction. */
  private async storeSubmission(owner: string, submission: Submission, keyed?: { key: string; fingerprint: string }): Promise<HubReply<Submitted>> {
    const record = this.live();
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    // The owner's own functions (the common case) pass without a lookup; a guest's grant is cached.
    if (record.owner !== owner || submission.foreign) {
      const refused = await this.guard.check(record, owner, submission.functions.map((f) => f.function_uuid), submission.foreign);
      if (refused) {
        this.auditLog.refused(owner, { action: 'submit', reason: refused.reason, ...(refused.function_uuid ? { function_uuid: refused.function_uuid } : {}) });
        return refused.refusal;
      }
      const ref = record.owner !== owner ? this.guard.objectRefIn(submission.tasks) : null;
      if (ref !== null) {
        this.auditLog.refused(owner, { action: 'submit', reason: 'object_ref' });
        return fail('FORBIDDEN', 'a guest passes data inline or as file:// references: objects are read with the endpoint owner\'s credentials', { reason: 'guest_object_ref' });
      }
    }
    if (submission.key_id !== undefined) this.auditLog.keyUsed(owner, submission.key_id);
    if (record.allowed_functions) {
      const allowed = new Set(record.allowed_functions);
      const refused = submission.functions.find((f) => !allowed.has(f.function_uuid));
      if (refused) return fail('FUNCTION_NOT_PERMITTED', `function ${refused.function_uuid} is not in the endpoint's allowed_functions`, { function_uuid: refused.function_uuid });
    }
    let groupId = submission.task_group_id;
    let newGroup = false;
    if (groupId !== undefined) {
      const groupEndpoint = endpointOfId(groupId);
      if (groupEndpoint === null) return fail('INVALID_ID', 'task_group_id is malformed');
      if (groupEndpoint !== record.endpoint_id) return fail('INVALID_ID', 'task_group_id belongs to another endpoint');
      if (!(await this.store.groupExists(groupId))) return fail('NOT_FOUND', 'task group not found');
    } else {
      groupId = `${record.endpoint_id}.${randomSuffix()}`;
      newGroup = true;
    }
    const createdAt = nowSeconds();
    const suffixes = taskSuffixes(submission.tasks.length);
    const rs = submission.resource_specification_json;
    const taskIds: string[] = new Array(submission.tasks.length);
    const tasks: Array<{ task_id: string; function_uuid: string }> = new Array(submission.tasks.length);
    const outboxRows: Array<{ task_id: string; function_uuid: string; message: string }> = new Array(submission.tasks.length);
    for (let i = 0; i < submission.tasks.length; i++) {
      const task = submission.tasks[i]!;
      const taskId = `${record.endpoint_id}.${suffixes[i]}`;
      taskIds[i] = taskId;
      tasks[i] = { task_id: taskId, function_uuid: task.function_uuid };
      const traced = submission.trace ? ',"trace":[]' : '';
      const message = `{"task_id":"${taskId}","function_uuid":"${task.function_uuid}","payload":${task.payload_json}${rs === undefined ? '' : `,"resource_specification":${rs}`}${traced}}`;
      outboxRows[i] = { task_id: taskId, function_uuid: task.function_uuid, message };
    }
    await this.store.createTasks(
      {
        task_group_id: groupId,
        new_group: newGroup,
        request_id: submission.request_id,
        created_at: createdAt,
        workflow_id: submission.workflow_id ?? null,
        campaign_id: submission.campaign_id ?? null,
        resource_specification_json: rs ?? null,
        tasks,
        owner,
        ...(owner === record.owner ? {} : { submitter: owner }),
      },
      () => {
        this.outbox.saveFunctions(submission.functions);
        this.outbox.enqueue(outboxRows);
        if (keyed) {
          this.submitKeys.record(keyed.key, { fingerprint: keyed.fingerprint, request_id: submission.request_id, task_group_id: groupId, task_ids: taskIds }, createdAt);
        }
      },
    );
    if (submission.trace) {
      traceHop(submission.trace, 'hub.stored', Date.now());
      this.traces.set(taskIds[0]!, submission.trace);
    }
    this.dispatch();
    await this.armSweep();
    return ok({ task_group_id: groupId, task_ids: taskIds, request_id: submission.request_id });
  }

  /** Submits one task and holds the answer until it ends or `waitMs` passes. */
  async run(owner: string, submission: Submission, waitMs: number): Promise<HubReply<RunOutcome>> {
    traceHop(submission.trace, 'hub.received', Date.now());
    const submitted = await this.submit(owner, submission);
    if (!submitted.ok) return submitted;
    const taskId = submitted.value.task_ids[0]!;
    const { record, doc } = await this.awaitDoc(taskId, waitMs);
    const outcome: RunOutcome = { task_id: taskId, final: record !== null && isFinal(record.state), doc: doc ?? '' };
    const trace = this.traces.get(taskId);
    if (trace) {
      this.traces.delete(taskId);
      traceHop(trace, 'hub.answered', Date.now());
      outcome.trace = trace;
    }
    return ok(outcome);
  }

  async taskDoc(owner: string, taskId: string, waitMs: number): Promise<HubReply<string>> {
    if (!this.owned(owner, true) && !(await this.submittedBy(owner, [taskId])).has(taskId)) return fail('NOT_FOUND', 'task not found');
    const { doc } = await this.awaitDoc(taskId, waitMs);
    return doc === null ? fail('NOT_FOUND', 'task not found') : ok(doc);
  }

  /** The ids among `taskIds` that `guest` submitted (a guest's tasks are theirs to read and cancel). */
  private async submittedBy(guest: string, taskIds: readonly string[]): Promise<Set<string>> {
    if (!this.schemaReady || taskIds.length === 0) return new Set();
    const records = await this.store.readTasks(taskIds);
    return new Set(records.filter((r) => r.submitter === guest).map((r) => r.task_id));
  }

  /** Task docs as JSON text by id; ids that are not this endpoint's or not the owner's are left out. */
  async taskDocs(owner: string, taskIds: readonly string[]): Promise<Record<string, string>> {
    const record = this.owned(owner, true);
    const endpointId = this.endpoint()?.endpoint_id;
    if (!endpointId) return {};
    let mine = taskIds.filter((id) => endpointOfId(id) === endpointId);
    // A guest reads the tasks they submitted.
    if (!record) {
      const theirs = await this.submittedBy(owner, mine);
      mine = mine.filter((id) => theirs.has(id));
    }
    const records = await this.store.readTasks(mine);
    const docs = await Promise.all(records.map((r) => this.encodeDoc(r)));
    const out: Record<string, string> = {};
    for (let i = 0; i < records.length; i++) out[records[i]!.task_id] = docs[i]!;
    return out;
  }

  async taskGroup(owner: string, taskGroupId: string): Promise<HubReply<Array<{ task_id: string; created_at: number }>>> {
    if (!this.owned(owner, true)) return fail('NOT_FOUND', 'task group not found');
    const tasks = await this.store.groupTasks(taskGroupId);
    return tasks === null ? fail('NOT_FOUND', 'task group not found') : ok(tasks);
  }

  /** A page of the endpoint's tasks, newest first, read below position `before` (null: from the newest). */
  async listTasks(owner: string, filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<HubReply<TaskListPage>> {
    const record = this.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    return ok(await this.store.listTasks(filter, before, limit, budget));
  }

  /** Status reports of the last hour, oldest first. */
  async statusHistory(owner: string): Promise<HubReply<StatusSample[]>> {
    if (!this.owned(owner, true)) return fail('NOT_FOUND', 'endpoint not found');
    return ok(this.statusSamples.read(nowSeconds()));
  }

  /** Cancels a task that has not finished. Whichever the hub stores first, cancel or result, wins. */
  async cancel(owner: string, taskId: string): Promise<HubReply<string>> {
    if (!this.owned(owner, true) && !(await this.submittedBy(owner, [taskId])).has(taskId)) return fail('NOT_FOUND', 'task not found');
    const state = (await this.store.readStates([taskId])).get(taskId);
    if (!state) return fail('NOT_FOUND', 'task not found');
    if (isFinal(state.state)) return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${state.state}`);
    const moved = transition(taskId, state.state, state.transitions, 'cancelled', nowSeconds());
    const delivered = this.outbox.lookup([taskId]).get(taskId) === true;
    const outcome: TaskOutcome = { ...emptyOutcome(taskId), state: moved.state, transitions: moved.transitions, completion_t: moved.event.at };
    const report = await this.store.finishTasks([outcome], [], (finished) => this.retire(finished));
    await this.armLineage();
    // A result stored between the read above and this write wins: the cancel is refused.
    if (report.finished.length === 0) {
      const now = (await this.store.readStates([taskId])).get(taskId);
      return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${now?.state ?? 'finished'}`);
    }
    this.provenance.record([moved.event]);
    this.waiters.wake([taskId]);
    if (delivered) {
      const ws = this.currentSocket();
      if (ws) this.sendQuietly(ws, JSON.stringify({ type: 'cancel', task_ids: [taskId] }));
      // With no socket, the next hello's reconcile tells the agent: it holds a task that is final here.
    }
    const { doc } = await this.awaitDoc(taskId, 0);
    return doc === null ? fail('NOT_FOUND') : ok(doc);
  }

  // ---- events (GET /v3/events; event-log.ts) ----

  /**
   * Changes the filter selects after `after` (null: a new stream, which starts with the current
   * state: for an endpoint, its status and its latest tasks), at most `limit` task events.
   * `check`: the stream opens, and ids it names must exist here.
   */
  async events(owner: string, filter: HubFilter, after: number | null, limit: number, check: boolean): Promise<HubReply<EventsPage>> {
    const record = this.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    if (this.remoteStore) return fail('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE);
    // Read from storage, not the counter's memory: what is committed is what can be read.
    const head = this.changes.stored();
    if (after !== null && after > head) return fail('VALIDATION_ERROR', 'Last-Event-ID is not an event id of this stream');
    if (check && filter.kind === 'task_group' && (endpointOfId(filter.task_group_id) !== record.endpoint_id || !(await this.store.groupExists(filter.task_group_id)))) {
      return fail('NOT_FOUND', 'task group not found');
    }
    if (check && filter.kind === 'tasks') {
      const states = await this.store.readStates(filter.task_ids);
      if (states.size < filter.task_ids.length) return fail('NOT_FOUND', 'task not found', { task_id: filter.task_ids.find((id) => !states.has(id)) });
    }
    const start = after ?? (filter.kind === 'endpoint' ? recentStart(this.sql, EVENTS_LIMITS.endpointRecentTasks) : 0);
    const page = changedTasks(this.sql, filter, start, head, limit);
    const docs = await Promise.all(page.tasks.map((t) => this.encodeDoc(t.record)));
    const events: HubEvent[] = page.tasks.map((t, i) => ({ seq: t.seq, type: 'task', data: docs[i]! }));
    if (filter.kind === 'endpoint') {
      const status = readStatusEvent(this.sql);
      // A new stream starts with the status as it is; a resumed one gets it when it changed since.
      const due = after === null ? { seq: start, status: this.currentStatus() } : status && status.seq > start && status.seq <= page.position ? status : null;
      if (due) {
        const data = JSON.stringify({ endpoint_id: record.endpoint_id, status: due.status });
        const at = events.findIndex((e) => e.seq > due.seq);
        events.splice(at < 0 ? events.length : at, 0, { seq: due.seq, type: 'endpoint', data });
      }
    }
    return ok({ events, position: page.position, more: page.more });
  }

  /** Whether any task of the owner's workflow was submitted here (a stream of the workflow then follows this hub). */
  async holdsWorkflow(owner: string, workflowId: string): Promise<boolean> {
    if (!this.owned(owner, true) || this.remoteStore) return false;
    return this.sql.exec('SELECT 1 FROM task_requests WHERE workflow_id = ? LIMIT 1', workflowId).toArray().length > 0;
  }

  /** Stamps a status event when what it shows changed (online, workers, blocks) and tells the streams. */
  private noteStatus(): void {
    if (!this.schemaReady || this.remoteStore) return;
    const status = this.currentStatus();
    const last = readStatusEvent(this.sql);
    if (last && statusKey(last.status) === statusKey(status)) return;
    writeStatusEvent(this.sql, this.changes.next(), status);
    this.changes.committed(true);
  }

  /** The agent's socket (and sockets it replaced that are closing), not the event streams'. */
  private agentSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => !this.subscribers.isSubscriber(ws));
  }

  // ---- lineage ----

  /**
   * Rows of tasks now final (inside the outcomes' transaction). With lineage on, a task whose record
   * was built with its outcome (`records`: from the endpoint's facts) has it appended to the pending
   * rows and its outbox row dropped; any other keeps its outbox row (its payload), marked ended,
   * until flushLineage builds its record from the store. With lineage off, rows are dropped.
   */
  private retire(taskIds: readonly string[], records?: ReadonlyMap<string, TaskLineage>): void {
    if (taskIds.length === 0) return;
    if (!this.lineageOn) return this.outbox.remove(taskIds);
    const built: TaskLineage[] = [];
    const unbuilt: string[] = [];
    for (const id of taskIds) {
      const record = records?.get(id);
      if (record) built.push(record);
      else unbuilt.push(id);
    }
    if (built.length > 0) {
      this.outbox.remove(built.map((r) => r.task_id));
      this.lineagePending.append(built);
      // Counted before the transaction commits: a rollback leaves it high, which only starts a flush early.
      this.pendingRecords = this.pendingCount() + built.length;
    }
    if (unbuilt.length > 0) this.outbox.markEnded(unbuilt);
  }

  private pendingCount(): number {
    return (this.pendingRecords ??= this.lineagePending.count());
  }

  /** When the lineage alarm is set for (ms), as far as this instance knows; 0: not set. */
  private lineageAlarmAt = 0;

  /** Sets the alarm that writes the records of ended tasks, unless one comes sooner. */
  private async armLineage(): Promise<void> {
    if (!this.lineageOn || this.lineageAlarmAt > Date.now()) return;
    const at = Date.now() + LINEAGE_DELAY_MS;
    const current = await this.ctx.storage.getAlarm();
    if (current !== null && current <= at) {
      this.lineageAlarmAt = current;
      return;
    }
    await this.ctx.storage.setAlarm(at);
    this.lineageAlarmAt = at;
  }

  private lineageFlush: { done: Promise<void>; fullOnly: boolean } | null = null;

  /**
   * Writes the lineage records of every ended task whose record is not written yet, in batches:
   * those of ended outbox rows built from the final task records, then the pending rows' as they
   * are; each batch as one segment, then in one transaction indexed and its rows dropped. A failed
   * batch leaves its rows; the alarm runs again (and queries flush first). `fullOnly`: only whole
   * batches (LINEAGE_BATCH records, or up to a frame more), leaving a partial one waiting.
   */
  private flushLineage(fullOnly = false): Promise<void> {
    if (!this.lineageOn || !this.schemaReady) return Promise.resolve();
    const current = this.lineageFlush;
    // A flush of whole batches under way writes less than one asked for everything: the rest follows it.
    if (current?.fullOnly && !fullOnly) return current.done.catch(() => undefined).then(() => this.flushLineage());
    if (!current) {
      const run = async () => {
        for (;;) {
          const rows = this.outbox.ended(LINEAGE_BATCH);
          if (rows.length === 0 || (fullOnly && rows.length < LINEAGE_BATCH)) break;
          await this.writeLineage(rows);
          if (rows.length < LINEAGE_BATCH) break;
        }
        for (;;) {
          const batch = this.lineagePending.take(LINEAGE_BATCH, fullOnly ? LINEAGE_BATCH : 1);
          if (batch === null) break;
          await this.writePending(batch);
          if (!batch.more) break;
        }
      };
      // Cleared in a later microtask: with nothing to write, run() settles before this assignment.
      const done = run().finally(() => {
        this.lineageFlush = null;
      });
      this.lineageFlush = { done, fullOnly };
      return done;
    }
    return current.done;
  }

  private async writeLineage(rows: ReadonlyArray<{ seq: number; task_id: string }>): Promise<void> {
    const record = this.endpoint()!;
    const ids = rows.map((r) => r.task_id);
    const built = new Map<string, TaskLineage>();
    for (const r of await this.rebuildRecords(record, ids)) built.set(r.task_id, r);
    // Records in the order the tasks were submitted (outbox order); a task gone from the store
    // (expired) before its record was built has nothing left to record.
    const records: TaskLineage[] = [];
    for (const id of ids) {
      const r = built.get(id);
      if (r) records.push(r);
    }
    // The batch's records as one NDJSON segment in the object store, named by the batch's first
    // outbox row: a retry of a batch whose index write failed overwrites its own segment.
    const placement = await putSegment(this.env.OBJECTS, lineageSegmentKey(record.endpoint_id, rows[0]!.seq), records);
    this.ctx.storage.transactionSync(() => {
      this.lineageIndex.write(records, false, placement);
      this.outbox.removeEnded(ids);
    });
  }

  /** The records of ended tasks, from their final stored records and their outbox rows' payloads. */
  private async rebuildRecords(record: EndpointRecord, taskIds: readonly string[]): Promise<TaskLineage[]> {
    const messages = new Map<string, string>();
    this.outbox.deliveries(taskIds, messages);
    const tasks = await this.store.readTasks(taskIds);
    const spilled = new Map<string, string>();
    await Promise.all(
      tasks.map(async (t) => {
        const key = spilledResultKey(t);
        if (key === null) return;
        const object = await this.env.OBJECTS.get(key);
        if (object) spilled.set(t.task_id, await object.text());
      }),
    );
    return lineageRecords(record.owner, record.endpoint_id, tasks, messages, spilled);
  }

  /** Writes records built when their tasks ended as one segment, then indexes it and drops their pending rows. */
  private async writePending(batch: PendingBatch): Promise<void> {
    const placement = await putLines(this.env.OBJECTS, lineageSegmentKey(this.endpoint()!.endpoint_id, batch.firstId, 'r'), batch.text, batch.ids);
    this.ctx.storage.transactionSync(() => {
      this.lineageIndex.writeSegmentRows(placement, batch.rows);
      this.lineagePending.remove(batch);
    });
    if (this.pendingRecords !== null) this.pendingRecords = Math.max(0, this.pendingRecords - batch.ids.length);
  }

  /** Reads records from the hub's segments in the object store. */
  private readonly segmentReader: SegmentReader = r2SegmentReader(this.env.OBJECTS);

  /** Lineage records of this endpoint's ended tasks (the owner's only). */
  async lineage(owner: string, query: LineageQuery): Promise<TaskLineage[]> {
    if (!this.owned(owner, true)) return [];
    // Read your writes: records of tasks that ended are written before the query answers.
    await this.flushLineage();
    return this.lineageIndex.query(owner, query, this.segmentReader);
  }

  async lineageCount(owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
    if (!this.owned(owner, true)) return 0;
    await this.flushLineage();
    return this.lineageIndex.count(owner, workflowId, campaignId);
  }

  private async awaitDoc(taskId: string, waitMs: number): Promise<{ record: TaskRecord | null; doc: string | null }> {
    let record = (await this.store.readTasks([taskId]))[0] ?? null;
    if (record && !isFinal(record.state) && waitMs > 0) {
      await this.waiters.wait(taskId, waitMs);
      record = (await this.store.readTasks([taskId]))[0] ?? null;
    }
    return { record, doc: record ? await this.encodeDoc(record) : null };
  }

  private async encodeDoc(record: TaskRecord): Promise<string> {
    let result = record.result_json;
    const spilled = spilledResultKey(record);
    if (spilled !== null) {
      const object = await this.env.OBJECTS.get(spilled);
      result = object ? await object.text() : null;
    }
    return taskDocJson(record, this.endpoint()!.endpoint_id, result);
  }

  // ---- the agent socket ----

  override async fetch(request: Request): Promise<Response> {
    const owner = request.headers.get(AGENT_SOCKET_HEADERS.owner) ?? '';
    if (new URL(request.url).pathname === EVENTS_SOCKET_PATH) {
      // An event stream's socket (routes/events.ts); tasks of a deleted endpoint stay watchable by their owner.
      if (!this.owned(owner, true)) return Response.json({ code: 'NOT_FOUND', message: 'endpoint not found' }, { status: 404 });
      if (this.remoteStore) return Response.json(new FerryError('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE).toBody(), { status: 501 });
      return this.subscribers.accept();
    }
    const record = this.owned(owner);
    if (!record || record.endpoint_id !== request.headers.get(AGENT_SOCKET_HEADERS.endpointId)) {
      return Response.json({ code: 'NOT_FOUND', message: 'endpoint not found' }, { status: 404 });
    }
    // Only access tokens of the current secret generation open the socket.
    if (Number(request.headers.get(AGENT_SOCKET_HEADERS.generation)) !== record.secret_gen) {
      return Response.json({ code: 'TOKEN_REVOKED', message: REVOKED_MESSAGE }, { status: 401 });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // One agent per endpoint: a new connection replaces the old one.
    for (const old of this.agentSockets()) closeQuietly(old, CLOSE.replaced, 'replaced by a newer agent connection');
    this.ctx.acceptWebSocket(server);
    const session: AgentSession = { session_id: crypto.randomUUID(), phase: 'hello', held_remaining: 0, credits: 0, hello_at: null };
    server.serializeAttachment({ session_id: session.session_id } satisfies SocketTag);
    this.ctx.storage.transactionSync(() => {
      this.sessions.save(session);
      this.sessions.clearHeld();
    });
    this.agentSocket = server;
    return new Response(null, { status: 101, webSocket: client });
  }

  private currentSocket(): WebSocket | null {
    const session = this.sessions.current();
    if (!session || session.phase === 'closed') return null;
    if (this.agentSocket === undefined) {
      this.agentSocket = this.agentSockets().find((ws) => (ws.deserializeAttachment() as SocketTag | null)?.session_id === session.session_id) ?? null;
    }
    if (this.agentSocket && this.agentSocket.readyState !== WebSocket.OPEN) return null;
    return this.agentSocket;
  }

  private isCurrent(ws: WebSocket): AgentSession | null {
    const session = this.sessions.current();
    const tag = ws.deserializeAttachment() as SocketTag | null;
    if (!session || session.phase === 'closed' || !tag || tag.session_id !== session.session_id) return null;
    return session;
  }

  private sendQuietly(ws: WebSocket, frame: string): boolean {
    try {
      ws.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  private refuse(ws: WebSocket, code: string, message: string, closeCode: number): void {
    logEvent('warn', 'agent refused', { endpoint_id: this.endpoint()?.endpoint_id, code, message });
    this.sendQuietly(ws, JSON.stringify({ type: 'refuse', code, message }));
    closeQuietly(ws, closeCode, message);
    const session = this.sessions.current();
    if (session && this.isCurrent(ws)) this.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
  }

  /** Frames are handled one at a time, in order, even across awaits of a remote store. */
  private frameChain: Promise<void> = Promise.resolve();

  /** Per socket: its numbered frames put back in the order sent (lost with the instance; the seq due is in the attachment). */
  private readonly frameOrders = new WeakMap<WebSocket, FrameOrder<string>>();

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (this.subscribers.isSubscriber(ws)) return Promise.resolve(); // streams only listen
    const seq = typeof message === 'string' ? seqOf(message) : null;
    if (seq === null) return this.chainFrame(() => this.handleFrame(ws, message));
    const tag = ws.deserializeAttachment() as SocketTag | null;
    let order = this.frameOrders.get(ws);
    if (!order) this.frameOrders.set(ws, (order = new FrameOrder<string>(tag?.next_seq ?? 1)));
    const verdict = order.accept(seq, message as string);
    if ('error' in verdict) return this.chainFrame(() => this.refuse(ws, 'VALIDATION_ERROR', `bad frame: ${verdict.error}`, CLOSE.badFrame));
    if (verdict.due.length === 0) return Promise.resolve(); // handled with the frame it waits for
    if (tag) ws.serializeAttachment({ ...tag, next_seq: order.next } satisfies SocketTag);
    return Promise.all(verdict.due.map((frame) => this.chainFrame(() => this.handleFrame(ws, frame)))).then(() => undefined);
  }

  /**
   * Runs one frame's handling after the previous one's. Input gates hold new events only while
   * *storage* is awaited; a remote TaskStore (fetch) would let the next frame (an ack's successor,
   * a sync) run before this one is stored.
   */
  private chainFrame(handle: () => Promise<void> | void): Promise<void> {
    const run = this.frameChain.then(handle);
    this.frameChain = run.catch(() => {});
    return run;
  }

  private async handleFrame(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const session = this.isCurrent(ws);
    if (!session) {
      closeQuietly(ws, CLOSE.replaced, 'superseded by a newer agent connection');
      return;
    }
    if (typeof message !== 'string') return this.refuse(ws, 'VALIDATION_ERROR', 'frames are JSON text, not binary', CLOSE.badFrame);
    let frame: AgentFrame;
    try {
      frame = parseAgentFrame(message);
    } catch (err) {
      const why = err instanceof z.ZodError ? validationError(err).message : err instanceof FrameTooDeep ? err.message : `not JSON: ${(err as Error).message}`;
      return this.refuse(ws, 'VALIDATION_ERROR', `bad frame: ${why}`, CLOSE.badFrame);
    }
    if ((session.phase === 'hello') !== (frame.type === 'hello')) {
      return this.refuse(ws, 'VALIDATION_ERROR', session.phase === 'hello' ? `expected hello, got ${frame.type}` : 'hello was already received', CLOSE.badFrame);
    }
    switch (frame.type) {
      case 'hello':
        return this.onHello(ws, session, frame.protocol_version, frame.held_frames);
      case 'held':
        if (session.phase !== 'held') return this.refuse(ws, 'VALIDATION_ERROR', 'held frame after the announced held_frames', CLOSE.badFrame);
        return this.onHeld(ws, session, frame.task_ids);
      case 'credit':
        return this.grant(frame.n);
      case 'ack':
        return this.advance(frame.task_ids, 'waiting-for-nodes', nowSeconds(), true);
      case 'running':
        return this.advance(frame.task_ids, 'running', frame.at, false);
      case 'results':
        if (frame.acked) {
          // A task whose result is in this frame needs no state on the way: its result ends it.
          const ended = new Set(frame.results.map((r) => r.task_id));
          const waiting = frame.acked.filter((id) => !ended.has(id));
          if (waiting.length) await this.advance(waiting, 'waiting-for-nodes', nowSeconds(), true);
        }
        await this.onResults(ws, frame.results);
        // Still this connection's credits only if no newer agent connection replaced it meanwhile.
        if (frame.credit && this.isCurrent(ws)) this.grant(frame.credit);
        return;
      case 'status': {
        const at = nowSeconds();
        this.sessions.saveStatus({ report: frame.report, last_heartbeat: at });
        this.statusSamples.record(frame.report, at);
        this.noteStatus();
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (this.subscribers.isSubscriber(ws)) return this.subscribers.gone(ws);
    // Echo the close; the runtime may already consider the socket closed and throw.
    closeQuietly(ws, code === 1005 || code === 1006 || code === 1015 ? CLOSE.normal : code, reason);
    this.onSocketGone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    if (this.subscribers.isSubscriber(ws)) return this.subscribers.gone(ws);
    closeQuietly(ws, 1011, 'socket error');
    this.onSocketGone(ws);
  }

  /** Delivered tasks stay delivered: the next hello's reconcile decides what the agent still holds. */
  private onSocketGone(ws: WebSocket): void {
    const session = this.isCurrent(ws);
    if (session) this.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
    this.noteStatus();
  }

  private async onHello(ws: WebSocket, session: AgentSession, protocolVersion: number, heldFrames: number): Promise<void> {
    if (protocolVersion !== PROTOCOL_VERSION) {
      return this.refuse(ws, 'UNSUPPORTED_PROTOCOL', `the agent speaks protocol version ${protocolVersion}, this gateway speaks version ${PROTOCOL_VERSION}`, CLOSE.unsupportedProtocol);
    }
    const record = this.endpoint()!;
    this.sendQuietly(ws, JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, endpoint_id: record.endpoint_id, heartbeat_s: heartbeatSeconds(this.env) }));
    const next: AgentSession = { ...session, phase: heldFrames > 0 ? 'held' : 'ready', held_remaining: heldFrames, hello_at: nowSeconds() };
    this.sessions.save(next);
    this.noteStatus();
    if (next.phase === 'ready') {
      await this.reconcile(ws, []);
      this.dispatch();
    }
  }

  private async onHeld(ws: WebSocket, session: AgentSession, taskIds: string[]): Promise<void> {
    const remaining = session.held_remaining - 1;
    this.ctx.storage.transactionSync(() => {
      this.sessions.addHeld(taskIds);
      this.sessions.save({ ...session, held_remaining: remaining, phase: remaining > 0 ? 'held' : 'ready' });
    });
    if (remaining > 0) return;
    await this.reconcile(ws, this.sessions.takeHeld());
    this.dispatch();
  }

  /**
   * After a hello: a task delivered here that the agent does not hold was lost on the way or with
   * the agent, and goes back to the queue; a held task that is final here (or unknown) is dropped by
   * the agent through a cancel frame; a held task still open here counts as delivered.
   */
  private async reconcile(ws: WebSocket, heldIds: readonly string[]): Promise<void> {
    const held = new Set(heldIds);
    const lapsed = this.outbox.deliveredTaskIds().filter((id) => !held.has(id));
    const [lapsedStates, heldStates] = await Promise.all([this.store.readStates(lapsed), this.store.readStates(heldIds)]);
    const at = nowSeconds();
    const events: TransitionEvent[] = [];
    // Rows of tasks final (or expired) in the store: left by a crash between a remote store's write and the outbox's.
    const gone: string[] = [];
    for (const id of lapsed) {
      const s = lapsedStates.get(id);
      if (!s || isFinal(s.state)) gone.push(id);
      if (!s || s.state === 'waiting-for-ep' || !canTransition(s.state, 'waiting-for-ep')) continue;
      events.push(transition(id, s.state, s.transitions, 'waiting-for-ep', at).event);
    }
    const drop: string[] = [];
    const keep: string[] = [];
    for (const id of heldIds) {
      const s = heldStates.get(id);
      if (!s || isFinal(s.state)) drop.push(id);
      else keep.push(id);
    }
    await this.store.saveTransitions(events, () => {
      this.outbox.markUndelivered(lapsed);
      this.outbox.markDelivered(keep);
      this.retire(gone);
      this.retire(drop);
    });
    this.provenance.record(events);
    if (this.remoteStore) await this.sweepOutbox(true);
    for (const ids of chunkBySize(drop, TASK_FRAME_BUDGET)) this.sendQuietly(ws, JSON.stringify({ type: 'cancel', task_ids: ids }));
    if (gone.length > 0 || drop.length > 0) await this.armLineage();
  }

  /** The agent can take `n` more tasks: they go at once. */
  private grant(n: number): void {
    const session = this.sessions.current();
    if (!session) return;
    this.sessions.save({ ...session, credits: session.credits + n });
    this.dispatch();
  }

  /** Sends queued tasks, oldest first, never more than the agent's credits. */
  private dispatch(): void {
    const ws = this.currentSocket();
    if (!ws) return;
    for (;;) {
      const session = this.sessions.current();
      if (!session || session.phase !== 'ready' || session.credits <= 0) return;
      // Rounds bound the rows held in memory when an agent grants a very large credit.
      const rows = this.outbox.pending(Math.min(session.credits, DISPATCH_ROUND_ROWS));
      if (rows.length === 0) return;
      for (const frame of buildTaskFrames(rows, (id) => this.outbox.functionSpecJson(id))) {
        // A failed send leaves the rows undelivered; they go out on the next connection.
        if (!this.sendQuietly(ws, frame)) return;
      }
      if (this.traces.size > 0) for (const r of rows) traceHop(this.traces.get(r.task_id), 'hub.sent', Date.now());
      this.ctx.storage.transactionSync(() => {
        this.outbox.markDeliveredThrough(rows[rows.length - 1]!.seq);
        this.sessions.save({ ...session, credits: session.credits - rows.length });
      });
    }
  }

  /** ack → waiting-for-nodes, running → running; tasks already past that state are left alone. */
  private async advance(taskIds: string[], to: TaskState, at: number, journaled: boolean): Promise<void> {
    const states = await this.store.readStates(taskIds);
    const events: TransitionEvent[] = [];
    for (const s of states.values()) {
      if (s.state === to || !canTransition(s.state, to)) continue;
      events.push(transition(s.task_id, s.state, s.transitions, to, at).event);
    }
    // A journaled task is delivered even if a reconcile re-queued it meanwhile: do not send it twice.
    await this.store.saveTransitions(events, journaled ? () => this.outbox.markDelivered(taskIds) : undefined);
    this.provenance.record(events);
  }

  private async onResults(ws: WebSocket, results: TaskResult[]): Promise<void> {
    const traced = this.traces.size > 0 ? this.tracedResults(results) : [];
    // A result the endpoint stored as an object travels and is kept as its reference.
    const objects = results.map((r) => (r.status === 'success' && r.result_object ? r.result_object : null));
    const encoded = results.map((r, i) => (objects[i] ? JSON.stringify(resultRefDoc(objects[i])) : r.result === undefined ? null : JSON.stringify(r.result)));
    const storedLarge = await this.storeLargeResults(results, encoded);
    // With lineage on, each state with the facts a record takes from the store (group, function, attempts, workflow, campaign).
    const states = await this.store.readStates(results.map((r) => r.task_id), this.lineageOn);
    const deliveries = this.outbox.deliveries(results.map((r) => r.task_id));
    const at = nowSeconds();
    const outcomes: TaskOutcome[] = [];
    const extraAttempts: string[] = [];
    const events: TransitionEvent[] = [];
    // Lineage records built with the outcomes, from the endpoint's facts and what this frame read:
    // appended to the pending rows in the outcomes' transaction, without reading the tasks back.
    const records = new Map<string, TaskLineage>();
    const endpoint = this.lineageOn ? this.endpoint() : null;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      const s = states.get(r.task_id);
      if (!s) continue; // Unknown here: acknowledged below so the agent forgets it.
      const object = objects[i] ?? null;
      const large = object === null && encoded[i] !== null && isOverBytes(encoded[i]!, LIMITS.inlineResultBytes);
      if (isFinal(s.state) || (large && !storedLarge.has(r.task_id))) {
        extraAttempts.push(r.task_id);
        continue;
      }
      const moved = transition(r.task_id, s.state, s.transitions, r.status, at);
      states.set(r.task_id, { task_id: r.task_id, state: moved.state, transitions: moved.transitions });
      const outcome: TaskOutcome = {
        task_id: r.task_id,
        state: moved.state,
        transitions: moved.transitions,
        result_json: large ? null : encoded[i]!,
        result_ref: object ? objectResultRef(object.$ref) : large ? resultObjectKey(r.task_id) : null,
        exception_json: r.exception ? JSON.stringify(r.exception) : r.status === 'failed' ? JSON.stringify({ code: 'FERRY_FUNCTION_ERROR', name: 'Error', message: 'the task failed without an exception' }) : null,
        stdout: r.stdout === undefined ? null : r.stdout.slice(0, LIMITS.maxStdoutBytes),
        completion_t: at,
        // The executions lost before this one are kept with it, for the task's lineage record.
        execution_json: r.lost_attempts ? JSON.stringify({ ...r.execution, lost_attempts: r.lost_attempts }) : r.execution ? JSON.stringify(r.execution) : null,
        counts_attempt: true,
        // Executions the endpoint counted, deliveries the gateway made, or times the agent sent this
        // result (a re-send after a lost link or a gateway restart), whichever is most.
        reported_attempt: Math.max(r.execution?.attempt ?? 0, deliveries.get(r.task_id) ?? 0, r.delivery ?? 0),
      };
      outcomes.push(outcome);
      events.push(moved.event);
      // A result without facts (an older agent) or a store without them (Redis): the record is built
      // by flushLineage, from the store and the outbox row's payload.
      if (endpoint && s.facts && r.lineage) {
        // The task's record as finishTasks will leave it: no await between this frame's reads and its writes.
        const execution = r.execution || r.lost_attempts ? { ...r.execution, ...(r.lost_attempts ? { lost_attempts: r.lost_attempts } : {}) } : null;
        const source = { ...s.facts, task_id: r.task_id, state: moved.state, attempts: Math.max(s.facts.attempts + 1, outcome.reported_attempt), transitions: moved.transitions, completion_t: at, execution };
        records.set(r.task_id, lineageRecord(endpoint.owner, endpoint.endpoint_id, source, r.lineage, 'endpoint'));
      }
    }
    // A task with two results in this frame: the second counts one more attempt after the first's outcome.
    for (const id of extraAttempts) {
      const record = records.get(id);
      if (record) record.attempts++;
    }
    const report = await this.store.finishTasks(outcomes, extraAttempts, (stored) => {
      // A task that ended in an earlier frame has just counted another attempt in the store: a
      // pending record of it says one too few (one still in the outbox is built from the store).
      const finished = new Set(stored);
      const recounted = this.lineageOn ? extraAttempts.filter((id) => !finished.has(id) && !records.has(id)) : [];
      if (recounted.length > 0) this.lineagePending.countAttempt(recounted);
      this.retire(stored, records);
    });
    for (const id of storedLarge) this.largeResultsInFlight.delete(id);
    // Another frame (or a cancel) may have ended a task meanwhile: only the stored outcomes count.
    const stored = new Set(report.finished);
    this.provenance.record(events.filter((e) => stored.has(e.task_id)));
    for (const trace of traced) traceHop(trace, 'hub.finished', Date.now());
    this.waiters.wake(report.finished);
    for (const ids of chunkBySize(results.map((r) => r.task_id), TASK_FRAME_BUDGET)) this.sendQuietly(ws, JSON.stringify({ type: 'results_ack', task_ids: ids }));
    // Not awaited: frames are handled one at a time, and the next must not wait for an R2 write.
    if (this.lineageOn && this.pendingCount() >= LINEAGE_BATCH) this.ctx.waitUntil(this.flushFullSegments());
    await this.armLineage();
  }

  /** The traces of traced runs' results, each with the endpoint's hops and the frame's arrival added. */
  private tracedResults(results: readonly TaskResult[]): TraceHops[] {
    const at = Date.now();
    const out: TraceHops[] = [];
    for (const r of results) {
      const trace = this.traces.get(r.task_id);
      if (!trace || !r.trace) continue;
      trace.push(...r.trace);
      traceHop(trace, 'hub.results', at);
      out.push(trace);
    }
    return out;
  }

  /** Writes the full segments that wait, leaving fewer for the alarm; a failure is left to the alarm too. */
  private async flushFullSegments(): Promise<void> {
    try {
      await this.flushLineage(true);
    } catch (err) {
      logEvent('warn', 'lineage write failed; the alarm retries', { endpoint_id: this.endpoint()?.endpoint_id, error: err instanceof Error ? err.message : String(err) });
    }
  }

  // ---- the outbox with a remote store ----

  /** With a remote store, keeps an alarm while undelivered rows wait and an agent is connected. */
  private async armSweep(): Promise<void> {
    if (!this.remoteStore || this.currentSocket() === null || this.outbox.counts().queued === 0) return;
    if (this.sweepDueAt === 0) this.sweepDueAt = Date.now() + OUTBOX_SWEEP_MS;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > this.sweepDueAt) await this.ctx.storage.setAlarm(this.sweepDueAt);
  }

  /** When the next outbox sweep is due (ms); 0: unknown (after a wake), the next alarm sweeps. */
  private sweepDueAt = 0;

  /**
   * Drops outbox rows whose tasks are final or gone in the remote store (a crash between its write
   * and the outbox's leaves them), then re-sends what is still undelivered.
   */
  override async alarm(): Promise<void> {
    this.lineageAlarmAt = 0;
    if (!this.schemaReady) return;
    await this.flushLineage();
    if (!this.remoteStore) return;
    // The alarm also wakes for lineage every 100 ms under load: sweep only when a sweep is due.
    if (Date.now() >= this.sweepDueAt) {
      this.sweepDueAt = 0;
      await this.sweepOutbox(false);
      this.dispatch();
    }
    await this.armSweep();
    if (this.outbox.hasEnded() || this.lineagePending.hasAny()) await this.armLineage();
  }

  private async sweepOutbox(pendingOnly: boolean): Promise<void> {
    let afterSeq = 0;
    for (;;) {
      const rows = this.outbox.taskIdsAfter(afterSeq, SWEEP_CHUNK, pendingOnly);
      if (rows.length === 0) return;
      afterSeq = rows[rows.length - 1]!.seq;
      const ids = rows.map((r) => r.task_id);
      const states = await this.store.readStates(ids);
      const gone = ids.filter((id) => {
        const s = states.get(id);
        return !s || isFinal(s.state);
      });
      this.retire(gone);
    }
  }

  /**
   * Writes results over the inline limit to the object store before the frame's transaction, for
   * tasks not final yet. Returns the ids written; a result skipped here counts as an extra attempt.
   */
  private async storeLargeResults(results: TaskResult[], encoded: Array<string | null>): Promise<Set<string>> {
    const large = results.map((r, i) => ({ r, text: encoded[i] ?? null })).filter(({ text }) => text !== null && isOverBytes(text, LIMITS.inlineResultBytes));
    const written = new Set<string>();
    if (large.length === 0) return written;
    const states = await this.store.readStates(large.map(({ r }) => r.task_id));
    const toWrite = large.filter(({ r }) => {
      const s = states.get(r.task_id);
      if (!s || isFinal(s.state) || this.largeResultsInFlight.has(r.task_id) || written.has(r.task_id)) return false;
      written.add(r.task_id);
      this.largeResultsInFlight.add(r.task_id);
      return true;
    });
    try {
      await Promise.all(toWrite.map(({ r, text }) => this.env.OBJECTS.put(resultObjectKey(r.task_id), text!, { httpMetadata: { contentType: 'application/json' } })));
    } catch (err) {
      for (const id of written) this.largeResultsInFlight.delete(id);
      throw err;
    }
    return written;
  }
}

/** A ResultRef with its fields in a fixed order and nothing else. */
function resultRefDoc(ref: ResultRef): ResultRef {
  return { $ref: ref.$ref, size: ref.size, sha256: ref.sha256, content_type: ref.content_type };
}

function emptyOutcome(taskId: string): TaskOutcome {
  return {
    task_id: taskId,
    state: 'cancelled',
    transitions: {},
    result_json: null,
    result_ref: null,
    exception_json: null,
    stdout: null,
    completion_t: null,
    execution_json: null,
    counts_attempt: false,
    reported_attempt: 0,
  };
}
