// CPU time of process trees, read from /proc (Linux): the gateway (wrangler + workerd) and the
// endpoint (agent, managers, workers) are trees of processes whose CPU a benchmark adds up.

import { procStats, type ProcStat } from '../test/helpers/processes';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU-seconds used so far by the processes rooted at `roots` (each root and all its descendants). */
export function treeCpuSeconds(roots: readonly number[]): number {
  const procs = procStats();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  let ticks = 0;
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    // Children that exited and were reaped count too.
    const p = byPid.get(pid);
    ticks += p ? p.cpuTicks + p.childCpuTicks : 0;
    for (const c of children.get(pid) ?? []) stack.push(c.pid);
  }
  return ticks / TICKS_PER_S;
}
