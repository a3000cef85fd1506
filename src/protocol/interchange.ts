// Messages inside an endpoint: between the agent's interchange and a manager (length-prefixed
// frames over TCP: a JSON header and a body of raw bytes, src/endpoint/interchange/frames.ts), and
// between a manager and its worker processes (Node IPC with structured clone, which carries
// Uint8Array as bytes). Version 3: bytes (result parts, read answers) travel as frame bodies, not
// base64; an agent refuses an older manager left running by an older agent, whose tasks then run
// again on managers it starts.

import { z } from 'zod';
import { RESULT_CONTENT_TYPES, Sha256Hex } from './api';
import { MAX_JSON_DEPTH, nestsDeeperThan, resultTooDeepException } from './json-depth';
import { FunctionSpec, TaskMessage, TaskResult } from './wire';

export const INTERCHANGE_VERSION = 3;

// Frame caps, in bytes of a frame's header and body (its 8-byte prefix declares both, so a frame
// over the cap is refused before its body is read). The interchange's port may be reachable by
// other users of the cluster: before a manager has proved its block's secret it may send one frame
// of a register message's size (~400 bytes, a long host name included); after, no frame may
// outgrow MAX_MANAGER_FRAME_BYTES, which a manager keeps by splitting its batches of results (one
// result's header is ~1.5 MB at most: its inline JSON, its output and error, escaped).
export const MAX_REGISTER_FRAME_BYTES = 4 * 1024;
export const MAX_MANAGER_FRAME_BYTES = 16 * 1024 * 1024;

// ---- manager → interchange ----
export const RegisterMessage = z.object({
  type: z.literal('register'),
  version: z.number().int(),
  /** The block's secret, read by the manager from a 0600 file. */
  secret: z.string(),
  block_id: z.string(),
  manager_id: z.string(),
  host: z.string(),
  workers: z.number().int().positive(),
  /** Tasks the manager wants beyond one per worker. */
  prefetch: z.number().int().nonnegative(),
});
export const ManagerStartedMessage = z.object({ type: z.literal('started'), task_ids: z.array(z.string()), at: z.number() });

// Results by reference: a result that does not travel inline (bytes, or JSON over
// LIMITS.maxInlineResultBytes) goes from the worker to the agent as `result_part` messages of at
// most RESULT_PART_BYTES, in order, ahead of its entry in `results`, which then carries
// `result_body` instead of `result`. The agent spools the parts to disk and stores them as an
// object of the task's owner. A worker has at most RESULT_PARTS_IN_FLIGHT parts unacknowledged by
// its manager, which acknowledges a part once it is written to the agent's socket: no process on
// the way holds more than a few parts of a result, and the agent writes each part to its spool as
// it comes.
export const RESULT_PART_BYTES = 64 * 1024;
export const RESULT_PARTS_IN_FLIGHT = 16;

/** What a result sent in parts is: its size, sha256 and encoding (raw bytes or JSON text). */
export const ResultBody = z.object({
  size: z.number().int().nonnegative(),
  sha256: Sha256Hex,
  content_type: z.enum(RESULT_CONTENT_TYPES),
});
export type ResultBody = z.infer<typeof ResultBody>;

/** A worker's result as it reaches the agent: inline (`result`), or sent in parts (`result_body`). */
export const WorkerTaskResult = TaskResult.extend({ result_body: ResultBody.optional() });
export type WorkerTaskResult = z.infer<typeof WorkerTaskResult>;

/**
 * A worker's result as it may go on (checked before any schema sees it): one whose value nests
 * deeper than MAX_JSON_DEPTH becomes the failure of its task, without the value; anything else is
 * returned as it is. A result is the only value of these messages a function decides.
 */
