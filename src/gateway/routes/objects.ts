// Objects (data by reference): single PUT up to 64 MiB and multipart uploads streamed into R2 with
// their sha256 computed on the way (also by the owner's endpoint agents, storing results by
// reference), ranged reads (also by those agents), HEAD, metadata, delete, and the owner's counters
// of bytes served and stored. Design: src/gateway/objects/object-index.ts.

import { z } from 'zod';
import {
  CompleteUploadRequest, DeletedResponse, OBJECT_LIMITS, ObjectFilters, ObjectId, ObjectMeta, ObjectRef, ObjectStats, ObjectTtlQuery,
  StartUploadRequest, StartUploadResponse, UploadId, UploadPartResponse, type ObjectFilter,
} from '../../protocol/api';
import { FerryError } from '../../protocol/errors';
import type { GatewayContext } from '../route-spec';
import { defineRoute, type RouteTable } from '../route-spec';
import { validationError } from '../http-errors';
import { parseRangeHeader } from '../objects/byte-range';
import { displayHeaders } from '../objects/display-headers';
import { sha256OfObject, streamHashed } from '../objects/hashing-stream';
import { metaOf, objectIndexOf, type ObjectRecord } from '../objects/object-index';
import { base64OfHex, newStorageKey, objectIdOf, randomHex } from '../objects/object-ids';
import { windowedBody } from '../objects/windowed-body';

const ObjectParams = z.object({ id: ObjectId });
const UploadParams = z.object({ upload_id: UploadId });
// The part number is checked in the handler: a wrong one is the caller's mistake (400), not a missing thing.
const PartParams = z.object({ upload_id: UploadId, n: z.string() });

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

function declaredLength(c: GatewayContext, max: number): number {
  if (c.req.raw.body === null) return 0;
  const raw = c.req.header('content-length');
  if (raw === undefined || !/^\d+$/.test(raw.trim())) {
    throw new FerryError('LENGTH_REQUIRED', 'send a Content-Length (upload a stream of unknown length in parts: POST /v3/objects/uploads)');
  }
  const length = Number(raw);
  if (length > max) throw new FerryError('PAYLOAD_TOO_LARGE', `the body is over ${max} bytes; upload it in parts (POST /v3/objects/uploads)`, { max_bytes: max });
  return length;
}

