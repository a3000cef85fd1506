// A task's lineage record (Ferry's own tasks and Flowcept-style task messages alike) and its
// W3C PROV-JSON rendering (https://www.w3.org/Submission/prov-json/). Runtime-free: digests are
// computed by the caller (crypto.subtle in the gateway) and passed in.
//
// Identifiers (qualified names under the declared `ferry` prefix): `ferry:task/<id>` (activity),
// `ferry:function/<uuid>`, `ferry:object/<id>` (a data object by reference), `ferry:value/<sha256>`
// (an inline input), `ferry:result/<task_id>` (an inline result) as entities; `ferry:user/<sub>`,
// `ferry:endpoint/<id>`, `ferry:host/<name>` as agents. An object's ingest filters are activities
// `ferry:ingest/<id>/filter/<n>` between `ferry:ingest/<id>/stage/<n-1>` and the next stage (the
// last filter generates the object itself), each with its source `ferry:filter_source/<sha256>` as plan.
//
// PROV-JSON conventions followed (and checked by test/e2e/prov-json.test.ts against the submission's
// schema and the `prov` Python package's reader): `prov:type` and role values are typed literals of
// type `prov:QUALIFIED_NAME`; times are xsd:dateTime (plain strings where PROV defines the attribute
// as a time, typed literals elsewhere); every prefix used is declared in `prefix`.

import type { LineageItem } from '../protocol/lineage-facts';

/** One thing a task used or generated (its shape is the wire's: endpoints report them with results). */
export type { LineageItem };

/** What the worker measured of the attempt that ended the task. */
export interface WorkerTelemetry {
  wall_time_s?: number;
  cpu_time_s?: number;
  peak_memory_bytes?: number;
  /** The interpreter that ran a Python function (`CPython 3.11.2`). */
  interpreter?: string;
}

/** One execution of a task, as the endpoint reported it. */
export interface AttemptRecord {
  attempt: number;
  /** `lost` for an execution that ended without a result (its worker, manager or block died); else the task's final status. */
  outcome: string;
  /** Why it was lost, as the endpoint saw it. */
  reason?: string;
  host?: string;
  started_at?: number;
  /** For a lost execution: when the endpoint saw it lost. */
  ended_at?: number;
}

/** A task's lineage record, close to Flowcept's task record. Times are Unix seconds. */
export interface TaskLineage {
  task_id: string;
  /** `ferry`: a task that ran through Ferry; `event`: a task message ingested from elsewhere. */
  source: 'ferry' | 'event';
  owner: string;
  endpoint_id: string | null;
  function_uuid: string | null;
  activity_id: string | null;
  workflow_id: string | null;
  campaign_id: string | null;
  task_group_id: string | null;
  status: string;
  attempts: number;
  /** State name → Unix seconds of every state change. */
  transitions: Record<string, number>;
  started_at: number | null;
  ended_at: number | null;
  hostname: string | null;
  used: LineageItem[];
  generated: LineageItem[];
  /** Absent in records written before workers reported it, and for tasks that never ran. */
  telemetry?: WorkerTelemetry | null;
  /**
   * Every execution, oldest first, when there was more than one that the endpoint saw start: the
   * lost ones, then the one that ended the task. Absent for a task that ran once (the record's own
   * host and times are that execution's).
   */
  attempt_history?: AttemptRecord[];
  /**
   * `endpoint`: what the task used and generated, its times and host are as its endpoint reported
   * them with the result (digests computed there), so the endpoint's owner vouches for them. Absent:
   * the gateway named the items from its own copy of the payload and result.
   */
  reported_by?: 'endpoint';
  /**
   * The user who submitted the task when it was not the owner: a guest of the owner's shared
   * endpoint (issue 19). The task ran under the endpoint's account, as the owner's own tasks do.
   */
  submitted_by?: string;
}

/** A registered function as the document names it (looked up by the caller). */
export interface FunctionInfo {
  name: string;
  runtime: string;
  /** sha256 (hex) of the function's code. */
  code_sha256: string;
}

/** An ingest filter applied by the client before upload, as the object index keeps it. */
export interface IngestFilterInfo {
  name: string;
  params?: unknown;
  source_sha256: string;
}

/** A data object as the object index knows it (looked up by the caller). */
export interface ObjectInfo {
  /** Who uploaded it (the owner of the object index). */
  owner: string;
  sha256: string;
  size: number;
  content_type: string;
  /** Unix seconds. */
  created_at: number;
  filters: readonly IngestFilterInfo[];
}

/** What the caller could look up about the functions and objects the records name. */
export interface ProvContext {
  functions?: ReadonlyMap<string, FunctionInfo>;
  objects?: ReadonlyMap<string, ObjectInfo>;
}