export function boundResultDepth<T>(result: T): T | WorkerTaskResult {
  if (result === null || typeof result !== 'object' || !nestsDeeperThan((result as { result?: unknown }).result, MAX_JSON_DEPTH)) return result;
  // The rest (task id, stdout, execution) is as the manager sent it; the schema checks it after.
  const { result: _value, result_body: _body, ...rest } = result as unknown as WorkerTaskResult;
  return { ...rest, status: 'failed', exception: resultTooDeepException() };
}

/**
 * The header of bytes [offset, offset + length) of a result sent in parts; the bytes (at most
 * RESULT_PART_BYTES) are the frame's body on the interchange, `data` on Node IPC (ResultPart).
 */
export const ResultPartMessage = z.object({
  type: z.literal('result_part'),
  task_id: z.string(),
  attempt: z.number().int().positive(),
  offset: z.number().int().nonnegative(),
});
export type ResultPartMessage = z.infer<typeof ResultPartMessage>;
/** A result part with its bytes, as a worker sends it to its manager (FromWorker). */
export type ResultPart = z.infer<typeof ResultPartWithBytes>;

export const ManagerResultsMessage = z.object({ type: z.literal('results'), results: z.array(WorkerTaskResult) });
/** Tasks whose execution was lost with a worker (killed, crashed): the agent decides to retry or fail. */
export const ManagerLostMessage = z.object({ type: z.literal('lost'), task_ids: z.array(z.string()), reason: z.string() });
export const ManagerHeartbeatMessage = z.object({ type: z.literal('heartbeat'), idle_workers: z.number().int().nonnegative(), workers: z.number().int().nonnegative() });

/** Longest byte range one `read` may ask for: chunk payloads stay a few MiB per message. */
export const MAX_READ_BYTES = 4 * 1024 * 1024;
/**
 * A worker's read of an object's bytes [start, end) through the agent (compute nodes have no route
 * out). `start === end` asks for the object's size and digest only. `req_id` is the manager's.
 */
export const ManagerReadMessage = z.object({
  type: z.literal('read'),
  req_id: z.string().min(1).max(100),
  /** An object id, a `file://` URL, or a JSON ref key with `locations` (src/endpoint/agent/data-sources.ts). */
  object_id: z.string().min(1).max(64 * 1024),
  start: z.number().int().nonnegative(),
  end: z.number().int().nonnegative(),
}).refine((m) => m.end >= m.start && m.end - m.start <= MAX_READ_BYTES, { message: `end must be ≥ start and at most ${MAX_READ_BYTES} bytes past it` });

export const ManagerMessage = z.union([
  z.discriminatedUnion('type', [RegisterMessage, ManagerStartedMessage, ManagerResultsMessage, ResultPartMessage, ManagerLostMessage, ManagerHeartbeatMessage]),
  ManagerReadMessage,
]);
export type ManagerMessage = z.infer<typeof ManagerMessage>;

// ---- interchange → manager ----
export const RegisteredMessage = z.object({ type: z.literal('registered'), heartbeat_s: z.number().positive() });
export const DispatchMessage = z.object({
  type: z.literal('tasks'),
  /** Each task carries its execution attempt number on this endpoint. */
  tasks: z.array(TaskMessage.extend({ attempt: z.number().int().positive() })),
  functions: z.array(FunctionSpec),
});
export type DispatchMessage = z.infer<typeof DispatchMessage>;
export const ManagerCancelMessage = z.object({ type: z.literal('cancel'), task_ids: z.array(z.string()) });
export const ShutdownMessage = z.object({ type: z.literal('shutdown'), reason: z.string() });

/**
 * The agent's answer to a `read`: the header of the bytes (the frame's body on the interchange,
 * `data` on Node IPC: ReadResult) with the object's size and digest, or an error
 * code (FERRY_DATA_NOT_FOUND: no such object for this endpoint's owner, or no readable file inside the
 * data_roots at that path; FERRY_DATA_PATH_REFUSED: a path outside the data_roots as written, not a
 * regular file, or hard-linked; RANGE_NOT_SATISFIABLE; UNAVAILABLE).
 */
