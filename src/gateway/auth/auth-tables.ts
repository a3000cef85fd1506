// What the owner's Registry records about access: the owner's instrument keys (a sha256 of each
// secret, never the secret), the owner's token not-before time (POST /v3/users/me/revoke), and, in
// a Registry named after one provider identity, the user id that identity was given once.

import type { KeyDoc, KeyScopes } from '../../protocol/auth-api';

export const AUTH_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS api_keys (
     key_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL, scopes_json TEXT NOT NULL,
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER)`,
  `CREATE TABLE IF NOT EXISTS auth_settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS identities (issuer TEXT NOT NULL, sub TEXT NOT NULL, user_id TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (issuer, sub))`,
];

/** What a request needs to check a key, as the gateway caches it (times in ms). */
export interface KeyRecord {
  key_id: string;
  secret_sha256: string;
  scopes: KeyScopes;
  expires_at: number;
  revoked_at: number | null;
}

/** A key record with the owner's not-before (ms; 0: never revoked), read together in one call. */
export interface KeyLookup {
  key: KeyRecord | null;
  not_before_ms: number;
}

interface KeyRow {
  key_id: string;
  name: string;
  secret_sha256: string;
  scopes_json: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  [column: string]: SqlStorageValue;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Uses of a key closer together than this are not written again: last_used_at is coarse. */
export const KEY_LAST_USED_RESOLUTION_MS = 60_000;

export class AuthTables {
  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of AUTH_SCHEMA) this.sql.exec(statement);
  }

  notBeforeMs(): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM auth_settings WHERE name = 'not_before_ms'").toArray()[0]?.value ?? 0;
  }

  /** Moves the not-before forward (never back) and answers it. */
  revokeTokens(notBeforeMs: number): number {
    this.sql.exec("INSERT INTO auth_settings (name, value) VALUES ('not_before_ms', ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)", notBeforeMs);
    return this.notBeforeMs();
  }

  activeKeyCount(nowMs: number): number {
    return this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL AND expires_at > ?', nowMs).toArray()[0]!.n;
  }

  createKey(key: { key_id: string; name: string; secret_sha256: string; scopes: KeyScopes; created_at: number; expires_at: number }): KeyDoc {
    this.sql.exec(
      'INSERT INTO api_keys (key_id, name, secret_sha256, scopes_json, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      key.key_id,
      key.name,
      key.secret_sha256,
      JSON.stringify(key.scopes),
      key.created_at,
      key.expires_at,
    );
    return this.keyDoc(key.key_id)!;
  }

  lookupKey(keyId: string): KeyLookup {
    const row = this.row(keyId);
    const key = row ? { key_id: row.key_id, secret_sha256: row.secret_sha256, scopes: JSON.parse(row.scopes_json) as KeyScopes, expires_at: row.expires_at, revoked_at: row.revoked_at } : null;
    return { key, not_before_ms: this.notBeforeMs() };
  }

  keyDoc(keyId: string): KeyDoc | null {
    const row = this.row(keyId);
    return row ? toDoc(row) : null;
  }

  listKeys(): KeyDoc[] {
    return this.sql.exec<KeyRow>('SELECT * FROM api_keys ORDER BY created_at, key_id').toArray().map(toDoc);
  }

  /** Revokes a key (again: keeps the first time); null when the owner has no such key. */
  revokeKey(keyId: string, nowMs: number): KeyDoc | null {
    this.sql.exec('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?', nowMs, keyId);
    return this.keyDoc(keyId);
  }

  /** At most one write a minute per key, whoever asks. */
  touchKey(keyId: string, nowMs: number): void {
    this.sql.exec('UPDATE api_keys SET last_used_at = ? WHERE key_id = ? AND (last_used_at IS NULL OR last_used_at <= ?)', nowMs, keyId, nowMs - KEY_LAST_USED_RESOLUTION_MS);
  }

  /** The user id of a provider identity: the one recorded first, for ever. */
  claimIdentity(issuer: string, sub: string, proposedUserId: string, nowMs: number): string {
    this.sql.exec('INSERT OR IGNORE INTO identities (issuer, sub, user_id, created_at) VALUES (?, ?, ?, ?)', issuer, sub, proposedUserId, nowMs);
    return this.sql.exec<{ user_id: string }>('SELECT user_id FROM identities WHERE issuer = ? AND sub = ?', issuer, sub).toArray()[0]!.user_id;
  }

  private row(keyId: string): KeyRow | undefined {
    return this.sql.exec<KeyRow>('SELECT * FROM api_keys WHERE key_id = ?', keyId).toArray()[0];
  }
}

function toDoc(row: KeyRow): KeyDoc {
  return {
    key_id: row.key_id,
    name: row.name,
    scopes: JSON.parse(row.scopes_json) as KeyScopes,
    created_at: iso(row.created_at)!,
    expires_at: iso(row.expires_at)!,
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  };
}
