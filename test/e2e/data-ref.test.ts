// Data by reference through the whole path: 8 MiB put through the SDK, a function on a real
// endpoint reading a 1,000-byte slice through its DataRef; the gateway serves only the covering
// 1 MiB chunk, once for many concurrent tasks, and not again once the agent's cache holds it.

import { createHash } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generated } from '../helpers/generated-bytes';
import type { Client } from '../../src/sdk/client';
import { startStack, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const MiB = 1024 * 1024;
const DATA = new Uint8Array(8 * MiB).map((_, i) => (i * 31 + (i >>> 11)) & 255);

let stack: Stack;
let alice: Client;
let endpoint: EndpointHandle;
let ref: string;
let fnId: string;

/** What the function answers for a slice [start, start + 1000): its first 4 bytes, its length and a checksum. */
function expected(start: number): number[] {
  const s = DATA.subarray(start, start + 1000);
  let sum = 0;
  for (const b of s) sum = (sum * 31 + b) >>> 0;
  return [...Array.from(s.subarray(0, 4)), s.length, sum];
}

const reader = () => `endpoint:${endpoint.endpointId}`;
async function served(): Promise<{ bytes_served: number; requests: number }> {
  return (await alice.objectStats()).readers[reader()] ?? { bytes_served: 0, requests: 0 };
}

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('data', 'alice', { task_timeout_s: 20, task_memory_mb: 128 });
  endpoint.start();
  ref = (await alice.put(DATA)).$ref;
  fnId = await alice.registerFunction(`async (ref, start) => {
    const s = await ref.slice(start, start + 1000);
    let sum = 0;
    for (const b of s) sum = (sum * 31 + b) >>> 0;
    return Array.from(s.slice(0, 4)).concat([s.length, sum]);
  }`);
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  if (process.env.FERRY_TEST_DUMP_GATEWAY) writeFileSync(process.env.FERRY_TEST_DUMP_GATEWAY, stack?.gatewayOutput() ?? '');
  await stack?.stop();
});

