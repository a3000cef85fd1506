// The whole path, real parts only: gateway in workerd (its launcher), `ferry endpoint start` as a
// process, its manager and worker processes, isolated-vm sandboxes; the SDK as the client.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { FerryApiError } from '../../src/sdk/errors';
import { TRACE_HEADER, TRACE_HOPS, parseServerTiming } from '../../src/protocol/trace';
import { startStack, type AgentProcess, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

let stack: Stack;
let alice: Client;
let endpoint: EndpointHandle;
let agent: AgentProcess;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('e2e', 'alice', { task_timeout_s: 3, task_memory_mb: 64 });
  agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('end to end', () => {
  it('runs a batch of 1,000 tasks with correct results', async () => {
    const fn = await alice.registerFunction((x: number) => x * 2);
    const payloads = Array.from({ length: 1000 }, (_, i) => [i]);
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, payloads, { maxTasksPerRequest: 300 });
    expect(task_ids).toHaveLength(1000);
    const docs = await alice.waitAll(task_ids, { timeout: 60 });
    expect(docs.map((d) => d.status)).toEqual(Array(1000).fill('success'));
    expect(docs.map((d) => d.result)).toEqual(payloads.map(([i]) => (i as number) * 2));
  });

  it('answers POST /v3/run in one call, and passes kwargs as a last argument', async () => {
    const fn = await alice.registerFunction('function add(a, b, opts) { return a + b + (opts ? opts.extra : 0) }');
    const doc = await alice.run(endpoint.endpointId, fn, [2, 3], { extra: 10 }, 10);
    expect(doc.status).toBe('success');
    expect(doc.result).toBe(15);
  });

  it('answers a traced /v3/run with a Server-Timing header naming every hop in order, and an untraced one without', async () => {
    const fn = await alice.registerFunction((x: number) => x * 3);
    const call = (traced: boolean) =>
      fetch(`${stack.gateway.url}/v3/run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(traced ? { [TRACE_HEADER]: '1' } : {}) },
        body: JSON.stringify({ endpoint_id: endpoint.endpointId, function_uuid: fn, args: [7], wait: 10 }),
      });
    const token = await stack.tokenFor('alice');
    const traced = await call(true);
    expect(traced.status).toBe(200);
    expect(((await traced.json()) as { result: unknown }).result).toBe(21);
    const hops = parseServerTiming(traced.headers.get('server-timing') ?? '');
    expect(hops.map((h) => h.hop)).toEqual([...TRACE_HOPS]);
    expect(hops.every((h) => Number.isFinite(h.ms) && h.ms >= 0)).toBe(true);
    const plain = await call(false);
    expect(plain.status).toBe(200);
    expect(plain.headers.get('server-timing')).toBeNull();
    // The trace is not stored: the task's doc reads as any other's.
    const doc = await alice.getTask(((await plain.json()) as { task_id: string }).task_id);
    expect(Object.keys(doc)).not.toContain('trace');
    const bad = await fetch(`${stack.gateway.url}/v3/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', [TRACE_HEADER]: 'yes' },
      body: JSON.stringify({ endpoint_id: endpoint.endpointId, function_uuid: fn, args: [7] }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('VALIDATION_ERROR');
  });

  it('fails bad functions with their codes while other tasks on the endpoint succeed', async () => {
    const cases: Array<[string, string, string]> = [
      ['throws', `() => { throw new TypeError('bad input') }`, 'FERRY_FUNCTION_ERROR'],
      ['infinite loop', `() => { for (;;) {} }`, 'FERRY_TASK_TIMEOUT'],
      ['loop after await', `async () => { await Promise.resolve(); for (;;) {} }`, 'FERRY_TASK_TIMEOUT'],
      ['heap objects', `() => { const a = []; for (;;) a.push({ x: a.length, y: [a.length] }) }`, 'FERRY_MEMORY_LIMIT'],
      ['string growth', `() => { let s = 'x'; const keep = []; for (;;) { s = s + s; keep.push(s + '!') } }`, 'FERRY_MEMORY_LIMIT'],
      ['huge ArrayBuffer', `() => new Uint8Array(2 ** 31).length`, 'FERRY_MEMORY_LIMIT'],
    ];
    const good = await alice.registerFunction((x: number) => x + 1);
    const started = Date.now();
    const bad = await Promise.all(cases.map(async ([name, code]) => alice.submit(endpoint.endpointId, await alice.registerFunction(code, { name }))));
    const goodIds = (await alice.submitBatch(endpoint.endpointId, good, Array.from({ length: 50 }, (_, i) => [i]))).task_ids;
    const docs = await alice.waitAll([...bad, ...goodIds], { timeout: 60 });
    const elapsed = (Date.now() - started) / 1000;
    cases.forEach(([name, , code], i) => {
      expect(docs[i]!.status, name).toBe('failed');
      expect(docs[i]!.exception?.code, name).toBe(code);
    });
    expect(docs[0]!.exception).toMatchObject({ name: 'TypeError', message: 'bad input' });
    expect(docs.slice(cases.length).map((d) => d.result)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // Two timeouts of 3 s each on two workers: well under 60 s, nothing waits for a default limit.
    expect(elapsed).toBeLessThan(30);
  });

  it('returns what the function printed', async () => {
    const fn = await alice.registerFunction(`(n) => { console.log('hello', n); console.error('careful'); return n }`);
    const doc = await alice.run(endpoint.endpointId, fn, [7], undefined, 10);
    expect(doc.status).toBe('success');
    expect(doc.stdout).toContain('hello 7');
    expect(doc.stdout).toContain('careful');
  });

  it('runs a task submitted while its endpoint is offline once it connects, and never runs a cancelled one', async () => {
    const late = await stack.createEndpoint('late', 'alice');
    const fn = await alice.registerFunction((x: number) => x * 10);
    const t1 = await alice.submit(late.endpointId, fn, [4]);
    const t2 = await alice.submit(late.endpointId, fn, [5]);
    expect((await alice.getTask(t1)).status).toBe('waiting-for-ep');
    expect((await alice.endpointStatus(late.endpointId)).status).toBe('offline');
    const cancelled = await alice.cancel(t2);
    expect(cancelled.status).toBe('cancelled');
    late.start();
    expect(await alice.result(t1, { timeout: 60 })).toBe(40);
    const doc2 = await alice.getTask(t2);
    expect(doc2.status).toBe('cancelled');
    expect(doc2.details.attempts).toBe(0);
    expect(doc2.result).toBeUndefined();
    await expect(alice.cancel(t1)).rejects.toMatchObject({ status: 409, code: 'TASK_ALREADY_FINISHED' });
  });

  it('shows a second user none of the first user\'s objects', async () => {
    const bob = await stack.client('bob');
    const fn = await alice.registerFunction((x: number) => x - 1);
    const task = await alice.submit(endpoint.endpointId, fn, [1]);
    await alice.result(task, { timeout: 30 });
    const expect404 = async (p: Promise<unknown>) => {
      const err = await p.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(FerryApiError);
      expect((err as FerryApiError).status).toBe(404);
    };
    await expect404(bob.getTask(task));
    await expect404(bob.getFunction(fn));
    await expect404(bob.endpointStatus(endpoint.endpointId));
    await expect404(bob.submit(endpoint.endpointId, fn, [1]));
    await expect404(bob.cancel(task));
    expect(await bob.listEndpoints()).toEqual([]);
    expect(await bob.batchStatus([task])).toEqual({});
    // Bob's own function on Alice's endpoint is refused too.
    const bobs = await bob.registerFunction((x: number) => x);
    await expect404(bob.submit(endpoint.endpointId, bobs, [1]));
  });
});
