// Issue 17, acceptance 1 and 2, with real parts: the gateway in workerd, `ferry endpoint start` with
// its managers and isolated-vm workers, the SDK as the client, and a counting HTTP proxy in front
// of the gateway (what reaches the gateway is counted there, and connections can be cut).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { TaskCancelledError } from '../../src/sdk/errors';
import type { FerryEvent } from '../../src/sdk/event-stream';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy';
import { startStack, waitForWorkers, type EndpointHandle } from '../helpers/stack';

type Stack = Awaited<ReturnType<typeof startStack>>;

const ENDED = new Set(['success', 'failed', 'cancelled']);

let stack: Stack;
let proxy: CountingProxy;
let alice: Client;
let bob: Client;
let endpoint: EndpointHandle;

beforeAll(async () => {
  stack = await startStack({ taskStore: 'sqlite' });
  proxy = await startCountingProxy(stack.gateway.url);
  alice = await stack.clientWith('alice', { url: proxy.url });
  bob = await stack.clientWith('bob', { url: proxy.url });
  endpoint = await stack.createEndpoint('events', 'alice', { task_timeout_s: 30 });
  endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await stack?.stop();
});

/** Reads events until `stop` says so (checked after each), then leaves the stream. */
async function readUntil(events: AsyncIterable<FerryEvent>, stop: (e: FerryEvent) => boolean): Promise<FerryEvent[]> {
  const got: FerryEvent[] = [];
  for await (const e of events) {
    got.push(e);
    if (stop(e)) break;
  }
  return got;
}

function terminalIds(events: FerryEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'task' && ENDED.has(e.task.status) ? [e.task.task_id] : []));
}

