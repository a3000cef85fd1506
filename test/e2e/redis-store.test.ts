// Task state in either store survives the gateway being killed mid-batch: a 1,000-task batch runs
// on a real endpoint, workerd is SIGKILLed while tasks are executing and started again on the same
// state, and every task ends with its correct result. Runs once per TaskStore adapter.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { startStack, succeededCount, type EndpointHandle, type TestTaskStore, waitForWorkers } from '../helpers/stack';

type StartedStack = Awaited<ReturnType<typeof startStack>>;

// A few milliseconds of CPU per task (not clock-based: a sandbox may coarsen Date.now), so the
// batch is still running when the gateway dies.
const SLOW_TRIPLE = '(x) => { let s = 0; for (let i = 0; i < 5e6; i++) s += i % 7; return s >= 0 ? x * 3 : -1 }';

describe.each<TestTaskStore>(['sqlite', 'redis'])('TASK_STORE=%s', (taskStore) => {
  let stack: StartedStack;
  let alice: Client;
  let endpoint: EndpointHandle;

  beforeAll(async () => {
    stack = await startStack({ taskStore });
    alice = await stack.client('alice');
    endpoint = await stack.createEndpoint(`kill-${taskStore}`, 'alice', { task_timeout_s: 10 });
    endpoint.start();
    await waitForWorkers(alice, endpoint.endpointId, 2);
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('loses no task of a 1,000-task batch when the gateway is SIGKILLed mid-batch and restarted', async () => {
    const fn = await alice.registerFunction(SLOW_TRIPLE, { name: 'slow_triple' });
    const payloads = Array.from({ length: 1000 }, (_, i) => [i]);
    // The batch goes in two parts around the kill, so the gateway always dies in the middle of it,
    // with tasks executing, queued, or with results on their way, however fast this machine is.
    const first = await alice.submitBatch(endpoint.endpointId, fn, payloads.slice(0, 600), { maxTasksPerRequest: 200 });
    const task_group_id = first.task_group_id;
    await vi.waitFor(async () => expect(await succeededCount(alice, first.task_ids), 'some tasks to finish before the kill').toBeGreaterThanOrEqual(50), { timeout: 60_000, interval: 20 });

    await stack.restartGateway('SIGKILL');

    const second = await alice.submitBatch(endpoint.endpointId, fn, payloads.slice(600), { maxTasksPerRequest: 200, task_group_id });
    const task_ids = [...first.task_ids, ...second.task_ids];
    expect(new Set(task_ids).size).toBe(1000);
    const docs = await alice.waitAll(task_ids, { timeout: 120 });
    expect(docs.map((d) => d.status)).toEqual(Array(1000).fill('success'));
    expect(docs.map((d) => d.result)).toEqual(payloads.map(([i]) => (i as number) * 3));
    for (const d of docs) expect(d.details.attempts).toBeGreaterThanOrEqual(1);
    // The group still lists every task, once, in submission order.
    const group = await fetch(`${stack.gateway.url}/v2/taskgroup/${task_group_id}`, { headers: { authorization: `Bearer ${await stack.tokenFor('alice')}` } });
    expect(((await group.json()) as { tasks: Array<{ id: string }> }).tasks.map((t) => t.id)).toEqual(task_ids);
  }, 240_000);
});
