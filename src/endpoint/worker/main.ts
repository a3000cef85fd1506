// The worker process: started by a manager through forkWorker(), it runs the manager's tasks one at
// a time (JS in isolated-vm, shell and Python functions where allowed) and answers over Node IPC. It ends when
// its manager goes away or on SIGTERM.

import { hostname } from 'node:os';
import { FerryError, isErrorCode } from '../../protocol/errors';
import { MAX_READ_BYTES, type FromWorker, type ReadResult, type ToWorker, type WorkerLimits } from '../../protocol/interchange';
import { createLogger } from '../log';
import { IsolatedVmSandbox, type ObjectRead } from './isolated-vm-sandbox';
import { PythonRunner } from './python-runner';
import { ResultPartSender } from './result-parts';
import { shellEnvironment, takeShellEnvFromEnvironment } from './shell-environment';
import { ShellRunner } from './shell-runner';
import { WorkerLoop } from './worker-loop';

const log = createLogger({ component: 'worker', pid: process.pid });
// The manager reports the running task of a worker ending with this code as FERRY_MEMORY_LIMIT
// (src/endpoint/manager/manager.ts), so the worker sends no result for it.
const EXIT_ISOLATE_FAILURE = 70;

function parseLimits(arg: string | undefined): WorkerLimits {
  const v = JSON.parse(arg ?? '{}') as Partial<WorkerLimits>;
  if (!(typeof v.memory_mb === 'number' && v.memory_mb >= 8) || !(typeof v.timeout_s === 'number' && v.timeout_s > 0)) {
    throw new Error(`worker limits must be {"memory_mb": ≥ 8, "timeout_s": > 0}, got ${arg}`);
  }
  if (v.allow_wasm !== undefined && typeof v.allow_wasm !== 'boolean') {
    throw new Error(`worker limits: allow_wasm must be a boolean, got ${arg}`);
  }
  if (v.allow_shell_functions !== undefined && typeof v.allow_shell_functions !== 'boolean') {
    throw new Error(`worker limits: allow_shell_functions must be a boolean, got ${arg}`);
  }
  if (v.shell_output_lines !== undefined && !(Number.isInteger(v.shell_output_lines) && v.shell_output_lines >= 1)) {
    throw new Error(`worker limits: shell_output_lines must be an integer ≥ 1, got ${arg}`);
  }
  if (v.python !== undefined && !(v.python && typeof v.python.executable === 'string' && v.python.executable !== '' && Number.isInteger(v.python.threads) && v.python.threads >= 1)) {
    throw new Error(`worker limits: python must be {"executable": a path, "threads": ≥ 1}, got ${arg}`);
  }
  return {
    ...(v.python ? { python: { executable: v.python.executable, threads: v.python.threads } } : {}),
    memory_mb: v.memory_mb,
    timeout_s: v.timeout_s,
    allow_wasm: v.allow_wasm === true,
    allow_shell_functions: v.allow_shell_functions === true,
    shell_output_lines: v.shell_output_lines ?? 1000,
  };
}

if (!process.send) {
  log.error('the worker must be started by a manager (child_process.fork with an IPC channel)');
  process.exit(2);
}

const limits = parseLimits(process.argv[2]);
const send = (msg: FromWorker): void => {
  // After the manager is gone there is nobody to tell; the disconnect handler ends the process.
  if (process.connected) process.send!(msg);
};
// Reads for DataRefs go to the manager, which relays them to the agent's cache; a range larger
// than MAX_READ_BYTES goes in several requests, in flight together. A refusal is a FerryError of its code.
const reads = new Map<string, (msg: ReadResult) => void>();
let readSeq = 0;
function readPiece(objectId: string, start: number, end: number): Promise<ObjectRead> {
  return new Promise((resolve, reject) => {
    const req_id = String(++readSeq);
    reads.set(req_id, (msg) => {
      if (msg.ok) resolve({ data: msg.data, size: msg.size, sha256: msg.sha256 });
      else reject(isErrorCode(msg.code) ? new FerryError(msg.code, msg.message) : new FerryError('UNAVAILABLE', `${msg.code}: ${msg.message}`));
    });
    send({ type: 'read', req_id, object_id: objectId, start, end });
  });
}
async function readObject(objectId: string, start: number, end: number): Promise<ObjectRead> {
  if (end - start <= MAX_READ_BYTES) return readPiece(objectId, start, end);
  const parts: Array<Promise<ObjectRead>> = [];
  for (let a = start; a < end; a += MAX_READ_BYTES) parts.push(readPiece(objectId, a, Math.min(end, a + MAX_READ_BYTES)));
  const done = await Promise.all(parts);
  const data = new Uint8Array(end - start);
  let at = 0;
  for (const p of done) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { data, size: done[0]!.size, sha256: done[0]!.sha256 };
}

const sandbox = new IsolatedVmSandbox({
  readObject,
  onCatastrophicError: (message) => {
    // isolated-vm: V8 lost control of an isolate; the process cannot be trusted to continue.
    log.error('isolated-vm catastrophic error; exiting', { message });
    process.exit(EXIT_ISOLATE_FAILURE);
  },
  onMemoryStuck: () => {
    // Sends the results already done and drops the running task's, which the manager reports.
    log.error('resident memory stays past the limit with every isolate disposed; exiting', { rss_bytes: process.memoryUsage.rss() });
    loop.stop();
    sandbox.dispose();
    process.exit(EXIT_ISOLATE_FAILURE);
  },
});
// Built only where shell functions are allowed; the loop refuses them anyway without one.
// The config's `env` is taken out of this process's environment whether or not shell runs here.
const shellEnv = shellEnvironment(process.env, takeShellEnvFromEnvironment(process.env));
const shell = limits.allow_shell_functions ? new ShellRunner({ outputLines: limits.shell_output_lines, env: shellEnv }) : undefined;
// Built only where the config enables Python; the loop refuses Python functions anyway without one.
// Its processes get the shell functions' minimal environment, never this process's own.
const python = limits.python ? new PythonRunner({ executable: limits.python.executable, threads: limits.python.threads, env: shellEnv, readObject }) : undefined;
// Results that do not travel inline go to the manager in parts, paced by its acknowledgements.
const parts = new ResultPartSender({ send });
const loop = new WorkerLoop({
  sandbox, ...(shell ? { shell } : {}), ...(python ? { python } : {}), limits, send, sendBody: (taskId, attempt, body) => parts.send(taskId, attempt, body),
  host: hostname(), pid: process.pid, onError: (msg, fields) => log.warn(msg, fields),
});

function shutdown(reason: string): void {
  log.debug('worker exiting', { reason });
  loop.stop();
  sandbox.dispose();
  process.exit(0);
}

// Every way out (shutdown, a catastrophic isolate error, an uncaught exception) takes the running
// command's process group along; only a SIGKILL of the worker itself can orphan it.
process.on('exit', () => {
  shell?.dispose();
  python?.dispose();
});

process.on('message', (msg) => {
  // Typed, not parsed: the manager is the trust boundary. It passes on what the interchange parsed
  // (DispatchMessage, ReadResultMessage) and its own acks; a second zod walk per task cost the
  // round trip ~0.05 ms (bench latency hop trace, worker.received).
  const m = msg as ToWorker;
  if (m.type === 'read_result') {
    const settle = reads.get(m.req_id);
    reads.delete(m.req_id);
    settle?.(m);
    return;
  }
  if (m.type === 'result_part_ack') return parts.ack(m.task_id, m.attempt, m.offset);
  loop.handle(m);
});
process.on('disconnect', () => shutdown('manager disconnected'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
send({ type: 'ready', pid: process.pid });
