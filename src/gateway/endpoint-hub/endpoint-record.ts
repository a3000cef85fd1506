// The endpoint's own record inside its hub: who owns it, its name and settings, whether it was
// deleted. One row; the owner's Registry only keeps the list of ids and names.

import type { EndpointDoc, Json } from '../../protocol/api';

export interface EndpointRecord {
  endpoint_id: string;
  owner: string;
  endpoint_name: string;
  display_name: string | null;
  /** null: any of the owner's functions may run here. */
  allowed_functions: string[] | null;
  metadata: Record<string, Json>;
  created_at: string;
  deleted: boolean;
  /** Generation of the endpoint's secret: its secret and access tokens carry it; revoke bumps it. */
  secret_gen: number;
}

export interface EndpointFields {
  endpoint_name: string;
  display_name?: string | undefined;
  allowed_functions?: string[] | undefined;
  metadata?: Record<string, Json> | undefined;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS endpoint (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1), endpoint_id TEXT NOT NULL, owner TEXT NOT NULL,
  endpoint_name TEXT NOT NULL, display_name TEXT, allowed_functions TEXT, metadata TEXT NOT NULL,
  created_at TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, secret_gen INTEGER NOT NULL DEFAULT 0)`;

export function createEndpointSchema(sql: SqlStorage): void {
  sql.exec(SCHEMA);
}

/** Adds columns later versions brought to a table an older version created. */
export function migrateEndpointSchema(sql: SqlStorage): void {
  const columns = sql.exec<{ name: string }>('PRAGMA table_info(endpoint)').toArray().map((c) => c.name);
  if (!columns.includes('secret_gen')) sql.exec('ALTER TABLE endpoint ADD COLUMN secret_gen INTEGER NOT NULL DEFAULT 0');
}

export function hasEndpointSchema(sql: SqlStorage): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'endpoint'").toArray().length > 0;
}

export function readEndpoint(sql: SqlStorage): EndpointRecord | null {
  const row = sql
    .exec<{ endpoint_id: string; owner: string; endpoint_name: string; display_name: string | null; allowed_functions: string | null; metadata: string; created_at: string; deleted: number; secret_gen: number }>(
      'SELECT endpoint_id, owner, endpoint_name, display_name, allowed_functions, metadata, created_at, deleted, secret_gen FROM endpoint WHERE singleton = 1',
    )
    .toArray()[0];
  if (!row) return null;
  return {
    endpoint_id: row.endpoint_id,
    owner: row.owner,
    endpoint_name: row.endpoint_name,
    display_name: row.display_name,
    allowed_functions: row.allowed_functions === null ? null : JSON.parse(row.allowed_functions),
    metadata: JSON.parse(row.metadata),
    created_at: row.created_at,
    deleted: row.deleted === 1,
    secret_gen: row.secret_gen,
  };
}

export function writeEndpoint(sql: SqlStorage, record: EndpointRecord): void {
  sql.exec(
    `INSERT INTO endpoint (singleton, endpoint_id, owner, endpoint_name, display_name, allowed_functions, metadata, created_at, deleted, secret_gen)
     VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(singleton) DO UPDATE SET endpoint_name = excluded.endpoint_name, display_name = excluded.display_name,
       allowed_functions = excluded.allowed_functions, metadata = excluded.metadata, deleted = excluded.deleted, secret_gen = excluded.secret_gen`,
    record.endpoint_id,
    record.owner,
    record.endpoint_name,
    record.display_name,
    record.allowed_functions === null ? null : JSON.stringify(record.allowed_functions),
    JSON.stringify(record.metadata),
    record.created_at,
    record.deleted ? 1 : 0,
    record.secret_gen,
  );
}

/** Globus Compute's convention: an empty allow-list restricts nothing. */
export function allowListOf(fields: EndpointFields): string[] | null {
  return fields.allowed_functions && fields.allowed_functions.length > 0 ? [...new Set(fields.allowed_functions)] : null;
}

export function endpointDoc(record: EndpointRecord): EndpointDoc {
  return {
    endpoint_id: record.endpoint_id,
    endpoint_name: record.endpoint_name,
    display_name: record.display_name,
    allowed_functions: record.allowed_functions,
    metadata: record.metadata,
    created_at: record.created_at,
  };
}
