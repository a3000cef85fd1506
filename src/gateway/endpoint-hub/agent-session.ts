// What the hub remembers about its agent connection across hibernation: the session's phase in the
// hello → held → ready handshake, the credits the agent granted, the held ids being gathered for
// reconcile, and the last status report.

import type { StatusReport } from '../../protocol/api';
import { insertRows } from '../sql-batches';

/** `hello`: waiting for hello; `held`: gathering held frames; `ready`: reconciled, dispatching. */
export type SessionPhase = 'hello' | 'held' | 'ready' | 'closed';

export interface AgentSession {
  session_id: string;
  phase: SessionPhase;
  held_remaining: number;
  /** Tasks the hub may still send: granted by `credit` frames, consumed one per task sent. */
  credits: number;
  /** Unix seconds of the hello, counted as the first sign of life. */
  hello_at: number | null;
}

export interface LastStatus {
  report: StatusReport;
  /** Unix seconds of the last `status` frame. */
  last_heartbeat: number;
}

const SCHEMA = [
  'CREATE TABLE IF NOT EXISTS hub_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS held_tasks (task_id TEXT PRIMARY KEY)',
];

export class AgentSessionStore {
  private session: AgentSession | null | undefined;

  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  private read<T>(key: string): T | null {
    const row = this.sql.exec<{ value: string }>('SELECT value FROM hub_state WHERE key = ?', key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : null;
  }

  private write(key: string, value: unknown): void {
    this.sql.exec('INSERT INTO hub_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', key, JSON.stringify(value));
  }

  current(): AgentSession | null {
    if (this.session === undefined) this.session = this.read<AgentSession>('session');
    return this.session;
  }

  save(session: AgentSession): void {
    this.session = session;
    this.write('session', session);
  }

  lastStatus(): LastStatus | null {
    return this.read<LastStatus>('status');
  }

  saveStatus(status: LastStatus): void {
    this.write('status', status);
  }

  addHeld(taskIds: readonly string[]): void {
    insertRows(this.sql, 'INSERT OR IGNORE INTO held_tasks (task_id)', 1, taskIds.map((id) => [id]));
  }

  takeHeld(): string[] {
    const ids = this.sql.exec<{ task_id: string }>('SELECT task_id FROM held_tasks').toArray().map((r) => r.task_id);
    this.sql.exec('DELETE FROM held_tasks');
    return ids;
  }

  clearHeld(): void {
    this.sql.exec('DELETE FROM held_tasks');
  }
}
