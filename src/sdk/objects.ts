// The SDK's half of data by reference: upload bytes once (one PUT up to a threshold, parts above it,
// read from a stream part by part so the whole object is never held), read them back whole, by
// range or as a stream, and apply ingest filters before upload, recorded with the object.

import type { Json, ObjectFilter, ObjectMeta, ObjectRef, ObjectStats, ResultRef, TaskDoc } from '../protocol/api';
import { OBJECT_LIMITS, ResultRef as ResultRefSchema } from '../protocol/api';
import { errorFromBody, FerryApiError } from '../protocol/error-body';
import { fetchResending } from './resend';

/** What `Client` hands to these functions. */
export interface ObjectTransport {
  url: string;
  token: string;
  fetch: typeof fetch;
}

export type PutData = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | string;

/** A function applied to the bytes before upload (crop, threshold, compress); recorded by name. */
export interface IngestFilter {
  name: string;
  fn: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  params?: Record<string, Json>;
}

export interface PutProgress {
  /** Bytes the gateway has acknowledged so far. */
  sent: number;
  /** Bytes in all, when known (not for a stream until it ends). */
  total: number | null;
}

export interface PutOptions {
  contentType?: string;
  onProgress?: (progress: PutProgress) => void;
  /** Bytes per part of a multipart upload (5 MiB … 64 MiB); default 16 MiB. */
  partSize?: number;
  /** Objects above this size go in parts; default 32 MiB (≤ 64 MiB, the single PUT cap). */
  multipartThreshold?: number;
  /** Parts in flight at once; default 2. */
  concurrency?: number;
  /** Seconds the object lives; default: until deleted. */
  ttlSeconds?: number;
  /** Applied in order before upload; they see the whole object in memory. */
  filters?: IngestFilter[];
  /** The sha256 (hex) the caller expects; the gateway refuses bytes that do not match. */
  sha256?: string;
  signal?: AbortSignal;
}

/** `{offset, length?}`: bytes from offset (to the end without length); `{last}`: the final bytes. */
export type ByteRange = { offset: number; length?: number } | { last: number };

export interface GetOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

export interface ObjectHead {
  size: number;
  sha256: string;
  content_type: string;
  filters: ObjectFilter[];
}

type RefLike = ObjectRef | { $ref: string } | string;

const MiB = 1024 * 1024;

