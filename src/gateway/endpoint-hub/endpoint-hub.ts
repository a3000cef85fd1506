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
import type { LineageQuery } from '../lineage/lineage-index';
import { HubLineage } from '../lineage/hub-lineage';
import { AlarmScheduler } from './alarm-scheduler';
import { HubState, nowSeconds } from './hub-state';
import { registerHub } from '../drain';
import { heartbeatSeconds, type GatewayEnv } from '../env';
import { fail, ok, type HubReply } from '../hub-reply';
import { validationError } from '../http-errors';
import { logEvent } from '../log';
import { randomSuffix, taskSuffixes } from '../random-ids';
import type { TaskListFilter, TaskListPage, TaskOutcome, TaskRecord } from '../task-store/port';
import { isOverBytes } from '../text-size';
import type { AgentSession } from './agent-session';
import { allowListOf, endpointDoc, type EndpointFields, type EndpointRecord } from './endpoint-record';
import { lineageRecord } from '../lineage/lineage-capture';
import { FrameOrder } from './frame-order';
import type { KeyedSubmission } from './submit-keys';
import { buildTaskFrames, TASK_FRAME_BUDGET } from './task-frames';
import { TaskWaiters } from './task-waiters';
import { objectResultRef, resultObjectKey, spilledResultKey, taskDocJson } from './task-doc-json';
import { changedTasks, readStatusEvent, recentStart, statusKey, writeStatusEvent, type EventsPage, type HubEvent, type HubFilter } from './event-log';
import { EVENTS_SOCKET_PATH } from './event-subscribers';
import type { ForeignFunctions } from './sharing-guard';
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
const EMPTY_REPORT: StatusReport = { total_workers: 0, idle_workers: 0, pending_tasks: 0, outstanding_tasks: 0, managers: 0, blocks: 0 };

function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // Already closing or closed: nothing left to do.
  }
}

