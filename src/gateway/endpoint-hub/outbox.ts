// The hub's outbox: tasks that still need delivery to the agent (or are delivered and unfinished),
// each with its TaskMessage already encoded, and the code of every function those tasks name.
// `delivered`: 0 waiting, 1 sent, 2 ended (final) with its lineage record still to write: the row
// keeps the payload for it and leaves once the record is written (or at once, lineage off).

import type { FunctionSpec } from '../../protocol/wire';
import { forEachIdChunk, insertRows } from '../sql-batches';

// Partial indexes: a row enters one when it is submitted (waiting) and when it ends, and moves
// between no others, so marking rows sent or ended rewrites no index entry it does not have to.
const PARTIAL_INDEXES = [
  `CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox(seq) WHERE delivered = 0`,
  `CREATE INDEX IF NOT EXISTS outbox_ended ON outbox(seq) WHERE delivered = 2`,
];

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL UNIQUE, function_uuid TEXT NOT NULL,
     message TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0)`,
  ...PARTIAL_INDEXES,
  `CREATE TABLE IF NOT EXISTS outbox_functions (function_uuid TEXT PRIMARY KEY, spec TEXT NOT NULL)`,
];

export interface OutboxRow {
  seq: number;
  task_id: string;
  function_uuid: string;
  /** The TaskMessage as JSON text, spliced into a `tasks` frame unparsed. */
  message: string;
}

export class Outbox {
  /** Encoded FunctionSpecs by uuid: function code never changes under an id. */
  private readonly specCache = new Map<string, string>();

  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  /**
   * On wake, outboxes of older versions: the deliveries column (at 0) for those created before
   * deliveries were counted; the partial indexes for those with one index over (delivered, seq).
   */
  migrate(): void {
    const columns = this.sql.exec<{ name: string }>('PRAGMA table_info(outbox)').toArray().map((c) => c.name);
    if (columns.length === 0) return;
    if (!columns.includes('deliveries')) this.sql.exec('ALTER TABLE outbox ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0');
    this.sql.exec('DROP INDEX IF EXISTS outbox_pending');
    for (const statement of PARTIAL_INDEXES) this.sql.exec(statement);
  }

  enqueue(rows: ReadonlyArray<{ task_id: string; function_uuid: string; message: string }>): void {
    insertRows(this.sql, 'INSERT INTO outbox (task_id, function_uuid, message)', 3, rows.map((r) => [r.task_id, r.function_uuid, r.message]));
  }

  /** Keeps the code of functions, so tasks can be delivered even after their function is deleted. */
  saveFunctions(specs: readonly FunctionSpec[]): void {
    for (const spec of specs) {
      if (this.specCache.has(spec.function_uuid)) continue;
      const text = JSON.stringify(spec);
      this.sql.exec('INSERT OR IGNORE INTO outbox_functions (function_uuid, spec) VALUES (?, ?)', spec.function_uuid, text);
      this.specCache.set(spec.function_uuid, text);
    }
  }

  functionSpecJson(functionUuid: string): string | null {
    let text = this.specCache.get(functionUuid);
    if (text === undefined) {
      const row = this.sql.exec<{ spec: string }>('SELECT spec FROM outbox_functions WHERE function_uuid = ?', functionUuid).toArray()[0];
      if (!row) return null;
      text = row.spec;
      this.specCache.set(functionUuid, text);
    }
    return text;
  }

  /** The oldest undelivered rows. */
  pending(limit: number): OutboxRow[] {
    return this.sql.exec<{ seq: number; task_id: string; function_uuid: string; message: string }>('SELECT seq, task_id, function_uuid, message FROM outbox WHERE delivered = 0 ORDER BY seq LIMIT ?', limit).toArray();
  }

  /** Marks every undelivered row up to `seq` sent: exactly the rows `pending()` just gave; each counts a delivery. */
  markDeliveredThrough(seq: number): void {
    this.sql.exec('UPDATE outbox SET delivered = 1, deliveries = deliveries + 1 WHERE delivered = 0 AND seq <= ?', seq);
  }

  /** The agent holds these (reconcile): delivered, without counting another delivery. */
  markDelivered(taskIds: readonly string[]): void {
    forEachIdChunk(taskIds, (placeholders, chunk) => this.sql.exec(`UPDATE outbox SET delivered = 1 WHERE task_id IN (${placeholders}) AND delivered < 2`, ...chunk));
  }

  markUndelivered(taskIds: readonly string[]): void {
    forEachIdChunk(taskIds, (placeholders, chunk) => this.sql.exec(`UPDATE outbox SET delivered = 0 WHERE task_id IN (${placeholders}) AND delivered < 2`, ...chunk));
  }

  /** Tasks that reached a final state: their rows wait for their lineage records. */
  markEnded(taskIds: readonly string[]): void {
    forEachIdChunk(taskIds, (placeholders, chunk) => this.sql.exec(`UPDATE outbox SET delivered = 2 WHERE task_id IN (${placeholders})`, ...chunk));
  }

  /** The oldest ended rows, for their lineage records (their payloads: `deliveries` with messages). */
  ended(limit: number): Array<{ seq: number; task_id: string }> {
    return this.sql.exec<{ seq: number; task_id: string }>('SELECT seq, task_id FROM outbox WHERE delivered = 2 ORDER BY seq LIMIT ?', limit).toArray();
  }

  hasEnded(): boolean {
    return this.sql.exec('SELECT 1 FROM outbox WHERE delivered = 2 LIMIT 1').toArray().length > 0;
  }

  deliveredTaskIds(): string[] {
    return this.sql.exec<{ task_id: string }>('SELECT task_id FROM outbox WHERE delivered = 1').toArray().map((r) => r.task_id);
  }

  /** A page of rows after `afterSeq`, oldest first (only undelivered ones with `pendingOnly`). */
  taskIdsAfter(afterSeq: number, limit: number, pendingOnly = false): Array<{ seq: number; task_id: string }> {
    return this.sql
      .exec<{ seq: number; task_id: string }>(`SELECT seq, task_id FROM outbox WHERE seq > ? AND delivered ${pendingOnly ? '= 0' : '< 2'} ORDER BY seq LIMIT ?`, afterSeq, limit)
      .toArray();
  }

  /** Which of `taskIds` are in the outbox, and whether each was delivered. */
  lookup(taskIds: readonly string[]): Map<string, boolean> {
    const found = new Map<string, boolean>();
    forEachIdChunk(taskIds, (placeholders, chunk) => {
      for (const [taskId, delivered] of this.sql.exec(`SELECT task_id, delivered FROM outbox WHERE task_id IN (${placeholders})`, ...chunk).raw<[string, number]>()) {
        found.set(taskId, delivered === 1);
      }
    });
    return found;
  }

  /**
   * Times each task was sent to an agent. A task sent again after a reconcile found it missing (lost
   * in transit, or with a crashed agent) counts 2: the gateway's own evidence of a lost delivery.
   */
  deliveries(taskIds: readonly string[], messages?: Map<string, string>): Map<string, number> {
    const found = new Map<string, number>();
    // With `messages`, each row's TaskMessage too, in the same read.
    const columns = messages ? 'task_id, deliveries, message' : 'task_id, deliveries';
    forEachIdChunk(taskIds, (placeholders, chunk) => {
      for (const [taskId, n, message] of this.sql.exec(`SELECT ${columns} FROM outbox WHERE task_id IN (${placeholders})`, ...chunk).raw<[string, number, string]>()) {
        found.set(taskId, n);
        if (messages) messages.set(taskId, message);
      }
    });
    return found;
  }

  /** Drops rows of tasks not (yet) marked ended; an ended row leaves with `removeEnded`. */
  remove(taskIds: readonly string[]): void {
    forEachIdChunk(taskIds, (placeholders, chunk) => this.sql.exec(`DELETE FROM outbox WHERE task_id IN (${placeholders}) AND delivered < 2`, ...chunk));
  }

  removeEnded(taskIds: readonly string[]): void {
    // `+delivered` keeps `delivered = 2` from choosing an index: with the old (delivered, seq) index
    // SQLite walked every ended row per chunk of ids (23 µs a task under load); the task_id index it is.
    forEachIdChunk(taskIds, (placeholders, chunk) => this.sql.exec(`DELETE FROM outbox WHERE task_id IN (${placeholders}) AND +delivered = 2`, ...chunk));
  }

  counts(): { queued: number; delivered: number } {
    const row = this.sql.exec<{ queued: number; delivered: number }>('SELECT COALESCE(SUM(delivered = 0), 0) AS queued, COALESCE(SUM(delivered = 1), 0) AS delivered FROM outbox').one();
    return row;
  }
}
