import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FerryError } from '../../protocol/errors';
import { createLogger } from '../log';
import { AccessTokens, renewDelayMs } from './access-tokens';

const log = createLogger({}, () => {});

function answers(...replies: Array<{ status: number; body: unknown }>) {
  const calls: Array<{ url: string; auth: string }> = [];
  const impl = (async (url: string, init: RequestInit) => {
    calls.push({ url, auth: (init.headers as Record<string, string>).authorization ?? '' });
    const reply = replies.length > 1 ? replies.shift()! : replies[0]!;
    return new Response(JSON.stringify(reply.body), { status: reply.status });
  }) as unknown as typeof fetch;
  return { calls, impl };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('AccessTokens', () => {
  it('renews at 2/3 of the lifetime, and at least 1 s before expiry', () => {
    expect(renewDelayMs(3600)).toBe(2_400_000);
    expect(renewDelayMs(5)).toBe(3333);
    expect(renewDelayMs(2)).toBe(1000);
    expect(renewDelayMs(0.5)).toBe(0);
  });

  it('exchanges the secret, caches the token and renews it in the background', async () => {
    vi.useFakeTimers();
    const { calls, impl } = answers({ status: 200, body: { access_token: 'a1', expires_in: 6 } }, { status: 200, body: { access_token: 'a2', expires_in: 6 } });
    const tokens = new AccessTokens({ gatewayUrl: 'http://gw/', endpointId: 'ep', secret: 's3cret', log, onFatal: () => {}, fetch: impl });
    await tokens.start();
    expect(tokens.current()).toBe('a1');
    expect(calls).toEqual([{ url: 'http://gw/v3/endpoints/ep/token', auth: 'Bearer s3cret' }]);
    await vi.advanceTimersByTimeAsync(4000);
    expect(tokens.current()).toBe('a2');
    expect(calls.length).toBe(2);
    tokens.stop();
  });

  it('stops with the reason when the renewal is refused as revoked', async () => {
    vi.useFakeTimers();
    const { impl } = answers(
      { status: 200, body: { access_token: 'a1', expires_in: 3 } },
      { status: 401, body: { code: 'TOKEN_REVOKED', message: 'the endpoint secret was revoked' } },
    );
    const fatal: FerryError[] = [];
    const tokens = new AccessTokens({ gatewayUrl: 'http://gw', endpointId: 'ep', secret: 's', log, onFatal: (e) => fatal.push(e), fetch: impl });
    await tokens.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(fatal.map((e) => [e.code, e.message])).toEqual([['TOKEN_REVOKED', 'the endpoint secret was revoked']]);
  });

  it('rejects start() when the secret is refused, and retries while the gateway is unavailable', async () => {
    const refused = answers({ status: 401, body: { code: 'UNAUTHORIZED', message: 'invalid token' } });
    const tokens = new AccessTokens({ gatewayUrl: 'http://gw', endpointId: 'ep', secret: 's', log, onFatal: () => {}, fetch: refused.impl });
    await expect(tokens.start()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });

    const flaky = answers({ status: 503, body: { code: 'UNAVAILABLE', message: 'later' } }, { status: 200, body: { access_token: 'ok', expires_in: 60 } });
    const patient = new AccessTokens({ gatewayUrl: 'http://gw', endpointId: 'ep', secret: 's', log, onFatal: () => {}, fetch: flaky.impl });
    await patient.start();
    expect(patient.current()).toBe('ok');
    patient.stop();
  });
});
