// The TaskStore port: where task records, states and results live. Two adapters: the endpoint
// hub's own SQLite (sqlite-task-store.ts, the default) and Redis through @upstash/redis
// (redis-task-store.ts). Every method works on a batch, so a frame of 5,000 results is one call,
// never one await per task. test/helpers/task-store-contract.ts is the port's definition in tests.

import type { TaskState, TransitionEvent, Transitions } from '../../protocol/task-state';

export interface NewTaskBatch {
  task_group_id: string;
  /** The group is created with this batch (false: the tasks join an existing group). */
  new_group: boolean;
  request_id: string;
  /** Unix seconds; every task starts in `waiting-for-ep` at this time. */
  created_at: number;
  workflow_id: string | null;
  campaign_id: string | null;
  resource_specification_json: string | null;
  tasks: ReadonlyArray<{ task_id: string; function_uuid: string }>;
  /** Who submitted them. A remote store keeps it with each task, so reads can check it without the hub. */
  owner?: string;
  /** A guest who submitted them to an endpoint shared with them (absent: the endpoint's owner). */
  submitter?: string;
}

export interface TaskStateRow {
  task_id: string;
  state: TaskState;
  transitions: Transitions;
  /** With `readStates(ids, true)`, from an adapter that reads them with the state at no extra cost (SQLite). */
  facts?: TaskFacts;
}

/** What a task's lineage record takes from its stored record besides its outcome. */
export interface TaskFacts {
  task_group_id: string;
  function_uuid: string;
  attempts: number;
  workflow_id: string | null;
  campaign_id: string | null;
  /** A guest who submitted the task (null: the endpoint's owner). */
  submitter?: string | null;
}

/** What a task produced, as a final state stores it (a record and an outcome alike). */
export interface TaskProducts {
  /** Inline result as JSON text, or null when absent or kept in the object store (`result_ref`). */
  result_json: string | null;
  result_ref: string | null;
  exception_json: string | null;
  stdout: string | null;
  completion_t: number | null;
  execution_json: string | null;
}

export interface TaskRecord extends TaskProducts {
  task_id: string;
  task_group_id: string;
  function_uuid: string;
  state: TaskState;
  /** `details.task_transitions` as JSON text, spliced into task docs as it is. */
  transitions_json: string;
  attempts: number;
  created_at: number;
  workflow_id: string | null;
  campaign_id: string | null;
  resource_specification_json: string | null;
  /** A guest who submitted the task (null or absent: the endpoint's owner). */
  submitter?: string | null;
}

/** A task entering a final state, with what it produced. */
export interface TaskOutcome extends TaskProducts {
  task_id: string;
  state: TaskState;
  transitions: Transitions;
  /** A cancel ends a task without an execution; a result counts one. */
  counts_attempt: boolean;
  /**
   * The endpoint's own count of executions (`execution.attempt`): an execution whose result was
   * lost with a crashed agent never reached the gateway, but the re-run reports it. 0 when unknown.
   */
  reported_attempt: number;
}

/**
 * Writes that belong with a store write (the hub's outbox rows). An adapter sharing the hub's SQLite
 * runs them in the same transaction. A remote adapter runs them right AFTER its own write has
 * succeeded, in one local transaction: a crash between the two then leaves a task without its
 * outbox row only when the client never got an answer (create), and otherwise an outbox row too
 * many (a row of a task already final), which the hub drops on reconcile. Never a task lost.
 */
export type AlongsideWrites = () => void;

/** Alongside writes of `finishTasks`: told which outcomes were stored (their tasks were not final yet). */
export type FinishAlongside = (finished: readonly string[]) => void;

export interface FinishReport {
  /** Ids whose outcome was stored, in the order of the outcomes. */
  finished: string[];
  /** Ids whose task was already final (or unknown): the outcome was refused, a result counted as an attempt. */
  refused: string[];
}

/** What a task list page keeps (all given fields must match). */
export interface TaskListFilter {
  status?: TaskState | undefined;
  function_uuid?: string | undefined;
  workflow_id?: string | undefined;
  task_group_id?: string | undefined;
}

/** A task list row as a store reads it; `pos` orders an endpoint's tasks (higher: newer). */
export interface TaskListRow {
  pos: number;
  task_id: string;
  status: TaskState;
  function_uuid: string;
  task_group_id: string;
  workflow_id: string | null;
  created_at: number;
  completion_t: number | null;
  attempts: number;
}

export interface TaskListPage {
  /** Newest first. */
  rows: TaskListRow[];
  /** Where to read on (below this position), or 0 when every older task was read. */
  next: number;
}

export interface TaskStore {
  createTasks(batch: NewTaskBatch, alongside?: AlongsideWrites): Promise<void>;
  /**
   * States of the ids that exist; unknown ids are left out. `withFacts`: each with its facts too,
   * where the adapter has them in the same read (an adapter may leave them out).
   */
  readStates(taskIds: readonly string[], withFacts?: boolean): Promise<Map<string, TaskStateRow>>;
  /** Full records of the ids that exist, in no particular order. */
  readTasks(taskIds: readonly string[]): Promise<TaskRecord[]>;
  /**
   * Records moves: each task whose state is still `from` enters `to` and gets `to` stamped with
   * `at` in its transitions. A move the state table does not allow (`canTransition`) is ignored.
   */
  saveTransitions(moves: readonly TransitionEvent[], alongside?: AlongsideWrites): Promise<void>;
  /**
   * Stores final outcomes, atomically per task: an outcome is stored only while its task is not
   * final (the first final outcome wins, whatever raced it); a refused result still counts its
   * attempt. Attempts become max(attempts + counts_attempt, reported_attempt); the outcome's
   * transitions are merged into the stored ones. `extraAttempts` are tasks that ran once more.
   */
  finishTasks(outcomes: readonly TaskOutcome[], extraAttempts: readonly string[], alongside?: FinishAlongside): Promise<FinishReport>;
  /**
   * The endpoint's tasks matching `filter`, newest first, from below position `before` (null: the
   * newest). Reads at most `budget` tasks, so a rare match can answer fewer than `limit` rows with
   * a position to go on from.
   */
  listTasks(filter: TaskListFilter, before: number | null, limit: number, budget: number): Promise<TaskListPage>;
  groupExists(taskGroupId: string): Promise<boolean>;
  /** The group's tasks in submission order, or null when the group does not exist. */
  groupTasks(taskGroupId: string): Promise<Array<{ task_id: string; created_at: number }> | null>;
}
