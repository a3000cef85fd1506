// The TaskStore adapter on the endpoint hub's own Durable Object SQLite. Sharing the database with
// the hub's outbox lets one `transactionSync` write tasks and their delivery rows together.

import { canTransition, isFinal, type TaskState, type TransitionEvent } from '../../protocol/task-state';
import type { ChangeCounter } from '../endpoint-hub/event-log';
import { forEachIdChunk, insertRows } from '../sql-batches';
import type { AlongsideWrites, FinishAlongside, FinishReport, NewTaskBatch, TaskListFilter, TaskListPage, TaskListRow, TaskOutcome, TaskRecord, TaskStateRow, TaskStore } from './port';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS task_requests (
     request_id TEXT PRIMARY KEY, workflow_id TEXT, campaign_id TEXT, resource_specification TEXT, created_at REAL NOT NULL, submitter TEXT)`,
  `CREATE TABLE IF NOT EXISTS task_groups (task_group_id TEXT PRIMARY KEY, created_at REAL NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS tasks (
     task_id TEXT PRIMARY KEY, task_group_id TEXT NOT NULL, request_id TEXT NOT NULL, function_uuid TEXT NOT NULL,
     state TEXT NOT NULL, transitions TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
     result TEXT, result_ref TEXT, exception TEXT, stdout TEXT, completion_t REAL, execution TEXT, change_seq INTEGER)`,
  `CREATE INDEX IF NOT EXISTS tasks_by_group ON tasks(task_group_id)`,
];

export const RECORD_COLUMNS = `t.task_id, t.task_group_id, t.function_uuid, t.state, t.transitions, t.attempts, t.created_at,
  t.result, t.result_ref, t.exception, t.stdout, t.completion_t, t.execution, r.workflow_id, r.campaign_id, r.resource_specification, r.submitter`;

export type RecordRow = [string, string, string, string, string, number, number, string | null, string | null, string | null, string | null, number | null, string | null, string | null, string | null, string | null, string | null];

export class SqliteTaskStore implements TaskStore {
  /** `changes`: stamps each changed row's `change_seq` (the hub's event log, event-log.ts). */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly changes?: ChangeCounter,
  ) {}

  private get sql(): SqlStorage {
    return this.storage.sql;
  }

  /** Creates the tables; the hub calls it once, when the endpoint is first registered. */
  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  async createTasks(batch: NewTaskBatch, alongside?: AlongsideWrites): Promise<void> {
    const transitions = JSON.stringify({ 'waiting-for-ep': batch.created_at });
    this.storage.transactionSync(() => {
      this.sql.exec(
        'INSERT INTO task_requests (request_id, workflow_id, campaign_id, resource_specification, created_at, submitter) VALUES (?, ?, ?, ?, ?, ?)',
        batch.request_id,
        batch.workflow_id,
        batch.campaign_id,
        batch.resource_specification_json,
        batch.created_at,
        batch.submitter ?? null,
      );
      if (batch.new_group) this.sql.exec('INSERT INTO task_groups (task_group_id, created_at) VALUES (?, ?)', batch.task_group_id, batch.created_at);
      if (this.changes) {
        const first = this.changes.take(batch.tasks.length);
        const rows = batch.tasks.map((t, i) => [t.task_id, batch.task_group_id, batch.request_id, t.function_uuid, 'waiting-for-ep', transitions, batch.created_at, first + i]);
        insertRows(this.sql, 'INSERT INTO tasks (task_id, task_group_id, request_id, function_uuid, state, transitions, created_at, change_seq)', 8, rows);
      } else {
        const rows = batch.tasks.map((t) => [t.task_id, batch.task_group_id, batch.request_id, t.function_uuid, 'waiting-for-ep', transitions, batch.created_at]);
        insertRows(this.sql, 'INSERT INTO tasks (task_id, task_group_id, request_id, function_uuid, state, transitions, created_at)', 7, rows);
      }
      alongside?.();
    });
    this.changes?.committed();
  }

  async readStates(taskIds: readonly string[], withFacts = false): Promise<Map<string, TaskStateRow>> {
    const states = new Map<string, TaskStateRow>();
    if (withFacts) {
      forEachIdChunk(taskIds, (placeholders, chunk) => {
        const cursor = this.sql.exec(
          `SELECT t.task_id, t.state, t.transitions, t.task_group_id, t.function_uuid, t.attempts, r.workflow_id, r.campaign_id, r.submitter
             FROM tasks t JOIN task_requests r ON r.request_id = t.request_id WHERE t.task_id IN (${placeholders})`,
          ...chunk,
        );
        for (const [task_id, state, transitions, task_group_id, function_uuid, attempts, workflow_id, campaign_id, submitter] of cursor.raw<[string, string, string, string, string, number, string | null, string | null, string | null]>()) {
          states.set(task_id, { task_id, state: state as TaskState, transitions: JSON.parse(transitions), facts: { task_group_id, function_uuid, attempts, workflow_id, campaign_id, submitter } });
        }
      });
      return states;
    }
    forEachIdChunk(taskIds, (placeholders, chunk) => {
      for (const [task_id, state, transitions] of this.sql.exec(`SELECT task_id, state, transitions FROM tasks WHERE task_id IN (${placeholders})`, ...chunk).raw<[string, string, string]>()) {
        states.set(task_id, { task_id, state: state as TaskState, transitions: JSON.parse(transitions) });
      }
    });
    return states;
  }

  async readTasks(taskIds: readonly string[]): Promise<TaskRecord[]> {
    const records: TaskRecord[] = [];
    forEachIdChunk(taskIds, (placeholders, chunk) => {
      const cursor = this.sql.exec(`SELECT ${RECORD_COLUMNS} FROM tasks t JOIN task_requests r ON r.request_id = t.request_id WHERE t.task_id IN (${placeholders})`, ...chunk);
      for (const row of cursor.raw<RecordRow>()) records.push(toRecord(row));
    });
    return records;
  }

  async saveTransitions(moves: readonly TransitionEvent[], alongside?: AlongsideWrites): Promise<void> {
    // Moves of one frame share from, to and time: one UPDATE per chunk of ids, not one per task.
    const groups = new Map<string, { move: TransitionEvent; ids: string[] }>();
    for (const move of moves) {
      if (!canTransition(move.from, move.to)) continue;
      const key = `${move.from}\n${move.to}\n${move.at}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { move, ids: [] }));
      group.ids.push(move.task_id);
    }
    const changes = this.changes;
    this.storage.transactionSync(() => {
      for (const { move, ids } of groups.values()) {
        if (changes) {
          // Each row its own position: (id, position) pairs joined in, still one statement per chunk.
          forEachIdChunk(
            ids,
            (_, chunk) => {
              const first = changes.take(chunk.length);
              const pairs = chunk.flatMap((id, i) => [id, first + i]);
              this.sql.exec(
                `UPDATE tasks SET state = ?, transitions = json_set(transitions, ?, ?), change_seq = v.column2
                   FROM (VALUES ${new Array(chunk.length).fill('(?,?)').join(',')}) AS v WHERE tasks.task_id = v.column1 AND tasks.state = ?`,
                move.to,
                `$."${move.to}"`,
                move.at,
                ...pairs,
                move.from,
              );
            },
            52, // 4 + 2 x 48 parameters
          );
          continue;
        }
        forEachIdChunk(
          ids,
          (placeholders, chunk) =>
            this.sql.exec(`UPDATE tasks SET state = ?, transitions = json_set(transitions, ?, ?) WHERE state = ? AND task_id IN (${placeholders})`, move.to, `$."${move.to}"`, move.at, move.from, ...chunk),
          4,
        );
      }
      alongside?.();
    });
    changes?.committed();
  }

  async finishTasks(outcomes: readonly TaskOutcome[], extraAttempts: readonly string[], alongside?: FinishAlongside): Promise<FinishReport> {
    const report: FinishReport = { finished: [], refused: [] };
    const finish = `UPDATE tasks SET state = ?, transitions = json_patch(transitions, ?), result = ?, result_ref = ?, exception = ?, stdout = ?, completion_t = ?, execution = ?,
       attempts = MAX(attempts + ?, ?)${this.changes ? ', change_seq = ?' : ''} WHERE task_id = ? AND state NOT IN ('success', 'failed', 'cancelled')`;
    this.storage.transactionSync(() => {
      for (const o of outcomes) {
        // Only a task not final yet takes an outcome: the first final outcome wins.
        const stored = isFinal(o.state)
          ? this.sql.exec(
              finish,
              o.state,
              JSON.stringify(o.transitions),
              o.result_json,
              o.result_ref,
              o.exception_json,
              o.stdout,
              o.completion_t,
              o.execution_json,
              o.counts_attempt ? 1 : 0,
              o.reported_attempt,
              // A position per outcome: a refused outcome leaves a gap.
              ...(this.changes ? [this.changes.next()] : []),
              o.task_id,
            ).rowsWritten > 0
          : false;
        if (stored) {
          report.finished.push(o.task_id);
          continue;
        }
        report.refused.push(o.task_id);
        if (o.counts_attempt) this.sql.exec('UPDATE tasks SET attempts = MAX(attempts + 1, ?) WHERE task_id = ?', o.reported_attempt, o.task_id);
      }
      for (const taskId of extraAttempts) this.sql.exec('UPDATE tasks SET attempts = attempts + 1 WHERE task_id = ?', taskId);
      alongside?.(report.finished);
    });
    this.changes?.committed(true);
    return report;
  }

  async listTasks(filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<TaskListPage> {
    // The scan walks rowids down (tasks are appended in submission order): no index beyond the
    // table's own, so listing costs the submit path nothing.
    const below = before ?? Number.MAX_SAFE_INTEGER;
    const conditions: string[] = [];
    const values: SqlStorageValue[] = [];
    for (const [column, value] of [['t.state', filter.status], ['t.function_uuid', filter.function_uuid], ['r.workflow_id', filter.workflow_id], ['t.task_group_id', filter.task_group_id]] as const) {
      if (value === undefined) continue;
      conditions.push(`${column} = ?`);
      values.push(value);
    }
    const rows: TaskListRow[] = [];
    const cursor = this.sql.exec(
      `SELECT t.rowid, t.task_id, t.state, t.function_uuid, t.task_group_id, r.workflow_id, t.created_at, t.completion_t, t.attempts
         FROM (SELECT rowid, task_id, state, function_uuid, task_group_id, request_id, created_at, completion_t, attempts FROM tasks WHERE rowid < ? ORDER BY rowid DESC LIMIT ?) t
         JOIN task_requests r ON r.request_id = t.request_id
        ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY t.rowid DESC LIMIT ?`,
      below,
      budget,
      ...values,
      limit,
    );
    for (const [pos, task_id, state, function_uuid, task_group_id, workflow_id, created_at, completion_t, attempts] of cursor.raw<[number, string, string, string, string, string | null, number, number | null, number]>()) {
      rows.push({ pos, task_id, status: state as TaskState, function_uuid, task_group_id, workflow_id, created_at, completion_t, attempts });
    }
    if (rows.length === limit) return { rows, next: rows[rows.length - 1]!.pos };
    const scanned = this.sql.exec<{ n: number; low: number | null }>('SELECT count(*) AS n, min(rowid) AS low FROM (SELECT rowid FROM tasks WHERE rowid < ? ORDER BY rowid DESC LIMIT ?)', below, budget).one();
    return { rows, next: scanned.n < budget || scanned.low === null ? 0 : scanned.low };
  }

  async groupExists(taskGroupId: string): Promise<boolean> {
    return this.sql.exec('SELECT 1 FROM task_groups WHERE task_group_id = ?', taskGroupId).toArray().length > 0;
  }

  async groupTasks(taskGroupId: string): Promise<Array<{ task_id: string; created_at: number }> | null> {
    if (!(await this.groupExists(taskGroupId))) return null;
    const tasks: Array<{ task_id: string; created_at: number }> = [];
    for (const [task_id, created_at] of this.sql.exec('SELECT task_id, created_at FROM tasks WHERE task_group_id = ? ORDER BY rowid', taskGroupId).raw<[string, number]>()) {
      tasks.push({ task_id, created_at });
    }
    return tasks;
  }
}

export function toRecord(row: RecordRow): TaskRecord {
  const [task_id, task_group_id, function_uuid, state, transitions_json, attempts, created_at, result_json, result_ref, exception_json, stdout, completion_t, execution_json, workflow_id, campaign_id, resource_specification_json, submitter] = row;
  return {
    task_id,
    task_group_id,
    function_uuid,
    state: state as TaskState,
    transitions_json,
    attempts,
    created_at,
    result_json,
    result_ref,
    exception_json,
    stdout,
    completion_t,
    execution_json,
    workflow_id,
    campaign_id,
    resource_specification_json,
    submitter,
  };
}
