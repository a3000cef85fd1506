// Data by reference against the real gateway (launcher → workerd, R2 on local disk): 200 MiB
// generated on the fly goes up through the SDK in parts and comes back as a stream with the same
// sha256, while neither this process nor workerd holds it in memory; `ferry put FILE` prints a ref.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import type { Client } from '../../src/sdk/client';
import { generated } from '../helpers/generated-bytes';
import { vmRssBytes, workerdPids } from '../helpers/processes';
import { startStack, type Stack } from '../helpers/stack';

const MiB = 1024 * 1024;
const TOTAL = 200 * MiB;

let stack: Stack;
let alice: Client;

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
});

afterAll(async () => {
  await stack?.stop();
});


interface Memory {
  selfBefore: number;
  selfPeak: number;
  /** Peak RSS over the first half of the transfer, and growth of the peak over the second half. */
  selfHalf: number;
  workerdBefore: number;
  workerdPeak: number;
  workerdHalf: number;
  seconds: number;
}

/**
 * Samples this process's RSS and workerd's every 25 ms while `work` runs. Allocators and garbage
 * collectors keep some slack, so the telling figure is whether memory keeps growing with the bytes
 * moved: the peak over the second half of a transfer against the peak over the first half.
 */
async function measureMemory<T>(work: (halfway: () => void) => Promise<T>): Promise<{ value: T } & Memory> {
  const pids = workerdPids(stack.gateway.child.pid!);
  const workerdRss = () => pids.reduce((sum, pid) => sum + vmRssBytes(pid), 0);
  const selfBefore = process.memoryUsage().rss;
  const workerdBefore = workerdRss();
  let selfPeak = selfBefore;
  let workerdPeak = workerdBefore;
  let selfHalf = 0;
  let workerdHalf = 0;
  const timer = setInterval(() => {
    selfPeak = Math.max(selfPeak, process.memoryUsage().rss);
    workerdPeak = Math.max(workerdPeak, workerdRss());
  }, 25);
  const halfway = () => {
    if (selfHalf === 0) [selfHalf, workerdHalf] = [selfPeak, workerdPeak];
  };
  const started = performance.now();
  try {
    const value = await work(halfway);
    return { value, selfBefore, selfPeak, selfHalf, workerdBefore, workerdPeak, workerdHalf, seconds: (performance.now() - started) / 1000 };
  } finally {
    clearInterval(timer);
  }
}

function describeMemory(what: string, m: Memory): string {
  return `${what} ${(TOTAL / MiB / m.seconds).toFixed(0)} MiB/s (${m.seconds.toFixed(1)} s); test RSS ${mb(m.selfBefore)} → ${mb(m.selfHalf)} at half → peak ${mb(m.selfPeak)}; workerd RSS ${mb(m.workerdBefore)} → ${mb(m.workerdHalf)} at half → peak ${mb(m.workerdPeak)}`;
}

const mb = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

