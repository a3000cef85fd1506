// The scaling strategy: keeps between min_blocks and max_blocks blocks, adds blocks when the
// outstanding tasks exceed the capacity of the blocks there are (pending ones included, so a
// queued batch job is not submitted twice), cancels blocks idle longer than max_idletime_s, and
// forgets blocks that ended (failed, walltime, scancel) so that work left over gets new ones.

import type { Logger } from '../log';
import type { BlockState, Provider } from '../providers/provider';

export interface ScalingPolicy {
  init_blocks: number;
  min_blocks: number;
  max_blocks: number;
  nodes_per_block: number;
  max_workers_per_node: number;
  max_idletime_s: number;
}

export interface BlockInfo {
  id: string;
  jobId: string;
  state: BlockState;
  startedAt: number;
  /** Last time a task was queued for or running on this block (ms). */
  lastBusy: number;
}

export interface ScalerDeps {
  provider: Provider;
  /** Prepares a block's secret and connect file and submits it; returns its ids. */
  launch(): Promise<{ id: string; jobId: string }>;
  /** Called after a block is cancelled or has ended, to revoke its secret. */
  retire(blockId: string): void;
  /** Tasks the endpoint holds and has not finished, and the blocks running some of them. */
  load(): { outstanding: number; queued: number; busyBlocks: ReadonlySet<string> };
  log: Logger;
  now?: () => number;
}

export class BlockScaler {
  readonly blocks = new Map<string, BlockInfo>();
  private readonly now: () => number;
  private ticking = false;

  constructor(private readonly policy: ScalingPolicy, private readonly deps: ScalerDeps) {
    this.now = deps.now ?? Date.now;
  }

  get capacityPerBlock(): number {
    return this.policy.nodes_per_block * this.policy.max_workers_per_node;
  }

  async init(): Promise<void> {
    const n = Math.max(this.policy.init_blocks, this.policy.min_blocks);
    for (let i = 0; i < Math.min(n, this.policy.max_blocks); i++) await this.add('init_blocks');
  }

  /** One strategy step; overlapping calls are skipped. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.refresh();
      const { outstanding, queued, busyBlocks } = this.deps.load();
      const now = this.now();
      for (const b of this.blocks.values()) if (busyBlocks.has(b.id)) b.lastBusy = now;

      const active = this.blocks.size;
      const capacity = active * this.capacityPerBlock;
      if (outstanding > capacity && active < this.policy.max_blocks) {
        const wanted = Math.ceil((outstanding - capacity) / this.capacityPerBlock);
        const add = Math.min(wanted, this.policy.max_blocks - active);
        for (let i = 0; i < add; i++) await this.add(`${outstanding} outstanding tasks > capacity ${capacity}`);
      } else if (active < this.policy.min_blocks) {
        for (let i = active; i < this.policy.min_blocks; i++) await this.add('below min_blocks');
      } else if (queued === 0) {
        // Idle blocks go, the longest idle first, down to min_blocks.
        const idle = [...this.blocks.values()]
          .filter((b) => !busyBlocks.has(b.id) && now - b.lastBusy > this.policy.max_idletime_s * 1000)
          .sort((a, b) => a.lastBusy - b.lastBusy);
        let count = this.blocks.size;
        for (const b of idle) {
          if (count <= this.policy.min_blocks) break;
          await this.cancel(b, `idle for ${Math.round((now - b.lastBusy) / 1000)} s`);
          count--;
        }
      }
    } finally {
      this.ticking = false;
    }
  }

  async cancelAll(): Promise<void> {
    for (const b of [...this.blocks.values()]) await this.cancel(b, 'endpoint stopping');
  }

  counts(): { blocks: number; pending: number; running: number } {
    let pending = 0;
    let running = 0;
    for (const b of this.blocks.values()) {
      if (b.state === 'pending') pending++;
      if (b.state === 'running') running++;
    }
    return { blocks: this.blocks.size, pending, running };
  }

  private async add(reason: string): Promise<void> {
    try {
      const { id, jobId } = await this.deps.launch();
      const now = this.now();
      this.blocks.set(id, { id, jobId, state: 'pending', startedAt: now, lastBusy: now });
      this.deps.log.info('block started', { block_id: id, job_id: jobId, provider: this.deps.provider.type, reason, blocks: this.blocks.size });
    } catch (err) {
      this.deps.log.error('block submission failed', { provider: this.deps.provider.type, error: (err as Error).message });
    }
  }

  private async cancel(b: BlockInfo, reason: string): Promise<void> {
    this.blocks.delete(b.id);
    this.deps.retire(b.id);
    try {
      await this.deps.provider.cancel(b.jobId);
    } catch (err) {
      this.deps.log.warn('block cancel failed', { block_id: b.id, job_id: b.jobId, error: (err as Error).message });
    }
    this.deps.log.info('block cancelled', { block_id: b.id, job_id: b.jobId, reason, blocks: this.blocks.size });
  }

  private async refresh(): Promise<void> {
    if (this.blocks.size === 0) return;
    let states: Map<string, BlockState>;
    try {
      states = await this.deps.provider.status([...this.blocks.values()].map((b) => b.jobId));
    } catch (err) {
      this.deps.log.warn('block status failed', { provider: this.deps.provider.type, error: (err as Error).message });
      return;
    }
    for (const b of [...this.blocks.values()]) {
      const state = states.get(b.jobId);
      if (!state) continue;
      if (state === 'done' || state === 'failed') {
        this.blocks.delete(b.id);
        this.deps.retire(b.id);
        this.deps.log.warn('block ended', { block_id: b.id, job_id: b.jobId, state });
      } else {
        b.state = state;
      }
    }
  }
}
