// One Durable Object per owner (`owner:<sub>`): the strongly consistent registry of the owner's
// functions and the list of the owner's endpoints (ids by name). Being per owner, it only ever
// holds one owner's things, so a lookup in the caller's registry is the ownership check.

import { DurableObject } from 'cloudflare:workers';
import type { FunctionDoc, Runtime } from '../protocol/api';
import type { KeyDoc } from '../protocol/auth-api';
import type { TaskLineage } from '../provenance/prov-document';
import { AuthTables, type KeyLookup } from './auth/auth-tables';
import type { GatewayEnv, RateLimits } from './env';
import { LineageIndex, type LineageQuery } from './lineage/lineage-index';
import { putSegment, r2SegmentReader } from './lineage/lineage-segments';
import { fits, type WindowCounts } from './rate-limit/rate-limit';
import { SharingTables, type Grantee, type GuestAccess } from './sharing/sharing-tables';
import { SHARING_LIMITS, type EndpointGrant, type FunctionShares, type GrantFunctions, type GroupDoc } from '../protocol/sharing-api';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS functions (
     function_uuid TEXT PRIMARY KEY, function_name TEXT NOT NULL, function_code TEXT NOT NULL, runtime TEXT NOT NULL,
     serde TEXT, description TEXT, created_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS endpoints (endpoint_id TEXT PRIMARY KEY, endpoint_name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)`,
  // The owner's submission counters per rate-limit window (src/gateway/rate-limit/).
  `CREATE TABLE IF NOT EXISTS rate_windows (window_start REAL PRIMARY KEY, requests INTEGER NOT NULL, tasks INTEGER NOT NULL)`,
  // Every endpoint the owner ever registered, deleted ones too: their hubs keep their tasks' lineage.
  `CREATE TABLE IF NOT EXISTS lineage_endpoints (endpoint_id TEXT PRIMARY KEY, created_at TEXT NOT NULL)`,
  // Registries from before lineage_endpoints: the endpoints they still list (deleted ones are gone).
  `INSERT OR IGNORE INTO lineage_endpoints (endpoint_id, created_at) SELECT endpoint_id, created_at FROM endpoints`,
];

export interface FunctionRegistration {
  function_uuid: string;
  function_name: string;
  function_code: string;
  runtime: Runtime;
  serde: string | null;
  description: string | null;
}

export function registryOf(env: GatewayEnv, owner: string): DurableObjectStub<Registry> {
  return env.REGISTRY.get(env.REGISTRY.idFromName(`owner:${owner}`));
}

export class Registry extends DurableObject<GatewayEnv> {
  private readonly sql: SqlStorage;
  /** Task messages the owner ingested from elsewhere (POST /v3/provenance/events). */
  private readonly lineageIndex: LineageIndex;
  /** The owner's keys and token not-before (src/gateway/auth/). */
  private readonly auth: AuthTables;
  /** The owner's groups, endpoint grants and function shares (src/gateway/sharing/). */
  private readonly sharing: SharingTables;

  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    for (const statement of SCHEMA) this.sql.exec(statement);
    this.lineageIndex = new LineageIndex(this.sql);
    this.lineageIndex.createSchema();
    this.auth = new AuthTables(this.sql);
    this.auth.createSchema();
    this.sharing = new SharingTables(this.sql);
    this.sharing.createSchema();
  }

  // Sharing (src/gateway/sharing/): groups, grants of endpoints, shares of functions.
  /** Creates or replaces a group; null when the owner holds as many groups as allowed. Also the endpoints granted to it. */
  async putGroup(name: string, members: readonly string[]): Promise<{ group: GroupDoc; endpoints: string[] } | null> {
    if (!this.sharing.group(name) && this.sharing.groupCount() >= SHARING_LIMITS.maxGroups) return null;
    const group = this.ctx.storage.transactionSync(() => this.sharing.putGroup(name, members, Date.now()));
    return { group, endpoints: this.sharing.endpointsGrantedTo(name) };
  }
  async groups(): Promise<GroupDoc[]> {
    return this.sharing.groups();
  }
  async deleteGroup(name: string): Promise<{ deleted: boolean; endpoints: string[] }> {
    return this.ctx.storage.transactionSync(() => this.sharing.deleteGroup(name));
  }
  private ownsEndpoint(endpointId: string): boolean {
    return this.sql.exec('SELECT 1 FROM endpoints WHERE endpoint_id = ?', endpointId).toArray().length > 0;
  }
  /** Grants the owner's endpoint; `unknown` when it is not theirs, `no_group` for a group they do not have. */
  async putGrant(endpointId: string, grantee: Grantee, functions: GrantFunctions, owner: string): Promise<'ok' | 'unknown' | 'no_group' | 'too_many' | 'self'> {
    if (!this.ownsEndpoint(endpointId)) return 'unknown';
    if (grantee.kind === 'user' && grantee.id === owner) return 'self';
    if (grantee.kind === 'group' && !this.sharing.group(grantee.id)) return 'no_group';
    const existing = this.sharing.grants(endpointId).some((g) => (grantee.kind === 'user' ? g.user === grantee.id : g.group === grantee.id));
    if (!existing && this.sharing.grantCount(endpointId) >= SHARING_LIMITS.maxGrants) return 'too_many';
    this.sharing.putGrant(endpointId, grantee, functions, Date.now());
    return 'ok';
  }
  async deleteGrant(endpointId: string, grantee: Grantee): Promise<'ok' | 'unknown' | 'no_grant'> {
    if (!this.ownsEndpoint(endpointId)) return 'unknown';
    return this.sharing.deleteGrant(endpointId, grantee) ? 'ok' : 'no_grant';
  }
  async grants(endpointId: string): Promise<EndpointGrant[] | null> {
    return this.ownsEndpoint(endpointId) ? this.sharing.grants(endpointId) : null;
  }
  async putFunctionShare(functionUuid: string, grantee: Grantee, owner: string): Promise<'ok' | 'unknown' | 'no_group' | 'too_many' | 'self'> {
    if (!(await this.getFunction(functionUuid))) return 'unknown';
    if (grantee.kind === 'user' && grantee.id === owner) return 'self';
    if (grantee.kind === 'group' && !this.sharing.group(grantee.id)) return 'no_group';
    if (this.sharing.shareCount(functionUuid) >= SHARING_LIMITS.maxGrants) return 'too_many';
    this.sharing.putFunctionShare(functionUuid, grantee, Date.now());
    return 'ok';
  }
  async deleteFunctionShare(functionUuid: string, grantee: Grantee): Promise<'ok' | 'unknown' | 'no_grant'> {
    if (!(await this.getFunction(functionUuid))) return 'unknown';
    return this.sharing.deleteFunctionShare(functionUuid, grantee) ? 'ok' : 'no_grant';
  }
  async functionShares(functionUuid: string): Promise<FunctionShares | null> {
    return (await this.getFunction(functionUuid)) ? this.sharing.functionShares(functionUuid) : null;
  }
  /** What `user` may do with this owner's endpoints and functions. */
  async accessOf(user: string): Promise<GuestAccess> {
    return this.sharing.accessOf(user);
  }

  // Access (src/gateway/auth/): keys, the owner's token not-before, provider identities.
  async notBeforeMs(): Promise<number> {
    return this.auth.notBeforeMs();
  }
  async revokeTokens(notBeforeMs: number): Promise<number> {
    return this.auth.revokeTokens(notBeforeMs);
  }
  async createKey(key: Parameters<AuthTables['createKey']>[0], maxActive: number): Promise<KeyDoc | null> {
    if (this.auth.activeKeyCount(key.created_at) >= maxActive) return null;
    return this.auth.createKey(key);
  }
  async lookupKey(keyId: string): Promise<KeyLookup> {
    return this.auth.lookupKey(keyId);
  }
  async listKeys(): Promise<KeyDoc[]> {
    return this.auth.listKeys();
  }
  async revokeKey(keyId: string, nowMs: number): Promise<KeyDoc | null> {
    return this.auth.revokeKey(keyId, nowMs);
  }
  async touchKey(keyId: string, nowMs: number): Promise<void> {
    this.auth.touchKey(keyId, nowMs);
  }
  async claimIdentity(issuer: string, sub: string, proposedUserId: string): Promise<string> {
    return this.auth.claimIdentity(issuer, sub, proposedUserId, Date.now());
  }

  /**
   * Stores ingested task records, one segment per request in the object store, indexed here (a
   * record sent again replaces the earlier one). A failed write indexes nothing: the caller gets
   * an error and sends the events again.
   */
  async ingestLineage(owner: string, records: TaskLineage[]): Promise<void> {
    if (records.length === 0) return;
    const key = `lineage/events/${encodeURIComponent(owner)}/${Date.now().toString(36).padStart(9, '0')}-${crypto.randomUUID()}.ndjson.gz`;
    const placement = await putSegment(this.env.OBJECTS, key, records);
    this.ctx.storage.transactionSync(() => this.lineageIndex.write(records, true, placement));
  }

  async lineageCount(owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
    return this.lineageIndex.count(owner, workflowId, campaignId);
  }

  async lineage(owner: string, query: LineageQuery): Promise<TaskLineage[]> {
    return this.lineageIndex.query(owner, query, this.segmentReader);
  }

  private readonly segmentReader = r2SegmentReader(this.env.OBJECTS);

  /** Stores the function (same id: same code); `changed` when the KV cache copy must be rewritten. */
  async registerFunction(fn: FunctionRegistration): Promise<{ changed: boolean }> {
    const existing = this.sql.exec<{ function_name: string }>('SELECT function_name FROM functions WHERE function_uuid = ?', fn.function_uuid).toArray()[0];
    this.sql.exec(
      `INSERT INTO functions (function_uuid, function_name, function_code, runtime, serde, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(function_uuid) DO UPDATE SET function_name = excluded.function_name, serde = excluded.serde, description = excluded.description`,
      fn.function_uuid,
      fn.function_name,
      fn.function_code,
      fn.runtime,
      fn.serde,
      fn.description,
      new Date().toISOString(),
    );
    return { changed: existing?.function_name !== fn.function_name };
  }

  async getFunction(functionUuid: string): Promise<FunctionDoc | null> {
    const row = this.sql
      .exec<{ function_uuid: string; function_name: string; function_code: string; runtime: string; serde: string | null; description: string | null; created_at: string }>(
        'SELECT function_uuid, function_name, function_code, runtime, serde, description, created_at FROM functions WHERE function_uuid = ?',
        functionUuid,
      )
      .toArray()[0];
    if (!row) return null;
    return {
      function_uuid: row.function_uuid,
      function_name: row.function_name,
      function_code: row.function_code,
      description: row.description,
      meta: row.serde === null ? { runtime: row.runtime as Runtime } : { runtime: row.runtime as Runtime, serde: row.serde },
      created_at: row.created_at,
    };
  }

  async deleteFunction(functionUuid: string): Promise<boolean> {
    this.sharing.forgetFunction(functionUuid);
    return this.sql.exec('DELETE FROM functions WHERE function_uuid = ?', functionUuid).rowsWritten > 0;
  }

  /** The id already registered under `name`, or a new one. */
  async claimEndpointName(name: string): Promise<{ endpoint_id: string; created: boolean }> {
    const existing = this.sql.exec<{ endpoint_id: string }>('SELECT endpoint_id FROM endpoints WHERE endpoint_name = ?', name).toArray()[0];
    if (existing) return { endpoint_id: existing.endpoint_id, created: false };
    const endpointId = crypto.randomUUID();
    const now = new Date().toISOString();
    this.sql.exec('INSERT INTO endpoints (endpoint_id, endpoint_name, created_at) VALUES (?, ?, ?)', endpointId, name, now);
    this.sql.exec('INSERT OR IGNORE INTO lineage_endpoints (endpoint_id, created_at) VALUES (?, ?)', endpointId, now);
    return { endpoint_id: endpointId, created: true };
  }

  async renameEndpoint(endpointId: string, name: string): Promise<'renamed' | 'name_taken' | 'unknown'> {
    const holder = this.sql.exec<{ endpoint_id: string }>('SELECT endpoint_id FROM endpoints WHERE endpoint_name = ?', name).toArray()[0];
    if (holder) return holder.endpoint_id === endpointId ? 'renamed' : 'name_taken';
    const updated = this.sql.exec('UPDATE endpoints SET endpoint_name = ? WHERE endpoint_id = ?', name, endpointId).rowsWritten;
    return updated > 0 ? 'renamed' : 'unknown';
  }

  async endpointIds(): Promise<string[]> {
    return this.sql.exec<{ endpoint_id: string }>('SELECT endpoint_id FROM endpoints ORDER BY created_at, endpoint_id').toArray().map((r) => r.endpoint_id);
  }

  /** Every endpoint the owner ever registered, deleted ones included: where the owner's lineage lives. */
  async lineageEndpointIds(): Promise<string[]> {
    return this.sql.exec<{ endpoint_id: string }>('SELECT endpoint_id FROM lineage_endpoints ORDER BY created_at, endpoint_id').toArray().map((r) => r.endpoint_id);
  }

  /** Drops a deleted endpoint from the owner's list (its name is free again); its lineage stays reachable. */
  async forgetEndpoint(endpointId: string): Promise<void> {
    this.sql.exec('DELETE FROM endpoints WHERE endpoint_id = ?', endpointId);
    this.sharing.forgetEndpoint(endpointId);
  }

  /** Counts one submission in the owner's window when it fits the limits; older windows are dropped. */
  async admitSubmission(windowStart: number, limits: RateLimits, tasks: number): Promise<WindowCounts> {
    const row = this.sql.exec<{ requests: number; tasks: number }>('SELECT requests, tasks FROM rate_windows WHERE window_start = ?', windowStart).toArray()[0] ?? { requests: 0, tasks: 0 };
    if (!fits(row, limits, tasks)) return { admitted: false, requests: row.requests, tasks: row.tasks };
    this.sql.exec('DELETE FROM rate_windows WHERE window_start < ?', windowStart);
    this.sql.exec(
      'INSERT INTO rate_windows (window_start, requests, tasks) VALUES (?, 1, ?) ON CONFLICT(window_start) DO UPDATE SET requests = requests + 1, tasks = tasks + excluded.tasks',
      windowStart,
      tasks,
    );
    return { admitted: true, requests: row.requests + 1, tasks: row.tasks + tasks };
  }
}
