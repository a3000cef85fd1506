// The dashboard's read models over REST: a page of the caller's tasks, newest first, filtered
// (GET /v3/tasks), and an endpoint's status reports of the last hour (GET /v3/endpoints/{id}/status/history).

import { z } from 'zod';
import { StatusReport, TaskGroupId, TaskStatus, Uuid } from './api';

export const TASK_LIST_LIMITS = {
  defaultLimit: 50,
  maxLimit: 500,
  /**
   * Rows one endpoint reads for one page at most: a filter that matches few of many tasks answers a
   * short page (with a cursor to go on) instead of scanning an endpoint's whole history in one call.
   */
  scanBudget: 5_000,
  /** Endpoints one cursor carries a position for (the ones a page fans out to). */
  maxCursorEndpoints: 256,
  maxCursorChars: 16_384,
} as const;

export const TaskListQuery = z.strictObject({
  endpoint_id: Uuid.optional(),
  status: TaskStatus.optional(),
  function_uuid: Uuid.optional(),
  workflow_id: z.string().min(1).max(256).optional(),
  task_group_id: TaskGroupId.optional(),
  limit: z.coerce.number().int().min(1).max(TASK_LIST_LIMITS.maxLimit).default(TASK_LIST_LIMITS.defaultLimit),
  /** `next_cursor` of the page before: the next page, older tasks. */
  cursor: z.string().min(1).max(TASK_LIST_LIMITS.maxCursorChars).optional(),
});
export type TaskListQuery = z.output<typeof TaskListQuery>;

/** One row of the task table: what a task is and where it stands, without its payload or result. */
export const TaskSummary = z.object({
  task_id: z.string(),
  status: TaskStatus,
  endpoint_id: Uuid,
  function_uuid: Uuid,
  task_group_id: z.string(),
  workflow_id: z.string().nullable(),
  /** Unix seconds. */
  created_at: z.number(),
  completion_t: z.number().nullable(),
  attempts: z.number().int().nonnegative(),
});
export type TaskSummary = z.infer<typeof TaskSummary>;

export const TaskList = z.object({
  tasks: z.array(TaskSummary),
  /** Pass it as `cursor` for the next page; null when there is none. A page may be short and still have a next one. */
  next_cursor: z.string().nullable(),
});
export type TaskList = z.infer<typeof TaskList>;

/** Where a page left each endpoint: a position to read below (older), or 0 once nothing older is left. */
export const TaskListCursor = z.strictObject({
  v: z.literal(1),
  p: z.record(Uuid, z.number().int().nonnegative()).refine((p) => Object.keys(p).length <= TASK_LIST_LIMITS.maxCursorEndpoints, 'too many endpoints'),
});
export type TaskListCursor = z.infer<typeof TaskListCursor>;

export const STATUS_HISTORY = {
  /** Seconds of reports kept. */
  windowS: 3600,
  /** At most one sample per this many seconds (the agent reports every heartbeat). */
  sampleEveryS: 15,
} as const;

export const StatusSample = StatusReport.extend({ t: z.number().describe('Unix seconds of the report') });
export type StatusSample = z.infer<typeof StatusSample>;

export const EndpointStatusHistory = z.object({
  endpoint_id: Uuid,
  window_s: z.number().int(),
  sample_every_s: z.number().int(),
  /** Oldest first; a gap means no report came (the agent was offline). */
  samples: z.array(StatusSample),
});
export type EndpointStatusHistory = z.infer<typeof EndpointStatusHistory>;
