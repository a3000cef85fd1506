// The lineage index in a Durable Object's SQLite: one row per ended task (its record as JSON) and
// one row per data object a task used or generated, so "what used / generated object X" is an
// index lookup. Each EndpointHub keeps the records of its own tasks (written in the same
// transaction as the task's final outcome); each owner's Registry keeps the task messages ingested
// through POST /v3/provenance/events. Queries fan out over the owner's hubs and registry.

import type { LineageItem, TaskLineage } from '../provenance/prov-document';
import { forEachIdChunk, insertRows } from './sql-batches';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS lineage (task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, workflow_id TEXT, campaign_id TEXT, record_json TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS lineage_by_workflow ON lineage(owner, workflow_id, campaign_id)`,
  `CREATE TABLE IF NOT EXISTS lineage_objects (object_id TEXT NOT NULL, task_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (object_id, role, task_id)) WITHOUT ROWID`,
];

export type LineageRole = 'used' | 'generated';

export type LineageQuery =
  | { kind: 'task'; task_id: string }
  | { kind: 'workflow'; workflow_id: string | null; campaign_id: string | null; limit: number }
  /** Tasks that used (or generated) any of the objects. */
  | { kind: 'objects'; object_ids: string[]; role: LineageRole };

function objectIdsOf(items: readonly LineageItem[]): string[] {
  const ids = new Set<string>();
  for (const item of items) if (item.object !== undefined) ids.add(item.object);
  return [...ids];
}

export class LineageIndex {
  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  /**
   * Writes records (call it inside the caller's transaction). `replace`: a record may be written
   * again (ingested events), its old object rows are dropped first; a Ferry task ends only once.
   */
  write(records: readonly TaskLineage[], replace = false): void {
    if (records.length === 0) return;
    if (replace) forEachIdChunk(records.map((r) => r.task_id), (placeholders, chunk) => this.sql.exec(`DELETE FROM lineage_objects WHERE task_id IN (${placeholders})`, ...chunk));
    insertRows(
      this.sql,
      `INSERT OR REPLACE INTO lineage (task_id, owner, workflow_id, campaign_id, record_json)`,
      5,
      records.map((r) => [r.task_id, r.owner, r.workflow_id, r.campaign_id, JSON.stringify(r)]),
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

  query(owner: string, q: LineageQuery): TaskLineage[] {
    const out: TaskLineage[] = [];
    const take = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => {
      for (const [json] of cursor.raw<[string]>()) out.push(JSON.parse(json) as TaskLineage);
    };
    if (q.kind === 'task') {
      take(this.sql.exec('SELECT record_json FROM lineage WHERE owner = ? AND task_id = ?', owner, q.task_id));
    } else if (q.kind === 'workflow') {
      const where = ['owner = ?'];
      const args: SqlStorageValue[] = [owner];
      if (q.workflow_id !== null) (where.push('workflow_id = ?'), args.push(q.workflow_id));
      if (q.campaign_id !== null) (where.push('campaign_id = ?'), args.push(q.campaign_id));
      take(this.sql.exec(`SELECT record_json FROM lineage WHERE ${where.join(' AND ')} ORDER BY rowid LIMIT ?`, ...args, q.limit));
    } else {
      const seen = new Set<string>();
      forEachIdChunk(
        q.object_ids,
        (placeholders, chunk) => {
          const cursor = this.sql.exec(
            `SELECT l.task_id, l.record_json FROM lineage_objects o JOIN lineage l ON l.task_id = o.task_id
             WHERE o.role = ? AND l.owner = ? AND o.object_id IN (${placeholders})`,
            q.role,
            owner,
            ...chunk,
          );
          for (const [taskId, json] of cursor.raw<[string, string]>()) {
            if (seen.has(taskId)) continue;
            seen.add(taskId);
            out.push(JSON.parse(json) as TaskLineage);
          }
        },
        2,
      );
    }
    return out;
  }
}
