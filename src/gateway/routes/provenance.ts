// Provenance routes: a task's PROV-JSON document, a workflow's (or campaign's) records, the lineage
// of a data object (transitively, across workflows and endpoints), and the ingestion of
// Flowcept-style task messages from systems outside Ferry.
//
// Where records live: each EndpointHub indexes its own ended tasks (same transaction as the
// outcome, see lineage-index.ts); the owner's Registry indexes ingested messages. Queries fan out
// over the owner's endpoints (the Registry lists them) and the Registry: no second, eventually
// consistent copy to keep in step. Everything is per owner: another user's ids find nothing (404).

import { z } from 'zod';
import { JsonValue } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import { provDocument, type FunctionInfo, type LineageItem, type ObjectInfo, type ProvDocument, type TaskLineage } from '../../provenance/prov-document';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { itemsOf, sha256Hex, withDigests } from '../lineage/lineage-capture';
import type { GatewayEnv } from '../env';
import type { LineageQuery } from '../lineage/lineage-index';
import { objectIndexOf } from '../objects/object-index';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

const MAX_RECORDS = 10_000;
const MAX_DEPTH = 20;
const MAX_FRONTIER = 1_000;
/** Functions and objects looked up per PROV-JSON document (names, digests, ingest filters); more are named by id only. */
const MAX_LOOKUPS = 1_000;
const OBJECT_ID = /^[0-9a-f]{64}$/;

const LineageItemSchema = z.object({ role: z.string(), object: z.string().optional(), digest: z.string().optional(), value: z.string().optional().describe('a small inline value\'s JSON text (≤ 64 characters)') });
const LineageRecord = z
  .object({
    task_id: z.string(),
    source: z.enum(['ferry', 'event']),
    owner: z.string(),
    endpoint_id: z.string().nullable(),
    function_uuid: z.string().nullable(),
    activity_id: z.string().nullable(),
    workflow_id: z.string().nullable(),
    campaign_id: z.string().nullable(),
    task_group_id: z.string().nullable(),
    status: z.string(),
    attempts: z.number(),
    transitions: z.record(z.string(), z.number()),
    started_at: z.number().nullable(),
    ended_at: z.number().nullable(),
    hostname: z.string().nullable(),
    used: z.array(LineageItemSchema),
    generated: z.array(LineageItemSchema),
    telemetry: z.object({ wall_time_s: z.number().optional(), cpu_time_s: z.number().optional(), peak_memory_bytes: z.number().optional(), interpreter: z.string().optional() }).nullable().optional(),
    attempt_history: z
      .array(z.object({ attempt: z.number(), outcome: z.string(), reason: z.string().optional(), host: z.string().optional(), started_at: z.number().optional(), ended_at: z.number().optional() }))
      .optional()
      .describe('every execution, oldest first, when the task ran more than once: lost ones (with why), then the last'),
  });
const ProvJson = z
  .object({ prefix: z.record(z.string(), z.string()) })
  .catchall(z.record(z.string(), z.record(z.string(), z.unknown())))
  .describe('A W3C PROV-JSON document (https://www.w3.org/Submission/prov-json/)');

const TaskParams = z.object({ task_id: z.string().min(1).max(256) });
const ObjectParams = z.object({ id: z.string().min(1).max(512) });
const Format = z.enum(['records', 'prov-json']).default('records');
const WorkflowQuery = z.object({
  workflow_id: z.string().min(1).max(256).optional(),
  campaign_id: z.string().min(1).max(256).optional(),
  /** `count`: only how many records there are (`{"count": n}`), e.g. to wait until a batch's records are all written. */
  format: z.enum(['records', 'prov-json', 'count']).default('records'),
  limit: z.coerce.number().int().min(1).max(MAX_RECORDS).default(1_000),
});
/** A task's document is PROV-JSON unless asked for its record. */
const TaskQuery = z.object({ format: z.enum(['records', 'prov-json']).default('prov-json') });
const ObjectQuery = z.object({
  direction: z.enum(['up', 'down']).default('down'),
  depth: z.coerce.number().int().min(1).max(MAX_DEPTH).default(5),
  format: Format,
});

