// The SDK sends no request again on 503: the gateway's own launcher never answers one for a request
// it dropped (wrangler dev's proxy did, workers-sdk#14641), so a 503 is a real outage the caller
// must see, and a write answered 503 may have been stored. 429s are retried (rate-limit.test.ts);
// so is a request whose connection closed before any answer, when sending it again stores nothing
// twice: a read, or a submission with its Idempotency-Key (src/sdk/resend.ts). The gateway's side
// of the key is in src/gateway/endpoint-hub/idempotency.test.ts, the real closed connection in
// test/e2e/kept-alive-connections.test.ts.

import { describe, expect, it } from 'vitest';
import { Client, type RetryInfo } from './client';

/** A gateway that answers every request 503 UNAVAILABLE with Retry-After. */
function unavailableGateway() {
  const seen: string[] = [];
  const fetch = (async (url: string, init?: RequestInit) => {
    seen.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    return Response.json({ code: 'UNAVAILABLE', message: 'the gateway is shutting down' }, { status: 503, headers: { 'retry-after': '0' } });
  }) as typeof globalThis.fetch;
  return { fetch, seen };
}

describe('503 from the gateway', () => {
  it('is thrown at once for a read, with its code', async () => {
    const gateway = unavailableGateway();
    const retries: RetryInfo[] = [];
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch, onRetry: (r) => retries.push(r) });
    await expect(client.batchStatus(['ep.t1'])).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(gateway.seen).toEqual(['POST /v2/batch_status']);
    expect(retries).toEqual([]);
  });

  it('is thrown at once for a submit: it may have been stored', async () => {
    const gateway = unavailableGateway();
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch });
    await expect(client.submitBatch('ep', 'fn', [[1]])).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(gateway.seen).toEqual(['POST /v3/endpoints/ep/submit']);
  });
});

/** A gateway whose first `closes` connections are closed before any answer, as undici reports it. */
function closingGateway(closes: number) {
  const seen: string[] = [];
  const keys: Array<string | undefined> = [];
  const fetch = (async (url: string, init?: RequestInit) => {
    seen.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    keys.push((init?.headers as Record<string, string> | undefined)?.['idempotency-key']);
    if (seen.length <= closes) throw new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    if (new URL(url).pathname === '/v2/batch_status') return Response.json({ results: { 'ep.t1': { task_id: 'ep.t1', status: 'success', result: 2 } } });
    if (new URL(url).pathname === '/v3/endpoints') return Response.json({ endpoint_id: 'ep' });
    return Response.json({ request_id: 'r', task_group_id: 'g', endpoint_id: 'ep', tasks: { fn: ['ep.t1'] } });
  }) as typeof globalThis.fetch;
  return { fetch, seen, keys };
}

describe('a connection closed before any answer', () => {
  it('sends a read again, and says so through onRetry', async () => {
    const gateway = closingGateway(1);
    const retries: RetryInfo[] = [];
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch, onRetry: (r) => retries.push(r) });
    expect((await client.batchStatus(['ep.t1']))['ep.t1']!.result).toBe(2);
    expect(gateway.seen).toEqual(['POST /v2/batch_status', 'POST /v2/batch_status']);
    expect(retries.map((r) => r.status)).toEqual([0]);
  });

  it('sends a submission again with the same Idempotency-Key, a new key for the next request', async () => {
    const gateway = closingGateway(2);
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch });
    expect((await client.submitBatch('ep', 'fn', [[1]])).task_ids).toEqual(['ep.t1']);
    expect(gateway.seen).toEqual(Array(3).fill('POST /v3/endpoints/ep/submit'));
    expect(gateway.keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(gateway.keys).size).toBe(1);
    await client.run('ep', 'fn', [1]);
    expect(gateway.keys[3]).toMatch(/^[0-9a-f-]{36}$/);
    expect(gateway.keys[3]).not.toBe(gateway.keys[0]);
  });

  it('gives up after two more tries, and never sends a write without a key again', async () => {
    const thrice = closingGateway(3);
    await expect(new Client({ url: 'http://gateway.test', token: 't', fetch: thrice.fetch }).batchStatus(['ep.t1'])).rejects.toThrow('fetch failed');
    expect(thrice.seen).toHaveLength(3);
    const once = closingGateway(1);
    await expect(new Client({ url: 'http://gateway.test', token: 't', fetch: once.fetch }).registerEndpoint({ endpoint_name: 'x' } as never)).rejects.toThrow('fetch failed');
    expect(once.seen).toEqual(['POST /v3/endpoints']);
  });
});
