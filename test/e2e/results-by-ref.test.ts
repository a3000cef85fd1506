// Results by reference through the whole path (worker → manager → agent → gateway → SDK): a task
// returning 50 MiB of bytes succeeds, the client reads back exactly those bytes, and the agent,
// which moves them from its workers to the gateway, never holds them in memory (nor 100 MiB, which
// it uploads in parts), nor does the gateway; a 1 MiB JSON result round-trips as its value; a result at the inline limit stays inline; a DataRef returned comes back
// as the same reference, with nothing copied; an agent killed mid-upload runs the task again.

import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LIMITS, type Json, type ResultRef } from '../../src/protocol/api';
import { readCredentials, writeCredentials } from '../../src/endpoint/ferry-home';
import type { Client } from '../../src/sdk/client';
import { vmRssBytes, workerdPids } from '../helpers/processes';
import { startStack, type AgentProcess, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const MiB = 1024 * 1024;
const BIG = 50 * MiB;

let stack: Stack;
let alice: Client;
let endpoint: EndpointHandle;
let agent: AgentProcess;
let bytesFn: string;
let jsonFn: string;
let stringFn: string;

// The same xorshift32 stream here and in the sandbox: 4 bytes per step, little-endian.
const GENERATOR = `(n, seed) => {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0; }
  return new Uint8Array(words.buffer, 0, n);
}`;
const generate = new Function(`return ${GENERATOR}`)() as (n: number, seed: number) => Uint8Array;

// About 1 MiB of JSON: objects, numbers and strings, not one long string.
const JSON_RESULT = `(n) => Array.from({ length: n }, (_, i) => ({ i, name: 'item-' + i, tags: ['a', 'b'], x: i / 7 }))`;
const jsonValue = new Function(`return ${JSON_RESULT}`)() as (n: number) => Json;

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');


/** Peak RSS of each named set of processes, sampled every 20 ms while `work` runs. */
async function peakRss<T>(sets: Record<string, number[]>, work: () => Promise<T>): Promise<{ value: T; before: Record<string, number>; peak: Record<string, number> }> {
  const sample = () => Object.fromEntries(Object.entries(sets).map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + vmRssBytes(pid), 0)]));
  const before = sample();
  const peak = { ...before };
  const timer = setInterval(() => {
    for (const [name, rss] of Object.entries(sample())) peak[name] = Math.max(peak[name]!, rss);
  }, 20);
  try {
    return { value: await work(), before, peak };
  } finally {
    clearInterval(timer);
  }
}

