// An endpoint whose blocks are batch jobs: with a real single-node Slurm (and Slurm's PBS-style
// wrappers), a backlog makes the strategy submit a block, its manager dials the agent from inside
// the job, every result returns, and the idle block is cancelled afterwards.

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureSlurm, type SlurmCluster } from '../helpers/slurm';
import { startStack, type Stack } from '../helpers/stack';

let cluster: SlurmCluster;
let stack: Stack;

beforeAll(async () => {
  cluster = await ensureSlurm();
  process.env.SLURM_CONF = cluster.env.SLURM_CONF; // the agents inherit it
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
});

function ferryJobs(): string[] {
  const out = execFileSync('squeue', ['-h', '-o', '%j %T'], { env: cluster.env, encoding: 'utf8' });
  return out.split('\n').filter((l) => l.startsWith('ferry-') && !/COMPLETED|CANCELLED|FAILED/.test(l));
}

describe.each(['slurm', 'pbs'] as const)('an endpoint on %s', (type) => {
  it('scales out a block for a backlog, returns all 200 results, and cancels the idle block', async () => {
    const alice = await stack.client('alice');
    const endpoint = await stack.createEndpoint(`on-${type}`, 'alice', {
      provider: { type, init_blocks: 0, min_blocks: 0, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 2, max_idletime_s: 2, walltime: '00:10:00', ...(type === 'slurm' ? { exclusive: false, cpus_per_node: 1 } : {}) },
      strategy_period_s: 1,
      heartbeat_s: 1,
    });
    const agent = endpoint.start();
    await agent.waitForOutput(/connected to gateway/, 30_000);
    expect(ferryJobs()).toEqual([]); // init_blocks: 0
    const fn = await alice.registerFunction((x: number) => x * 7);
    const t0 = Date.now();
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: 200 }, (_, i) => [i]));
    await agent.waitForOutput(/"msg":"block started".*"provider":"(slurm|pbs)"/, 30_000);
    const docs = await alice.waitAll(task_ids, { timeout: 120 });
    console.log(`${type}: backlog to all 200 results in ${((Date.now() - t0) / 1000).toFixed(1)} s (includes the job's start)`);
    expect(docs.map((d) => d.result)).toEqual(Array.from({ length: 200 }, (_, i) => i * 7));
    expect(agent.output()).toMatch(/"msg":"manager connected"/);
    // Idle for max_idletime_s → the strategy cancels the block; the scheduler no longer runs it.
    await agent.waitForOutput(/"msg":"block cancelled"/, 30_000);
    await vi.waitFor(() => expect(ferryJobs(), 'squeue to show no Ferry job').toHaveLength(0), { timeout: 30_000, interval: 200 });
    await vi.waitFor(async () => expect((await alice.endpointStatus(endpoint.endpointId)).details.blocks, 'the status report to show 0 blocks').toBe(0), { timeout: 15_000, interval: 100 });
    await agent.kill('SIGTERM');
  }, 180_000);
});
