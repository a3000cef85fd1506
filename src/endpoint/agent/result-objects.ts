// Results by reference, the agent's half. A result that does not travel inline (bytes, or JSON over
// LIMITS.maxInlineResultBytes) arrives from a worker in parts, which are written to a spool file
// under the agent's state directory as they come and digested on the way; when the result's entry
// arrives, the file is checked against the worker's size and sha256 and uploaded to the gateway as
// an object of the endpoint's owner, with the agent's access token: one `PUT /v3/objects` up to
// 64 MiB, a multipart upload above, through undici. Request bodies are read from the file a small
// buffer at a time, as the socket takes them: the agent never holds a result in memory. The spool is emptied
// when the agent starts: a result not yet stored belongs to a task its journal still holds, which
// runs again.

import { createHash, type Hash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { OBJECT_LIMITS, type ObjectRef, type ResultRef } from '../../protocol/api';
import { Backoff } from '../../protocol/backoff';
import { errorFromBody, FerryApiError } from '../../protocol/error-body';
import { FerryError } from '../../protocol/errors';
import type { ResultBody } from '../../protocol/interchange';
import type { Logger } from '../log';

export interface ResultObjectsOptions {
  /** The spool directory; emptied when this is made. */
  dir: string;
  gatewayUrl: string;
  /** The agent's current access token (endpoint access tokens may store objects for their owner). */
  token: () => string;
  log: Logger;
  /** Objects up to this size go in one PUT; default OBJECT_LIMITS.maxSinglePutBytes (64 MiB). */
  maxSinglePutBytes?: number;
  /** Bytes per part of a larger one; default OBJECT_LIMITS.defaultPartSize (16 MiB). */
  partSize?: number;
  /**
   * Waits between attempts of an upload the gateway could not take: doubling from min to max.
   * The whole upload is what is tried again, with the token current at each attempt, until the
   * agent stops: not one request, which undici's RetryAgent would retry with the token it had.
   */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/** The result could not be stored, and trying again would not help: the task fails with this code. */
export class ResultNotStoredError extends FerryError {
  override readonly name = 'ResultNotStored';
  constructor(message: string) {
    super('FERRY_RESULT_NOT_STORED', message);
  }
}

/** store() was cut short because the agent is stopping; the task runs again after a restart. */
export class ResultStoreStoppedError extends FerryError {
  override readonly name = 'ResultStoreStopped';
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** The spool file could not be read: trying again will not help. */
class SpoolUnreadable extends FerryError {
  constructor(message: string) {
    super('FERRY_RESULT_NOT_STORED', message);
  }
}

/** Bytes read from a spool file and written to a request at a time. */
const SEND_BUFFER_BYTES = 256 * 1024;

interface Spool {
  path: string;
  /** Open while parts come; null once closed (or if it could not be opened). */
  fd: number | null;
  written: number;
  hash: Hash;
  /** Why the parts cannot make the result (a gap, a full disk); null while they can. */
  broken: string | null;
  /** store() has taken it: discard() leaves it alone. */
  storing: boolean;
}

export class ResultObjects {
  private readonly spools = new Map<string, Spool>();
  private readonly stopping = new AbortController();
  private readonly maxSinglePutBytes: number;
  private readonly partSize: number;
  private seq = 0;

  constructor(private readonly opts: ResultObjectsOptions) {
    this.maxSinglePutBytes = Math.min(opts.maxSinglePutBytes ?? OBJECT_LIMITS.maxSinglePutBytes, OBJECT_LIMITS.maxSinglePutBytes);
    this.partSize = opts.partSize ?? OBJECT_LIMITS.defaultPartSize;
    rmSync(opts.dir, { recursive: true, force: true });
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  }

  /** Spools bytes [offset, offset + data.length) of a result; parts come in order. */
  part(taskId: string, attempt: number, offset: number, data: Uint8Array): void {
    const key = keyOf(taskId, attempt);
    let spool = this.spools.get(key);
    if (!spool) {
      spool = { path: join(this.opts.dir, `${++this.seq}.part`), fd: null, written: 0, hash: createHash('sha256'), broken: null, storing: false };
      this.spools.set(key, spool);
      try {
        spool.fd = openSync(spool.path, 'w', 0o600);
      } catch (err) {
        spool.broken = `the spool file could not be made: ${(err as Error).message}`;
      }
    }
    if (spool.broken !== null || spool.fd === null || spool.storing) return;
    if (offset !== spool.written) {
      spool.broken = `a part at byte ${offset} where byte ${spool.written} was due`;
      return;
    }
    try {
      for (let at = 0; at < data.byteLength; ) at += writeSync(spool.fd, data, at, data.byteLength - at);
    } catch (err) {
      spool.broken = `the spool file could not be written: ${(err as Error).message}`;
      return;
    }
    spool.hash.update(data);
    spool.written += data.byteLength;
  }

  /** Forgets every spooled result of a task (cancelled, or its execution was lost). */
  discard(taskId: string): void {
    for (const [key, spool] of this.spools) {
      if (!key.startsWith(`${taskId} `) || spool.storing) continue;
      this.spools.delete(key);
      remove(spool);
    }
  }

  /**
   * Checks the spooled parts against the worker's account of them and stores them as an object;
   * answers its reference. Transient failures (no route to the gateway, 5xx, 429, an expired token)
   * are retried until the agent stops (ResultStoreStoppedError); ResultNotStoredError otherwise.
   */
  async store(taskId: string, attempt: number, body: ResultBody): Promise<ResultRef> {
    const key = keyOf(taskId, attempt);
    let spool = this.spools.get(key);
    if (!spool) {
      if (body.size > 0) throw new ResultNotStoredError(`none of the result's ${body.size} bytes reached the agent`);
      this.part(taskId, attempt, 0, new Uint8Array(0));
      spool = this.spools.get(key)!;
    }
    if (spool.storing) throw new ResultNotStoredError('the result is already being stored');
    spool.storing = true;
    if (spool.fd !== null) closeSync(spool.fd);
    spool.fd = null;
    try {
      if (spool.broken !== null) throw new ResultNotStoredError(`the result's parts do not fit together: ${spool.broken}`);
      const sha256 = spool.hash.digest('hex');
      if (spool.written !== body.size || sha256 !== body.sha256) {
        throw new ResultNotStoredError(`the agent received ${spool.written} bytes (sha256 ${sha256}) of a ${body.size}-byte result (sha256 ${body.sha256})`);
      }
      const started = Date.now();
      const ref = await this.uploadWithRetries(taskId, spool.path, body);
      if (ref.size !== body.size || ref.sha256 !== body.sha256) {
        throw new ResultNotStoredError(`the gateway stored ${ref.size} bytes with sha256 ${ref.sha256}, not the result's ${body.size} (sha256 ${body.sha256})`);
      }
      this.opts.log.info('result stored as an object', { task_id: taskId, object_id: ref.$ref, size: ref.size, content_type: body.content_type, ms: Date.now() - started });
      return { $ref: ref.$ref, size: ref.size, sha256: ref.sha256, content_type: body.content_type };
    } finally {
      this.spools.delete(key);
      remove(spool);
    }
  }

  /** Cuts uploads short and drops what is spooled. */
  stop(): void {
    this.stopping.abort();
    for (const spool of this.spools.values()) if (!spool.storing) remove(spool); // store() removes its own
    this.spools.clear();
  }

  private async uploadWithRetries(taskId: string, path: string, body: ResultBody): Promise<ObjectRef> {
    const backoff = new Backoff({ minMs: this.opts.retryMinMs ?? 250, maxMs: this.opts.retryMaxMs ?? 10_000, jitter: 0 });
    for (;;) {
      if (this.stopping.signal.aborted) throw new ResultStoreStoppedError('the agent is stopping');
      try {
        return await this.upload(path, body);
      } catch (err) {
        if (this.stopping.signal.aborted) throw new ResultStoreStoppedError('the agent is stopping');
        if (!transient(err)) {
          throw new ResultNotStoredError(`the gateway refused the result: ${err instanceof FerryApiError ? `${err.status} ` : ''}${(err as Error).message}`);
        }
        const wait = backoff.next();
        this.opts.log.warn('could not store a result as an object; retrying', { task_id: taskId, error: (err as Error).message, in_ms: wait });
        await sleep(wait, this.stopping.signal);
      }
    }
  }

  private async upload(path: string, body: ResultBody): Promise<ObjectRef> {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (err) {
      throw new SpoolUnreadable(`the spooled result is gone: ${(err as Error).message}`);
    }
    try {
      if (body.size <= this.maxSinglePutBytes) return await this.sendFile<ObjectRef>('PUT', '/v3/objects', file, 0, body.size, body.content_type);
      const start = await this.call<{ upload_id: string; part_size: number }>('POST', '/v3/objects/uploads', { content_type: body.content_type, part_size: this.partSize });
      const base = `/v3/objects/uploads/${start.upload_id}`;
      try {
        for (let n = 1, at = 0; at < body.size; n++, at += start.part_size) {
          await this.sendFile('PUT', `${base}/${n}`, file, at, Math.min(at + start.part_size, body.size), 'application/octet-stream');
        }
        return await this.call<ObjectRef>('POST', `${base}/complete`, { sha256: body.sha256 });
      } catch (err) {
        // Best effort: an upload never completed stores nothing and expires anyway.
        await this.call('DELETE', base).catch(() => undefined);
        // The upload itself may be gone (expired, or completed by an answer that was lost): start over.
        if (err instanceof FerryApiError && err.status === 404) throw new FerryApiError(503, 'UNAVAILABLE', `the upload went missing: ${err.detail}`);
        throw err;
      }
    } finally {
      await file.close();
    }
  }

  /** A JSON request (or none) with the agent's token; the JSON answer, or a FerryApiError. */
  private async call<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const res = await request(this.opts.gatewayUrl + path, {
      method,
      headers: { authorization: `Bearer ${this.opts.token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: this.stopping.signal,
    });
    return answerOf<T>(res.statusCode, await res.body.text());
  }

  /** Sends bytes [start, end) of a file as a request body, read as the socket takes it; the JSON answer, or a FerryApiError. */
  private async sendFile<T>(method: 'PUT', path: string, file: FileHandle, start: number, end: number, contentType: string): Promise<T> {
    let unreadable: SpoolUnreadable | null = null;
    // At most one buffer read ahead of the socket.
    const body = Readable.from(readRange(file, start, end, (err) => (unreadable = err)), { objectMode: false, highWaterMark: SEND_BUFFER_BYTES });
    try {
      const res = await request(this.opts.gatewayUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.opts.token()}`, 'content-type': contentType, 'content-length': String(end - start) },
        body,
        signal: this.stopping.signal,
      });
      // The gateway may answer (and close) before taking the whole body: its answer says why.
      return answerOf<T>(res.statusCode, await res.body.text());
    } catch (err) {
      throw unreadable ?? err;
    }
  }
}

/** Bytes [start, end) of a spool file, SEND_BUFFER_BYTES at a time; a read that fails is SpoolUnreadable. */
async function* readRange(file: FileHandle, start: number, end: number, failed: (err: SpoolUnreadable) => void): AsyncGenerator<Buffer> {
  for (let at = start; at < end; ) {
    const buffer = Buffer.allocUnsafeSlow(Math.min(SEND_BUFFER_BYTES, end - at));
    let n: number;
    try {
      n = (await file.read(buffer, 0, buffer.length, at)).bytesRead;
    } catch (err) {
      const e = new SpoolUnreadable(`the spooled result could not be read: ${(err as Error).message}`);
      failed(e);
      throw e;
    }
    if (n === 0) {
      const e = new SpoolUnreadable(`the spooled result ends at byte ${at}, before ${end}`);
      failed(e);
      throw e;
    }
    at += n;
    yield n === buffer.length ? buffer : buffer.subarray(0, n);
  }
}

function answerOf<T>(status: number, text: string): T {
  if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
  throw errorFromBody(status, text);
}

/** Worth trying again: the gateway was out of reach or overloaded, or the token had just expired. */
function transient(err: unknown): boolean {
  if (err instanceof FerryApiError) return err.status >= 500 || err.status === 429 || err.code === 'TOKEN_EXPIRED';
  // No answer at all (refused, reset, timed out, DNS) may mend; an unreadable spool will not.
  return !(err instanceof SpoolUnreadable);
}

function keyOf(taskId: string, attempt: number): string {
  return `${taskId} ${attempt}`;
}

function remove(spool: Spool): void {
  if (spool.fd !== null) closeSync(spool.fd);
  spool.fd = null;
  try {
    unlinkSync(spool.path);
  } catch {
    // already gone
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
