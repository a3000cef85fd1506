// `npm run bench`: Ferry's figures on this machine, each beside a baseline measured in the same
// run (machines here are noisy; only ratios from one run compare). Writes bench/results/latest.json.

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/cli/gateway-process';
import { eventually, startStack, type Stack, type TestTaskStore, waitForWorkers } from '../test/helpers/stack';
import { generated } from '../test/helpers/generated-bytes';
import { treeCpuSeconds, treeWriteBytes } from './cpu';
import { defaultEndpoint, untilRecordsQueryable, warmIncrement } from './endpoints';
import { interchangeThroughput } from './interchange';

interface Figure {
  value: number;
  unit: string;
  baseline?: number;
  baseline_name?: string;
  note?: string;
}
const figures: Record<string, Figure> = {};
const failed: string[] = [];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
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

async function bareEcho(): Promise<{ p50: number; p99: number }> {
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
    await res.text();
  };
  await timeSequential(50, call);
  const t = await timeSequential(500, call);
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

async function main() {
  const section = (process.argv[2] ?? 'all').toLowerCase();
  const wants = (name: string) => section === 'all' || section === name;
  if (wants('interchange')) {
    const n = 200_000;
    process.stderr.write(`bench: interchange dispatch, ${n} no-op tasks …\n`);
    const one = await interchangeThroughput(1, 16, n);
    const hundred = await interchangeThroughput(100, 16, n);
    figures['interchange_100x16'] = { value: hundred, unit: 'tasks/s', baseline: one, baseline_name: '1 manager × 16 workers', note: `${n} no-op tasks, simulated managers answer at once` };
  }
  // One section failing (a local runtime limit, a missing service) leaves the others' figures.
  const run = async (name: string, section: () => Promise<void>) => {
    if (!wants(name)) return;
    try {
      await section();
    } catch (err) {
      failed.push(name);
      process.stderr.write(`bench: section ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  };
  await run('slurm', scaleOutFigures);
  await run('stores', storesSection);
  await run('provenance', provenanceSection);
  await run('data', dataSection);
  if (!wants('latency') && !wants('throughput')) return report();
  process.stderr.write('bench: starting gateway (workerd) and a local endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await defaultEndpoint(stack, client, 'bench');

    if (wants('latency')) {
      process.stderr.write('bench: round trips …\n');
      const echo = await bareEcho();
      const noop = await client.registerFunction(() => null, { name: 'noop' });
      const run = async () => {
        const doc = await client.run(endpoint.endpointId, noop, [], undefined, 10);
        if (doc.status !== 'success') throw new Error(`run ended ${doc.status}`);
      };
      await timeSequential(50, run);
      const t = await timeSequential(500, run);
      figures['run_roundtrip_p50'] = { value: quantile(t, 0.5), unit: 'ms', baseline: echo.p50, baseline_name: 'bare Node HTTP echo p50' };
      figures['run_roundtrip_p99'] = { value: quantile(t, 0.99), unit: 'ms', baseline: echo.p99, baseline_name: 'bare Node HTTP echo p99' };
    }

    if (wants('throughput')) {
      const n = Number(process.env.BENCH_TASKS) || 20_000;
      process.stderr.write(`bench: throughput of ${n} tasks …\n`);
      const inc = await warmIncrement(client, endpoint.endpointId);
      const payloads = Array.from({ length: n }, (_, i) => [i]);
      let t0 = performance.now();
      let resubmitted = 0;
      const submitted = progress('submitted');
      const finished = progress('finished');
      const { sub } = await submitAgainOn503(client, endpoint.endpointId, inc, payloads, 'bench-throughput', () => {
        resubmitted++;
        t0 = performance.now();
      }, (p) => submitted(p.submitted, p.total));
      const tSubmitted = performance.now();
      const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
      const t1 = performance.now();
      const wrong = docs.filter((d, i) => d.status !== 'success' || d.result !== i + 1).length;
      if (wrong) throw new Error(`${wrong} of ${n} results wrong or missing`);
      figures['throughput_20k'] = { value: n / ((t1 - t0) / 1000), unit: 'tasks/s', note: `${n} tasks, every result verified; submit took ${((tSubmitted - t0) / 1000).toFixed(2)} s${resubmitted ? `; run again after ${resubmitted} 503(s) from wrangler dev's proxy` : ''}` };
    }
  } finally {
    await stack.stop();
  }
  report();
}

/** Backlog → first result when the endpoint has no block yet: a Slurm job, beside a local process. */
async function scaleOutFigures() {
  const { ensureSlurm, slurmInstalled } = await import('../test/helpers/slurm');
  if (!slurmInstalled()) return;
  const cluster = await ensureSlurm();
  process.env.SLURM_CONF = cluster.env.SLURM_CONF;
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const times: Record<string, number> = {};
    for (const type of ['local', 'slurm'] as const) {
      process.stderr.write(`bench: backlog to first result from a new ${type} block …\n`);
      const endpoint = await stack.createEndpoint(`scale-${type}`, 'bench', {
        provider: { type, init_blocks: 0, min_blocks: 0, max_blocks: 1, max_workers_per_node: 2, max_idletime_s: 30, ...(type === 'slurm' ? { exclusive: false, cpus_per_node: 1, walltime: '00:10:00' } : {}) },
        strategy_period_s: 1,
        heartbeat_s: 1,
      });
      const agent = endpoint.start();
      await agent.waitForOutput(/connected to gateway/, 30_000);
      const fn = await client.registerFunction((x: number) => x, { name: 'ident' });
      const t0 = performance.now();
      const { task_ids } = await client.submitBatch(endpoint.endpointId, fn, Array.from({ length: 100 }, (_, i) => [i]));
      await client.result(task_ids[0]!, { timeout: 120 });
      times[type] = (performance.now() - t0) / 1000;
      await client.waitAll(task_ids, { timeout: 120 });
      await agent.kill('SIGTERM');
    }
    figures['scale_out_first_result_slurm'] = { value: times.slurm!, unit: 's', baseline: times.local!, baseline_name: 'new local block', note: 'strategy period 1 s; includes sbatch → RUNNING (~3 s here)' };
  } finally {
    await stack.stop();
    await cluster.stop();
  }
}

/**
 * `stores`: the TaskStore adapters side by side in one run: 20,000-task throughput and the latency
 * of POST /v2/batch_status for 1,000 ids, with Durable Object SQLite as the baseline of Redis.
 */
async function storesSection() {
  // 5,000 by default: in wrangler dev every fetch to Redis (through the Upstash-protocol proxy)
  // leaves ~10 MB/s of memory in workerd, which reaches its heap limit within a few minutes here.
  const n = Number(process.env.BENCH_STORE_TASKS) || 5_000;
  const measured: Record<TestTaskStore, { throughput: number; p50: number; p99: number }> = {} as never;
  for (const taskStore of ['sqlite', 'redis'] as const) {
    process.stderr.write(`bench: stores, TASK_STORE=${taskStore} …\n`);
    const stack = await startStack({ taskStore });
    try {
      const client = await stack.client('bench');
      const endpoint = await defaultEndpoint(stack, client, `bench-${taskStore}`);
      const inc = await warmIncrement(client, endpoint.endpointId);
      const finished = progress(`${taskStore} finished`);
      const t0 = performance.now();
      const sub = await client.submitBatch(endpoint.endpointId, inc, Array.from({ length: n }, (_, i) => [i]));
      const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
      const t1 = performance.now();
      const wrong = docs.filter((d, i) => d.status !== 'success' || d.result !== i + 1).length;
      if (wrong) throw new Error(`${taskStore}: ${wrong} of ${n} results wrong or missing`);
      const ids = sub.task_ids.slice(0, 1000);
      const status = async () => {
        const res = await client.batchStatus(ids);
        if (Object.keys(res).length !== ids.length) throw new Error(`${taskStore}: batch_status answered ${Object.keys(res).length} of ${ids.length}`);
      };
      await timeSequential(20, status);
      const t = await timeSequential(200, status);
      measured[taskStore] = { throughput: n / ((t1 - t0) / 1000), p50: quantile(t, 0.5), p99: quantile(t, 0.99) };
    } finally {
      await stack.stop();
    }
  }
  const { sqlite, redis } = measured;
  figures['stores_throughput_redis'] = { value: redis.throughput, unit: 'tasks/s', baseline: sqlite.throughput, baseline_name: 'TASK_STORE=sqlite', note: `${n} tasks, every result verified` };
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
 * queried. CPU-seconds are those of the gateway's and the endpoint's process trees over the run (the
 * client's own are not counted).
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
    const runs: Record<Mode, Array<{ rate: number; cpuPerTask: number; gatewayCpuPerTask: number; gatewayBytesPerTask: number; segments: number }>> = { on: [], off: [] };
    const payloads = Array.from({ length: n }, (_, i) => [i]);
    // One untimed run per gateway first: the first 20,000 tasks of a fresh gateway run 20-40 %
    // slower (JIT, SQLite's page cache), which would land on whichever mode a pair starts with.
    let resubmitted = 0;
    for (const mode of ['on', 'off'] as const) {
      const { client, endpointId, fn } = setups[mode];
      const finished = progress(`warm-up, lineage ${mode}`);
      const { sub } = await submitAgainOn503(client, endpointId, fn, payloads, `bench-${mode}-warm-up`, () => void resubmitted++);
      await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
    }
    for (let pair = 0; pair < pairs; pair++) {
      for (const mode of (pair % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
        const { stack, client, endpointId, agentPid, fn } = setups[mode];
        const roots = [stack.gateway.child.pid!, agentPid];
        const finished = progress(`pair ${pair + 1}/${pairs} lineage ${mode}`);
        let cpu0 = 0;
        let gw0 = 0;
        let bytes0 = 0;
        let objects0 = 0;
        let t0 = 0;
        const startClocks = () => {
          cpu0 = treeCpuSeconds(roots);
          gw0 = treeCpuSeconds([stack.gateway.child.pid!]);
          bytes0 = treeWriteBytes([stack.gateway.child.pid!]);
          objects0 = r2Objects(stack);
          t0 = performance.now();
        };
        startClocks();
        const { sub, workflow } = await submitAgainOn503(client, endpointId, fn, payloads, `bench-${mode}-${pair}`, () => {
          resubmitted++;
          startClocks();
        });
        const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
        if (mode === 'on') await untilRecordsQueryable(stack, workflow, n);
        const t1 = performance.now();
        const cpu1 = treeCpuSeconds(roots);
        const gatewayCpu = treeCpuSeconds([stack.gateway.child.pid!]) - gw0;
        const gatewayBytes = treeWriteBytes([stack.gateway.child.pid!]) - bytes0;
        const segments = r2Objects(stack) - objects0;
        const wrong = docs.filter((d, i) => d.status !== 'success' || d.result !== i + 1).length;
        if (wrong) throw new Error(`lineage ${mode}: ${wrong} of ${n} results wrong or missing`);
        runs[mode].push({ rate: n / ((t1 - t0) / 1000), cpuPerTask: (cpu1 - cpu0) / n, gatewayCpuPerTask: gatewayCpu / n, gatewayBytesPerTask: gatewayBytes / n, segments });
        process.stderr.write(`  lineage ${mode}: ${(n / ((t1 - t0) / 1000)).toFixed(0)} tasks/s, ${(((cpu1 - cpu0) / n) * 1e3).toFixed(3)} CPU-ms/task (gateway ${((gatewayCpu / n) * 1e3).toFixed(3)}), gateway wrote ${(gatewayBytes / n).toFixed(0)} B/task${mode === 'on' ? `, ${segments} lineage segments` : ''}\n`);
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const ratios = runs.on.map((r, i) => r.rate / runs.off[i]!.rate);
    figures['provenance_throughput_on'] = {
      value: median(runs.on.map((r) => r.rate)), unit: 'tasks/s', baseline: median(runs.off.map((r) => r.rate)), baseline_name: 'LINEAGE=off (median)',
      note: `${pairs} interleaved pairs of ${n} tasks; clock stops when all records are queryable; median pair ratio ${median(ratios).toFixed(3)} (pairs: ${ratios.map((r) => r.toFixed(3)).join(' ')})${resubmitted ? `; ${resubmitted} run(s) run again after a 503 from wrangler dev's proxy` : ''}`,
    };
    figures['provenance_cpu_ms_per_task_on'] = {
      value: median(runs.on.map((r) => r.cpuPerTask * 1e3)), unit: 'CPU-ms/task', baseline: median(runs.off.map((r) => r.cpuPerTask * 1e3)), baseline_name: 'LINEAGE=off (median)',
      note: 'gateway (wrangler + workerd) and endpoint (agent, managers, workers) process trees',
    };
    figures['provenance_gateway_cpu_ms_per_task_on'] = {
      value: median(runs.on.map((r) => r.gatewayCpuPerTask * 1e3)), unit: 'CPU-ms/task', baseline: median(runs.off.map((r) => r.gatewayCpuPerTask * 1e3)), baseline_name: 'LINEAGE=off (median)',
      note: 'the gateway process tree alone (wrangler + workerd)',
    };
    figures['provenance_gateway_bytes_written_per_task_on'] = {
      value: median(runs.on.map((r) => r.gatewayBytesPerTask)), unit: 'B/task', baseline: median(runs.off.map((r) => r.gatewayBytesPerTask)), baseline_name: 'LINEAGE=off (median)',
      note: 'bytes the gateway process tree passed to write calls (/proc/<pid>/io wchar: SQLite WAL, R2 files, sockets); steady from run to run, unlike CPU time here',
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
 * Submits a batch. wrangler dev's proxy now and then answers a POST 503 when the hop to its runtime
 * drops it (workers-sdk#14641: a connection its runtime's keep-alive timeout closes, after an idle
 * gap); the submit may have been stored. A GET first (which the proxy retries itself) makes that
 * rarer; after a 503, whatever was stored finishes, then the batch is submitted again under a new
 * workflow name, `again()` called first (the clocks start afresh).
 */
async function submitAgainOn503(
  client: Awaited<ReturnType<Stack['client']>>, endpointId: string, fn: string, payloads: number[][], workflowName: string, again: () => void,
  onProgress?: (p: { submitted: number; total: number }) => void,
) {
  let workflow = workflowName;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.endpointStatus(endpointId);
      return { sub: await client.submitBatch(endpointId, fn, payloads, { workflow_id: workflow, ...(onProgress ? { onProgress } : {}) }), workflow };
    } catch (err) {
      if ((err as { status?: number }).status !== 503 || attempt > 3) throw err;
      process.stderr.write(`\n  ${workflow}: submit answered 503 (wrangler dev's proxy); settling, then running again\n`);
      await untilEndpointIdle(client, endpointId);
      workflow = `${workflowName}-again${attempt}`;
      again();
    }
  }
}

/** Waits until the endpoint has reported no outstanding or pending task for at least 2.5 s. */
async function untilEndpointIdle(client: Awaited<ReturnType<Stack['client']>>, endpointId: string): Promise<void> {
  let quietSince: number | null = null;
  await eventually(
    async () => {
      const { details } = await client.endpointStatus(endpointId);
      quietSince = details.outstanding_tasks === 0 && details.pending_tasks === 0 ? (quietSince ?? Date.now()) : null;
      return quietSince !== null && Date.now() - quietSince >= 2500;
    },
    'the endpoint to settle',
    600_000,
    250,
  );
}

/**
 * `data`: data by reference. A 1 MiB slice of a 1 GiB object read by a task, cold and warm site
 * cache (bytes the gateway served, counted by the gateway), beside downloading the whole object with
 * the same client; and a 200 MB put + get round trip beside a plain loopback HTTP transfer of the
 * same bytes (workerd's R2 is a local simulation: a local figure, not R2's).
 */
async function dataSection() {
  const MiB = 1024 * 1024;
  const GiB = 1024 * MiB;
  process.stderr.write('bench: data by reference, starting a gateway and an endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const endpoint = await stack.createEndpoint('data', 'bench', { task_timeout_s: 60, task_memory_mb: 256 });
    endpoint.start();
    await waitForWorkers(client, endpoint.endpointId, 1);
    const reader = `endpoint:${endpoint.endpointId}`;
    const served = async () => (await client.objectStats()).readers[reader] ?? { bytes_served: 0, requests: 0 };

    process.stderr.write('bench: uploading 1 GiB in 16 MiB parts …\n');
    const upload = progress('uploaded MiB');
    const big = await client.put(generated(GiB, 11).stream, { partSize: 16 * MiB, multipartThreshold: 16 * MiB, onProgress: (p) => upload(Math.round(p.sent / MiB), 1024) });
    const slice = await client.registerFunction('async (ref, start) => (await ref.slice(start, start + 1048576)).length', { name: 'slice' });
    const readSlice = async () => {
      const before = await served();
      const t0 = performance.now();
      const doc = await client.run(endpoint.endpointId, slice, [{ $ref: big.$ref }, 512 * MiB], undefined, 60);
      const ms = performance.now() - t0;
      if (doc.status !== 'success' || doc.result !== MiB) throw new Error(`slice task: ${doc.status} ${JSON.stringify(doc.exception ?? doc.result)}`);
      return { ms, bytes: (await served()).bytes_served - before.bytes_served };
    };
    const cold = await readSlice();
    const warm = await readSlice();
    const t0 = performance.now();
    let whole = 0;
    const stream = await client.getStream(big.$ref);
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) whole += chunk.byteLength;
    const wholeMs = performance.now() - t0;
    if (whole !== GiB) throw new Error(`whole download: ${whole} bytes`);
    figures['data_slice_1MiB_of_1GiB_cold'] = { value: cold.ms, unit: 'ms', baseline: wholeMs, baseline_name: 'GET the whole 1 GiB, same client', note: `gateway served ${(cold.bytes / MiB).toFixed(2)} MiB for the task (whole object: 1024 MiB)` };
    figures['data_slice_1MiB_of_1GiB_warm'] = { value: warm.ms, unit: 'ms', baseline: cold.ms, baseline_name: 'cold cache', note: `gateway served ${warm.bytes} bytes (site cache)` };
    await client.deleteObject(big.$ref);

    process.stderr.write('bench: 200 MB round trip …\n');
    const size = 200_000_000;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) payload[i] = i & 255;
    const r0 = performance.now();
    const ref = await client.put(payload, { partSize: 16 * MiB, multipartThreshold: 16 * MiB });
    const back = await client.get(ref.$ref);
    const roundMs = performance.now() - r0;
    if (back.byteLength !== size) throw new Error(`round trip: ${back.byteLength} bytes back`);
    const plainMs = await plainHttpRoundTrip(payload);
    figures['data_roundtrip_200MB'] = { value: (2 * size) / 1e6 / (roundMs / 1000), unit: 'MB/s', baseline: (2 * size) / 1e6 / (plainMs / 1000), baseline_name: 'plain loopback HTTP PUT + GET', note: 'put (16 MiB parts, sha256 read-back) + get through the gateway; workerd R2 is a local simulation' };
  } finally {
    await stack.stop();
  }
}

/** PUT then GET of the same bytes to a bare Node HTTP server on loopback (kept in memory): milliseconds. */
async function plainHttpRoundTrip(bytes: Uint8Array): Promise<number> {
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
    if (back.byteLength !== bytes.byteLength) throw new Error('plain HTTP round trip lost bytes');
    return ms;
  } finally {
    server.close();
  }
}

function report() {
  const rows = Object.entries(figures).map(([name, f]) => [
    name, `${f.value.toFixed(f.unit === 'tasks/s' ? 0 : 2)} ${f.unit}`, f.baseline !== undefined ? `${f.baseline.toFixed(f.unit === 'tasks/s' ? 0 : 2)} ${f.unit} (${f.baseline_name})` : '', f.baseline ? `${(f.value / f.baseline).toFixed(f.value / f.baseline < 10 ? 2 : 1)}×` : '', f.note ?? '',
  ]);
  const header = ['figure', 'value', 'baseline (same run)', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(figures, null, 2) + '\n');
  if (failed.length > 0) {
    console.log(`failed sections (see above): ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
