// What every part of an EndpointHub shares: its storage and the tables over it, the endpoint record
// (cached), and the TaskStore the configuration names. Built once per instance (after a wake too);
// the collaborators (agent-channel.ts, task-outcomes.ts, task-intake.ts, ../lineage/hub-lineage.ts)
// hold it, the hub keeps the RPC surface.

import type { EndpointDoc } from '../../protocol/api';
import { lineageEnabled, taskStoreKind, type GatewayEnv } from '../env';
import { fail, ok, type HubReply } from '../hub-reply';
import { logEvent } from '../log';
import type { TaskStore } from '../task-store/port';
import { redisTaskStoreFor } from '../task-store/redis-task-store-for';
import { SqliteTaskStore } from '../task-store/sqlite-task-store';
import { AgentSessionStore } from './agent-session';
import { AuditLog } from './audit-log';
import { allowListOf, createEndpointSchema, endpointDoc, hasEndpointSchema, migrateEndpointSchema, readEndpoint, writeEndpoint, type EndpointFields, type EndpointRecord } from './endpoint-record';
import { ChangeCounter, migrateEventLog } from './event-log';
import { EventSubscribers } from './event-subscribers';
import { Outbox } from './outbox';
import { SharingGuard } from './sharing-guard';
import { StatusHistory } from './status-history';
import { SubmitKeys } from './submit-keys';
import { migrateSubmitter } from './submitter-column';

export function nowSeconds(): number {
  return Date.now() / 1000;
}

export class HubState {
  readonly sql: SqlStorage;
  readonly storage: DurableObjectStorage;
  /** Task state outside this object (Redis): the outbox may then hold rows of tasks already final. */
  readonly remoteStore: boolean;
  readonly lineageOn: boolean;
  readonly sqliteStore: SqliteTaskStore;
  readonly outbox: Outbox;
  readonly submitKeys: SubmitKeys;
  readonly sessions: AgentSessionStore;
  /** Positions of the event log (event-log.ts) and the streams told of each new one. */
  readonly changes: ChangeCounter;
  readonly subscribers: EventSubscribers;
  /** The last hour of status reports (the dashboard's chart). */
  readonly statusSamples: StatusHistory;
  /** Security events besides the tasks' (audit-log.ts). */
  readonly auditLog: AuditLog;
  /** Guests' grants, cached (sharing-guard.ts). */
  readonly guard: SharingGuard;
  /** Whether this object has its tables: an id nobody registered gets none. */
  schemaReady: boolean;
  private record: EndpointRecord | null | undefined;
  private taskStore: TaskStore | undefined;

  /** `envOf`: the object's env, read when used (a test swaps a binding on the instance). */
  constructor(
    readonly ctx: DurableObjectState,
    private readonly envOf: () => GatewayEnv,
  ) {
    const env = envOf();
    this.storage = ctx.storage;
    this.sql = ctx.storage.sql;
    this.subscribers = new EventSubscribers(ctx);
    this.changes = new ChangeCounter(this.sql, (position, ended) => this.subscribers.tick(position, ended));
    this.sqliteStore = new SqliteTaskStore(ctx.storage, this.changes);
    this.remoteStore = taskStoreKind(env) === 'redis';
    this.lineageOn = lineageEnabled(env);
    this.outbox = new Outbox(this.sql);
    this.submitKeys = new SubmitKeys(this.sql);
    this.sessions = new AgentSessionStore(this.sql);
    this.statusSamples = new StatusHistory(this.sql);
    this.auditLog = new AuditLog(this.sql, {
      bucket: env.OBJECTS,
      endpointId: () => this.endpoint()!.endpoint_id,
      transaction: (writes) => this.storage.transactionSync(writes),
      defer: (work) => ctx.waitUntil(work.catch((err: unknown) => logEvent('warn', 'audit segment write failed; its events wait in SQLite for the next batch', { error: String(err) }))),
    });
    this.guard = new SharingGuard(env);
    this.schemaReady = hasEndpointSchema(this.sql);
  }

  get env(): GatewayEnv {
    return this.envOf();
  }

  /** On wake: tables added since the endpoint was registered (`more`: the lineage tables, IF NOT EXISTS). */
  migrate(more: () => void): void {
    migrateEndpointSchema(this.sql);
    this.outbox.migrate();
    more();
    this.statusSamples.createSchema();
    migrateEventLog(this.sql);
    this.auditLog.createSchema();
    migrateSubmitter(this.sql);
  }

  /** At the first registration: every table, in one transaction. */
  createSchema(more: () => void): void {
    this.storage.transactionSync(() => {
      createEndpointSchema(this.sql);
      this.sqliteStore.createSchema();
      this.outbox.createSchema();
      this.sessions.createSchema();
      more();
      this.statusSamples.createSchema();
      migrateEventLog(this.sql);
      this.auditLog.createSchema();
      migrateSubmitter(this.sql);
    });
    this.schemaReady = true;
  }

  /** The TaskStore the configuration names; a Redis store is scoped to this hub's endpoint. */
  get store(): TaskStore {
    if (this.taskStore) return this.taskStore;
    if (!this.remoteStore) return (this.taskStore = this.sqliteStore);
    const endpointId = this.endpoint()?.endpoint_id;
    const store = redisTaskStoreFor(this.env, { ...(endpointId ? { endpointId } : {}), local: (writes) => this.storage.transactionSync(writes) });
    if (endpointId) this.taskStore = store;
    return store;
  }

  endpoint(): EndpointRecord | null {
    if (!this.schemaReady) return null;
    if (this.record === undefined) this.record = readEndpoint(this.sql);
    return this.record;
  }

  /** The record when `owner` owns it; tasks of a deleted endpoint stay readable by their owner. */
  owned(owner: string, allowDeleted = false): EndpointRecord | null {
    const record = this.endpoint();
    if (!record || record.owner !== owner || (record.deleted && !allowDeleted)) return null;
    return record;
  }

  /** The endpoint's record unless it was deleted (whoever asks: callers check who they are). */
  live(): EndpointRecord | null {
    const record = this.endpoint();
    return record && !record.deleted ? record : null;
  }

  /** Registers the endpoint, or updates its fields (the tables exist). */
  register(owner: string, endpointId: string, fields: EndpointFields): HubReply<EndpointDoc> {
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
    this.save(record);
    return ok(endpointDoc(record));
  }

  save(record: EndpointRecord): void {
    writeEndpoint(this.sql, record);
    this.record = record;
  }
}
