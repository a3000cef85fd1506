// `npm run bench`: Ferry's figures on this machine, each beside a baseline measured in the same
// run (machines here are noisy; only ratios from one run compare). Every section checks what it
// measured (results, digests, no duplicates); a section that throws is named at the end and the
// others still print. Writes bench/results/latest.json and bench/results/<commit>-<time>.json.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/cli/gateway-process';
import { startStack, type Stack, type TestTaskStore, waitForWorkers } from '../test/helpers/stack';
import { generated } from '../test/helpers/generated-bytes';
import { BULLMQ_CONCURRENCY, BULLMQ_VERSION, startBullmqPeer } from './bullmq';
import { withStructuralFloor } from './structural-floor';
import { childPid, clientCpuSeconds, cpuClock, endpointCpuSeconds, treeCpuSeconds, treeWriteBytes, type CpuParts } from './cpu';
import { defaultEndpoint, untilRecordsQueryable, warmIncrement } from './endpoints';
import { notificationLatency, workflowSubscriber } from './events';
import { healthzFigures, withBareWorker } from './healthz';
import { interchangeThroughput } from './interchange';
import { TRACE_HEADER, TRACE_HOPS, parseServerTiming } from '../src/protocol/trace';
import { fetchResending } from '../src/sdk/resend';
import { Client } from '../src/sdk/client';

interface Figure {
  value: number;
  unit: string;
  baseline: number;
  baseline_name?: string;
  note?: string;
  /** CPU-µs per task of each process tree over the timed run (gateway, agent, managers, workers, client, …). */
  cpu_us_per_task?: CpuParts;
  /** The same for the baseline's run (BullMQ: redis-server, its worker process, the client). */
  baseline_cpu_us_per_task?: CpuParts;
  /** A second baseline from the same run, printed beside the first. */
  also?: { value: number; name: string };
}
const figures: Record<string, Figure> = {};
/** Where one round trip's time goes: each hop's median and p90 ms since the hop before it. */
const hopTraces: Record<string, Array<{ hop: string; median_ms: number; p90_ms: number }>> = {};
const failed: Array<{ section: string; error: string }> = [];
const skipped: Array<{ section: string; reason: string }> = [];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Each part's median over runs. */
function medianCpu(runs: CpuParts[]): CpuParts {
  return Object.fromEntries(Object.keys(runs[0]!).map((part) => [part, median(runs.map((r) => r[part]!))]));
}

