// Runs Python functions (`runtime: 'python'`) behind the Sandbox port: one warm CPython process per
// function (bounded LRU), running the runner script shipped beside this file (python/runner.py),
// talking over its stdin and stdout in length-prefixed frames. Not a sandbox: the process runs as
// the endpoint's user, bounded by a wall-time limit (the process is killed and replaced), an
// address-space limit (RLIMIT_AS, set by the runner before user code) and the minimal environment
// shell commands get.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LIMITS, type Payload } from '../../protocol/api';
import { FerryError, isTaskFailureCode, taskException, type TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import type { ObjectRead } from './isolated-vm-sandbox';
import { OutputTail } from './output-tail';
import { successFromJson, type Sandbox, type SandboxOutcome, type SandboxRunOptions } from './sandbox';
import { StdoutCapture } from './stdout-capture';

export const RUNNER_SCRIPT = fileURLToPath(new URL('./python/runner.py', import.meta.url));

/** Frame: u32 header length, u64 body length (big-endian), the header's JSON, the body. */
const PREFIX_BYTES = 12;
/** Headers from the runner: an answer with its stdout (capped) and a traceback (capped). */
const MAX_HEADER_BYTES = 1024 * 1024;
/** What stays of the process's own stderr (C-level output, a crash's last words). */
const STDERR_TAIL_LINES = 40;
const STDERR_TAIL_BYTES = 8 * 1024;
/** How long frames written before the runner exited may still be read after its exit. */
const EXIT_DRAIN_GRACE_MS = 500;

/** The variables that set the BLAS and OpenMP thread pools numpy and friends start. */
export const THREAD_VARIABLES = ['OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'] as const;

export interface PythonRunnerOptions {
  /** The interpreter: an absolute path, or a name looked up on the environment's PATH. */
  executable: string;
  /** OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS of the processes. */
  threads: number;
  /**
   * The processes' environment besides the thread variables; default: none. The worker passes
   * shellEnvironment(): PATH, HOME, LANG and the config's `env`, never the agent's secrets.
   */
  env?: Readonly<Record<string, string>>;
  /** Reads for DataRef arguments, as the isolated-vm sandbox's (through the manager and the agent). */
  readObject?: (key: string, start: number, end: number) => Promise<ObjectRead>;
  /** Warm processes kept at once; the least recently used one is ended beyond this. */
  maxWarm?: number;
  maxStdoutBytes?: number;
  maxInlineResultBytes?: number;
  /** Where the processes run; default the worker's own working directory, as shell commands. */
  cwd?: string;
  /** The runner script; default the one shipped beside this file. */
  runnerScript?: string;
}

interface Frame {
  header: Record<string, unknown>;
  body: Buffer;
}

type Next = Frame | { exit: true };

/** One CPython process running the runner for one function. */
class PythonProcess {
  readonly child: ChildProcess;
  readonly stderr = new OutputTail(STDERR_TAIL_LINES, STDERR_TAIL_BYTES);
  /** `CPython 3.11.2`, once loaded. */
  interpreter = '';
  exited = false;
  exitDescription = '';
  /** The process never started (no such executable, not executable): the endpoint's fault, not the function's. */
  spawnFailed = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly frames: Frame[] = [];
  private waiter: ((n: Next) => void) | null = null;
  private protocolError: string | null = null;

  constructor(
    readonly code: string,
    readonly memoryMb: number,
    executable: string,
    script: string,
    env: Record<string, string>,
    cwd: string | undefined,
    private readonly maxBodyBytes: number,
  ) {
    // Its own process group: a timeout kills what the function started too.
    this.child = spawn(executable, ['-B', script], { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.on('error', () => undefined);
    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => this.stderr.write(text));
    const onGone = (description: string): void => {
      if (this.exited) return;
      this.exited = true;
      this.exitDescription = description;
      this.wake({ exit: true });
    };
    this.child.on('error', (err) => {
      if (!this.exited) this.spawnFailed = true;
      onGone(`could not start ${executable}: ${err.message}`);
    });
    // 'exit' may come before the last frames and stderr lines are read (a load failure is answered,
    // then the runner exits): the exit counts once both pipes have ended, or after a grace if a
    // child the function forked holds them.
    let open = 2;
    let exitedAs: string | null = null;
    const ended = (): void => {
      if (--open === 0 && exitedAs !== null) onGone(exitedAs);
    };
    this.child.stdout!.on('end', ended);
    this.child.stderr!.on('end', ended);
    this.child.on('exit', (code, signal) => {
      exitedAs = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      if (open === 0) onGone(exitedAs);
      else setTimeout(() => onGone(exitedAs!), EXIT_DRAIN_GRACE_MS).unref();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** A protocol violation by the runner (a frame over its bounds), if there was one. */
  get violation(): string | null {
    return this.protocolError;
  }

  send(header: Record<string, unknown>, body: Uint8Array = new Uint8Array(0)): void {
    if (this.exited) return;
    const head = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(PREFIX_BYTES);
    prefix.writeUInt32BE(head.length, 0);
    prefix.writeBigUInt64BE(BigInt(body.byteLength), 4);
    this.child.stdin!.write(prefix);
    this.child.stdin!.write(head);
    if (body.byteLength > 0) this.child.stdin!.write(body);
  }

  /** The next frame from the runner, or its exit. */
  next(): Promise<Next> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.exited) return Promise.resolve({ exit: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Kills the process group; synchronous, so it can run from a process 'exit' handler. */
  kill(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // ESRCH: already gone.
    }
  }

  private wake(n: Next): void {
    const w = this.waiter;
    this.waiter = null;
    if (w) w(n);
    else if ('header' in n) this.frames.push(n);
  }

  private onData(chunk: Buffer): void {
    if (this.protocolError) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < PREFIX_BYTES) return;
      const prefix = this.peek(PREFIX_BYTES);
      const headerLen = prefix.readUInt32BE(0);
      const bodyLen = prefix.readBigUInt64BE(4);
      // Bounded before a byte of the body is waited for.
      if (headerLen > MAX_HEADER_BYTES || bodyLen > BigInt(this.maxBodyBytes)) {
        this.protocolError = `the runner sent a frame of ${headerLen} + ${bodyLen} bytes, over the bounds (${MAX_HEADER_BYTES} + ${this.maxBodyBytes})`;
        this.chunks = [];
        this.kill();
        return;
      }
      const total = PREFIX_BYTES + headerLen + Number(bodyLen);
      if (this.buffered < total) return;
      const all = this.take(total);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(all.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLen).toString('utf8')) as Record<string, unknown>;
      } catch {
        this.protocolError = 'the runner sent a header that is not JSON';
        this.kill();
        return;
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) {
        this.protocolError = 'the runner sent a header that is not a JSON object';
        this.kill();
        return;
      }
      this.wake({ header, body: all.subarray(PREFIX_BYTES + headerLen) });
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    // One concatenation per frame: a 16 MiB result arrives in many pipe reads.
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.buffered = rest.length;
    return frame;
  }
}

export class PythonRunner implements Sandbox {
  private readonly warm = new Map<string, PythonProcess>();
  private tail: Promise<unknown> = Promise.resolve();
  private readonly env: Record<string, string>;
  private readonly maxWarm: number;
  private readonly maxStdoutBytes: number;
  private readonly maxInlineResultBytes: number;
  private readonly script: string;

  constructor(private readonly options: PythonRunnerOptions) {
    const threads = String(options.threads);
    this.env = { ...(options.env ?? {}), PYTHONDONTWRITEBYTECODE: '1' };
    for (const name of THREAD_VARIABLES) this.env[name] = threads;
    this.maxWarm = options.maxWarm ?? 4;
    this.maxStdoutBytes = options.maxStdoutBytes ?? LIMITS.maxStdoutBytes;
    this.maxInlineResultBytes = options.maxInlineResultBytes ?? LIMITS.maxInlineResultBytes;
    this.script = options.runnerScript ?? RUNNER_SCRIPT;
  }

  run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const outcome = this.tail.then(() => this.runNow(fn, payload, opts));
    this.tail = outcome.catch(() => undefined);
    return outcome;
  }

  /** Kills every process, synchronously (from a process 'exit' handler too). */
  dispose(): void {
    for (const p of this.warm.values()) p.kill();
    this.warm.clear();
  }

  /** Warm processes held; for tests. */
  get warmPids(): number[] {
    return [...this.warm.values()].flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  private drop(uuid: string): void {
    this.warm.get(uuid)?.kill();
    this.warm.delete(uuid);
  }

  private async runNow(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const capture = new StdoutCapture(this.maxStdoutBytes);
    if (fn.runtime !== 'python' || !fn.name) {
      return failed(capture, taskException('INTERNAL', `The Python runner was handed a '${fn.runtime}' function${fn.name ? '' : ' without a name'}`, { name: 'WorkerError' }));
    }
    const uuid = fn.function_uuid;
    let proc = this.warm.get(uuid);
    if (proc && (proc.exited || proc.code !== fn.code || proc.memoryMb !== opts.memory_mb)) {
      this.drop(uuid);
      proc = undefined;
    }
    // The process may hold the function's results and the payload besides its own memory.
    const maxBodyBytes = Math.max(opts.memory_mb, 64) * 1024 * 1024;
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      this.warm.get(uuid)?.kill();
    }, Math.max(1, Math.round(opts.timeout_s * 1000)));
    try {
      let loadedNow = false;
      if (!proc) {
        proc = new PythonProcess(fn.code, opts.memory_mb, this.options.executable, this.script, this.env, this.options.cwd, maxBodyBytes);
        this.warm.delete(uuid);
        this.warm.set(uuid, proc);
        this.evict();
        proc.send({ type: 'init', name: fn.name, memory_mb: opts.memory_mb, max_stdout_bytes: this.maxStdoutBytes, max_body_bytes: maxBodyBytes }, Buffer.from(fn.code, 'utf8'));
        loadedNow = true;
      } else {
        // Most recently used last.
        this.warm.delete(uuid);
        this.warm.set(uuid, proc);
      }
      if (loadedNow) {
        const first = await proc.next();
        if ('exit' in first) return failed(capture, this.lost(proc, timedOut, opts));
        capture.append(String(first.header['stdout'] ?? ''));
        if (first.header['type'] !== 'loaded') {
          this.drop(uuid);
          return failed(capture, loadFailure(first.header));
        }
        proc.interpreter = `${String(first.header['implementation'])} ${String(first.header['version'])}`;
      }
      proc.send({ type: 'run' }, Buffer.from(JSON.stringify(payload), 'utf8'));
      for (;;) {
        const next = await proc.next();
        if ('exit' in next) return failed(capture, this.lost(proc, timedOut, opts));
        const { header, body } = next;
        if (header['type'] === 'read') {
          proc.send(...(await this.read(header, maxBodyBytes)));
          continue;
        }
        capture.append(String(header['stdout'] ?? ''));
        const interpreter = proc.interpreter;
        const cpu = Number(header['cpu_time_s']);
        const rss = Number(header['peak_rss_bytes']);
        const child = Number.isFinite(cpu) && cpu >= 0 && Number.isSafeInteger(rss) && rss >= 0 ? { child: { cpu_time_s: cpu, peak_rss_bytes: rss } } : {};
        if (header['type'] === 'failed') {
          const exception = exceptionOf(header);
          // After a MemoryError the process's heap may be left fragmented: the next task gets a new one.
          if (exception.code === 'FERRY_MEMORY_LIMIT') this.drop(uuid);
          return { ...failed(capture, exception), interpreter, ...child };
        }
        if (header['type'] !== 'result') {
          this.drop(uuid);
          return failed(capture, taskException('INTERNAL', `the Python runner answered ${JSON.stringify(header['type'])}`, { name: 'RunnerError' }));
        }
        const kind = header['kind'];
        // The runner's memory and the body's bytes are not shared: a copy that owns its buffer.
        if (kind === 'json') return { ...successFromJson(body.toString('utf8'), capture.text(), this.maxInlineResultBytes), interpreter, ...child };
        if (kind === 'bytes' || kind === 'npy') {
          return { status: 'success', body: { data: Buffer.from(body), content_type: kind === 'npy' ? 'application/x-npy' : 'application/octet-stream' }, stdout: capture.text(), interpreter, ...child };
        }
        this.drop(uuid);
        return failed(capture, taskException('INTERNAL', `the Python runner answered a result of kind ${JSON.stringify(kind)}`, { name: 'RunnerError' }));
      }
    } catch (err) {
      this.drop(uuid);
      return failed(capture, taskException('INTERNAL', err instanceof Error ? err.message : String(err), { name: 'WorkerError' }));
    } finally {
      clearTimeout(watchdog);
    }
  }

  /** The answer to a DataRef read: its header and bytes, or the error's code and message. */
  private async read(header: Record<string, unknown>, maxBytes: number): Promise<[Record<string, unknown>, Uint8Array?]> {
    const { key, start, end } = header;
    if (typeof key !== 'string' || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || (start as number) < 0 || (end as number) < (start as number)) {
      return [{ type: 'read_result', ok: false, code: 'RANGE_NOT_SATISFIABLE', message: `a read of ${JSON.stringify(key)} [${String(start)}, ${String(end)}) is malformed` }];
    }
    if ((end as number) - (start as number) > maxBytes) {
      return [{ type: 'read_result', ok: false, code: 'RANGE_NOT_SATISFIABLE', message: `a read of ${(end as number) - (start as number)} bytes is more than this process may hold (task_memory_mb)` }];
    }
    if (!this.options.readObject) return [{ type: 'read_result', ok: false, code: 'UNAVAILABLE', message: 'this worker cannot read data references' }];
    try {
      const r = await this.options.readObject(key, start as number, end as number);
      return [{ type: 'read_result', ok: true, size: r.size, sha256: r.sha256 }, r.data];
    } catch (err) {
      return [{ type: 'read_result', ok: false, code: err instanceof FerryError ? err.code : '', message: err instanceof Error ? err.message : String(err) }];
    }
  }

  /** Why a process ended under a task: the wall-time limit, memory, or something the function did. */
  private lost(proc: PythonProcess, timedOut: boolean, opts: SandboxRunOptions): TaskException {
    for (const [uuid, p] of this.warm) if (p === proc) this.warm.delete(uuid);
    proc.kill();
    if (timedOut) return taskException('FERRY_TASK_TIMEOUT', `The task exceeded its wall-time limit of ${opts.timeout_s} s`);
    const stderr = proc.stderr.text();
    if (proc.violation) return taskException('INTERNAL', proc.violation, { name: 'RunnerError' });
    if (/MemoryError|Cannot allocate memory|std::bad_alloc|out of memory/i.test(stderr)) {
      return taskException('FERRY_MEMORY_LIMIT', `The Python process ran out of memory under its limit of ${opts.memory_mb} MB (task_memory_mb) and ${proc.exitDescription}`, { stack: stderr });
    }
    if (proc.spawnFailed) return taskException('INTERNAL', `The Python runtime ${proc.exitDescription} (python.executable in the endpoint config)`, { name: 'PythonSpawnError' });
    return taskException('FERRY_FUNCTION_ERROR', `The Python process ${proc.exitDescription} while running the task`, { name: 'PythonProcessExited', stack: stderr });
  }

  private evict(): void {
    while (this.warm.size > this.maxWarm) {
      const oldest = this.warm.keys().next().value as string;
      this.drop(oldest);
    }
  }
}

/** The task's exception from a `failed` or load-failure answer of the runner (a process of its own: its code is checked). */
function exceptionOf(h: Record<string, unknown>): TaskException {
  const name = typeof h['name'] === 'string' ? h['name'] : 'Error';
  const message = typeof h['message'] === 'string' ? h['message'] : '';
  return taskException(isTaskFailureCode(h['code']) ? h['code'] : 'FERRY_FUNCTION_ERROR', message, { name, stack: typeof h['stack'] === 'string' ? h['stack'] : undefined });
}

function loadFailure(h: Record<string, unknown>): TaskException {
  if (h['type'] === 'invalid') {
    return taskException('FERRY_FUNCTION_INVALID', `The function code is invalid: ${typeof h['message'] === 'string' ? h['message'] : ''}`);
  }
  if (h['type'] === 'failed') return exceptionOf(h);
  return taskException('INTERNAL', `the Python runner answered ${JSON.stringify(h['type'])} to init`, { name: 'RunnerError' });
}

function failed(capture: StdoutCapture, exception: TaskException): SandboxOutcome {
  return { status: 'failed', exception, stdout: capture.text() };
}
