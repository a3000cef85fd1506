// The endpoint's status reports of the last hour, for the dashboard's chart. Taken from the
// heartbeats the hub receives anyway, at most one sample per STATUS_HISTORY.sampleEveryS, and
// trimmed to STATUS_HISTORY.windowS as each is added: a bounded table (240 rows at most).

import type { StatusReport } from '../../protocol/api';
import { STATUS_HISTORY, type StatusSample } from '../../protocol/task-list';

const SCHEMA = 'CREATE TABLE IF NOT EXISTS status_history (t REAL PRIMARY KEY, report TEXT NOT NULL)';

export class StatusHistory {
  /** Unix seconds of the newest sample; undefined: not read since the object woke. */
  private lastAt: number | undefined;

  constructor(private readonly sql: SqlStorage) {}

  createSchema(): void {
    this.sql.exec(SCHEMA);
  }

  /** Keeps `report` when the newest sample is at least sampleEveryS older. */
  record(report: StatusReport, at: number): void {
    if (this.lastAt === undefined) this.lastAt = (this.sql.exec<{ t: number | null }>('SELECT max(t) AS t FROM status_history').one().t ?? 0);
    if (at - this.lastAt < STATUS_HISTORY.sampleEveryS) return;
    this.sql.exec('INSERT OR REPLACE INTO status_history (t, report) VALUES (?, ?)', at, JSON.stringify(report));
    this.sql.exec('DELETE FROM status_history WHERE t < ?', at - STATUS_HISTORY.windowS);
    this.lastAt = at;
  }

  /** Samples of the last window before `now`, oldest first. */
  read(now: number): StatusSample[] {
    const rows = this.sql.exec<{ t: number; report: string }>('SELECT t, report FROM status_history WHERE t >= ? ORDER BY t', now - STATUS_HISTORY.windowS).toArray();
    return rows.map((row) => ({ ...(JSON.parse(row.report) as StatusReport), t: row.t }));
  }
}
