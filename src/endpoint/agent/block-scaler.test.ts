import { describe, expect, it } from 'vitest';
import { createLogger } from '../log';
import type { BlockRequest, BlockState, Provider } from '../providers/provider';
import { BlockScaler, type ScalingPolicy } from './block-scaler';

/** A provider double for the strategy's own unit test; real providers have their own suites. */
class RecordingProvider implements Provider {
  readonly type = 'recording';
  readonly states = new Map<string, BlockState>();
  readonly cancelled: string[] = [];
  private n = 0;
  async submit(_req: BlockRequest) {
    const id = `job${++this.n}`;
    this.states.set(id, 'pending');
    return id;
  }
  async cancel(jobId: string) {
    this.cancelled.push(jobId);
    this.states.set(jobId, 'done');
  }
  async status(ids: string[]) {
    return new Map(ids.map((id) => [id, this.states.get(id) ?? 'done'] as const));
  }
}

function setup(policy: Partial<ScalingPolicy> = {}) {
  const provider = new RecordingProvider();
  let now = 0;
  const load = { outstanding: 0, queued: 0, busyBlocks: new Set<string>() };
  const retired: string[] = [];
  let seq = 0;
  const scaler = new BlockScaler(
    { init_blocks: 0, min_blocks: 0, max_blocks: 3, nodes_per_block: 1, max_workers_per_node: 4, max_idletime_s: 10, ...policy },
    {
      provider,
      launch: async () => ({ id: `b${++seq}`, jobId: await provider.submit({ blockId: '', nodes: 1, connectFile: '', dir: '' }) }),
      retire: (id) => retired.push(id),
      load: () => load,
      log: createLogger({}, () => {}),
      now: () => now,
    },
  );
  return { scaler, provider, load, retired, advance: (s: number) => (now += s * 1000) };
}

describe('BlockScaler', () => {
  it('grows with the backlog up to max_blocks and no further', async () => {
    const { scaler, load } = setup();
    load.outstanding = 6;
    load.queued = 6;
    await scaler.tick();
    expect(scaler.blocks.size).toBe(2); // 6 tasks / 4 workers per block
    load.outstanding = 100;
    await scaler.tick();
    expect(scaler.blocks.size).toBe(3);
    await scaler.tick();
    expect(scaler.blocks.size).toBe(3);
  });

  it('does not submit again while its blocks are still pending', async () => {
    const { scaler, load, provider } = setup();
    load.outstanding = 3;
    await scaler.tick();
    await scaler.tick();
    await scaler.tick();
    expect(scaler.blocks.size).toBe(1);
    expect(provider.states.size).toBe(1);
  });

  it('shrinks to min_blocks after max_idletime_s, keeping busy blocks', async () => {
    const { scaler, load, provider, retired, advance } = setup({ min_blocks: 1 });
    load.outstanding = 12;
    await scaler.tick();
    expect(scaler.blocks.size).toBe(3);
    for (const id of provider.states.keys()) provider.states.set(id, 'running');
    load.outstanding = 2;
    load.queued = 0;
    load.busyBlocks = new Set(['b2']);
    advance(5);
    await scaler.tick();
    expect(scaler.blocks.size).toBe(3); // not idle long enough yet
    advance(11);
    await scaler.tick();
    expect([...scaler.blocks.keys()]).toEqual(['b2']); // the busy one stays
    expect(retired.sort()).toEqual(['b1', 'b3']);
    load.busyBlocks = new Set();
    load.outstanding = 0;
    advance(60);
    await scaler.tick();
    expect(scaler.blocks.size).toBe(1); // min_blocks
  });

  it('replaces a block that ended while tasks remain', async () => {
    const { scaler, load, provider } = setup({ max_blocks: 1 });
    load.outstanding = 4;
    await scaler.tick();
    const [job] = [...provider.states.keys()];
    provider.states.set(job!, 'failed'); // walltime, scancel, node failure
    await scaler.tick();
    expect(scaler.blocks.size).toBe(1);
    expect([...scaler.blocks.values()][0]!.jobId).not.toBe(job);
  });

  it('starts init_blocks, at least min_blocks, at most max_blocks', async () => {
    const a = setup({ init_blocks: 2 });
    await a.scaler.init();
    expect(a.scaler.blocks.size).toBe(2);
    const b = setup({ init_blocks: 0, min_blocks: 1 });
    await b.scaler.init();
    expect(b.scaler.blocks.size).toBe(1);
    const c = setup({ init_blocks: 9, max_blocks: 3 });
    await c.scaler.init();
    expect(c.scaler.blocks.size).toBe(3);
  });
});