const Time = z.union([z.number(), z.string().max(64)]);
/** Object ids (a list), or a map of names to values (`{"$ref": id}` values are objects, others inline). */
const Items = z.union([z.array(z.string().min(1).max(512)).max(1_000), z.record(z.string(), JsonValue)]);
const FlowceptTask = z.object({
  task_id: z.string().min(1).max(256),
  workflow_id: z.string().max(256).optional(),
  campaign_id: z.string().max(256).optional(),
  activity_id: z.string().max(256).optional(),
  used: Items.optional(),
  generated: Items.optional(),
  submitted_at: Time.optional(),
  started_at: Time.optional(),
  ended_at: Time.optional(),
  status: z.string().max(64).optional(),
  hostname: z.string().max(256).optional(),
});
const EventsRequest = z.object({ messages: z.array(FlowceptTask).min(1).max(1_000) });
const EventsResponse = z.object({ accepted: z.number().int() });

/** Every record source of the owner: each endpoint's hub (deleted endpoints too), and the registry (ingested messages). */
async function countAll(env: GatewayEnv, owner: string, workflowId: string | null, campaignId: string | null): Promise<number> {
  const registry = registryOf(env, owner);
  const endpointIds = await registry.lineageEndpointIds();
  const counts = await Promise.all([...endpointIds.map((id) => hubOf(env, id).lineageCount(owner, workflowId, campaignId)), registry.lineageCount(owner, workflowId, campaignId)]);
  return counts.reduce((a, b) => a + b, 0);
}

async function queryAll(env: GatewayEnv, owner: string, query: LineageQuery): Promise<TaskLineage[]> {
  const registry = registryOf(env, owner);
  const endpointIds = await registry.lineageEndpointIds();
  const parts = await Promise.all([
    ...endpointIds.map((id) => hubOf(env, id).lineage(owner, query) as Promise<TaskLineage[]>),
    registry.lineage(owner, query) as Promise<TaskLineage[]>,
  ]);
  return withDigests(parts.flat());
}

/**
 * The records as one PROV-JSON document, with what they only name looked up in the owner's
 * Registry (function names, code digests) and ObjectIndex (content digests, sizes, ingest filters).
 */
async function renderProv(env: GatewayEnv, owner: string, records: readonly TaskLineage[]): Promise<ProvDocument> {
  const functionIds = new Set<string>();
  const objectIds = new Set<string>();
  for (const r of records) {
    if (r.function_uuid !== null && functionIds.size < MAX_LOOKUPS) functionIds.add(r.function_uuid);
    for (const item of [...r.used, ...r.generated]) if (item.object !== undefined && OBJECT_ID.test(item.object) && objectIds.size < MAX_LOOKUPS) objectIds.add(item.object);
  }
  const registry = registryOf(env, owner);
  const index = objectIndexOf(env, owner);
  const functions = new Map<string, FunctionInfo>();
  const objects = new Map<string, ObjectInfo>();
  await Promise.all([
    ...[...functionIds].map(async (id) => {
      const fn = await registry.getFunction(id);
      if (fn) functions.set(id, { name: fn.function_name, runtime: fn.meta.runtime, code_sha256: await sha256Hex(fn.function_code) });
    }),
    ...[...objectIds].map(async (id) => {
      const meta = await index.meta(id);
      if (meta) objects.set(id, { owner, sha256: meta.sha256, size: meta.size, content_type: meta.content_type, created_at: meta.created_at / 1000, filters: JSON.parse(meta.filters_json) as ObjectInfo['filters'] });
    }),
  ]);
  return provDocument(records, { functions, objects });
}

function seconds(time: number | string | undefined): number | null {
  if (time === undefined) return null;
  if (typeof time === 'number') return time;
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new FerryError('VALIDATION_ERROR', `not a time: ${time}`);
  return ms / 1000;
}

async function eventItems(items: z.output<typeof Items> | undefined): Promise<LineageItem[]> {
  if (items === undefined) return [];
  if (Array.isArray(items)) return items.map((object, i) => ({ role: String(i), object }));
  return itemsOf(Object.entries(items));
}

