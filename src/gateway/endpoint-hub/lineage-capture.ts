// Builds the lineage records of tasks entering a final state, from what the hub holds just before
// storing the outcomes: the task records (function, workflow, group, attempts), the outbox message
// (the payload, still there until the outcome's transaction removes it) and the result.

import type { LineageItem, TaskLineage } from '../../provenance/prov-document';
import type { TaskOutcome, TaskRecord } from '../task-store/port';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const encoder = new TextEncoder();

export async function sha256Hex(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
  let out = '';
  for (const b of bytes) out += HEX[b];
  return out;
}

/** `{"$ref": id}` objects anywhere inside a JSON value. */
export function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const v of value) refsIn(v, out);
  } else if (value !== null && typeof value === 'object') {
    const ref = (value as Record<string, unknown>).$ref;
    if (typeof ref === 'string') out.push(ref);
    else for (const v of Object.values(value)) refsIn(v, out);
  }
  return out;
}

function isRef(value: unknown): value is { $ref: string } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as Record<string, unknown>).$ref === 'string';
}

/** One item per argument: a reference as its object, an inline value by digest (plus the references inside it). */
export async function itemsOf(named: ReadonlyArray<[string, unknown]>): Promise<LineageItem[]> {
  const items: LineageItem[] = [];
  const pending: Array<Promise<void>> = [];
  for (const [role, value] of named) {
    if (isRef(value)) {
      items.push({ role, object: value.$ref });
      continue;
    }
    const item: LineageItem = { role };
    items.push(item);
    pending.push(sha256Hex(JSON.stringify(value) ?? 'null').then((d) => void (item.digest = d)));
    for (const object of refsIn(value)) items.push({ role, object });
  }
  await Promise.all(pending);
  return items;
}

function payloadItems(message: string | undefined): Promise<LineageItem[]> {
  if (message === undefined) return Promise.resolve([]);
  const payload = (JSON.parse(message) as { payload?: { args?: unknown[]; kwargs?: Record<string, unknown> } }).payload ?? {};
  const named: Array<[string, unknown]> = (payload.args ?? []).map((v, i) => [`args.${i}`, v]);
  for (const [k, v] of Object.entries(payload.kwargs ?? {})) named.push([`kwargs.${k}`, v]);
  return itemsOf(named);
}

export interface EndingTask {
  outcome: TaskOutcome;
  /** The result's JSON text and value (absent for failures and cancels). */
  resultText: string | null;
  result: unknown;
  /** The object the endpoint stored the result as (results by reference): the one thing generated. */
  resultObject?: string;
}

export async function lineageRecords(owner: string, endpointId: string, ending: readonly EndingTask[], records: ReadonlyMap<string, TaskRecord>, messages: ReadonlyMap<string, string>): Promise<TaskLineage[]> {
  return Promise.all(
    ending.map(async ({ outcome: o, resultText, result, resultObject }) => {
      const meta = records.get(o.task_id);
      const [used, digest] = await Promise.all([payloadItems(messages.get(o.task_id)), resultText === null || resultObject !== undefined ? null : sha256Hex(resultText)]);
      const generated: LineageItem[] = [];
      if (resultObject !== undefined) generated.push({ role: 'result', object: resultObject });
      if (digest !== null) generated.push({ role: 'result', digest });
      if (resultText !== null && resultObject === undefined) for (const object of refsIn(result)) generated.push({ role: 'result', object });
      const execution = o.execution_json === null ? null : (JSON.parse(o.execution_json) as { host?: string; started_at?: number });
      const transitions = { ...(meta ? (JSON.parse(meta.transitions_json) as Record<string, number>) : {}), ...o.transitions } as Record<string, number>;
      return {
        task_id: o.task_id,
        source: 'ferry',
        owner,
        endpoint_id: endpointId,
        function_uuid: meta?.function_uuid ?? null,
        activity_id: null,
        workflow_id: meta?.workflow_id ?? null,
        campaign_id: meta?.campaign_id ?? null,
        task_group_id: meta?.task_group_id ?? null,
        status: o.state,
        attempts: Math.max((meta?.attempts ?? 0) + (o.counts_attempt ? 1 : 0), o.reported_attempt),
        transitions,
        started_at: transitions.running ?? execution?.started_at ?? null,
        ended_at: o.completion_t,
        hostname: execution?.host ?? null,
        used,
        generated,
      } satisfies TaskLineage;
    }),
  );
}
