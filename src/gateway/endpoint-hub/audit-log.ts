// An endpoint's audit log (GET /v3/endpoints/{id}/audit, the owner only). Two sources, read as one
// paged list: task events (received, started, ended, by whom, with which function) DERIVED from the
// lineage records the hub already writes in segments (no second write on the results path), and
// the other security events (sharing changed, key used or revoked, tokens or secret revoked,
// refused attempts), stored as lineage is: appended to `audit_events` in the hub's SQLite, and
// every AUDIT_BATCH of them written as one gzip NDJSON segment in the object store
// (`audit/<endpoint>/<first seq>.ndjson.gz`, never rewritten), indexed in `audit_segments`, their
// rows then dropped in the same transaction. Nothing updates an event. A page merges both sources
// by time; its cursor is `<lineage segment id>.<records read in it>.<last event seq>`.

import { SHARING_LIMITS, type AuditEvent } from '../../protocol/sharing-api';
import type { TaskLineage } from '../../provenance/prov-document';
import type { SegmentReader } from '../lineage/lineage-index';
import { putLines, segmentText } from '../lineage/lineage-segments';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS audit_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, user TEXT, detail_json TEXT)`,
  `CREATE TABLE IF NOT EXISTS audit_segments (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL)`,
];

/** Events written as one segment, once that many wait. */
export const AUDIT_BATCH = 100;

/** What the log needs of its hub: the object store, a transaction, work after the answer. */
export interface AuditStorage {
  bucket: R2Bucket;
  endpointId: () => string;
  transaction: (writes: () => void) => void;
  defer: (work: Promise<unknown>) => void;
}

interface EventRow {
  seq: number;
  at: number;
  kind: string;
  user: string | null;
  detail_json: string | null;
  [column: string]: SqlStorageValue;
}

function auditSegmentKey(endpointId: string, firstSeq: number): string {
  return `audit/${endpointId}/${String(firstSeq).padStart(12, '0')}.ndjson.gz`;
}

/** A refused attempt by the same user is written at most this often (a stranger's retries are not a write each; they are counted). */
const REFUSED_RESOLUTION_MS = 10_000;
/** A key's use is written at most this often per hub instance. */
const KEY_USED_RESOLUTION_MS = 60_000;
const MEMO_MAX = 10_000;

export type StoredKind = 'sharing_changed' | 'key_used' | 'key_revoked' | 'tokens_revoked' | 'secret_revoked' | 'refused';

export interface AuditCursor {
  segment: number;
  index: number;
  seq: number;
}

export function parseCursor(text: string | undefined): AuditCursor {
  if (text === undefined) return { segment: 0, index: 0, seq: 0 };
  const [segment, index, seq] = text.split('.').map(Number) as [number, number, number];
  return { segment, index, seq };
}

const cursorText = (c: AuditCursor) => `${c.segment}.${c.index}.${c.seq}`;

/** A task's events from its lineage record; `user` is its submitter. */
export function taskEvents(r: TaskLineage): AuditEvent[] {
  const user = r.submitted_by ?? r.owner;
  const base = { user, task_id: r.task_id, ...(r.function_uuid ? { function_uuid: r.function_uuid } : {}) };
  const out: AuditEvent[] = [];
  const received = r.transitions['waiting-for-ep'];
  if (received !== undefined) out.push({ kind: 'task_received', at: received, ...base });
  if (r.started_at !== null) out.push({ kind: 'task_started', at: r.started_at, ...base });
  if (r.ended_at !== null) out.push({ kind: 'task_ended', at: r.ended_at, ...base, status: r.status });
  return out;
}

export class AuditLog {
  private readonly lastRefused = new Map<string, { at: number; repeats: number }>();
  private readonly lastKeyUse = new Map<string, number>();

  private flushing: Promise<void> | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: AuditStorage,
  ) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  append(kind: StoredKind, user: string | null, detail?: Record<string, unknown>): void {
    const { seq } = this.sql
      .exec<{ seq: number }>('INSERT INTO audit_events (at, kind, user, detail_json) VALUES (?, ?, ?, ?) RETURNING seq', Date.now() / 1000, kind, user, detail === undefined ? null : JSON.stringify(detail))
      .one();
    // A whole batch waits (seq counts every event ever appended): written after the answer.
    if (seq % AUDIT_BATCH === 0 && !this.flushing) {
      this.flushing = this.flush().finally(() => (this.flushing = null));
      this.storage.defer(this.flushing);
    }
  }

  /** Writes every whole batch of waiting events as a segment, then indexes it and drops its rows. */
  private async flush(): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<EventRow>('SELECT seq, at, kind, user, detail_json FROM audit_events ORDER BY seq LIMIT ?', AUDIT_BATCH).toArray();
      if (rows.length < AUDIT_BATCH) return;
      const first = rows[0]!.seq;
      const last = rows[rows.length - 1]!.seq;
      const key = auditSegmentKey(this.storage.endpointId(), first);
      await putLines(this.storage.bucket, key, rows.map((r) => JSON.stringify(r) + '\n').join(''), rows.map((r) => String(r.seq)));
      this.storage.transaction(() => {
        this.sql.exec('INSERT OR IGNORE INTO audit_segments (key, first_seq, last_seq) VALUES (?, ?, ?)', key, first, last);
        this.sql.exec('DELETE FROM audit_events WHERE seq <= ?', last);
      });
    }
  }

  /** Up to `limit` stored events after `seq`, oldest first: from segments, then the rows waiting. */
  private async storedAfter(seq: number, limit: number): Promise<EventRow[]> {
    const out: EventRow[] = [];
    const segments = this.sql.exec<{ key: string }>('SELECT key FROM audit_segments WHERE last_seq > ? ORDER BY first_seq', seq).toArray();
    for (const { key } of segments) {
      if (out.length >= limit) return out;
      const object = await this.storage.bucket.get(key);
      if (!object) continue;
      const text = new TextDecoder().decode(await segmentText(key, new Uint8Array(await object.arrayBuffer())));
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        const row = JSON.parse(line) as EventRow;
        if (row.seq > seq && out.length < limit) out.push(row);
      }
    }
    const after = out.length > 0 ? out[out.length - 1]!.seq : seq;
    out.push(...this.sql.exec<EventRow>('SELECT seq, at, kind, user, detail_json FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?', after, limit - out.length).toArray());
    return out;
  }

  /**
   * A refused attempt. The same user's attempts within REFUSED_RESOLUTION_MS of their last written
   * one are counted, not written: the next one written says how many came between (`repeats`).
   */
  refused(user: string, detail: Record<string, unknown>): void {
    const now = Date.now();
    const last = this.lastRefused.get(user);
    if (last && last.at > now - REFUSED_RESOLUTION_MS) {
      last.repeats++;
      return;
    }
    if (this.lastRefused.size >= MEMO_MAX) this.lastRefused.clear();
    this.lastRefused.set(user, { at: now, repeats: 0 });
    this.append('refused', user, last?.repeats ? { ...detail, repeats: last.repeats } : detail);
  }

  /** A key's use, at most once a minute per key (not a write per task). */
  keyUsed(user: string, keyId: string): void {
    const now = Date.now();
    if ((this.lastKeyUse.get(keyId) ?? 0) > now - KEY_USED_RESOLUTION_MS) return;
    if (this.lastKeyUse.size >= MEMO_MAX) this.lastKeyUse.clear();
    this.lastKeyUse.set(keyId, now);
    this.append('key_used', user, { key_id: keyId });
  }

  /** A page of up to `limit` items (a task's events count as one item) after `cursorText`, by time. */
  async page(cursor: string | undefined, limit: number = SHARING_LIMITS.auditPageDefault, reader: SegmentReader): Promise<{ events: AuditEvent[]; next_cursor: string; more: boolean }> {
    const at = parseCursor(cursor);
    const stored = await this.storedAfter(at.seq, limit + 1);
    // Task records from the lineage segments, in the order they were written.
    const tasks: Array<{ segment: number; index: number; record: TaskLineage }> = [];
    const segments = this.sql.exec<{ id: number; key: string }>('SELECT id, key FROM lineage_segments WHERE id >= ? ORDER BY id LIMIT 8', at.segment).toArray();
    for (const s of segments) {
      if (tasks.length > limit) break;
      const records = await reader.segment(s.key);
      for (let i = s.id === at.segment ? at.index : 0; i < records.length && tasks.length <= limit; i++) tasks.push({ segment: s.id, index: i + 1, record: records[i]! });
    }
    const events: AuditEvent[] = [];
    const next = { ...at };
    let e = 0;
    let t = 0;
    for (let n = 0; n < limit && (e < stored.length || t < tasks.length); n++) {
      const task = tasks[t];
      const row = stored[e];
      const taskAt = task ? (task.record.ended_at ?? 0) : Infinity;
      if (row && row.at <= taskAt) {
        events.push({ kind: row.kind as AuditEvent['kind'], at: row.at, user: row.user, ...(row.detail_json ? { detail: JSON.parse(row.detail_json) as Record<string, unknown> } : {}) });
        next.seq = row.seq;
        e++;
      } else if (task) {
        events.push(...taskEvents(task.record));
        next.segment = task.segment;
        next.index = task.index;
        t++;
      }
    }
    return { events, next_cursor: cursorText(next), more: e < stored.length || t < tasks.length };
  }
}
