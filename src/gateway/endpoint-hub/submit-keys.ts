// Idempotency keys of submissions (`Idempotency-Key` on POST /v3/endpoints/{id}/submit and
// /v3/run): a request sent again with the key of one already stored gets the first one's task ids,
// and nothing is stored or dispatched twice. A client may then send a submission again whenever it
// cannot know whether the first one arrived: a kept-alive connection the server closed as the
// request went out, a network that dropped the answer.
//
// One row per key in the hub's SQLite, written in the transaction that stores the tasks' outbox
// rows; kept a day (KEY_TTL_S), as Stripe keeps its keys.

import { sha256Hex } from '../lineage/lineage-capture';

/** How long a key is remembered; a request sent again later is a new request. */
export const KEY_TTL_S = 24 * 3600;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS submit_keys (
     key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, request_id TEXT NOT NULL, task_group_id TEXT NOT NULL,
     task_ids TEXT NOT NULL, created_at REAL NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS submit_keys_by_time ON submit_keys(created_at)`,
];

/** The stored answer to a keyed submission. */
export interface KeyedSubmission {
  /** What the request asked for (see submissionFingerprint): the same key with another body is refused. */
  fingerprint: string;
  request_id: string;
  task_group_id: string;
  task_ids: string[];
}

export class SubmitKeys {
  private schemaReady = false;

  constructor(private readonly sql: SqlStorage) {}

  /** The table is made on the first keyed submission: endpoints registered before it get it then. */
  private ensureSchema(): void {
    if (this.schemaReady) return;
    for (const statement of SCHEMA) this.sql.exec(statement);
    this.schemaReady = true;
  }

  find(key: string, nowS: number): KeyedSubmission | null {
    this.ensureSchema();
    const row = this.sql
      .exec<{ fingerprint: string; request_id: string; task_group_id: string; task_ids: string }>(
        'SELECT fingerprint, request_id, task_group_id, task_ids FROM submit_keys WHERE key = ? AND created_at >= ?',
        key,
        nowS - KEY_TTL_S,
      )
      .toArray()[0];
    if (!row) return null;
    return { fingerprint: row.fingerprint, request_id: row.request_id, task_group_id: row.task_group_id, task_ids: row.task_ids.split(' ') };
  }

  /** Remembers a key's answer, and forgets keys older than a day (call it inside the transaction that stores the tasks). */
  record(key: string, submission: KeyedSubmission, nowS: number): void {
    this.ensureSchema();
    this.sql.exec('DELETE FROM submit_keys WHERE created_at < ?', nowS - KEY_TTL_S);
    this.sql.exec(
      'INSERT OR REPLACE INTO submit_keys (key, fingerprint, request_id, task_group_id, task_ids, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      key,
      submission.fingerprint,
      submission.request_id,
      submission.task_group_id,
      submission.task_ids.join(' '),
      nowS,
    );
  }
}

/**
 * A digest of what a submission asks for: its group, workflow, campaign, resource specification and
 * every task's function and payload, in order. Two requests with one key and different digests are
 * two different requests, and the second is refused (IDEMPOTENCY_KEY_REUSED).
 */
export async function submissionFingerprint(submission: {
  task_group_id?: string | undefined;
  workflow_id?: string | undefined;
  campaign_id?: string | undefined;
  resource_specification_json?: string | undefined;
  tasks: ReadonlyArray<{ function_uuid: string; payload_json: string }>;
}): Promise<string> {
  const parts = [submission.task_group_id ?? '', submission.workflow_id ?? '', submission.campaign_id ?? '', submission.resource_specification_json ?? ''];
  for (const task of submission.tasks) parts.push(task.function_uuid, task.payload_json);
  // JSON of the parts: no separator inside a payload can make two different lists read alike.
  return sha256Hex(JSON.stringify(parts));
}
