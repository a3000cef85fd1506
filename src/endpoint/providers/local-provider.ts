// The local provider: a block is `nodes` manager processes on this machine.

import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { BlockRequest, BlockState, Provider } from './provider';
import { managerCommand } from './provider';

export class LocalProvider implements Provider {
  readonly type = 'local';
  private readonly blocks = new Map<string, ChildProcess[]>();

  async submit(request: BlockRequest): Promise<string> {
    const [cmd, ...args] = managerCommand(request.connectFile);
    const children: ChildProcess[] = [];
    for (let node = 0; node < request.nodes; node++) {
      const log = openSync(join(request.dir, `manager-${node}.log`), 'a', 0o600);
      const child = spawn(cmd!, args, { stdio: ['ignore', log, log], env: process.env });
      closeSync(log);
      children.push(child);
    }
    this.blocks.set(request.blockId, children);
    return request.blockId;
  }

  async cancel(jobId: string): Promise<void> {
    for (const child of this.blocks.get(jobId) ?? []) if (child.exitCode === null) child.kill('SIGTERM');
  }

  async status(jobIds: string[]): Promise<Map<string, BlockState>> {
    const out = new Map<string, BlockState>();
    for (const id of jobIds) {
      const children = this.blocks.get(id);
      if (!children) out.set(id, 'done');
      else out.set(id, children.some((c) => c.exitCode === null && c.signalCode === null) ? 'running' : 'done');
    }
    return out;
  }

  /** Process ids of a block's managers. */
  pids(jobId: string): number[] {
    return (this.blocks.get(jobId) ?? []).map((c) => c.pid!).filter(Boolean);
  }

  /** Kills every manager this provider started (the agent is shutting down). */
  killAll(): void {
    for (const children of this.blocks.values()) for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
}
