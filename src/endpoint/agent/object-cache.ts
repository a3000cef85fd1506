// The agent's site cache of object bytes: every worker of the endpoint reads data by reference
// through it (compute nodes have no route out). Objects are cut into fixed chunks of CHUNK bytes;
// a chunk is fetched once from the gateway (`GET /v3/objects/{id}` with `Range`, the agent's access
// token) and kept on local disk under `<dir>/<object id>/<chunk index>`, bounded in bytes with LRU
// eviction. Concurrent readers of one chunk share one fetch (single-flight). An object id is derived
// from its owner and its content, so (id, chunk index) names immutable bytes.
// A read of a whole object is verified against the object's sha256 (a damaged chunk is fetched
// again). The index lives in memory and is rebuilt from the directory when the agent starts, so a
// restarted agent keeps its cache; a hit touches the chunk's mtime, which orders that rebuild.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, RetryAgent, request, type Dispatcher } from 'undici';
import { FerryError } from '../../protocol/errors';
import type { Logger } from '../log';

/** Bytes per cached chunk: 1 MiB. A read fetches only the chunks covering its range. */
export const CHUNK = 1024 * 1024;

export interface ObjectCacheOptions {
  dir: string;
  gatewayUrl: string;
  /** The agent's current access token (endpoint tokens read their owner's objects). */
  token: () => string;
  /** Bytes of chunks kept on disk; the least recently used go beyond this. */
  maxBytes: number;
  log: Logger;
}

export interface ObjectInfo {
  size: number;
  sha256: string;
}

export interface ObjectCacheStats {
  hits: number;
  misses: number;
  /** Chunk fetches from the gateway (≤ misses: concurrent misses share one fetch). */
  fetches: number;
  bytes: number;
  chunks: number;
  evictions: number;
}

