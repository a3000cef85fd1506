// The Sandbox adapter on isolated-vm: one warm isolate per function (bounded LRU), a host watchdog
// for wall time, a memory limit per isolate, a watchdog on the process's resident memory for what
// that limit cannot see (WebAssembly, off unless allowed), and console output captured through one
// host callback.
// A result is JSON, inline up to LIMITS.maxInlineResultBytes and a JSON body beyond; a returned
// ArrayBuffer or typed array is a bytes body (src/endpoint/worker/sandbox.ts).

import ivm from 'isolated-vm';
import { LIMITS, type Payload } from '../../protocol/api';
import type { TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import { successFromBytes, successFromJson, type Sandbox, type SandboxOutcome, type SandboxRunOptions } from './sandbox';
import { fallsUnder, mib, RSS_MARGIN_BYTES, watchResidentMemory } from './memory-watchdog';
import { StdoutCapture } from './stdout-capture';

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
   * Rejects with an Error whose message starts with a code: FERRY_DATA_NOT_FOUND, RANGE_NOT_SATISFIABLE, …
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

/** What the runner inside the isolate answers; plain strings only, so nothing of the isolate leaks out. */
type RunnerAnswer =
  | { kind: 'ok'; json: string }
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'threw'; name: string; message: string; stack?: string }
  | { kind: 'unserializable'; name: string; message: string };

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

// Installs `console` from the host callback, then removes the callback from the global object so
// the function cannot call it directly. Formatting happens here so only strings cross to the host.
const CONSOLE_SOURCE = `(function () {
  'use strict';
  const write = globalThis.__ferryWrite;
  delete globalThis.__ferryWrite;
  let full = false;
  const format = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return String(v.stack || v);
    try { const j = JSON.stringify(v); if (j !== undefined) return j; } catch (e) {}
    try { return String(v); } catch (e) { return Object.prototype.toString.call(v); }
  };
  const level = (prefix) => function (...args) {
    if (full) return;
    full = write(prefix + args.map(format).join(' ') + '\\n');
  };
  globalThis.console = Object.freeze({
    log: level(''), info: level(''), debug: level(''), warn: level('WARN: '), error: level('ERROR: '),
  });
})();`;

