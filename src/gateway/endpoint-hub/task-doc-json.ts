// Encodes a task doc (src/protocol/api.ts TaskDoc) from a stored record by splicing the JSON texts
// the store keeps (result, exception, transitions) instead of parsing and re-encoding them.

import type { TaskRecord } from '../task-store/port';

/** `resultJson`: the inline result, or the text fetched from the object store for `result_ref`. */
export function taskDocJson(record: TaskRecord, endpointId: string, resultJson: string | null): string {
  let doc = `{"task_id":${JSON.stringify(record.task_id)},"status":"${record.state}"`;
  if (resultJson !== null) doc += `,"result":${resultJson}`;
  if (record.exception_json !== null) doc += `,"exception":${record.exception_json}`;
  if (record.completion_t !== null) doc += `,"completion_t":${record.completion_t}`;
  if (record.stdout !== null) doc += `,"stdout":${JSON.stringify(record.stdout)}`;
  doc += `,"details":{"task_transitions":${record.transitions_json},"endpoint_id":"${endpointId}","function_uuid":"${record.function_uuid}"`;
  doc += `,"task_group_id":${JSON.stringify(record.task_group_id)},"attempts":${record.attempts}}}`;
  return doc;
}

/** The object store key of a result too large to keep inline. */
export function resultObjectKey(taskId: string): string {
  return `results/${taskId}`;
}