const ID = /^[0-9a-f]{64}$/;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export class ObjectCache {
  /** Chunk key → its byte length; Map order is recency (last = most recently used). */
  private readonly lru = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<Buffer>>();
  private readonly infos = new Map<string, Promise<ObjectInfo>>();
  private bytes = 0;
  private readonly counts = { hits: 0, misses: 0, fetches: 0, evictions: 0 };

  constructor(private readonly opts: ObjectCacheOptions) {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    this.reopen();
  }

  /**
   * Takes up the chunks a previous run left on disk, least recently used first by mtime (a chunk is
   * renamed into place whole, so a file is a whole chunk; leftovers of an interrupted write go).
   * An object is still looked up (HEAD) once per run before its chunks are served: a deleted one
   * answers NOT_FOUND, whatever is on disk.
   */
  private reopen(): void {
    const found: Array<{ key: string; size: number; mtime: number }> = [];
    for (const entry of readdirSync(this.opts.dir, { withFileTypes: true })) {
      const objectDir = join(this.opts.dir, entry.name);
      if (!entry.isDirectory() || !ID.test(entry.name)) {
        rmSync(objectDir, { recursive: true, force: true });
        continue;
      }
      for (const file of readdirSync(objectDir)) {
        const path = join(objectDir, file);
        if (!/^\d+$/.test(file)) {
          rmSync(path, { force: true });
          continue;
        }
        const st = statSync(path);
        found.push({ key: `${entry.name}/${file}`, size: st.size, mtime: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.lru.set(f.key, f.size);
      this.bytes += f.size;
    }
    while (this.bytes > this.opts.maxBytes) {
      const oldest = this.lru.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
    }
    if (found.length > 0) this.opts.log.info('site cache reopened', { chunks: this.lru.size, bytes: this.bytes });
  }

  stats(): ObjectCacheStats {
    return { ...this.counts, bytes: this.bytes, chunks: this.lru.size };
  }

  /** Size and digest (HEAD, once per object while the agent runs). */
  info(id: string): Promise<ObjectInfo> {
    if (!ID.test(id)) return Promise.reject(new FerryError('NOT_FOUND', `not an object id: ${id.slice(0, 80)}`));
    let p = this.infos.get(id);
    if (!p) {
      p = this.head(id);
      this.infos.set(id, p);
      p.catch(() => this.infos.delete(id));
    }
    return p;
  }

  /** Bytes [start, end) of an object; RANGE_NOT_SATISFIABLE outside it, NOT_FOUND for no such object. */
  async read(id: string, start: number, end: number): Promise<{ info: ObjectInfo; data: Buffer }> {
    const info = await this.info(id);
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= info.size)) {
      throw new FerryError('RANGE_NOT_SATISFIABLE', `bytes ${start}..${end} are outside the object (${info.size} bytes)`);
    }
    if (start === end) return { info, data: Buffer.alloc(0) };
    const first = Math.floor(start / CHUNK);
    const last = Math.floor((end - 1) / CHUNK);
    const chunks = await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => this.chunk(id, first + i, info.size)));
    const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    // A read of the whole object is checked against its digest: a damaged cached chunk is dropped
    // and the object fetched again; bytes that still do not match are never handed to a task.
    if (start === 0 && end === info.size && info.sha256 !== '' && sha256(whole) !== info.sha256) {
      this.opts.log.warn('cached object does not match its sha256; fetching it again', { object_id: id });
      for (let i = first; i <= last; i++) this.forget(`${id}/${i}`);
      const fresh = Buffer.concat(await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => this.fetchChunk(id, first + i, info.size))));
      if (sha256(fresh) !== info.sha256) {
        for (let i = first; i <= last; i++) this.forget(`${id}/${i}`);
        throw new FerryError('UNAVAILABLE', `the bytes of object ${id} do not match its sha256 ${info.sha256}`);
      }
      return { info, data: fresh };
    }
    const offset = start - first * CHUNK;
    return { info, data: whole.subarray(offset, offset + (end - start)) };
  }

  private chunk(id: string, index: number, size: number): Promise<Buffer> {
    const key = `${id}/${index}`;
    const length = this.lru.get(key);
    if (length !== undefined) {
      try {
        const path = join(this.opts.dir, id, String(index));
        const data = readFileSync(path);
        const now = new Date();
        utimesSync(path, now, now);
        this.lru.delete(key);
        this.lru.set(key, length);
        this.counts.hits++;
        this.opts.log.debug('object cache hit', { object_id: id, chunk: index });
        return Promise.resolve(data);
      } catch {
        this.forget(key);
      }
    }
    this.counts.misses++;
    let p = this.inflight.get(key);
    if (p) {
      this.opts.log.debug('object cache miss (joined a fetch)', { object_id: id, chunk: index });
      return p;
    }
    this.opts.log.debug('object cache miss', { object_id: id, chunk: index });
    p = this.fetchChunk(id, index, size).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async fetchChunk(id: string, index: number, size: number): Promise<Buffer> {
    this.counts.fetches++;
    const a = index * CHUNK;
    const b = Math.min(size, a + CHUNK) - 1;
    const res = await this.get(id, 'GET', { range: `bytes=${a}-${b}` });
    const data = Buffer.from(await res.body.arrayBuffer());
    if (data.length !== b - a + 1) throw new FerryError('UNAVAILABLE', `the gateway sent ${data.length} bytes for chunk ${index} of ${id}, expected ${b - a + 1}`);
    this.store(id, index, data);
    return data;
  }

  private store(id: string, index: number, data: Buffer): void {
    if (data.length > this.opts.maxBytes) return;
    const key = `${id}/${index}`;
    try {
      mkdirSync(join(this.opts.dir, id), { recursive: true });
      const path = join(this.opts.dir, id, String(index));
      writeFileSync(`${path}.tmp`, data);
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      this.opts.log.warn('object cache write failed', { object_id: id, chunk: index, error: (err as Error).message });
      return;
    }
    if (this.lru.has(key)) this.forget(key);
    this.lru.set(key, data.length);
    this.bytes += data.length;
    while (this.bytes > this.opts.maxBytes) {
      const oldest = this.lru.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
      this.counts.evictions++;
    }
  }

  private forget(key: string): void {
    const length = this.lru.get(key);
    if (length === undefined) return;
    this.lru.delete(key);
    this.bytes -= length;
    try {
      unlinkSync(join(this.opts.dir, key));
    } catch {
      // already gone
    }
  }

  private async head(id: string): Promise<ObjectInfo> {
    const res = await this.get(id, 'HEAD', {});
    await res.body.dump();
    const header = (name: string) => { const v = res.headers[name]; return Array.isArray(v) ? v[0] : v; };
    const size = Number(header('x-ferry-size') ?? header('content-length'));
    const sha256 = header('x-ferry-sha256') ?? '';
    if (!Number.isInteger(size) || size < 0) throw new FerryError('UNAVAILABLE', `the gateway gave no size for object ${id}`);
    return { size, sha256 };
  }

  private async get(id: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const url = `${this.opts.gatewayUrl.replace(/\/+$/, '')}/v3/objects/${id}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method, headers: { authorization: `Bearer ${this.opts.token()}`, ...headers }, signal: AbortSignal.timeout(60_000), dispatcher: downloads() });
    } catch (err) {
      throw new FerryError('UNAVAILABLE', `could not reach the gateway for object ${id}: ${(err as Error).message}`);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    await res.body.dump().catch(() => undefined);
    // The gateway answers 404 for another owner's object as for a missing one.
    if (res.statusCode === 404 || res.statusCode === 403) throw new FerryError('NOT_FOUND', `object ${id} not found`);
    if (res.statusCode === 416) throw new FerryError('RANGE_NOT_SATISFIABLE', `range outside object ${id}`);
    throw new FerryError('UNAVAILABLE', `the gateway answered ${res.statusCode} for object ${id}`);
  }
}

let retrying: RetryAgent | null = null;

/**
 * Reads of objects are idempotent GETs and HEADs: undici retries those that may mend (no answer,
 * 429, 502-504) a few times with backoff, honouring Retry-After, before a read fails UNAVAILABLE.
 */
function downloads(): RetryAgent {
  retrying ??= new RetryAgent(new Agent(), {
    maxRetries: 3, minTimeout: 250, maxTimeout: 2_000, timeoutFactor: 2,
    methods: ['GET', 'HEAD'], statusCodes: [429, 502, 503, 504],
  });
  return retrying;
}
