// The scaling strategy seen through the endpoint's status report: a backlog larger than one
// block's capacity grows the endpoint to max_blocks and no further; idle, it shrinks to min_blocks.

import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

it('grows to max_blocks under a backlog and shrinks to min_blocks when idle', async () => {
  const alice = await stack.client('alice');
  const endpoint = await stack.createEndpoint('elastic', 'alice', {
    provider: { type: 'local', init_blocks: 1, min_blocks: 1, max_blocks: 3, nodes_per_block: 1, max_workers_per_node: 1, max_idletime_s: 2 },
    strategy_period_s: 1,
    heartbeat_s: 1,
    manager_prefetch: 4,
  });
  endpoint.start();
  await vi.waitFor(async () => expect((await alice.endpointStatus(endpoint.endpointId)).details.managers, 'the first block').toBe(1), { timeout: 60_000, interval: 100 });
  // 10 ms each on one worker per block: 400 tasks keep 3 blocks busy for a few seconds.
  const fn = await alice.registerFunction('(x) => { const end = Date.now() + 10; while (Date.now() < end); return x }');
  const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: 400 }, (_, i) => [i]));

  const seen: number[] = [];
  let finished = false;
  const watcher = (async () => {
    while (!finished) {
      const s = await alice.endpointStatus(endpoint.endpointId);
      seen.push(s.details.blocks);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const docs = await alice.waitAll(task_ids, { timeout: 120 });
  expect(docs.every((d) => d.status === 'success')).toBe(true);
  await vi.waitFor(async () => expect((await alice.endpointStatus(endpoint.endpointId)).details.blocks, 'shrinking back to min_blocks (1)').toBe(1), { timeout: 30_000, interval: 250 });
  finished = true;
  await watcher;
  // The watcher's last sample may have been asked for before the shrink: read the end state afresh.
  const end = (await alice.endpointStatus(endpoint.endpointId)).details.blocks;
  seen.push(end);
  console.log(`blocks seen in the status report over time: ${seen.join(' ')}`);
  expect(Math.max(...seen)).toBe(3);
  expect(end).toBe(1);
}, 180_000);