describe('acceptance 1: a stream resumed with Last-Event-ID', () => {
  it('delivers every terminal event of a 1,000-task group exactly once across a disconnect, a dropped connection and a reconnect; another user sees nothing', async () => {
    const workflow = `wf-${crypto.randomUUID()}`;
    // Bob watches the same workflow name before Alice submits: his stream must stay empty of her tasks.
    const bobAbort = new AbortController();
    const bobEvents: FerryEvent[] = [];
    const bobReading = (async () => {
      for await (const e of bob.events({ workflow_id: workflow }, { signal: bobAbort.signal })) bobEvents.push(e);
    })();
    // A few milliseconds of work each, so the group is still running when the client goes away.
    const fn = await alice.registerFunction('(x) => { const end = Date.now() + 3; while (Date.now() < end) {} return x * 2 }');
    const payloads = Array.from({ length: 1000 }, (_, i) => [i]);
    const { task_group_id, task_ids } = await alice.submitBatch(endpoint.endpointId, fn, payloads, { workflow_id: workflow, maxTasksPerRequest: 250 });

    // First connection: leave after 200 tasks ended.
    const first = new AbortController();
    let ended = 0;
    const before = await readUntil(alice.events({ task_group_id }, { signal: first.signal }), (e) => e.type === 'task' && ENDED.has(e.task.status) && ++ended >= 200);
    first.abort();
    const seenFirst = terminalIds(before);
    expect(seenFirst.length).toBeGreaterThanOrEqual(200);
    expect(seenFirst.length).toBeLessThan(1000);

    // Second connection, resumed: its connection is cut once mid-way, and the SDK reconnects by itself.
    let reconnects = 0;
    const second = new AbortController();
    const after: FerryEvent[] = [];
    let cut = false;
    for await (const e of alice.events({ task_group_id }, { lastEventId: before.at(-1)!.id, signal: second.signal, backoff: { minMs: 50 }, onReconnect: () => reconnects++ })) {
      after.push(e);
      const ended = seenFirst.length + terminalIds(after).length;
      if (!cut && ended >= 500) {
        cut = true;
        proxy.dropAll();
      }
      if (ended >= 1000) break;
    }
    second.abort();
    expect(reconnects).toBeGreaterThanOrEqual(1);
    const all = [...seenFirst, ...terminalIds(after)];
    expect(all).toHaveLength(1000);
    expect(new Set(all).size).toBe(1000);
    expect([...all].sort()).toEqual([...task_ids].sort());
    // Results inline, as GET /v2/tasks answers them.
    const results = new Map<string, unknown>();
    for (const e of [...before, ...after]) if (e.type === 'task' && e.task.status === 'success') results.set(e.task.task_id, e.task.result);
    expect(task_ids.map((id) => results.get(id))).toEqual(payloads.map(([i]) => i! * 2));

    // Bob: 404 for her group, nothing of her workflow.
    await expect(readUntil(bob.events({ task_group_id }), () => true)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    bobAbort.abort();
    await bobReading;
    expect(bobEvents).toEqual([]);
  }, 120_000);
});

describe('acceptance 2: the executor', () => {
  it('maps over 5,000 inputs: every result once, in completion order, without a single batch_status or task poll at the gateway', async () => {
    const polls = () => proxy.count('POST', '/v2/batch_status') + proxy.count('GET', '/v2/tasks/');
    const pollsBefore = polls();
    const submitsBefore = proxy.count('POST', `/v3/endpoints/${endpoint.endpointId}/submit`);
    const executor = alice.executor({ endpoint: endpoint.endpointId, batchSize: 1000 });
    const inputs = Array.from({ length: 5000 }, (_, i) => i);
    const results: number[] = [];
    for await (const r of executor.map<number>((x: number) => x + 1, inputs)) results.push(r);
    expect(results).toHaveLength(5000);
    expect(new Set(results).size).toBe(5000);
    expect([...results].sort((a, b) => a - b)).toEqual(inputs.map((i) => i + 1));
    expect(polls() - pollsBefore).toBe(0);
    // Batches of 1,000: five submit requests, one group.
    expect(proxy.count('POST', `/v3/endpoints/${endpoint.endpointId}/submit`) - submitsBefore).toBe(5);
    expect(executor.taskGroupId).toMatch(new RegExp(`^${endpoint.endpointId}\\.`));
    executor.close();
  }, 180_000);

  it('cancels a running task through an AbortSignal: the future rejects and the task is cancelled at the gateway', async () => {
    const executor = alice.executor({ endpoint: endpoint.endpointId });
    const slow = '(ms) => { const end = Date.now() + ms; while (Date.now() < end) {} return ms }';
    const abort = new AbortController();
    const future = executor.submitWith({ signal: abort.signal }, slow, 5000);
    const quick = executor.submit<number>(slow, 1);
    const taskId = await future.taskId;
    abort.abort();
    await expect(future).rejects.toBeInstanceOf(TaskCancelledError);
    expect(await quick).toBe(1);
    expect((await alice.getTask(taskId)).status).toBe('cancelled');
    executor.close();
  }, 60_000);

  it('reload rebuilds the futures of a group in a new client, and they settle from the stream', async () => {
    const first = alice.executor({ endpoint: endpoint.endpointId, batchSize: 50 });
    const fn = '(x) => { const end = Date.now() + 20; while (Date.now() < end) {} return x * 10 }';
    const futures = Array.from({ length: 100 }, (_, i) => first.submit<number>(fn, i));
    await Promise.all(futures.map((f) => f.taskId));
    const groupId = first.taskGroupId!;
    // The first client goes away (a restarted notebook) before its tasks end.
    first.close();
    const again = await stack.clientWith('alice', { url: proxy.url });
    const pollsBefore = proxy.count('POST', '/v2/batch_status');
    const second = again.executor({ endpoint: endpoint.endpointId });
    const reloaded = await second.reload<number>(groupId);
    expect(await Promise.all(reloaded.map((f) => f.taskId))).toEqual(await Promise.all(futures.map((f) => f.taskId)));
    expect(await Promise.all(reloaded)).toEqual(Array.from({ length: 100 }, (_, i) => i * 10));
    expect(proxy.count('POST', '/v2/batch_status')).toBe(pollsBefore);
    // The reloaded executor submits into the same group.
    const more = second.submit<number>(fn, 7);
    expect(await more).toBe(70);
    expect((await again.getTask(await more.taskId)).details.task_group_id).toBe(groupId);
    second.close();
  }, 60_000);
});