// Data by reference: an argument \`{"$ref": id}\`, \`{"$ref": "file:///abs/path"}\` or
// \`{"$ref": id, "locations": ["file:///…"]}\` (top level of args, or a kwargs value) becomes a
// DataRef. Nothing is fetched until a method is called: size() and sha256() ask the host once for
// the size and digest; slice(start, end) (bytes start..end exclusive) reads only that range, which
// the agent serves from a site file or the chunks covering it; bytes(), text() (UTF-8), json() read
// all. A range outside the data is a RangeError. The agent decides where bytes come from and which
// paths may be read; what goes to the host is a ref key (src/endpoint/agent/data-sources.ts): the
// \`$ref\` alone, or JSON with the locations and/or \`digest: true\` (a file's sha256 is computed only
// when asked for, so the size answer may carry none). The host callback is removed from the global
// object and captured by the runner (see runnerSource), so user code cannot call it directly.
const DATAREF_SOURCE = `(function () {
  'use strict';
  const read = globalThis.__ferryRead;
  delete globalThis.__ferryRead;
  const detail = (m, code) => m.slice(code.length).replace(/^: /, '');
  const call = async (id, key, start, end) => {
    let r;
    try {
      r = await read.apply(undefined, [key, start, end], { arguments: { copy: true }, result: { promise: true } });
    } catch (e) {
      const m = String((e && e.message) || e);
      let x;
      if (m.startsWith('FERRY_DATA_NOT_FOUND')) {
        x = new Error(/^[0-9a-f]{64}$/.test(id) ? 'data reference ' + id + ' names no object this endpoint may read' : detail(m, 'FERRY_DATA_NOT_FOUND'));
        x.name = 'DataNotFound';
      }
      else if (m.startsWith('FERRY_DATA_PATH_REFUSED')) { x = new Error(detail(m, 'FERRY_DATA_PATH_REFUSED')); x.name = 'DataPathRefused'; }
      else if (m.startsWith('RANGE_NOT_SATISFIABLE')) x = new RangeError(m);
      else { x = new Error(m); x.name = 'DataReadError'; }
      throw x;
    }
    return r;
  };
  const utf8 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return decodeURIComponent(escape(s));
  };
  class DataRef {
    #id; #locations; #info = null;
    constructor(id, locations) { this.#id = id; this.#locations = locations; }
    get id() { return this.#id; }
    #key(digest) {
      if (!this.#locations && !digest) return this.#id;
      const k = { $ref: this.#id };
      if (this.#locations) k.locations = this.#locations;
      if (digest) k.digest = true;
      return JSON.stringify(k);
    }
    async #meta() {
      if (!this.#info) { const r = await call(this.#id, this.#key(false), 0, 0); this.#info = { size: r.size, sha256: r.sha256 }; }
      return this.#info;
    }
    async size() { return (await this.#meta()).size; }
    async sha256() {
      const info = await this.#meta();
      if (!info.sha256) info.sha256 = (await call(this.#id, this.#key(true), 0, 0)).sha256;
      return info.sha256;
    }
    async slice(start, end) {
      // A range given whole goes in one read, whose answer carries the size and digest; the size
      // is asked for first only when the range needs it (no end, an empty range).
      if (!this.#info && Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end) {
        let r = null;
        try {
          r = await call(this.#id, this.#key(false), start, end);
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
        }
        if (r) this.#info = { size: r.size, sha256: r.sha256 };
        if (r && end <= r.size && r.data.byteLength === end - start) return new Uint8Array(r.data);
      }
      const size = (await this.#meta()).size;
      if (end === undefined) end = size;
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > size) {
        throw new RangeError('slice(' + start + ', ' + end + ') is outside the object (' + size + ' bytes)');
      }
      if (start === end) return new Uint8Array(0);
      return new Uint8Array((await call(this.#id, this.#key(false), start, end)).data);
    }
    async bytes() { return this.slice(0, (await this.#meta()).size); }
    async text() { return utf8(await this.bytes()); }
    async json() { return JSON.parse(await this.text()); }
    toJSON() { return this.#locations ? { $ref: this.#id, locations: this.#locations.slice() } : { $ref: this.#id }; }
  }
  const isLocations = (l) => Array.isArray(l) && l.length > 0 && l.every((x) => typeof x === 'string');
  const isRef = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.$ref === 'string'
    && (Object.keys(v).length === 1 || (Object.keys(v).length === 2 && isLocations(v.locations)));
  const toRef = (v) => (isRef(v) ? new DataRef(v.$ref, v.locations ? Object.freeze(v.locations.slice()) : undefined) : v);
  globalThis.__ferryDataRefs = (payload) => {
    const args = payload.args.map(toRef);
    if (payload.kwargs === undefined) return args;
    const kwargs = {};
    for (const k of Object.keys(payload.kwargs)) kwargs[k] = toRef(payload.kwargs[k]);
    return args.concat([kwargs]);
  };
})();`;

// Where the endpoint does not allow WebAssembly (isolated-vm cannot count its memory), the
// namespace is replaced before user code runs by one whose every function throws a clear error;
// it stays an object so feature tests (`typeof WebAssembly`) do not throw. Nothing else in V8
// reaches the original namespace.
const WASM_OFF_SOURCE = `(function () {
  'use strict';
  const refuse = function () {
    const e = new Error('WebAssembly is disabled on this endpoint (allow_wasm is off in its config)');
    e.name = 'WebAssemblyDisabled';
    throw e;
  };
  const off = {};
  for (const k of Object.getOwnPropertyNames(WebAssembly)) if (typeof WebAssembly[k] === 'function') off[k] = refuse;
  Object.defineProperty(globalThis, 'WebAssembly', { value: Object.freeze(off), writable: false, enumerable: false, configurable: false });
})();`;