function filtersHeader(c: GatewayContext): ObjectFilter[] {
  const raw = c.req.header('x-ferry-filters');
  if (raw === undefined || raw.trim() === '') return [];
  if (raw.length > OBJECT_LIMITS.maxFiltersHeaderBytes) throw new FerryError('PAYLOAD_TOO_LARGE', `x-ferry-filters is over ${OBJECT_LIMITS.maxFiltersHeaderBytes} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new FerryError('VALIDATION_ERROR', 'x-ferry-filters: not valid JSON');
  }
  const parsed = ObjectFilters.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, 'x-ferry-filters');
  return parsed.data;
}

/** JSON for a header value: non-ASCII escaped, so any filter params survive the trip. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function refOf(record: ObjectRecord): ObjectRef {
  return { $ref: record.id, size: record.size, sha256: record.sha256 };
}

function objectHeaders(record: ObjectRecord): Headers {
  return new Headers({
    'content-type': record.content_type,
    'accept-ranges': 'bytes',
    etag: `"${record.sha256}"`,
    'x-ferry-sha256': record.sha256,
    'x-ferry-size': String(record.size),
    'repr-digest': `sha-256=:${base64OfHex(record.sha256)}:`,
    'x-ferry-filters': asciiJson(JSON.parse(record.filters_json)),
    ...displayHeaders(record.content_type),
  });
}

export function registerObjectRoutes(table: RouteTable): void {
  // Static paths first: `/v3/objects/stats` must not be read as an object id.
  defineRoute(
    table,
    { method: 'get', path: '/v3/objects/stats', summary: "The caller's objects: count, bytes stored, bytes the gateway served (per reader), objects stored (per writer)", auth: 'user', keys: 'none', response: ObjectStats, errors: [] },
    async (c, { principal: { owner } }) => objectIndexOf(c.env, owner).stats(),
  );

  defineRoute(
    table,
    {
      method: 'put',
      path: '/v3/objects',
      summary: "Store raw bytes (≤ 64 MiB, Content-Length required, Content-Type kept; ?ttl_s=, x-ferry-filters); the id derives from owner and content. Endpoint tokens store for their owner (results by reference)",
      auth: 'writer',
      keys: { action: 'upload_objects' },
      query: ObjectTtlQuery,
      response: ObjectRef,
      errors: ['LENGTH_REQUIRED', 'PAYLOAD_TOO_LARGE', 'VALIDATION_ERROR'],
    },
    async (c, { principal: { owner, writer }, query }) => {
      const length = declaredLength(c, OBJECT_LIMITS.maxSinglePutBytes);
      const filters = filtersHeader(c);
      const contentType = c.req.header('content-type') || DEFAULT_CONTENT_TYPE;
      const storageKey = newStorageKey();
      const hashed = await streamHashed(c.req.raw.body, length, (stream) => c.env.OBJECTS.put(storageKey, stream, { httpMetadata: { contentType } }));
      const id = await objectIdOf(owner, hashed.sha256);
      const record = await objectIndexOf(c.env, owner).commit({ id, storage_key: storageKey, size: hashed.size, sha256: hashed.sha256, content_type: contentType, filters_json: JSON.stringify(filters), ttl_s: query.ttl_s ?? null, writer });
      return refOf(record);
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/objects/uploads',
      summary: 'Start a multipart upload; every part but the last is part_size bytes; an upload never completed expires',
      auth: 'writer',
      keys: { action: 'upload_objects' },
      body: StartUploadRequest,
      response: StartUploadResponse,
      errors: [],
      example: { content_type: 'application/octet-stream' },
    },
    async (c, { principal: { owner }, body }) => {
      const storageKey = newStorageKey();
      const partSize = body.part_size ?? OBJECT_LIMITS.defaultPartSize;
      const contentType = body.content_type || DEFAULT_CONTENT_TYPE;
      const multipart = await c.env.OBJECTS.createMultipartUpload(storageKey, { httpMetadata: { contentType } });
      const upload = await objectIndexOf(c.env, owner).startUpload({
        upload_id: randomHex(16),
        r2_upload_id: multipart.uploadId,
        storage_key: storageKey,
        part_size: partSize,
        content_type: contentType,
        filters_json: JSON.stringify(body.filters ?? []),
        ttl_s: body.ttl_s ?? null,
      });
      return { upload_id: upload.upload_id, part_size: upload.part_size, expires_at: new Date(upload.expires_at).toISOString() };
    },
  );

  defineRoute(
    table,
    {
      method: 'put',
      path: '/v3/objects/uploads/{upload_id}/{n}',
      summary: 'Store part n (1 … 10000) of an upload: raw bytes, Content-Length required; sending a part again replaces it',
      auth: 'writer',
      keys: { action: 'upload_objects' },
      params: PartParams,
      response: UploadPartResponse,
      errors: ['LENGTH_REQUIRED', 'PAYLOAD_TOO_LARGE', 'VALIDATION_ERROR', 'NOT_FOUND'],
    },
    async (c, { principal: { owner }, params }) => {
      const n = /^[1-9]\d{0,4}$/.test(params.n) ? Number(params.n) : NaN;
      if (!(n >= 1 && n <= OBJECT_LIMITS.maxParts)) throw new FerryError('VALIDATION_ERROR', `n: a part number is an integer from 1 to ${OBJECT_LIMITS.maxParts} (got ${JSON.stringify(params.n.slice(0, 20))})`);
      const index = objectIndexOf(c.env, owner);
      const upload = await index.upload(params.upload_id);
      if (!upload) throw new FerryError('NOT_FOUND', 'upload not found (completed, aborted, expired, or never started)');
      const length = declaredLength(c, upload.part_size);
      const multipart = c.env.OBJECTS.resumeMultipartUpload(upload.storage_key, upload.r2_upload_id);
      let etag = '';
      const hashed = await streamHashed(c.req.raw.body, length, async (stream) => {
        etag = (await multipart.uploadPart(n, stream)).etag;
      });
      if (!(await index.recordPart(params.upload_id, { part_number: n, etag, size: hashed.size, sha256: hashed.sha256 }))) throw new FerryError('NOT_FOUND', 'upload not found');
      return { part_number: n, size: hashed.size, sha256: hashed.sha256 };
    },
  );

  defineRoute(
    table,
    {
      method: 'post',
      path: '/v3/objects/uploads/{upload_id}/complete',
      summary: 'Complete an upload; the gateway reads the object once to compute its sha256 (and checks the one given, if any)',
      auth: 'writer',
      keys: { action: 'upload_objects' },
      params: UploadParams,
      body: CompleteUploadRequest,
      response: ObjectRef,
      errors: ['NOT_FOUND', 'VALIDATION_ERROR', 'DIGEST_MISMATCH'],
      example: {},
    },
    async (c, { principal: { owner, writer }, params, body }) => {
      const index = objectIndexOf(c.env, owner);
      const upload = await index.upload(params.upload_id);
      if (!upload) throw new FerryError('NOT_FOUND', 'upload not found (completed, aborted, expired, or never started)');
      const parts = await index.parts(params.upload_id);
      if (parts.length === 0) throw new FerryError('VALIDATION_ERROR', 'the upload has no parts');
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part.part_number !== i + 1) throw new FerryError('VALIDATION_ERROR', `part ${i + 1} is missing`, { parts: parts.map((p) => p.part_number) });
        const last = i === parts.length - 1;
        if (!last && part.size !== upload.part_size) throw new FerryError('VALIDATION_ERROR', `part ${part.part_number} has ${part.size} bytes; every part but the last must have ${upload.part_size}`);
        if (last && part.size === 0 && parts.length > 1) throw new FerryError('VALIDATION_ERROR', `the last part (${part.part_number}) is empty`);
      }
      const multipart = c.env.OBJECTS.resumeMultipartUpload(upload.storage_key, upload.r2_upload_id);
      await multipart.complete(parts.map((p) => ({ partNumber: p.part_number, etag: p.etag })));
      await index.endUpload(params.upload_id, false);
      // The whole-object digest cannot be derived from the parts' digests: read it back once.
      const stored = await c.env.OBJECTS.head(upload.storage_key);
      if (!stored) throw new FerryError('INTERNAL', 'the completed upload is missing from storage');
      const hashed = await sha256OfObject(c.env.OBJECTS, upload.storage_key, stored.size);
      if (body.sha256 !== undefined && body.sha256 !== hashed.sha256) {
        await c.env.OBJECTS.delete(upload.storage_key);
        throw new FerryError('DIGEST_MISMATCH', `the stored bytes have sha256 ${hashed.sha256}, not ${body.sha256}; nothing was kept`, { sha256: hashed.sha256 });
      }
      const id = await objectIdOf(owner, hashed.sha256);
      const record = await index.commit({ id, storage_key: upload.storage_key, size: hashed.size, sha256: hashed.sha256, content_type: upload.content_type, filters_json: upload.filters_json, ttl_s: upload.ttl_s, writer });
      return refOf(record);
    },
  );

  defineRoute(
    table,
    { method: 'delete', path: '/v3/objects/uploads/{upload_id}', summary: 'Abort an upload: its parts are dropped', auth: 'writer', keys: { action: 'upload_objects' }, params: UploadParams, response: DeletedResponse, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      if (!(await objectIndexOf(c.env, owner).endUpload(params.upload_id, true))) throw new FerryError('NOT_FOUND', 'upload not found');
      return { deleted: true as const };
    },
  );

  defineRoute(
    table,
    {
      method: 'get',
      path: '/v3/objects/{id}',
      summary: "An object's bytes (X-Content-Type-Options: nosniff; Content-Disposition: attachment unless text/plain, application/json, image/png, image/jpeg, image/gif or image/webp); Range: bytes=a-b | a- | -n answers 206 (416 past the end); HEAD: size and digest only. Endpoint tokens read their owner's objects",
      auth: 'reader',
      keys: { action: 'read_results' },
      params: ObjectParams,
      otherResponses: [
        { status: 206, description: 'The requested range (Content-Range)' },
        { status: 416, description: 'RANGE_NOT_SATISFIABLE: the range starts past the end (Content-Range: bytes */size)' },
      ],
      errors: ['NOT_FOUND', 'VALIDATION_ERROR', 'RANGE_NOT_SATISFIABLE'],
    },
    async (c, { principal, params }) => {
      const withBody = c.req.method !== 'HEAD';
      const range = parseRangeHeader(c.req.header('range'));
      const answer = await objectIndexOf(c.env, principal.owner).read(params.id, principal.reader, range, withBody);
      if (!answer.found) throw new FerryError('NOT_FOUND', 'object not found');
      const headers = objectHeaders(answer.record);
      const size = answer.record.size;
      if (!answer.satisfiable) {
        headers.set('content-range', `bytes */${size}`);
        headers.set('content-type', 'application/json');
        const err = new FerryError('RANGE_NOT_SATISFIABLE', `the range starts past the end of the object (${size} bytes)`, { size });
        return new Response(JSON.stringify(err.toBody()), { status: 416, headers });
      }
      const slice = answer.range;
      const length = slice ? slice.length : size;
      headers.set('content-length', String(length));
      if (slice) headers.set('content-range', `bytes ${slice.offset}-${slice.offset + slice.length - 1}/${size}`);
      const status = slice ? 206 : 200;
      if (!withBody) return new Response(null, { status, headers });
      if (length === 0) return new Response(new Uint8Array(0), { status, headers });
      const body = await windowedBody(c.env.OBJECTS, answer.record.storage_key, slice?.offset ?? 0, length, (work) => c.executionCtx.waitUntil(work));
      if (!body) throw new FerryError('NOT_FOUND', 'object not found');
      return new Response(body, { status, headers });
    },
  );

  defineRoute(
    table,
    { method: 'get', path: '/v3/objects/{id}/meta', summary: "An object's record: size, sha256, content type, ingest filters, times", auth: 'reader', keys: { action: 'read_results' }, params: ObjectParams, response: ObjectMeta, errors: ['NOT_FOUND'] },
    async (c, { principal, params }) => {
      const record = await objectIndexOf(c.env, principal.owner).meta(params.id);
      if (!record) throw new FerryError('NOT_FOUND', 'object not found');
      return metaOf(record);
    },
  );

  defineRoute(
    table,
    { method: 'delete', path: '/v3/objects/{id}', summary: 'Delete an object', auth: 'user', keys: 'none', params: ObjectParams, response: DeletedResponse, errors: ['NOT_FOUND'] },
    async (c, { principal: { owner }, params }) => {
      if (!(await objectIndexOf(c.env, owner).remove(params.id))) throw new FerryError('NOT_FOUND', 'object not found');
      return { deleted: true as const };
    },
  );
}