export const PROV_PREFIXES = {
  prov: 'http://www.w3.org/ns/prov#',
  xsd: 'http://www.w3.org/2001/XMLSchema#',
  ferry: 'https://ferry.dev/ns/prov#',
} as const;

export interface TypedLiteral {
  $: string;
  type: string;
}
export type ProvLiteral = string | number | boolean | TypedLiteral;
/** An attribute's value, or its values (PROV-JSON's literal array). */
export type ProvValue = ProvLiteral | ProvLiteral[];
export type ProvRecord = Record<string, ProvValue>;

export interface ProvDocument {
  prefix: Record<string, string>;
  entity: Record<string, ProvRecord>;
  activity: Record<string, ProvRecord>;
  agent: Record<string, ProvRecord>;
  used: Record<string, ProvRecord>;
  wasGeneratedBy: Record<string, ProvRecord>;
  wasAssociatedWith: Record<string, ProvRecord>;
  wasAttributedTo: Record<string, ProvRecord>;
  wasDerivedFrom: Record<string, ProvRecord>;
  actedOnBehalfOf: Record<string, ProvRecord>;
}

/**
 * The local part of a qualified name: percent-encoded, plus the characters PROV-N's PN_LOCAL does
 * not allow unescaped (`'`, `(`, `)`, and a final `.`), so ids stay valid in every PROV syntax.
 */
