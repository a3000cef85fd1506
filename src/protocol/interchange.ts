// Messages inside an endpoint: between the agent's interchange and a manager (newline-delimited
// JSON over TCP), and between a manager and its worker processes (Node IPC). Version 1.

import { z } from 'zod';
import { FunctionSpec, TaskMessage, TaskResult } from './wire';

export const INTERCHANGE_VERSION = 1;

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
export const ManagerResultsMessage = z.object({ type: z.literal('results'), results: z.array(TaskResult) });
/** Tasks whose execution was lost with a worker (killed, crashed): the agent decides to retry or fail. */
export const ManagerLostMessage = z.object({ type: z.literal('lost'), task_ids: z.array(z.string()), reason: z.string() });
export const ManagerHeartbeatMessage = z.object({ type: z.literal('heartbeat'), idle_workers: z.number().int().nonnegative(), workers: z.number().int().nonnegative() });

export const ManagerMessage = z.discriminatedUnion('type', [RegisterMessage, ManagerStartedMessage, ManagerResultsMessage, ManagerLostMessage, ManagerHeartbeatMessage]);
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

export const InterchangeMessage = z.discriminatedUnion('type', [RegisteredMessage, DispatchMessage, ManagerCancelMessage, ShutdownMessage]);
export type InterchangeMessage = z.infer<typeof InterchangeMessage>;

// ---- manager ↔ worker (Node IPC; both ends are Ferry's own processes) ----
export interface WorkerLimits {
  memory_mb: number;
  timeout_s: number;
  /** Shell functions (`runtime: 'shell'`) run only where the endpoint's config allows them. */
  allow_shell_functions?: boolean;
  /** Lines of stdout/stderr a shell function returns (the last N). */
  shell_output_lines?: number;
}

export type ToWorker =
  | { type: 'tasks'; tasks: Array<TaskMessage & { attempt: number }>; functions: FunctionSpec[] }
  | { type: 'cancel'; task_ids: string[] };

export type FromWorker =
  | { type: 'ready'; pid: number }
  | { type: 'started'; task_id: string; at: number }
  | { type: 'results'; results: TaskResult[] };
