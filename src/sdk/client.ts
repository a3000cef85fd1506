// The Ferry SDK: a thin, typed client of the gateway's REST API on `fetch` alone, so it runs in
// Node scripts, notebooks and browsers. Large batches are split into requests under the
// gateway's limits and stay in one task group.

import serialize from 'serialize-javascript';
import type {
  EndpointDoc, EndpointStatus, FunctionDoc, Json, Payload, RegisterEndpointRequest, RegisterEndpointResponse, SubmitResponse, TaskDoc,
} from '../protocol/api';
import { LIMITS } from '../protocol/api';
import type { ProvDocument, TaskLineage } from '../provenance/prov-document';
import { NO_EXCEPTION_RECORDED } from '../protocol/errors';
import { FerryApiError, TaskCancelledError, TaskFailedError, WaitTimeoutError } from './errors';
import { streamEvents, type EventStreamOptions, type EventsSelector, type FerryEvent } from './event-stream';
import { Executor, type ExecutorOptions } from './executor';
import { ApiCaller, type ClientOptions } from './api-call';

export type { ClientOptions, RetryInfo } from './api-call';
import type { ObjectMeta, ObjectRef, ObjectStats, Runtime } from '../protocol/api';
import {
  deleteObject, getObject, getObjectStream, headObject, objectMeta, objectStats, putObject, readResultObject, resultRefOf,
  type GetOptions, type ObjectHead, type ObjectTransport, type PutData, type PutOptions,
} from './objects';

export interface RegisterFunctionOptions {
  name?: string;
  description?: string;
  /** `python`: `fn` is Python source defining the function named `name` (required then). */
  runtime?: Runtime;
}

export interface SubmitOptions {
  task_group_id?: string;
  workflow_id?: string;
  campaign_id?: string;
  resource_specification?: Record<string, Json>;
}

export interface BatchProgress {
  submitted: number;
  total: number;
}

export interface SubmitBatchOptions extends SubmitOptions {
  onProgress?: (progress: BatchProgress) => void;
  /** Tasks per request (≤ 5,000). */
  maxTasksPerRequest?: number;
  /** Bytes per request body (≤ the gateway's limit, 10 MB by default). */
  maxBytesPerRequest?: number;
}

export interface BatchSubmission {
  task_group_id: string;
  task_ids: string[];
}

export interface ResultOptions {
  /** Seconds to wait for the task; default 300. */
  timeout?: number;
  /**
   * A result the endpoint stored as an object (bytes, or JSON over 512 KiB; `details.result_ref`)
   * is downloaded by default: bytes as a Uint8Array, JSON parsed. `false` answers the reference
   * `{$ref, size, sha256, content_type}` itself, for `getStream()` or to pass on to another task.
   */
  resolve?: boolean;
}

export interface WaitOptions {
  /** Seconds to wait in all; default 300. */
  timeout?: number;
  onProgress?: (progress: { done: number; total: number }) => void;
}

const BATCH_STATUS_CHUNK = 1000;

export class Client {
  readonly url: string;
  private readonly token: string;
  private readonly fetchImpl: typeof fetch;
  private readonly api: ApiCaller;

  constructor(options: ClientOptions) {
    this.api = new ApiCaller(options);
    this.url = this.api.url;
    this.token = options.token;
    this.fetchImpl = this.api.fetchImpl;
  }

  /** Requests retried after a 429 since this client was made. */
  get rateLimitedRetries(): number {
    return this.api.rateLimitedRetries;
  }

  /** Registers a function (a JS function value or its source) and returns its id. */
  async registerFunction(fn: ((...args: never[]) => unknown) | string, options: RegisterFunctionOptions = {}): Promise<string> {
    const code = typeof fn === 'function' ? serialize(fn) : fn;
    const name = options.name ?? (typeof fn === 'function' && fn.name ? fn.name : 'anonymous');
    const body = {
      function_name: name,
      function_code: code,
      ...(options.description !== undefined ? { description: options.description } : {}),
      meta: { runtime: options.runtime ?? 'js' },
    };
    // The id is derived from the owner and the code: registering twice is harmless.
    const res = await this.api.call<{ function_uuid: string }>('POST', '/v3/functions', body, [], { repeatable: true });
    return res.function_uuid;
  }

