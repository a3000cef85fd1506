// The Provider port: how an endpoint gets blocks of nodes (local processes, a Slurm or PBS job).
// A block runs one manager per node; each manager reads its connect file (0600) to dial the agent.

export type BlockState = 'pending' | 'running' | 'done' | 'failed';

export interface BlockRequest {
  blockId: string;
  nodes: number;
  /** Path of the 0600 file the block's managers read to reach the interchange. */
  connectFile: string;
  /** Directory for the block's logs and scripts. */
  dir: string;
}

export interface Provider {
  readonly type: string;
  /** Starts a block; returns the scheduler's job id. */
  submit(request: BlockRequest): Promise<string>;
  cancel(jobId: string): Promise<void>;
  status(jobIds: string[]): Promise<Map<string, BlockState>>;
}

/** The command that starts one manager: Node with the flag isolated-vm needs and the TS loader. */
export function managerCommand(connectFile: string): string[] {
  const entry = new URL('../manager/main.ts', import.meta.url).pathname;
  return [process.execPath, '--no-node-snapshot', '--import', 'tsx', entry, connectFile];
}
