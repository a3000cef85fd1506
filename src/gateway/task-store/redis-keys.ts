// Redis key names of Ferry's state. Every key of one endpoint carries the endpoint id as its hash
// tag (`{…}`), so one endpoint's keys share a cluster slot and a script may touch all of them.

import { endpointOfId } from '../../protocol/ids';

/** `ferry:{<endpoint_id>}:task:<task_id>`: a hash, the task's record and result. */
export function taskKey(taskId: string): string {
  return `ferry:{${endpointOfId(taskId) ?? 'invalid'}}:task:${taskId}`;
}

/** `ferry:{<endpoint_id>}:group:<task_group_id>`: a list of `<task_id> <created_at>`, in submission order. */
export function groupKey(taskGroupId: string): string {
  return `ferry:{${endpointOfId(taskGroupId) ?? 'invalid'}}:group:${taskGroupId}`;
}

/** `ferry:{<endpoint_id>}:tasks`: a sorted set of the endpoint's task ids by submission order (listing). */
export function taskIndexKey(endpointId: string): string {
  return `ferry:{${endpointId}}:tasks`;
}

/** `ferry:{<endpoint_id>}:tasks:seq`: the counter that gives each new task its score in the index. */
export function taskCounterKey(endpointId: string): string {
  return `ferry:{${endpointId}}:tasks:seq`;
}

/** `ferry:{rate:<owner>}:<window start>`: a hash of one owner's submission counters in one window. */
export function rateKey(owner: string, windowStart: number): string {
  return `ferry:{rate:${encodeURIComponent(owner)}}:${windowStart}`;
}
