// The worker's task loop, apart from the process so tests can drive it with a fake sandbox: a FIFO
// queue run one task at a time, each on the runner for its function's runtime (JS sandbox or
// shell), `started` for tasks that run long, results sent in batches; a result that does not
// travel inline (bytes, large JSON) is sent in parts first (`sendBody`), then named in its batch.

import type { Payload } from '../../protocol/api';
import { taskException, type TaskException } from '../../protocol/errors';
import type { FromWorker, ResultBody, ToWorker, WorkerLimits, WorkerTaskResult } from '../../protocol/interchange';
import type { FunctionSpec, TaskMessage } from '../../protocol/wire';
import { traceHop } from '../../protocol/trace';
import type { EncodedResult, Sandbox, SandboxOutcome } from './sandbox';

type QueuedTask = TaskMessage & { attempt: number };

export interface WorkerLoopOptions {
  /** Runs `runtime: 'js'` functions. */
  sandbox: Sandbox;
  /**
   * Runs `runtime: 'shell'` functions, and only where `limits.allow_shell_functions` is true:
   * elsewhere they fail with FERRY_SHELL_NOT_ALLOWED and nothing is run, runner or not.
   */
  shell?: Sandbox;
  /**
   * Runs `runtime: 'python'` functions, and only where `limits.python` is set (the endpoint
   * config's `python.enabled`): elsewhere they fail with FERRY_RUNTIME_NOT_ALLOWED, nothing run.
   */
  python?: Sandbox;
  limits: WorkerLimits;
  send: (msg: FromWorker) => void;
  /**
   * Sends a result body to the agent in parts (src/endpoint/worker/result-parts.ts) and resolves
   * once they are on their way. Absent: such results fail with FERRY_RESULT_NOT_STORED.
   */
  sendBody?: (taskId: string, attempt: number, body: EncodedResult) => Promise<ResultBody>;
  host: string;
  pid: number;
  /** Unix time in seconds, fractional. */
  now?: () => number;
  /** A task still running after this long is announced with `started`; short ones cost no message. */
  startedAfterMs?: number;
  /** Results held before a send while the queue still has work. */
  batchSize?: number;
  /** Longest a finished result waits for its batch while the queue still has work. */
  batchDelayMs?: number;
  onError?: (msg: string, fields: Record<string, unknown>) => void;
}

