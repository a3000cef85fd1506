// Task routes: submit to an endpoint, read (and wait for) task docs, batch status, task groups,
// cancel, and /v3/run. A task id names its endpoint, so each call goes to the one hub that owns it.

import { z } from 'zod';
import { BatchStatusRequest, BatchStatusResponse, LIMITS, RunHeaders, RunRequest, SubmissionHeaders, SubmitRequest, SubmitResponse, TaskDoc, TaskGroupDoc, TaskGroupId, TaskId, Uuid, WaitQuery } from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import { endpointOfId } from '../../protocol/ids';
import { serverTiming, type TraceHops } from '../../protocol/trace';
import { hubOf, type Submission } from '../endpoint-hub/endpoint-hub';
import { submissionFingerprint } from '../endpoint-hub/submit-keys';
import { resolveFunctions } from '../function-cache';
import { unwrap } from '../hub-reply';
import { admissionHeaders, admitSubmission } from '../rate-limit/rate-limit';
import { taskStoreKind, type GatewayEnv } from '../env';
import { spilledResultKey, taskDocJson } from '../endpoint-hub/task-doc-json';
import { redisTaskStoreFor } from '../task-store/redis-task-store-for';
import { defineRoute, jsonText, type RouteTable } from '../route-spec';
import { isOverBytes } from '../text-size';

const EndpointParams = z.object({ endpoint_id: Uuid });
const TaskParams = z.object({ task_id: TaskId });
const TaskGroupParams = z.object({ task_group_id: TaskGroupId });

const DEFAULT_RUN_WAIT_S = 30;

function encodePayload(payload: { args: unknown[]; kwargs?: Record<string, unknown> | undefined }): string {
  const text = JSON.stringify(payload);
  if (isOverBytes(text, LIMITS.maxPayloadBytes)) {
    throw new FerryError('PAYLOAD_TOO_LARGE', `a task payload is over ${LIMITS.maxPayloadBytes} bytes: pass large data by reference ({"$ref": ...}, see PUT /v3/objects)`, {
      max_payload_bytes: LIMITS.maxPayloadBytes,
    });
  }
  return text;
}

/**
 * With TASK_STORE=redis, task docs are read from Redis by the worker itself, not through the
 * endpoint's hub: reads never queue behind one object. Each record carries its submitter, checked
 * here as the hub checks the endpoint's owner (the only one who may submit to it).
 */
async function readDocsFromRedis(env: GatewayEnv, owner: string, ids: readonly string[]): Promise<Map<string, string>> {
  const store = redisTaskStoreFor(env);
  const records = (await store.readRecords(ids)).filter((r) => r.owner === owner);
  const docs = await Promise.all(
    records.map(async (r) => {
      let result = r.result_json;
      const spilled = spilledResultKey(r);
      if (spilled !== null) result = (await (await env.OBJECTS.get(spilled))?.text()) ?? null;
      return taskDocJson(r, endpointOfId(r.task_id)!, result);
    }),
  );
  return new Map(records.map((r, i) => [r.task_id, docs[i]!]));
}

function endpointOf(id: string, what: string): string {
  const endpointId = endpointOfId(id);
  if (endpointId === null) throw new FerryError('NOT_FOUND', `${what} not found`);
  return endpointId;
}

