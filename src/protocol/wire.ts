// WebSocket frames between an endpoint agent and the gateway, version 2 (since 1: a result may be a
// stored object, `result_object`; a result may carry its lineage facts, `lineage`, which a gateway
// that does not know them ignores). Both sides parse every frame on receipt with `parseGatewayFrame`
// / `parseAgentFrame`; an unknown or malformed frame is an error, never ignored. Frames stay under
// LIMITS.maxFrameBytes and carry batches.

import { z } from 'zod';
import { payloadOf, ResultRef, Runtime, StatusReport, TaskExceptionDoc, Uuid, type Json } from './api';
import { FerryError } from './errors';
import { MAX_JSON_DEPTH, MESSAGE_ENVELOPE_DEPTH, textNestsDeeperThan } from './json-depth';
import { LineageFacts } from './lineage-facts';
import { TraceHops } from './trace';

export const PROTOCOL_VERSION = 2;

/**
 * What either side packs into one frame's batch: below LIMITS.maxFrameBytes (1 MiB), with room for
 * the envelope and for multi-byte characters in otherwise ASCII JSON.
 */
export const FRAME_BUDGET_BYTES = 900_000;

/** Close code the gateway sends its agents when it shuts down (RFC 6455 "service restart"): reconnect later. */
export const CLOSE_GATEWAY_RESTART = 1012;

/** The local launcher's call that drains a gateway before it stops workerd (src/gateway/drain.ts); header x-launcher-key. */
export const LAUNCHER_DRAIN_PATH = '/__launcher/drain';

/** The code of one function as an endpoint needs it. The gateway sends it along with tasks. */
export const FunctionSpec = z.object({
  function_uuid: Uuid,
  runtime: Runtime,
  code: z.string(),
  /** A Python function's entry point (its `function_name`); absent for the other runtimes. */
  name: z.string().optional(),
});
export type FunctionSpec = z.infer<typeof FunctionSpec>;

/**
 * A JSON value inside a frame. Frames are decoded by `parseGatewayFrame` / `parseAgentFrame`: the
 * text's nesting is checked first (json-depth.ts), then JSON.parse, whose every output is JSON. A
 * second walk with the recursive `JsonValue` schema checked nothing more, and cost the gateway a
 * seventh of its JavaScript per `/v3/run` (zod runs without its JIT in workerd).
 */
const DecodedJson = z.custom<Json>(() => true);

/** A task's arguments as a frame carries them (api.ts Payload, without a second walk of the values). */
export const FramePayload = payloadOf(DecodedJson);

/** One task as delivered to an endpoint. */
export const TaskMessage = z.object({
  task_id: z.string(),
  function_uuid: Uuid,
  payload: FramePayload,
  resource_specification: z.record(z.string(), DecodedJson).optional(),
  /** A traced task (src/protocol/trace.ts): the endpoint's hops so far, each process adds its own. */
  trace: TraceHops.optional(),
});
export type TaskMessage = z.infer<typeof TaskMessage>;

/** Where and how long a task ran; attached to every result. */
export const ExecutionInfo = z.object({
  /** 1 for the first execution of this task on this endpoint, 2 for a re-run after a loss, … */
  attempt: z.number().int().positive(),
  started_at: z.number(),
  ended_at: z.number(),
  host: z.string(),
  worker_pid: z.number().int(),
  /** CPU-seconds the worker process used for this task (user + system, all its threads). */
  cpu_time_s: z.number().nonnegative().optional(),
  /** The worker process's peak resident memory so far (a high-water mark over its tasks), bytes. */
  peak_rss_bytes: z.number().int().nonnegative().optional(),
  /** The interpreter that ran a Python function (`CPython 3.11.2`); absent for the other runtimes. */
  interpreter: z.string().max(128).optional(),
});
export type ExecutionInfo = z.infer<typeof ExecutionInfo>;

/** An execution of a task that ended without a result: its worker, manager or block died under it. */
export const LostAttempt = z.object({
  attempt: z.number().int().positive(),
  /** When the endpoint saw it lost (Unix seconds). */
  lost_at: z.number(),
  /** What the endpoint saw: `worker 123 exited (SIGKILL)`, `manager … lost`, … */
  reason: z.string(),
});
export type LostAttempt = z.infer<typeof LostAttempt>;

export const TaskResult = z.object({
  task_id: z.string(),
  status: z.enum(['success', 'failed']),
  result: DecodedJson.optional(),
  /**
   * A result the endpoint stored as an object of the task's owner (bytes, or JSON over
   * LIMITS.maxInlineResultBytes) before reporting it; `result` is then absent.
   */
  result_object: ResultRef.optional(),
  exception: TaskExceptionDoc.optional(),
  /** Captured console output of the function, capped. */
  stdout: z.string().optional(),
  execution: ExecutionInfo.optional(),
  /** The executions of this task before this one that were lost, oldest first (none: absent). */
  lost_attempts: z.array(LostAttempt).optional(),
  /**
   * What the task used and generated, named by the endpoint from its copy of the payload and the
   * result (src/provenance/lineage-items.ts). Absent (an older agent, a result without its task):
   * the gateway names them itself.
   */
  lineage: LineageFacts.optional(),
  /**
   * The how-many-th time the agent sends this result, when not the first: a result sent before the
   * link or the gateway died, and not acknowledged, is sent again after the reconnect. The gateway
   * counts it as an attempt, as it counts a task it had to deliver twice.
   */
  delivery: z.number().int().min(2).optional(),
  /** A traced task's endpoint hops, from its message on (src/protocol/trace.ts); never stored. */
  trace: TraceHops.optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;

// ---- gateway → agent ----
export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  protocol_version: z.number().int(),
  endpoint_id: Uuid,
  /** Seconds between the agent's heartbeats that the gateway expects. */
  heartbeat_s: z.number().positive(),
});
export const TasksFrame = z.object({
  type: z.literal('tasks'),
  tasks: z.array(TaskMessage),
  /** The code of every function the tasks of this frame name. */
  functions: z.array(FunctionSpec),
});
export const CancelFrame = z.object({ type: z.literal('cancel'), task_ids: z.array(z.string()) });
/** The results the gateway has stored (or had stored already); the agent may forget them. */
export const ResultsAckFrame = z.object({ type: z.literal('results_ack'), task_ids: z.array(z.string()) });
/** The gateway refuses the agent; the socket closes after it. */
export const RefuseFrame = z.object({ type: z.literal('refuse'), code: z.string(), message: z.string() });

