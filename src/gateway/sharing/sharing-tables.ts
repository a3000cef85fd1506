// What the owner's Registry records about sharing: the owner's groups (members by user id), grants
// of the owner's endpoints to users and groups (each with the functions the grantee may run there),
// and shares of the owner's functions (with users, groups, or everyone). `accessOf(user)` answers
// in one read everything a user may do with this owner's things, which the gateway and the hubs
// cache for SHARING_CACHE_TTL_MS (src/gateway/sharing/access-cache.ts).

import type { EndpointGrant, FunctionShares, GrantFunctions, GroupDoc } from '../../protocol/sharing-api';

export const SHARING_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS share_groups (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS share_group_members (name TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (name, user_id)) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS share_group_members_by_user ON share_group_members(user_id)`,
  // grantee_kind: 'user' or 'group'; functions_json: '"*"' or a JSON array of ids.
  `CREATE TABLE IF NOT EXISTS endpoint_grants (endpoint_id TEXT NOT NULL, grantee_kind TEXT NOT NULL, grantee TEXT NOT NULL, functions_json TEXT NOT NULL,
     created_at INTEGER NOT NULL, PRIMARY KEY (endpoint_id, grantee_kind, grantee)) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS endpoint_grants_by_grantee ON endpoint_grants(grantee_kind, grantee)`,
  // grantee_kind: 'user', 'group' or 'public' (grantee '').
  `CREATE TABLE IF NOT EXISTS function_shares (function_uuid TEXT NOT NULL, grantee_kind TEXT NOT NULL, grantee TEXT NOT NULL, created_at INTEGER NOT NULL,
     PRIMARY KEY (function_uuid, grantee_kind, grantee)) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS function_shares_by_grantee ON function_shares(grantee_kind, grantee)`,
];

export type Grantee = { kind: 'user'; id: string } | { kind: 'group'; id: string } | { kind: 'public'; id: '' };

/** Everything one user may do with one owner's things (the owner's answer for that user). */
export interface GuestAccess {
  /** Endpoint id → the functions the user may run there ('*': any the user may use). */
  endpoints: Record<string, GrantFunctions>;
  /** The owner's functions shared with the user, one of the user's groups, or everyone. */
  functions: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export class SharingTables {
  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SHARING_SCHEMA) this.sql.exec(statement);
  }

  groupCount(): number {
    return this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM share_groups').one().n;
  }

  /** Creates the group or replaces its members. */
  putGroup(name: string, members: readonly string[], nowMs: number): GroupDoc {
    this.sql.exec('INSERT INTO share_groups (name, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at', name, nowMs, nowMs);
    this.sql.exec('DELETE FROM share_group_members WHERE name = ?', name);
    for (const user of new Set(members)) this.sql.exec('INSERT INTO share_group_members (name, user_id) VALUES (?, ?)', name, user);
    return this.group(name)!;
  }

  group(name: string): GroupDoc | null {
    const row = this.sql.exec<{ name: string; created_at: number; updated_at: number }>('SELECT name, created_at, updated_at FROM share_groups WHERE name = ?', name).toArray()[0];
    if (!row) return null;
    const members = this.sql.exec<{ user_id: string }>('SELECT user_id FROM share_group_members WHERE name = ? ORDER BY user_id', name).toArray().map((r) => r.user_id);
    return { name: row.name, members, created_at: iso(row.created_at), updated_at: iso(row.updated_at) };
  }

  groups(): GroupDoc[] {
    return this.sql.exec<{ name: string }>('SELECT name FROM share_groups ORDER BY name').toArray().map((r) => this.group(r.name)!);
  }

  /** Deletes the group and every grant and share naming it; the endpoints whose grants it had. */
  deleteGroup(name: string): { deleted: boolean; endpoints: string[] } {
    const endpoints = this.sql.exec<{ endpoint_id: string }>("SELECT endpoint_id FROM endpoint_grants WHERE grantee_kind = 'group' AND grantee = ?", name).toArray().map((r) => r.endpoint_id);
    const deleted = this.sql.exec('DELETE FROM share_groups WHERE name = ?', name).rowsWritten > 0;
    this.sql.exec('DELETE FROM share_group_members WHERE name = ?', name);
    this.sql.exec("DELETE FROM endpoint_grants WHERE grantee_kind = 'group' AND grantee = ?", name);
    this.sql.exec("DELETE FROM function_shares WHERE grantee_kind = 'group' AND grantee = ?", name);
    return { deleted, endpoints };
  }

  /** The endpoints with a grant to the group (their hubs forget cached access when it changes). */
  endpointsGrantedTo(group: string): string[] {
    return this.sql.exec<{ endpoint_id: string }>("SELECT endpoint_id FROM endpoint_grants WHERE grantee_kind = 'group' AND grantee = ?", group).toArray().map((r) => r.endpoint_id);
  }

  grantCount(endpointId: string): number {
    return this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM endpoint_grants WHERE endpoint_id = ?', endpointId).one().n;
  }

  putGrant(endpointId: string, grantee: Grantee, functions: GrantFunctions, nowMs: number): void {
    this.sql.exec(
      `INSERT INTO endpoint_grants (endpoint_id, grantee_kind, grantee, functions_json, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(endpoint_id, grantee_kind, grantee) DO UPDATE SET functions_json = excluded.functions_json`,
      endpointId,
      grantee.kind,
      grantee.id,
      JSON.stringify(functions),
      nowMs,
    );
  }

  deleteGrant(endpointId: string, grantee: Grantee): boolean {
    return this.sql.exec('DELETE FROM endpoint_grants WHERE endpoint_id = ? AND grantee_kind = ? AND grantee = ?', endpointId, grantee.kind, grantee.id).rowsWritten > 0;
  }

  grants(endpointId: string): EndpointGrant[] {
    return this.sql
      .exec<{ grantee_kind: string; grantee: string; functions_json: string; created_at: number }>(
        'SELECT grantee_kind, grantee, functions_json, created_at FROM endpoint_grants WHERE endpoint_id = ? ORDER BY grantee_kind DESC, grantee',
        endpointId,
      )
      .toArray()
      .map((r) => ({
        user: r.grantee_kind === 'user' ? r.grantee : null,
        group: r.grantee_kind === 'group' ? r.grantee : null,
        functions: JSON.parse(r.functions_json) as GrantFunctions,
        created_at: iso(r.created_at),
      }));
  }

  /** Drops every grant of a deleted endpoint. */
  forgetEndpoint(endpointId: string): void {
    this.sql.exec('DELETE FROM endpoint_grants WHERE endpoint_id = ?', endpointId);
  }

  shareCount(functionUuid: string): number {
    return this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM function_shares WHERE function_uuid = ?', functionUuid).one().n;
  }

  putFunctionShare(functionUuid: string, grantee: Grantee, nowMs: number): void {
    this.sql.exec('INSERT OR IGNORE INTO function_shares (function_uuid, grantee_kind, grantee, created_at) VALUES (?, ?, ?, ?)', functionUuid, grantee.kind, grantee.id, nowMs);
  }

  deleteFunctionShare(functionUuid: string, grantee: Grantee): boolean {
    return this.sql.exec('DELETE FROM function_shares WHERE function_uuid = ? AND grantee_kind = ? AND grantee = ?', functionUuid, grantee.kind, grantee.id).rowsWritten > 0;
  }

  functionShares(functionUuid: string): FunctionShares {
    const rows = this.sql.exec<{ grantee_kind: string; grantee: string }>('SELECT grantee_kind, grantee FROM function_shares WHERE function_uuid = ? ORDER BY grantee', functionUuid).toArray();
    return {
      function_uuid: functionUuid,
      public: rows.some((r) => r.grantee_kind === 'public'),
      users: rows.filter((r) => r.grantee_kind === 'user').map((r) => r.grantee),
      groups: rows.filter((r) => r.grantee_kind === 'group').map((r) => r.grantee),
    };
  }

  forgetFunction(functionUuid: string): void {
    this.sql.exec('DELETE FROM function_shares WHERE function_uuid = ?', functionUuid);
  }

  /** What `user` may do with this owner's endpoints and functions (the owner is never asked about themself). */
  accessOf(user: string): GuestAccess {
    // The user's own grants and their groups' (a subquery: any number of groups, two bound values).
    const where = "(grantee_kind = 'user' AND grantee = ?) OR (grantee_kind = 'group' AND grantee IN (SELECT name FROM share_group_members WHERE user_id = ?))";
    const endpoints: Record<string, GrantFunctions> = {};
    for (const r of this.sql.exec<{ endpoint_id: string; functions_json: string }>(`SELECT endpoint_id, functions_json FROM endpoint_grants WHERE ${where}`, user, user).toArray()) {
      endpoints[r.endpoint_id] = mergeFunctions(endpoints[r.endpoint_id], JSON.parse(r.functions_json) as GrantFunctions);
    }
    const functions = this.sql
      .exec<{ function_uuid: string }>(`SELECT DISTINCT function_uuid FROM function_shares WHERE grantee_kind = 'public' OR ${where}`, user, user)
      .toArray()
      .map((r) => r.function_uuid);
    return { endpoints, functions };
  }
}

/** Two grants to one user (directly and through a group): the union of what they allow. */
export function mergeFunctions(a: GrantFunctions | undefined, b: GrantFunctions): GrantFunctions {
  if (a === undefined) return b;
  if (a === '*' || b === '*') return '*';
  return [...new Set([...a, ...b])];
}
