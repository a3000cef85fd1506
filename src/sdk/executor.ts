// Futures over one task group: `submit(fn, ...args)` answers a future settled by the group's event
// stream (GET /v3/events, event-stream.ts), never by polling; submissions wait a moment to travel
// together, through Client.submitBatch (its size and rate limits). `map` yields results as tasks
// end; an AbortSignal cancels at the gateway; `reload(taskGroupId)` rebuilds the futures of a
// group after a restart. Runs wherever fetch does (Node, browsers).

import type { Json, Payload, TaskDoc } from '../protocol/api';
import { LIMITS } from '../protocol/api';
import type { Client, SubmitOptions } from './client';
import { NO_EXCEPTION_RECORDED } from '../protocol/errors';
import { FerryApiError, TaskCancelledError, TaskFailedError } from './errors';
import type { FerryEvent } from './event-stream';

type AnyFunction = ((...args: never[]) => unknown) | string;

export interface ExecutorOptions extends Omit<SubmitOptions, 'task_group_id'> {
  /** The endpoint's id. */
  endpoint: string;
  /** Tasks per batch: a batch goes when it is full or `batchDelayMs` after its first task (default 1,000, at most 5,000). */
  batchSize?: number;
  /** How long a partial batch waits for more tasks (ms, default 20). */
  batchDelayMs?: number;
  /** Join this task group instead of starting one. */
  taskGroupId?: string;
  /** Aborting cancels every task of this executor that has not ended. */
  signal?: AbortSignal;
  /** Results stored as objects are downloaded (default), or answered as their ResultRef (false); see Client.result. */
  resolve?: boolean;
}

export interface SubmitWithOptions {
  signal?: AbortSignal;
  kwargs?: Record<string, Json>;
}

/** A submitted task: awaitable for its result, with its id once submitted and a way to cancel it. */
export class TaskFuture<T = unknown> implements PromiseLike<T> {
  readonly promise: Promise<T>;
  /** Resolves to the task id once its batch is stored at the gateway. */
  readonly taskId: Promise<string>;
  /** The task's final doc, once it ended. */
  doc: TaskDoc | null = null;
  private settleValue!: (value: T) => void;
  private settleError!: (err: unknown) => void;
  private setId!: (id: string) => void;
  private failId!: (err: unknown) => void;
  private settled = false;
  id: string | null = null;

  constructor(private readonly onCancel: (future: TaskFuture<T>) => Promise<void>) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.settleValue = resolve;
      this.settleError = reject;
    });
    this.taskId = new Promise<string>((resolve, reject) => {
      this.setId = resolve;
      this.failId = reject;
    });
    // Unobserved rejections of a future nobody awaits are the caller's business, not a crash.
    this.promise.catch(() => undefined);
    this.taskId.catch(() => undefined);
  }

  get done(): boolean {
    return this.settled;
  }

  then<R1 = T, R2 = never>(onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return this.promise.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.promise.catch(onrejected);
  }

  /** Cancels the task at the gateway (DELETE /v2/tasks/{id}); it then rejects with TaskCancelledError. A task that already ended is left as it is. */
  cancel(): Promise<void> {
    return this.onCancel(this);
  }

  /** @internal */
  assign(id: string): void {
    this.id = id;
    this.setId(id);
  }

  /** @internal */
  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.settleValue(value);
  }

  /** @internal */
  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (this.id === null) this.failId(err);
    this.settleError(err);
  }
}

interface Queued {
  fn: AnyFunction;
  payload: Payload;
  future: TaskFuture<unknown>;
}

const FINAL = new Set(['success', 'failed', 'cancelled']);

