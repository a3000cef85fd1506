// `npm run bench`: Ferry's figures on this machine, each beside a baseline measured in the same
// run (machines here are noisy; only ratios from one run compare). Writes bench/results/latest.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../src/cli/gateway-process';
import { eventually, startStack, type TestTaskStore } from '../test/helpers/stack';
import { interchangeThroughput } from './interchange';

interface Figure {
  value: number;
  unit: string;
  baseline?: number;
  baseline_name?: string;
  note?: string;
}
const figures: Record<string, Figure> = {};

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
  if (wants('slurm')) await scaleOutFigures();
  if (wants('stores')) await storesSection();
  if (!wants('latency') && !wants('throughput')) return report();
  process.stderr.write('bench: starting gateway (workerd) and a local endpoint …\n');
  const stack = await startStack();
  try {
    const client = await stack.client('bench');
    const defaults = parse(readFileSync(join(PROJECT_ROOT, 'endpoint-config', 'local.yaml'), 'utf8')) as Record<string, unknown>;
    const endpoint = await stack.createEndpoint('bench', 'bench', defaults);
    endpoint.start();
    await eventually(async () => (await client.endpointStatus(endpoint.endpointId)).details.total_workers >= 1, 'workers', 60_000);

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
      const inc = await client.registerFunction((x: number) => x + 1, { name: 'inc' });
      // Warm the workers' isolates for this function, outside the clock.
      await client.waitAll((await client.submitBatch(endpoint.endpointId, inc, [[0], [1], [2], [3]])).task_ids);
      const payloads = Array.from({ length: n }, (_, i) => [i]);
      const t0 = performance.now();
      const submitted = progress('submitted');
      const finished = progress('finished');
      const sub = await client.submitBatch(endpoint.endpointId, inc, payloads, { onProgress: (p) => submitted(p.submitted, p.total) });
      const tSubmitted = performance.now();
      const docs = await client.waitAll(sub.task_ids, { timeout: 600, onProgress: (p) => finished(p.done, p.total) });
      const t1 = performance.now();
      const wrong = docs.filter((d, i) => d.status !== 'success' || d.result !== i + 1).length;
      if (wrong) throw new Error(`${wrong} of ${n} results wrong or missing`);
      figures['throughput_20k'] = { value: n / ((t1 - t0) / 1000), unit: 'tasks/s', note: `${n} tasks, every result verified; submit took ${((tSubmitted - t0) / 1000).toFixed(2)} s` };
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
  const n = Number(process.env.BENCH_TASKS) || 20_000;
  const measured: Record<TestTaskStore, { throughput: number; p50: number; p99: number }> = {} as never;
  for (const taskStore of ['sqlite', 'redis'] as const) {
    process.stderr.write(`bench: stores, TASK_STORE=${taskStore} …\n`);
    const stack = await startStack({ taskStore });
    try {
      const client = await stack.client('bench');
      const defaults = parse(readFileSync(join(PROJECT_ROOT, 'endpoint-config', 'local.yaml'), 'utf8')) as Record<string, unknown>;
      const endpoint = await stack.createEndpoint(`bench-${taskStore}`, 'bench', defaults);
      endpoint.start();
      await eventually(async () => (await client.endpointStatus(endpoint.endpointId)).details.total_workers >= 1, 'workers', 60_000);
      const inc = await client.registerFunction((x: number) => x + 1, { name: 'inc' });
      await client.waitAll((await client.submitBatch(endpoint.endpointId, inc, [[0], [1], [2], [3]])).task_ids);
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
  figures['stores_throughput_20k_redis'] = { value: redis.throughput, unit: 'tasks/s', baseline: sqlite.throughput, baseline_name: 'TASK_STORE=sqlite', note: `${n} tasks, every result verified` };
  figures['stores_batch_status_1000_p50_redis'] = { value: redis.p50, unit: 'ms', baseline: sqlite.p50, baseline_name: 'TASK_STORE=sqlite p50' };
  figures['stores_batch_status_1000_p99_redis'] = { value: redis.p99, unit: 'ms', baseline: sqlite.p99, baseline_name: 'TASK_STORE=sqlite p99' };
}

function report() {
  const rows = Object.entries(figures).map(([name, f]) => [
    name, `${f.value.toFixed(f.unit === 'tasks/s' ? 0 : 2)} ${f.unit}`, f.baseline !== undefined ? `${f.baseline.toFixed(f.unit === 'tasks/s' ? 0 : 2)} ${f.unit} (${f.baseline_name})` : '', f.baseline ? `${(f.value / f.baseline).toFixed(1)}×` : '', f.note ?? '',
  ]);
  const header = ['figure', 'value', 'baseline (same run)', 'ratio', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(figures, null, 2) + '\n');
}

await main();
