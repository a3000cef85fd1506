// A manager runs on one node of a block: it dials the agent's interchange, starts the node's
// worker processes, and relays tasks to them and results back in batches. Functions never run
// here; a worker that dies is replaced and its unfinished tasks are run again.

import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { taskException } from '../../protocol/errors';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, nestsDeeperThan } from '../../protocol/json-depth';
import { INTERCHANGE_VERSION, InterchangeMessage, MAX_MANAGER_FRAME_BYTES, MAX_READ_BYTES, boundResultDepth, FromWorker, type ToWorker, type WorkerTaskResult } from '../../protocol/interchange';
import type { FunctionSpec, TaskMessage } from '../../protocol/wire';
import { traceHop } from '../../protocol/trace';
import { encodeFrame, readFrames, sendFrame, writeFrame } from '../interchange/frames';
import type { Logger } from '../log';
import { forkWorker } from '../worker/fork';
import type { ConnectInfo } from './connect-file';
import { SHELL_ENV_VARIABLE } from '../worker/shell-environment';

type DispatchedTask = TaskMessage & { attempt: number };

/** A worker's exit code when isolated-vm failed beyond recovery under a task (see worker/main.ts). */
const WORKER_EXIT_ISOLATE_FAILURE = 70;

/** Tasks one worker holds at once: enough to batch IPC, few enough to keep workers balanced. */
const WORKER_QUEUE = 16;

interface WorkerSlot {
  child: ChildProcess;
  ready: boolean;
  assigned: Map<string, DispatchedTask>;
  functionsSent: Set<string>;
}

export class Manager {
  private socket: Socket | null = null;
  private readonly workers: WorkerSlot[] = [];
  private readonly queue: DispatchedTask[] = [];
  private readonly functions = new Map<string, FunctionSpec>();
  private readonly cancelled = new Set<string>();
  private pendingResults: WorkerTaskResult[] = [];
  private pendingStarted: string[] = [];
  private flushScheduled = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopping = false;
  /** Reads in flight through the agent: the manager's req id → the worker and its own req id. */
  private readonly reads = new Map<string, { slot: WorkerSlot; req_id: string }>();
  private readSeq = 0;
  readonly id = randomUUID();

  constructor(private readonly info: ConnectInfo, private readonly log: Logger, private readonly onExit: (code: number) => void) {}

