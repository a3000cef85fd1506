// The Sandbox port: where a worker runs one function call. Adapters: isolated-vm (real) and a
// fake for tests of the code around it. Failures come back as outcomes, never as rejections.

import { LIMITS, type Json, type Payload, type ResultContentType } from '../../protocol/api';
import type { TaskException } from '../../protocol/errors';
import { MAX_JSON_DEPTH, nestsDeeperThan, resultTooDeepException } from '../../protocol/json-depth';
import type { FunctionSpec } from '../../protocol/wire';

export interface SandboxRunOptions {
  timeout_s: number;
  memory_mb: number;
  /** Functions may use WebAssembly; absent: they may not (the endpoint config's allow_wasm). */
  allow_wasm?: boolean;
}

/**
 * A result that does not travel inline: bytes the function returned (`application/octet-stream`),
 * or the JSON text of a result over LIMITS.maxInlineResultBytes (`application/json`). The worker
 * sends it to the agent in parts; the agent stores it as an object of the task's owner.
 */
export interface EncodedResult {
  data: Uint8Array;
  content_type: ResultContentType;
}

export type SandboxOutcome = (
  | { status: 'success'; result: Json; body?: undefined; stdout: string }
  | { status: 'success'; result?: undefined; body: EncodedResult; stdout: string }
  | { status: 'failed'; exception: TaskException; stdout: string }
) & {
  /** The interpreter that ran the function, for the lineage record (`CPython 3.11.2`); Python only. */
  interpreter?: string;
  /** Work done in another process (a Python runner), which the worker's own getrusage cannot see. */
  child?: { cpu_time_s: number; peak_rss_bytes: number };
};

export interface Sandbox {
  /** Runs one call. Calls on one sandbox run one at a time, in the order they were made. */
  run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome>;
  dispose(): void;
}

/**
 * A success from a result's JSON text: inline up to `maxInlineBytes` of UTF-8, else as a JSON body.
 * An inline result nested deeper than MAX_JSON_DEPTH fails its task here, in the worker: the
 * schemas of the manager, the agent and the gateway would overflow the stack on it.
 */
export function successFromJson(json: string, stdout: string, maxInlineBytes: number = LIMITS.maxInlineResultBytes): SandboxOutcome {
  if (Buffer.byteLength(json) <= maxInlineBytes) {
    const result = JSON.parse(json) as Json;
    if (nestsDeeperThan(result, MAX_JSON_DEPTH)) return { status: 'failed', exception: resultTooDeepException(), stdout };
    return { status: 'success', result, stdout };
  }
  return { status: 'success', body: { data: Buffer.from(json, 'utf8'), content_type: 'application/json' }, stdout };
}

/** A success returning bytes: always stored as an object, whatever its size. */
export function successFromBytes(data: Uint8Array, stdout: string): SandboxOutcome {
  return { status: 'success', body: { data, content_type: 'application/octet-stream' }, stdout };
}
