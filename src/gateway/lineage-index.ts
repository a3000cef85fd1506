// The lineage index in a Durable Object's SQLite: one row per ended task and one row per data
// object a task used or generated, so "what used / generated object X" is an index lookup.
// Each EndpointHub indexes the records of its own tasks, which live in the object store (R2) in
// batched NDJSON segments: a row holds the segment's key and the record's byte range in it. Each
// owner's Registry keeps the task messages ingested through POST /v3/provenance/events inline
// (`record_json`). Queries fan out over the owner's hubs and registry.

import type { LineageItem, TaskLineage } from '../provenance/prov-document';
import { forEachIdChunk, insertRows } from './sql-batches';

const SCHEMA = [
  // record_json is '' for a record kept in an R2 segment (segment, seg_offset, seg_length).
  `CREATE TABLE IF NOT EXISTS lineage (task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, workflow_id TEXT, campaign_id TEXT, record_json TEXT NOT NULL,
     segment TEXT, seg_offset INTEGER, seg_length INTEGER)`,
  `CREATE INDEX IF NOT EXISTS lineage_by_workflow ON lineage(owner, workflow_id, campaign_id)`,
  `CREATE TABLE IF NOT EXISTS lineage_objects (object_id TEXT NOT NULL, task_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (object_id, role, task_id)) WITHOUT ROWID`,
];

export type LineageRole = 'used' | 'generated';

export type LineageQuery =
  | { kind: 'task'; task_id: string }
  | { kind: 'workflow'; workflow_id: string | null; campaign_id: string | null; limit: number }
  /** Tasks that used (or generated) any of the objects. */
  | { kind: 'objects'; object_ids: string[]; role: LineageRole };

/** Where a batch of records was written: the segment's key and each record's byte range in it. */
export interface SegmentPlacement {
  key: string;
  ranges: ReadonlyMap<string, { offset: number; length: number }>;
}

/** A record kept in a segment, to be read from the object store. */
export interface SegmentPointer {
  task_id: string;
  segment: string;
  offset: number;
  length: number;
}

/** Reads records from their segments (by task id); the index stays free of any storage binding. */
export type SegmentLoader = (pointers: readonly SegmentPointer[]) => Promise<Map<string, TaskLineage>>;

function objectIdsOf(items: readonly LineageItem[]): string[] {
  const ids = new Set<string>();
  for (const item of items) if (item.object !== undefined) ids.add(item.object);
  return [...ids];
}

export class LineageIndex {
  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
    const columns = this.sql.exec<{ name: string }>('PRAGMA table_info(lineage)').toArray().map((c) => c.name);
    if (!columns.includes('segment')) {
      this.sql.exec('ALTER TABLE lineage ADD COLUMN segment TEXT');
      this.sql.exec('ALTER TABLE lineage ADD COLUMN seg_offset INTEGER');
      this.sql.exec('ALTER TABLE lineage ADD COLUMN seg_length INTEGER');
    }
  }

  /**
   * Indexes records (call it inside the caller's transaction): inline, or, with `placement`, as
   * pointers into the segment the caller wrote them to. `replace`: a record may be written again
   * (ingested events), its old object rows are dropped first; a Ferry task ends only once.
   */
  write(records: readonly TaskLineage[], replace = false, placement?: SegmentPlacement): void {
    if (records.length === 0) return;
    if (replace) forEachIdChunk(records.map((r) => r.task_id), (placeholders, chunk) => this.sql.exec(`DELETE FROM lineage_objects WHERE task_id IN (${placeholders})`, ...chunk));
    insertRows(
      this.sql,
      `INSERT OR REPLACE INTO lineage (task_id, owner, workflow_id, campaign_id, record_json, segment, seg_offset, seg_length)`,
      8,
      records.map((r) => {
        const range = placement?.ranges.get(r.task_id);
        return range ? [r.task_id, r.owner, r.workflow_id, r.campaign_id, '', placement!.key, range.offset, range.length] : [r.task_id, r.owner, r.workflow_id, r.campaign_id, JSON.stringify(r), null, null, null];
      }),
    );
    const objectRows: string[][] = [];
    for (const r of records) {
      for (const id of objectIdsOf(r.used)) objectRows.push([id, r.task_id, 'used']);
      for (const id of objectIdsOf(r.generated)) objectRows.push([id, r.task_id, 'generated']);
    }
    if (objectRows.length > 0) insertRows(this.sql, 'INSERT OR IGNORE INTO lineage_objects (object_id, task_id, role)', 3, objectRows);
  }

  /** How many records a workflow (and/or campaign) query would find, without reading them. */
  count(owner: string, workflowId: string | null, campaignId: string | null): number {
    const where = ['owner = ?'];
    const args: SqlStorageValue[] = [owner];
    if (workflowId !== null) (where.push('workflow_id = ?'), args.push(workflowId));
    if (campaignId !== null) (where.push('campaign_id = ?'), args.push(campaignId));
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM lineage WHERE ${where.join(' AND ')}`, ...args).one().n;
  }

  /** The records a query finds, in index order; records in segments are read through `load`. */
  async query(owner: string, q: LineageQuery, load?: SegmentLoader): Promise<TaskLineage[]> {
    const found: Array<TaskLineage | SegmentPointer> = [];
    const COLUMNS = 'l.task_id, l.record_json, l.segment, l.seg_offset, l.seg_length';
    const seen = new Set<string>();
    const take = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => {
      for (const [taskId, json, segment, offset, length] of cursor.raw<[string, string, string | null, number | null, number | null]>()) {
        if (seen.has(taskId)) continue;
        seen.add(taskId);
        found.push(segment === null ? (JSON.parse(json) as TaskLineage) : { task_id: taskId, segment, offset: offset!, length: length! });
      }
    };
    if (q.kind === 'task') {
      take(this.sql.exec(`SELECT ${COLUMNS} FROM lineage l WHERE l.owner = ? AND l.task_id = ?`, owner, q.task_id));
    } else if (q.kind === 'workflow') {
      const where = ['l.owner = ?'];
      const args: SqlStorageValue[] = [owner];
      if (q.workflow_id !== null) (where.push('l.workflow_id = ?'), args.push(q.workflow_id));
      if (q.campaign_id !== null) (where.push('l.campaign_id = ?'), args.push(q.campaign_id));
      take(this.sql.exec(`SELECT ${COLUMNS} FROM lineage l WHERE ${where.join(' AND ')} ORDER BY l.rowid LIMIT ?`, ...args, q.limit));
    } else {
      forEachIdChunk(
        q.object_ids,
        (placeholders, chunk) =>
          take(this.sql.exec(`SELECT ${COLUMNS} FROM lineage_objects o JOIN lineage l ON l.task_id = o.task_id WHERE o.role = ? AND l.owner = ? AND o.object_id IN (${placeholders})`, q.role, owner, ...chunk)),
        2,
      );
    }
    const pointers = found.filter((f): f is SegmentPointer => 'segment' in f);
    if (pointers.length === 0) return found as TaskLineage[];
    if (!load) throw new Error('lineage records in segments, and no segment loader');
    const loaded = await load(pointers);
    const out: TaskLineage[] = [];
    for (const f of found) {
      if (!('segment' in f)) out.push(f);
      else {
        const record = loaded.get(f.task_id);
        // A segment gone from the object store (deleted by hand, lifecycle rule): the index row alone says too little.
        if (record) out.push(record);
      }
    }
    return out;
  }
}
