// Issue 16, row 3: WebAssembly.Memory is allocated past isolated-vm's ArrayBuffer allocator, so
// task_memory_mb never saw it (384 MiB under a 64 MiB limit, kept by the warm isolate). Through
// the whole path: WebAssembly is off unless the endpoint config allows it, and where it is on the
// worker's resident-memory watchdog ends the task with FERRY_MEMORY_LIMIT and gives the memory back.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { processTree, vmRssBytes } from '../helpers/processes';
import { startStack, type AgentProcess, type Stack, waitForWorkers } from '../helpers/stack';

const MIB = 1024 * 1024;
// 16384 pages of 64 KiB = 1 GiB, each page touched so it is resident: far past the worker's limit
// (about 225 MiB above where it stands here), so "stopped before it finished" has a wide margin.
const WASM_HOG = `() => {
  const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  m.grow(16384);
  const u = new Uint8Array(m.buffer);
  for (let i = 0; i < u.length; i += 4096) u[i] = 1;
  return u.length;
}`;
// One worker per endpoint: the task after the hog runs where the hog ran.
const ONE_WORKER = { provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 1 }, task_memory_mb: 64, task_timeout_s: 60 };

let stack: Stack;
let alice: Client;
beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** Resident memory of the agent and everything it started (managers, workers). */
const treeRss = (agent: AgentProcess) => processTree(agent.child.pid!).reduce((sum, pid) => sum + vmRssBytes(pid), 0);

/** Runs the hog on the endpoint and returns its task doc with the endpoint's peak RSS growth meanwhile. */
async function runHog(endpointId: string, agent: AgentProcess) {
  // A first task loads what every worker loads once (isolated-vm, a first isolate): not the hog's doing.
  const inc = await alice.registerFunction((x: number) => x + 1);
  expect(await alice.result(await alice.submit(endpointId, inc, [1]), { timeout: 60 })).toBe(2);
  const hog = await alice.registerFunction(WASM_HOG, { name: 'wasm-hog' });
  const before = treeRss(agent);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(agent))), 20);
  try {
    const [doc] = await alice.waitAll([await alice.submit(endpointId, hog, [])], { timeout: 90 });
    console.log(`wasm hog: ${doc!.exception?.code} (${doc!.exception?.message}), endpoint RSS ${Math.round(before / MIB)} MiB before, peak growth ${Math.round((peak - before) / MIB)} MiB`);
    return { doc: doc!, before, peakGrowth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

it('refuses WebAssembly on an endpoint whose config does not allow it, before it allocates anything', async () => {
  const endpoint = await stack.createEndpoint('wasm-off', 'alice', ONE_WORKER);
  const agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 1);
  const { doc, peakGrowth } = await runHog(endpoint.endpointId, agent);
  expect(doc.status).toBe('failed');
  expect(doc.exception).toMatchObject({ code: 'FERRY_FUNCTION_ERROR', name: 'WebAssemblyDisabled', message: 'WebAssembly is disabled on this endpoint (allow_wasm is off in its config)' });
  expect(peakGrowth).toBeLessThan(20 * MIB);
}, 180_000);

it('ends a task whose WebAssembly memory takes its worker past task_memory_mb with FERRY_MEMORY_LIMIT, once, and the next task succeeds', async () => {
  const endpoint = await stack.createEndpoint('wasm-on', 'alice', { ...ONE_WORKER, allow_wasm: true });
  const agent = endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 1);
  const { doc, before, peakGrowth } = await runHog(endpoint.endpointId, agent);
  expect(doc.status).toBe('failed');
  expect(doc.exception?.code).toBe('FERRY_MEMORY_LIMIT');
  expect(doc.exception?.message).toContain('task_memory_mb 64');
  // The user's own failure: run once, not retried as a lost worker would be.
  expect(doc.details.attempts).toBe(1);
  // Stopped well before its 1 GiB, and given back: the warm isolate that held it is disposed. The
  // bound leaves room for a sampler late under load (fresh-clone CI runs saw the 384 MiB hog of
  // before reach 314 and 326 MiB with a 50 ms sampler; 238-284 on a quiet box).
  expect(peakGrowth).toBeLessThan(640 * MIB);
  expect(treeRss(agent) - before).toBeLessThan(64 * MIB);
  const after = await alice.registerFunction((x: number) => x * 2);
  expect(await alice.result(await alice.submit(endpoint.endpointId, after, [21]), { timeout: 60 })).toBe(42);
  // Where WebAssembly is allowed, it works within the limit.
  const small = await alice.registerFunction('() => new WebAssembly.Memory({ initial: 2 }).buffer.byteLength', { name: 'wasm-small' });
  expect(await alice.result(await alice.submit(endpoint.endpointId, small, []), { timeout: 60 })).toBe(2 * 65536);
}, 180_000);
