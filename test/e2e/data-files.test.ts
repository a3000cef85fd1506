// Data already at the site, through the whole path: an endpoint whose config allows one data root.
// A `file://` reference inside it is read in place (the gateway serves nothing); outside it, by
// `..` or by a hard link, the task fails FERRY_DATA_PATH_REFUSED, and a symbolic link leading out
// fails exactly as a missing file (FERRY_DATA_NOT_FOUND, naming only the URL); an object reference with
// site locations reads a good copy in place and falls back to the gateway past bad ones.

import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { startStack, type AgentProcess, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const MiB = 1024 * 1024;
const DATA = Buffer.alloc(3 * MiB + 99).map((_, i) => (i * 29 + (i >>> 9)) & 255);
const SHA = createHash('sha256').update(DATA).digest('hex');

let stack: Stack;
let alice: Client;
let endpoint: EndpointHandle;
let agent: AgentProcess;
let fnId: string;
let objectId: string;
let base: string;
let root: string;
let outside: string;
const url = (p: string) => pathToFileURL(p).href;

/** What the function answers for [start, start + 1000): first 4 bytes, length, checksum, size, sha256. */
function expected(start: number): unknown[] {
  const s = DATA.subarray(start, start + 1000);
  let sum = 0;
  for (const b of s) sum = (sum * 31 + b) >>> 0;
  return [Array.from(s.subarray(0, 4)), s.length, sum, DATA.length, SHA];
}

async function served(): Promise<{ bytes_served: number; requests: number }> {
  return (await alice.objectStats()).readers[`endpoint:${endpoint.endpointId}`] ?? { bytes_served: 0, requests: 0 };
}

beforeAll(async () => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-data-files-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(root, 'data.bin'), DATA);
  writeFileSync(join(root, 'stale.bin'), Buffer.alloc(DATA.length, 1)); // the object's size, other bytes
  writeFileSync(join(outside, 'secret.bin'), DATA);
  symlinkSync(join(outside, 'secret.bin'), join(root, 'escape.bin'));
  linkSync(join(outside, 'secret.bin'), join(root, 'hard.bin'));

  stack = await startStack();
  alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('files', 'alice', { task_timeout_s: 20, task_memory_mb: 128, data_roots: [root] });
  agent = endpoint.start({ env: { FERRY_LOG: 'debug' } });
  objectId = (await alice.put(DATA)).$ref;
  fnId = await alice.registerFunction(`async (ref, start) => {
    const s = await ref.slice(start, start + 1000);
    let sum = 0;
    for (const b of s) sum = (sum * 31 + b) >>> 0;
    return [Array.from(s.slice(0, 4)), s.length, sum, await ref.size(), await ref.sha256()];
  }`);
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('file references', () => {
  it('reads a slice of a file inside an allowed root in place: the gateway serves nothing', async () => {
    const before = await served();
    const start = 2 * MiB - 500;
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: url(join(root, 'data.bin')) }, start], undefined, 30);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual(expected(start));
    expect(await served()).toEqual(before);
  });

  it('refuses a path outside the roots, a .. escape and a hard link to a file outside, with FERRY_DATA_PATH_REFUSED', async () => {
    const refs = [
      url(join(outside, 'secret.bin')),
      `file://${root}/../outside/secret.bin`,
      url(join(root, 'hard.bin')),
    ];
    const before = await served();
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fnId, refs.map((r) => [{ $ref: r }, 0]));
    const docs = await alice.waitAll(task_ids, { timeout: 60 });
    expect(docs.map((d) => d.status)).toEqual(['failed', 'failed', 'failed']);
    expect(docs.map((d) => d.exception?.code)).toEqual(['FERRY_DATA_PATH_REFUSED', 'FERRY_DATA_PATH_REFUSED', 'FERRY_DATA_PATH_REFUSED']);
    docs.forEach((d, i) => expect(d.exception?.message).toContain(`${refs[i]} is refused`));
    expect(docs.map((d) => /outside the endpoint's data_roots|\.\. segment|more than one hard link/.exec(d.exception?.message ?? '')?.[0])).toEqual([
      "outside the endpoint's data_roots", '.. segment', 'more than one hard link',
    ]);
    expect(await served()).toEqual(before);
  });

  it('answers a symlink leading out exactly as a missing file: FERRY_DATA_NOT_FOUND naming only the URL asked for', async () => {
    const refs = [url(join(root, 'escape.bin')), url(join(root, 'missing.bin'))];
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fnId, refs.map((r) => [{ $ref: r }, 0]));
    const docs = await alice.waitAll(task_ids, { timeout: 60 });
    expect(docs.map((d) => [d.status, d.exception?.code, d.exception?.message])).toEqual(
      refs.map((r) => ['failed', 'FERRY_DATA_NOT_FOUND', `no readable file inside the endpoint's data_roots at ${r}`]),
    );
  });

  it('fails FERRY_DATA_NOT_FOUND for a missing file inside a root', async () => {
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: url(join(root, 'missing.bin')) }, 0], undefined, 30);
    expect(doc.status).toBe('failed');
    expect(doc.exception).toMatchObject({ code: 'FERRY_DATA_NOT_FOUND', message: expect.stringContaining('missing.bin') });
  });
});

describe('object references with site locations', () => {
  it('reads a copy at a good location in place: the gateway serves no bytes', async () => {
    const before = await served();
    const start = 2 * MiB + 10;
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: objectId, locations: [url(join(root, 'data.bin'))] }, start], undefined, 30);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual(expected(start));
    expect((await served()).bytes_served).toBe(before.bytes_served);
  });

  it('falls back to the gateway past bad locations and still returns the right bytes', async () => {
    const before = await served();
    const start = MiB + 10;
    const locations = [url(join(outside, 'secret.bin')), `file://${root}/../outside/secret.bin`, url(join(root, 'stale.bin'))];
    const doc = await alice.run(endpoint.endpointId, fnId, [{ $ref: objectId, locations }, start], undefined, 30);
    expect(doc.status, JSON.stringify(doc.exception)).toBe('success');
    expect(doc.result).toEqual(expected(start));
    // The one chunk covering the slice came from the gateway.
    expect((await served()).bytes_served - before.bytes_served).toBe(MiB);
    // The operator can see why each location was passed over (debug log).
    expect(agent.output()).toMatch(/data location not used; falling back.*FERRY_DATA_PATH_REFUSED/);
    expect(agent.output()).toMatch(/data location not used; falling back.*stale\.bin.*sha256 [0-9a-f]{64} is not the object's/);
  });
});
