// The lineage index in a Durable Object's SQLite, so "what used / generated object X", "the records
// of workflow W" and "task T's record" are index lookups.
// Each EndpointHub indexes the records of its own tasks, which live in the object store (R2) in
// batched NDJSON segments. Per task it keeps one narrow row (task id → segment and byte range); per
// segment, one row for each workflow (and campaign) with its number of records, so recording a task
// costs one b-tree insert, and a workflow's records are read segment by segment. Each owner's
// Registry keeps the task messages ingested through POST /v3/provenance/events in segments too, one
// per request, with one `lineage` row per record (a message sent again replaces its row). Rows of
// `lineage` may also hold a record inline (`record_json`): events ingested before segments, and
// hubs' records indexed before lineage_tasks.
// Queries fan out over the owner's hubs and registry.

import type { LineageItem, TaskLineage } from '../../provenance/prov-document';
import { forEachIdChunk, insertRows } from '../sql-batches';

const SCHEMA = [
  // record_json is '' for a record kept in an R2 segment (segment, seg_offset, seg_length): rows of
  // hubs from before lineage_tasks; new segment records go to lineage_tasks.
  `CREATE TABLE IF NOT EXISTS lineage (task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, workflow_id TEXT, campaign_id TEXT, record_json TEXT NOT NULL,
     segment TEXT, seg_offset INTEGER, seg_length INTEGER)`,
  `CREATE INDEX IF NOT EXISTS lineage_by_workflow ON lineage(owner, workflow_id, campaign_id)`,
  `CREATE TABLE IF NOT EXISTS lineage_objects (object_id TEXT NOT NULL, task_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (object_id, role, task_id)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS lineage_segments (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)`,
  `CREATE TABLE IF NOT EXISTS lineage_tasks (task_id TEXT PRIMARY KEY, segment INTEGER NOT NULL, seg_offset INTEGER NOT NULL, seg_length INTEGER NOT NULL) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS lineage_workflows (owner TEXT NOT NULL, workflow_id TEXT, campaign_id TEXT, segment INTEGER NOT NULL, records INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS lineage_workflows_by_name ON lineage_workflows(owner, workflow_id, campaign_id, segment)`,
  `CREATE INDEX IF NOT EXISTS lineage_workflows_by_segment ON lineage_workflows(segment)`,
];

/** Segments read at once when a workflow query walks them. */
const SEGMENTS_AT_ONCE = 4;

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

/** Reads records from segments in the object store; the index stays free of any storage binding. */
export interface SegmentReader {
  /** Records by their byte ranges, by task id (a segment gone from the store: its records missing). */
  records(pointers: readonly SegmentPointer[]): Promise<Map<string, TaskLineage>>;
  /** Every record of a segment, in order ([] if it is gone). */
  segment(key: string): Promise<TaskLineage[]>;
}

/** A segment's index rows besides its tasks' ranges: [owner, workflow, campaign, records] per workflow; [object, task, role] per object named. */
export interface SegmentRows {
  workflows: Array<[string, string | null, string | null, number]>;
  objects: Array<[string, string, LineageRole]>;
}

/** The index rows of a segment holding `records` (one pass: no rows per record). */
export function segmentRowsOf(records: readonly TaskLineage[]): SegmentRows {
  const workflows: WorkflowCounts = new Map();
  const objects: Array<[string, string, LineageRole]> = [];
  for (const r of records) {
    countWorkflow(workflows, r.owner, r.workflow_id, r.campaign_id, 1);
    objectRowsOf(r, objects);
  }
  return { workflows: [...workflows.values()], objects };
}

/** Records per owner, workflow and campaign, keyed by the three. */
type WorkflowCounts = Map<string, [string, string | null, string | null, number]>;

function countWorkflow(workflows: WorkflowCounts, owner: string, workflowId: string | null, campaignId: string | null, n: number): void {
  const key = `${owner}\n${workflowId ?? '\u0000'}\n${campaignId ?? '\u0000'}`;
  const w = workflows.get(key);
  if (w) w[3] += n;
  else workflows.set(key, [owner, workflowId, campaignId, n]);
}

/** The index rows of one segment made of parts: their objects, and one count per workflow. */
export function mergeSegmentRows(parts: readonly SegmentRows[]): SegmentRows {
  const workflows: WorkflowCounts = new Map();
  const objects: Array<[string, string, LineageRole]> = [];
  for (const part of parts) {
    for (const [owner, workflowId, campaignId, n] of part.workflows) countWorkflow(workflows, owner, workflowId, campaignId, n);
    for (const o of part.objects) objects.push(o);
  }
  return { workflows: [...workflows.values()], objects };
}

