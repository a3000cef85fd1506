// `ObjectIndex`, one Durable Object per owner (`objects:<sub>`): the index of the owner's objects
// and multipart uploads, and the counters of bytes the gateway served from them.
//
// Design (data by reference):
// - Bytes live in R2 under a random storage key (`blobs/<random>`), never under a key derived from
//   the content: R2 has no rename and the digest is known only once the bytes have streamed
//   through, so the upload is written first and named after.
// - The object id is sha256(owner \n sha256-of-bytes). This index maps id → {storage key, size,
//   sha256, content type, filters, created, expires}. Committing an id that already exists keeps
//   the first copy and deletes the new duplicate blob: one owner's same bytes are stored once.
//   Being per owner, the index only ever holds one owner's ids: another owner's lookup finds
//   nothing (404), and nobody can learn whether someone else holds some bytes.
// - Multipart uploads: R2 multipart under a fresh storage key; parts and their sha256 are recorded
//   here; the whole-object sha256 is computed by re-reading the completed object (see the route).
//   An upload not completed in OBJECT_LIMITS.uploadTtlSeconds is aborted.
// - TTL: an expired object answers 404 at once and is deleted by the next alarm (or access).
// - Counters: every GET answer adds the bytes it was committed to send (its Content-Length),
//   counted per reader (`user` or `endpoint:<id>`), in the same call that resolves the object.
//   Every commit counts the object and its bytes per writer: `user`, or `endpoint:<id>` for a
//   result an endpoint agent stored for the owner (results by reference).

