// The Sandbox adapter on isolated-vm: one warm isolate per function (bounded LRU), a host watchdog
// for wall time, a memory limit per isolate, a watchdog on the process's resident memory for what
// that limit cannot see (WebAssembly, off unless allowed), and console output captured through one
// host callback.
// A result is JSON, inline up to LIMITS.maxInlineResultBytes and a JSON body beyond; a returned
// ArrayBuffer or typed array is a bytes body (src/endpoint/worker/sandbox.ts).

import ivm from 'isolated-vm';
import { LRUCache } from 'lru-cache';
import { LIMITS, type Payload } from '../../protocol/api';
import { FerryError, taskException, type TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import { successFromBytes, successFromJson, type Sandbox, type SandboxOutcome, type SandboxRunOptions } from './sandbox';
import { fallsUnder, mib, RSS_MARGIN_BYTES, type ResidentMemoryWatch, watchResidentMemory } from './memory-watchdog';
import { StdoutCapture } from './stdout-capture';
import { CONSOLE_SOURCE, DATAREF_SOURCE, RUNNER_SOURCE, WASM_OFF_SOURCE } from './isolate-sources';
import type { ReadRefusal, RunnerAnswer } from './isolate/types';

export interface IsolatedVmSandboxOptions {
  /** Warm isolates kept at once; the least recently used one is disposed beyond this. */
  maxWarm?: number;
  /** Results whose JSON is larger go to the agent as a body (default LIMITS.maxInlineResultBytes). */
  maxInlineResultBytes?: number;
  maxStdoutBytes?: number;
  /** V8 lost control of an isolate: isolated-vm advises ending the process. */
  onCatastrophicError?: (message: string) => void;
  /**
   * Reads bytes [start, end) of an object for a DataRef (`start === end`: size and digest only).
   * Rejects with a FerryError: FERRY_DATA_NOT_FOUND, FERRY_DATA_PATH_REFUSED, RANGE_NOT_SATISFIABLE, …
   * Absent: every DataRef read fails.
   */
  readObject?: (objectId: string, start: number, end: number) => Promise<ObjectRead>;
  /** The process's resident memory, bytes (default process.memoryUsage.rss; tests inject one). */
  residentBytes?: () => number;
  /**
   * A task went past the resident-memory limit and the process stayed past it after every isolate
   * was disposed: memory only a new process gives back. Called before that task's outcome is
   * returned; the worker ends itself and its manager reports the task (FERRY_MEMORY_LIMIT).
   */
  onMemoryStuck?: () => void;
}

export interface ObjectRead {
  /** Handed over: the sandbox moves its ArrayBuffer into the isolate when the view spans all of it (detaching it). */
  data: Uint8Array;
  size: number;
  sha256: string;
}

interface Warm {
  readonly code: string;
  readonly memory_mb: number;
  readonly allow_wasm: boolean;
  readonly isolate: ivm.Isolate;
  readonly runner: ivm.Reference<(input: string) => Promise<RunnerAnswer>>;
  /** The running task's capture; the console callback writes here. */
  capture: StdoutCapture | null;
  /** A DataRef read of the running task named no object this endpoint may read. */
  dataNotFound: boolean;
  /** A DataRef read of the running task named a file the endpoint refuses to read. */
  dataPathRefused: boolean;
}

// The scripts evaluated in each new isolate are typed source files in ./isolate, compiled by
// `npm run build:isolate` into ./isolate-sources.ts. The runner's script is its one-line
// expression applied to the DataRef builder and the function's code, which so starts on line 1
// of the script: line numbers in stacks match the user's code.
function runnerSource(code: string): string {
  return `${RUNNER_SOURCE}(globalThis.__ferryDataRefs, (${code}\n))`;
}

// Errors V8 raises when a function tries to allocate past what its isolate may hold, without
// disposing the isolate: a huge ArrayBuffer, or a string past V8's maximum length.
const ALLOCATION_ERRORS = /^(Array buffer allocation failed|Invalid string length)/;

export class IsolatedVmSandbox implements Sandbox {
  /** Warm isolates by function uuid, least recently used evicted (and disposed) past maxWarm. */
  private readonly warm: LRUCache<string, Warm>;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly maxWarm: number;
  private readonly maxInlineResultBytes: number;
  private readonly maxStdoutBytes: number;
  private readonly residentBytes: () => number;
  /** The process's resident memory before any isolate: what the memory limit is counted from. */
  private readonly baselineBytes: number;

  constructor(private readonly options: IsolatedVmSandboxOptions = {}) {
    this.maxWarm = options.maxWarm ?? 8;
    this.warm = new LRUCache<string, Warm>({ max: Math.max(1, this.maxWarm), dispose: release });
    this.maxInlineResultBytes = options.maxInlineResultBytes ?? LIMITS.maxInlineResultBytes;
    this.maxStdoutBytes = options.maxStdoutBytes ?? LIMITS.maxStdoutBytes;
    this.residentBytes = options.residentBytes ?? (() => process.memoryUsage.rss());
    this.baselineBytes = this.residentBytes();
  }

  /**
   * Resident memory the process may reach while `uuid` runs: its baseline, each warm isolate's heap
   * limit (this function's included), one more for the copy of a result crossing to the host, and
   * RSS_MARGIN_BYTES. Anything past it was allocated outside the heap limits.
   */
  private residentLimit(uuid: string, memoryMb: number): number {
    let heaps = 2 * memoryMb;
    for (const [id, w] of this.warm) if (id !== uuid) heaps += w.memory_mb;
    return this.baselineBytes + heaps * 1024 * 1024 + RSS_MARGIN_BYTES;
  }

  run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const outcome = this.tail.then(() => this.runNow(fn, payload, opts));
    this.tail = outcome.catch(() => undefined);
    return outcome;
  }

  dispose(): void {
    this.warm.clear();
  }

  /** Number of warm isolates held; for tests and telemetry. */
  get warmCount(): number {
    return this.warm.size;
  }

  private async runNow(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const capture = new StdoutCapture(this.maxStdoutBytes);
    if (fn.runtime !== 'js') {
      return failed(capture, taskException('FERRY_SHELL_NOT_ALLOWED', 'This endpoint does not run shell functions'));
    }
    const timeoutMs = Math.max(1, Math.round(opts.timeout_s * 1000));
    let entry: Warm | undefined;
    let timedOut = false;
    // isolated-vm's own timeout stops counting while the function awaits (issue 185) and cannot see
    // a promise that never settles: this host timer is what bounds wall time.
    let watchdog: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      watchdog = setTimeout(() => {
        timedOut = true;
        resolve('timeout');
      }, timeoutMs);
    });
    const timeoutOutcome = (): SandboxOutcome => {
      this.drop(fn.function_uuid);
      return failed(capture, taskException('FERRY_TASK_TIMEOUT', `The task exceeded its wall-time limit of ${opts.timeout_s} s`));
    };
    // Whatever allocated it: the isolate is disposed at once, since V8 gives nothing back while it lives.
    let overMemory: string | undefined;
    let memoryWatch: ResidentMemoryWatch | undefined;
    const exceeded = new Promise<'memory'>((resolve) => {
      memoryWatch = watchResidentMemory(this.residentBytes, () => this.residentLimit(fn.function_uuid, opts.memory_mb), (rss, limit) => {
        overMemory = `The task took its worker's resident memory to ${mib(rss)} MiB, past its limit of ${mib(limit)} MiB `
          + `(task_memory_mb ${opts.memory_mb} per isolate plus a margin), with memory outside the isolate's heap limit`;
        this.drop(fn.function_uuid);
        resolve('memory');
      });
    });
    const memoryOutcome = async (message: string): Promise<SandboxOutcome> => {
      this.drop(fn.function_uuid);
      await this.giveBackMemory(fn.function_uuid, opts.memory_mb);
      return failed(capture, taskException('FERRY_MEMORY_LIMIT', message));
    };
    try {
      const built = this.acquire(fn, opts, timeoutMs).then((w) => {
        entry = w;
        w.capture = capture;
        w.dataNotFound = false;
        w.dataPathRefused = false;
        return w.runner.apply(undefined, [JSON.stringify(payload)], {
          arguments: { copy: true },
          result: { promise: true, copy: true },
          timeout: timeoutMs,
        });
      });
      // The losing side of the race must not become an unhandled rejection.
      built.catch(() => undefined);
      const answer = await Promise.race([built, expired, exceeded]);
      if (answer === 'timeout') return timeoutOutcome();
      if (answer === 'memory' || memoryWatch!.checkNow()) return await memoryOutcome(overMemory!);
      const outcome = this.interpret(answer, capture, entry?.dataNotFound ?? false, entry?.dataPathRefused ?? false);
      if (outcome.status === 'failed') this.drop(fn.function_uuid);
      return outcome;
    } catch (err) {
      if (timedOut) return timeoutOutcome();
      if (overMemory !== undefined) return await memoryOutcome(overMemory);
      const isolateGone = entry?.isolate.isDisposed ?? false;
      this.drop(fn.function_uuid);
      return failed(capture, this.classifyHostError(err, isolateGone, opts));
    } finally {
      clearTimeout(watchdog);
      memoryWatch!.stop();
      if (entry) entry.capture = null;
    }
  }

  /**
   * After a task went past the resident limit and its isolate was disposed: waits briefly for the
   * memory to return, then disposes the other warm isolates too; if the process is still past
   * the limit, tells the worker (onMemoryStuck), which is replaced.
   */
  private async giveBackMemory(uuid: string, memoryMb: number): Promise<void> {
    const limit = () => this.residentLimit(uuid, memoryMb);
    if (await fallsUnder(this.residentBytes, limit, 250)) return;
    this.dispose();
    if (await fallsUnder(this.residentBytes, limit, 250)) return;
    this.options.onMemoryStuck?.();
  }

  private interpret(answer: RunnerAnswer, capture: StdoutCapture, dataNotFound: boolean, dataPathRefused: boolean): SandboxOutcome {
    switch (answer.kind) {
      case 'ok':
        // Over the inline limit, the JSON text itself goes to the agent, which stores it as an object.
        return successFromJson(answer.json, capture.text(), this.maxInlineResultBytes);
      case 'bytes':
        return successFromBytes(answer.data, capture.text());
      case 'unserializable':
        if (answer.name === 'RangeError' && ALLOCATION_ERRORS.test(answer.message)) {
          return failed(capture, taskException('FERRY_RESULT_TOO_LARGE', `The result's JSON is too large to build: ${answer.message}`));
        }
        return failed(capture, taskException('FERRY_RESULT_NOT_SERIALIZABLE', `The result cannot be encoded as JSON: ${answer.message}`));
      case 'threw':
        if (dataNotFound && answer.name === 'DataNotFound') {
          return failed(capture, taskException('FERRY_DATA_NOT_FOUND', answer.message, { stack: answer.stack }));
        }
        if (dataPathRefused && answer.name === 'DataPathRefused') {
          return failed(capture, taskException('FERRY_DATA_PATH_REFUSED', answer.message, { stack: answer.stack }));
        }
        if (answer.name === 'RangeError' && ALLOCATION_ERRORS.test(answer.message)) {
          return failed(capture, taskException('FERRY_MEMORY_LIMIT', `The function exceeded its memory limit: ${answer.message}`, { stack: answer.stack }));
        }
        return failed(capture, taskException('FERRY_FUNCTION_ERROR', answer.message, { name: answer.name, stack: answer.stack }));
    }
  }

  /** Errors raised by isolated-vm itself (not by the function): limits, or a function that does not compile. */
  private classifyHostError(err: unknown, isolateGone: boolean, opts: SandboxRunOptions): TaskException {
    const e = err instanceof Error ? err : new Error(String(err));
    if (/memory limit/i.test(e.message) || (isolateGone && /disposed/i.test(e.message))) {
      return taskException('FERRY_MEMORY_LIMIT', `The function exceeded its memory limit of ${opts.memory_mb} MB`);
    }
    if (/Script execution timed out/.test(e.message)) {
      return taskException('FERRY_TASK_TIMEOUT', `The task exceeded its wall-time limit of ${opts.timeout_s} s`);
    }
    return taskException('FERRY_FUNCTION_ERROR', e.message, { name: e.name, stack: e.stack });
  }

  private async acquire(fn: FunctionSpec, opts: SandboxRunOptions, timeoutMs: number): Promise<Warm> {
    const found = this.warm.get(fn.function_uuid);
    const allowWasm = opts.allow_wasm === true;
    // get() marked it most recently used.
    if (found && found.code === fn.code && found.memory_mb === opts.memory_mb && found.allow_wasm === allowWasm && !found.isolate.isDisposed) return found;
    this.drop(fn.function_uuid);
    const isolate = new ivm.Isolate({
      memoryLimit: opts.memory_mb,
      ...(this.options.onCatastrophicError ? { onCatastrophicError: this.options.onCatastrophicError } : {}),
    });
    const entry = { code: fn.code, memory_mb: opts.memory_mb, allow_wasm: allowWasm, isolate, capture: null, dataNotFound: false, dataPathRefused: false } as Omit<Warm, 'runner'> & { runner?: Warm['runner'] };
    // Registered before the first await so the watchdog's drop() can dispose a half-built isolate;
    // past maxWarm, the least recently used one is evicted and disposed.
    this.warm.set(fn.function_uuid, entry as Warm);
    const context = await isolate.createContext();
    const write = new ivm.Callback((text: string): boolean => entry.capture?.append(String(text)) ?? true);
    await context.global.set('__ferryWrite', write);
    await context.eval(CONSOLE_SOURCE, { timeout: timeoutMs });
    if (!allowWasm) await context.eval(WASM_OFF_SOURCE, { timeout: timeoutMs });
    // A refused read crosses into the isolate as {refused: {code, message}} (isolate/data-ref.ts).
    const read = new ivm.Reference(async (id: unknown, start: unknown, end: unknown) => {
      if (!this.options.readObject) return refusal('UNAVAILABLE', 'this worker cannot read data references');
      try {
        return transferRead(await this.options.readObject(String(id), Number(start), Number(end)));
      } catch (err) {
        const code = err instanceof FerryError ? err.code : '';
        if (code === 'FERRY_DATA_NOT_FOUND') entry.dataNotFound = true;
        if (code === 'FERRY_DATA_PATH_REFUSED') entry.dataPathRefused = true;
        return refusal(code, err instanceof Error ? err.message : String(err));
      }
    });
    await context.global.set('__ferryRead', read);
    await context.eval(DATAREF_SOURCE, { timeout: timeoutMs });
    const script = await isolate.compileScript(runnerSource(fn.code), { filename: `ferry-function:${fn.function_uuid}` });
    // Evaluating the expression runs user code (e.g. an IIFE), hence the timeout here too.
    entry.runner = (await script.run(context, { reference: true, timeout: timeoutMs })) as Warm['runner'];
    script.release();
    return entry as Warm;
  }

  private drop(uuid: string): void {
    this.warm.delete(uuid);
  }
}

