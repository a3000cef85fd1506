// The site cache against a local HTTP server standing in for the gateway's objects route.

import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../log';
import { CHUNK, ObjectCache } from './object-cache';

const ID = 'f'.repeat(64);
const DATA = Buffer.alloc(5 * CHUNK + 123).map((_, i) => (i * 31 + (i >> 12)) & 255);
const SHA = createHash('sha256').update(DATA).digest('hex');
const requests: Array<{ method: string; range: string | undefined; auth: string | undefined }> = [];
let server: Server;
let url: string;
let dir: string;
/** GETs still to answer 503 (Retry-After: 0) before serving. */
let unavailable = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-cache-'));
  server = createServer((req, res) => {
    requests.push({ method: req.method!, range: req.headers.range, auth: req.headers.authorization });
    if (req.url !== `/v3/objects/${ID}`) return void res.writeHead(404).end('{"code":"NOT_FOUND","message":"object not found"}');
    const headers = { 'x-ferry-size': String(DATA.length), 'x-ferry-sha256': SHA };
    if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'content-length': String(DATA.length) }).end();
    if (req.method === 'GET' && unavailable > 0 && unavailable--) return void res.writeHead(503, { 'retry-after': '0' }).end('{"code":"UNAVAILABLE","message":"busy"}');
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200, headers).end(DATA);
    const a = Number(m[1]);
    const b = Math.min(Number(m[2]), DATA.length - 1);
    // A little latency so that concurrent readers overlap.
    setTimeout(() => res.writeHead(206, { ...headers, 'content-range': `bytes ${a}-${b}/${DATA.length}` }).end(DATA.subarray(a, b + 1)), 30);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const log = createLogger({}, () => {});
const cache = (name: string, maxBytes = 1 << 30) => new ObjectCache({ dir: join(dir, name), gatewayUrl: url, token: () => 'tok', maxBytes, log });
const gets = () => requests.filter((r) => r.method === 'GET');

describe('ObjectCache', () => {
  it('reads a range across chunks, fetching only the covering chunks with the token', async () => {
    requests.length = 0;
    const c = cache('range');
    const { data, info } = await c.read(ID, CHUNK - 10, CHUNK + 10);
    expect(Buffer.compare(data, DATA.subarray(CHUNK - 10, CHUNK + 10))).toBe(0);
    expect(info).toEqual({ size: DATA.length, sha256: SHA });
    expect(gets().map((r) => r.range).sort()).toEqual([`bytes=0-${CHUNK - 1}`, `bytes=${CHUNK}-${2 * CHUNK - 1}`]);
    expect(requests.every((r) => r.auth === 'Bearer tok')).toBe(true);
    // The last, short chunk.
    const tail = await c.read(ID, DATA.length - 5, DATA.length);
    expect(Buffer.compare(tail.data, DATA.subarray(DATA.length - 5))).toBe(0);
    expect(gets()).toHaveLength(3);
    // Served again from disk.
    await c.read(ID, 0, 2 * CHUNK);
    expect(gets()).toHaveLength(3);
    expect(c.stats()).toMatchObject({ fetches: 3, chunks: 3, bytes: 2 * CHUNK + 123 });
    expect(requests.filter((r) => r.method === 'HEAD')).toHaveLength(1);
  });

  it('fetches a chunk again when the gateway could not serve it (503), and fails UNAVAILABLE once that does not mend', async () => {
    requests.length = 0;
    unavailable = 2;
    const c = cache('retry');
    const { data } = await c.read(ID, 10, 20);
    expect(Buffer.compare(data, DATA.subarray(10, 20))).toBe(0);
    expect(gets().map((r) => r.range)).toEqual(Array(3).fill(`bytes=0-${CHUNK - 1}`));
    unavailable = 100;
    await expect(c.read(ID, CHUNK, CHUNK + 1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    unavailable = 0;
  });

  it('single-flight: 10 concurrent reads of one chunk make one fetch', async () => {
    requests.length = 0;
    const c = cache('single');
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => c.read(ID, 3 * CHUNK + i, 3 * CHUNK + i + 100)));
    all.forEach((r, i) => expect(Buffer.compare(r.data, DATA.subarray(3 * CHUNK + i, 3 * CHUNK + i + 100))).toBe(0));
    expect(gets()).toHaveLength(1);
    expect(c.stats()).toMatchObject({ fetches: 1, misses: 10, hits: 0 });
    await c.read(ID, 3 * CHUNK, 3 * CHUNK + 1);
    expect(c.stats()).toMatchObject({ fetches: 1, hits: 1 });
  });

  it('stays within max bytes, evicting the least recently used chunk', async () => {
    requests.length = 0;
    const c = cache('lru', 2 * CHUNK);
    await c.read(ID, 0, 1); // chunk 0
    await c.read(ID, CHUNK, CHUNK + 1); // chunk 1
    await c.read(ID, 0, 1); // chunk 0 used again: chunk 1 is now the oldest
    await c.read(ID, 2 * CHUNK, 2 * CHUNK + 1); // chunk 2 evicts chunk 1
    expect(c.stats()).toMatchObject({ bytes: 2 * CHUNK, chunks: 2, evictions: 1 });
    expect(existsSync(join(dir, 'lru', ID, '1'))).toBe(false);
    expect(existsSync(join(dir, 'lru', ID, '0'))).toBe(true);
    await c.read(ID, 0, 1);
    expect(gets()).toHaveLength(3);
    await c.read(ID, CHUNK, CHUNK + 1);
    expect(gets()).toHaveLength(4);
    expect(c.stats().bytes).toBeLessThanOrEqual(2 * CHUNK);
  });

  it('answers NOT_FOUND for an unknown object and RANGE_NOT_SATISFIABLE outside one', async () => {
    const c = cache('errors');
    await expect(c.read('e'.repeat(64), 0, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(c.read('not-an-id', 0, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(c.read(ID, 0, DATA.length + 1)).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    await expect(c.read(ID, 5, 4)).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
  });

  it('checks a whole-object read against the sha256: a damaged cached chunk is fetched again', async () => {
    const c = cache('verify');
    expect((await c.read(ID, 0, DATA.length)).data.equals(DATA)).toBe(true);
    // Damage chunk 2 on disk, same length: a slice of it alone cannot tell, the whole read can.
    const path = join(dir, 'verify', ID, '2');
    const damaged = readFileSync(path);
    damaged[10] = damaged[10]! ^ 0xff;
    writeFileSync(path, damaged);
    requests.length = 0;
    const again = await c.read(ID, 0, DATA.length);
    expect(again.data.equals(DATA)).toBe(true);
    expect(gets().length).toBe(6);
    // The refetched chunks replaced the damaged one.
    expect(readFileSync(path).equals(DATA.subarray(2 * CHUNK, 3 * CHUNK))).toBe(true);
  });

  it('keeps its chunks across a restart of the agent: a new cache on the same directory serves them', async () => {
    const first = cache('reopen');
    await first.read(ID, 0, 2 * CHUNK);
    requests.length = 0;
    const second = cache('reopen');
    expect(second.stats()).toMatchObject({ chunks: 2, bytes: 2 * CHUNK });
    expect((await second.read(ID, 10, 2 * CHUNK - 10)).data.equals(DATA.subarray(10, 2 * CHUNK - 10))).toBe(true);
    // Only the once-per-run HEAD: no chunk was fetched again.
    expect(requests.map((r) => r.method)).toEqual(['HEAD']);
    // Under a smaller bound, the reopened cache keeps the most recent chunks only.
    expect(cache('reopen', CHUNK).stats()).toMatchObject({ chunks: 1, bytes: CHUNK });
  });
});
