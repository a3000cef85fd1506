// The Provider port: how an endpoint gets blocks of nodes (local processes, a Slurm or PBS job).
// A block runs one manager per node; each manager reads its connect file (0600) to dial the agent.

import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

// The loader is resolved to an absolute URL: a batch job's working directory may be anywhere.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** The command that starts one manager: Node with the flag isolated-vm needs and the TS loader. */
export function managerCommand(connectFile: string): string[] {
  const entry = fileURLToPath(new URL('../manager/main.ts', import.meta.url));
  return [process.execPath, '--no-node-snapshot', '--import', TSX_LOADER, entry, connectFile];
}
