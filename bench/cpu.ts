// CPU time and bytes written of process trees, read from /proc (Linux): the gateway (wrangler +
// workerd) and the endpoint (agent, managers, workers) are trees of processes whose CPU a benchmark
// adds up.

import { readFileSync } from 'node:fs';
import { procStats, type ProcStat } from '../test/helpers/processes';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU-seconds used so far by the processes rooted at `roots` (each root and all its descendants). */
export function treeCpuSeconds(roots: readonly number[]): number {
  let ticks = 0;
  for (const p of treeProcs(roots)) ticks += p.cpuTicks + p.childCpuTicks;
  return ticks / TICKS_PER_S;
}

/**
 * Bytes the processes rooted at `roots` have passed to write calls so far (`wchar` of
 * /proc/<pid>/io: files, the SQLite WAL, sockets and pipes alike). Unlike CPU time, it barely
 * varies from run to run of the same work on a noisy machine. Processes that exited are not counted.
 */
export function treeWriteBytes(roots: readonly number[]): number {
  let bytes = 0;
  for (const p of treeProcs(roots)) {
    try {
      bytes += Number(/^wchar:\s+(\d+)/m.exec(readFileSync(`/proc/${p.pid}/io`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return bytes;
}

/** The processes rooted at `roots`: each root and all its descendants. */
function treeProcs(roots: readonly number[]): ProcStat[] {
  const procs = procStats();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const out: ProcStat[] = [];
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    // Children that exited and were reaped count in their parent's childCpuTicks.
    const p = byPid.get(pid);
    if (p) out.push(p);
    for (const c of children.get(pid) ?? []) stack.push(c.pid);
  }
  return out;
}