export const GatewayFrame = z.discriminatedUnion('type', [WelcomeFrame, TasksFrame, CancelFrame, ResultsAckFrame, RefuseFrame]);
export type GatewayFrame = z.infer<typeof GatewayFrame>;

/**
 * A gateway frame as the text the hub sends: the compiler checks its shape against the schema the
 * agent parses it with. (`tasks` frames are spliced from stored texts by the hub's task-frames.ts,
 * for speed; their tests parse them as the agent does.)
 */
export function gatewayFrameText(frame: Exclude<GatewayFrame, { type: 'tasks' }>): string {
  return JSON.stringify(frame);
}

// ---- agent → gateway ----
export const HelloFrame = z.object({
  type: z.literal('hello'),
  protocol_version: z.number().int(),
  agent_version: z.string(),
  /** How many held-task frames follow (0 when the agent holds nothing). */
  held_frames: z.number().int().nonnegative(),
});
/** Tasks the agent holds (journaled, not yet finished or not yet acknowledged); sent after hello. */
export const HeldFrame = z.object({ type: z.literal('held'), task_ids: z.array(z.string()) });
/** Tasks the agent has journaled; the gateway's delivery of them is complete. */
export const AckFrame = z.object({ type: z.literal('ack'), task_ids: z.array(z.string()) });
/** The agent can take `n` more tasks. */
export const CreditFrame = z.object({ type: z.literal('credit'), n: z.number().int().nonnegative() });
export const RunningFrame = z.object({ type: z.literal('running'), task_ids: z.array(z.string()), at: z.number() });
/**
 * Results, with what would otherwise take frames of their own: the credits the results free
 * (`credit`, as a credit frame) and tasks journaled since the last ack (`acked`, as an ack frame).
 * One frame, one turn of the hub.
 */
export const ResultsFrame = z.object({
  type: z.literal('results'),
  results: z.array(TaskResult),
  credit: z.number().int().nonnegative().optional(),
  acked: z.array(z.string()).optional(),
});
export const StatusFrame = z.object({ type: z.literal('status'), report: StatusReport });

export const AgentFrame = z.discriminatedUnion('type', [HelloFrame, HeldFrame, AckFrame, CreditFrame, RunningFrame, ResultsFrame, StatusFrame]);
export type AgentFrame = z.infer<typeof AgentFrame>;

/** The deepest a frame may nest: a task's values (MAX_JSON_DEPTH) inside the frame's own levels. */
export const MAX_FRAME_DEPTH = MAX_JSON_DEPTH + MESSAGE_ENVELOPE_DEPTH;

/** A frame refused for its nesting, before it was decoded. */
export class FrameTooDeep extends FerryError {
  constructor() {
    super('VALIDATION_ERROR', `the frame nests deeper than ${MAX_FRAME_DEPTH} levels`);
  }
}

/** JSON.parse of a frame's text, once its nesting is known to stay within MAX_FRAME_DEPTH. */
function decodeFrameText(text: string): unknown {
  if (textNestsDeeperThan(text, MAX_FRAME_DEPTH)) throw new FrameTooDeep();
  return JSON.parse(text);
}

export function parseGatewayFrame(text: string): GatewayFrame {
  return GatewayFrame.parse(decodeFrameText(text));
}

/**
 * Agent frames carry `seq`: 1 for the hello of each connection, then one more per frame. It is
 * written first, so the gateway reads it without parsing the frame. The hub handles frames in `seq`
 * order, not in the order the runtime hands them over (the gateway tests saw those differ; see
 * endpoint-hub/frame-order.ts). Frame schemas ignore it.
 */
export function withSeq(frameJson: string, seq: number): string {
  return `{"seq":${seq},${frameJson.slice(1)}`;
}

/** The `seq` a frame starts with, or null for a frame without one. */
export function seqOf(text: string): number | null {
  const match = /^\{"seq":(\d{1,15}),/.exec(text);
  return match ? Number(match[1]) : null;
}

export function parseAgentFrame(text: string): AgentFrame {
  return AgentFrame.parse(decodeFrameText(text));
}

/**
 * Splits items into groups whose JSON encoding stays under `maxBytes` (approximately: the size
 * of each item's JSON plus one comma), so a frame built from one group stays under the limit.
 */
export function chunkBySize<T>(items: readonly T[], maxBytes: number, sizeOf: (item: T) => number = (item) => JSON.stringify(item).length): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const s = sizeOf(item) + 1;
    if (current.length > 0 && size + s > maxBytes) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += s;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