export class Executor {
  private readonly client: Client;
  private readonly endpoint: string;
  private readonly batchSize: number;
  private readonly batchDelayMs: number;
  private readonly submitOptions: SubmitOptions;
  private readonly resolveObjects: boolean;
  private groupId: string | null;
  private readonly functionIds = new Map<AnyFunction, Promise<string>>();
  private queue: Queued[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Batches go one at a time, in order: the first creates the group the others join. */
  private flushing: Promise<void> = Promise.resolve();
  /** Futures whose task is stored and not ended, by task id. */
  private readonly open = new Map<string, TaskFuture<unknown>>();
  /** Final docs of tasks whose future is not known yet (the stream can be quicker than a batch's answer). */
  private readonly early = new Map<string, TaskDoc>();
  private stream: AbortController | null = null;
  private lastEventId: string | null = null;
  private closed = false;
  /** The gateway refused the stream (a 4xx): nothing can settle from it any more. */
  private streamError: unknown = null;
  /** Batch submissions in flight or queued (the stream stays open while any remain). */
  private unsubmitted = 0;

  constructor(client: Client, options: ExecutorOptions) {
    const { endpoint, batchSize, batchDelayMs, taskGroupId, signal, resolve, ...submitOptions } = options;
    this.client = client;
    this.endpoint = endpoint;
    this.batchSize = Math.max(1, Math.min(batchSize ?? 1000, LIMITS.maxTasksPerRequest));
    this.batchDelayMs = batchDelayMs ?? 20;
    this.submitOptions = submitOptions;
    this.resolveObjects = resolve !== false;
    this.groupId = taskGroupId ?? null;
    signal?.addEventListener('abort', () => void this.cancelAll(), { once: true });
  }

  /** The task group this executor submits to (null before its first batch is stored). */
  get taskGroupId(): string | null {
    return this.groupId;
  }

  /** Submits `fn(...args)`; the answer settles when the task ends. */
  submit<R = unknown>(fn: AnyFunction, ...args: Json[]): TaskFuture<R> {
    return this.submitWith<R>({}, fn, ...args);
  }

  submitWith<R = unknown>(options: SubmitWithOptions, fn: AnyFunction, ...args: Json[]): TaskFuture<R> {
    if (this.closed) throw new Error('the executor is closed');
    const future = new TaskFuture<R>((f) => this.cancelFuture(f as TaskFuture<unknown>));
    const payload: Payload = options.kwargs ? { args, kwargs: options.kwargs } : { args };
    if (!this.functionIds.has(fn)) this.functionIds.set(fn, this.client.registerFunction(fn));
    this.queue.push({ fn, payload, future: future as TaskFuture<unknown> });
    this.unsubmitted++;
    if (options.signal) {
      if (options.signal.aborted) void future.cancel();
      else options.signal.addEventListener('abort', () => void future.cancel(), { once: true });
    }
    if (this.queue.length >= this.batchSize) this.flushSoon(0);
    else this.flushSoon(this.batchDelayMs);
    return future;
  }

  /**
   * Runs `fn` on each input (an argument list, or one argument) and yields results as tasks end,
   * in completion order; the first failure is thrown when its turn comes. Aborting `signal`
   * cancels what has not ended.
   */
  async *map<R = unknown>(fn: AnyFunction, inputs: Iterable<Json | Json[]> | AsyncIterable<Json | Json[]>, options: { signal?: AbortSignal; spread?: boolean } = {}): AsyncGenerator<R, void, undefined> {
    const settled: Array<{ ok: true; value: R } | { ok: false; error: unknown }> = [];
    let wake: (() => void) | null = null;
    let pending = 0;
    const futures: Array<TaskFuture<R>> = [];
    const signal = options.signal;
    try {
      for await (const input of inputs as AsyncIterable<Json | Json[]>) {
        const args = options.spread && Array.isArray(input) ? input : [input as Json];
        const future = this.submitWith<R>(signal ? { signal } : {}, fn, ...args);
        futures.push(future);
        pending++;
        future.promise.then(
          (value) => settled.push({ ok: true, value }),
          (error: unknown) => settled.push({ ok: false, error }),
        ).finally(() => {
          pending--;
          wake?.();
        });
      }
      this.flushSoon(0);
      while (pending > 0 || settled.length > 0) {
        if (settled.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        while (settled.length > 0) {
          const next = settled.shift()!;
          if (!next.ok) throw next.error;
          yield next.value;
        }
      }
    } finally {
      // Left early (a break or a failure): what has not ended is not wanted any more.
      if (pending > 0) for (const f of futures) if (!f.done) void f.cancel();
    }
  }

  /**
   * Rebuilds the futures of a task group (after a restart, in a new client): one per task, in
   * submission order, settled from the group's event stream as its tasks end (at once for those
   * that ended already). Later submissions join the group.
   */
  async reload<R = unknown>(taskGroupId: string): Promise<Array<TaskFuture<R>>> {
    const tasks = await this.client.taskGroup(taskGroupId);
    if (this.groupId !== null && this.groupId !== taskGroupId) {
      throw new Error(`this executor submits to task group ${this.groupId}; reload ${taskGroupId} in a new one`);
    }
    this.groupId = taskGroupId;
    const futures = tasks.map((t) => {
      const future = new TaskFuture<R>((f) => this.cancelFuture(f as TaskFuture<unknown>));
      this.track(t.task_id, future as TaskFuture<unknown>);
      return future;
    });
    this.ensureStream();
    return futures;
  }

  /** Stops the event stream; futures not settled yet stay pending (reload them elsewhere). */
  close(): void {
    this.closed = true;
    this.stopStream();
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
  }

  // ── batches ──

  private flushSoon(delayMs: number): void {
    if (this.flushTimer !== null) {
      if (delayMs > 0) return;
      clearTimeout(this.flushTimer);
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      const batch = this.queue.splice(0, this.queue.length);
      if (batch.length > 0) this.flushing = this.flushing.then(() => this.send(batch));
    }, delayMs);
  }

  private async send(batch: Queued[]): Promise<void> {
    // Tasks cancelled while queued never go.
    const live = batch.filter((q) => !q.future.done);
    this.unsubmitted -= batch.length - live.length;
    const byFunction = new Map<AnyFunction, Queued[]>();
    for (const q of live) (byFunction.get(q.fn) ?? byFunction.set(q.fn, []).get(q.fn)!).push(q);
    for (const [fn, items] of byFunction) {
      try {
        const functionId = await this.functionIds.get(fn)!;
        const submitted = await this.client.submitBatch(this.endpoint, functionId, items.map((q) => q.payload), {
          ...this.submitOptions,
          maxTasksPerRequest: this.batchSize,
          ...(this.groupId ? { task_group_id: this.groupId } : {}),
        });
        this.groupId = submitted.task_group_id;
        items.forEach((q, i) => this.track(submitted.task_ids[i]!, q.future));
      } catch (err) {
        for (const q of items) q.future.reject(err);
      } finally {
        this.unsubmitted -= items.length;
      }
      this.ensureStream();
    }
    this.maybeStopStream();
  }

  private track(taskId: string, future: TaskFuture<unknown>): void {
    future.assign(taskId);
    if (this.streamError !== null) return future.reject(this.streamError);
    if (future.done) {
      // Cancelled while its batch was on the way: cancel it at the gateway too.
      void this.client.cancel(taskId).catch(() => undefined);
      return;
    }
    const early = this.early.get(taskId);
    if (early) {
      this.early.delete(taskId);
      void this.settle(future, early);
      return;
    }
    this.open.set(taskId, future);
  }

  // ── the stream ──

  private ensureStream(): void {
    if (this.stream || this.streamError !== null || this.groupId === null || (this.open.size === 0 && this.unsubmitted === 0)) return;
    const controller = new AbortController();
    this.stream = controller;
    const events = this.client.events({ task_group_id: this.groupId }, { signal: controller.signal, lastEventId: this.lastEventId });
    void (async () => {
      try {
        for await (const event of events) {
          this.lastEventId = event.id ?? this.lastEventId;
          this.onEvent(event);
          if (controller.signal.aborted) break;
        }
      } catch (err) {
        // The gateway refused the stream (4xx): the futures cannot settle from it.
        this.streamError = err;
        for (const [id, future] of this.open) {
          this.open.delete(id);
          future.reject(err);
        }
      } finally {
        if (this.stream === controller) this.stream = null;
        // Work arrived while this stream was being stopped: open it again where it stopped.
        if (!controller.signal.aborted || this.open.size > 0) this.ensureStream();
      }
    })();
  }

  private onEvent(event: FerryEvent): void {
    if (event.type !== 'task' || !FINAL.has(event.task.status)) return;
    const doc = event.task as TaskDoc;
    const future = this.open.get(doc.task_id);
    if (!future) {
      // A task of this group whose batch's answer has not come back yet, or another client's.
      if (this.unsubmitted > 0) this.early.set(doc.task_id, doc);
      return;
    }
    this.open.delete(doc.task_id);
    void this.settle(future, doc);
    this.maybeStopStream();
  }

  private maybeStopStream(): void {
    if (this.open.size === 0 && this.unsubmitted === 0) {
      this.stopStream();
      this.early.clear();
    }
  }

  private stopStream(): void {
    const stream = this.stream;
    this.stream = null;
    stream?.abort();
  }

  private async settle(future: TaskFuture<unknown>, doc: TaskDoc): Promise<void> {
    future.doc = doc;
    if (doc.status === 'failed') return future.reject(new TaskFailedError(doc.task_id, doc.exception ?? NO_EXCEPTION_RECORDED));
    if (doc.status === 'cancelled') return future.reject(new TaskCancelledError(doc.task_id));
    try {
      future.resolve(this.resolveObjects ? await this.client.resolveResult(doc) : (doc.result ?? null));
    } catch (err) {
      future.reject(err);
    }
  }

  // ── cancellation ──

  private async cancelFuture(future: TaskFuture<unknown>): Promise<void> {
    if (future.done) return;
    if (future.id === null) {
      // Still queued (or its batch is on the way: track() cancels it at the gateway when it lands).
      future.reject(new TaskCancelledError('(not submitted)'));
      return;
    }
    try {
      const doc = await this.client.cancel(future.id);
      this.open.delete(future.id);
      await this.settle(future, doc);
      this.maybeStopStream();
    } catch (err) {
      // It ended first: its event settles it.
      if (!(err instanceof FerryApiError && err.code === 'TASK_ALREADY_FINISHED')) throw err;
    }
  }

  private async cancelAll(): Promise<void> {
    const all = [...this.queue.map((q) => q.future), ...this.open.values()];
    await Promise.allSettled(all.map((f) => f.cancel()));
  }
}
