// Lineage records built when their tasks ended (from the endpoint's facts), kept in SQLite until
// written to a segment: one row per frame of results, appended in the transaction that ended the
// tasks, holding the frame's records as NDJSON lines and the index rows they will need, so writing
// a segment (EndpointHub.flushLineage) neither reads the tasks back nor builds a record.

import type { TaskLineage } from '../../provenance/prov-document';
import { mergeSegmentRows, segmentRowsOf, type SegmentRows } from './lineage-index';
import { ndjson } from './lineage-segments';

// AUTOINCREMENT: ids never come back after rows are deleted; a segment is named by its first row.
const SCHEMA = [`CREATE TABLE IF NOT EXISTS lineage_pending (id INTEGER PRIMARY KEY AUTOINCREMENT, lines TEXT NOT NULL, meta TEXT NOT NULL, records INTEGER NOT NULL)`];

/** A pending row's index material, as JSON. */
interface PendingMeta extends SegmentRows {
  ids: string[];
}

/** Rows taken for one segment: their records' lines in order, the ids of those records, their index rows. */
export interface PendingBatch {
  firstId: number;
  lastId: number;
  text: string;
  ids: string[];
  rows: SegmentRows;
  /** Rows wait beyond these. */
  more: boolean;
}

export class LineagePending {
  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  /** Keeps records to write (call it inside the transaction that ended their tasks). */
  append(records: readonly TaskLineage[]): void {
    if (records.length === 0) return;
    const meta: PendingMeta = { ids: records.map((r) => r.task_id), ...segmentRowsOf(records) };
    this.sql.exec('INSERT INTO lineage_pending (lines, meta, records) VALUES (?, ?, ?)', ndjson(records), JSON.stringify(meta), records.length);
  }

  /**
   * The oldest rows holding at least `limit` records (all of them when fewer wait), one row past
   * `limit` at most: a frame's row is never split, and a segment short of `limit` would cost one
   * more object-store write per `limit` records. Null if fewer than `atLeast` records wait (none, by default).
   */
  take(limit: number, atLeast = 1): PendingBatch | null {
    // Which rows first (ids and counts only), then their lines: every cursor read to its end.
    const counts = [...this.sql.exec('SELECT id, records FROM lineage_pending ORDER BY id').raw<[number, number]>()];
    let waiting = 0;
    for (const [, n] of counts) waiting += n;
    if (counts.length === 0 || waiting < atLeast) return null;
    let records = 0;
    let last = 0;
    while (last < counts.length && records < limit) records += counts[last++]![1];
    const firstId = counts[0]![0];
    const lastId = counts[last - 1]![0];
    const taken = this.sql.exec<{ lines: string; meta: string }>('SELECT lines, meta FROM lineage_pending WHERE id BETWEEN ? AND ? ORDER BY id', firstId, lastId).toArray();
    const metas = taken.map((r) => JSON.parse(r.meta) as PendingMeta);
    return { firstId, lastId, text: taken.map((r) => r.lines).join(''), ids: metas.flatMap((m) => m.ids), rows: mergeSegmentRows(metas), more: last < counts.length };
  }

  /** Drops the rows a batch took (call it inside the transaction that indexes their segment). */
  remove(batch: PendingBatch): void {
    this.sql.exec('DELETE FROM lineage_pending WHERE id BETWEEN ? AND ?', batch.firstId, batch.lastId);
  }

  /** Records the rows hold. */
  count(): number {
    return this.sql.exec<{ n: number }>('SELECT COALESCE(SUM(records), 0) AS n FROM lineage_pending').one().n;
  }

  /**
   * One more attempt in the pending records of these tasks (a result sent again after its task had
   * ended), where one waits. Rare: each id is looked for in the rows' text.
   */
  countAttempt(taskIds: readonly string[]): void {
    for (const taskId of taskIds) {
      const needle = JSON.stringify(taskId);
      for (const row of this.sql.exec<{ id: number; lines: string; meta: string }>('SELECT id, lines, meta FROM lineage_pending WHERE instr(meta, ?) > 0', needle).toArray()) {
        const line = (JSON.parse(row.meta) as PendingMeta).ids.indexOf(taskId);
        if (line < 0) continue;
        const lines = row.lines.split('\n');
        const record = JSON.parse(lines[line]!) as TaskLineage;
        record.attempts++;
        lines[line] = JSON.stringify(record);
        this.sql.exec('UPDATE lineage_pending SET lines = ? WHERE id = ?', lines.join('\n'), row.id);
      }
    }
  }

  hasAny(): boolean {
    return this.sql.exec('SELECT 1 FROM lineage_pending LIMIT 1').toArray().length > 0;
  }
}
