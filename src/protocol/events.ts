// The event stream's contract (GET /v3/events, Server-Sent Events): its query, the cursor an event
// id carries, and the data of each event type. The gateway writes these, the SDK and the dashboard
// read them; a task event's data is the task doc GET /v2/tasks/{id} answers, nothing else.

import { z } from 'zod';
import { EVENTS_LIMITS } from './event-limits';
import { EndpointStatus, TaskDoc, TaskGroupId, TaskId, Uuid } from './api';
import { FerryError } from './errors';

export { EVENTS_LIMITS };

const TaskIds = z.array(TaskId).min(1).max(EVENTS_LIMITS.maxTaskIds);

/**
 * The stream's filter: exactly one of the four. `task_id` is repeatable (`?task_id=a&task_id=b`).
 * `last_event_id` is for clients that cannot set the Last-Event-ID header; the header wins.
 */
export const EventsQuery = z
  .strictObject({
    task_group_id: TaskGroupId.optional(),
    endpoint_id: Uuid.optional(),
    workflow_id: z.string().min(1).max(256).optional(),
    task_id: z.preprocess((v) => (typeof v === 'string' ? [v] : v), TaskIds).optional(),
    last_event_id: z.string().max(EVENTS_LIMITS.maxCursorChars).optional(),
  })
  .refine((q) => [q.task_group_id, q.endpoint_id, q.workflow_id, q.task_id].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of task_group_id, endpoint_id, workflow_id, task_id is required',
  });
export type EventsQuery = z.infer<typeof EventsQuery>;

export type EventsFilter =
  | { kind: 'task_group'; task_group_id: string }
  | { kind: 'endpoint'; endpoint_id: string }
  | { kind: 'workflow'; workflow_id: string }
  | { kind: 'tasks'; task_ids: string[] };

export function filterOf(query: EventsQuery): EventsFilter {
  if (query.task_group_id !== undefined) return { kind: 'task_group', task_group_id: query.task_group_id };
  if (query.endpoint_id !== undefined) return { kind: 'endpoint', endpoint_id: query.endpoint_id };
  if (query.workflow_id !== undefined) return { kind: 'workflow', workflow_id: query.workflow_id };
  return { kind: 'tasks', task_ids: [...new Set(query.task_id!)] };
}

/** `event: task`: the task doc as GET /v2/tasks/{id} answers it, one per state change. */
export const TaskEvent = TaskDoc;
export type TaskEvent = z.infer<typeof TaskEvent>;

/** `event: endpoint`: on online/offline and when its workers or blocks change. */
export const EndpointEvent = z.object({ endpoint_id: Uuid, status: EndpointStatus });
export type EndpointEvent = z.infer<typeof EndpointEvent>;

export const EVENT_TYPES = ['task', 'endpoint'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

// ── The cursor (an event's id) ─────────────────────────────────────────────────────────────────
// Opaque to clients: `1:` then `<endpoint_id>.<position>` per hub, comma-separated. A position is
// the hub's change counter (src/gateway/endpoint-hub/event-log.ts) of the last event sent from it.

const CURSOR = /^1:[0-9a-f-]{36}\.\d{1,15}(,[0-9a-f-]{36}\.\d{1,15})*$/;

/** Positions by endpoint id. */
export type EventCursor = Map<string, number>;

/** A Last-Event-ID this stream did not make. */
export class CursorError extends FerryError {
  override readonly name = 'CursorError';
  constructor(message: string) {
    super('VALIDATION_ERROR', message);
  }
}

export function parseCursor(text: string): EventCursor {
  if (text.length > EVENTS_LIMITS.maxCursorChars || !CURSOR.test(text)) throw new CursorError('Last-Event-ID is not an event id of this stream');
  const cursor: EventCursor = new Map();
  for (const entry of text.slice(2).split(',')) {
    const endpointId = entry.slice(0, 36);
    if (!Uuid.safeParse(endpointId).success || cursor.has(endpointId)) throw new CursorError('Last-Event-ID is not an event id of this stream');
    cursor.set(endpointId, Number(entry.slice(37)));
  }
  if (cursor.size > EVENTS_LIMITS.maxHubs) throw new CursorError(`Last-Event-ID names more than ${EVENTS_LIMITS.maxHubs} endpoints`);
  return cursor;
}

export function formatCursor(cursor: EventCursor): string {
  const entries: string[] = [];
  for (const [endpointId, position] of cursor) entries.push(`${endpointId}.${position}`);
  return `1:${entries.join(',')}`;
}