export class WorkerLoop {
  private readonly queue: QueuedTask[] = [];
  // Kept for the worker's life: the manager sends each function's code to a worker only once.
  private readonly functions = new Map<string, FunctionSpec>();
  private pending: WorkerTaskResult[] = [];
  private running = false;
  private stopped = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: WorkerLoopOptions) {
    this.now = opts.now ?? (() => Date.now() / 1000);
  }

  handle(msg: ToWorker): void {
    try {
      if (msg.type === 'tasks') {
        for (const f of msg.functions ?? []) this.functions.set(f.function_uuid, f);
        for (const t of msg.tasks ?? []) traceHop(t.trace, 'worker.received');
        this.queue.push(...(msg.tasks ?? []));
        void this.pump();
      } else if (msg.type === 'cancel') {
        // The gateway has already marked these cancelled: a result for them would only be noise.
        const ids = new Set(msg.task_ids);
        for (let i = this.queue.length - 1; i >= 0; i--) if (ids.has(this.queue[i]!.task_id)) this.queue.splice(i, 1);
        if (this.queue.length === 0) this.flush();
      }
    } catch (err) {
      this.opts.onError?.('bad message from manager', { error: String(err) });
    }
  }

  /** Tasks queued and not yet started. */
  get queued(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return !this.running && this.queue.length === 0;
  }

  /** Sends what is pending and stops taking tasks; the running task's result is dropped. */
  stop(): void {
    this.flush();
    this.stopped = true;
    this.queue.length = 0;
  }

  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0 || this.stopped) return;
    const results = this.pending;
    this.pending = [];
    for (const r of results) traceHop(r.trace, 'worker.sent');
    this.opts.send({ type: 'results', results });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let task = this.queue.shift(); task && !this.stopped; task = this.queue.shift()) {
        // Awaited before touching `pending`: a timed flush may swap the array meanwhile.
        const result = await this.execute(task);
        this.pending.push(result);
        if (this.queue.length === 0 || this.pending.length >= (this.opts.batchSize ?? 64)) this.flush();
        else this.flushTimer ??= setTimeout(() => this.flush(), this.opts.batchDelayMs ?? 10);
      }
    } finally {
      this.running = false;
    }
  }

  private async execute(task: QueuedTask): Promise<WorkerTaskResult> {
    const started_at = this.now();
    // One getrusage before and one after (CPU and peak memory alike): each walks every thread of the
    // process, isolated-vm's included, and costs ~10 µs here.
    const before = process.resourceUsage();
    const announce = setTimeout(() => this.opts.send({ type: 'started', task_id: task.task_id, at: started_at }), this.opts.startedAfterMs ?? 50);
    let outcome: SandboxOutcome;
    traceHop(task.trace, 'isolate.entered');
    try {
      outcome = await this.runTask(task);
      traceHop(task.trace, 'isolate.left');
    } catch (err) {
      // The sandbox reports failures as outcomes; a throw here is a bug, and still becomes a result.
      outcome = failed(taskException('INTERNAL', err instanceof Error ? err.message : String(err), { name: 'WorkerError' }));
      this.opts.onError?.('sandbox threw', { task_id: task.task_id, error: String(err) });
    } finally {
      clearTimeout(announce);
    }
    const attempt = task.attempt ?? 1;
    const ended_at = this.now();
    let body: ResultBody | undefined;
    if (outcome.status === 'success' && outcome.body) {
      try {
        if (!this.opts.sendBody) throw new Error('this worker cannot send a result by reference (bytes, or JSON over the inline limit)');
        body = await this.opts.sendBody(task.task_id, attempt, outcome.body);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        outcome = { status: 'failed', exception: taskException('FERRY_RESULT_NOT_STORED', `the result could not be sent to the agent: ${message}`), stdout: outcome.stdout };
      }
    }
    const result: WorkerTaskResult = { task_id: task.task_id, status: outcome.status };
    if (outcome.status === 'failed') result.exception = outcome.exception;
    else if (body) result.result_body = body;
    else result.result = outcome.result ?? null;
    if (outcome.stdout) result.stdout = outcome.stdout;
    if (task.trace) result.trace = task.trace;
    const after = process.resourceUsage();
    const cpuMicros = after.userCPUTime - before.userCPUTime + after.systemCPUTime - before.systemCPUTime;
    result.execution = {
      attempt, started_at, ended_at, host: this.opts.host, worker_pid: this.opts.pid,
      cpu_time_s: cpuMicros / 1e6 + (outcome.child?.cpu_time_s ?? 0),
      peak_rss_bytes: Math.max(after.maxRSS * 1024, outcome.child?.peak_rss_bytes ?? 0),
      ...(outcome.interpreter ? { interpreter: outcome.interpreter } : {}),
    };
    return result;
  }

  private runTask(task: QueuedTask): Promise<SandboxOutcome> {
    const fn = this.functions.get(task.function_uuid);
    if (!fn) {
      return Promise.resolve(failed(taskException('FERRY_FUNCTION_UNAVAILABLE', `The worker has no code for function ${task.function_uuid}`)));
    }
    let runner: Sandbox | undefined = this.opts.sandbox;
    if (fn.runtime === 'shell') {
      runner = this.opts.limits.allow_shell_functions === true ? this.opts.shell : undefined;
      if (!runner) return Promise.resolve(failed(taskException('FERRY_SHELL_NOT_ALLOWED', 'This endpoint does not run shell functions (allow_shell_functions is off in its config)')));
    } else if (fn.runtime === 'python') {
      runner = this.opts.limits.python ? this.opts.python : undefined;
      if (!runner) return Promise.resolve(failed(taskException('FERRY_RUNTIME_NOT_ALLOWED', 'This endpoint does not run Python functions (python.enabled is off in its config)')));
    }
    const payload: Payload = { args: task.payload?.args ?? [], ...(task.payload?.kwargs !== undefined ? { kwargs: task.payload.kwargs } : {}) };
    return runner.run(fn, payload, {
      timeout_s: this.opts.limits.timeout_s, memory_mb: this.opts.limits.memory_mb, allow_wasm: this.opts.limits.allow_wasm === true,
    });
  }
}

function failed(exception: TaskException): SandboxOutcome {
  return { status: 'failed', exception, stdout: '' };
}
