// The agent's short-lived access tokens. The endpoint's credentials hold its SECRET token, which
// the gateway accepts only at POST /v3/endpoints/{id}/token, in exchange for an access token that
// opens the agent socket. The token is cached and renewed in the background before it expires; the
// socket is authenticated when it connects, so a renewal never drops it: the next connect uses it.

import { Backoff } from '../../protocol/backoff';
import { errorFromBody } from '../../protocol/error-body';
import { FerryError } from '../../protocol/errors';
import type { Logger } from '../log';

export interface AccessTokensOptions {
  gatewayUrl: string;
  endpointId: string;
  /** The endpoint's secret (credentials.json `token`). */
  secret: string;
  log: Logger;
  /** The gateway refused the secret for good (revoked, unknown): the agent must stop. */
  onFatal(error: FerryError): void;
  fetch?: typeof fetch;
}

const RETRY_MIN_MS = 250;

/** When to renew a token that lives `lifetimeS`: at 2/3 of its life, and at least 1 s before it expires. */
export function renewDelayMs(lifetimeS: number): number {
  const life = lifetimeS * 1000;
  return Math.max(0, Math.min(Math.floor((life * 2) / 3), life - 1000));
}

export class AccessTokens {
  private token: string | null = null;
  private expiresAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private inFlight: Promise<void> | null = null;
  private readonly backoff = new Backoff({ minMs: RETRY_MIN_MS, maxMs: 10_000 });
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: AccessTokensOptions) {
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** The first exchange, retried while the gateway cannot be reached; rejects if the secret is refused. */
  async start(): Promise<void> {
    for (;;) {
      if (this.stopped) throw new FerryError('UNAVAILABLE', 'the agent is stopping');
      try {
        await this.exchange();
        return;
      } catch (err) {
        if (isFatal(err)) throw err;
        const delay = this.backoff.next();
        this.opts.log.warn('could not get an access token from the gateway; retrying', { error: (err as Error).message, in_ms: delay });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The current access token (the most recent exchange). */
  current(): string {
    if (this.token === null) throw new FerryError('INTERNAL', 'no access token yet: start() was not awaited');
    return this.token;
  }

  /** Renews now (e.g. the gateway said the token expired while the machine slept). */
  renewNow(): void {
    if (this.stopped || this.inFlight) return;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.renew();
    }, delayMs);
    this.timer.unref?.();
  }

  private async renew(): Promise<void> {
    try {
      await this.exchange();
    } catch (err) {
      if (this.stopped) return;
      if (isFatal(err)) {
        this.stop();
        this.opts.log.error('the gateway refused the endpoint secret', { code: (err as FerryError).code, message: (err as Error).message });
        this.opts.onFatal(err as FerryError);
        return;
      }
      // Keep the token we have (it may still be valid) and try again soon, before it expires if possible.
      const left = this.expiresAt - Date.now();
      const delay = Math.min(this.backoff.next(), Math.max(RETRY_MIN_MS, left / 4));
      this.opts.log.warn('access token renewal failed; retrying', { error: (err as Error).message, in_ms: delay, expires_in_ms: left });
      this.schedule(delay);
    }
  }

  private exchange(): Promise<void> {
    this.inFlight ??= this.doExchange().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async doExchange(): Promise<void> {
    const url = `${this.opts.gatewayUrl.replace(/\/+$/, '')}/v3/endpoints/${this.opts.endpointId}/token`;
    const res = await this.fetchImpl(url, { method: 'POST', headers: { authorization: `Bearer ${this.opts.secret}` }, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    if (!res.ok) {
      const answer = errorFromBody(res.status, text);
      const code = answer.knownCode ?? (res.status === 404 ? 'NOT_FOUND' : res.status === 401 || res.status === 403 ? 'UNAUTHORIZED' : 'UNAVAILABLE');
      const message = answer.ferryBody ? answer.detail : `the gateway answered ${res.status} to the token exchange`;
      throw new FerryError(code, code === 'TOKEN_REVOKED' ? message : `token exchange refused (${res.status} ${code}): ${message}`);
    }
    let body: { access_token?: unknown; expires_in?: unknown } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // handled below
    }
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number' || !(body.expires_in > 0)) {
      throw new FerryError('UNAVAILABLE', 'the gateway answered the token exchange without an access token');
    }
    this.token = body.access_token;
    this.expiresAt = Date.now() + body.expires_in * 1000;
    this.backoff.reset();
    const delay = renewDelayMs(body.expires_in);
    this.opts.log.info('access token renewed', { expires_in_s: body.expires_in, next_renewal_ms: delay });
    this.schedule(delay);
  }
}

/** Refusals no retry can fix: the secret was revoked, is invalid, or names no endpoint. */
function isFatal(err: unknown): err is FerryError {
  return err instanceof FerryError && (err.code === 'TOKEN_REVOKED' || err.code === 'UNAUTHORIZED' || err.code === 'TOKEN_EXPIRED' || err.code === 'FORBIDDEN' || err.code === 'NOT_FOUND');
}