const mb = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('results', 'alice', { task_timeout_s: 60, task_memory_mb: 256 });
  agent = endpoint.start();
  [bytesFn, jsonFn, stringFn] = await Promise.all([
    alice.registerFunction(GENERATOR, { name: 'generate' }),
    alice.registerFunction(JSON_RESULT, { name: 'json_result' }),
    alice.registerFunction('(n) => "x".repeat(n)', { name: 'repeat' }),
  ]);
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('results by reference', () => {
  it('a task returning 50 MiB succeeds, the client reads back exactly those bytes, and the agent never holds them', async () => {
    const expected = generate(BIG, 7);
    const digest = sha256(expected);
    // Warm the path (worker isolate, the agent's heap, the upload route) so the measured run shows
    // what the bytes cost, not one-time growth.
    const warm = await peakRss({ agent: [agent.child.pid!] }, () => alice.run(endpoint.endpointId, bytesFn, [10 * MiB, 1], undefined, 60));
    expect(warm.value.status).toBe('success');

    const t0 = Date.now();
    const measured = await peakRss({ agent: [agent.child.pid!], workerd: workerdPids(stack.gateway.child.pid!) }, () =>
      alice.run(endpoint.endpointId, bytesFn, [BIG, 7], undefined, 60),
    );
    const doc = measured.value;
    const seconds = (Date.now() - t0) / 1000;
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.details.result_ref).toBe(true);
    const ref = doc.result as ResultRef;
    expect(ref).toEqual({ $ref: expect.stringMatching(/^[0-9a-f]{64}$/), size: BIG, sha256: digest, content_type: 'application/octet-stream' });

    // The SDK resolves the reference: exactly those bytes.
    const got = await alice.result(doc.task_id);
    expect(got).toBeInstanceOf(Uint8Array);
    expect((got as Uint8Array).byteLength).toBe(BIG);
    expect(sha256(got as Uint8Array)).toBe(digest);
    // …or answers the reference itself, without reading the object.
    const statsBefore = await alice.objectStats();
    expect(await alice.result(doc.task_id, { resolve: false })).toEqual(ref);
    expect((await alice.objectStats()).bytes_served).toBe(statsBefore.bytes_served);
    // The object is alice's, stored by her endpoint; bob cannot see it.
    expect(statsBefore.writers[`endpoint:${endpoint.endpointId}`]!.bytes).toBeGreaterThanOrEqual(BIG);
    const bob = await stack.client('bob');
    await expect(bob.head(ref)).rejects.toMatchObject({ status: 404 });
    // Lineage: the task generated that object.
    const prov = await fetch(`${stack.gateway.url}/v3/provenance/tasks/${doc.task_id}`, { headers: { authorization: `Bearer ${await stack.tokenFor('alice')}` } });
    expect(prov.status).toBe(200);
    expect(await prov.text()).toContain(ref.$ref);

    // Grown from the working level the warm-up reached, not from wherever GC left the agent at
    // rest: fresh-clone CI runs saw it at rest at 117 to 149 MiB before this run while its peak
    // during it stayed at 150 to 158 MiB (+32.7 MiB from the low point, once). A held 50 MiB result
    // would still show as +50 MiB over the warm-up's peak.
    const agentGrowth = measured.peak.agent! - Math.max(measured.before.agent!, warm.peak.agent!);
    const workerdGrowth = measured.peak.workerd! - measured.before.workerd!;
    console.log(`results-by-ref: 50 MiB result in ${seconds.toFixed(1)} s; agent RSS ${mb(measured.before.agent!)} (warm-up peak ${mb(warm.peak.agent!)}) → peak ${mb(measured.peak.agent!)} (+${mb(agentGrowth)}); workerd RSS ${mb(measured.before.workerd!)} → peak ${mb(measured.peak.workerd!)} (+${mb(workerdGrowth)})`);
    // Holding the result would add its 50 MiB (and its base64 text, 67 MiB more) to the agent. Its
    // heap's own growth is a few MiB alone, up to 19 MiB seen in a full suite run on 2 cores.
    expect(agentGrowth).toBeLessThan(32 * MiB);
    // workerd streams the upload into R2 (objects.test.ts bounds that over 200 MiB) with some
    // allocator slack (+21 to +25 MiB seen on 2 loaded cores): below the result's size, so a gateway
    // that held the whole result once, as bytes or as text, fails here.
    expect(workerdGrowth).toBeLessThan(BIG);
  }, 180_000);

  it("a 100 MiB result (uploaded by the agent in parts) moves the agent's memory no further", async () => {
    const size = 2 * BIG;
    const digest = sha256(generate(size, 9));
    const pid = agent.child.pid!;
    // The working level first (see the 50 MiB test: the agent's RSS at rest swings with GC).
    const warm = await peakRss({ agent: [pid] }, () => alice.run(endpoint.endpointId, bytesFn, [10 * MiB, 2], undefined, 60));
    expect(warm.value.status).toBe('success');
    const measured = await peakRss({ agent: [pid], workerd: workerdPids(stack.gateway.child.pid!) }, () => alice.run(endpoint.endpointId, bytesFn, [size, 9], undefined, 60));
    expect(measured.value.status, JSON.stringify(measured.value.exception)).toBe('success');
    // The gateway computed this digest over what it stored: the bytes are exactly the function's.
    expect(measured.value.result).toMatchObject({ size, sha256: digest, content_type: 'application/octet-stream' });
    const agentGrowth = measured.peak.agent! - Math.max(measured.before.agent!, warm.peak.agent!);
    const workerdGrowth = measured.peak.workerd! - measured.before.workerd!;
    console.log(`results-by-ref: 100 MiB result; agent RSS +${mb(agentGrowth)} over ${mb(Math.max(measured.before.agent!, warm.peak.agent!))}, workerd RSS +${mb(workerdGrowth)}`);
    // Far below the result's size: an agent holding the result, or its 1 MiB parts piling up for
    // the garbage collector (+69 MiB measured), goes over; 16-21 MiB seen under load.
    expect(agentGrowth).toBeLessThan(32 * MiB);
    // Nor does the gateway hold the result: +21 to +40 MiB seen, a held result adds its 100 MiB.
    expect(workerdGrowth).toBeLessThan(0.75 * size);
  }, 180_000);

  it('a 1 MiB JSON result round-trips as its value, stored as JSON text', async () => {
    const n = 16_000;
    const expected = jsonValue(n);
    const text = JSON.stringify(expected);
    expect(text.length).toBeGreaterThan(MiB);
    const doc = await alice.run(endpoint.endpointId, jsonFn, [n], undefined, 60);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.details.result_ref).toBe(true);
    expect(doc.result).toEqual({ $ref: expect.any(String), size: Buffer.byteLength(text), sha256: sha256(text), content_type: 'application/json' });
    expect(await alice.result(doc.task_id)).toEqual(expected);
    // The object itself is the JSON text.
    expect(new TextDecoder().decode(await alice.get(doc.result as ResultRef))).toBe(text);
  });

  it('a result of exactly the inline limit stays inline; one byte more goes by reference and resolves to the same kind of value', async () => {
    const inline = await alice.run(endpoint.endpointId, stringFn, [LIMITS.maxInlineResultBytes - 2], undefined, 60);
    expect(inline.status, JSON.stringify(inline.exception)).toBe('success');
    expect(inline.details.result_ref).toBeUndefined();
    expect(inline.result).toBe('x'.repeat(LIMITS.maxInlineResultBytes - 2));
    expect(await alice.result(inline.task_id)).toBe(inline.result);

    const over = await alice.run(endpoint.endpointId, stringFn, [LIMITS.maxInlineResultBytes - 1], undefined, 60);
    expect(over.status, JSON.stringify(over.exception)).toBe('success');
    expect(over.details.result_ref).toBe(true);
    expect(over.result).toMatchObject({ size: LIMITS.maxInlineResultBytes + 1, content_type: 'application/json' });
    expect(await alice.result(over.task_id)).toBe('x'.repeat(LIMITS.maxInlineResultBytes - 1));
  });

  it('small bytes come back as bytes', async () => {
    const doc = await alice.run(endpoint.endpointId, bytesFn, [10, 3], undefined, 60);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.details.result_ref).toBe(true);
    expect(Array.from((await alice.result(doc.task_id)) as Uint8Array)).toEqual(Array.from(generate(10, 3)));
  });

  it('a function returning the DataRef it was given returns that same reference, and nothing is copied', async () => {
    const input = await alice.put(generate(3 * MiB, 11));
    const identity = await alice.registerFunction('(ref) => ref', { name: 'identity' });
    const before = await alice.objectStats();
    const doc = await alice.run(endpoint.endpointId, identity, [{ $ref: input.$ref }], undefined, 60);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual({ $ref: input.$ref });
    expect(doc.details.result_ref).toBeUndefined();
    expect(await alice.result(doc.task_id)).toEqual({ $ref: input.$ref });
    const after = await alice.objectStats();
    expect(after.objects).toBe(before.objects);
    expect(after.writers).toEqual(before.writers);
    expect(after.bytes_served).toBe(before.bytes_served); // the endpoint did not even read it
  });
});