describe('data by reference', () => {
  it('reads a slice; the gateway serves only the covering chunk, and a second run comes from the cache', async () => {
    const start = 3 * MiB + 5;
    const before = await served();
    const t0 = Date.now();
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, start], undefined, 30);
    const first = Date.now() - t0;
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual(expected(start));
    const after = await served();
    expect(after.bytes_served - before.bytes_served).toBeLessThanOrEqual(2 * MiB);
    expect(after.bytes_served - before.bytes_served).toBe(MiB);

    const t1 = Date.now();
    const again = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, start + 10], undefined, 30);
    const second = Date.now() - t1;
    expect(again.result).toEqual(expected(start + 10));
    expect(await served()).toEqual(after);
    console.log(`data-ref: first run ${first} ms, cached run ${second} ms, served ${after.bytes_served - before.bytes_served} bytes in ${after.requests - before.requests} requests`);
  });

  it('10 concurrent tasks on one chunk: the gateway serves it once', async () => {
    const before = await served();
    const starts = Array.from({ length: 10 }, (_, i) => 6 * MiB + 1000 * i);
    const t0 = Date.now();
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fnId, starts.map((s) => [{ $ref: ref }, s]));
    const docs = await alice.waitAll(task_ids, { timeout: 60 });
    const took = Date.now() - t0;
    expect(docs.map((d) => d.status)).toEqual(Array(10).fill('success'));
    expect(docs.map((d) => d.result)).toEqual(starts.map(expected));
    const after = await served();
    expect(after.bytes_served - before.bytes_served).toBe(MiB);
    expect(after.requests - before.requests).toBe(1);
    // Run again: all from the cache.
    const { task_ids: again } = await alice.submitBatch(endpoint.endpointId, fnId, starts.map((s) => [{ $ref: ref }, s]));
    const docs2 = await alice.waitAll(again, { timeout: 60 });
    expect(docs2.map((d) => d.result)).toEqual(starts.map(expected));
    expect(await served()).toEqual(after);
    console.log(`data-ref: 10 concurrent tasks ${took} ms, served ${after.bytes_served - before.bytes_served} bytes in ${after.requests - before.requests} requests`);
  });

  it('fails with FERRY_DATA_NOT_FOUND for another user\'s object, and RangeError past the end', async () => {
    const bob = await stack.client('bob');
    const bobs = (await bob.put(new Uint8Array([1, 2, 3]))).$ref;
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: bobs }, 0], undefined, 30);
    expect(doc.status).toBe('failed');
    expect(doc.exception?.code).toBe('FERRY_DATA_NOT_FOUND');
    const past = await alice.run(endpoint.endpointId, fnId, [{ $ref: ref }, 8 * MiB - 10], undefined, 30);
    expect(past.status).toBe('failed');
    expect(past.exception).toMatchObject({ code: 'FERRY_FUNCTION_ERROR', name: 'RangeError' });
  });

  it('1 GiB uploaded once in parts: a 1 MiB slice at 512 MiB has the right digest, and the gateway serves only the chunks covering it', async () => {
    const GiB = 1024 * MiB;
    const range = { start: 512 * MiB, end: 513 * MiB };
    const source = generated(GiB, 7, range);
    const t0 = Date.now();
    let parts = 0;
    const big = await alice.put(source.stream, { partSize: 16 * MiB, multipartThreshold: 16 * MiB, onProgress: () => void parts++ });
    const uploadS = (Date.now() - t0) / 1000;
    expect(big.size).toBe(GiB);
    expect(big.sha256).toBe(source.digest());
    const want = createHash('sha256').update(source.kept()).digest('hex');
    const sliceFn = await alice.registerFunction(`async (ref, start, end) => {
      const s = await ref.slice(start, end);
      return { length: s.length, sha256: ${SHA256_JS}(s) };
    }`);
    const before = await served();
    const doc = await alice.run(endpoint.endpointId, sliceFn, [{ $ref: big.$ref }, range.start, range.end], undefined, 60);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual({ length: MiB, sha256: want });
    const after = await served();
    const bytes = after.bytes_served - before.bytes_served;
    console.log(`data-ref 1 GiB: upload ${uploadS.toFixed(1)} s (${(1024 / uploadS).toFixed(0)} MiB/s, ${parts} progress calls); the slice made the gateway serve ${bytes} bytes in ${after.requests - before.requests} request(s)`);
    // At most the MiB itself plus one chunk (1 MiB) on each side.
    expect(bytes).toBeGreaterThanOrEqual(MiB);
    expect(bytes).toBeLessThanOrEqual(3 * MiB);
    await alice.deleteObject(big.$ref);
  }, 300_000);

  it('with the cache bound below the working set, eviction keeps the cache under its bound and results stay right', async () => {
    const bound = 3 * MiB;
    const small = await stack.createEndpoint('data-small-cache', 'alice', { task_timeout_s: 20, task_memory_mb: 128, cache_max_bytes: bound });
    small.start();
    await waitForWorkers(alice, small.endpointId, 2);
    const cacheDir = join(small.stateDir, 'cache');
    const diskBytes = (dir: string): number =>
      readdirSync(dir, { withFileTypes: true }).reduce((sum, e) => sum + (e.isDirectory() ? diskBytes(join(dir, e.name)) : e.isFile() ? statSync(join(dir, e.name)).size : 0), 0);
    // Three passes over all 8 chunks, one task per chunk at a time: a working set of 8 MiB through a 3 MiB cache.
    let peak = 0;
    const reader = `endpoint:${small.endpointId}`;
    const servedSmall = async () => (await alice.objectStats()).readers[reader]?.bytes_served ?? 0;
    for (let pass = 0; pass < 3; pass++) {
      for (let chunk = 0; chunk < 8; chunk++) {
        const start = chunk * MiB + 17 * pass;
        const doc = await alice.run(small.endpointId, fnId, [{ $ref: ref }, start], undefined, 30);
        expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
        expect(doc.result).toEqual(expected(start));
        peak = Math.max(peak, diskBytes(cacheDir));
      }
    }
    const servedBytes = await servedSmall();
    console.log(`data-ref eviction: cache bound ${bound} bytes, peak on disk ${peak} bytes; the gateway served ${servedBytes / MiB} MiB for 24 reads of 8 chunks`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(bound);
    // Evicted chunks were fetched again: more than one pass's worth of bytes.
    expect(servedBytes).toBeGreaterThan(8 * MiB);
  }, 180_000);
});

/** A plain-JS sha256 of a Uint8Array to hex, for functions in the sandbox (no WebCrypto there). */
const SHA256_JS = `((bytes) => {
  const K = new Uint32Array([0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2]);
  const H = new Uint32Array([0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19]);
  const len = bytes.length, padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(bytes); padded[len] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 4, (len * 8) >>> 0); dv.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
  const W = new Uint32Array(64);
  const r = (x, n) => (x >>> n) | (x << (32 - n));
  for (let o = 0; o < padded.length; o += 64) {
    for (let i = 0; i < 16; i++) W[i] = dv.getUint32(o + i * 4);
    for (let i = 16; i < 64; i++) W[i] = (r(W[i-15],7) ^ r(W[i-15],18) ^ (W[i-15] >>> 3)) + W[i-16] + (r(W[i-2],17) ^ r(W[i-2],19) ^ (W[i-2] >>> 10)) + W[i-7];
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (r(e,6) ^ r(e,11) ^ r(e,25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) >>> 0;
      const t2 = ((r(a,2) ^ r(a,13) ^ r(a,22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  return Array.from(H, (x) => x.toString(16).padStart(8, '0')).join('');
})`;