  start(): void {
    for (let i = 0; i < this.info.workers; i++) this.workers.push(this.spawnWorker());
    const socket = connect({ host: this.info.address, port: this.info.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      sendFrame(socket, {
        type: 'register', version: INTERCHANGE_VERSION, secret: this.info.secret, block_id: this.info.block_id,
        manager_id: this.id, host: hostname(), workers: this.info.workers, prefetch: this.info.prefetch,
      });
    });
    // No cap on what the agent sends: the manager dialed the agent named in its 0600 connect file.
    readFrames(socket, (value, body) => this.onMessage(value, body), { onRefused: (reason) => this.log.error('interchange sent a malformed message', { reason }) });
    socket.on('error', (err) => this.log.warn('interchange connection error', { error: err.message }));
    socket.on('close', () => this.stop('interchange connection closed'));
  }

  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('manager stopping', { reason });
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.socket?.destroy();
    // SIGTERM lets a worker end its shell command's process group; SIGKILL after a grace.
    for (const w of this.workers) w.child.kill('SIGTERM');
    const exited = this.workers.map((w) => new Promise<void>((r) => (w.child.exitCode !== null || w.child.signalCode !== null ? r() : w.child.once('exit', () => r()))));
    const grace = setTimeout(() => {
      for (const w of this.workers) w.child.kill('SIGKILL');
    }, 2000);
    void Promise.all(exited).then(() => {
      clearTimeout(grace);
      this.onExit(0);
    });
  }

  private onMessage(value: unknown, body: Buffer): void {
    // Checked before the schema, which recurses: a message nested past the bound would overflow it.
    const parsed = nestsDeeperThan(value, MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH) ? null : InterchangeMessage.safeParse(value);
    if (!parsed?.success) {
      this.log.error('interchange sent a malformed message', { reason: parsed ? 'does not match the schema' : `nested deeper than ${MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH} levels` });
      return this.stop('protocol error');
    }
    const msg = parsed.data;
    // Only a successful read's answer carries bytes, no more than a read may ask for.
    if (body.length > 0 && !(msg.type === 'read_result' && msg.ok && body.length <= MAX_READ_BYTES)) {
      this.log.error('interchange sent a malformed message', { reason: `a ${msg.type} frame with a body of ${body.length} bytes` });
      return this.stop('protocol error');
    }
    switch (msg.type) {
      case 'registered':
        this.heartbeat = setInterval(() => this.sendHeartbeat(), msg.heartbeat_s * 1000);
        this.sendHeartbeat();
        break;
      case 'tasks':
        for (const f of msg.functions) this.functions.set(f.function_uuid, f);
        for (const t of msg.tasks) {
          traceHop(t.trace, 'manager.received');
          this.queue.push(t);
        }
        this.assign();
        break;
      case 'cancel':
        for (const id of msg.task_ids) this.cancelled.add(id);
        for (const w of this.workers) {
          const ids = msg.task_ids.filter((id) => w.assigned.delete(id));
          if (ids.length) this.send(w, { type: 'cancel', task_ids: ids });
        }
        break;
      case 'shutdown':
        this.stop(msg.reason);
        break;
      case 'read_result': {
        const pending = this.reads.get(msg.req_id);
        if (!pending) break;
        this.reads.delete(msg.req_id);
        // Copied out of the socket reader's buffers by the IPC channel's serialization.
        this.send(pending.slot, msg.ok ? { ...msg, req_id: pending.req_id, data: body } : { ...msg, req_id: pending.req_id });
        break;
      }
    }
  }

  private sendHeartbeat(): void {
    const idle = this.workers.filter((w) => w.ready && w.assigned.size === 0).length;
    if (this.socket) sendFrame(this.socket, { type: 'heartbeat', idle_workers: idle, workers: this.workers.length });
  }

  private spawnWorker(): WorkerSlot {
    const child = forkWorker({
      memory_mb: this.info.memory_mb, timeout_s: this.info.timeout_s, allow_wasm: this.info.allow_wasm,
      allow_shell_functions: this.info.allow_shell_functions, shell_output_lines: this.info.shell_output_lines,
      ...(this.info.python ? { python: this.info.python } : {}),
    }, {
      // In the worker's environment rather than its command line, which other users can list.
      env: { ...process.env, [SHELL_ENV_VARIABLE]: JSON.stringify(this.info.shell_env) },
    });
    const slot: WorkerSlot = { child, ready: false, assigned: new Map(), functionsSent: new Set() };
    child.on('message', (msg) => {
      const parsed = FromWorker.safeParse(msg);
      if (parsed.success) return this.onWorkerMessage(slot, parsed.data);
      // The worker runs user code: a message out of shape ends it, and its tasks are reported lost.
      this.log.error('a worker sent a malformed message; killing it', { pid: child.pid, issues: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) });
      child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => this.onWorkerExit(slot, code, signal));
    return slot;
  }

  private onWorkerMessage(slot: WorkerSlot, msg: FromWorker): void {
    switch (msg.type) {
      case 'ready':
        slot.ready = true;
        this.assign();
        break;
      case 'started':
        if (slot.assigned.has(msg.task_id)) {
          this.pendingStarted.push(msg.task_id);
          this.scheduleFlush();
        }
        break;
      case 'results':
        for (const r of msg.results) {
          if (!slot.assigned.delete(r.task_id)) continue; // cancelled meanwhile
          traceHop(r.trace, 'manager.results');
          // The worker bounds its results; a result past the bound still fails only its own task.
          this.pendingResults.push(boundResultDepth(r));
        }
        this.scheduleFlush();
        this.assign();
        break;
      case 'result_part': {
        // Passed on at once (parts precede their result, which waits for a flush); acknowledged
        // once written, which paces the worker. A cancelled task's parts are dropped.
        const ack = () => this.send(slot, { type: 'result_part_ack', task_id: msg.task_id, attempt: msg.attempt, offset: msg.offset });
        if (!slot.assigned.has(msg.task_id) || !this.socket) ack();
        else sendFrame(this.socket, { type: 'result_part', task_id: msg.task_id, attempt: msg.attempt, offset: msg.offset }, msg.data, ack);
        break;
      }
      case 'read': {
        if (!this.socket || this.socket.destroyed) {
          this.send(slot, { type: 'read_result', req_id: msg.req_id, ok: false, code: 'UNAVAILABLE', message: 'the manager has no connection to the agent' });
          break;
        }
        const req_id = String(++this.readSeq);
        this.reads.set(req_id, { slot, req_id: msg.req_id });
        sendFrame(this.socket, { type: 'read', req_id, object_id: msg.object_id, start: msg.start, end: msg.end });
        break;
      }
    }
  }

  private onWorkerExit(slot: WorkerSlot, code: number | null, signal: string | null): void {
    if (this.stopping) return;
    const index = this.workers.indexOf(slot);
    if (index < 0) return;
    // The worker runs its tasks in order: the first still assigned is the one it was running.
    const [running, ...queued] = [...slot.assigned.values()];
    this.log.warn('worker exited; replacing it', { pid: slot.child.pid, code, signal, running: running?.task_id, requeued: queued.length });
    this.queue.unshift(...queued);
    if (running && this.socket) {
      if (code === WORKER_EXIT_ISOLATE_FAILURE) {
        // The task broke the sandbox itself (V8 out of memory outside the heap limit): its own
        // failure, not retried.
        const now = Date.now() / 1000;
        this.pendingResults.push({
          task_id: running.task_id, status: 'failed',
          exception: taskException('FERRY_MEMORY_LIMIT', 'the task exhausted its worker\'s memory'),
          execution: { attempt: running.attempt, started_at: now, ended_at: now, host: hostname(), worker_pid: slot.child.pid ?? 0 },
        });
        this.scheduleFlush();
      } else {
        sendFrame(this.socket, { type: 'lost', task_ids: [running.task_id], reason: `worker ${slot.child.pid} exited (${signal ?? `code ${code}`})` });
      }
    }
    for (const [id, r] of this.reads) if (r.slot === slot) this.reads.delete(id);
    this.workers[index] = this.spawnWorker();
    this.assign();
  }

  private assign(): void {
    if (this.queue.length === 0) return;
    const byWorker = new Map<WorkerSlot, DispatchedTask[]>();
    let progress = true;
    while (this.queue.length && progress) {
      progress = false;
      for (const w of this.workers) {
        if (!w.ready || w.assigned.size >= WORKER_QUEUE || this.queue.length === 0) continue;
        const task = this.queue.shift()!;
        if (this.cancelled.delete(task.task_id)) {
          progress = true;
          continue;
        }
        w.assigned.set(task.task_id, task);
        if (!byWorker.has(w)) byWorker.set(w, []);
        byWorker.get(w)!.push(task);
        progress = true;
      }
    }
    for (const [w, tasks] of byWorker) {
      const functions: FunctionSpec[] = [];
      for (const t of tasks) {
        if (w.functionsSent.has(t.function_uuid)) continue;
        const spec = this.functions.get(t.function_uuid);
        if (spec) functions.push(spec);
        w.functionsSent.add(t.function_uuid);
      }
      this.send(w, { type: 'tasks', tasks, functions });
    }
  }

  private send(w: WorkerSlot, msg: ToWorker): void {
    if (w.child.connected) w.child.send(msg);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.socket) return;
      if (this.pendingStarted.length) {
        sendFrame(this.socket, { type: 'started', task_ids: this.pendingStarted, at: Date.now() / 1000 });
        this.pendingStarted = [];
      }
      if (this.pendingResults.length) {
        this.sendResults(this.socket, this.pendingResults);
        this.pendingResults = [];
      }
    });
  }

  /** Sends results in as few frames as the agent's frame cap allows. */
  private sendResults(socket: Socket, results: WorkerTaskResult[]): void {
    const frame = encodeFrame({ type: 'results', results });
    if (frame.bytes <= MAX_MANAGER_FRAME_BYTES) return writeFrame(socket, frame);
    if (results.length > 1) {
      const half = results.length >> 1;
      this.sendResults(socket, results.slice(0, half));
      this.sendResults(socket, results.slice(half));
      return;
    }
    // One result over the cap (a huge error message): the agent would drop this manager and run
    // the task again; it fails instead, with what it ran.
    const [r] = results as [WorkerTaskResult];
    this.log.warn('result too large for the interchange', { task_id: r.task_id, bytes: frame.bytes });
    sendFrame(socket, {
      type: 'results',
      results: [{ task_id: r.task_id, status: 'failed', execution: r.execution, exception: taskException('FERRY_RESULT_TOO_LARGE', `the task's result, output and error exceed ${MAX_MANAGER_FRAME_BYTES} bytes`) }],
    });
  }
}
