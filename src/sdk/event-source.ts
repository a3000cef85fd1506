// The event stream's transport, without its schemas: a small Server-Sent Events parser and a
// reader of GET /v3/events with fetch (EventSource cannot send an Authorization header, and Node 20
// has none; a token never goes in a URL). Lines and events are bounded; a dropped stream is opened
// again with Last-Event-ID after a backoff, so a reader sees every change once even across
// reconnects. Decoding is the caller's (event-stream.ts checks each event against its schema): this
// module imports no schema library, so a page can read the stream without bundling one (the dashboard).

import { EVENTS_LIMITS } from '../protocol/event-limits';
import { Backoff } from '../protocol/backoff';
import { errorFromBody, FerryApiError } from '../protocol/error-body';

export interface SseEvent {
  /** The last `id:` seen so far in the stream (SSE's "last event ID"), or null. */
  id: string | null;
  type: string;
  data: string;
}

// Not a FerryError: the SDK's own refusal of an event stream (SSE_LIMIT), not a code of ERROR_CODES a gateway answers.
export class SseError extends Error {
  override readonly name = 'SseError';
  readonly code = 'SSE_LIMIT';
}

/**
 * The SSE wire format (WHATWG HTML, "event stream interpretation"), incrementally: `push` text as
 * it arrives, get the events it completes. A line or an event's data over `maxChars` throws.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataChars = 0;
  private type = '';
  private lastId: string | null = null;
  /** A `\r` ended the last chunk: a `\n` starting the next one belongs to it. */
  private pendingCr = false;
  /** The server's `retry:` in ms, if it sent one. */
  retryMs: number | null = null;

  constructor(private readonly maxChars: number = EVENTS_LIMITS.maxEventBytes + 64) {}

  get lastEventId(): string | null {
    return this.lastId;
  }

  push(text: string): SseEvent[] {
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    // The next CR, looked up again only once passed: a stream without any (Ferry's) is scanned once, not once per line.
    let cr = this.buffer.indexOf('\r');
    for (;;) {
      const lf = this.buffer.indexOf('\n', start);
      if (cr >= 0 && cr < start) cr = this.buffer.indexOf('\r', start);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      const line = this.buffer.slice(start, end);
      if (this.buffer[end] === '\r') {
        if (end + 1 === this.buffer.length) this.pendingCr = true;
        start = this.buffer[end + 1] === '\n' ? end + 2 : end + 1;
      } else start = end + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > this.maxChars) throw new SseError(`an event stream line is over ${this.maxChars} characters`);
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // a comment: keepalive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.dataChars += value.length + 1;
        if (this.dataChars > this.maxChars) throw new SseError(`an event is over ${this.maxChars} characters`);
        this.data.push(value);
        break;
      case 'event':
        this.type = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const type = this.type || 'message';
    const data = this.data;
    this.data = [];
    this.dataChars = 0;
    this.type = '';
    if (data.length === 0) return null;
    return { id: this.lastId, type, data: data.join('\n') };
  }
}

export type EventsSelector = { task_group_id: string } | { endpoint_id: string } | { workflow_id: string } | { task_ids: string[] };

export interface EventSourceOptions {
  url: string;
  token: string;
  fetch: typeof fetch;
  selector: EventsSelector;
  /** Resume after this event id (a FerryEvent's `id`). */
  lastEventId?: string | null;
  signal?: AbortSignal;
  /** Backoff between reconnects: starts at `minMs`, doubles up to `maxMs` (defaults 250 and 10,000). */
  backoff?: { minMs?: number; maxMs?: number };
  /** Called when the stream dropped and is opened again (for logs and tests). */
  onReconnect?: (info: { attempt: number; waitMs: number; error: unknown }) => void;
}

function queryOf(selector: EventsSelector): string {
  const params = new URLSearchParams();
  if ('task_ids' in selector) for (const id of selector.task_ids) params.append('task_id', id);
  else for (const [k, v] of Object.entries(selector)) params.set(k, v as string);
  return params.toString();
}

/** An error the stream cannot outlast by reconnecting: the caller's mistake, refused by the gateway. */
function isFinalError(err: unknown): boolean {
  return err instanceof FerryApiError && err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 408;
}

/**
 * The events of a stream, as an async iterable that reconnects by itself (with Last-Event-ID) until
 * `signal` aborts or the iteration is left. A 4xx answer (bad query, not found) ends it with the error.
 * `decode` turns each SSE event into what is yielded (null: skipped); what it throws is handled as
 * a failure of the stream (an SseError ends it, anything else reconnects), as inside the reader.
 */
export async function* streamDecodedEvents<T>(options: EventSourceOptions, decode: (event: SseEvent) => T | null): AsyncGenerator<T, void, undefined> {
  const backoff = new Backoff({ minMs: options.backoff?.minMs ?? 250, maxMs: options.backoff?.maxMs ?? 10_000, jitter: 0.5 });
  let lastId = options.lastEventId ?? null;
  const url = `${options.url.replace(/\/+$/, '')}/v3/events?${queryOf(options.selector)}`;
  while (!options.signal?.aborted) {
    const controller = new AbortController();
    const abort = () => controller.abort();
    options.signal?.addEventListener('abort', abort);
    let failure: unknown = null;
    let retryMs: number | null = null;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'text/event-stream' };
      if (lastId !== null) headers['last-event-id'] = lastId;
      const res = await options.fetch(url, { headers, signal: controller.signal });
      if (res.status !== 200 || !res.body) throw errorFromBody(res.status, await res.text());
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const e of parser.push(decoder.decode(value, { stream: true }))) {
            const event = decode(e);
            lastId = e.id;
            backoff.reset();
            if (event) yield event;
          }
          retryMs = parser.retryMs;
        }
      } finally {
        controller.abort();
        reader.releaseLock();
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      if (isFinalError(err) || err instanceof SseError) throw err;
      failure = err;
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    // The stream ended or failed: open it again where it stopped.
    const waitMs = backoff.next(retryMs ?? 0);
    options.onReconnect?.({ attempt: backoff.failures, waitMs, error: failure });
    await sleep(waitMs, options.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}
