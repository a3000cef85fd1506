// The hub's record of changes, from which GET /v3/events replays and streams: no log table of its
// own. Each task row carries `change_seq`, set from one counter in the same statement that changes
// its state (insert, transition, outcome), so "what changed after position P" is
// `WHERE change_seq > P ORDER BY change_seq` on an index. A row keeps only its latest change: a
// client that falls behind or resumes gets each task's latest doc once (its task_transitions list
// every state it passed), and a task that ended is never stamped again, so its terminal event
// comes exactly once. The endpoint's status event is one row, stamped from the same counter.

import type { EndpointStatus } from '../../protocol/api';
import type { EventType } from '../../protocol/events';
import { forEachIdChunk } from '../sql-batches';
import { RECORD_COLUMNS, toRecord, type RecordRow } from '../task-store/sqlite-task-store';
import type { TaskRecord } from '../task-store/port';

/** Adds what the event log needs to a hub's tables (new and old ones alike; idempotent). */
export function migrateEventLog(sql: SqlStorage): void {
  const columns = sql.exec<{ name: string }>('PRAGMA table_info(tasks)').toArray().map((c) => c.name);
  // Tasks stored before the column existed have none: they are not replayed (they are still readable).
  if (!columns.includes('change_seq')) sql.exec('ALTER TABLE tasks ADD COLUMN change_seq INTEGER');
  sql.exec('CREATE INDEX IF NOT EXISTS tasks_by_change ON tasks(change_seq)');
  sql.exec('CREATE TABLE IF NOT EXISTS endpoint_event (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), seq INTEGER NOT NULL, status TEXT NOT NULL)');
}

/**
 * The hub's change counter. Positions are handed out inside the write's transaction (the hub's
 * thread is the only writer, so commit order is position order); a rolled-back write leaves a gap,
 * which nobody notices. `committed()` after the transaction tells subscribers (one call per write);
 * `ended`: the write ended tasks (or changed the endpoint's status), which streams read at once,
 * where other changes may wait a moment to be read together (routes/events.ts).
 */
export class ChangeCounter {
  private last: number | null = null;
  private published = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly onCommit: (position: number, ended: boolean) => void,
  ) {}

  /** The newest position handed out (0: none yet). */
  head(): number {
    return (this.last ??= this.stored());
  }

  /** The newest position in storage (an index's last entry): what a read of changes goes up to. */
  stored(): number {
    const task = this.sql.exec<{ m: number | null }>('SELECT MAX(change_seq) AS m FROM tasks').one().m ?? 0;
    const status = this.sql.exec<{ seq: number }>('SELECT seq FROM endpoint_event').toArray()[0]?.seq ?? 0;
    return Math.max(task, status);
  }

  next(): number {
    this.last = this.head() + 1;
    return this.last;
  }

  /** Hands out `n` consecutive positions; answers the first. */
  take(n: number): number {
    const first = this.head() + 1;
    this.last = first + n - 1;
    return first;
  }

  committed(ended = false): void {
    if (this.last === null || this.last <= this.published) return;
    this.published = this.last;
    this.onCommit(this.last, ended);
  }
}

/** What one hub's part of a stream selects (task ids: only this endpoint's). */
export type HubFilter = { kind: 'task_group'; task_group_id: string } | { kind: 'endpoint' } | { kind: 'workflow'; workflow_id: string } | { kind: 'tasks'; task_ids: string[] };

export interface ChangedTask {
  seq: number;
  record: TaskRecord;
}

/** Positions one read scans at most, so a filter matching few rows of a busy hub stays cheap per call. */
const SCAN_WINDOW = 20_000;

/**
 * Tasks the filter selects whose latest change is after `after`, oldest change first, at most
 * `limit`. `position`: where the next read starts (the last row's, or the end of the window
 * scanned when it found fewer); `more`: changes after `position` exist now.
 */