async function timeSequential(n: number, call: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

async function bareEcho(warmUp: number, n: number): Promise<{ p50: number; p99: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const call = async () => {
    const res = await fetch(url, { method: 'POST', body: '{"args":[]}', headers: { 'content-type': 'application/json' } });
    if ((await res.text()) !== '{"args":[]}') throw new Error('bare echo answered something else');
  };
  await timeSequential(warmUp, call);
  const t = await timeSequential(n, call);
  server.close();
  return { p50: quantile(t, 0.5), p99: quantile(t, 0.99) };
}

function progress(label: string) {
  let last = 0;
  return (done: number, total: number) => {
    const now = Date.now();
    if (now - last > 1000 || done === total) {
      process.stderr.write(`\r  ${label}: ${done}/${total}   `);
      last = now;
      if (done === total) process.stderr.write('\n');
    }
  };
}

const SECTIONS: Record<string, () => Promise<void>> = {
  interchange: interchangeSection,
  slurm: scaleOutFigures,
  stores: storesSection,
  provenance: provenanceSection,
  data: dataSection,
  latency: latencySection,
  throughput: throughputSection,
  journal: journalSection,
  keys: keysSection,
  sharing: sharingSection,
  python: pythonSection,
};

async function main() {
  const started = new Date();
  const meta = runMeta(started);
  const section = (process.argv[2] ?? 'all').toLowerCase();
  if (section !== 'all' && !(section in SECTIONS)) throw new Error(`unknown section ${section}: one of all, ${Object.keys(SECTIONS).join(', ')}`);
  // One section failing (a local runtime limit, a missing service) leaves the others' figures.
  for (const [name, run] of Object.entries(SECTIONS)) {
    if (section !== 'all' && section !== name) continue;
    try {
      await run();
    } catch (err) {
      failed.push({ section: name, error: err instanceof Error ? err.message : String(err) });
      process.stderr.write(`bench: section ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  }
  report(section, meta);
}

/** `interchange`: one agent's dispatch to 100 simulated managers beside 1, every answer checked. */
async function interchangeSection() {
  const n = 200_000;
  process.stderr.write(`bench: interchange dispatch, ${n} no-op tasks …\n`);
  const one = await interchangeThroughput(1, 16, n);
  const hundred = await interchangeThroughput(100, 16, n);
  figures['interchange_100x16'] = { value: hundred, unit: 'tasks/s', baseline: one, baseline_name: '1 manager × 16 workers', note: `${n} no-op tasks, simulated managers answer at once; each answered once with its value` };
}

const bullmqName = (what: string) => `BullMQ ${BULLMQ_VERSION}, ${what}, concurrency ${BULLMQ_CONCURRENCY}, 1 worker process`;

/** Samples CPU-seconds of a stack's gateway tree, its endpoint's agent / managers / workers, and this process. */
function ferryCpu(stack: Stack, agentPid: number, more: () => CpuParts = () => ({})): () => CpuParts {
  const gatewayPid = stack.gateway.child.pid!;
  return () => ({ gateway: treeCpuSeconds([gatewayPid]), ...endpointCpuSeconds(agentPid), client: clientCpuSeconds(), ...more() });
}

/**
 * `latency`: sequential run round trips of a no-op, beside BullMQ's add + waitUntilFinished and the
 * same POST to a one-line Worker on the same launcher; GET /healthz beside that Worker.
 */
async function latencySection() {
  const warmUp = 50;
  const n = 500;
  process.stderr.write('bench: round trips, BullMQ …\n');
  const peer = await startBullmqPeer();
  let bull: number[];
  try {
    bull = await peer.roundTrips(warmUp, n);
  } finally {
    await peer.stop();
  }
  const echo = await bareEcho(warmUp, n);
  process.stderr.write('bench: round trips, starting a gateway and a local endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await defaultEndpoint(stack, client, 'bench');
    const noop = await client.registerFunction(() => null, { name: 'noop' });
    const run = async () => {
      const doc = await client.run(endpoint.endpointId, noop, [], undefined, 10);
      if (doc.status !== 'success' || doc.result !== null) throw new Error(`run ended ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
    };
    await timeSequential(warmUp, run);
    const t = await timeSequential(n, run);
    const concurrent = await callsPerSecond(CONCURRENT_CLIENTS, CONCURRENT_CALLS, run);
    // The runtime's own floor: the same POST to a one-line Worker served by the same launcher.
    const { floor, floorConcurrent } = await withBareWorker(async (url) => {
      const post = async () => {
        const res = await fetch(url, { method: 'POST', body: '{"args":[]}', headers: { 'content-type': 'application/json' } });
        if ((await res.text()) !== 'ok') throw new Error(`one-line Worker answered ${res.status}`);
      };
      await timeSequential(warmUp, post);
      return { floor: await timeSequential(n, post), floorConcurrent: await callsPerSecond(CONCURRENT_CLIENTS, CONCURRENT_CALLS, post) };
    });
    figures['run_concurrent_16'] = {
      value: concurrent.rate, unit: 'calls/s', baseline: floorConcurrent.rate, baseline_name: `one-line Worker on the same launcher, ${CONCURRENT_CLIENTS} clients (the runtime's floor)`,
      note: `${CONCURRENT_CLIENTS} clients, each ${CONCURRENT_CALLS} sequential POST /v3/run of a no-op, each result checked; p50 ${concurrent.p50.toFixed(2)} ms, p99 ${concurrent.p99.toFixed(2)} ms`,
    };
    // The design's own floor (bench/structural-floor-worker.js): Worker → hub RPC → a row → the
    // agent's WebSocket → a Node process that answers at once → back; no Ferry code on the way.
    const skeleton = await withStructuralFloor(async (url) => {
      const post = async () => {
        const res = await fetch(`${url}/run`, { method: 'POST', body: '{"args":[]}', headers: { 'content-type': 'application/json' } });
        if (res.status !== 200 || !(await res.text()).includes('success')) throw new Error(`structural floor answered ${res.status}`);
      };
      await timeSequential(warmUp, post);
      return { times: await timeSequential(n, post), concurrent: await callsPerSecond(CONCURRENT_CLIENTS, CONCURRENT_CALLS, post) };
    });
    figures['structural_floor_p50'] = {
      value: quantile(skeleton.times, 0.5), unit: 'ms', baseline: quantile(floor, 0.5), baseline_name: "one-line Worker p50 (the runtime's floor)",
      note: `Worker → Durable Object RPC → one SQLite row → hibernatable WebSocket to a Node client that answers at once → back, no Ferry code (bench/structural-floor-worker.js): the least a round trip of this design costs on this runtime; ${n} sequential POSTs; p99 ${quantile(skeleton.times, 0.99).toFixed(2)} ms; Ferry's run p50 is ${(quantile(t, 0.5) / quantile(skeleton.times, 0.5)).toFixed(2)}× it`,
    };
    figures['structural_floor_concurrent_16'] = {
      value: skeleton.concurrent.rate, unit: 'calls/s', baseline: floorConcurrent.rate, baseline_name: `one-line Worker, ${CONCURRENT_CLIENTS} clients`,
      note: `${CONCURRENT_CLIENTS} clients × ${CONCURRENT_CALLS} sequential POSTs to the structural floor; p50 ${skeleton.concurrent.p50.toFixed(2)} ms; Ferry's run_concurrent_16 is ${(concurrent.rate / skeleton.concurrent.rate).toFixed(2)}× it`,
    };
    for (const [q, key] of [[0.5, 'p50'], [0.99, 'p99']] as const) {
      figures[`run_roundtrip_${key}`] = {
        value: quantile(t, q), unit: 'ms', baseline: quantile(bull, q), baseline_name: `${bullmqName('add one job + waitUntilFinished')} ${key}`,
        note: `${n} sequential round trips after ${warmUp} warm-up, each result checked; bare Node HTTP echo ${key} ${echo[key].toFixed(2)} ms`,
        also: { value: quantile(floor, q), name: `one-line Worker on the same launcher ${key} (the runtime's floor)` },
      };
    }
    process.stderr.write('bench: result at the hub → client, by SSE and by ?wait= …\n');
    const notified = await notificationLatency(client, endpoint.endpointId, noop, 300);
    figures['sse_event_p50'] = {
      value: notified.sse.p50, unit: 'ms', baseline: notified.wait.p50, baseline_name: 'GET /v2/tasks/{id}?wait=10 long-poll p50, the same tasks',
      note: `300 sequential no-op tasks, each watched by an open GET /v3/events?endpoint_id stream and a long-poll at once; from the result reaching the hub (completion_t, the hub's clock in whole ms) to the client; mean ${notified.sse.mean.toFixed(2)} ms against ${notified.wait.mean.toFixed(2)} ms, p99 ${notified.sse.p99.toFixed(2)} ms against ${notified.wait.p99.toFixed(2)} ms`,
    };
    process.stderr.write('bench: traced round trips (Ferry-Trace: 1) …\n');
    hopTraces['run_roundtrip'] = await traceRoundTrips(stack, endpoint.endpointId, noop, 200);
    process.stderr.write('bench: GET /healthz beside a one-line Worker …\n');
    const hz = await healthzFigures(stack.gateway.url);
    figures['healthz_p50'] = {
      value: hz.gatewayP50, unit: 'ms', baseline: hz.bareP50, baseline_name: 'one-line Worker on the same launcher p50',
      note: `1,000 sequential GETs each, interleaved, after 100 warm-up; p99 ${hz.gatewayP99.toFixed(2)} ms against ${hz.bareP99.toFixed(2)} ms`,
    };
  } finally {
    await stack.stop();
  }
}

const CONCURRENT_CLIENTS = 16;
const CONCURRENT_CALLS = 100;

/** `clients` loops, each making `calls` sequential calls at once: calls per second over all, and each call's p50 / p99. */
async function callsPerSecond(clients: number, calls: number, call: () => Promise<void>): Promise<{ rate: number; p50: number; p99: number }> {
  const times: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await call();
        times.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  return { rate: (clients * calls) / seconds, p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

/**
 * `n` sequential traced runs of a no-op (`Ferry-Trace: 1`, src/protocol/trace.ts), after the timed
 * ones: each hop's median and p90, and the client's part (request out and answer back, the round
 * trip less every hop) as `client ↔ gateway`.
 */
async function traceRoundTrips(stack: Stack, endpointId: string, fn: string, n: number) {
  const token = await stack.tokenFor('bench');
  const byHop = new Map<string, number[]>();
  const add = (hop: string, ms: number) => {
    if (!byHop.has(hop)) byHop.set(hop, []);
    byHop.get(hop)!.push(ms);
  };
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetchResending(fetch, `${stack.gateway.url}/v3/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', [TRACE_HEADER]: '1', 'idempotency-key': crypto.randomUUID() },
      body: JSON.stringify({ endpoint_id: endpointId, function_uuid: fn, args: [], wait: 10 }),
    });
    const doc = (await res.json()) as { status?: string };
    const total = performance.now() - t0;
    const timing = res.headers.get('server-timing');
    if (res.status !== 200 || doc.status !== 'success' || !timing) throw new Error(`traced run: ${res.status} ${JSON.stringify(doc)} server-timing ${timing}`);
    const hops = parseServerTiming(timing);
    if (hops.length !== TRACE_HOPS.length) throw new Error(`traced run: ${hops.length} hops, expected ${TRACE_HOPS.length}: ${timing}`);
    for (const { hop, ms } of hops.slice(1)) add(hop, ms);
    add('client ↔ gateway', total - hops.reduce((sum, h) => sum + h.ms, 0));
  }
  const rows = [...byHop].map(([hop, ms]) => {
    const sorted = ms.sort((a, b) => a - b);
    return { hop, median_ms: median(sorted), p90_ms: quantile(sorted, 0.9) };
  });
  process.stderr.write(`  where a round trip goes (${n} traced runs; ms since the hop before, median / p90):\n`);
  for (const r of rows) process.stderr.write(`    ${r.hop.padEnd(18)} ${r.median_ms.toFixed(3).padStart(8)} ${r.p90_ms.toFixed(3).padStart(8)}\n`);
  return rows;
}

/** `throughput`: a batch of no-op tasks (20,000) through a local endpoint, beside BullMQ's addBulk of as many jobs. */
async function throughputSection() {
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  process.stderr.write(`bench: throughput, BullMQ, ${n} jobs …\n`);
  const peer = await startBullmqPeer();
  let bull: Awaited<ReturnType<typeof peer.throughput>>;
  try {
    bull = await peer.throughput(n);
  } finally {
    await peer.stop();
  }
  process.stderr.write('bench: throughput, starting a gateway and a local endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await defaultEndpoint(stack, client, 'bench');
    process.stderr.write(`bench: throughput of ${n} tasks …\n`);
    const inc = await warmIncrement(client, endpoint.endpointId);
    const payloads = Array.from({ length: n }, (_, i) => [i]);
    const submitted = progress('submitted');
    const finished = progress('finished');
    const cpu = cpuClock(ferryCpu(stack, endpoint.agentPid));
    const t0 = performance.now();
    const sub = await client.submitBatch(endpoint.endpointId, inc, payloads, { workflow_id: 'bench-throughput', onProgress: (p) => submitted(p.submitted, p.total) });
    const tSubmitted = performance.now();
    const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
    const t1 = performance.now();
    const cpuPerTask = cpu.stop(n);
    checkIncrements(docs, n, 'throughput');
    figures['throughput_20k'] = {
      value: n / ((t1 - t0) / 1000), unit: 'tasks/s', baseline: bull.rate, baseline_name: bullmqName(`${n.toLocaleString('en-US')} no-op jobs in one addBulk`),
      note: `${n} tasks, every result verified; submit took ${((tSubmitted - t0) / 1000).toFixed(2)} s; BullMQ: every job ran and completed once with the right value`,
      cpu_us_per_task: cpuPerTask, baseline_cpu_us_per_task: bull.cpu,
    };
    // The same batch with one subscriber streaming all of it (GET /v3/events?workflow_id), in
    // pairs with a run without one; the ratio of each pair, their median.
    const pairs = Number(process.env.BENCH_PAIRS) || 3;
    const ratios: number[] = [];
    let streamedRate = 0;
    let plainRate = 0;
    const cpuRuns: { plain: CpuParts[]; streamed: CpuParts[] } = { plain: [], streamed: [] };
    const sample = ferryCpu(stack, endpoint.agentPid);
    for (let p = 0; p < pairs; p++) {
      const plain = await timedBatch(client, endpoint.endpointId, inc, n, `bench-plain-${p}`, sample);
      const subscriber = await workflowSubscriber(client, `bench-streamed-${p}`, n);
      const streamed = await timedBatch(client, endpoint.endpointId, inc, n, `bench-streamed-${p}`, sample);
      const events = await subscriber.done; // every terminal event came, each once (checked as read)
      process.stderr.write(`\n  pair ${p + 1}: ${plain.rate.toFixed(0)} tasks/s without, ${streamed.rate.toFixed(0)} with a subscriber (${events} events read); gateway CPU-µs/task ${plain.cpu.gateway!.toFixed(0)} without, ${streamed.cpu.gateway!.toFixed(0)} with\n`);
      ratios.push(streamed.rate / plain.rate);
      streamedRate += streamed.rate / pairs;
      plainRate += plain.rate / pairs;
      cpuRuns.plain.push(plain.cpu);
      cpuRuns.streamed.push(streamed.cpu);
    }
    figures['throughput_20k_streamed'] = {
      value: streamedRate, unit: 'tasks/s', baseline: plainRate, baseline_name: `the same batch without a subscriber (mean of ${pairs})`,
      note: `${pairs} interleaved pairs of ${n} tasks, every result verified, the subscriber (the SDK, in the client process) read every terminal event once; pair ratios ${ratios.map((r) => r.toFixed(3)).join(' ')}, median ${median(ratios).toFixed(3)}`,
      cpu_us_per_task: medianCpu(cpuRuns.streamed), baseline_cpu_us_per_task: medianCpu(cpuRuns.plain),
    };
  } finally {
    await stack.stop();
  }
}

/**
 * `python`: Python functions beside JavaScript ones on one endpoint in the same run: sequential
 * `run` round trips of a no-op (p50, p99) and a batch of increments (tasks/s), every result checked.
 * Skipped where the interpreter (FERRY_BENCH_PYTHON, default /usr/bin/python3) is missing.
 */
async function pythonSection() {
  const python = process.env.FERRY_BENCH_PYTHON ?? '/usr/bin/python3';
  if (!existsSync(python)) {
    skipped.push({ section: 'python', reason: `${python} is missing (set FERRY_BENCH_PYTHON, or install python3)` });
    return;
  }
  const warmUp = 50;
  const runs = 500;
  const n = Number(process.env.BENCH_PYTHON_TASKS) || 5_000;
  process.stderr.write('bench: python, starting a gateway and a local endpoint with Python enabled …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await defaultEndpoint(stack, client, 'bench-python', { python: { enabled: true, executable: python } });
    const noops = {
      js: await client.registerFunction(() => null, { name: 'noop' }),
      python: await client.registerFunction('def noop():\n    return None\n', { runtime: 'python', name: 'noop' }),
    };
    const incs = {
      js: await warmIncrement(client, endpoint.endpointId),
      python: await client.registerFunction('def inc(x):\n    return x + 1\n', { runtime: 'python', name: 'inc' }),
    };
    // Warm: a process per function on each worker.
    await client.waitAll((await client.submitBatch(endpoint.endpointId, incs.python, [[0], [1], [2], [3]])).task_ids);
    const times: Record<'js' | 'python', number[]> = { js: [], python: [] };
    for (const lang of ['js', 'python'] as const) {
      const run = async () => {
        const doc = await client.run(endpoint.endpointId, noops[lang], [], undefined, 10);
        if (doc.status !== 'success' || doc.result !== null) throw new Error(`${lang} run ended ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
      };
      await timeSequential(warmUp, run);
    }
    // Interleaved in rounds of 50, so drift on this shared machine falls on both alike.
    for (let round = 0; round < runs / 50; round++) {
      for (const lang of ['js', 'python'] as const) {
        times[lang].push(...(await timeSequential(50, async () => {
          const doc = await client.run(endpoint.endpointId, noops[lang], [], undefined, 10);
          if (doc.status !== 'success' || doc.result !== null) throw new Error(`${lang} run ended ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
        })));
      }
    }
    for (const lang of ['js', 'python'] as const) times[lang].sort((a, b) => a - b);
    figures['python_run_p50'] = {
      value: quantile(times.python, 0.5), unit: 'ms', baseline: quantile(times.js, 0.5), baseline_name: 'the JavaScript no-op on the same endpoint, p50',
      note: `${runs} sequential POST /v3/run of \`def noop(): return None\` after ${warmUp} warm-up, interleaved in rounds of 50 with as many of \`() => null\`, each result checked; p99 ${quantile(times.python, 0.99).toFixed(2)} ms against ${quantile(times.js, 0.99).toFixed(2)} ms`,
    };
    const rates: Record<'js' | 'python', number> = { js: 0, python: 0 };
    for (const lang of ['js', 'python'] as const) {
      process.stderr.write(`bench: python, ${n} ${lang} increments …\n`);
      const finished = progress(`${lang} finished`);
      const t0 = performance.now();
      const sub = await client.submitBatch(endpoint.endpointId, incs[lang], Array.from({ length: n }, (_, i) => [i]), { workflow_id: `bench-python-${lang}` });
      const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
      rates[lang] = n / ((performance.now() - t0) / 1000);
      checkIncrements(docs, n, `python section, ${lang}`);
    }
    figures['python_throughput'] = {
      value: rates.python, unit: 'tasks/s', baseline: rates.js, baseline_name: `the same batch of JavaScript increments on the same endpoint`,
      note: `${n} tasks of \`def inc(x): return x + 1\` in one submitBatch, every result verified, beside ${n} of \`(x) => x + 1\`; the endpoint's shipped defaults (2 workers), python.threads 1`,
    };
  } finally {
    await stack.stop();
  }
}

/** One batch of `n` increments, submitted and awaited as throughput_20k does: tasks per second, results checked. */
async function timedBatch(client: Client, endpointId: string, inc: string, n: number, workflowId: string, sample: () => CpuParts): Promise<{ rate: number; cpu: CpuParts }> {
  const payloads = Array.from({ length: n }, (_, i) => [i]);
  const cpu = cpuClock(sample);
  const t0 = performance.now();
  const sub = await client.submitBatch(endpointId, inc, payloads, { workflow_id: workflowId });
  const docs = await client.waitAll(sub.task_ids, { timeout: 600 });
  const rate = n / ((performance.now() - t0) / 1000);
  const used = cpu.stop(n);
  checkIncrements(docs, n, workflowId);
  return { rate, cpu: used };
}

/**
 * `journal`: what the journal's group commit costs. One gateway, two local endpoints with the
 * shipped defaults, `journal_fsync` on and off; one untimed run each, then three interleaved on/off
 * pairs of the 20,000-task batch. Beside it, one bare fsync of a small append on the same disk.
 */
async function journalSection() {
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  const pairs = Number(process.env.BENCH_PAIRS) || 3;
  const fsync = bareFsync(1000);
  process.stderr.write(`bench: journal, one fsync of a small append here: p50 ${fsync.p50.toFixed(3)} ms, p99 ${fsync.p99.toFixed(3)} ms\n`);
  process.stderr.write('bench: journal, starting a gateway and two local endpoints (journal_fsync on, off) …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const setups = {} as Record<'on' | 'off', { endpointId: string; agentPid: number; fn: string }>;
    for (const mode of ['on', 'off'] as const) {
      const endpoint = await defaultEndpoint(stack, client, `journal-${mode}`, { journal_fsync: mode === 'on' });
      setups[mode] = { ...endpoint, fn: await warmIncrement(client, endpoint.endpointId) };
    }
    const payloads = Array.from({ length: n }, (_, i) => [i]);
    const rates: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const cpus: Record<'on' | 'off', CpuParts[]> = { on: [], off: [] };
    // The first pass is untimed: a fresh endpoint's first 20,000 tasks run slower (JIT), whichever mode.
    for (let pass = -1; pass < pairs; pass++) {
      for (const mode of (pass % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>) {
        const { endpointId, agentPid, fn } = setups[mode];
        const finished = progress(pass < 0 ? `warm-up, journal_fsync ${mode}` : `pair ${pass + 1}/${pairs} journal_fsync ${mode}`);
        const cpu = cpuClock(ferryCpu(stack, agentPid));
        const t0 = performance.now();
        const sub = await client.submitBatch(endpointId, fn, payloads, { workflow_id: `bench-journal-${mode}-${pass}` });
        const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
        const t1 = performance.now();
        const cpuPerTask = cpu.stop(n);
        checkIncrements(docs, n, `journal_fsync ${mode}`);
        if (pass < 0) continue;
        rates[mode].push(n / ((t1 - t0) / 1000));
        cpus[mode].push(cpuPerTask);
        process.stderr.write(`  journal_fsync ${mode}: ${(n / ((t1 - t0) / 1000)).toFixed(0)} tasks/s, CPU-µs/task ${formatCpu(cpuPerTask)}\n`);
      }
    }
    const ratios = rates.on.map((r, i) => r / rates.off[i]!);
    figures['journal_fsync_throughput_20k'] = {
      value: median(rates.on), unit: 'tasks/s', baseline: median(rates.off), baseline_name: 'journal_fsync: false (median)',
      note: `${pairs} interleaved pairs of ${n} tasks after one untimed run each, every result verified; median pair ratio ${median(ratios).toFixed(3)} (pairs: ${ratios.map((r) => r.toFixed(3)).join(' ')}); one bare fsync of a small append on this disk: p50 ${fsync.p50.toFixed(3)} ms, p99 ${fsync.p99.toFixed(3)} ms`,
      cpu_us_per_task: medianCpu(cpus.on), baseline_cpu_us_per_task: medianCpu(cpus.off),
    };
  } finally {
    await stack.stop();
  }
}

/**
 * `keys`: the hot path with an instrument key beside a plain user token (a JWT), on one gateway and
 * endpoint: POST /v3/run round trips interleaved call by call, then the 20,000-task batch in
 * interleaved pairs after one untimed run each. The key is scoped to the two functions and the
 * endpoint, so every request also passes the route table's scope check.
 */
async function keysSection() {
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  const pairs = Number(process.env.BENCH_PAIRS) || 3;
  const warmUp = 50;
  const calls = 500;
  process.stderr.write('bench: keys, starting a gateway and a local endpoint …\n');
  const stack = await startStack();
  try {
    const userClient = await stack.client('bench');
    const endpoint = await defaultEndpoint(stack, userClient, 'bench');
    const noop = await userClient.registerFunction(() => null, { name: 'noop' });
    const inc = await warmIncrement(userClient, endpoint.endpointId);
    const created = await fetch(`${stack.gateway.url}/v3/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await stack.tokenFor('bench')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', expires_in: 3600, scopes: { functions: [noop, inc], endpoints: [endpoint.endpointId], actions: ['run', 'submit', 'read_results'] } }),
    });
    if (!created.ok) throw new Error(`POST /v3/keys answered ${created.status} ${await created.text()}`);
    const keyClient = new Client({ url: stack.gateway.url, token: ((await created.json()) as { secret: string }).secret });
    const clients = { token: userClient, key: keyClient };
    const modes = ['token', 'key'] as const;

    process.stderr.write(`bench: keys, ${calls} round trips each, interleaved …\n`);
    const times: Record<'token' | 'key', number[]> = { token: [], key: [] };
    for (let i = 0; i < 2 * (warmUp + calls); i++) {
      const mode = modes[i % 2]!;
      const t = performance.now();
      const doc = await clients[mode].run(endpoint.endpointId, noop, [], undefined, 10);
      const ms = performance.now() - t;
      if (doc.status !== 'success' || doc.result !== null) throw new Error(`run with a ${mode} ended ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
      if (i >= 2 * warmUp) times[mode].push(ms);
    }
    for (const mode of modes) times[mode].sort((a, b) => a - b);

    const payloads = Array.from({ length: n }, (_, i) => [i]);
    const rates: Record<'token' | 'key', number[]> = { token: [], key: [] };
    const cpus: Record<'token' | 'key', CpuParts[]> = { token: [], key: [] };
    for (let pass = -1; pass < pairs; pass++) {
      for (const mode of pass % 2 === 0 ? modes : ([...modes].reverse() as Array<'token' | 'key'>)) {
        const finished = progress(pass < 0 ? `warm-up, ${mode}` : `pair ${pass + 1}/${pairs} ${mode}`);
        const cpu = cpuClock(ferryCpu(stack, endpoint.agentPid));
        const t0 = performance.now();
        const sub = await clients[mode].submitBatch(endpoint.endpointId, inc, payloads, { workflow_id: `bench-keys-${mode}-${pass}` });
        const docs = await clients[mode].waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
        const t1 = performance.now();
        const cpuPerTask = cpu.stop(n);
        checkIncrements(docs, n, `keys ${mode}`);
        if (pass < 0) continue;
        rates[mode].push(n / ((t1 - t0) / 1000));
        cpus[mode].push(cpuPerTask);
        process.stderr.write(`  ${mode}: ${(n / ((t1 - t0) / 1000)).toFixed(0)} tasks/s, CPU-µs/task ${formatCpu(cpuPerTask)}\n`);
      }
    }
    const ratios = rates.key.map((r, i) => r / rates.token[i]!);
    figures['keys_run_roundtrip_p50'] = {
      value: quantile(times.key, 0.5), unit: 'ms', baseline: quantile(times.token, 0.5), baseline_name: 'the same POST /v3/run with a user token (JWT) p50',
      note: `${calls} round trips each, interleaved call by call after ${warmUp} warm-up each, each result checked; p99 ${quantile(times.key, 0.99).toFixed(2)} ms with the key, ${quantile(times.token, 0.99).toFixed(2)} ms with the token; ratio of p50s ${(quantile(times.key, 0.5) / quantile(times.token, 0.5)).toFixed(3)}`,
    };
    figures['keys_throughput_20k'] = {
      value: median(rates.key), unit: 'tasks/s', baseline: median(rates.token), baseline_name: 'the same batch with a user token (JWT), median',
      note: `${pairs} interleaved pairs of ${n} tasks (submitBatch + waitAll) after one untimed run each, every result verified; median pair ratio ${median(ratios).toFixed(3)} (pairs: ${ratios.map((r) => r.toFixed(3)).join(' ')})`,
      cpu_us_per_task: medianCpu(cpus.key), baseline_cpu_us_per_task: medianCpu(cpus.token),
    };
  } finally {
    await stack.stop();
  }
}

/**
 * Issue 19's hot-path check: the owner's round trips and batches on an endpoint shared with nobody,
 * then on the same endpoint shared with a guest who keeps submitting (one run every 100 ms), in
 * interleaved blocks, same run; the figures are the ratios. While the endpoint is shared with nobody
 * the owner runs the same background load, so the two modes differ only in who submits it.
 */
async function sharingSection() {
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  const pairs = Number(process.env.BENCH_PAIRS) || 3;
  const warmUp = 50;
  const calls = 500;
  const block = 50;
  process.stderr.write('bench: sharing, starting a gateway and a local endpoint …\n');
  const stack = await startStack();
  try {
    const owner = await stack.client('bench');
    const guest = await stack.client('guest');
    const ownerBackground = await stack.client('bench');
    const ownerToken = await stack.tokenFor('bench');
    const endpoint = await defaultEndpoint(stack, owner, 'bench');
    const noop = await owner.registerFunction(() => null, { name: 'noop' });
    const inc = await warmIncrement(owner, endpoint.endpointId);
    const shares = `${stack.gateway.url}/v3/endpoints/${endpoint.endpointId}/shares`;
    const headers = { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json' };
    const setShared = async (on: boolean) => {
      const res = on
        ? await fetch(shares, { method: 'POST', headers, body: JSON.stringify({ user: 'guest', functions: [noop] }) })
        : await fetch(`${shares}?user=guest`, { method: 'DELETE', headers });
      if (!res.ok && !(res.status === 404 && !on)) throw new Error(`sharing ${on ? 'on' : 'off'} answered ${res.status} ${await res.text()}`);
    };
    // The same background load in both modes, one run every 100 ms: by the owner (a second client)
    // while the endpoint is shared with nobody, by the guest while it is shared: only who submits differs.
    let backgroundRuns = 0;
    let background: { on: boolean; loop: Promise<void> } | null = null;
    const startBackground = (client: Client, who: string) => {
      const state = { on: true, loop: Promise.resolve() };
      state.loop = (async () => {
        while (state.on) {
          const doc = await client.run(endpoint.endpointId, noop, [], undefined, 10);
          if (doc.status !== 'success') throw new Error(`a ${who} background run ended ${doc.status}`);
          backgroundRuns++;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      background = state;
    };
    const stopBackground = async () => {
      if (!background) return;
      background.on = false;
      await background.loop;
      background = null;
    };
    const modes = ['plain', 'shared'] as const;
    type Mode = (typeof modes)[number];
    const enter = async (mode: Mode) => {
      await stopBackground();
      await setShared(mode === 'shared');
      startBackground(mode === 'shared' ? guest : ownerBackground, mode === 'shared' ? 'guest' : 'owner');
    };

    process.stderr.write(`bench: sharing, ${calls} owner round trips each, in blocks of ${block}, interleaved …\n`);
    const times: Record<Mode, number[]> = { plain: [], shared: [] };
    for (let b = 0; b < (2 * (warmUp + calls)) / block; b++) {
      const mode = modes[b % 2]!;
      await enter(mode);
      for (let i = 0; i < block; i++) {
        const t = performance.now();
        const doc = await owner.run(endpoint.endpointId, noop, [], undefined, 10);
        const ms = performance.now() - t;
        if (doc.status !== 'success' || doc.result !== null) throw new Error(`owner run (${mode}) ended ${doc.status}`);
        if (b >= (2 * warmUp) / block) times[mode].push(ms);
      }
    }
    for (const mode of modes) times[mode].sort((a, b) => a - b);

    const payloads = Array.from({ length: n }, (_, i) => [i]);
    const rates: Record<Mode, number[]> = { plain: [], shared: [] };
    for (let pass = -1; pass < pairs; pass++) {
      for (const mode of pass % 2 === 0 ? modes : ([...modes].reverse() as Mode[])) {
        await enter(mode);
        const finished = progress(pass < 0 ? `warm-up, ${mode}` : `pair ${pass + 1}/${pairs} ${mode}`);
        const t0 = performance.now();
        const sub = await owner.submitBatch(endpoint.endpointId, inc, payloads, { workflow_id: `bench-sharing-${mode}-${pass}` });
        const docs = await owner.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
        const t1 = performance.now();
        checkIncrements(docs, n, `sharing ${mode}`);
        if (pass < 0) continue;
        rates[mode].push(n / ((t1 - t0) / 1000));
        process.stderr.write(`  ${mode}: ${(n / ((t1 - t0) / 1000)).toFixed(0)} tasks/s\n`);
      }
    }
    await stopBackground();
    const ratios = rates.shared.map((r, i) => r / rates.plain[i]!);
    const p50Ratio = quantile(times.shared, 0.5) / quantile(times.plain, 0.5);
    figures['sharing_owner_roundtrip_p50'] = {
      value: quantile(times.shared, 0.5), unit: 'ms', baseline: quantile(times.plain, 0.5), baseline_name: "the owner's POST /v3/run p50 on the endpoint shared with nobody",
      note: `${calls} owner round trips each, in interleaved blocks of ${block} after ${warmUp} warm-up each, with the endpoint shared with a guest running a task every 100 ms vs shared with nobody and the owner running the same background load (${backgroundRuns} background runs in all, all successes); ratio of p50s ${p50Ratio.toFixed(3)}; p99 ${quantile(times.shared, 0.99).toFixed(2)} vs ${quantile(times.plain, 0.99).toFixed(2)} ms`,
    };
    figures['sharing_owner_throughput_20k'] = {
      value: median(rates.shared), unit: 'tasks/s', baseline: median(rates.plain), baseline_name: "the owner's same batch on the endpoint shared with nobody, median",
      note: `${pairs} interleaved pairs of ${n} tasks (submitBatch + waitAll) after one untimed run each, every result verified, the same background runs beside each (the guest's when shared, the owner's when not); median pair ratio ${median(ratios).toFixed(3)} (pairs: ${ratios.map((r) => r.toFixed(3)).join(' ')})`,
    };
    console.log(`sharing: owner round trip p50 ratio (shared/plain) ${p50Ratio.toFixed(3)}; throughput median pair ratio ${median(ratios).toFixed(3)}`);
  } finally {
    await stack.stop();
  }
}

/** Milliseconds of one fsync after a 100-byte append, `n` times, in a file under the OS's temp dir. */
function bareFsync(n: number): { p50: number; p99: number } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-fsync-'));
  const fd = openSync(join(dir, 'journal.jsonl'), 'a');
  const line = 'x'.repeat(99) + '\n';
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, line);
      const t = performance.now();
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

/** Throws unless the n docs are successes with results 1..n (the tasks ran `(x) => x + 1` on 0..n-1). */
function checkIncrements(docs: Array<{ status: string; result?: unknown }>, n: number, what: string): void {
  const wrong = docs.filter((d, i) => d.status !== 'success' || d.result !== i + 1).length;
  if (docs.length !== n || wrong) throw new Error(`${what}: ${wrong} of ${n} results wrong, ${n - docs.length} missing`);
}

/** Backlog → first result when the endpoint has no block yet: a Slurm job, beside a local process. */
async function scaleOutFigures() {
  const { ensureSlurm, missingSlurmBinaries } = await import('../test/helpers/slurm');
  if (missingSlurmBinaries().length) {
    skipped.push({ section: 'slurm', reason: 'Slurm is not installed (.ci/slurm-packages.txt)' });
    process.stderr.write('bench: slurm skipped: Slurm is not installed\n');
    return;
  }
  const cluster = await ensureSlurm();
  if (cluster.env.SLURM_CONF) process.env.SLURM_CONF = cluster.env.SLURM_CONF;
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const times: Record<string, number> = {};
    const n = 100;
    for (const type of ['local', 'slurm'] as const) {
      process.stderr.write(`bench: backlog to first result from a new ${type} block …\n`);
      const endpoint = await stack.createEndpoint(`scale-${type}`, 'bench', {
        provider: { type, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_workers_per_node: 2, max_idletime_s: 30, ...(type === 'slurm' ? { exclusive: false, cpus_per_node: 1, walltime: '00:10:00' } : {}) },
        strategy_period_s: 1,
        heartbeat_s: 1,
      });
      const agent = endpoint.start();
      await agent.waitForOutput(/connected to gateway/, 30_000);
      const fn = await client.registerFunction((x: number) => x + 1, { name: 'inc' });
      const t0 = performance.now();
      const { task_ids } = await client.submitBatch(endpoint.endpointId, fn, Array.from({ length: n }, (_, i) => [i]));
      const first = await client.result(task_ids[0]!, { timeout: 120 });
      times[type] = (performance.now() - t0) / 1000;
      if (first !== 1) throw new Error(`${type}: first result ${JSON.stringify(first)}`);
      checkIncrements(await client.waitAll(task_ids, { timeout: 120 }), n, `scale-out ${type}`);
      await agent.kill('SIGTERM');
    }
    figures['scale_out_first_result_slurm'] = { value: times.slurm!, unit: 's', baseline: times.local!, baseline_name: 'new local block', note: `strategy period 1 s; includes sbatch → RUNNING; ${n} tasks each run, every result verified` };
  } finally {
    await stack.stop();
    await cluster.stop();
  }
}

/**
 * `stores`: the TaskStore adapters side by side in one run: 20,000-task throughput and the latency
 * of POST /v2/batch_status for 1,000 ids, with Durable Object SQLite as the baseline of Redis.
 * With Redis, the redis-server's CPU is its own part; its Upstash-protocol proxy runs in this
 * process, so in the client's.
 */
async function storesSection() {
  // 5,000 by default: in wrangler dev every fetch to Redis (through the Upstash-protocol proxy)
  // leaves ~10 MB/s of memory in workerd, which reaches its heap limit within a few minutes here.
  const n = Number(process.env.BENCH_STORE_TASKS) || 5_000;
  const measured: Record<TestTaskStore, { throughput: number; cpu: CpuParts; p50: number; p99: number }> = {} as never;
  for (const taskStore of ['sqlite', 'redis'] as const) {
    process.stderr.write(`bench: stores, TASK_STORE=${taskStore} …\n`);
    const stack = await startStack({ taskStore });
    try {
      const client = await stack.client('bench');
      const endpoint = await defaultEndpoint(stack, client, `bench-${taskStore}`);
      const inc = await warmIncrement(client, endpoint.endpointId);
      const finished = progress(`${taskStore} finished`);
      const redisPid = stack.redis ? childPid('redis-server', 'redis-server') : null;
      const cpu = cpuClock(ferryCpu(stack, endpoint.agentPid, (): CpuParts => (redisPid ? { redis: treeCpuSeconds([redisPid]) } : {})));
      const t0 = performance.now();
      const sub = await client.submitBatch(endpoint.endpointId, inc, Array.from({ length: n }, (_, i) => [i]));
      const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
      const t1 = performance.now();
      const cpuPerTask = cpu.stop(n);
      checkIncrements(docs, n, taskStore);
      const ids = sub.task_ids.slice(0, 1000);
      const status = async () => {
        const res = await client.batchStatus(ids);
        if (Object.keys(res).length !== ids.length) throw new Error(`${taskStore}: batch_status answered ${Object.keys(res).length} of ${ids.length}`);
      };
      await timeSequential(20, status);
      const t = await timeSequential(200, status);
      measured[taskStore] = { throughput: n / ((t1 - t0) / 1000), cpu: cpuPerTask, p50: quantile(t, 0.5), p99: quantile(t, 0.99) };
    } finally {
      await stack.stop();
    }
  }
  const { sqlite, redis } = measured;
  figures['stores_throughput_redis'] = {
    value: redis.throughput, unit: 'tasks/s', baseline: sqlite.throughput, baseline_name: 'TASK_STORE=sqlite', note: `${n} tasks, every result verified`,
    cpu_us_per_task: redis.cpu, baseline_cpu_us_per_task: sqlite.cpu,
  };
  figures['stores_batch_status_1000_p50_redis'] = { value: redis.p50, unit: 'ms', baseline: sqlite.p50, baseline_name: 'TASK_STORE=sqlite p50' };
  figures['stores_batch_status_1000_p99_redis'] = { value: redis.p99, unit: 'ms', baseline: sqlite.p99, baseline_name: 'TASK_STORE=sqlite p99' };
}

/**
 * Objects in a local gateway's R2 bucket: miniflare keeps one blob file per object. In the
 * provenance runs (no-op tasks, small results) the only objects written are lineage segments.
 */
function r2Objects(stack: Stack): number {
  const blobs = join(stack.dir, 'state', 'v3', 'r2', 'ferry-objects', 'blobs');
  return existsSync(blobs) ? readdirSync(blobs).length : 0;
}

/**
 * `provenance`: what recording lineage costs. Two gateways side by side, LINEAGE=on and off, each
 * with its own local endpoint; one untimed warm-up run each, then five interleaved on/off pairs of
 * the 20,000-task run. With recording on, the clock stops only when all the run's records can be
 * queried. CPU is split by process tree: the gateway, the agent, its managers, their workers, and
 * this process (the client); the CPU-ms figures add up the gateway's and the endpoint's.
 */
async function provenanceSection() {
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  const pairs = Number(process.env.BENCH_PAIRS) || 5;
  type Mode = 'on' | 'off';
  const setups = {} as Record<Mode, { stack: Awaited<ReturnType<typeof startStack>>; client: Awaited<ReturnType<Stack['client']>>; endpointId: string; agentPid: number; fn: string }>;
  try {
    for (const mode of ['on', 'off'] as const) {
      process.stderr.write(`bench: provenance, starting a gateway with LINEAGE=${mode} …\n`);
      const stack = await startStack({ vars: { LINEAGE: mode } });
      setups[mode] = { stack, client: await stack.client('bench'), endpointId: '', agentPid: 0, fn: '' };
      const { endpointId, agentPid } = await defaultEndpoint(stack, setups[mode].client, `prov-${mode}`);
      setups[mode] = { ...setups[mode], endpointId, agentPid, fn: await warmIncrement(setups[mode].client, endpointId) };
    }
    const runs: Record<Mode, Array<{ rate: number; cpu: CpuParts; gatewayBytesPerTask: number; segments: number }>> = { on: [], off: [] };
    const payloads = Array.from({ length: n }, (_, i) => [i]);
    // One untimed run per gateway first: the first 20,000 tasks of a fresh gateway run 20-40 %
    // slower (JIT, SQLite's page cache), which would land on whichever mode a pair starts with.
    for (const mode of ['on', 'off'] as const) {
      const { client, endpointId, fn } = setups[mode];
      const finished = progress(`warm-up, lineage ${mode}`);
      const sub = await client.submitBatch(endpointId, fn, payloads, { workflow_id: `bench-${mode}-warm-up` });
      checkIncrements(await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) }), n, `lineage ${mode} warm-up`);
    }
    for (let pair = 0; pair < pairs; pair++) {
      for (const mode of (pair % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
        const { stack, client, endpointId, agentPid, fn } = setups[mode];
        const workflow = `bench-${mode}-${pair}`;
        const finished = progress(`pair ${pair + 1}/${pairs} lineage ${mode}`);
        const cpu = cpuClock(ferryCpu(stack, agentPid));
        const bytes0 = treeWriteBytes([stack.gateway.child.pid!]);
        const objects0 = r2Objects(stack);
        const t0 = performance.now();
        const sub = await client.submitBatch(endpointId, fn, payloads, { workflow_id: workflow });
        const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
        if (mode === 'on') await untilRecordsQueryable(stack, workflow, n);
        const t1 = performance.now();
        const cpuPerTask = cpu.stop(n);
        const gatewayBytes = treeWriteBytes([stack.gateway.child.pid!]) - bytes0;
        const segments = r2Objects(stack) - objects0;
        checkIncrements(docs, n, `lineage ${mode}`);
        runs[mode].push({ rate: n / ((t1 - t0) / 1000), cpu: cpuPerTask, gatewayBytesPerTask: gatewayBytes / n, segments });
        process.stderr.write(`  lineage ${mode}: ${(n / ((t1 - t0) / 1000)).toFixed(0)} tasks/s, CPU-µs/task ${formatCpu(cpuPerTask)}, gateway wrote ${(gatewayBytes / n).toFixed(0)} B/task${mode === 'on' ? `, ${segments} lineage segments` : ''}\n`);
      }
    }
    const serverCpuMs = (cpu: CpuParts) => (cpu.gateway! + cpu.agent! + cpu.managers! + cpu.workers!) / 1e3;
    const ratios = runs.on.map((r, i) => r.rate / runs.off[i]!.rate);
    figures['provenance_throughput_on'] = {
      value: median(runs.on.map((r) => r.rate)), unit: 'tasks/s', baseline: median(runs.off.map((r) => r.rate)), baseline_name: 'LINEAGE=off (median)',
      note: `${pairs} interleaved pairs of ${n} tasks, every result verified; clock stops when all records are queryable; median pair ratio ${median(ratios).toFixed(3)} (pairs: ${ratios.map((r) => r.toFixed(3)).join(' ')}); CPU: median of each part`,
      cpu_us_per_task: medianCpu(runs.on.map((r) => r.cpu)), baseline_cpu_us_per_task: medianCpu(runs.off.map((r) => r.cpu)),
    };
    figures['provenance_cpu_ms_per_task_on'] = {
      value: median(runs.on.map((r) => serverCpuMs(r.cpu))), unit: 'CPU-ms/task', baseline: median(runs.off.map((r) => serverCpuMs(r.cpu))), baseline_name: 'LINEAGE=off (median)',
      note: 'gateway and endpoint (agent, managers, workers) process trees',
    };
    figures['provenance_gateway_cpu_ms_per_task_on'] = {
      value: median(runs.on.map((r) => r.cpu.gateway! / 1e3)), unit: 'CPU-ms/task', baseline: median(runs.off.map((r) => r.cpu.gateway! / 1e3)), baseline_name: 'LINEAGE=off (median)',
      note: 'the gateway process tree alone',
    };
    figures['provenance_gateway_bytes_written_per_task_on'] = {
      value: median(runs.on.map((r) => r.gatewayBytesPerTask)), unit: 'B/task', baseline: median(runs.off.map((r) => r.gatewayBytesPerTask)), baseline_name: 'LINEAGE=off (median)',
      note: 'bytes the gateway process tree passed to write calls (/proc/<pid>/io wchar: SQLite WAL, R2 files, sockets)',
    };
    figures['provenance_segments_per_run'] = {
      value: median(runs.on.map((r) => r.segments)), unit: 'R2 objects', baseline: Math.ceil(n / 1000), baseline_name: `full segments of 1,000 records for ${n} tasks`,
      note: 'lineage segments one run wrote (each an R2 write, a billed operation on Cloudflare), counted in the local bucket',
    };
  } finally {
    for (const s of Object.values(setups)) await s.stack.stop();
  }
}

/**
 * `data`: data by reference. A 1 MiB slice of a 1 GiB object read by a task, cold and warm site
 * cache (bytes the gateway served, counted by the gateway), beside downloading the whole object with
 * the same client; and a 200 MB put + get round trip beside a plain loopback HTTP transfer of the
 * same bytes (workerd's R2 is a local simulation: a local figure, not R2's). What is read back is
 * checked against the sha256 of what was written. The endpoint runs one worker, and the slice
 * function reads another small object first: the cold and the warm read both run in a warm isolate,
 * so only the site cache differs.
 */
async function dataSection() {
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  process.stderr.write('bench: data by reference, starting a gateway and an endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await stack.createEndpoint('data', 'bench', {
      provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 1 },
      task_timeout_s: 60,
      task_memory_mb: 256,
    });
    endpoint.start();
    await waitForWorkers(client, endpoint.endpointId, 1);
    const reader = `endpoint:${endpoint.endpointId}`;
    const served = async () => (await client.objectStats()).readers[reader] ?? { bytes_served: 0, requests: 0 };

    process.stderr.write('bench: uploading 1 GiB in 16 MiB parts …\n');
    const upload = progress('uploaded MiB');
    const source = generated(GiB, 11);
    const big = await client.put(source.stream, { partSize: 16 * MiB, multipartThreshold: 16 * MiB, onProgress: (p) => upload(Math.round(p.sent / MiB), 1024) });
    const written = source.digest();
    if (big.sha256 !== written || big.size !== GiB) throw new Error(`1 GiB put answered size ${big.size}, sha256 ${big.sha256}; wrote ${written}`);
    const slice = await client.registerFunction('async (ref, start) => (await ref.slice(start, start + 1048576)).length', { name: 'slice' });
    const readSlice = async (ref: string, start: number) => {
      const before = await served();
      const t0 = performance.now();
      const doc = await client.run(endpoint.endpointId, slice, [{ $ref: ref }, start], undefined, 60);
      const ms = performance.now() - t0;
      if (doc.status !== 'success' || doc.result !== MiB) throw new Error(`slice task: ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
      return { ms, bytes: (await served()).bytes_served - before.bytes_served };
    };
    const small = await client.put(new Uint8Array(2 * MiB).fill(7));
    await readSlice(small.$ref, 0);
    // Five slices (each one chunk of the site cache) read cold, then the same five again: medians.
    const offsets = [100, 300, 512, 700, 900].map((m) => m * MiB);
    const reads = async () => {
      const rs: Array<{ ms: number; bytes: number }> = [];
      for (const start of offsets) rs.push(await readSlice(big.$ref, start));
      return { ms: median(rs.map((r) => r.ms)), bytes: rs.reduce((sum, r) => sum + r.bytes, 0) / rs.length, all: rs.map((r) => r.ms.toFixed(0)).join(' ') };
    };
    const cold = await reads();
    const warm = await reads();
    // The whole download is kept in memory and hashed after the clock stops.
    const chunks: Uint8Array[] = [];
    const t0 = performance.now();
    const stream = await client.getStream(big.$ref);
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    const wholeMs = performance.now() - t0;
    const read = sha256(chunks);
    if (read !== written) throw new Error(`whole download: sha256 ${read} (${chunks.reduce((s, c) => s + c.byteLength, 0)} bytes), wrote ${written}`);
    chunks.length = 0;
    figures['data_slice_1MiB_of_1GiB_cold'] = { value: cold.ms, unit: 'ms', baseline: wholeMs, baseline_name: 'GET the whole 1 GiB, same client', note: `median of ${offsets.length} slices (ms: ${cold.all}), warm isolate; gateway served ${(cold.bytes / MiB).toFixed(2)} MiB per task (whole object: 1024 MiB); the download's sha256 checked` };
    figures['data_slice_1MiB_of_1GiB_warm'] = { value: warm.ms, unit: 'ms', baseline: cold.ms, baseline_name: 'cold cache, warm isolate', note: `the same ${offsets.length} slices again (ms: ${warm.all}); gateway served ${warm.bytes} bytes per task (site cache)` };
    await client.deleteObject(big.$ref);
    await client.deleteObject(small.$ref);

    process.stderr.write('bench: 200 MB round trip …\n');
    const size = 200_000_000;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) payload[i] = i & 255;
    const payloadSha = sha256([payload]);
    const r0 = performance.now();
    const ref = await client.put(payload, { partSize: 16 * MiB, multipartThreshold: 16 * MiB });
    const back = await client.get(ref.$ref);
    const roundMs = performance.now() - r0;
    if (sha256([back]) !== payloadSha) throw new Error(`round trip: ${back.byteLength} bytes back, sha256 differs from what was put`);
    const plainMs = await plainHttpRoundTrip(payload, payloadSha);
    figures['data_roundtrip_200MB'] = { value: (2 * size) / 1e6 / (roundMs / 1000), unit: 'MB/s', baseline: (2 * size) / 1e6 / (plainMs / 1000), baseline_name: 'plain loopback HTTP PUT + GET', note: "put (16 MiB parts, sha256 read-back) + get through the gateway, sha256 of what came back checked; workerd's R2 is a local simulation" };
  } finally {
    await stack.stop();
  }
}

function sha256(chunks: Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  return hash.digest('hex');
}

/** PUT then GET of the same bytes to a bare Node HTTP server on loopback (kept in memory): milliseconds. */
async function plainHttpRoundTrip(bytes: Uint8Array, digest: string): Promise<number> {
  let stored: Buffer = Buffer.alloc(0);
  const server = createServer((req, res) => {
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        stored = Buffer.concat(chunks);
        res.end('ok');
      });
    } else {
      res.writeHead(200, { 'content-length': String(stored.length) });
      res.end(stored);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blob`;
  try {
    const t0 = performance.now();
    await (await fetch(url, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer> })).text();
    const back = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const ms = performance.now() - t0;
    if (sha256([back]) !== digest) throw new Error('plain HTTP round trip: the bytes back differ');
    return ms;
  } finally {
    server.close();
  }
}

/** CPU-µs per task by part, one line: `gateway 12.3, agent 4.5, …`. */
function formatCpu(cpu: CpuParts): string {
  return Object.entries(cpu).map(([part, us]) => `${part} ${us.toFixed(1)}`).join(', ');
}

/** The git commit the bench runs from and whether the tree had changes (read at the start), the machine. */
function runMeta(started: Date) {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  return {
    commit: git('rev-parse', 'HEAD'),
    dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    time: started.toISOString(),
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpu_model: cpuModel,
    node: process.version,
  };
}

function report(section: string, meta: ReturnType<typeof runMeta>) {
  const digits = (f: Figure) => (f.unit === 'tasks/s' ? 0 : 2);
  const rows = Object.entries(figures).map(([name, f]) => [
    name, `${f.value.toFixed(digits(f))} ${f.unit}`, `${f.baseline.toFixed(digits(f))} ${f.unit}${f.baseline_name ? ` (${f.baseline_name})` : ''}`, ratio(f.value, f.baseline), f.note ?? '',
  ]);
  const header = ['figure', 'value', 'baseline (same run)', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const [i, [, f]] of Object.entries(figures).entries()) {
    console.log(line(rows[i]!));
    if (f.also) console.log(`    also beside ${f.also.name}: ${f.also.value.toFixed(digits(f))} ${f.unit}, ratio ${ratio(f.value, f.also.value)}`);
    if (f.cpu_us_per_task) console.log(`    CPU-µs/task: ${formatCpu(f.cpu_us_per_task)}`);
    if (f.baseline_cpu_us_per_task) console.log(`    baseline CPU-µs/task: ${formatCpu(f.baseline_cpu_us_per_task)}`);
  }
  const rounded = JSON.parse(JSON.stringify(figures, (_, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v))) as Record<string, Figure>;
  const text = JSON.stringify({ ...meta, finished: new Date().toISOString(), section, failed, skipped, figures: rounded, hop_traces: hopTraces }, null, 2) + '\n';
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${meta.commit.slice(0, 7)}${meta.dirty ? '-dirty' : ''}-${meta.time.replace(/[:.]/g, '-')}.json`);
  writeFileSync(join(dir, 'latest.json'), text);
  writeFileSync(file, text);
  console.log(`written: ${file} (and bench/results/latest.json)`);
  for (const s of skipped) console.log(`skipped section ${s.section}: ${s.reason}`);
  if (failed.length > 0) {
    console.log(`failed sections (see above): ${failed.map((f) => f.section).join(', ')}`);
    process.exitCode = 1;
  }
}

function ratio(value: number, baseline: number): string {
  if (!baseline) return '';
  const r = value / baseline;
  return `${r.toFixed(r < 10 ? 2 : 1)}×`;
}

await main();
