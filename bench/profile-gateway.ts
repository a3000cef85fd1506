// `npm run profile:gateway [-- on|off|run] [tasks]`: a CPU profile of the gateway (workerd, through
// wrangler dev's inspector) while a local endpoint runs a batch of `(x) => x + 1` with lineage on
// or off, or (`run`) that many sequential `POST /v3/run` round trips, as the latency bench makes. Prints the CPU of the gateway's processes per task, the top functions by self time, and
// writes the whole profile to bench/results/gateway-<mode>.cpuprofile (open it in Chrome DevTools →
// Performance, or speedscope). PROFILE=0: the CPU figures only, without the profiler's overhead.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { PROJECT_ROOT, freePort } from '../src/cli/gateway-process';
import { procStats } from '../test/helpers/processes';
import { startStack } from '../test/helpers/stack';
import { defaultEndpoint, untilRecordsQueryable, warmIncrement } from './endpoints';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

async function inspector(port: number): Promise<(method: string, params?: object) => Promise<Record<string, unknown>>> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as Array<{ webSocketDebuggerUrl: string; title?: string }>;
  const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
  if (!target) throw new Error('no inspector target');
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  let id = 0;
  const pending = new Map<number, (r: Record<string, unknown>) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown>; error?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result ?? { error: msg.error });
  });
  return (method, params = {}) =>
    new Promise((resolve) => {
      const n = ++id;
      pending.set(n, resolve);
      ws.send(JSON.stringify({ id: n, method, params }));
    });
}

function selfTimes(profile: Profile): Array<{ name: string; ms: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!)!;
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    totals.set(name, (totals.get(name) ?? 0) + (deltas[i] ?? 0) / 1000);
  }
  return [...totals].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
}

/** CPU ticks of the processes in `groupId`'s process group, by command name. */
function processCpu(groupId: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of procStats()) if (p.pgrp === groupId) out.set(p.comm, (out.get(p.comm) ?? 0) + p.cpuTicks);
  return out;
}

async function main() {
  const mode = process.argv[2] === 'off' ? 'off' : process.argv[2] === 'run' ? 'run' : 'on';
  const n = Number(process.argv[3]) || 20_000;
  const port = await freePort();
  process.env.FERRY_GATEWAY_INSPECTOR_PORT = String(port);
  const stack = await startStack({ vars: { LINEAGE: mode === 'off' ? 'off' : 'on' } });
  try {
    const client = await stack.client('bench');
    const { endpointId } = await defaultEndpoint(stack, client, 'profiled');
    const fn = await warmIncrement(client, endpointId);
    const profiling = process.env.PROFILE !== '0';
    const send = profiling ? await inspector(port) : async () => ({});
    await send('Profiler.enable');
    await send('Profiler.setSamplingInterval', { interval: 200 });
    await send('Profiler.start');
    const cpu0 = processCpu(stack.gateway.child.pid!);
    const t0 = performance.now();
    const workflow = `profile-${mode}`;
    if (mode === 'run') {
      for (let i = 0; i < n; i++) {
        const doc = await client.run(endpointId, fn, [i], undefined, 10);
        if (doc.status !== 'success' || doc.result !== i + 1) throw new Error(`run ${i} ended ${doc.status}`);
      }
    } else {
      const { task_ids } = await client.submitBatch(endpointId, fn, Array.from({ length: n }, (_, i) => [i]), { workflow_id: workflow });
      await client.waitAll(task_ids, { timeout: 600 });
    }
    if (mode === 'on') {
      const results = performance.now();
      await untilRecordsQueryable(stack, workflow, n);
      console.log(`every record queryable ${(performance.now() - results).toFixed(0)} ms after the last result was read`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = processCpu(stack.gateway.child.pid!);
    for (const [name, ticks] of cpu1) console.log(`cpu ${name}: ${(((ticks - (cpu0.get(name) ?? 0)) / 100 / n) * 1e6).toFixed(1)} µs/task`);
    if (!profiling) {
      console.log(`LINEAGE=${mode}: ${n} tasks in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(0)} tasks/s)`);
      return;
    }
    const { profile } = (await send('Profiler.stop')) as { profile: Profile };
    mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
    const out = join(PROJECT_ROOT, 'bench', 'results', `gateway-${mode}.cpuprofile`);
    writeFileSync(out, JSON.stringify(profile));
    const top = selfTimes(profile);
    const total = top.reduce((s, t) => s + t.ms, 0);
    const idle = top.filter((t) => t.name.startsWith('(idle)')).reduce((s, t) => s + t.ms, 0);
    console.log(`LINEAGE=${mode}: ${n} tasks in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(0)} tasks/s); sampled ${(total - idle).toFixed(0)} ms busy, ${((total - idle) / n * 1000).toFixed(1)} µs/task`);
    for (const t of top.slice(0, 40)) console.log(`${t.ms.toFixed(1).padStart(9)} ms  ${((t.ms / n) * 1000).toFixed(2).padStart(7)} µs/task  ${t.name}`);
    console.log(`profile: ${out}`);
  } finally {
    await stack.stop();
  }
}

await main();
