// One call of the gateway's REST API, as the SDK makes it: the bearer token, a JSON body, 429s
// retried after Retry-After, a request whose connection closed before any answer sent again when
// that cannot store anything twice (resend.ts), and any other error answer thrown as FerryApiError.

import { errorFromBody } from '../protocol/error-body';
import { fetchResending } from './resend';

export interface ClientOptions {
  /** The gateway's base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  token: string;
  fetch?: typeof fetch;
  /**
   * Answers 429 RATE_LIMITED (nothing was stored) are retried after the gateway's Retry-After, up to
   * `maxRetries` times in a row (default 50); `false` surfaces them at once as FerryApiError.
   */
  retryRateLimited?: { maxRetries?: number } | false;
  /** Called before each retry, e.g. to log or count rate-limited requests. */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  method: string;
  path: string;
  /** 429, or 0: the connection closed before any answer, and the request may be sent again (resend.ts). */
  status: number;
  /** Retries of this request so far, this one included. */
  attempt: number;
  /** Seconds the client waits before retrying. */
  waitS: number;
}

export class ApiCaller {
  readonly url: string;
  readonly fetchImpl: typeof fetch;
  private readonly token: string;
  private readonly maxRateLimitedRetries: number;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;
  /** Requests retried after a 429 since this caller was made. */
  rateLimitedRetries = 0;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.maxRateLimitedRetries = options.retryRateLimited === false ? 0 : (options.retryRateLimited?.maxRetries ?? 50);
    this.onRetry = options.onRetry;
  }

  /**
   * One API call. 429s are retried (the gateway stored nothing, so any request may be sent again once
   * the window allows). A request whose connection closed before any answer is sent again when that
   * cannot store anything twice (see resend.ts): a read, an idempotent method, a request marked
   * `repeatable`, or one with an `idempotencyKey` (sent as `Idempotency-Key`; submissions carry
   * one). Every other failure, 503 included, is thrown.
   */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    okStatuses: number[] = [],
    options: { repeatable?: boolean; idempotencyKey?: string } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const init = { method, headers, ...(payload !== undefined ? { body: payload } : {}) };
    const send = () =>
      fetchResending(this.fetchImpl, this.url + path, init, {
        ...(options.repeatable ? { repeatable: true } : {}),
        onResend: (attempt) => this.onRetry?.({ method, path, status: 0, attempt, waitS: 0 }),
      });
    let res = await send();
    for (let attempt = 1; res.status === 429 && attempt <= this.maxRateLimitedRetries; attempt++) {
      const waitS = retryAfterSeconds(res.headers.get('retry-after'));
      this.rateLimitedRetries++;
      await res.body?.cancel();
      this.onRetry?.({ method, path, status: 429, attempt, waitS });
      await new Promise((r) => setTimeout(r, waitS * 1000));
      res = await send();
    }
    const text = await res.text();
    if (res.ok && (res.status === 200 || okStatuses.includes(res.status))) return (text ? JSON.parse(text) : undefined) as T;
    throw errorFromBody(res.status, text);
  }
}

/** Seconds from a Retry-After header (seconds or an HTTP date), with a little jitter so clients spread out. */
function retryAfterSeconds(header: string | null): number {
  let seconds = Number(header);
  if (header === null || !Number.isFinite(seconds)) {
    const date = header === null ? NaN : Date.parse(header);
    seconds = Number.isFinite(date) ? (date - Date.now()) / 1000 : 1;
  }
  return Math.min(Math.max(seconds, 0), 3600) + Math.random() * 0.05;
}

