// GET /v3/events as typed events: the transport of event-source.ts (fetch, a bounded SSE parser,
// reconnects with Last-Event-ID), each event checked against its schema in src/protocol/events.ts.

import { EndpointEvent, TaskEvent } from '../protocol/events';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, textNestsDeeperThan } from '../protocol/json-depth';
import { SseError, streamDecodedEvents, type EventSourceOptions, type SseEvent } from './event-source';

export { SseError, SseParser, type EventsSelector, type SseEvent } from './event-source';

export type FerryEvent = { type: 'task'; id: string | null; task: TaskEvent } | { type: 'endpoint'; id: string | null; endpoint: EndpointEvent };

export type EventStreamOptions = EventSourceOptions;

/**
 * The events of a stream, each checked against its schema, as an async iterable that reconnects by
 * itself (with Last-Event-ID) until `signal` aborts or the iteration is left. A 4xx answer (bad
 * query, not found) ends it with the error.
 */
export function streamEvents(options: EventStreamOptions): AsyncGenerator<FerryEvent, void, undefined> {
  return streamDecodedEvents(options, toFerryEvent);
}

function toFerryEvent(e: SseEvent): FerryEvent | null {
  // Bounded in size by the parser; in depth here, before a recursive decoder sees it.
  if ((e.type === 'task' || e.type === 'endpoint') && textNestsDeeperThan(e.data, MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH)) throw new SseError('an event nests deeper than a task doc can');
  if (e.type === 'task') return { type: 'task', id: e.id, task: TaskEvent.parse(JSON.parse(e.data)) };
  if (e.type === 'endpoint') return { type: 'endpoint', id: e.id, endpoint: EndpointEvent.parse(JSON.parse(e.data)) };
  return null; // a type this SDK does not know yet
}
