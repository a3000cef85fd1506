// Limits of the event stream (GET /v3/events), apart from its schemas so that a reader that bundles
// no schema library (the dashboard, through src/sdk/event-source.ts) shares them.

export const EVENTS_LIMITS = {
  /** `task_id` values in one stream's query. */
  maxTaskIds: 1000,
  /**
   * Endpoint hubs one stream follows (task ids or a workflow spanning several endpoints): the event
   * id carries a position per hub, so its size grows with them.
   */
  maxHubs: 32,
  /** A stream of an endpoint starts with its status and at most this many of its latest tasks. */
  endpointRecentTasks: 1000,
  /** The gateway writes a `: keepalive` comment at least this often (seconds). */
  keepaliveSeconds: 15,
  /** Longest event id a client may send back (Last-Event-ID); 32 positions fit well within. */
  maxCursorChars: 2048,
  /**
   * Longest `data:` line a reader needs to accept: a task doc with an inline result (512 KiB of
   * JSON), its stdout (64 KiB, escaped up to 6x) and an exception. Readers refuse longer ones.
   */
  maxEventBytes: 2 * 1024 * 1024,
} as const;
