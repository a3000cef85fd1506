// Encodes a task doc (src/protocol/api.ts TaskDoc) from a stored record by splicing the JSON texts
// the store keeps (result, exception, transitions) instead of parsing and re-encoding them.
//
// A record's `result_ref` says where a result is when it is not inline in `result_json`:
// - `results/<task_id>`: the gateway's own R2 key of a JSON result over LIMITS.inlineResultBytes,
//   fetched and served as if inline (spilledResultKey);
// - `object:<id>`: the endpoint stored the result as the owner's object <id> (results by
//   reference); `result_json` holds its ResultRef, served as `result` with `details.result_ref: true`.

import type { TaskRecord } from '../task-store/port';

const OBJECT_RESULT = 'object:';

/** `resultJson`: the inline result (a ResultRef for an object result), or the text fetched from R2 for a spilled one. */
export function taskDocJson(record: TaskRecord, endpointId: string, resultJson: string | null): string {
  let doc = `{"task_id":${JSON.stringify(record.task_id)},"status":"${record.state}"`;
  if (resultJson !== null) doc += `,"result":${resultJson}`;
  if (record.exception_json !== null) doc += `,"exception":${record.exception_json}`;
  if (record.completion_t !== null) doc += `,"completion_t":${record.completion_t}`;
  if (record.stdout !== null) doc += `,"stdout":${JSON.stringify(record.stdout)}`;
  doc += `,"details":{"task_transitions":${record.transitions_json},"endpoint_id":"${endpointId}","function_uuid":"${record.function_uuid}"`;
  doc += `,"task_group_id":${JSON.stringify(record.task_group_id)},"attempts":${record.attempts}`;
  if (isObjectResult(record.result_ref)) doc += ',"result_ref":true';
  return doc + '}}';
}

/** `result_ref` of a result stored as the owner's object. */
export function objectResultRef(objectId: string): string {
  return OBJECT_RESULT + objectId;
}

export function isObjectResult(resultRef: string | null): boolean {
  return resultRef !== null && resultRef.startsWith(OBJECT_RESULT);
}

/** The R2 key to fetch a record's result from, when the gateway spilled it there; else null. */
export function spilledResultKey(record: Pick<TaskRecord, 'result_ref'>): string | null {
  return record.result_ref === null || isObjectResult(record.result_ref) ? null : record.result_ref;
}

/** The object store key of a result too large to keep inline. */
export function resultObjectKey(taskId: string): string {
  return `results/${taskId}`;
}