/**
 * An HTTP proxy in front of the gateway for an agent's REST calls (token exchange, object reads and
 * uploads): it forwards everything but, while `holdUploads` is set, takes object uploads and never
 * answers them.
 */
async function uploadHoldingProxy(target: string): Promise<{ url: string; held: () => number; release: () => void; close: () => Promise<void> }> {
  const to = new URL(target);
  let holding = true;
  let held = 0;
  const server: Server = createServer((req, res) => {
    if (holding && req.method === 'PUT' && req.url?.startsWith('/v3/objects')) {
      held++;
      req.resume();
      return;
    }
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => held,
    release: () => void (holding = false),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('an agent killed while it uploads a result', () => {
  it('loses only that execution: after a restart the task runs again and its result arrives whole', async () => {
    const proxy = await uploadHoldingProxy(stack.gateway.url);
    try {
      const crashy = await stack.createEndpoint('results-crash', 'alice', { task_timeout_s: 60, task_memory_mb: 128 });
      // The agent's REST calls go through the proxy; its socket goes to the gateway directly.
      const home = join(stack.dir, 'home');
      writeCredentials({ ...readCredentials(crashy.name, home), gateway_url: proxy.url }, home);
      const first = crashy.start();
      await waitForWorkers(alice, crashy.endpointId, 1);
      const size = 3 * MiB + 5;
      const id = await alice.submit(crashy.endpointId, bytesFn, [size, 21]);
      await vi.waitFor(() => expect(proxy.held(), 'the agent to start uploading the result').toBeGreaterThan(0), { timeout: 60_000, interval: 20 });
      await first.kill('SIGKILL');
      expect((await alice.getTask(id)).status).not.toBe('success');

      proxy.release();
      crashy.start();
      const doc = await vi.waitFor(async () => {
        const d = await alice.getTask(id, { wait: 5 });
        expect(['success', 'failed'], 'the task to end after the restart').toContain(d.status);
        return d;
      }, { timeout: 60_000, interval: 100 });
      expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
      expect(doc.details.attempts).toBeGreaterThanOrEqual(2);
      expect(doc.result).toMatchObject({ size, sha256: sha256(generate(size, 21)) });
      expect(sha256((await alice.result(id)) as Uint8Array)).toBe(sha256(generate(size, 21)));
    } finally {
      await proxy.close();
    }
  }, 180_000);
});
