// Live updates for a view: the gateway's event stream (GET /v3/events, read with fetch by the SDK's
// transport: EventSource cannot send the token), or, where the gateway has none for this view (an
// older gateway: 404; task state in Redis: 501), polling at a steady pace. Events are taken as the
// gateway of this origin wrote them (the SDK's schema checks would bundle zod into the page).

import type { EndpointEvent, TaskEvent } from '../protocol/events';
import { FerryApiError } from '../protocol/error-body';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, textNestsDeeperThan } from '../protocol/json-depth';
import { SseError, streamDecodedEvents, type EventsSelector, type SseEvent } from '../sdk/event-source';
import type { FerryEvent } from '../sdk/event-stream';

export type LiveMode = 'streaming' | 'polling';

/** Streams a page opens at most at once: a browser keeps six connections per origin over HTTP/1.1. */
export const MAX_STREAMS = 3;

/** A stream the gateway cannot serve here: no route (404), or not with this task store (501). */
function unavailable(err: unknown): boolean {
  return err instanceof FerryApiError && (err.status === 404 || err.status === 501);
}

/**
 * Follows the streams of `selectors` (at most MAX_STREAMS), handing every event to `onEvent`,
 * until `signal` aborts. Calls `onUnavailable` once (and stops) when a stream cannot be had.
 */
export function followEvents(
  token: string,
  selectors: readonly EventsSelector[],
  signal: AbortSignal,
  onEvent: (event: FerryEvent) => void,
  onUnavailable: (why: string) => void,
): void {
  if (selectors.length === 0 || selectors.length > MAX_STREAMS) {
    onUnavailable(selectors.length === 0 ? 'nothing to follow' : `more than ${MAX_STREAMS} endpoints`);
    return;
  }
  const controller = new AbortController();
  signal.addEventListener('abort', () => controller.abort());
  let given = false;
  const giveUp = (why: string) => {
    if (given || signal.aborted) return;
    given = true;
    controller.abort();
    onUnavailable(why);
  };
  for (const selector of selectors) {
    void (async () => {
      try {
        const stream = streamDecodedEvents({
          url: location.origin,
          token,
          fetch: (input, init) => fetch(input, init),
          selector,
          signal: controller.signal,
          onReconnect: ({ error }) => {
            if (unavailable(error)) giveUp(`the gateway streams no events here (${(error as FerryApiError).code})`);
          },
        }, decode);
        for await (const event of stream) onEvent(event);
      } catch (err) {
        giveUp(unavailable(err) ? `the gateway streams no events here (${(err as FerryApiError).code})` : `the event stream failed: ${(err as Error).message}`);
      }
    })();
  }
}

/** Bounded in size by the parser; in depth here, before JSON.parse recurses into it. */
function decode(e: SseEvent): FerryEvent | null {
  if ((e.type === 'task' || e.type === 'endpoint') && textNestsDeeperThan(e.data, MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH)) throw new SseError('an event nests deeper than a task doc can');
  if (e.type === 'task') return { type: 'task', id: e.id, task: JSON.parse(e.data) as TaskEvent };
  if (e.type === 'endpoint') return { type: 'endpoint', id: e.id, endpoint: JSON.parse(e.data) as EndpointEvent };
  return null;
}