  getFunction(functionId: string): Promise<FunctionDoc> {
    return this.api.call('GET', `/v2/functions/${enc(functionId)}`);
  }

  async deleteFunction(functionId: string): Promise<void> {
    await this.api.call('DELETE', `/v2/functions/${enc(functionId)}`);
  }

  registerEndpoint(request: RegisterEndpointRequest): Promise<RegisterEndpointResponse> {
    return this.api.call('POST', '/v3/endpoints', request);
  }

  listEndpoints(): Promise<EndpointDoc[]> {
    return this.api.call('GET', '/v2/endpoints');
  }

  getEndpoint(endpointId: string): Promise<EndpointDoc> {
    return this.api.call('GET', `/v2/endpoints/${enc(endpointId)}`);
  }

  /** Deletes an endpoint: its agent is disconnected and later submits are refused. */
  async deleteEndpoint(endpointId: string): Promise<void> {
    await this.api.call('DELETE', `/v2/endpoints/${enc(endpointId)}`);
  }

  endpointStatus(endpointId: string): Promise<EndpointStatus> {
    return this.api.call('GET', `/v2/endpoints/${enc(endpointId)}/status`);
  }

  /** Submits one task; returns its id. */
  async submit(endpointId: string, functionId: string, args: Json[] = [], kwargs?: Record<string, Json>, options: SubmitOptions = {}): Promise<string> {
    const payload: Payload = kwargs ? { args, kwargs } : { args };
    const res = await this.submitRequest(endpointId, { [functionId]: [payload] }, options);
    return res.tasks[functionId]![0]!;
  }

  /**
   * Submits many tasks of one function, split into requests under the gateway's limits; every
   * request joins the same task group. Task ids come back in the order of `payloads`.
   */
  async submitBatch(endpointId: string, functionId: string, payloads: Array<Json[] | Payload>, options: SubmitBatchOptions = {}): Promise<BatchSubmission> {
    let maxTasks = Math.min(options.maxTasksPerRequest ?? LIMITS.maxTasksPerRequest, LIMITS.maxTasksPerRequest);
    const maxBytes = (options.maxBytesPerRequest ?? LIMITS.defaultMaxRequestBytes) - 4096;
    const normalized: Payload[] = payloads.map((p) => (Array.isArray(p) ? { args: p } : p));
    let groupId = options.task_group_id;
    const taskIds: string[] = [];
    let start = 0;
    while (start < normalized.length) {
      let end = start;
      let bytes = 0;
      while (end < normalized.length && end - start < maxTasks) {
        const size = JSON.stringify(normalized[end]).length + 1;
        if (end > start && bytes + size > maxBytes) break;
        bytes += size;
        end++;
      }
      const { onProgress: _p, maxTasksPerRequest: _t, maxBytesPerRequest: _b, ...submitOptions } = options;
      let res: SubmitResponse;
      try {
        res = await this.submitRequest(endpointId, { [functionId]: normalized.slice(start, end) }, { ...submitOptions, ...(groupId ? { task_group_id: groupId } : {}) });
      } catch (err) {
        // A gateway with a per-window task limit names it: split smaller and go on.
        const limit = smallerTaskLimit(err, end - start);
        if (limit === null) throw err;
        maxTasks = limit;
        continue;
      }
      groupId = res.task_group_id;
      taskIds.push(...res.tasks[functionId]!);
      start = end;
      options.onProgress?.({ submitted: start, total: normalized.length });
    }
    return { task_group_id: groupId ?? '', task_ids: taskIds };
  }

  /**
   * The raw submit route: `{function_uuid: [payload, …]}` in one request. The idempotency key (a new
   * UUID unless given) lets the request be sent again without storing its tasks twice.
   */
  submitRequest(endpointId: string, tasks: Record<string, Payload[]>, options: SubmitOptions = {}, idempotencyKey: string = crypto.randomUUID()): Promise<SubmitResponse> {
    return this.api.call('POST', `/v3/endpoints/${enc(endpointId)}/submit`, { tasks, ...options }, [], { idempotencyKey });
  }