function local(part: string): string {
  return encodeURIComponent(part)
    .replace(/['()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/\.$/, '%2E');
}

export const provIds = {
  task: (id: string) => `ferry:task/${local(id)}`,
  fn: (uuid: string) => `ferry:function/${local(uuid)}`,
  object: (id: string) => `ferry:object/${local(id)}`,
  value: (digest: string) => `ferry:value/${local(digest)}`,
  result: (taskId: string) => `ferry:result/${local(taskId)}`,
  user: (sub: string) => `ferry:user/${local(sub)}`,
  endpoint: (id: string) => `ferry:endpoint/${local(id)}`,
  host: (name: string) => `ferry:host/${local(name)}`,
  filter: (objectId: string, n: number) => `ferry:ingest/${local(objectId)}/filter/${n}`,
  stage: (objectId: string, n: number) => `ferry:ingest/${local(objectId)}/stage/${n}`,
  filterSource: (sha256: string) => `ferry:filter_source/${local(sha256)}`,
  attempt: (taskId: string, n: number) => `ferry:attempt/${local(taskId)}/${n}`,
};

export function dateTime(unixSeconds: number): TypedLiteral {
  return { $: new Date(unixSeconds * 1000).toISOString(), type: 'xsd:dateTime' };
}

/** A qualified name as an attribute value (`prov:type`, `prov:role`): PROV-JSON's typed literal. */
export function qualifiedName(name: string): TypedLiteral {
  return { $: name, type: 'prov:QUALIFIED_NAME' };
}

function entityOf(item: LineageItem, taskId: string, generated: boolean): string {
  if (item.object !== undefined) return provIds.object(item.object);
  if (generated) return provIds.result(taskId);
  return provIds.value(item.digest ?? 'unknown');
}

export function emptyProvDocument(): ProvDocument {
  return {
    prefix: { ...PROV_PREFIXES },
    entity: {},
    activity: {},
    agent: {},
    used: {},
    wasGeneratedBy: {},
    wasAssociatedWith: {},
    wasAttributedTo: {},
    wasDerivedFrom: {},
    actedOnBehalfOf: {},
  };
}

type RelationKind = 'used' | 'wasGeneratedBy' | 'wasAssociatedWith' | 'wasAttributedTo' | 'wasDerivedFrom' | 'actedOnBehalfOf';

/**
 * One PROV-JSON document for any number of records: shared entities (a data object one task
 * generated and another used) appear once, so workflows join in one graph. `context` adds what the
 * records only name: function names and code digests, objects' digests, sizes and ingest filters.
 */
export function provDocument(records: readonly TaskLineage[], context: ProvContext = {}): ProvDocument {
  const doc = emptyProvDocument();
  let n = 0;
  const relation = (kind: RelationKind, rel: ProvRecord): ProvRecord => {
    doc[kind][`_:${kind}${++n}`] = rel;
    return rel;
  };
  const userAgent = (sub: string): string => {
    const id = provIds.user(sub);
    doc.agent[id] ??= { 'prov:type': qualifiedName('prov:Person'), 'ferry:sub': sub };
    return id;
  };
  const objectIds = new Set<string>();

  for (const r of records) {
    const activity = provIds.task(r.task_id);
    const attrs: ProvRecord = { 'prov:type': qualifiedName('ferry:Task'), 'ferry:task_id': r.task_id, 'ferry:source': r.source, 'ferry:status': r.status, 'ferry:attempts': r.attempts };
    if (r.started_at !== null) attrs['prov:startTime'] = dateTime(r.started_at).$;
    if (r.ended_at !== null) attrs['prov:endTime'] = dateTime(r.ended_at).$;
    if (r.workflow_id !== null) attrs['ferry:workflow_id'] = r.workflow_id;
    if (r.campaign_id !== null) attrs['ferry:campaign_id'] = r.campaign_id;
    if (r.task_group_id !== null) attrs['ferry:task_group_id'] = r.task_group_id;
    if (r.activity_id !== null) attrs['ferry:activity_id'] = r.activity_id;
    if (r.hostname !== null) attrs['ferry:host'] = r.hostname;
    if (r.reported_by === 'endpoint' && r.endpoint_id !== null) attrs['ferry:reportedBy'] = qualifiedName(provIds.endpoint(r.endpoint_id));
    if (r.submitted_by !== undefined) attrs['ferry:submittedBy'] = r.submitted_by;
    const t = r.telemetry;
    if (t?.wall_time_s !== undefined) attrs['ferry:wall_time_s'] = t.wall_time_s;
    if (t?.cpu_time_s !== undefined) attrs['ferry:cpu_time_s'] = t.cpu_time_s;
    if (t?.peak_memory_bytes !== undefined) attrs['ferry:peak_memory_bytes'] = t.peak_memory_bytes;
    if (t?.interpreter !== undefined) attrs['ferry:interpreter'] = t.interpreter;
    for (const [state, at] of Object.entries(r.transitions)) attrs[`ferry:transition_${state.replace(/[^A-Za-z0-9_]/g, '_')}`] = dateTime(at);
    doc.activity[activity] = attrs;
    // Each execution of a task that ran more than once: an activity of its own, naming its task.
    for (const a of r.attempt_history ?? []) {
      const attempt: ProvRecord = { 'prov:type': qualifiedName('ferry:Attempt'), 'ferry:attempt_of': qualifiedName(activity), 'ferry:attempt': a.attempt, 'ferry:outcome': a.outcome };
      if (a.reason !== undefined) attempt['ferry:reason'] = a.reason;
      if (a.host !== undefined) attempt['ferry:host'] = a.host;
      if (a.started_at !== undefined) attempt['prov:startTime'] = dateTime(a.started_at).$;
      if (a.ended_at !== undefined) attempt['prov:endTime'] = dateTime(a.ended_at).$;
      doc.activity[provIds.attempt(r.task_id, a.attempt)] = attempt;
    }

    const user = userAgent(r.owner);
    const submitter = relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': user, 'prov:role': qualifiedName('ferry:submitter') });
    if (r.endpoint_id !== null) {
      const endpoint = provIds.endpoint(r.endpoint_id);
      doc.agent[endpoint] ??= { 'prov:type': qualifiedName('prov:SoftwareAgent'), 'ferry:endpoint_id': r.endpoint_id };
      relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': endpoint, 'prov:role': qualifiedName('ferry:endpoint') });
      relation('actedOnBehalfOf', { 'prov:delegate': endpoint, 'prov:responsible': user, 'prov:activity': activity });
    }
    if (r.hostname !== null) {
      const host = provIds.host(r.hostname);
      doc.agent[host] ??= { 'prov:type': qualifiedName('prov:SoftwareAgent'), 'ferry:hostname': r.hostname };
      relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': host, 'prov:role': qualifiedName('ferry:worker_host') });
    }
    if (r.function_uuid !== null) {
      const fn = provIds.fn(r.function_uuid);
      if (!doc.entity[fn]) {
        const fnAttrs: ProvRecord = { 'prov:type': [qualifiedName('ferry:Function'), qualifiedName('prov:Plan')], 'ferry:function_uuid': r.function_uuid };
        const info = context.functions?.get(r.function_uuid);
        if (info) Object.assign(fnAttrs, { 'prov:label': info.name, 'ferry:function_name': info.name, 'ferry:runtime': info.runtime, 'ferry:code_sha256': info.code_sha256 });
        doc.entity[fn] = fnAttrs;
      }
      relation('used', { 'prov:activity': activity, 'prov:entity': fn, 'prov:role': qualifiedName('ferry:function') });
      // The function is the plan of the submitter's association.
      submitter['prov:plan'] = fn;
    }
    const usedIds: string[] = [];
    for (const item of r.used) {
      const id = entityOf(item, r.task_id, false);
      doc.entity[id] = entityAttrs(item, doc.entity[id]);
      if (item.object !== undefined) objectIds.add(item.object);
      usedIds.push(id);
      relation('used', { 'prov:activity': activity, 'prov:entity': id, 'prov:role': item.role });
    }
    for (const item of r.generated) {
      const id = entityOf(item, r.task_id, true);
      doc.entity[id] = entityAttrs(item, doc.entity[id]);
      if (item.object !== undefined) objectIds.add(item.object);
      const gen: ProvRecord = { 'prov:entity': id, 'prov:activity': activity, 'prov:role': item.role };
      if (r.ended_at !== null) gen['prov:time'] = dateTime(r.ended_at).$;
      relation('wasGeneratedBy', gen);
      relation('wasAttributedTo', { 'prov:entity': id, 'prov:agent': user });
      for (const from of usedIds) relation('wasDerivedFrom', { 'prov:generatedEntity': id, 'prov:usedEntity': from, 'prov:activity': activity });
    }
  }

  for (const objectId of objectIds) {
    const info = context.objects?.get(objectId);
    if (info) describeObject(doc, objectId, info, relation, userAgent);
  }
  return doc;
}

/** An object's digest, size and type; its ingest filters as a chain of activities ending in it. */
function describeObject(doc: ProvDocument, objectId: string, info: ObjectInfo, relation: (kind: RelationKind, rel: ProvRecord) => ProvRecord, userAgent: (sub: string) => string): void {
  const object = provIds.object(objectId);
  Object.assign(doc.entity[object]!, { 'ferry:sha256': info.sha256, 'ferry:size': info.size, 'ferry:content_type': info.content_type, 'ferry:created_at': dateTime(info.created_at) });
  if (info.filters.length === 0) return;
  const uploader = userAgent(info.owner);
  relation('wasAttributedTo', { 'prov:entity': object, 'prov:agent': uploader });
  let input = provIds.stage(objectId, 0);
  doc.entity[input] = { 'prov:type': qualifiedName('ferry:IngestInput'), 'prov:label': `bytes given to the first ingest filter of ${objectId}` };
  info.filters.forEach((filter, i) => {
    const position = i + 1;
    const last = position === info.filters.length;
    const activity = provIds.filter(objectId, position);
    const attrs: ProvRecord = { 'prov:type': qualifiedName('ferry:IngestFilter'), 'prov:label': filter.name, 'ferry:filter_name': filter.name, 'ferry:position': position, 'ferry:source_sha256': filter.source_sha256 };
    if (filter.params !== undefined) attrs['ferry:params'] = JSON.stringify(filter.params);
    if (last) attrs['prov:endTime'] = dateTime(info.created_at).$;
    doc.activity[activity] = attrs;
    const plan = provIds.filterSource(filter.source_sha256);
    doc.entity[plan] ??= { 'prov:type': [qualifiedName('ferry:FilterSource'), qualifiedName('prov:Plan')], 'ferry:sha256': filter.source_sha256 };
    relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': uploader, 'prov:plan': plan, 'prov:role': qualifiedName('ferry:uploader') });
    relation('used', { 'prov:activity': activity, 'prov:entity': input, 'prov:role': qualifiedName('ferry:filter_input') });
    const output = last ? object : provIds.stage(objectId, position);
    if (!last) doc.entity[output] = { 'prov:type': qualifiedName('ferry:IngestStage'), 'prov:label': `output of ingest filter ${position} (${filter.name}) of ${objectId}` };
    const gen: ProvRecord = { 'prov:entity': output, 'prov:activity': activity };
    if (last) gen['prov:time'] = dateTime(info.created_at).$;
    relation('wasGeneratedBy', gen);
    relation('wasDerivedFrom', { 'prov:generatedEntity': output, 'prov:usedEntity': input, 'prov:activity': activity });
    input = output;
  });
}

function entityAttrs(item: LineageItem, existing: ProvRecord | undefined): ProvRecord {
  const attrs: ProvRecord = { ...(existing ?? {}) };
  if (item.object !== undefined) {
    attrs['prov:type'] = qualifiedName('ferry:DataObject');
    attrs['ferry:object_id'] = item.object;
  } else {
    attrs['prov:type'] = qualifiedName('ferry:Value');
  }
  if (item.digest !== undefined) attrs['ferry:sha256'] = item.digest;
  // A small inline value is its own direct representation (PROV-DM's prov:value), as JSON text.
  if (item.value !== undefined) attrs['prov:value'] = item.value;
  return attrs;
}