export function registerProvenanceRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/provenance/tasks/{task_id}',
      summary: "An ended task's W3C PROV-JSON document (`?format=records`: its lineage record as JSON, what the dashboard draws)",
      auth: 'user',
      keys: 'none',
      params: TaskParams,
      query: TaskQuery,
      response: z.union([ProvJson, z.object({ records: z.array(LineageRecord) })]),
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params, query: { format } }) => {
      const query: LineageQuery = { kind: 'task', task_id: params.task_id };
      const endpointId = endpointOfId(params.task_id);
      let records = endpointId === null ? [] : ((await hubOf(c.env, endpointId).lineage(owner, query)) as TaskLineage[]);
      if (records.length === 0) records = (await registryOf(c.env, owner).lineage(owner, query)) as TaskLineage[];
      await withDigests(records);
      if (records.length === 0) throw new FerryError('NOT_FOUND', 'no provenance for this task (not ended, or not yours)');
      return format === 'records' ? { records } : renderProv(c.env, owner, records);
    },
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/provenance',
      summary: "The caller's lineage records of a workflow and/or campaign (all of them without either), or one PROV-JSON bundle",
      auth: 'user',
      keys: 'none',
      query: WorkflowQuery,
      response: z.union([z.object({ records: z.array(LineageRecord) }), ProvJson, z.object({ count: z.number().int() })]),
      errors: [],
    },
    async (c, { principal: { owner }, query }) => {
      if (query.format === 'count') return { count: await countAll(c.env, owner, query.workflow_id ?? null, query.campaign_id ?? null) };
      const all = await queryAll(c.env, owner, { kind: 'workflow', workflow_id: query.workflow_id ?? null, campaign_id: query.campaign_id ?? null, limit: query.limit });
      const records = all.slice(0, query.limit);
      return query.format === 'prov-json' ? renderProv(c.env, owner, records) : { records };
    },
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/provenance/objects/{id}',
      summary: 'Lineage of a data object: the tasks that used it (down) or generated it (up), transitively to `depth` task steps',
      auth: 'user',
      keys: 'none',
      params: ObjectParams,
      query: ObjectQuery,
      response: z.union([z.object({ object_id: z.string(), direction: z.enum(['up', 'down']), steps: z.array(z.object({ depth: z.number().int(), record: LineageRecord })) }), ProvJson]),
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params, query }) => {
      const down = query.direction === 'down';
      const seenObjects = new Set([params.id]);
      const seenTasks = new Set<string>();
      const steps: Array<{ depth: number; record: TaskLineage }> = [];
      let frontier = [params.id];
      for (let depth = 1; depth <= query.depth && frontier.length > 0 && steps.length < MAX_RECORDS; depth++) {
        const records = await queryAll(c.env, owner, { kind: 'objects', object_ids: frontier.slice(0, MAX_FRONTIER), role: down ? 'used' : 'generated' });
        const next: string[] = [];
        for (const record of records) {
          if (seenTasks.has(record.task_id)) continue;
          seenTasks.add(record.task_id);
          steps.push({ depth, record });
          for (const item of down ? record.generated : record.used) {
            if (item.object === undefined || seenObjects.has(item.object)) continue;
            seenObjects.add(item.object);
            next.push(item.object);
          }
        }
        frontier = next;
      }
      if (steps.length === 0) throw new FerryError('NOT_FOUND', 'no task of yours used or generated this object');
      return query.format === 'prov-json' ? renderProv(c.env, owner, steps.map((s) => s.record)) : { object_id: params.id, direction: query.direction, steps };
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/provenance/events',
      summary: 'Ingest Flowcept-style task messages from outside Ferry; they join the caller\'s lineage graph by object id',
      auth: 'user',
      keys: 'none',
      body: EventsRequest,
      response: EventsResponse,
      errors: [],
      example: { messages: [{ task_id: 'external-1', workflow_id: 'wf-1', activity_id: 'reduce', used: ['raw-object-id'], generated: ['derived-object-id'], started_at: 1700000000, ended_at: 1700000001, status: 'FINISHED', hostname: 'login1' }] },
    },
    async (c, { principal: { owner }, body }) => {
      const records: TaskLineage[] = await Promise.all(
        body.messages.map(async (m) => {
          const [used, generated] = await Promise.all([eventItems(m.used), eventItems(m.generated)]);
          const started = seconds(m.started_at);
          const ended = seconds(m.ended_at);
          const submitted = seconds(m.submitted_at);
          const transitions: Record<string, number> = {};
          if (submitted !== null) transitions.submitted = submitted;
          if (started !== null) transitions.running = started;
          if (ended !== null) transitions.ended = ended;
          return {
            task_id: m.task_id,
            source: 'event' as const,
            owner,
            endpoint_id: null,
            function_uuid: null,
            activity_id: m.activity_id ?? null,
            workflow_id: m.workflow_id ?? null,
            campaign_id: m.campaign_id ?? null,
            task_group_id: null,
            status: m.status ?? 'unknown',
            attempts: 1,
            transitions,
            started_at: started,
            ended_at: ended,
            hostname: m.hostname ?? null,
            used,
            generated,
          };
        }),
      );
      await registryOf(c.env, owner).ingestLineage(owner, records);
      return { accepted: records.length };
    },
  );
}
