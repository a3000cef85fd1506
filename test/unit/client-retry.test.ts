// The SDK sends a read again when the gateway answers 503 with Retry-After (wrangler dev does when
// the hop to its runtime drops a request), and never a write, which may have been stored.

import { describe, expect, it } from 'vitest';
import { Client, type RetryInfo } from '../../src/sdk/client';

const UNAVAILABLE = 'Your worker restarted mid-request. Please try sending the request again.';

/** A gateway that answers the first `failures` requests 503 (with Retry-After unless `bare`), then 200. */
function flakyGateway(failures: number, bare = false) {
  const seen: string[] = [];
  const fetch = (async (url: string, init?: RequestInit) => {
    seen.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    if (seen.length <= failures) return new Response(UNAVAILABLE, { status: 503, headers: bare ? {} : { 'retry-after': '0' } });
    if (new URL(url).pathname === '/v2/batch_status') return Response.json({ results: { 'ep.t1': { task_id: 'ep.t1', status: 'success', result: 2 } } });
    return Response.json({ request_id: 'r', task_group_id: 'g', endpoint_id: 'ep', tasks: { fn: ['ep.t1'] } });
  }) as typeof globalThis.fetch;
  return { fetch, seen };
}

describe('503 from the gateway', () => {
  it('retries batch_status, a read, and says so through onRetry', async () => {
    const gateway = flakyGateway(2);
    const retries: RetryInfo[] = [];
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch, onRetry: (r) => retries.push(r) });
    expect((await client.batchStatus(['ep.t1']))['ep.t1']!.result).toBe(2);
    expect(gateway.seen).toEqual(['POST /v2/batch_status', 'POST /v2/batch_status', 'POST /v2/batch_status']);
    expect(retries.map((r) => [r.status, r.attempt])).toEqual([[503, 1], [503, 2]]);
  });

  it('gives up on a read after three retries, and does not retry a 503 without Retry-After', async () => {
    const always = flakyGateway(100);
    await expect(new Client({ url: 'http://gateway.test', token: 't', fetch: always.fetch }).batchStatus(['ep.t1'])).rejects.toMatchObject({ status: 503 });
    expect(always.seen).toHaveLength(4);
    const bare = flakyGateway(1, true);
    await expect(new Client({ url: 'http://gateway.test', token: 't', fetch: bare.fetch }).batchStatus(['ep.t1'])).rejects.toMatchObject({ status: 503 });
    expect(bare.seen).toHaveLength(1);
  });

  it('never sends a submit again: it may have been stored', async () => {
    const gateway = flakyGateway(1);
    const client = new Client({ url: 'http://gateway.test', token: 't', fetch: gateway.fetch });
    await expect(client.submitBatch('ep', 'fn', [[1]])).rejects.toMatchObject({ status: 503 });
    expect(gateway.seen).toEqual(['POST /v3/endpoints/ep/submit']);
  });
});