export class EndpointHub extends DurableObject<GatewayEnv> {
  /** Storage, tables, the endpoint record and the task store, shared with the collaborators. */
  private readonly state: HubState;
  /** Every timed duty of the hub on the one alarm. */
  private readonly alarms: AlarmScheduler<'lineage' | 'sweep'>;
  private readonly lineageRecords: HubLineage;
  /** Keyed submissions being stored, by owner and key. */
  private readonly keyedInFlight = new Map<string, Promise<HubReply<KeyedSubmission>>>();
  /** Traced runs' hops by task id, from the store until the run answers (src/protocol/trace.ts). */
  private readonly traces = new Map<string, TraceHops>();
  private readonly waiters = new TaskWaiters();
  /** Tasks whose large result is being written to the object store by an earlier frame. */
  private readonly largeResultsInFlight = new Set<string>();
  /** undefined: not looked up since the object woke up. */
  private agentSocket: WebSocket | null | undefined;
  /** Frames are handled one at a time, in order, even across awaits of a remote store. */
  private frameChain: Promise<void> = Promise.resolve();
  /** Per socket: its numbered frames put back in the order sent (lost with the instance; the seq due is in the attachment). */
  private readonly frameOrders = new WeakMap<WebSocket, FrameOrder<string>>();

  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    this.state = new HubState(ctx, () => this.env);
    this.alarms = new AlarmScheduler(ctx.storage, [
      ['lineage', () => this.lineageDuty()],
      ['sweep', () => this.sweepDuty()],
    ]);
    this.lineageRecords = new HubLineage(this.state, (at) => this.alarms.schedule('lineage', at));
    // An id nobody registered gets no tables: probing random ids leaves nothing behind.
    // Endpoints registered before lineage existed get its tables on wake (IF NOT EXISTS).
    if (this.state.schemaReady) this.state.migrate(() => this.lineageRecords.createSchema());
    if (registerHub(ctx.id.toString())) this.drainForShutdown();
  }

  /** The gateway shuts down: agents reconnect later (1012), long polls answer with the task as it stands. */
  drainForShutdown(): void {
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, CLOSE_GATEWAY_RESTART, 'gateway shutting down; reconnect');
    this.agentSocket = null;
    this.waiters.wakeAll();
  }

  // ---- the endpoint record ----

  async register(owner: string, endpointId: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    if (!this.state.schemaReady) this.state.createSchema(() => this.lineageRecords.createSchema());
    const existing = this.state.endpoint();
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
    this.state.save(record);
    return ok(endpointDoc(record));
  }

  async update(owner: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    const existing = this.state.owned(owner);
    if (!existing) return fail('NOT_FOUND');
    return this.register(owner, existing.endpoint_id, fields);
  }

  /** The current secret generation, which a freshly minted secret carries. */
  async secretGeneration(owner: string): Promise<HubReply<number>> {
    const record = this.state.owned(owner);
    return record ? ok(record.secret_gen) : fail('NOT_FOUND', 'endpoint not found');
  }

  /** Whether a secret or access token of generation `gen` is still good for this endpoint. */
  async checkSecret(owner: string, endpointId: string, gen: number): Promise<HubReply<number>> {
    const record = this.state.owned(owner);
    if (!record || record.endpoint_id !== endpointId) return fail('NOT_FOUND', 'endpoint not found');
    if (gen !== record.secret_gen) return fail('TOKEN_REVOKED', REVOKED_MESSAGE);
    return ok(record.secret_gen);
  }

  /**
   * Bumps the secret generation: the old secret and every access token minted from it stop working
   * now, and the connected agent (authenticated with one of them) is refused and disconnected.
   */
  async revokeSecret(owner: string): Promise<HubReply<number>> {
    const record = this.state.owned(owner);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    const bumped = { ...record, secret_gen: record.secret_gen + 1 };
    this.state.save(bumped);
    for (const ws of this.agentSockets()) this.refuse(ws, 'TOKEN_REVOKED', REVOKED_MESSAGE, CLOSE.revoked);
    this.agentSocket = null;
    this.noteStatus();
    this.state.auditLog.append('secret_revoked', owner, { secret_generation: bumped.secret_gen });
    return ok(bumped.secret_gen);
  }

  async describe(owner: string): Promise<HubReply<EndpointDoc>> {
    const record = this.state.owned(owner);
    return record ? ok(endpointDoc(record)) : fail('NOT_FOUND');
  }

  /** The owner's full status; a guest's (a user the endpoint is shared with): online and queue length only. */
  async status(caller: string): Promise<HubReply<EndpointStatus | GuestEndpointStatus>> {
    if (this.state.owned(caller)) return ok(this.currentStatus());
    const record = this.state.live();
    if (!record || !(await this.state.guard.isGuest(record, caller))) {
      if (record) this.state.auditLog.refused(caller, { action: 'status', reason: 'not_shared' });
      return fail('NOT_FOUND');
    }
    const full = this.currentStatus();
    return ok({ status: full.status, details: { queue_length: this.state.outbox.counts().queued + full.details.pending_tasks } });
  }

  // ---- sharing and audit (sharing-guard.ts, audit-log.ts) ----

  /** The owner changed the endpoint's grants (or a group granted it): forget cached access, log it. */
  async sharingChanged(owner: string, detail: Record<string, unknown>): Promise<HubReply<null>> {
    const record = this.state.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    this.state.guard.access.forgetOwner(owner);
    this.state.auditLog.append('sharing_changed', owner, detail);
    return ok(null);
  }

  /** The owner revoked a key that could reach this endpoint, or all their tokens: logged here. */
  async credentialRevoked(owner: string, kind: 'key_revoked' | 'tokens_revoked', detail: Record<string, unknown>): Promise<HubReply<null>> {
    if (!this.state.owned(owner)) return fail('NOT_FOUND', 'endpoint not found');
    this.state.auditLog.append(kind, owner, detail);
    return ok(null);
  }

  /** A page of the audit log: the owner's only (a guest or a stranger gets 404). */
  async audit(owner: string, cursor: string | undefined, limit: number): Promise<HubReply<AuditPage>> {
    const record = this.state.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    // Tasks that ended are in their lineage records before the page is read.
    await this.lineageRecords.flush();
    const page = await this.state.auditLog.page(cursor, limit, this.lineageRecords.segmentReader);
    return ok({ endpoint_id: record.endpoint_id, ...page });
  }

  private currentStatus(): EndpointStatus {
    const session = this.state.sessions.current();
    const last = this.state.sessions.lastStatus();
    const lastSignOfLife = Math.max(last?.last_heartbeat ?? 0, session?.hello_at ?? 0);
    const connected = this.currentSocket() !== null && (session?.phase === 'held' || session?.phase === 'ready');
    const online = connected && nowSeconds() - lastSignOfLife <= 3 * heartbeatSeconds(this.env);
    return { status: online ? 'online' : 'offline', details: { ...(last?.report ?? EMPTY_REPORT), last_heartbeat: last?.last_heartbeat ?? null } };
  }

  async remove(owner: string): Promise<HubReply<null>> {
    const record = this.state.owned(owner);
    if (!record) return fail('NOT_FOUND');
    const deleted = { ...record, deleted: true };
    this.state.save(deleted);
    const session = this.state.sessions.current();
    if (session) this.state.sessions.save({ ...session, phase: 'closed' });
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
    const stored = this.state.live() ? this.state.submitKeys.find(key, nowSeconds()) : null;
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
    const record = this.state.live();
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    // The owner's own functions (the common case) pass without a lookup; a guest's grant is cached.
    if (record.owner !== owner || submission.foreign) {
      const refused = await this.state.guard.check(record, owner, submission.functions.map((f) => f.function_uuid), submission.foreign);
      if (refused) {
        this.state.auditLog.refused(owner, { action: 'submit', reason: refused.reason, ...(refused.function_uuid ? { function_uuid: refused.function_uuid } : {}) });
        return refused.refusal;
      }
      const ref = record.owner !== owner ? this.state.guard.objectRefIn(submission.tasks) : null;
      if (ref !== null) {
        this.state.auditLog.refused(owner, { action: 'submit', reason: 'object_ref' });
        return fail('FORBIDDEN', 'a guest passes data inline or as file:// references: objects are read with the endpoint owner\'s credentials', { reason: 'guest_object_ref' });
      }
    }
    if (submission.key_id !== undefined) this.state.auditLog.keyUsed(owner, submission.key_id);
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
      if (!(await this.state.store.groupExists(groupId))) return fail('NOT_FOUND', 'task group not found');
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
    await this.state.store.createTasks(
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
        this.state.outbox.saveFunctions(submission.functions);
        this.state.outbox.enqueue(outboxRows);
        if (keyed) {
          this.state.submitKeys.record(keyed.key, { fingerprint: keyed.fingerprint, request_id: submission.request_id, task_group_id: groupId, task_ids: taskIds }, createdAt);
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
    if (!this.state.owned(owner, true) && !(await this.submittedBy(owner, [taskId])).has(taskId)) return fail('NOT_FOUND', 'task not found');
    const { doc } = await this.awaitDoc(taskId, waitMs);
    return doc === null ? fail('NOT_FOUND', 'task not found') : ok(doc);
  }

  /** The ids among `taskIds` that `guest` submitted (a guest's tasks are theirs to read and cancel). */
  private async submittedBy(guest: string, taskIds: readonly string[]): Promise<Set<string>> {
    if (!this.state.schemaReady || taskIds.length === 0) return new Set();
    const records = await this.state.store.readTasks(taskIds);
    return new Set(records.filter((r) => r.submitter === guest).map((r) => r.task_id));
  }

  /** Task docs as JSON text by id; ids that are not this endpoint's or not the owner's are left out. */
  async taskDocs(owner: string, taskIds: readonly string[]): Promise<Record<string, string>> {
    const record = this.state.owned(owner, true);
    const endpointId = this.state.endpoint()?.endpoint_id;
    if (!endpointId) return {};
    let mine = taskIds.filter((id) => endpointOfId(id) === endpointId);
    // A guest reads the tasks they submitted.
    if (!record) {
      const theirs = await this.submittedBy(owner, mine);
      mine = mine.filter((id) => theirs.has(id));
    }
    const records = await this.state.store.readTasks(mine);
    const docs = await Promise.all(records.map((r) => this.encodeDoc(r)));
    const out: Record<string, string> = {};
    for (let i = 0; i < records.length; i++) out[records[i]!.task_id] = docs[i]!;
    return out;
  }

  async taskGroup(owner: string, taskGroupId: string): Promise<HubReply<Array<{ task_id: string; created_at: number }>>> {
    if (!this.state.owned(owner, true)) return fail('NOT_FOUND', 'task group not found');
    const tasks = await this.state.store.groupTasks(taskGroupId);
    return tasks === null ? fail('NOT_FOUND', 'task group not found') : ok(tasks);
  }

  /** A page of the endpoint's tasks, newest first, read below position `before` (null: from the newest). */
  async listTasks(owner: string, filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<HubReply<TaskListPage>> {
    const record = this.state.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    return ok(await this.state.store.listTasks(filter, before, limit, budget));
  }

  /** Status reports of the last hour, oldest first. */
  async statusHistory(owner: string): Promise<HubReply<StatusSample[]>> {
    if (!this.state.owned(owner, true)) return fail('NOT_FOUND', 'endpoint not found');
    return ok(this.state.statusSamples.read(nowSeconds()));
  }

  /** Cancels a task that has not finished. Whichever the hub stores first, cancel or result, wins. */
  async cancel(owner: string, taskId: string): Promise<HubReply<string>> {
    if (!this.state.owned(owner, true) && !(await this.submittedBy(owner, [taskId])).has(taskId)) return fail('NOT_FOUND', 'task not found');
    const state = (await this.state.store.readStates([taskId])).get(taskId);
    if (!state) return fail('NOT_FOUND', 'task not found');
    if (isFinal(state.state)) return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${state.state}`);
    const moved = transition(taskId, state.state, state.transitions, 'cancelled', nowSeconds());
    const delivered = this.state.outbox.lookup([taskId]).get(taskId) === true;
    const outcome: TaskOutcome = { ...emptyOutcome(taskId), state: moved.state, transitions: moved.transitions, completion_t: moved.event.at };
    const report = await this.state.store.finishTasks([outcome], [], (finished) => this.lineageRecords.retire(finished));
    await this.lineageRecords.arm();
    // A result stored between the read above and this write wins: the cancel is refused.
    if (report.finished.length === 0) {
      const now = (await this.state.store.readStates([taskId])).get(taskId);
      return fail('TASK_ALREADY_FINISHED', `task ${taskId} is already ${now?.state ?? 'finished'}`);
    }
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
    const record = this.state.owned(owner, true);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    if (this.state.remoteStore) return fail('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE);
    // Read from storage, not the counter's memory: what is committed is what can be read.
    const head = this.state.changes.stored();
    if (after !== null && after > head) return fail('VALIDATION_ERROR', 'Last-Event-ID is not an event id of this stream');
    if (check && filter.kind === 'task_group' && (endpointOfId(filter.task_group_id) !== record.endpoint_id || !(await this.state.store.groupExists(filter.task_group_id)))) {
      return fail('NOT_FOUND', 'task group not found');
    }
    if (check && filter.kind === 'tasks') {
      const states = await this.state.store.readStates(filter.task_ids);
      if (states.size < filter.task_ids.length) return fail('NOT_FOUND', 'task not found', { task_id: filter.task_ids.find((id) => !states.has(id)) });
    }
    const start = after ?? (filter.kind === 'endpoint' ? recentStart(this.state.sql, EVENTS_LIMITS.endpointRecentTasks) : 0);
    const page = changedTasks(this.state.sql, filter, start, head, limit);
    const docs = await Promise.all(page.tasks.map((t) => this.encodeDoc(t.record)));
    const events: HubEvent[] = page.tasks.map((t, i) => ({ seq: t.seq, type: 'task', data: docs[i]! }));
    if (filter.kind === 'endpoint') {
      const status = readStatusEvent(this.state.sql);
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
    if (!this.state.owned(owner, true) || this.state.remoteStore) return false;
    return this.state.sql.exec('SELECT 1 FROM task_requests WHERE workflow_id = ? LIMIT 1', workflowId).toArray().length > 0;
  }

  /** Stamps a status event when what it shows changed (online, workers, blocks) and tells the streams. */
  private noteStatus(): void {
    if (!this.state.schemaReady || this.state.remoteStore) return;
    const status = this.currentStatus();
    const last = readStatusEvent(this.state.sql);
    if (last && statusKey(last.status) === statusKey(status)) return;
    writeStatusEvent(this.state.sql, this.state.changes.next(), status);
    this.state.changes.committed(true);
  }

  /** The agent's socket (and sockets it replaced that are closing), not the event streams'. */
  private agentSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((ws) => !this.state.subscribers.isSubscriber(ws));
  }

  // ---- lineage (../lineage/hub-lineage.ts) ----

  /** Lineage records of this endpoint's ended tasks (the owner's only). */
  async lineage(owner: string, query: LineageQuery): Promise<TaskLineage[]> {
    return this.state.owned(owner, true) ? this.lineageRecords.query(owner, query) : [];
  }

  async lineageCount(owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
    return this.state.owned(owner, true) ? this.lineageRecords.count(owner, workflowId, campaignId) : 0;
  }

  private async awaitDoc(taskId: string, waitMs: number): Promise<{ record: TaskRecord | null; doc: string | null }> {
    let record = (await this.state.store.readTasks([taskId]))[0] ?? null;
    if (record && !isFinal(record.state) && waitMs > 0) {
      await this.waiters.wait(taskId, waitMs);
      record = (await this.state.store.readTasks([taskId]))[0] ?? null;
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
    return taskDocJson(record, this.state.endpoint()!.endpoint_id, result);
  }

  // ---- the agent socket ----

  override async fetch(request: Request): Promise<Response> {
    const owner = request.headers.get(AGENT_SOCKET_HEADERS.owner) ?? '';
    if (new URL(request.url).pathname === EVENTS_SOCKET_PATH) {
      // An event stream's socket (routes/events.ts); tasks of a deleted endpoint stay watchable by their owner.
      if (!this.state.owned(owner, true)) return Response.json({ code: 'NOT_FOUND', message: 'endpoint not found' }, { status: 404 });
      if (this.state.remoteStore) return Response.json(new FerryError('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE).toBody(), { status: 501 });
      return this.state.subscribers.accept();
    }
    const record = this.state.owned(owner);
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
      this.state.sessions.save(session);
      this.state.sessions.clearHeld();
    });
    this.agentSocket = server;
    return new Response(null, { status: 101, webSocket: client });
  }

  private currentSocket(): WebSocket | null {
    const session = this.state.sessions.current();
    if (!session || session.phase === 'closed') return null;
    if (this.agentSocket === undefined) {
      this.agentSocket = this.agentSockets().find((ws) => (ws.deserializeAttachment() as SocketTag | null)?.session_id === session.session_id) ?? null;
    }
    if (this.agentSocket && this.agentSocket.readyState !== WebSocket.OPEN) return null;
    return this.agentSocket;
  }

  private isCurrent(ws: WebSocket): AgentSession | null {
    const session = this.state.sessions.current();
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
    logEvent('warn', 'agent refused', { endpoint_id: this.state.endpoint()?.endpoint_id, code, message });
    this.sendQuietly(ws, JSON.stringify({ type: 'refuse', code, message }));
    closeQuietly(ws, closeCode, message);
    const session = this.state.sessions.current();
    if (session && this.isCurrent(ws)) this.state.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (this.state.subscribers.isSubscriber(ws)) return Promise.resolve(); // streams only listen
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
        this.state.sessions.saveStatus({ report: frame.report, last_heartbeat: at });
        this.state.statusSamples.record(frame.report, at);
        this.noteStatus();
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (this.state.subscribers.isSubscriber(ws)) return this.state.subscribers.gone(ws);
    // Echo the close; the runtime may already consider the socket closed and throw.
    closeQuietly(ws, code === 1005 || code === 1006 || code === 1015 ? CLOSE.normal : code, reason);
    this.onSocketGone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    if (this.state.subscribers.isSubscriber(ws)) return this.state.subscribers.gone(ws);
    closeQuietly(ws, 1011, 'socket error');
    this.onSocketGone(ws);
  }

  /** Delivered tasks stay delivered: the next hello's reconcile decides what the agent still holds. */
  private onSocketGone(ws: WebSocket): void {
    const session = this.isCurrent(ws);
    if (session) this.state.sessions.save({ ...session, phase: 'closed' });
    if (this.agentSocket === ws) this.agentSocket = null;
    this.noteStatus();
  }

  private async onHello(ws: WebSocket, session: AgentSession, protocolVersion: number, heldFrames: number): Promise<void> {
    if (protocolVersion !== PROTOCOL_VERSION) {
      return this.refuse(ws, 'UNSUPPORTED_PROTOCOL', `the agent speaks protocol version ${protocolVersion}, this gateway speaks version ${PROTOCOL_VERSION}`, CLOSE.unsupportedProtocol);
    }
    const record = this.state.endpoint()!;
    this.sendQuietly(ws, JSON.stringify({ type: 'welcome', protocol_version: PROTOCOL_VERSION, endpoint_id: record.endpoint_id, heartbeat_s: heartbeatSeconds(this.env) }));
    const next: AgentSession = { ...session, phase: heldFrames > 0 ? 'held' : 'ready', held_remaining: heldFrames, hello_at: nowSeconds() };
    this.state.sessions.save(next);
    this.noteStatus();
    if (next.phase === 'ready') {
      await this.reconcile(ws, []);
      this.dispatch();
    }
  }

  private async onHeld(ws: WebSocket, session: AgentSession, taskIds: string[]): Promise<void> {
    const remaining = session.held_remaining - 1;
    this.ctx.storage.transactionSync(() => {
      this.state.sessions.addHeld(taskIds);
      this.state.sessions.save({ ...session, held_remaining: remaining, phase: remaining > 0 ? 'held' : 'ready' });
    });
    if (remaining > 0) return;
    await this.reconcile(ws, this.state.sessions.takeHeld());
    this.dispatch();
  }

  /**
   * After a hello: a task delivered here that the agent does not hold was lost on the way or with
   * the agent, and goes back to the queue; a held task that is final here (or unknown) is dropped by
   * the agent through a cancel frame; a held task still open here counts as delivered.
   */
  private async reconcile(ws: WebSocket, heldIds: readonly string[]): Promise<void> {
    const held = new Set(heldIds);
    const lapsed = this.state.outbox.deliveredTaskIds().filter((id) => !held.has(id));
    const [lapsedStates, heldStates] = await Promise.all([this.state.store.readStates(lapsed), this.state.store.readStates(heldIds)]);
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
    await this.state.store.saveTransitions(events, () => {
      this.state.outbox.markUndelivered(lapsed);
      this.state.outbox.markDelivered(keep);
      this.lineageRecords.retire(gone);
      this.lineageRecords.retire(drop);
    });
    if (this.state.remoteStore) await this.sweepOutbox(true);
    for (const ids of chunkBySize(drop, TASK_FRAME_BUDGET)) this.sendQuietly(ws, JSON.stringify({ type: 'cancel', task_ids: ids }));
    if (gone.length > 0 || drop.length > 0) await this.lineageRecords.arm();
  }

  /** The agent can take `n` more tasks: they go at once. */
  private grant(n: number): void {
    const session = this.state.sessions.current();
    if (!session) return;
    this.state.sessions.save({ ...session, credits: session.credits + n });
    this.dispatch();
  }

  /** Sends queued tasks, oldest first, never more than the agent's credits. */
  private dispatch(): void {
    const ws = this.currentSocket();
    if (!ws) return;
    for (;;) {
      const session = this.state.sessions.current();
      if (!session || session.phase !== 'ready' || session.credits <= 0) return;
      // Rounds bound the rows held in memory when an agent grants a very large credit.
      const rows = this.state.outbox.pending(Math.min(session.credits, DISPATCH_ROUND_ROWS));
      if (rows.length === 0) return;
      for (const frame of buildTaskFrames(rows, (id) => this.state.outbox.functionSpecJson(id))) {
        // A failed send leaves the rows undelivered; they go out on the next connection.
        if (!this.sendQuietly(ws, frame)) return;
      }
      if (this.traces.size > 0) for (const r of rows) traceHop(this.traces.get(r.task_id), 'hub.sent', Date.now());
      this.ctx.storage.transactionSync(() => {
        this.state.outbox.markDeliveredThrough(rows[rows.length - 1]!.seq);
        this.state.sessions.save({ ...session, credits: session.credits - rows.length });
      });
    }
  }

  /** ack → waiting-for-nodes, running → running; tasks already past that state are left alone. */
  private async advance(taskIds: string[], to: TaskState, at: number, journaled: boolean): Promise<void> {
    const states = await this.state.store.readStates(taskIds);
    const events: TransitionEvent[] = [];
    for (const s of states.values()) {
      if (s.state === to || !canTransition(s.state, to)) continue;
      events.push(transition(s.task_id, s.state, s.transitions, to, at).event);
    }
    // A journaled task is delivered even if a reconcile re-queued it meanwhile: do not send it twice.
    await this.state.store.saveTransitions(events, journaled ? () => this.state.outbox.markDelivered(taskIds) : undefined);
  }

  private async onResults(ws: WebSocket, results: TaskResult[]): Promise<void> {
    const traced = this.traces.size > 0 ? this.tracedResults(results) : [];
    // A result the endpoint stored as an object travels and is kept as its reference.
    const objects = results.map((r) => (r.status === 'success' && r.result_object ? r.result_object : null));
    const encoded = results.map((r, i) => (objects[i] ? JSON.stringify(resultRefDoc(objects[i])) : r.result === undefined ? null : JSON.stringify(r.result)));
    const storedLarge = await this.storeLargeResults(results, encoded);
    // With lineage on, each state with the facts a record takes from the store (group, function, attempts, workflow, campaign).
    const states = await this.state.store.readStates(results.map((r) => r.task_id), this.state.lineageOn);
    const deliveries = this.state.outbox.deliveries(results.map((r) => r.task_id));
    const at = nowSeconds();
    const outcomes: TaskOutcome[] = [];
    const extraAttempts: string[] = [];
    // Lineage records built with the outcomes, from the endpoint's facts and what this frame read:
    // appended to the pending rows in the outcomes' transaction, without reading the tasks back.
    const records = new Map<string, TaskLineage>();
    const endpoint = this.state.lineageOn ? this.state.endpoint() : null;
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
    const report = await this.state.store.finishTasks(outcomes, extraAttempts, (stored) => {
      // A task that ended in an earlier frame has just counted another attempt in the store: a
      // pending record of it says one too few (one still in the outbox is built from the store).
      const finished = new Set(stored);
      const recounted = this.state.lineageOn ? extraAttempts.filter((id) => !finished.has(id) && !records.has(id)) : [];
      if (recounted.length > 0) this.lineageRecords.pending.countAttempt(recounted);
      this.lineageRecords.retire(stored, records);
    });
    for (const id of storedLarge) this.largeResultsInFlight.delete(id);
    for (const trace of traced) traceHop(trace, 'hub.finished', Date.now());
    // Another frame (or a cancel) may have ended a task meanwhile: only the stored outcomes count.
    this.waiters.wake(report.finished);
    for (const ids of chunkBySize(results.map((r) => r.task_id), TASK_FRAME_BUDGET)) this.sendQuietly(ws, JSON.stringify({ type: 'results_ack', task_ids: ids }));
    // Not awaited: frames are handled one at a time, and the next must not wait for an R2 write.
    await this.lineageRecords.afterResults();
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

  // ---- the outbox with a remote store ----

  /** With a remote store, keeps an alarm while undelivered rows wait and an agent is connected. */
  private armSweep(): Promise<void> {
    if (!this.state.remoteStore || this.currentSocket() === null || this.state.outbox.counts().queued === 0) return Promise.resolve();
    return this.alarms.schedule('sweep', Date.now() + OUTBOX_SWEEP_MS);
  }

  override alarm(): Promise<void> {
    return this.alarms.fire();
  }

  /**
   * The sweep duty, with a remote store: drops outbox rows whose tasks are final or gone in the
   * remote store (a crash between its write and the outbox's leaves them), then re-sends what is
   * still undelivered.
   */
  private async sweepDuty(): Promise<void> {
    if (!this.state.schemaReady || !this.state.remoteStore) return;
    await this.sweepOutbox(false);
    this.dispatch();
    await this.armSweep();
    if (this.lineageRecords.waiting()) await this.lineageRecords.arm();
  }

  /** The lineage duty: writes the records that wait; with a remote store, due again while some still wait. */
  private async lineageDuty(): Promise<void> {
    if (!this.state.schemaReady) return;
    await this.lineageRecords.flush();
    if (this.state.remoteStore && this.lineageRecords.waiting()) await this.lineageRecords.arm();
  }

  private async sweepOutbox(pendingOnly: boolean): Promise<void> {
    let afterSeq = 0;
    for (;;) {
      const rows = this.state.outbox.taskIdsAfter(afterSeq, SWEEP_CHUNK, pendingOnly);
      if (rows.length === 0) return;
      afterSeq = rows[rows.length - 1]!.seq;
      const ids = rows.map((r) => r.task_id);
      const states = await this.state.store.readStates(ids);
      const gone = ids.filter((id) => {
        const s = states.get(id);
        return !s || isFinal(s.state);
      });
      this.lineageRecords.retire(gone);
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
    const states = await this.state.store.readStates(large.map(({ r }) => r.task_id));
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