export function changedTasks(sql: SqlStorage, filter: HubFilter, after: number, head: number, limit: number): { tasks: ChangedTask[]; position: number; more: boolean } {
  const tasks: ChangedTask[] = [];
  if (filter.kind === 'tasks') {
    // Up to 1,000 ids, by primary key: no scan at all.
    forEachIdChunk(
      filter.task_ids,
      (placeholders, chunk) => {
        const cursor = sql.exec(`SELECT ${RECORD_COLUMNS}, t.change_seq FROM tasks t JOIN task_requests r ON r.request_id = t.request_id WHERE t.change_seq > ? AND t.task_id IN (${placeholders})`, after, ...chunk);
        for (const row of cursor.raw<[...RecordRow, number]>()) tasks.push({ seq: row[row.length - 1] as number, record: toRecord(row as unknown as RecordRow) });
      },
      1,
    );
    tasks.sort((a, b) => a.seq - b.seq);
    const page = tasks.slice(0, limit);
    return { tasks: page, position: page.length === tasks.length ? head : page[page.length - 1]!.seq, more: page.length < tasks.length };
  }
  const until = Math.min(head, after + SCAN_WINDOW);
  const where = filter.kind === 'task_group' ? 'AND t.task_group_id = ?' : filter.kind === 'workflow' ? 'AND r.workflow_id = ?' : '';
  const bind = filter.kind === 'task_group' ? [filter.task_group_id] : filter.kind === 'workflow' ? [filter.workflow_id] : [];
  const cursor = sql.exec(
    `SELECT ${RECORD_COLUMNS}, t.change_seq FROM tasks t INDEXED BY tasks_by_change JOIN task_requests r ON r.request_id = t.request_id
      WHERE t.change_seq > ? AND t.change_seq <= ? ${where} ORDER BY t.change_seq LIMIT ?`,
    after,
    until,
    ...bind,
    limit,
  );
  for (const row of cursor.raw<[...RecordRow, number]>()) tasks.push({ seq: row[row.length - 1] as number, record: toRecord(row as unknown as RecordRow) });
  const full = tasks.length === limit;
  const position = full ? tasks[tasks.length - 1]!.seq : until;
  return { tasks, position, more: position < head };
}

/** The position before the endpoint's `n` latest changed tasks: where a new endpoint stream starts. */
export function recentStart(sql: SqlStorage, n: number): number {
  const row = sql.exec<{ change_seq: number }>('SELECT change_seq FROM tasks INDEXED BY tasks_by_change WHERE change_seq IS NOT NULL ORDER BY change_seq DESC LIMIT 1 OFFSET ?', n - 1).toArray()[0];
  return row ? row.change_seq - 1 : 0;
}

/** What a status event compares: a heartbeat's queue counts alone are not a change worth an event. */
export function statusKey(status: EndpointStatus): string {
  const d = status.details;
  return `${status.status} ${d.total_workers} ${d.idle_workers} ${d.managers} ${d.blocks}`;
}

export function readStatusEvent(sql: SqlStorage): { seq: number; status: EndpointStatus } | null {
  const row = sql.exec<{ seq: number; status: string }>('SELECT seq, status FROM endpoint_event').toArray()[0];
  return row ? { seq: row.seq, status: JSON.parse(row.status) as EndpointStatus } : null;
}

export function writeStatusEvent(sql: SqlStorage, seq: number, status: EndpointStatus): void {
  sql.exec('INSERT OR REPLACE INTO endpoint_event (singleton, seq, status) VALUES (1, ?, ?)', seq, JSON.stringify(status));
}

/** One event as the hub answers it: `data` is JSON text (a task doc is spliced, never re-encoded). */
export interface HubEvent {
  seq: number;
  type: EventType;
  data: string;
}

export interface EventsPage {
  events: HubEvent[];
  /** The hub's position after these events: the next read's `after`. */
  position: number;
  /** More changes wait after `position`: read again without waiting for a tick. */
  more: boolean;
}
