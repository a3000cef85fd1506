// GET /v3/events: Server-Sent Events of task state changes and endpoint status, for a task group,
// an endpoint, a workflow or a list of task ids. The worker holds the client's response; per hub
// the stream follows, it holds a hibernatable WebSocket on which the hub sends its newest position
// after each write (event-subscribers.ts), and reads what changed by RPC (event-log.ts). Replay
// after Last-Event-ID and live events are the same read from the same position: nothing lost,
// nothing twice. The event id carries a position per hub (src/protocol/events.ts).

import { z } from 'zod';
import { TaskGroupId, TaskId, Uuid } from '../../protocol/api';
import { CursorError, EVENTS_LIMITS, EventsQuery, filterOf, formatCursor, parseCursor, type EventCursor, type EventsFilter } from '../../protocol/events';
import { errorFromBody } from '../../protocol/error-body';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import { AGENT_SOCKET_HEADERS, hubOf } from '../endpoint-hub/endpoint-hub';
import type { EventsPage, HubFilter } from '../endpoint-hub/event-log';
import { EVENTS_SOCKET_PATH } from '../endpoint-hub/event-subscribers';
import { eventsKeepaliveSeconds, type GatewayEnv } from '../env';
import { unwrap } from '../hub-reply';
import { logEvent } from '../log';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

/** Task events one read of a hub answers at most. */
const PAGE_EVENTS = 500;
/**
 * When a hub's changes are read. A write that ended tasks is read at once (results are what a
 * client waits for), unless the stream is busy, its last read having carried more than one event,
 * and began less than READ_GAP_MS ago: under load, one read then carries many writes. A client
 * waiting on one task at a time is never held by the gap (it held each result ~5 ms when tasks
 * took less than READ_GAP_MS: 6 ms from hub to client against a long-poll's 2, on a quiet box). A change that ended no task (a submit, an ack, a task
 * running) waits up to GATHER_MS for more, so a task that passed several states is read once, in
 * its latest, and a result that comes meanwhile is read with it.
 */
const READ_GAP_MS = 10;
const GATHER_MS = 25;

/** The query as documented and checked first (one `task_id`); the handler reads every `task_id`. */
const EventsQueryParams = z.strictObject({
  task_group_id: TaskGroupId.optional(),
  endpoint_id: Uuid.optional(),
  workflow_id: z.string().min(1).max(256).optional(),
  // Repeated, the query validator hands it over as an array (the handler bounds it with EventsQuery).
  task_id: z.union([TaskId, z.array(TaskId)]).optional().describe(`Repeatable, up to ${EVENTS_LIMITS.maxTaskIds}`),
  last_event_id: z.string().max(EVENTS_LIMITS.maxCursorChars).optional().describe('For clients that cannot set the Last-Event-ID header'),
});

/** A workflow stream over more endpoints than it follows asks at most this many (the newest) which hold its tasks. */
const MAX_PROBED_ENDPOINTS = 256;

const EventsHeaders = z.object({ 'last-event-id': z.string().max(EVENTS_LIMITS.maxCursorChars).optional() });

export function registerEventRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/events',
      summary: 'Server-Sent Events: task state changes (result or exception inline when a task ends) and endpoint status; Last-Event-ID resumes',
      auth: 'user',
      query: EventsQueryParams,
      headers: EventsHeaders,
      otherResponses: [{ status: 200, description: 'text/event-stream: `id:` (a cursor), `event: task|endpoint`, `data:` (a task doc, or {endpoint_id, status}); a `: keepalive` comment at least every 15 s' }],
      errors: ['NOT_FOUND', 'NOT_IMPLEMENTED'],
      queryExample: 'task_group_id={task_group_id}',
      // A stream may span endpoints and workflows a key's scopes cannot name up front: keys are refused.
      keys: 'none',
    },
    async (c, { principal: { owner }, headers }) => {
      const raw: Record<string, unknown> = { ...c.req.query() };
      const taskIds = c.req.queries('task_id');
      if (taskIds) raw.task_id = taskIds;
      const parsed = EventsQuery.safeParse(raw);
      if (!parsed.success) throw new FerryError('VALIDATION_ERROR', `query: ${parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message).join('; ')}`);
      const filter = filterOf(parsed.data);
      const cursorText = headers['last-event-id'] ?? parsed.data.last_event_id;
      let cursor: EventCursor | null = null;
      if (cursorText !== undefined && cursorText !== '') {
        try {
          cursor = parseCursor(cursorText);
        } catch (err) {
          if (err instanceof CursorError) throw new FerryError('VALIDATION_ERROR', err.message);
          throw err;
        }
      }
      const hubs = await hubsOf(c.env, owner, filter);
      if (cursor) for (const id of cursor.keys()) if (!hubs.has(id)) throw new FerryError('VALIDATION_ERROR', 'Last-Event-ID is not an event id of this stream');
      return openStream(c.env, owner, hubs, cursor);
    },
  );
}