// The function expression starts on line 1 of the script, so line numbers in stacks match the
// user's code. Errors are described inside the isolate and cross as plain strings.
function runnerSource(code: string): string {
  return `(function (withRefs, fn) {
  'use strict';
  delete globalThis.__ferryDataRefs;
  const describe = (e) => {
    try {
      if (e !== null && typeof e === 'object' && typeof e.message === 'string') {
        return { kind: 'threw', name: String(e.name || 'Error'), message: e.message, stack: typeof e.stack === 'string' ? e.stack : undefined };
      }
      let message;
      try { message = typeof e === 'string' ? e : JSON.stringify(e); } catch (x) {}
      return { kind: 'threw', name: 'ThrownValue', message: message === undefined ? String(e) : message };
    } catch (x) {
      return { kind: 'threw', name: 'ThrownValue', message: 'a value that cannot be described' };
    }
  };
  return async function ferryRun(input) {
    let value;
    try {
      if (typeof fn !== 'function') throw new TypeError('the function code does not evaluate to a function');
      const payload = JSON.parse(input);
      const args = withRefs(payload);
      value = await fn(...args);
    } catch (e) {
      return describe(e);
    }
    // Bytes (an ArrayBuffer, a typed array or a DataView) are the result as they are; a view on
    // part of a buffer is cut out, so only its own bytes are copied to the host.
    if (value instanceof ArrayBuffer) return { kind: 'bytes', data: new Uint8Array(value) };
    if (ArrayBuffer.isView(value)) {
      const whole = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
      return { kind: 'bytes', data: new Uint8Array(whole ? value.buffer : value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) };
    }
    let json;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (e) {
      const d = describe(e);
      return { kind: 'unserializable', name: d.name, message: d.message };
    }
    if (typeof json !== 'string') return { kind: 'unserializable', name: 'TypeError', message: 'a ' + typeof value + ' has no JSON form' };
    return { kind: 'ok', json };
  };
})(globalThis.__ferryDataRefs, (${code}
))`;
}

// Errors V8 raises when a function tries to allocate past what its isolate may hold, without
// disposing the isolate: a huge ArrayBuffer, or a string past V8's maximum length.
const ALLOCATION_ERRORS = /^(Array buffer allocation failed|Invalid string length)/;

export class IsolatedVmSandbox implements Sandbox {
  private readonly warm = new Map<string, Warm>();
  private tail: Promise<unknown> = Promise.resolve();
  private readonly maxWarm: number;
  private readonly maxInlineResultBytes: number;
  private readonly maxStdoutBytes: number;
  private readonly residentBytes: () => number;
  /** The process's resident memory before any isolate: what the memory limit is counted from. */
  private readonly baselineBytes: number;

  constructor(private readonly options: IsolatedVmSandboxOptions = {}) {
    this.maxWarm = options.maxWarm ?? 8;
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
    for (const uuid of [...this.warm.keys()]) this.drop(uuid);
  }

  /** Number of warm isolates held; for tests and telemetry. */
  get warmCount(): number {
    return this.warm.size;
  }