export function registerTaskRoutes(table: RouteTable): void {
  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/endpoints/{endpoint_id}/submit',
      summary: 'Submit a batch of tasks; every task is stored before the answer',
      auth: 'user',
      keys: { action: 'submit', endpoints: ({ params }) => [params.endpoint_id], functions: ({ body }) => Object.keys(body.tasks) },
      params: EndpointParams,
      body: SubmitRequest,
      headers: SubmissionHeaders,
      response: SubmitResponse,
      errors: ['TOO_MANY_TASKS', 'NOT_FOUND', 'FUNCTION_NOT_PERMITTED', 'FUNCTION_NOT_SHARED', 'FORBIDDEN', 'INVALID_ID', 'RATE_LIMITED', 'IDEMPOTENCY_KEY_REUSED'],
      example: { tasks: { '{function_uuid}': [{ args: [1, 2] }, { args: [3], kwargs: { b: 4 } }] } },
    },
    async (c, { principal: { owner, key }, params, body, headers }) => {
      const functionUuids = Object.keys(body.tasks);
      let count = 0;
      for (const payloads of Object.values(body.tasks)) count += payloads.length;
      if (count > LIMITS.maxTasksPerRequest) {
        throw new FerryError('TOO_MANY_TASKS', `${count} tasks in one request; at most ${LIMITS.maxTasksPerRequest} (split the batch, same task_group_id)`, { max_tasks: LIMITS.maxTasksPerRequest });
      }
      const tasks: Submission['tasks'] = [];
      for (const [function_uuid, payloads] of Object.entries(body.tasks)) {
        for (const payload of payloads) tasks.push({ function_uuid, payload_json: encodePayload(payload) });
      }
      if (body.task_group_id !== undefined && endpointOfId(body.task_group_id) === null) throw new FerryError('INVALID_ID', 'task_group_id must be <endpoint_id>.<suffix>');
      // Counted before anything is stored: a refused request leaves no trace.
      const admission = await admitSubmission(c.env, owner, count);
      if (admission) for (const [name, value] of Object.entries(admissionHeaders(admission))) c.header(name, value);
      const { functions, foreign } = await resolveFunctions(c.env, owner, functionUuids);
      const submission: Submission = {
        foreign,
        key_id: key?.key_id,
        request_id: crypto.randomUUID(),
        task_group_id: body.task_group_id,
        workflow_id: body.workflow_id,
        campaign_id: body.campaign_id,
        resource_specification_json: body.resource_specification === undefined ? undefined : JSON.stringify(body.resource_specification),
        functions,
        tasks,
      };
      submission.idempotency = await idempotencyOf(headers['idempotency-key'], submission);
      const submitted = unwrap(await hubOf(c.env, params.endpoint_id).submit(owner, submission));
      const byFunction: Record<string, string[]> = {};
      for (let i = 0; i < tasks.length; i++) (byFunction[tasks[i]!.function_uuid] ??= []).push(submitted.task_ids[i]!);
      return { request_id: submitted.request_id, task_group_id: submitted.task_group_id, endpoint_id: params.endpoint_id, tasks: byFunction };
    },
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v2/tasks/{task_id}',
      summary: 'A task doc; ?wait=S holds the answer until the task ends or S seconds pass',
      auth: 'user',
      keys: { action: 'read_results', endpoints: ({ params }) => [endpointOfId(params.task_id)] },
      params: TaskParams,
      query: WaitQuery,
      response: TaskDoc,
      errors: ['NOT_FOUND'],
    },
    async (c, { principal: { owner }, params, query }) => {
      const waitMs = Math.round((query.wait ?? 0) * 1000);
      const endpointId = endpointOf(params.task_id, 'task');
      if (taskStoreKind(c.env) === 'redis') {
        // A finished task (or no wait) needs no hub: only a wait is woken by the endpoint's object.
        const doc = (await readDocsFromRedis(c.env, owner, [params.task_id])).get(params.task_id);
        // Not the caller's submission: the hub decides (the endpoint's owner reads a guest's task; anyone else gets 404).
        if (doc !== undefined && (waitMs === 0 || /^\{"task_id":"[^"]*","status":"(success|failed|cancelled)"/.test(doc))) return jsonText(doc);
      }
      return jsonText(unwrap(await hubOf(c.env, endpointId).taskDoc(owner, params.task_id, waitMs)));
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v2/batch_status',
      summary: 'Task docs of many tasks; ids that are unknown or not the caller\'s are left out',
      auth: 'user',
      keys: { action: 'read_results', endpoints: ({ body }) => body.task_ids.map(endpointOfId) },
      body: BatchStatusRequest,
      response: BatchStatusResponse,
      errors: [],
      example: { task_ids: ['{task_id}'] },
    },
    async (c, { principal: { owner }, body }) => {
      const byEndpoint = new Map<string, string[]>();
      for (const id of new Set(body.task_ids)) {
        const endpointId = endpointOfId(id);
        if (endpointId !== null) (byEndpoint.get(endpointId) ?? byEndpoint.set(endpointId, []).get(endpointId)!).push(id);
      }
      const answers =
        taskStoreKind(c.env) === 'redis'
          ? [Object.fromEntries(await readDocsFromRedis(c.env, owner, [...byEndpoint.values()].flat()))]
          : await Promise.all([...byEndpoint].map(([endpointId, ids]) => hubOf(c.env, endpointId).taskDocs(owner, ids)));
      const entries: string[] = [];
      for (const docs of answers) for (const [id, doc] of Object.entries(docs)) entries.push(`${JSON.stringify(id)}:${doc}`);
      return jsonText(`{"response":"batch","results":{${entries.join(',')}}}`);
    },
  );

  defineRoute(
    table,
    { method: 'get', path: '/v2/taskgroup/{task_group_id}', summary: 'The tasks of a task group', auth: 'user', keys: { action: 'read_results', endpoints: ({ params }) => [endpointOfId(params.task_group_id)] }, params: TaskGroupParams, response: TaskGroupDoc, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      const tasks = unwrap(await hubOf(c.env, endpointOf(params.task_group_id, 'task group')).taskGroup(owner, params.task_group_id));
      return { taskgroup_id: params.task_group_id, tasks: tasks.map((t) => ({ id: t.task_id, created_at: new Date(t.created_at * 1000).toISOString() })) };
    },
  );

  defineRoute(
    table,
    {
      method: 'delete',
      path: '/v2/tasks/{task_id}',
      summary: 'Cancel a task that has not finished',
      auth: 'user',
      keys: 'none',
      params: TaskParams,
      response: TaskDoc,
      errors: ['NOT_FOUND', 'TASK_ALREADY_FINISHED'],
    },
    async (c, { principal: { owner }, params }) => jsonText(unwrap(await hubOf(c.env, endpointOf(params.task_id, 'task')).cancel(owner, params.task_id))),
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/run',
      summary: 'Submit one task and wait for it: 200 with the finished doc, or 202 with the doc so far',
      auth: 'user',
      keys: { action: 'run', endpoints: ({ body }) => [body.endpoint_id], functions: ({ body }) => [body.function_uuid] },
      body: RunRequest,
      headers: RunHeaders,
      response: TaskDoc,
      otherResponses: [{ status: 202, description: 'The task did not finish within `wait` seconds; the doc so far', schema: TaskDoc }],
      errors: ['NOT_FOUND', 'FUNCTION_NOT_PERMITTED', 'FUNCTION_NOT_SHARED', 'FORBIDDEN', 'RATE_LIMITED', 'IDEMPOTENCY_KEY_REUSED'],
      example: { endpoint_id: '{endpoint_id}', function_uuid: '{function_uuid}', args: [1, 2], wait: 1 },
    },
    async (c, { principal: { owner, key }, body, headers }) => {
      const trace: TraceHops | undefined = headers['ferry-trace'] ? [['gateway.routed', Date.now()]] : undefined;
      await admitSubmission(c.env, owner, 1);
      const payload_json = encodePayload(body.kwargs === undefined ? { args: body.args ?? [] } : { args: body.args ?? [], kwargs: body.kwargs });
      const { functions, foreign } = await resolveFunctions(c.env, owner, [body.function_uuid]);
      const waitMs = Math.round((body.wait ?? DEFAULT_RUN_WAIT_S) * 1000);
      const submission: Submission = { foreign, key_id: key?.key_id, request_id: crypto.randomUUID(), workflow_id: body.workflow_id, campaign_id: body.campaign_id, functions, tasks: [{ function_uuid: body.function_uuid, payload_json }] };
      submission.idempotency = await idempotencyOf(headers['idempotency-key'], submission);
      submission.trace = trace;
      const outcome = unwrap(await hubOf(c.env, body.endpoint_id).run(owner, submission, waitMs));
      const answer = jsonText(outcome.doc, outcome.final ? 200 : 202);
      if (outcome.trace) answer.headers.set('server-timing', serverTiming(outcome.trace));
      return answer;
    },
  );
}

/** A submission's Idempotency-Key with the digest of what it asks for; none without a key. */
async function idempotencyOf(key: string | undefined, submission: Submission): Promise<Submission['idempotency']> {
  return key === undefined ? undefined : { key, fingerprint: await submissionFingerprint(submission) };
}