/** The hubs a filter spans, each with its part of the filter. */
async function hubsOf(env: GatewayEnv, owner: string, filter: EventsFilter): Promise<Map<string, HubFilter>> {
  const hubs = new Map<string, HubFilter>();
  switch (filter.kind) {
    case 'task_group':
      hubs.set(endpointOfId(filter.task_group_id)!, filter);
      break;
    case 'endpoint':
      hubs.set(filter.endpoint_id, { kind: 'endpoint' });
      break;
    case 'tasks':
      for (const id of filter.task_ids) {
        const endpointId = endpointOfId(id)!;
        const part = hubs.get(endpointId);
        if (part?.kind === 'tasks') part.task_ids.push(id);
        else hubs.set(endpointId, { kind: 'tasks', task_ids: [id] });
      }
      break;
    case 'workflow': {
      // A workflow's tasks may be on any of the owner's endpoints (deleted ones included: their tasks
      // stay readable), which the Registry lists. Up to maxHubs, the stream follows them all (a task
      // submitted later to any of them shows); past that, those that hold tasks of it already.
      let ids = await registryOf(env, owner).lineageEndpointIds();
      if (ids.length > EVENTS_LIMITS.maxHubs) {
        if (ids.length > MAX_PROBED_ENDPOINTS) ids = ids.slice(-MAX_PROBED_ENDPOINTS);
        const holds = await Promise.all(ids.map((id) => hubOf(env, id).holdsWorkflow(owner, filter.workflow_id)));
        ids = ids.filter((_, i) => holds[i]);
      }
      for (const id of ids) hubs.set(id, { kind: 'workflow', workflow_id: filter.workflow_id });
      break;
    }
  }
  if (hubs.size > EVENTS_LIMITS.maxHubs) {
    throw new FerryError('VALIDATION_ERROR', `a stream follows at most ${EVENTS_LIMITS.maxHubs} endpoints and this one spans ${hubs.size}: stream each task group or endpoint on its own`, { max_endpoints: EVENTS_LIMITS.maxHubs });
  }
  return hubs;
}

/** A hub's subscription socket; the hub's refusal (not the owner's: 404; a Redis task store: 501) is thrown. */
async function subscribe(env: GatewayEnv, endpointId: string, owner: string): Promise<WebSocket> {
  const res = await hubOf(env, endpointId).fetch(new Request(`https://hub${EVENTS_SOCKET_PATH}`, { headers: { upgrade: 'websocket', [AGENT_SOCKET_HEADERS.owner]: owner } }));
  if (!res.webSocket) {
    const answer = errorFromBody(res.status, await res.text().catch(() => ''));
    throw new FerryError(answer.knownCode ?? 'INTERNAL', answer.ferryBody ? answer.detail : undefined);
  }
  res.webSocket.accept();
  return res.webSocket;
}

interface HubFollow {
  endpointId: string;
  filter: HubFilter;
  socket: WebSocket;
  /** Where the next read starts. */
  position: number;
  /** The newest position the hub announced. */
  head: number;
  more: boolean;
  reading: boolean;
  /** A write that ended tasks was announced since the last read began. */
  ended: boolean;
  /** When the first change not read yet was announced (ms; 0: none). */
  unreadSince: number;
  /** When the last read began (ms). */
  readAt: number;
  /** Events the last read carried: more than one means the hub is busy, and reads keep READ_GAP_MS apart. */
  lastReadCount: number;
  /** A read waiting for GATHER_MS to pass. */
  timer: ReturnType<typeof setTimeout> | null;
}

