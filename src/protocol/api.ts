// The gateway's REST contract as zod schemas. The gateway validates requests with them and serves
// its OpenAPI document (`GET /v3/openapi.json`) from them; the SDK types its calls by them.

import { z } from 'zod';
import { TASK_STATES } from './task-state';

export const Uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID');

/** `<endpoint_id>.<suffix>` (src/protocol/ids.ts): a task id or a task group id. */
const ID_IN_ENDPOINT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-z]{16,32}$/;
export const TaskId = z.string().regex(ID_IN_ENDPOINT, 'must be <endpoint_id>.<suffix>');
export const TaskGroupId = z.string().regex(ID_IN_ENDPOINT, 'must be <endpoint_id>.<suffix>');

/** A JSON value (what args, kwargs and results are made of). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export const JsonValue: z.ZodType<Json> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(JsonValue), z.record(z.string(), JsonValue)]),
);

/** `js`: a function expression run in isolated-vm; `shell`: a command template; `python`: Python source defining `function_name`. */
export const Runtime = z.enum(['js', 'shell', 'python']);
export type Runtime = z.infer<typeof Runtime>;

export const FunctionMeta = z.strictObject({
  runtime: Runtime.default('js'),
  serde: z.string().max(64).optional(),
});

export const RegisterFunctionRequest = z.strictObject({
  function_name: z.string().min(1).max(256),
  function_code: z.string().min(1).max(1_000_000),
  description: z.string().max(4096).optional(),
  meta: FunctionMeta.optional(),
});
export type RegisterFunctionRequest = z.infer<typeof RegisterFunctionRequest>;

export const RegisterFunctionResponse = z.object({ function_uuid: Uuid });

export const FunctionDoc = z.object({
  function_uuid: Uuid,
  function_name: z.string(),
  function_code: z.string(),
  description: z.string().nullable(),
  meta: z.object({ runtime: Runtime, serde: z.string().optional() }),
  created_at: z.string(),
});
export type FunctionDoc = z.infer<typeof FunctionDoc>;

export const DeleteFunctionResponse = z.object({ result: z.literal(302) });

export const RegisterEndpointRequest = z.strictObject({
  endpoint_name: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  display_name: z.string().max(256).optional(),
  allowed_functions: z.array(Uuid).max(1000).optional(),
  metadata: z.record(z.string(), JsonValue).optional(),
});
export type RegisterEndpointRequest = z.infer<typeof RegisterEndpointRequest>;

export const RegisterEndpointResponse = z.object({
  endpoint_id: Uuid,
  token: z.string(),
  task_queue_info: z.object({ connection_url: z.string() }),
});
export type RegisterEndpointResponse = z.infer<typeof RegisterEndpointResponse>;

export const EndpointDoc = z.object({
  endpoint_id: Uuid,
  endpoint_name: z.string(),
  display_name: z.string().nullable(),
  allowed_functions: z.array(Uuid).nullable(),
  metadata: z.record(z.string(), JsonValue),
  created_at: z.string(),
});
export type EndpointDoc = z.infer<typeof EndpointDoc>;

export const EndpointList = z.array(EndpointDoc);

export const DeleteEndpointResponse = z.object({ result: z.literal(302) });

/** POST /v3/endpoints/{endpoint_id}/token: a short-lived access token for the agent socket. */
export const EndpointAccessTokenResponse = z.object({ access_token: z.string(), expires_in: z.number().int().positive() });
export type EndpointAccessTokenResponse = z.infer<typeof EndpointAccessTokenResponse>;

/** POST /v3/endpoints/{endpoint_id}/revoke: the secret generation now current. */
export const RevokeEndpointSecretResponse = z.object({ endpoint_id: Uuid, secret_generation: z.number().int().nonnegative() });
export type RevokeEndpointSecretResponse = z.infer<typeof RevokeEndpointSecretResponse>;

