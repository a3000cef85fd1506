// One Durable Object per endpoint. This class is its RPC surface (routes call it; every method
// checks the caller owns the endpoint, or is a guest it is shared with), its socket handlers and its
// alarm; the work is the collaborators': hub-state.ts (storage, tables, the endpoint record, the
// TaskStore), task-intake.ts (submissions), task-outcomes.ts (results, cancels, waiters, docs),
// agent-channel.ts (the agent's socket, reconcile, dispatch; agent-status.ts, outbox-sweep.ts),
// hub-events.ts (event streams), ../lineage/hub-lineage.ts (lineage records) and
// alarm-scheduler.ts (every timed duty on the one alarm).

import { DurableObject } from 'cloudflare:workers';
import type { EndpointDoc, EndpointStatus } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import type { StatusSample } from '../../protocol/task-list';
import { CLOSE_GATEWAY_RESTART } from '../../protocol/wire';
import type { AuditPage, GuestEndpointStatus } from '../../protocol/sharing-api';
import type { TaskLineage } from '../../provenance/prov-document';
import { registerHub } from '../drain';
import type { GatewayEnv } from '../env';
import { fail, ok, type HubReply } from '../hub-reply';
import type { HubLineage } from '../lineage/hub-lineage';
import type { LineageQuery } from '../lineage/lineage-index';
import type { TaskListFilter, TaskListPage } from '../task-store/port';
import { REVOKED_MESSAGE, type AgentChannel } from './agent-channel';
import type { AlarmScheduler } from './alarm-scheduler';
import { endpointDoc, type EndpointFields } from './endpoint-record';
import type { EventsPage, HubFilter } from './event-log';
import { EVENTS_SOCKET_PATH } from './event-subscribers';
import { AGENT_SOCKET_HEADERS, type RunOutcome, type Submission, type Submitted } from './hub-api';
import { EVENTS_NEED_SQLITE, type HubEvents } from './hub-events';
import { hubParts, type HubDuty } from './hub-parts';
import { nowSeconds, type HubState } from './hub-state';
import type { TaskIntake } from './task-intake';
import type { TaskOutcomes } from './task-outcomes';

export { AGENT_SOCKET_HEADERS, hubOf, type HubApi, type RunOutcome, type Submission, type Submitted } from './hub-api';

const NOT_FOUND = (what: string) => Response.json({ code: 'NOT_FOUND', message: `${what} not found` }, { status: 404 });