it('puts 200 MiB from a stream in parts and reads it back as a stream with the same sha256, in bounded memory, also for a reader that pauses', async () => {
  expect(workerdPids(stack.gateway.child.pid!).length).toBeGreaterThan(0);
  const source = generated(TOTAL, 42);
  let progressCalls = 0;
  const up = await measureMemory((halfway) =>
    alice.put(source.stream, {
      partSize: 8 * MiB,
      multipartThreshold: 8 * MiB,
      onProgress: (p) => {
        progressCalls++;
        if (p.sent >= TOTAL / 2) halfway();
      },
    }),
  );
  const ref = up.value;
  expect(ref.size).toBe(TOTAL);
  expect(ref.sha256).toBe(source.digest());
  expect(progressCalls).toBe(25);

  const statsBefore = await alice.objectStats();
  const down = await measureMemory(async (halfway) => {
    const hash = createHash('sha256');
    let size = 0;
    const reader = (await alice.getStream(ref)).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      size += value.byteLength;
      if (size >= TOTAL / 2) halfway();
    }
    return { size, sha256: hash.digest('hex') };
  });
  expect(down.value).toEqual({ size: TOTAL, sha256: ref.sha256 });
  const statsAfter = await alice.objectStats();
  expect(statsAfter.bytes_served - statsBefore.bytes_served).toBe(TOTAL);

  // A slice costs only its bytes.
  const slice = await alice.get(ref, { range: { offset: 100 * MiB, length: 1000 } });
  expect(slice.byteLength).toBe(1000);
  expect((await alice.objectStats()).bytes_served - statsAfter.bytes_served).toBe(1000);

  console.log(`${describeMemory('upload  ', up)}\n${describeMemory('download', down)}`);
  // Memory does not grow with the bytes moved: the second 100 MiB adds (almost) nothing to the
  // first half's peak, in this process and in workerd alike; and this process never comes near
  // holding the 200 MiB.
  for (const m of [up, down]) {
    expect(m.selfPeak - m.selfHalf).toBeLessThan(32 * MiB);
    // workerd's figure is two processes (Miniflare's entry and the gateway) with allocator slack
    // of tens of MiB; holding the object would add the whole second 100 MiB.
    expect(m.workerdPeak - m.workerdHalf).toBeLessThan(80 * MiB);
    // Under 160 MiB, not 128: fresh-clone CI runs measured 110, 123 and 130 MiB of growth on the
    // upload while its second half added 8-14 MiB (GC and allocator slack, not bytes held). Holding
    // the object would take 200 MiB or more.
    expect(m.selfPeak - m.selfBefore).toBeLessThan(160 * MiB);
  }

  // A client slower than the disk: workerd reads no further ahead of it than a window. Before the
  // gateway read in windows, the embedded R2 piped every part of an object uploaded in parts into
  // the response at disk speed, whatever the client took: in this pause workerd grew by the whole
  // 200 MiB (a fresh-clone CI run, its client slowed by load, saw +96 MiB over the download's
  // second half).
  const paused = await pausedRead(ref, 2000);
  console.log(`paused read: workerd RSS ${mb(paused.workerdBefore)} → peak ${mb(paused.workerdPeak)} over a 2 s pause after the first ${mb(paused.readBeforePause)}`);
  expect(paused.value).toEqual({ size: TOTAL, sha256: ref.sha256 });
  expect(paused.workerdPeak - paused.workerdBefore).toBeLessThan(64 * MiB);
}, 90_000);

/** Reads the object's first chunks (at least 1 MiB), stops reading for `pauseMs`, then reads the rest; workerd's RSS over the pause. */
async function pausedRead(ref: Parameters<Client['getStream']>[0], pauseMs: number) {
  const pids = workerdPids(stack.gateway.child.pid!);
  const workerdRss = () => pids.reduce((sum, pid) => sum + vmRssBytes(pid), 0);
  const hash = createHash('sha256');
  let size = 0;
  const reader = (await alice.getStream(ref)).getReader();
  const take = async (until: number) => {
    while (size < until) {
      const { done, value } = await reader.read();
      if (done) return;
      hash.update(value);
      size += value.byteLength;
    }
  };
  await take(MiB);
  const readBeforePause = size;
  const workerdBefore = workerdRss();
  let workerdPeak = workerdBefore;
  const started = Date.now();
  // The pause is the scenario (a slow client), not a wait for something to happen.
  while (Date.now() - started < pauseMs) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    workerdPeak = Math.max(workerdPeak, workerdRss());
  }
  await take(Infinity);
  return { value: { size, sha256: hash.digest('hex') }, readBeforePause, workerdBefore, workerdPeak };
}

it('`ferry put FILE` prints the reference of the uploaded file', async () => {
  const file = join(stack.dir, 'frame.bin');
  const bytes = new Uint8Array(3 * MiB + 17).map((_, i) => (i * 31) & 0xff);
  writeFileSync(file, bytes);
  const token = await stack.tokenFor('alice');
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'ferry.js'), 'put', file, '--content-type', 'application/x-frame'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, FERRY_URL: stack.gateway.url, FERRY_TOKEN: token, FERRY_HOME: join(stack.dir, 'cli-home') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  expect(run.code, run.stderr).toBe(0);
  // stderr is not a terminal here: no progress bar.
  expect(run.stderr).toBe('');
  const ref = JSON.parse(run.stdout);
  expect(ref).toEqual({ $ref: expect.stringMatching(/^[0-9a-f]{64}$/), size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  const head = await alice.head(ref);
  expect(head).toMatchObject({ size: bytes.length, sha256: ref.sha256, content_type: 'application/x-frame' });
  expect(await alice.get(ref, { range: { last: 17 } })).toEqual(bytes.slice(-17));
}, 60_000);