export const StatusReport = z.object({
  total_workers: z.number().int().nonnegative(),
  idle_workers: z.number().int().nonnegative(),
  pending_tasks: z.number().int().nonnegative(),
  outstanding_tasks: z.number().int().nonnegative(),
  managers: z.number().int().nonnegative(),
  blocks: z.number().int().nonnegative(),
});
export type StatusReport = z.infer<typeof StatusReport>;

export const EndpointStatus = z.object({
  status: z.enum(['online', 'offline']),
  details: StatusReport.extend({ last_heartbeat: z.number().nullable() }),
});
export type EndpointStatus = z.infer<typeof EndpointStatus>;

export const AllowedFunctions = z.object({
  endpoint_id: Uuid,
  restricted: z.boolean(),
  functions: z.array(Uuid),
});

/** A task's arguments, with `value` the schema of each JSON value (the wire's skips a second walk: wire.ts). */
export function payloadOf(value: z.ZodType<Json>) {
  return z.strictObject({
    args: z.array(value).default([]),
    kwargs: z.record(z.string(), value).optional(),
  });
}

export const Payload = payloadOf(JsonValue);
export type Payload = z.infer<typeof Payload>;

export const SubmitRequest = z.strictObject({
  tasks: z.record(Uuid, z.array(Payload).min(1)),
  task_group_id: z.string().max(80).optional(),
  resource_specification: z.record(z.string(), JsonValue).optional(),
  workflow_id: z.string().max(256).optional(),
  campaign_id: z.string().max(256).optional(),
});
export type SubmitRequest = z.infer<typeof SubmitRequest>;

/**
 * Headers of a submission (submit, run). With an `Idempotency-Key`, the same request sent again
 * within a day is answered with the first one's tasks, stored and dispatched once; the same key with
 * another request is refused (422 IDEMPOTENCY_KEY_REUSED). The SDK sends one with every submission.
 */
export const SubmissionHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters (a UUID, say)')
    .optional()
    .describe('A key the client chooses for this request; sent again with the same request, it stores nothing twice'),
});

/** Headers of `POST /v3/run`: a submission's, and `Ferry-Trace: 1` for the task's hops in a Server-Timing header. */
export const RunHeaders = SubmissionHeaders.extend({
  'ferry-trace': z
    .literal('1')
    .optional()
    .describe("1: answer with a Server-Timing header naming each hop of the task (gateway, hub, agent, interchange, manager, worker, isolate) and the ms since the hop before it"),
});

export const SubmitResponse = z.object({
  request_id: z.string(),
  task_group_id: z.string(),
  endpoint_id: Uuid,
  tasks: z.record(Uuid, z.array(z.string())),
});
export type SubmitResponse = z.infer<typeof SubmitResponse>;

export const TaskStatus = z.enum(TASK_STATES);

/**
 * A failed task's exception on the wire. The endpoint makes it with taskException() (a
 * TaskFailureCode); here `code` is any string, so a gateway keeps what an agent of another version sent.
 */
export const TaskExceptionDoc = z.object({
  code: z.string(),
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
});
export type TaskExceptionDoc = z.infer<typeof TaskExceptionDoc>;

export const TaskDoc = z.object({
  task_id: z.string(),
  status: TaskStatus,
  result: JsonValue.optional().describe(
    'The function\'s return value; with details.result_ref, a ResultRef naming the object the endpoint stored it as',
  ),
  exception: TaskExceptionDoc.optional(),
  completion_t: z.number().optional(),
  stdout: z.string().optional(),
  details: z.object({
    task_transitions: z.record(z.string(), z.number()),
    endpoint_id: Uuid,
    function_uuid: Uuid,
    task_group_id: z.string(),
    attempts: z.number().int().nonnegative(),
    result_ref: z.literal(true).optional().describe(
      'Present when the result was stored as an object of the task\'s owner (bytes, or JSON over LIMITS.maxInlineResultBytes): `result` is then a ResultRef, read with GET /v3/objects/{id}',
    ),
  }),
});
export type TaskDoc = z.infer<typeof TaskDoc>;

