// Provenance routes: a task's PROV-JSON document, a workflow's (or campaign's) records, the lineage
// of a data object (transitively, across workflows and endpoints), and the ingestion of
// Flowcept-style task messages from systems outside Ferry.
//
// Where records live, and how queries fan out over them: lineage/owner-lineage.ts. Everything is
// per owner: another user's ids find nothing (404).

import { z } from 'zod';
import { JsonValue } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import type { TaskLineage } from '../../provenance/prov-document';
import { hubOf } from '../endpoint-hub/endpoint-hub';
import { withDigests } from '../lineage/lineage-capture';
import type { LineageQuery } from '../lineage/lineage-index';
import { countAll, eventItems, queryAll, renderProv, seconds } from '../lineage/owner-lineage';
import { registryOf } from '../registry';
import { defineRoute, type RouteTable } from '../route-spec';

const MAX_RECORDS = 10_000;
const MAX_DEPTH = 20;
const MAX_FRONTIER = 1_000;

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
