// Task states as Globus Compute names them, and the one table of legal moves between them.
// Every change of a task's state goes through `transition()`.

import { FerryError } from './errors';

export const TASK_STATES = ['waiting-for-ep', 'waiting-for-nodes', 'running', 'success', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const FINAL_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['success', 'failed', 'cancelled']);

export function isFinal(state: TaskState): boolean {
  return FINAL_STATES.has(state);
}

/** Legal moves. A task goes back to `waiting-for-ep` when its delivery lapses (re-queue). */
const LEGAL: Record<TaskState, readonly TaskState[]> = {
  'waiting-for-ep': ['waiting-for-nodes', 'running', 'success', 'failed', 'cancelled'],
  'waiting-for-nodes': ['waiting-for-ep', 'running', 'success', 'failed', 'cancelled'],
  running: ['waiting-for-ep', 'success', 'failed', 'cancelled'],
  success: [],
  failed: [],
  cancelled: [],
};

export function canTransition(from: TaskState, to: TaskState): boolean {
  return LEGAL[from].includes(to);
}

/** Unix seconds (fractional) of each state a task has entered, as in `details.task_transitions`. */
export type Transitions = Partial<Record<TaskState, number>>;

export interface TransitionEvent {
  task_id: string;
  from: TaskState;
  to: TaskState;
  at: number;
}

export interface Transitioned {
  state: TaskState;
  transitions: Transitions;
  event: TransitionEvent;
}

/**
 * Checks that `from → to` is legal and stamps the time. Throws `ILLEGAL_TRANSITION` otherwise.
 * Returns the new state, the new transitions map and the event for provenance.
 */
export function transition(taskId: string, from: TaskState, transitions: Transitions, to: TaskState, at: number): Transitioned {
  if (!canTransition(from, to)) {
    throw new FerryError('ILLEGAL_TRANSITION', `task ${taskId} cannot move from ${from} to ${to}`);
  }
  return { state: to, transitions: { ...transitions, [to]: at }, event: { task_id: taskId, from, to, at } };
}