export class EndpointHub extends DurableObject<GatewayEnv> {
  private readonly state: HubState;
  /** Every timed duty of the hub on the one alarm. */
  private readonly alarms: AlarmScheduler<HubDuty>;
  private readonly lineageRecords: HubLineage;
  private readonly outcomes: TaskOutcomes;
  private readonly channel: AgentChannel;
  private readonly intake: TaskIntake;
  private readonly streams: HubEvents;

  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    ({ state: this.state, alarms: this.alarms, lineage: this.lineageRecords, outcomes: this.outcomes, channel: this.channel, intake: this.intake, events: this.streams } = hubParts(ctx, () => this.env));
    if (registerHub(ctx.id.toString())) this.drainForShutdown();
  }

  /** The gateway shuts down: agents reconnect later (1012), long polls answer with the task as it stands. */
  drainForShutdown(): void {
    this.channel.closeAll(CLOSE_GATEWAY_RESTART, 'gateway shutting down; reconnect');
    this.outcomes.waiters.wakeAll();
  }

  // ---- the endpoint record ----

  async register(owner: string, endpointId: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    if (!this.state.schemaReady) this.state.createSchema(() => this.lineageRecords.createSchema());
    return this.state.register(owner, endpointId, fields);
  }

  async update(owner: string, fields: EndpointFields): Promise<HubReply<EndpointDoc>> {
    const existing = this.state.owned(owner);
    return existing ? this.register(owner, existing.endpoint_id, fields) : fail('NOT_FOUND');
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
    return gen === record.secret_gen ? ok(record.secret_gen) : fail('TOKEN_REVOKED', REVOKED_MESSAGE);
  }

  /** Bumps the secret generation: the old secret and every access token minted from it stop working now, the agent included. */
  async revokeSecret(owner: string): Promise<HubReply<number>> {
    const record = this.state.owned(owner);
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    this.state.save({ ...record, secret_gen: record.secret_gen + 1 });
    this.channel.revoked();
    this.state.auditLog.append('secret_revoked', owner, { secret_generation: record.secret_gen + 1 });
    return ok(record.secret_gen + 1);
  }

  async describe(owner: string): Promise<HubReply<EndpointDoc>> {
    const record = this.state.owned(owner);
    return record ? ok(endpointDoc(record)) : fail('NOT_FOUND');
  }

  /** The owner's full status; a guest's (a user the endpoint is shared with): online and queue length only. */
  status(caller: string): Promise<HubReply<EndpointStatus | GuestEndpointStatus>> {
    return this.channel.status.forCaller(caller);
  }

  async remove(owner: string): Promise<HubReply<null>> {
    const record = this.state.owned(owner);
    if (!record) return fail('NOT_FOUND');
    this.state.save({ ...record, deleted: true });
    this.channel.endpointDeleted();
    return ok(null);
  }

  // ---- sharing and audit (sharing-guard.ts, audit-log.ts) ----

  /** The owner changed the endpoint's grants (or a group granted it): forget cached access, log it. */
  async sharingChanged(owner: string, detail: Record<string, unknown>): Promise<HubReply<null>> {
    if (!this.state.owned(owner, true)) return fail('NOT_FOUND', 'endpoint not found');
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
    return ok({ endpoint_id: record.endpoint_id, ...(await this.state.auditLog.page(cursor, limit, this.lineageRecords.segmentReader)) });
  }

  // ---- tasks ----

  submit(owner: string, submission: Submission): Promise<HubReply<Submitted>> {
    return this.intake.submit(owner, submission);
  }

  /** Submits one task and holds the answer until it ends or `waitMs` passes. */
  run(owner: string, submission: Submission, waitMs: number): Promise<HubReply<RunOutcome>> {
    return this.intake.run(owner, submission, waitMs);
  }

  async taskDoc(owner: string, taskId: string, waitMs: number): Promise<HubReply<string>> {
    if (!(await this.outcomes.mayTouch(owner, taskId))) return fail('NOT_FOUND', 'task not found');
    const { doc } = await this.outcomes.awaitDoc(taskId, waitMs);
    return doc === null ? fail('NOT_FOUND', 'task not found') : ok(doc);
  }

  /** Task docs as JSON text by id; ids that are not this endpoint's or not the owner's are left out. */
  taskDocs(owner: string, taskIds: readonly string[]): Promise<Record<string, string>> {
    return this.outcomes.docs(owner, taskIds);
  }

  async taskGroup(owner: string, taskGroupId: string): Promise<HubReply<Array<{ task_id: string; created_at: number }>>> {
    if (!this.state.owned(owner, true)) return fail('NOT_FOUND', 'task group not found');
    const tasks = await this.state.store.groupTasks(taskGroupId);
    return tasks === null ? fail('NOT_FOUND', 'task group not found') : ok(tasks);
  }

  /** A page of the endpoint's tasks, newest first, read below position `before` (null: from the newest). */
  async listTasks(owner: string, filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<HubReply<TaskListPage>> {
    if (!this.state.owned(owner, true)) return fail('NOT_FOUND', 'endpoint not found');
    return ok(await this.state.store.listTasks(filter, before, limit, budget));
  }

  /** Status reports of the last hour, oldest first. */
  async statusHistory(owner: string): Promise<HubReply<StatusSample[]>> {
    return this.state.owned(owner, true) ? ok(this.state.statusSamples.read(nowSeconds())) : fail('NOT_FOUND', 'endpoint not found');
  }

  /** Cancels a task that has not finished. Whichever the hub stores first, cancel or result, wins. */
  async cancel(owner: string, taskId: string): Promise<HubReply<string>> {
    return (await this.outcomes.mayTouch(owner, taskId)) ? this.outcomes.cancel(taskId) : fail('NOT_FOUND', 'task not found');
  }

  // ---- events (GET /v3/events; hub-events.ts) ----

  async events(owner: string, filter: HubFilter, after: number | null, limit: number, check: boolean): Promise<HubReply<EventsPage>> {
    const record = this.state.owned(owner, true);
    return record ? this.streams.page(record, filter, after, limit, check) : fail('NOT_FOUND', 'endpoint not found');
  }

  /** Whether any task of the owner's workflow was submitted here (a stream of the workflow then follows this hub). */
  async holdsWorkflow(owner: string, workflowId: string): Promise<boolean> {
    if (!this.state.owned(owner, true) || this.state.remoteStore) return false;
    return this.state.sql.exec('SELECT 1 FROM task_requests WHERE workflow_id = ? LIMIT 1', workflowId).toArray().length > 0;
  }

  // ---- lineage (../lineage/hub-lineage.ts) ----

  /** Lineage records of this endpoint's ended tasks (the owner's only). */
  async lineage(owner: string, query: LineageQuery): Promise<TaskLineage[]> {
    return this.state.owned(owner, true) ? this.lineageRecords.query(owner, query) : [];
  }

  async lineageCount(owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
    return this.state.owned(owner, true) ? this.lineageRecords.count(owner, workflowId, campaignId) : 0;
  }

  // ---- sockets (agent-channel.ts, event-subscribers.ts) and the alarm ----

  override async fetch(request: Request): Promise<Response> {
    const owner = request.headers.get(AGENT_SOCKET_HEADERS.owner) ?? '';
    if (new URL(request.url).pathname === EVENTS_SOCKET_PATH) {
      // An event stream's socket (routes/events.ts); tasks of a deleted endpoint stay watchable by their owner.
      if (!this.state.owned(owner, true)) return NOT_FOUND('endpoint');
      if (this.state.remoteStore) return Response.json(new FerryError('NOT_IMPLEMENTED', EVENTS_NEED_SQLITE).toBody(), { status: 501 });
      return this.state.subscribers.accept();
    }
    return this.channel.accept(request, owner);
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    return this.channel.message(ws, message);
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    return this.channel.closed(ws, code, reason);
  }

  override webSocketError(ws: WebSocket): Promise<void> {
    return this.channel.errored(ws);
  }

  override alarm(): Promise<void> {
    return this.alarms.fire();
  }
}