async function openStream(env: GatewayEnv, owner: string, hubs: Map<string, HubFilter>, cursor: EventCursor | null): Promise<Response> {
  const follows: HubFollow[] = [];
  const closeSockets = () => {
    for (const f of follows) {
      try {
        f.socket.close(1000, 'stream closed');
      } catch {
        // Already closed.
      }
    }
  };
  const firstPages: EventsPage[] = [];
  try {
    // Subscribed before the first read: a write between the two is announced, never missed.
    for (const [endpointId, filter] of hubs) {
      const socket = await subscribe(env, endpointId, owner);
      follows.push({ endpointId, filter, socket, position: 0, head: 0, more: false, reading: false, ended: false, unreadSince: 0, readAt: 0, lastReadCount: 0, timer: null });
    }
    const pages = await Promise.all(follows.map((f) => hubOf(env, f.endpointId).events(owner, f.filter, cursor ? (cursor.get(f.endpointId) ?? 0) : null, PAGE_EVENTS, true)));
    for (const page of pages) firstPages.push(unwrap(page));
  } catch (err) {
    closeSockets();
    throw err;
  }

  const positions: EventCursor = new Map();
  for (let i = 0; i < follows.length; i++) positions.set(follows[i]!.endpointId, (follows[i]!.position = firstPages[i]!.position));
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  let closed = false;
  let keepalive: ReturnType<typeof setInterval> | null = null;
  /** `why`: a failure worth an operator's look (a client that went away is none). */
  const close = (why?: unknown) => {
    if (closed) return;
    closed = true;
    if (keepalive !== null) clearInterval(keepalive);
    for (const f of follows) if (f.timer !== null) clearTimeout(f.timer);
    closeSockets();
    if (why !== undefined) logEvent('warn', 'event stream ended by a failure', { error: why instanceof Error ? why.message : String(why) });
    writer.close().catch(() => undefined);
  };
  const write = (text: string): Promise<void> => writer.write(encoder.encode(text)).catch(() => close());

  const writePage = (follow: HubFollow, page: EventsPage): Promise<void> => {
    let text = '';
    for (const e of page.events) {
      positions.set(follow.endpointId, e.seq);
      text += `id: ${formatCursor(positions)}\nevent: ${e.type}\ndata: ${e.data}\n\n`;
    }
    // Rows the filter did not select up to here need not be read again.
    positions.set(follow.endpointId, (follow.position = page.position));
    follow.more = page.more;
    return text ? write(text) : Promise.resolve();
  };

  const read = async (follow: HubFollow): Promise<void> => {
    if (follow.reading || follow.timer !== null || closed) return;
    follow.reading = true;
    try {
      while (!closed && (follow.more || follow.head > follow.position)) {
        const now = Date.now();
        const gap = follow.lastReadCount > 1 ? READ_GAP_MS : 0;
        const wait = follow.more ? 0 : Math.max(follow.readAt + gap, follow.ended ? 0 : (follow.unreadSince || now) + GATHER_MS) - now;
        if (wait > 0) {
          // Gather more changes first (a result announced meanwhile shortens the wait).
          follow.timer = setTimeout(() => {
            follow.timer = null;
            void read(follow);
          }, wait);
          return;
        }
        // A client that reads slowly slows the reads down, not the gateway's memory up.
        await writer.ready;
        follow.ended = false;
        follow.unreadSince = 0;
        follow.readAt = Date.now();
        const page = unwrap(await hubOf(env, follow.endpointId).events(owner, follow.filter, follow.position, PAGE_EVENTS, false));
        // Each changed task is one event, in its latest state: one task at a time reads as one.
        follow.lastReadCount = page.events.length;
        await writePage(follow, page);
      }
    } catch (err) {
      close(err);
    } finally {
      follow.reading = false;
    }
  };

  void (async () => {
    await write(`retry: 1000\n\n`);
    for (let i = 0; i < follows.length; i++) await writePage(follows[i]!, firstPages[i]!);
    for (const follow of follows) {
      follow.socket.addEventListener('message', (event) => {
        const text = String(event.data);
        const ended = text.endsWith('!');
        const position = Number(ended ? text.slice(0, -1) : text);
        if (position > follow.head) follow.head = position;
        if (follow.unreadSince === 0) follow.unreadSince = Date.now();
        if (ended) {
          follow.ended = true;
          if (follow.timer !== null) {
            clearTimeout(follow.timer);
            follow.timer = null;
          }
        }
        void read(follow);
      });
      // The hub went away (endpoint deleted, gateway restarting): the client reconnects with its Last-Event-ID.
      follow.socket.addEventListener('close', () => close());
      follow.socket.addEventListener('error', () => close());
      void read(follow);
    }
    keepalive = setInterval(() => void write(': keepalive\n\n'), eventsKeepaliveSeconds(env) * 1000);
  })();

  return new Response(readable, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
  });
}
