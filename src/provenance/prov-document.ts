// A task's lineage record (Ferry's own tasks and Flowcept-style task messages alike) and its
// W3C PROV-JSON rendering (https://www.w3.org/Submission/prov-json/). Runtime-free: digests are
// computed by the caller (crypto.subtle in the gateway) and passed in.
//
// Identifiers: `ferry:task/<id>` (activity), `ferry:function/<uuid>`, `ferry:object/<id>` (a data
// object by reference), `ferry:value/<sha256>` (an inline input), `ferry:result/<task_id>` (an inline
// result) as entities; `ferry:user/<sub>`, `ferry:endpoint/<id>`, `ferry:host/<name>` as agents.

/** One thing a task used or generated: a data object by id, or an inline value by its sha256. */
export interface LineageItem {
  /** The argument's position or name (`args.0`, `kwargs.x`), `result`, or an event's map key. */
  role: string;
  /** A data object's id (`{"$ref": id}`, or an id an external system reports). */
  object?: string;
  /** sha256 (hex) of the value's JSON text, for inline values. */
  digest?: string;
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
export type ProvValue = string | number | boolean | TypedLiteral;
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

function local(part: string): string {
  return encodeURIComponent(part);
}

export const provIds = {
  task: (id: string) => `ferry:task/${local(id)}`,
  fn: (uuid: string) => `ferry:function/${local(uuid)}`,
  object: (id: string) => `ferry:object/${local(id)}`,
  value: (digest: string) => `ferry:value/${digest}`,
  result: (taskId: string) => `ferry:result/${local(taskId)}`,
  user: (sub: string) => `ferry:user/${local(sub)}`,
  endpoint: (id: string) => `ferry:endpoint/${local(id)}`,
  host: (name: string) => `ferry:host/${local(name)}`,
};

export function dateTime(unixSeconds: number): TypedLiteral {
  return { $: new Date(unixSeconds * 1000).toISOString(), type: 'xsd:dateTime' };
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

/** One PROV-JSON document for any number of records: shared entities (a data object one task generated and another used) appear once, so workflows join in one graph. */
export function provDocument(records: readonly TaskLineage[]): ProvDocument {
  const doc = emptyProvDocument();
  let n = 0;
  const relation = (kind: keyof ProvDocument, rel: ProvRecord) => {
    (doc[kind] as Record<string, ProvRecord>)[`_:${kind}${++n}`] = rel;
  };
  for (const r of records) {
    const activity = provIds.task(r.task_id);
    const attrs: ProvRecord = { 'prov:type': 'ferry:Task', 'ferry:source': r.source, 'ferry:status': r.status, 'ferry:attempts': r.attempts };
    if (r.started_at !== null) attrs['prov:startTime'] = dateTime(r.started_at).$;
    if (r.ended_at !== null) attrs['prov:endTime'] = dateTime(r.ended_at).$;
    if (r.workflow_id !== null) attrs['ferry:workflow_id'] = r.workflow_id;
    if (r.campaign_id !== null) attrs['ferry:campaign_id'] = r.campaign_id;
    if (r.task_group_id !== null) attrs['ferry:task_group_id'] = r.task_group_id;
    if (r.activity_id !== null) attrs['ferry:activity_id'] = r.activity_id;
    for (const [state, at] of Object.entries(r.transitions)) attrs[`ferry:transition_${state.replace(/-/g, '_')}`] = dateTime(at);
    doc.activity[activity] = attrs;

    const user = provIds.user(r.owner);
    doc.agent[user] = { 'prov:type': 'prov:Person' };
    relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': user, 'prov:role': 'ferry:submitter' });
    if (r.endpoint_id !== null) {
      const endpoint = provIds.endpoint(r.endpoint_id);
      doc.agent[endpoint] = { 'prov:type': 'prov:SoftwareAgent' };
      relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': endpoint, 'prov:role': 'ferry:endpoint' });
      relation('actedOnBehalfOf', { 'prov:delegate': endpoint, 'prov:responsible': user, 'prov:activity': activity });
    }
    if (r.hostname !== null) {
      const host = provIds.host(r.hostname);
      doc.agent[host] = { 'prov:type': 'prov:SoftwareAgent', 'ferry:hostname': r.hostname };
      relation('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': host, 'prov:role': 'ferry:worker_host' });
    }
    if (r.function_uuid !== null) {
      const fn = provIds.fn(r.function_uuid);
      doc.entity[fn] = { 'prov:type': 'ferry:Function' };
      relation('used', { 'prov:activity': activity, 'prov:entity': fn, 'prov:role': 'ferry:function' });
      // The function is the plan of the submitter's association.
      const assoc = Object.values(doc.wasAssociatedWith).find((a) => a['prov:activity'] === activity && a['prov:agent'] === user);
      if (assoc) assoc['prov:plan'] = fn;
    }
    const usedIds: string[] = [];
    for (const item of r.used) {
      const id = entityOf(item, r.task_id, false);
      doc.entity[id] = entityAttrs(item, doc.entity[id]);
      usedIds.push(id);
      relation('used', { 'prov:activity': activity, 'prov:entity': id, 'prov:role': item.role });
    }
    for (const item of r.generated) {
      const id = entityOf(item, r.task_id, true);
      doc.entity[id] = entityAttrs(item, doc.entity[id]);
      const gen: ProvRecord = { 'prov:entity': id, 'prov:activity': activity, 'prov:role': item.role };
      if (r.ended_at !== null) gen['prov:time'] = dateTime(r.ended_at).$;
      relation('wasGeneratedBy', gen);
      relation('wasAttributedTo', { 'prov:entity': id, 'prov:agent': user });
      for (const from of usedIds) relation('wasDerivedFrom', { 'prov:generatedEntity': id, 'prov:usedEntity': from, 'prov:activity': activity });
    }
  }
  return doc;
}

function entityAttrs(item: LineageItem, existing: ProvRecord | undefined): ProvRecord {
  const attrs: ProvRecord = { ...(existing ?? {}) };
  if (item.object !== undefined) {
    attrs['prov:type'] = 'ferry:DataObject';
    attrs['ferry:object_id'] = item.object;
  } else {
    attrs['prov:type'] = 'ferry:Value';
  }
  if (item.digest !== undefined) attrs['ferry:sha256'] = item.digest;
  return attrs;
}