export const ReadResultMessage = z.discriminatedUnion('ok', [
  z.object({ type: z.literal('read_result'), req_id: z.string(), ok: z.literal(true), size: z.number().int().nonnegative(), sha256: z.string() }),
  z.object({ type: z.literal('read_result'), req_id: z.string(), ok: z.literal(false), code: z.string(), message: z.string() }),
]);
export type ReadResultMessage = z.infer<typeof ReadResultMessage>;
/** A read's answer as a manager passes it to its worker: a successful one carries its bytes. */
export type ReadResult = z.infer<typeof ReadResultToWorker>;

export const InterchangeMessage = z.union([
  z.discriminatedUnion('type', [RegisteredMessage, DispatchMessage, ManagerCancelMessage, ShutdownMessage]),
  ReadResultMessage,
]);
export type InterchangeMessage = z.infer<typeof InterchangeMessage>;

// ---- manager ↔ worker (Node IPC, `serialization: 'advanced'`; both ends are Ferry's own processes) ----
export interface WorkerLimits {
  memory_mb: number;
  timeout_s: number;
  /** Functions may use WebAssembly (the endpoint config's allow_wasm); absent: they may not. */
  allow_wasm?: boolean;
  /** Shell functions (`runtime: 'shell'`) run only where the endpoint's config allows them. */
  allow_shell_functions?: boolean;
  /** Lines of stdout/stderr a shell function returns (the last N). */
  shell_output_lines?: number;
  /** Python functions run only where this is set (the endpoint config's `python`, when enabled). */
  python?: PythonLimits;
}

/** How a worker starts its Python processes (src/endpoint/worker/python-runner.ts). */
export interface PythonLimits {
  /** The interpreter: an absolute path, or a name looked up on PATH. */
  executable: string;
  /** OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS of the Python processes. */
  threads: number;
}

// What a worker sends is parsed on receipt by its manager (FromWorker): a worker runs user code, so
// it is not trusted any more than a frame is. What a manager sends its worker (ToWorker) is typed,
// not parsed: it is what the interchange parsed, passed on. Payloads and results are DecodedJson,
// checked for their place, not walked.

/** Bytes on Node IPC (`serialization: 'advanced'` gives a Buffer or a Uint8Array). */
const Bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const AttemptedTask = TaskMessage.extend({ attempt: z.number().int().positive() });
/** A read's answer with its bytes, as a manager passes it to its worker. */
const ResultPartWithBytes = ResultPartMessage.extend({ data: Bytes });
const ReadResultToWorker = z.union([
  ReadResultMessage.options[0].extend({ data: Bytes }),
  ReadResultMessage.options[1],
]);
export const ToWorker = z.union([
  z.discriminatedUnion('type', [
    z.object({ type: z.literal('tasks'), tasks: z.array(AttemptedTask), functions: z.array(FunctionSpec) }),
    z.object({ type: z.literal('cancel'), task_ids: z.array(z.string()) }),
    /** The manager has passed this part of a result on (or dropped it: the task was cancelled). */
    z.object({ type: z.literal('result_part_ack'), task_id: z.string(), attempt: z.number().int().positive(), offset: z.number().int().nonnegative() }),
  ]),
  ReadResultToWorker,
]);
export type ToWorker = z.infer<typeof ToWorker>;

export const FromWorker = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number().int() }),
  z.object({ type: z.literal('started'), task_id: z.string(), at: z.number() }),
  z.object({ type: z.literal('results'), results: z.array(WorkerTaskResult) }),
  ResultPartWithBytes,
  /** A read through the agent; `req_id` is the worker's own. */
  z.object({ type: z.literal('read'), req_id: z.string().min(1).max(100), object_id: z.string().min(1).max(64 * 1024), start: z.number().int().nonnegative(), end: z.number().int().nonnegative() }),
]);
export type FromWorker = z.infer<typeof FromWorker>;