export const WaitQuery = z.object({ wait: z.coerce.number().min(0).max(60).optional() });

export const BatchStatusRequest = z.strictObject({ task_ids: z.array(z.string()).min(1).max(5000) });
export const BatchStatusResponse = z.object({ response: z.literal('batch'), results: z.record(z.string(), TaskDoc) });

export const TaskGroupDoc = z.object({
  taskgroup_id: z.string(),
  tasks: z.array(z.object({ id: z.string(), created_at: z.string() })),
});

export const RunRequest = z.strictObject({
  endpoint_id: Uuid,
  function_uuid: Uuid,
  args: z.array(JsonValue).optional(),
  kwargs: z.record(z.string(), JsonValue).optional(),
  wait: z.number().min(0).max(60).optional(),
  workflow_id: z.string().max(256).optional(),
  campaign_id: z.string().max(256).optional(),
});
export type RunRequest = z.infer<typeof RunRequest>;

export const VersionDoc = z.object({
  api: z.string(),
  min_sdk_version: z.string(),
  min_endpoint_version: z.string(),
  git_sha: z.string(),
  protocol_version: z.number().int(),
});

export const Health = z.object({ ok: z.literal(true) });

/** The OpenAPI 3.1 document the gateway serves at /v3/openapi.json (its shape is OpenAPI's). */
export const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });

export const ErrorDoc = z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() });

/** Limits every part of Ferry agrees on. */
export const LIMITS = {
  /** Tasks in one submit request. */
  maxTasksPerRequest: 5000,
  /**
   * Nesting of `[` and `{` in any JSON Ferry decodes (request bodies, payloads). Recursive decoders
   * (zod, structured clone) overflow the stack a few thousand levels down; no real payload nests this deep.
   */
  maxJsonDepth: 256,
  /** Default byte cap of one request body (gateway var `MAX_REQUEST_BYTES` overrides). */
  defaultMaxRequestBytes: 10 * 1024 * 1024,
  /** One task's encoded payload; larger data goes by reference. */
  maxPayloadBytes: 512 * 1024,
  /**
   * A result whose JSON is at most this many bytes travels inline, in the task doc's `result`. A
   * larger one, and bytes (a Uint8Array or ArrayBuffer) of any size, the endpoint stores as an
   * object of the task's owner: the task doc's `result` is then a ResultRef (details.result_ref).
   */
  maxInlineResultBytes: 512 * 1024,
  /** Inline results larger than this are kept by the gateway in R2 and served as if inline. */
  inlineResultBytes: 64 * 1024,
  /** Captured console output per task. */
  maxStdoutBytes: 64 * 1024,
  /** WebSocket frames stay under this. */
  maxFrameBytes: 1024 * 1024,
  /** `?wait=` cap in seconds. */
  maxWaitSeconds: 60,
} as const;

// ── Objects (data by reference) ────────────────────────────────────────────────────────────────

/** An object id: 64 lower-case hex digits, sha256(owner \n sha256 of the bytes). */
export const ObjectId = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in lower-case hex');
export const UploadId = z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lower-case hex digits');

/** An ingest filter applied by the client before upload, as recorded with the object. */
export const ObjectFilter = z.strictObject({
  name: z.string().min(1).max(128),
  params: z.record(z.string(), JsonValue).optional(),
  /** sha256 of the filter function's source, so lineage can tell two versions apart. */
  source_sha256: Sha256Hex,
});
export type ObjectFilter = z.infer<typeof ObjectFilter>;
export const ObjectFilters = z.array(ObjectFilter).max(32);

/** What a client passes instead of the bytes: `{"$ref": id, size, sha256}`. */
export const ObjectRef = z.object({ $ref: ObjectId, size: z.number().int().nonnegative(), sha256: Sha256Hex });
export type ObjectRef = z.infer<typeof ObjectRef>;

/**
 * The encodings of a result stored as an object: bytes as they are, anything else as its JSON text,
 * and a numpy array a Python function returned as a `.npy` file (dtype and shape in its header).
 */
