// Builds the lineage records of ended tasks: from what the endpoint reported with the result (its
// lineage facts, execution and lost attempts) and the task's facts the hub read with its state; or,
// for a task ended without the endpoint's facts (a cancel, an older agent, a store without facts),
// from its final stored record and its outbox message (the payload: the outbox keeps the task's
// row, marked ended, until its record is written), naming the items here.

import type { Payload } from '../../protocol/api';
import type { LineageFacts } from '../../protocol/lineage-facts';
import type { ExecutionInfo, LostAttempt } from '../../protocol/wire';
import { namedItems, payloadArguments, resultItems, type Hasher } from '../../provenance/lineage-items';
import type { AttemptRecord, LineageItem, TaskLineage } from '../../provenance/prov-document';
import type { TaskRecord } from '../task-store/port';
import { isObjectResult, spilledResultKey } from '../endpoint-hub/task-doc-json';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const encoder = new TextEncoder();

export async function sha256Hex(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
  let out = '';
  for (const b of bytes) out += HEX[b];
  return out;
}

/** Names values the way the endpoint does, hashing with crypto.subtle: the digests land once `pending` settles. */
function hasher(pending: Array<Promise<void>>): Hasher {
  return (text, item) => void pending.push(sha256Hex(text).then((d) => void (item.digest = d)));
}

/** One item per argument: a reference as its object, an inline value verbatim or by digest (plus the references inside it). */
export async function itemsOf(named: ReadonlyArray<[string, unknown]>): Promise<LineageItem[]> {
  const pending: Array<Promise<void>> = [];
  const items = namedItems(named, hasher(pending));
  await Promise.all(pending);
  return items;
}

/** Records as read back: every verbatim item gets its digest too (in place). */
export async function withDigests(records: TaskLineage[]): Promise<TaskLineage[]> {
  const pending: Array<Promise<void>> = [];
  for (const r of records) {
    for (const item of [...r.used, ...r.generated]) {
      if (item.value !== undefined && item.digest === undefined) pending.push(sha256Hex(item.value).then((d) => void (item.digest = d)));
    }
  }
  await Promise.all(pending);
  return records;
}

/** A task's execution as the endpoint reported it, with the executions lost before it. */
type Execution = Partial<ExecutionInfo> & { lost_attempts?: LostAttempt[] };

/** The lost executions the endpoint reported, then the one that ended the task. */
function attemptHistory(execution: Execution, state: string): AttemptRecord[] {
  const history: AttemptRecord[] = (execution.lost_attempts ?? []).map((a) => ({ attempt: a.attempt, outcome: 'lost', reason: a.reason, ended_at: a.lost_at }));
  // A task the endpoint gave up on (its last execution lost too, FERRY_WORKER_LOST) ran nothing more.
  if (execution.attempt !== undefined && !history.some((a) => a.attempt === execution.attempt)) {
    history.push({ attempt: execution.attempt, outcome: state, ...(execution.host !== undefined ? { host: execution.host } : {}), ...(execution.started_at !== undefined ? { started_at: execution.started_at } : {}), ...(execution.ended_at !== undefined ? { ended_at: execution.ended_at } : {}) });
  }
  return history;
}

/**
 * A task's items from its delivery message (the payload) and its result: an object reference
 * (`resultObject`), or the result's JSON text (`resultText`, also a result the gateway spilled to R2).
 */
async function taskItems(message: string | undefined, resultObject: string | undefined, resultText: string | null): Promise<LineageFacts> {
  const pending: Array<Promise<void>> = [];
  const hash = hasher(pending);
  const payload = message === undefined ? undefined : (JSON.parse(message) as { payload?: Payload }).payload;
  const items = { used: namedItems(payloadArguments(payload), hash), generated: resultItems(resultObject, resultText, hash) };
  await Promise.all(pending);
  return items;
}

/** The object a result stored as a reference names, if it is one. */
function resultObjectOf(resultRef: string | null): string | undefined {
  return isObjectResult(resultRef) ? resultRef!.slice('object:'.length) : undefined;
}

/** What a task's lineage record is built from: its final record's fields, parsed. */
export interface LineageSource {
  task_id: string;
  function_uuid: string;
  workflow_id: string | null;
  campaign_id: string | null;
  task_group_id: string;
  state: string;
  attempts: number;
  transitions: Record<string, number>;
  completion_t: number | null;
  execution: Execution | null;
  /** A guest who submitted the task to the owner's shared endpoint (null or absent: the owner). */
  submitter?: string | null | undefined;
}

/** A task's lineage record, from its final record and its items (named by the endpoint: `reportedBy`). */
export function lineageRecord(owner: string, endpointId: string, t: LineageSource, { used, generated }: LineageFacts, reportedBy?: 'endpoint'): TaskLineage {
  const { execution, transitions } = t;
  const telemetry: NonNullable<TaskLineage['telemetry']> = {};
  if (execution?.started_at !== undefined && execution.ended_at !== undefined) telemetry.wall_time_s = Math.max(0, execution.ended_at - execution.started_at);
  if (execution?.cpu_time_s !== undefined) telemetry.cpu_time_s = execution.cpu_time_s;
  if (execution?.peak_rss_bytes !== undefined) telemetry.peak_memory_bytes = execution.peak_rss_bytes;
  if (execution?.interpreter !== undefined) telemetry.interpreter = execution.interpreter;
  return {
    task_id: t.task_id,
    source: 'ferry',
    owner,
    endpoint_id: endpointId,
    function_uuid: t.function_uuid,
    activity_id: null,
    workflow_id: t.workflow_id,
    campaign_id: t.campaign_id,
    task_group_id: t.task_group_id,
    status: t.state,
    attempts: t.attempts,
    transitions,
    started_at: transitions.running ?? execution?.started_at ?? null,
    ended_at: t.completion_t,
    hostname: execution?.host ?? null,
    used,
    generated,
    telemetry: Object.keys(telemetry).length > 0 ? telemetry : null,
    ...(execution?.lost_attempts?.length ? { attempt_history: attemptHistory(execution, t.state) } : {}),
    ...(reportedBy ? { reported_by: reportedBy } : {}),
    ...(t.submitter && t.submitter !== owner ? { submitted_by: t.submitter } : {}),
  } satisfies TaskLineage;
}

/**
 * The lineage record of each ended task, from its final stored record, its delivery message (the
 * payload, kept in the outbox until its record is written) and, for a result the gateway spilled to
 * R2, that result's text. The hub's way for tasks retired without their records built (cancels,
 * a remote store, rows swept after a crash, records lost with the hub's memory), in batches (EndpointHub.flushLineage).
 */
export async function lineageRecords(
  owner: string,
  endpointId: string,
  tasks: readonly TaskRecord[],
  messages: ReadonlyMap<string, string>,
  spilledResults: ReadonlyMap<string, string>,
): Promise<TaskLineage[]> {
  return Promise.all(
    tasks.map(async (t) => {
      const resultObject = resultObjectOf(t.result_ref);
      const resultText = resultObject !== undefined ? null : spilledResultKey(t) !== null ? (spilledResults.get(t.task_id) ?? null) : t.result_json;
      const source: LineageSource = {
        ...t,
        transitions: JSON.parse(t.transitions_json) as Record<string, number>,
        execution: t.execution_json === null ? null : (JSON.parse(t.execution_json) as Execution),
      };
      return lineageRecord(owner, endpointId, source, await taskItems(messages.get(t.task_id), resultObject, resultText));
    }),
  );
}