  /** A task's document; with `wait`, the gateway holds the answer until it ends or `wait` s pass. */
  getTask(taskId: string, options: { wait?: number } = {}): Promise<TaskDoc> {
    const q = options.wait !== undefined ? `?wait=${Math.min(options.wait, LIMITS.maxWaitSeconds)}` : '';
    return this.api.call('GET', `/v2/tasks/${enc(taskId)}${q}`);
  }

  /**
   * Waits for a task and returns its result (read from the objects API when the endpoint stored it
   * as an object, see ResultOptions.resolve); throws TaskFailedError / TaskCancelledError.
   */
  async result(taskId: string, options: ResultOptions = {}): Promise<Json | Uint8Array> {
    const timeout = options.timeout ?? 300;
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      const doc = await this.getTask(taskId, { wait: Math.min(left, LIMITS.maxWaitSeconds) });
      if (doc.status === 'success') return options.resolve === false ? (doc.result ?? null) : this.resolveResult(doc);
      if (doc.status === 'failed') throw new TaskFailedError(taskId, doc.exception ?? NO_EXCEPTION_RECORDED);
      if (doc.status === 'cancelled') throw new TaskCancelledError(taskId);
      if (Date.now() >= deadline) throw new WaitTimeoutError([taskId], timeout);
    }
  }

  /**
   * The result of a finished task's doc (from getTask, batchStatus, waitAll, run): its value, or for
   * a result stored as an object (`details.result_ref`) the object's bytes, or its JSON parsed.
   */
  async resolveResult(doc: TaskDoc): Promise<Json | Uint8Array> {
    const ref = resultRefOf(doc);
    return ref ? readResultObject(this.objectTransport(), ref) : (doc.result ?? null);
  }

  /** Task docs of many tasks (unknown ids are absent from the answer). */
  async batchStatus(taskIds: string[]): Promise<Record<string, TaskDoc>> {
    const out: Record<string, TaskDoc> = {};
    for (let i = 0; i < taskIds.length; i += BATCH_STATUS_CHUNK) {
      // A read sent as POST (the id list is long): safe to send again.
      const res = await this.api.call<{ results: Record<string, TaskDoc> }>('POST', '/v2/batch_status', { task_ids: taskIds.slice(i, i + BATCH_STATUS_CHUNK) }, [], { repeatable: true });
      Object.assign(out, res.results);
    }
    return out;
  }

  /**
   * Waits until every task has ended and returns their docs in the order of `taskIds`. Polls only
   * the tasks still open, with a long-poll on one of them so the wait is driven by results: the
   * task a quarter of the way into the open ones (they tend to end in order), so that each poll
   * finds about a quarter of them ended and a batch costs a few polls, not one per result.
   */
  async waitAll(taskIds: string[], options: WaitOptions = {}): Promise<TaskDoc[]> {
    const timeout = options.timeout ?? 300;
    const deadline = Date.now() + timeout * 1000;
    const done = new Map<string, TaskDoc>();
    let open = [...taskIds];
    for (;;) {
      const docs = await this.batchStatus(open);
      const still: string[] = [];
      for (const id of open) {
        const doc = docs[id];
        if (doc && (doc.status === 'success' || doc.status === 'failed' || doc.status === 'cancelled')) done.set(id, doc);
        else still.push(id);
      }
      open = still;
      options.onProgress?.({ done: done.size, total: taskIds.length });
      if (open.length === 0) return taskIds.map((id) => done.get(id)!);
      if (Date.now() >= deadline) throw new WaitTimeoutError(open, timeout);
      // Hold until the task a quarter into the open ones ends (or a second passes), then look again.
      await this.getTask(open[Math.floor(open.length / 4)]!, { wait: 1 });
    }
  }

  /** A task group's task ids and creation times, in submission order. */
  async taskGroup(taskGroupId: string): Promise<Array<{ task_id: string; created_at: string }>> {
    const res = await this.api.call<{ tasks: Array<{ id: string; created_at: string }> }>('GET', `/v2/taskgroup/${enc(taskGroupId)}`);
    return res.tasks.map((t) => ({ task_id: t.id, created_at: t.created_at }));
  }

  /**
   * The event stream of a task group, an endpoint, a workflow or task ids (GET /v3/events): each
   * task state change (the doc, result inline once it ended) and endpoint status change. It
   * reconnects by itself with the last event's id, and ends when `signal` aborts or the loop is left.
   */
  events(selector: EventsSelector, options: Pick<EventStreamOptions, 'lastEventId' | 'signal' | 'backoff' | 'onReconnect'> = {}): AsyncGenerator<FerryEvent, void, undefined> {
    return streamEvents({ url: this.url, token: this.token, fetch: this.fetchImpl, selector, ...options });
  }

  /** Futures over one task group, settled by its event stream (see executor.ts). */
  executor(options: ExecutorOptions): Executor {
    return new Executor(this, options);
  }

  /** Cancels a task that has not finished; returns its doc (status `cancelled`). */
  cancel(taskId: string): Promise<TaskDoc> {
    return this.api.call('DELETE', `/v2/tasks/${enc(taskId)}`);
  }

  /** One call for an instrument: submit and wait up to `wait` seconds (default 30). */
  run(endpointId: string, functionId: string, args: Json[] = [], kwargs?: Record<string, Json>, wait?: number): Promise<TaskDoc> {
    const body = { endpoint_id: endpointId, function_uuid: functionId, args, ...(kwargs ? { kwargs } : {}), ...(wait !== undefined ? { wait } : {}) };
    return this.api.call('POST', '/v3/run', body, [202], { idempotencyKey: crypto.randomUUID() });
  }

  // ── Objects (data by reference): src/sdk/objects.ts ──

  /** Uploads bytes once and answers `{$ref, size, sha256}` to pass in task args. */
  put(data: PutData, options: PutOptions = {}): Promise<ObjectRef> {
    return putObject(this.objectTransport(), data, options);
  }

  /** An object's bytes, or a range of them (`{offset, length?}` or `{last}`). */
  get(ref: ObjectRef | string, options: GetOptions = {}): Promise<Uint8Array> {
    return getObject(this.objectTransport(), ref, options);
  }

  getStream(ref: ObjectRef | string, options: GetOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return getObjectStream(this.objectTransport(), ref, options);
  }

  head(ref: ObjectRef | string): Promise<ObjectHead> {
    return headObject(this.objectTransport(), ref);
  }

  objectMeta(ref: ObjectRef | string): Promise<ObjectMeta> {
    return objectMeta(this.objectTransport(), ref);
  }

  deleteObject(ref: ObjectRef | string): Promise<void> {
    return deleteObject(this.objectTransport(), ref);
  }

  /** Objects stored and bytes the gateway served from them (per reader). */
  objectStats(): Promise<ObjectStats> {
    return objectStats(this.objectTransport());
  }

  /** An ended task's lineage as a W3C PROV-JSON document. */
  taskProvenance(taskId: string): Promise<ProvDocument> {
    return this.api.call('GET', `/v3/provenance/tasks/${enc(taskId)}`);
  }

  /** Lineage records of a workflow and/or campaign (all of yours with neither), oldest first. */
  async lineageRecords(query: { workflow_id?: string; campaign_id?: string; limit?: number } = {}): Promise<TaskLineage[]> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    return (await this.api.call<{ records: TaskLineage[] }>('GET', `/v3/provenance?${params}`)).records;
  }

  private objectTransport(): ObjectTransport {
    return { url: this.url, token: this.token, fetch: this.fetchImpl };
  }
}

/** The smaller per-request task limit a 413 TOO_MANY_TASKS names, or null when it names none. */
function smallerTaskLimit(err: unknown, sent: number): number | null {
  if (!(err instanceof FerryApiError) || err.code !== 'TOO_MANY_TASKS') return null;
  const max = (err.details as { max_tasks?: unknown } | undefined)?.max_tasks;
  return typeof max === 'number' && max >= 1 && max < sent ? Math.floor(max) : null;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