/** An isolate leaving the warm set (dropped, evicted, cleared): disposed, its capture let go. */
function release(entry: Warm): void {
  entry.capture = null;
  if (!entry.isolate.isDisposed) entry.isolate.dispose();
}

/**
 * A read's answer as the isolate takes it: `{ data: ArrayBuffer, size, sha256 }`, its buffer moved
 * in rather than copied (a structured copy of 1 MiB costs several ms; a move, none). Only a buffer
 * the view spans whole is moved: a view into a larger one (an IPC message's) is copied out first,
 * so no byte beside the range reaches the function.
 */
function transferRead(r: ObjectRead): ivm.Copy<{ data: ArrayBuffer; size: number; sha256: string }> {
  const { data } = r;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  const buffer = (whole ? data : new Uint8Array(data)).buffer as ArrayBuffer;
  return new ivm.ExternalCopy({ data: buffer, size: r.size, sha256: r.sha256 }, { transferList: [buffer] }).copyInto({ release: true, transferIn: true });
}

function refusal(code: string, message: string): ivm.Copy<ReadRefusal> {
  return new ivm.ExternalCopy<ReadRefusal>({ refused: { code, message } }).copyInto({ release: true });
}

function failed(capture: StdoutCapture, exception: TaskException): SandboxOutcome {
  return { status: 'failed', exception, stdout: capture.text() };
}
