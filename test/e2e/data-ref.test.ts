// Data by reference through the whole path: 8 MiB put through the SDK, a function on a real
// endpoint reading a 1,000-byte slice through its DataRef; the gateway serves only the covering
// 1 MiB chunk, once for many concurrent tasks, and not again once the agent's cache holds it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { eventually, startStack, type EndpointHandle, type Stack } from '../helpers/stack';

const MiB = 1024 * 1024;
const DATA = new Uint8Array(8 * MiB).map((_, i) => (i * 31 + (i >>> 11)) & 255);

let stack: Stack;
let alice: Client;
let endpoint: EndpointHandle;
let ref: string;
let fnId: string;

/** What the function answers for a slice [start, start + 1000): its first 4 bytes, its length and a checksum. */
function expected(start: number): number[] {
  const s = DATA.subarray(start, start + 1000);
  let sum = 0;
  for (const b of s) sum = (sum * 31 + b) >>> 0;
  return [...Array.from(s.subarray(0, 4)), s.length, sum];
}

const reader = () => `endpoint:${endpoint.endpointId}`;
async function served(): Promise<{ bytes_served: number; requests: number }> {
  return (await alice.objectStats()).readers[reader()] ?? { bytes_served: 0, requests: 0 };
}

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('data', 'alice', { task_timeout_s: 20, task_memory_mb: 128 });
  endpoint.start();
  ref = (await alice.put(DATA)).$ref;
  fnId = await alice.registerFunction(`async (ref, start) => {
    const s = await ref.slice(start, start + 1000);
    let sum = 0;
    for (const b of s) sum = (sum * 31 + b) >>> 0;
    return Array.from(s.slice(0, 4)).concat([s.length, sum]);
  }`);
  await eventually(async () => (await alice.endpointStatus(endpoint.endpointId)).details.total_workers >= 2, 'the endpoint to report 2 workers', 60_000);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('data by reference', () => {
  it('reads a slice; the gateway serves only the covering chunk, and a second run comes from the cache', async () => {
    const start = 3 * MiB + 5;
    const before = await served();
    const t0 = Date.now();
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, start], undefined, 30);
    const first = Date.now() - t0;
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual(expected(start));
    const after = await served();
    expect(after.bytes_served - before.bytes_served).toBeLessThanOrEqual(2 * MiB);
    expect(after.bytes_served - before.bytes_served).toBe(MiB);

    const t1 = Date.now();
    const again = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, start + 10], undefined, 30);
    const second = Date.now() - t1;
    expect(again.result).toEqual(expected(start + 10));
    expect(await served()).toEqual(after);
    console.log(`data-ref: first run ${first} ms, cached run ${second} ms, served ${after.bytes_served - before.bytes_served} bytes in ${after.requests - before.requests} requests`);
  });

  it('10 concurrent tasks on one chunk: the gateway serves it once', async () => {
    const before = await served();
    const starts = Array.from({ length: 10 }, (_, i) => 6 * MiB + 1000 * i);
    const t0 = Date.now();
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fnId, starts.map((s) => [{ $ref: ref }, s]));
    const docs = await alice.waitAll(task_ids, { timeout: 60 });
    const took = Date.now() - t0;
    expect(docs.map((d) => d.status)).toEqual(Array(10).fill('success'));
    expect(docs.map((d) => d.result)).toEqual(starts.map(expected));
    const after = await served();
    expect(after.bytes_served - before.bytes_served).toBe(MiB);
    expect(after.requests - before.requests).toBe(1);
    // Run again: all from the cache.
    const { task_ids: again } = await alice.submitBatch(endpoint.endpointId, fnId, starts.map((s) => [{ $ref: ref }, s]));
    const docs2 = await alice.waitAll(again, { timeout: 60 });
    expect(docs2.map((d) => d.result)).toEqual(starts.map(expected));
    expect(await served()).toEqual(after);
    console.log(`data-ref: 10 concurrent tasks ${took} ms, served ${after.bytes_served - before.bytes_served} bytes in ${after.requests - before.requests} requests`);
  });

  it('fails with FERRY_DATA_NOT_FOUND for another user\'s object, and RangeError past the end', async () => {
    const bob = await stack.client('bob');
    const bobs = (await bob.put(new Uint8Array([1, 2, 3]))).$ref;
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: bobs }, 0], undefined, 30);
    expect(doc.status).toBe('failed');
    expect(doc.exception?.code).toBe('FERRY_DATA_NOT_FOUND');
    const past = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, 8 * MiB - 10], undefined, 30);
    expect(past.status).toBe('failed');
    expect(past.exception).toMatchObject({ code: 'FERRY_FUNCTION_ERROR', name: 'RangeError' });
  });
});