function idOf(ref: RefLike): string {
  const id = typeof ref === 'string' ? ref : ref.$ref;
  if (!/^[0-9a-f]{64}$/.test(id)) throw new FerryApiError(0, 'INVALID_ID', `not an object id: ${JSON.stringify(id).slice(0, 80)}`);
  return id;
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** JSON fit for a header: non-ASCII characters as escapes. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function failure(res: Response): Promise<FerryApiError> {
  return errorFromBody(res.status, await res.text().catch(() => ''));
}

async function call(t: ObjectTransport, method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal | undefined } = {}): Promise<Response> {
  // Sent again after a connection closed before any answer when that stores nothing twice (resend.ts).
  const res = await fetchResending(t.fetch, t.url + path, {
    method,
    headers: { authorization: `Bearer ${t.token}`, ...(init.headers ?? {}) },
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!res.ok) throw await failure(res);
  return res;
}

async function callJson<T>(t: ObjectTransport, method: string, path: string, init: Parameters<typeof call>[3] = {}): Promise<T> {
  return (await (await call(t, method, path, init)).json()) as T;
}

async function toBytes(data: Exclude<PutData, ReadableStream<Uint8Array>>): Promise<Uint8Array> {
  if (typeof data === 'string') return new TextEncoder().encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(await data.arrayBuffer());
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Runs the filters in order; answers the bytes and the records the gateway keeps. */
async function applyFilters(bytes: Uint8Array, filters: IngestFilter[]): Promise<{ bytes: Uint8Array; records: ObjectFilter[] }> {
  const records: ObjectFilter[] = [];
  let out = bytes;
  for (const filter of filters) {
    out = await filter.fn(out);
    if (!(out instanceof Uint8Array)) throw new TypeError(`filter ${filter.name} must return a Uint8Array`);
    records.push({ name: filter.name, ...(filter.params !== undefined ? { params: filter.params } : {}), source_sha256: await sha256Hex(filter.fn.toString()) });
  }
  return { bytes: out, records };
}

/** Exactly `size`-byte pieces of a stream (the last one shorter), holding at most one piece. */
async function* pieces(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let buffer = new Uint8Array(size);
  let filled = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let at = 0;
      while (at < value.byteLength) {
        const take = Math.min(size - filled, value.byteLength - at);
        buffer.set(value.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === size) {
          yield buffer;
          buffer = new Uint8Array(size);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield buffer.subarray(0, filled);
  } finally {
    reader.releaseLock();
  }
}

/** Uploads `data` and answers its reference `{$ref, size, sha256}`. */
export async function putObject(t: ObjectTransport, data: PutData, options: PutOptions = {}): Promise<ObjectRef> {
  const threshold = Math.min(options.multipartThreshold ?? 32 * MiB, OBJECT_LIMITS.maxSinglePutBytes);
  let filterRecords: ObjectFilter[] = [];
  let source: Uint8Array | Blob | ReadableStream<Uint8Array>;
  if (options.filters && options.filters.length > 0) {
    const raw = data instanceof ReadableStream ? await readAll(data) : await toBytes(data);
    const filtered = await applyFilters(raw, options.filters);
    source = filtered.bytes;
    filterRecords = filtered.records;
  } else if (data instanceof ReadableStream || data instanceof Blob) {
    source = data;
  } else {
    source = await toBytes(data);
  }
  const contentType = options.contentType ?? (source instanceof Blob && source.type ? source.type : 'application/octet-stream');
  const known = source instanceof ReadableStream ? null : source instanceof Blob ? source.size : source.byteLength;
  if (known !== null && known <= threshold) {
    const ref = await putSingle(t, source as Uint8Array | Blob, contentType, filterRecords, options);
    options.onProgress?.({ sent: known, total: known });
    return ref;
  }
  const partSize = options.partSize ?? OBJECT_LIMITS.defaultPartSize;
  if (source instanceof ReadableStream) {
    // Decide single or multipart on the first `threshold` bytes, held as parts.
    const it = pieces(source, partSize);
    const held: Uint8Array[] = [];
    let heldBytes = 0;
    let ended = false;
    while (heldBytes <= threshold) {
      const next = await it.next();
      if (next.done) {
        ended = true;
        break;
      }
      held.push(next.value);
      heldBytes += next.value.byteLength;
    }
    if (ended && heldBytes <= threshold) {
      const ref = await putSingle(t, new Blob(held as BlobPart[]), contentType, filterRecords, options);
      options.onProgress?.({ sent: heldBytes, total: heldBytes });
      return ref;
    }
    async function* all(): AsyncGenerator<Uint8Array> {
      while (held.length > 0) yield held.shift()!;
      yield* { [Symbol.asyncIterator]: () => it };
    }
    return putMultipart(t, all(), null, partSize, contentType, filterRecords, options);
  }
  const whole = source;
  // Views, not copies: fetch copies a part's bytes into its request body once already.
  async function* slices(): AsyncGenerator<Uint8Array | Blob> {
    for (let at = 0; at < known!; at += partSize) {
      const end = Math.min(at + partSize, known!);
      yield whole instanceof Blob ? whole.slice(at, end) : whole.subarray(at, end);
    }
  }
  return putMultipart(t, slices(), known, partSize, contentType, filterRecords, options);
}

async function putSingle(t: ObjectTransport, body: Uint8Array | Blob, contentType: string, filters: ObjectFilter[], options: PutOptions): Promise<ObjectRef> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (filters.length > 0) headers['x-ferry-filters'] = asciiJson(filters);
  const query = options.ttlSeconds !== undefined ? `?ttl_s=${options.ttlSeconds}` : '';
  const ref = await callJson<ObjectRef>(t, 'PUT', `/v3/objects${query}`, { body: body as BodyInit, headers, signal: options.signal });
  if (options.sha256 !== undefined && ref.sha256 !== options.sha256) {
    throw new FerryApiError(400, 'DIGEST_MISMATCH', `the stored bytes have sha256 ${ref.sha256}, not ${options.sha256}`);
  }
  return ref;
}

async function putMultipart(
  t: ObjectTransport,
  parts: AsyncIterable<Uint8Array | Blob>,
  total: number | null,
  partSize: number,
  contentType: string,
  filters: ObjectFilter[],
  options: PutOptions,
): Promise<ObjectRef> {
  const start = await callJson<{ upload_id: string; part_size: number }>(t, 'POST', '/v3/objects/uploads', {
    body: JSON.stringify({ content_type: contentType, part_size: partSize, ...(filters.length > 0 ? { filters } : {}), ...(options.ttlSeconds !== undefined ? { ttl_s: options.ttlSeconds } : {}) }),
    headers: { 'content-type': 'application/json' },
    signal: options.signal,
  });
  const base = `/v3/objects/uploads/${start.upload_id}`;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  let failed: unknown = null;
  let n = 0;
  try {
    for await (const part of parts) {
      if (failed) break;
      const number = ++n;
      const size = part instanceof Blob ? part.size : part.byteLength;
      const p: Promise<void> = call(t, 'PUT', `${base}/${number}`, { body: part as BodyInit, signal: options.signal })
        .then(async (res) => {
          await res.arrayBuffer();
          sent += size;
          options.onProgress?.({ sent, total });
        })
        .catch((err: unknown) => {
          failed ??= err;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failed) throw failed;
    return await callJson<ObjectRef>(t, 'POST', `${base}/complete`, {
      body: JSON.stringify(options.sha256 !== undefined ? { sha256: options.sha256 } : {}),
      headers: { 'content-type': 'application/json' },
      signal: options.signal,
    });
  } catch (err) {
    await Promise.allSettled(inFlight);
    await call(t, 'DELETE', base).then((r) => r.arrayBuffer(), () => {});
    throw err;
  }
}

function rangeHeader(range: ByteRange | undefined): Record<string, string> {
  if (!range) return {};
  if ('last' in range) return { range: `bytes=-${range.last}` };
  if (range.length === undefined) return { range: `bytes=${range.offset}-` };
  if (range.length <= 0) throw new RangeError('range.length must be positive');
  return { range: `bytes=${range.offset}-${range.offset + range.length - 1}` };
}

/** The object's bytes (or a range of them) as a stream. */
export async function getObjectStream(t: ObjectTransport, ref: RefLike, options: GetOptions = {}): Promise<ReadableStream<Uint8Array>> {
  const res = await call(t, 'GET', `/v3/objects/${idOf(ref)}`, { headers: rangeHeader(options.range), signal: options.signal });
  return res.body ?? new ReadableStream({ start: (c) => c.close() });
}

/** The object's bytes (or a range of them). */
export async function getObject(t: ObjectTransport, ref: RefLike, options: GetOptions = {}): Promise<Uint8Array> {
  const res = await call(t, 'GET', `/v3/objects/${idOf(ref)}`, { headers: rangeHeader(options.range), signal: options.signal });
  return new Uint8Array(await res.arrayBuffer());
}

export async function headObject(t: ObjectTransport, ref: RefLike): Promise<ObjectHead> {
  const res = await t.fetch(`${t.url}/v3/objects/${idOf(ref)}`, { method: 'HEAD', headers: { authorization: `Bearer ${t.token}` } });
  if (!res.ok) throw new FerryApiError(res.status, res.status === 404 ? 'NOT_FOUND' : `HTTP_${res.status}`, res.status === 404 ? 'object not found' : res.statusText);
  const size = res.headers.get('x-ferry-size') ?? res.headers.get('content-length');
  return {
    size: Number(size),
    sha256: res.headers.get('x-ferry-sha256') ?? '',
    content_type: res.headers.get('content-type') ?? 'application/octet-stream',
    filters: JSON.parse(res.headers.get('x-ferry-filters') ?? '[]') as ObjectFilter[],
  };
}

export function objectMeta(t: ObjectTransport, ref: RefLike): Promise<ObjectMeta> {
  return callJson(t, 'GET', `/v3/objects/${idOf(ref)}/meta`);
}

export async function deleteObject(t: ObjectTransport, ref: RefLike): Promise<void> {
  await (await call(t, 'DELETE', `/v3/objects/${idOf(ref)}`)).arrayBuffer();
}

export function objectStats(t: ObjectTransport): Promise<ObjectStats> {
  return callJson(t, 'GET', '/v3/objects/stats');
}

// ── Results by reference ──

/** The reference of a result the endpoint stored as an object (`details.result_ref`), else null. */
export function resultRefOf(doc: TaskDoc): ResultRef | null {
  if (doc.details.result_ref !== true) return null;
  const parsed = ResultRefSchema.safeParse(doc.result);
  if (!parsed.success) throw new FerryApiError(0, 'INVALID_RESULT_REF', `task ${doc.task_id}: details.result_ref is set but the result is not a reference`);
  return parsed.data;
}

/**
 * A result stored as an object, read through the objects API into one buffer of its size (no
 * copies on the way) and checked against its size and sha256: bytes as a Uint8Array, JSON parsed.
 */
export async function readResultObject(t: ObjectTransport, ref: ResultRef, options: { signal?: AbortSignal } = {}): Promise<Json | Uint8Array> {
  const res = await call(t, 'GET', `/v3/objects/${idOf(ref)}`, { signal: options.signal });
  const out = new Uint8Array(ref.size);
  let at = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.byteLength > out.byteLength) {
        await reader.cancel();
        throw new FerryApiError(0, 'DIGEST_MISMATCH', `object ${ref.$ref} is longer than the result's ${ref.size} bytes`);
      }
      out.set(value, at);
      at += value.byteLength;
    }
  }
  const sha256 = at === ref.size ? hex(await crypto.subtle.digest('SHA-256', out)) : '';
  if (sha256 !== ref.sha256) throw new FerryApiError(0, 'DIGEST_MISMATCH', `object ${ref.$ref}: read ${at} bytes (sha256 ${sha256 || 'not computed'}), the result has ${ref.size} (sha256 ${ref.sha256})`);
  if (ref.content_type === 'application/json') return JSON.parse(new TextDecoder().decode(out)) as Json;
  return out;
}