export const RESULT_CONTENT_TYPES = ['application/octet-stream', 'application/json', 'application/x-npy'] as const;
export type ResultContentType = (typeof RESULT_CONTENT_TYPES)[number];

/**
 * A task result stored as an object of the task's owner (results by reference): bytes the function
 * returned (`application/octet-stream`), JSON over LIMITS.maxInlineResultBytes (`application/json`,
 * the JSON text), or a numpy array (`application/x-npy`, the bytes of `numpy.save`). The task doc's `result` when `details.result_ref` is true.
 */
export const ResultRef = ObjectRef.extend({ content_type: z.enum(RESULT_CONTENT_TYPES) });
export type ResultRef = z.infer<typeof ResultRef>;

export const ObjectTtlQuery = z.object({ ttl_s: z.coerce.number().int().positive().max(10 * 365 * 86_400).optional() });

export const ObjectMeta = z.object({
  $ref: ObjectId,
  size: z.number().int().nonnegative(),
  sha256: Sha256Hex,
  content_type: z.string(),
  filters: ObjectFilters,
  created_at: z.string(),
  expires_at: z.string().nullable(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

export const StartUploadRequest = z.strictObject({
  content_type: z.string().max(256).optional(),
  ttl_s: z.number().int().positive().max(10 * 365 * 86_400).optional(),
  /** Bytes of every part but the last (5 MiB … 64 MiB); default 16 MiB. */
  part_size: z.number().int().min(5 * 1024 * 1024).max(64 * 1024 * 1024).optional(),
  filters: ObjectFilters.optional(),
});
export type StartUploadRequest = z.infer<typeof StartUploadRequest>;

export const StartUploadResponse = z.object({ upload_id: UploadId, part_size: z.number().int().positive(), expires_at: z.string() });
export type StartUploadResponse = z.infer<typeof StartUploadResponse>;

export const UploadPartResponse = z.object({ part_number: z.number().int().positive(), size: z.number().int().nonnegative(), sha256: Sha256Hex });

/** `sha256`, when given, is checked against the digest the gateway computes over the whole object. */
export const CompleteUploadRequest = z.strictObject({ sha256: Sha256Hex.optional() });

export const DeletedResponse = z.object({ deleted: z.literal(true) });

export const ObjectStats = z.object({
  objects: z.number().int().nonnegative(),
  bytes_stored: z.number().int().nonnegative(),
  /** Bytes the gateway served from the owner's objects (the Content-Length of every 200/206 answer). */
  bytes_served: z.number().int().nonnegative(),
  requests: z.number().int().nonnegative(),
  /** The same counts per reader: `user`, or `endpoint:<endpoint_id>` for an agent's reads. */
  readers: z.record(z.string(), z.object({ bytes_served: z.number().int().nonnegative(), requests: z.number().int().nonnegative() })),
  /**
   * Objects stored per writer (`user`, or `endpoint:<endpoint_id>` for results an agent stored):
   * every committed upload and its bytes, a duplicate of bytes already held included.
   */
  writers: z.record(z.string(), z.object({ objects: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() })),
});
export type ObjectStats = z.infer<typeof ObjectStats>;

/** Limits of the objects routes. */
export const OBJECT_LIMITS = {
  /** One `PUT /v3/objects` body; larger objects go in parts. */
  maxSinglePutBytes: 64 * 1024 * 1024,
  defaultPartSize: 16 * 1024 * 1024,
  minPartSize: 5 * 1024 * 1024,
  maxPartSize: 64 * 1024 * 1024,
  /** R2's limit on parts of one multipart upload. */
  maxParts: 10_000,
  /** An upload not completed within this many seconds is aborted and forgotten. */
  uploadTtlSeconds: 24 * 3600,
  /** The `x-ferry-filters` header's byte cap. */
  maxFiltersHeaderBytes: 8 * 1024,
} as const;

// People and machines (sign-in settings, instrument keys, revocation): their own module.
export * from './auth-api';
export * from './sharing-api';