/** [object, task, role] for each object a record used or generated (each once per role), appended to `out`. */
function objectRowsOf(r: TaskLineage, out: Array<[string, string, LineageRole]>): Array<[string, string, LineageRole]> {
  pushObjectRows(r.task_id, r.used, 'used', out);
  pushObjectRows(r.task_id, r.generated, 'generated', out);
  return out;
}

function pushObjectRows(taskId: string, items: readonly LineageItem[], role: LineageRole, out: Array<[string, string, LineageRole]>): void {
  let seen: Set<string> | null = null;
  for (const item of items) {
    if (item.object === undefined) continue;
    seen ??= new Set();
    if (seen.has(item.object)) continue;
    seen.add(item.object);
    out.push([item.object, taskId, role]);
  }
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
   * (ingested events): its old rows are replaced, one `lineage` row per record (segment pointer
   * or inline); without, a Ferry task ends only once, and its segment is indexed per segment.
   */
  write(records: readonly TaskLineage[], replace = false, placement?: SegmentPlacement): void {
    if (records.length === 0) return;
    if (replace) forEachIdChunk(records.map((r) => r.task_id), (placeholders, chunk) => this.sql.exec(`DELETE FROM lineage_objects WHERE task_id IN (${placeholders})`, ...chunk));
    if (placement && !replace) {
      this.writeSegmentRows(placement, segmentRowsOf(records));
      return;
    }
    insertRows(
      this.sql,
      'INSERT OR REPLACE INTO lineage (task_id, owner, workflow_id, campaign_id, record_json, segment, seg_offset, seg_length)',
      8,
      records.map((r) => {
        const range = placement?.ranges.get(r.task_id);
        return range ? [r.task_id, r.owner, r.workflow_id, r.campaign_id, '', placement!.key, range.offset, range.length] : [r.task_id, r.owner, r.workflow_id, r.campaign_id, JSON.stringify(r), null, null, null];
      }),
    );
    const objectRows: Array<[string, string, LineageRole]> = [];
    for (const r of records) objectRowsOf(r, objectRows);
    if (objectRows.length > 0) insertRows(this.sql, 'INSERT OR IGNORE INTO lineage_objects (object_id, task_id, role)', 3, objectRows);
  }

  /**
   * Indexes a segment from rows built when its records were (`segmentRowsOf`), without the records
   * (call it inside the caller's transaction): its tasks' byte ranges, its workflows' counts and
   * the objects its records name. A segment written again replaces its rows.
   */
  writeSegmentRows(placement: SegmentPlacement, rows: SegmentRows): void {
    this.sql.exec('INSERT OR IGNORE INTO lineage_segments (key) VALUES (?)', placement.key);
    const segment = this.sql.exec<{ id: number }>('SELECT id FROM lineage_segments WHERE key = ?', placement.key).one().id;
    const tasks: SqlStorageValue[][] = [];
    for (const [taskId, range] of placement.ranges) tasks.push([taskId, segment, range.offset, range.length]);
    insertRows(this.sql, 'INSERT OR REPLACE INTO lineage_tasks (task_id, segment, seg_offset, seg_length)', 4, tasks);
    this.sql.exec('DELETE FROM lineage_workflows WHERE segment = ?', segment);
    insertRows(this.sql, 'INSERT INTO lineage_workflows (owner, workflow_id, campaign_id, segment, records)', 5, rows.workflows.map(([owner, workflowId, campaignId, n]) => [owner, workflowId, campaignId, segment, n]));
    if (rows.objects.length > 0) insertRows(this.sql, 'INSERT OR IGNORE INTO lineage_objects (object_id, task_id, role)', 3, rows.objects);
  }

  /** How many records a workflow (and/or campaign) query would find, without reading them. */
  count(owner: string, workflowId: string | null, campaignId: string | null): number {
    const { where, args } = matching(owner, workflowId, campaignId);
    const inline = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM lineage WHERE ${where}`, ...args).one().n;
    const segmented = this.sql.exec<{ n: number }>(`SELECT COALESCE(SUM(records), 0) AS n FROM lineage_workflows WHERE ${where}`, ...args).one().n;
    return inline + segmented;
  }

  /** The records a query finds, in index order; records in segments are read through `reader`. */
  async query(owner: string, q: LineageQuery, reader?: SegmentReader): Promise<TaskLineage[]> {
    const found: Array<TaskLineage | SegmentPointer> = [];
    const seen = new Set<string>();
    const take = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => {
      for (const [taskId, json, segment, offset, length] of cursor.raw<[string, string, string | null, number | null, number | null]>()) {
        if (seen.has(taskId)) continue;
        seen.add(taskId);
        found.push(segment === null ? (JSON.parse(json) as TaskLineage) : { task_id: taskId, segment, offset: offset!, length: length! });
      }
    };
    const INLINE = 'l.task_id, l.record_json, l.segment, l.seg_offset, l.seg_length';
    const SEGMENTED = "t.task_id, '', s.key, t.seg_offset, t.seg_length";
    const BY_POINTER = 'lineage_tasks t JOIN lineage_segments s ON s.id = t.segment';
    if (q.kind === 'task') {
      take(this.sql.exec(`SELECT ${INLINE} FROM lineage l WHERE l.owner = ? AND l.task_id = ?`, owner, q.task_id));
      take(this.sql.exec(`SELECT ${SEGMENTED} FROM ${BY_POINTER} WHERE t.task_id = ?`, q.task_id));
    } else if (q.kind === 'workflow') {
      const { where, args } = matching(owner, q.workflow_id, q.campaign_id, 'l.');
      take(this.sql.exec(`SELECT ${INLINE} FROM lineage l WHERE ${where} ORDER BY l.rowid LIMIT ?`, ...args, q.limit));
    } else {
      forEachIdChunk(
        q.object_ids,
        (placeholders, chunk) => {
          take(this.sql.exec(`SELECT ${INLINE} FROM lineage_objects o JOIN lineage l ON l.task_id = o.task_id WHERE o.role = ? AND l.owner = ? AND o.object_id IN (${placeholders})`, q.role, owner, ...chunk));
          take(this.sql.exec(`SELECT ${SEGMENTED} FROM lineage_objects o JOIN lineage_tasks t ON t.task_id = o.task_id JOIN lineage_segments s ON s.id = t.segment WHERE o.role = ? AND o.object_id IN (${placeholders})`, q.role, ...chunk));
        },
        2,
      );
    }
    const pointers = found.filter((f): f is SegmentPointer => 'segment' in f);
    let out = found as TaskLineage[];
    if (pointers.length > 0) {
      if (!reader) throw new Error('lineage records in segments, and no segment reader');
      const loaded = await reader.records(pointers);
      out = [];
      for (const f of found) {
        // A segment gone from the object store (deleted by hand, lifecycle rule): the index row alone says too little.
        const record = 'segment' in f ? loaded.get(f.task_id) : f;
        if (record && record.owner === owner) out.push(record);
      }
    }
    if (q.kind === 'workflow' && out.length < q.limit) out.push(...(await this.workflowFromSegments(owner, q, q.limit - out.length, reader)));
    return out;
  }

  /** A workflow's records from the segments that hold any, oldest segment first, up to `limit`. */
  private async workflowFromSegments(owner: string, q: Extract<LineageQuery, { kind: 'workflow' }>, limit: number, reader?: SegmentReader): Promise<TaskLineage[]> {
    const { where, args } = matching(owner, q.workflow_id, q.campaign_id, 'w.');
    const keys = this.sql
      .exec<{ key: string }>(`SELECT DISTINCT s.key AS key FROM lineage_workflows w JOIN lineage_segments s ON s.id = w.segment WHERE ${where} ORDER BY w.segment`, ...args)
      .toArray()
      .map((r) => r.key);
    if (keys.length === 0) return [];
    if (!reader) throw new Error('lineage records in segments, and no segment reader');
    const out: TaskLineage[] = [];
    const wanted = (r: TaskLineage) => r.owner === owner && (q.workflow_id === null || r.workflow_id === q.workflow_id) && (q.campaign_id === null || r.campaign_id === q.campaign_id);
    for (let i = 0; i < keys.length && out.length < limit; i += SEGMENTS_AT_ONCE) {
      const segments = await Promise.all(keys.slice(i, i + SEGMENTS_AT_ONCE).map((key) => reader.segment(key)));
      for (const records of segments) {
        for (const r of records) {
          if (out.length >= limit) break;
          if (wanted(r)) out.push(r);
        }
      }
    }
    return out;
  }
}

/** The WHERE clause matching an owner's records, of a workflow and/or campaign when given. */
function matching(owner: string, workflowId: string | null, campaignId: string | null, prefix = ''): { where: string; args: SqlStorageValue[] } {
  const where = [`${prefix}owner = ?`];
  const args: SqlStorageValue[] = [owner];
  if (workflowId !== null) (where.push(`${prefix}workflow_id = ?`), args.push(workflowId));
  if (campaignId !== null) (where.push(`${prefix}campaign_id = ?`), args.push(campaignId));
  return { where: where.join(' AND '), args };
}