import { DurableObject } from 'cloudflare:workers';
import { OBJECT_LIMITS, type ObjectFilter, type ObjectMeta, type ObjectStats } from '../../protocol/api';
import type { GatewayEnv } from '../env';
import { resolveRange, type RangeSpec, type ResolvedRange } from './byte-range';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS objects (
     id TEXT PRIMARY KEY, storage_key TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,
     filters TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER)`,
  `CREATE INDEX IF NOT EXISTS objects_expiry ON objects (expires_at) WHERE expires_at IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS uploads (
     upload_id TEXT PRIMARY KEY, r2_upload_id TEXT NOT NULL, storage_key TEXT NOT NULL, part_size INTEGER NOT NULL,
     content_type TEXT NOT NULL, filters TEXT NOT NULL, ttl_s INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS upload_parts (
     upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
     PRIMARY KEY (upload_id, part_number))`,
  `CREATE TABLE IF NOT EXISTS served (reader TEXT PRIMARY KEY, bytes INTEGER NOT NULL, requests INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS written (writer TEXT PRIMARY KEY, objects INTEGER NOT NULL, bytes INTEGER NOT NULL)`,
];

// Filters cross the RPC boundary as JSON text: their recursive JSON type is too deep for the stub types.
export type ObjectRecord = {
  id: string;
  storage_key: string;
  size: number;
  sha256: string;
  content_type: string;
  filters_json: string;
  created_at: number;
  expires_at: number | null;
};

export interface NewObject extends Omit<ObjectRecord, 'created_at' | 'expires_at'> {
  ttl_s: number | null;
  /** Who stored it, for the owner's counters: `user` or `endpoint:<endpoint_id>`. */
  writer: string;
}

export interface UploadRecord {
  upload_id: string;
  r2_upload_id: string;
  storage_key: string;
  part_size: number;
  content_type: string;
  filters_json: string;
  ttl_s: number | null;
  created_at: number;
  expires_at: number;
}

export type PartRecord = {
  part_number: number;
  etag: string;
  size: number;
  sha256: string;
};

export type ReadAnswer =
  | { found: false }
  | { found: true; record: ObjectRecord; range: ResolvedRange | null; satisfiable: true }
  | { found: true; record: ObjectRecord; satisfiable: false };

type ObjectRow = { id: string; storage_key: string; size: number; sha256: string; content_type: string; filters: string; created_at: number; expires_at: number | null };
type UploadRow = Omit<UploadRecord, 'filters_json'> & { filters: string };

export function objectIndexOf(env: GatewayEnv, owner: string): DurableObjectStub<ObjectIndex> {
  return env.OBJECT_INDEX.get(env.OBJECT_INDEX.idFromName(`objects:${owner}`));
}

export function metaOf(record: ObjectRecord): ObjectMeta {
  return {
    $ref: record.id,
    size: record.size,
    sha256: record.sha256,
    content_type: record.content_type,
    filters: JSON.parse(record.filters_json) as ObjectFilter[],
    created_at: new Date(record.created_at).toISOString(),
    expires_at: record.expires_at === null ? null : new Date(record.expires_at).toISOString(),
  };
}

function toRecord(row: ObjectRow): ObjectRecord {
  const { filters, ...rest } = row;
  return { ...rest, filters_json: filters };
}

export class ObjectIndex extends DurableObject<GatewayEnv> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: GatewayEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  private liveRow(id: string, now = Date.now()): ObjectRow | null {
    const row = this.sql.exec<ObjectRow>('SELECT * FROM objects WHERE id = ?', id).toArray()[0];
    if (!row) return null;
    if (row.expires_at !== null && row.expires_at <= now) {
      this.sql.exec('DELETE FROM objects WHERE id = ?', id);
      this.ctx.waitUntil(this.env.OBJECTS.delete(row.storage_key));
      return null;
    }
    return row;
  }

  /**
   * Records a stored object. When the owner already holds the same bytes, the first copy stays,
   * the new blob is deleted, and the later of the two expiries (none beats any) is kept.
   */
  async commit(obj: NewObject): Promise<ObjectRecord> {
    const now = Date.now();
    const expiresAt = obj.ttl_s === null ? null : now + obj.ttl_s * 1000;
    this.sql.exec(
      'INSERT INTO written (writer, objects, bytes) VALUES (?, 1, ?) ON CONFLICT(writer) DO UPDATE SET objects = objects + 1, bytes = bytes + excluded.bytes',
      obj.writer,
      obj.size,
    );
    const existing = this.liveRow(obj.id, now);
    if (existing) {
      if (existing.storage_key !== obj.storage_key) await this.env.OBJECTS.delete(obj.storage_key);
      const keep = existing.expires_at === null || expiresAt === null ? null : Math.max(existing.expires_at, expiresAt);
      if (keep !== existing.expires_at) this.sql.exec('UPDATE objects SET expires_at = ? WHERE id = ?', keep, obj.id);
      return toRecord({ ...existing, expires_at: keep });
    }
    const row: ObjectRow = {
      id: obj.id,
      storage_key: obj.storage_key,
      size: obj.size,
      sha256: obj.sha256,
      content_type: obj.content_type,
      filters: obj.filters_json,
      created_at: now,
      expires_at: expiresAt,
    };
    this.sql.exec(
      'INSERT INTO objects (id, storage_key, size, sha256, content_type, filters, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      row.id, row.storage_key, row.size, row.sha256, row.content_type, row.filters, row.created_at, row.expires_at,
    );
    if (expiresAt !== null) await this.wakeBy(expiresAt);
    return toRecord(row);
  }

  /** Resolves a read (GET or HEAD) and counts it: the bytes it will send, for `reader`. */
  async read(id: string, reader: string, range: RangeSpec | null, withBody: boolean): Promise<ReadAnswer> {
    const row = this.liveRow(id);
    if (!row) return { found: false };
    const record = toRecord(row);
    let resolved: ResolvedRange | null = null;
    if (range) {
      resolved = resolveRange(range, record.size);
      if (!resolved) {
        this.count(reader, 0);
        return { found: true, record, satisfiable: false };
      }
    }
    this.count(reader, withBody ? (resolved?.length ?? record.size) : 0);
    return { found: true, record, range: resolved, satisfiable: true };
  }

  private count(reader: string, bytes: number): void {
    this.sql.exec(
      'INSERT INTO served (reader, bytes, requests) VALUES (?, ?, 1) ON CONFLICT(reader) DO UPDATE SET bytes = bytes + excluded.bytes, requests = requests + 1',
      reader,
      bytes,
    );
  }

  async meta(id: string): Promise<ObjectRecord | null> {
    const row = this.liveRow(id);
    return row ? toRecord(row) : null;
  }

  async remove(id: string): Promise<boolean> {
    const row = this.liveRow(id);
    if (!row) return false;
    this.sql.exec('DELETE FROM objects WHERE id = ?', id);
    await this.env.OBJECTS.delete(row.storage_key);
    return true;
  }

  async stats(): Promise<ObjectStats> {
    const now = Date.now();
    const stored = this.sql
      .exec<{ n: number; bytes: number | null }>('SELECT COUNT(*) AS n, SUM(size) AS bytes FROM objects WHERE expires_at IS NULL OR expires_at > ?', now)
      .toArray()[0]!;
    const readers: ObjectStats['readers'] = {};
    let bytesServed = 0;
    let requests = 0;
    for (const row of this.sql.exec<{ reader: string; bytes: number; requests: number }>('SELECT reader, bytes, requests FROM served ORDER BY reader')) {
      readers[row.reader] = { bytes_served: row.bytes, requests: row.requests };
      bytesServed += row.bytes;
      requests += row.requests;
    }
    const writers: ObjectStats['writers'] = {};
    for (const row of this.sql.exec<{ writer: string; objects: number; bytes: number }>('SELECT writer, objects, bytes FROM written ORDER BY writer')) {
      writers[row.writer] = { objects: row.objects, bytes: row.bytes };
    }
    return { objects: stored.n, bytes_stored: stored.bytes ?? 0, bytes_served: bytesServed, requests, readers, writers };
  }

  async startUpload(upload: Omit<UploadRecord, 'created_at' | 'expires_at'>): Promise<UploadRecord> {
    const now = Date.now();
    const record: UploadRecord = { ...upload, created_at: now, expires_at: now + OBJECT_LIMITS.uploadTtlSeconds * 1000 };
    this.sql.exec(
      'INSERT INTO uploads (upload_id, r2_upload_id, storage_key, part_size, content_type, filters, ttl_s, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      record.upload_id, record.r2_upload_id, record.storage_key, record.part_size, record.content_type, record.filters_json, record.ttl_s, record.created_at, record.expires_at,
    );
    await this.wakeBy(record.expires_at);
    return record;
  }

  /** A live upload; an expired one is aborted (its parts dropped) and answers null. */
  async upload(uploadId: string): Promise<UploadRecord | null> {
    const row = this.sql.exec<UploadRow>('SELECT * FROM uploads WHERE upload_id = ?', uploadId).toArray()[0];
    if (!row) return null;
    if (row.expires_at <= Date.now()) {
      await this.dropUpload(row, true);
      return null;
    }
    const { filters, ...rest } = row;
    return { ...rest, filters_json: filters };
  }

  /** Records a stored part (a part sent again replaces the earlier one); false if the upload is gone. */
  async recordPart(uploadId: string, part: PartRecord): Promise<boolean> {
    if (!(await this.upload(uploadId))) return false;
    this.sql.exec(
      'INSERT OR REPLACE INTO upload_parts (upload_id, part_number, etag, size, sha256) VALUES (?, ?, ?, ?, ?)',
      uploadId, part.part_number, part.etag, part.size, part.sha256,
    );
    return true;
  }

  async parts(uploadId: string): Promise<PartRecord[]> {
    return this.sql.exec<PartRecord>('SELECT part_number, etag, size, sha256 FROM upload_parts WHERE upload_id = ? ORDER BY part_number', uploadId).toArray();
  }

  /** Forgets an upload: after its completion (`abortInR2` false) or to abort it. */
  async endUpload(uploadId: string, abortInR2: boolean): Promise<boolean> {
    const row = this.sql.exec<UploadRow>('SELECT * FROM uploads WHERE upload_id = ?', uploadId).toArray()[0];
    if (!row) return false;
    await this.dropUpload(row, abortInR2);
    return true;
  }

  private async dropUpload(row: UploadRow, abortInR2: boolean): Promise<void> {
    this.sql.exec('DELETE FROM upload_parts WHERE upload_id = ?', row.upload_id);
    this.sql.exec('DELETE FROM uploads WHERE upload_id = ?', row.upload_id);
    if (abortInR2) {
      try {
        await this.env.OBJECTS.resumeMultipartUpload(row.storage_key, row.r2_upload_id).abort();
      } catch {
        // already completed or aborted
      }
    }
  }

  private async wakeBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /** Deletes expired objects and aborts expired uploads, then sleeps until the next expiry. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const expired = this.sql.exec<{ id: string; storage_key: string }>('SELECT id, storage_key FROM objects WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 500', now).toArray();
    for (const row of expired) {
      this.sql.exec('DELETE FROM objects WHERE id = ?', row.id);
      await this.env.OBJECTS.delete(row.storage_key);
    }
    for (const row of this.sql.exec<UploadRow>('SELECT * FROM uploads WHERE expires_at <= ? LIMIT 100', now).toArray()) await this.dropUpload(row, true);
    const next = this.sql
      .exec<{ at: number | null }>('SELECT MIN(at) AS at FROM (SELECT MIN(expires_at) AS at FROM objects WHERE expires_at IS NOT NULL UNION ALL SELECT MIN(expires_at) FROM uploads)')
      .toArray()[0]?.at;
    if (next !== null && next !== undefined) await this.ctx.storage.setAlarm(Math.max(next, Date.now() + 1000));
  }
}
