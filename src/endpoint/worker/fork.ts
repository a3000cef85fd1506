// Starts one worker process (main.ts) the way the manager and the tests both need it: TypeScript
// through tsx, --no-node-snapshot, which isolated-vm requires on Node 20, and IPC by structured
// clone (`serialization: 'advanced'`), which carries result parts and read answers as bytes.

import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkerLimits } from '../../protocol/interchange';

const WORKER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
// Resolved here rather than left as the bare name 'tsx', which Node would resolve from the
// child's working directory: a manager in a batch job may run anywhere.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export function forkWorker(limits: WorkerLimits, opts: ForkOptions = {}): ChildProcess {
  return fork(WORKER_MAIN, [JSON.stringify(limits)], {
    ...opts,
    serialization: 'advanced',
    execArgv: ['--no-node-snapshot', '--import', TSX_LOADER, ...(opts.execArgv ?? [])],
  });
}