  private async runNow(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const capture = new StdoutCapture(this.maxStdoutBytes);
    if (fn.runtime !== 'js') {
      return failed(capture, { code: 'FERRY_SHELL_NOT_ALLOWED', name: 'ShellNotAllowed', message: 'This endpoint does not run shell functions' });
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
      return failed(capture, { code: 'FERRY_TASK_TIMEOUT', name: 'TaskTimeout', message: `The task exceeded its wall-time limit of ${opts.timeout_s} s` });
    };
    // Whatever allocated it: the isolate is disposed at once, since V8 gives nothing back while it lives.
    let overMemory: string | undefined;
    let stopMemoryWatch: () => void = () => undefined;
    const exceeded = new Promise<'memory'>((resolve) => {
      stopMemoryWatch = watchResidentMemory(this.residentBytes, () => this.residentLimit(fn.function_uuid, opts.memory_mb), (rss, limit) => {
        overMemory = `The task took its worker's resident memory to ${mib(rss)} MiB, past its limit of ${mib(limit)} MiB `
          + `(task_memory_mb ${opts.memory_mb} per isolate plus a margin), with memory outside the isolate's heap limit`;
        this.drop(fn.function_uuid);
        resolve('memory');
      });
    });
    const memoryOutcome = async (message: string): Promise<SandboxOutcome> => {
      this.drop(fn.function_uuid);
      await this.giveBackMemory(fn.function_uuid, opts.memory_mb);
      return failed(capture, { code: 'FERRY_MEMORY_LIMIT', name: 'MemoryLimit', message });
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
      if (answer === 'memory') return await memoryOutcome(overMemory!);
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
      stopMemoryWatch();
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
          return failed(capture, { code: 'FERRY_RESULT_TOO_LARGE', name: 'ResultTooLarge', message: `The result's JSON is too large to build: ${answer.message}` });
        }
        return failed(capture, { code: 'FERRY_RESULT_NOT_SERIALIZABLE', name: 'ResultNotSerializable', message: `The result cannot be encoded as JSON: ${answer.message}` });
      case 'threw':
        if (dataNotFound && answer.name === 'DataNotFound') {
          return failed(capture, { code: 'FERRY_DATA_NOT_FOUND', name: 'DataNotFound', message: answer.message, ...(answer.stack ? { stack: answer.stack } : {}) });
        }
        if (dataPathRefused && answer.name === 'DataPathRefused') {
          return failed(capture, { code: 'FERRY_DATA_PATH_REFUSED', name: 'DataPathRefused', message: answer.message, ...(answer.stack ? { stack: answer.stack } : {}) });
        }
        if (answer.name === 'RangeError' && ALLOCATION_ERRORS.test(answer.message)) {
          return failed(capture, { code: 'FERRY_MEMORY_LIMIT', name: 'MemoryLimit', message: `The function exceeded its memory limit: ${answer.message}`, ...(answer.stack ? { stack: answer.stack } : {}) });
        }
        return failed(capture, { code: 'FERRY_FUNCTION_ERROR', name: answer.name, message: answer.message, ...(answer.stack ? { stack: answer.stack } : {}) });
    }
  }

  /** Errors raised by isolated-vm itself (not by the function): limits, or a function that does not compile. */
  private classifyHostError(err: unknown, isolateGone: boolean, opts: SandboxRunOptions): TaskException {
    const e = err instanceof Error ? err : new Error(String(err));
    if (/memory limit/i.test(e.message) || (isolateGone && /disposed/i.test(e.message))) {
      return { code: 'FERRY_MEMORY_LIMIT', name: 'MemoryLimit', message: `The function exceeded its memory limit of ${opts.memory_mb} MB` };
    }
    if (/Script execution timed out/.test(e.message)) {
      return { code: 'FERRY_TASK_TIMEOUT', name: 'TaskTimeout', message: `The task exceeded its wall-time limit of ${opts.timeout_s} s` };
    }
    return { code: 'FERRY_FUNCTION_ERROR', name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
  }

  private async acquire(fn: FunctionSpec, opts: SandboxRunOptions, timeoutMs: number): Promise<Warm> {
    const found = this.warm.get(fn.function_uuid);
    const allowWasm = opts.allow_wasm === true;
    if (found && found.code === fn.code && found.memory_mb === opts.memory_mb && found.allow_wasm === allowWasm && !found.isolate.isDisposed) {
      // Re-insert to mark it most recently used.
      this.warm.delete(fn.function_uuid);
      this.warm.set(fn.function_uuid, found);
      return found;
    }
    this.drop(fn.function_uuid);
    const isolate = new ivm.Isolate({
      memoryLimit: opts.memory_mb,
      ...(this.options.onCatastrophicError ? { onCatastrophicError: this.options.onCatastrophicError } : {}),
    });
    const entry = { code: fn.code, memory_mb: opts.memory_mb, allow_wasm: allowWasm, isolate, capture: null, dataNotFound: false, dataPathRefused: false } as Omit<Warm, 'runner'> & { runner?: Warm['runner'] };
    // Registered before the first await so the watchdog's drop() can dispose a half-built isolate.
    this.warm.set(fn.function_uuid, entry as Warm);
    this.evict();
    const context = await isolate.createContext();
    const write = new ivm.Callback((text: string): boolean => entry.capture?.append(String(text)) ?? true);
    await context.global.set('__ferryWrite', write);
    await context.eval(CONSOLE_SOURCE, { timeout: timeoutMs });
    if (!allowWasm) await context.eval(WASM_OFF_SOURCE, { timeout: timeoutMs });
    const read = new ivm.Reference(async (id: unknown, start: unknown, end: unknown) => {
      if (!this.options.readObject) throw new Error('UNAVAILABLE: this worker cannot read data references');
      try {
        return transferRead(await this.options.readObject(String(id), Number(start), Number(end)));
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (message.startsWith('FERRY_DATA_NOT_FOUND')) entry.dataNotFound = true;
        if (message.startsWith('FERRY_DATA_PATH_REFUSED')) entry.dataPathRefused = true;
        throw new Error(message);
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

  private evict(): void {
    while (this.warm.size > this.maxWarm) {
      const oldest = this.warm.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
  }

  private drop(uuid: string): void {
    const entry = this.warm.get(uuid);
    if (!entry) return;
    this.warm.delete(uuid);
    entry.capture = null;
    if (!entry.isolate.isDisposed) entry.isolate.dispose();
  }
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

function failed(capture: StdoutCapture, exception: TaskException): SandboxOutcome {
  return { status: 'failed', exception, stdout: capture.text() };
}
