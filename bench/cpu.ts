// CPU time and bytes written of process trees, read from /proc (Linux): the gateway (the process
// startGatewayProcess starts and its descendants) and the endpoint (agent, managers, workers) are
// trees of processes whose CPU a benchmark adds up, split by role; the client is this process.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/cli/gateway-process';
import { procStats, type ProcStat } from '../test/helpers/processes';

const TICKS_PER_S = 100; // USER_HZ on Linux

/** CPU-seconds used so far by the processes rooted at `roots` (each root and all its descendants). */
export function treeCpuSeconds(roots: readonly number[]): number {
  let ticks = 0;
  for (const p of treeProcs(roots)) ticks += p.cpuTicks + p.childCpuTicks;
  return ticks / TICKS_PER_S;
}

/** CPU-seconds this process (the bench, the client) has used so far. */
export function clientCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

// How a manager and a worker process are started (src/endpoint/providers/provider.ts managerCommand,
// src/endpoint/worker/fork.ts): Node with the entry file's absolute path on its command line.
const MANAGER_MAIN = join(PROJECT_ROOT, 'src', 'endpoint', 'manager', 'main.ts');
const WORKER_MAIN = join(PROJECT_ROOT, 'src', 'endpoint', 'worker', 'main.ts');

export interface EndpointCpu {
  /** The `ferry endpoint start` process alone. */
  agent: number;
  /** Manager processes (src/endpoint/manager/main.ts). */
  managers: number;
  /** Worker processes (src/endpoint/worker/main.ts) and whatever they start. */
  workers: number;
}

/**
 * CPU-seconds so far of a local endpoint's tree, split: the agent process alone, its managers, their
 * workers, each told apart by its command line. A process that exited and was reaped counts in its
 * parent's children's ticks: the agent's reaped children as managers (a local provider starts no
 * other children), a manager's or a worker's as workers. Sample before and after a run: the workers
 * of a local block live through it.
 */
export function endpointCpuSeconds(agentPid: number): EndpointCpu {
  const ticks: EndpointCpu = { agent: 0, managers: 0, workers: 0 };
  const procs = treeProcs([agentPid]);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const roles = new Map<number, keyof EndpointCpu>();
  const roleOf = (p: ProcStat): keyof EndpointCpu => {
    let role = roles.get(p.pid);
    if (role) return role;
    const cmd = cmdline(p.pid);
    if (p.pid === agentPid) role = 'agent';
    else if (cmd.includes(MANAGER_MAIN)) role = 'managers';
    else if (cmd.includes(WORKER_MAIN)) role = 'workers';
    else {
      const parent = byPid.get(p.ppid);
      role = parent ? roleOf(parent) : 'agent';
    }
    roles.set(p.pid, role);
    return role;
  };
  for (const p of procs) {
    const role = roleOf(p);
    ticks[role] += p.cpuTicks;
    ticks[role === 'agent' ? 'managers' : 'workers'] += p.childCpuTicks;
  }
  return { agent: ticks.agent / TICKS_PER_S, managers: ticks.managers / TICKS_PER_S, workers: ticks.workers / TICKS_PER_S };
}

/** CPU-seconds so far, by part (gateway, agent, …, client). */
export type CpuParts = Record<string, number>;

/**
 * Starts a CPU clock over `sample` (CPU-seconds so far, by part); `stop(tasks)` samples again and
 * answers CPU-µs per task, by part.
 */
export function cpuClock(sample: () => CpuParts): { stop(tasks: number): CpuParts } {
  const before = sample();
  return {
    stop(tasks) {
      const after = sample();
      return Object.fromEntries(Object.entries(after).map(([part, s]) => [part, ((s - (before[part] ?? 0)) * 1e6) / tasks]));
    },
  };
}

/** The process id of this process's child `comm` whose command line holds `marker` (say, a redis-server's port). */
export function childPid(comm: string, marker: string): number {
  const found = procStats().find((p) => p.ppid === process.pid && p.comm === comm && cmdline(p.pid).includes(marker));
  if (!found) throw new Error(`no child ${comm} of this process with ${marker} on its command line`);
  return found.pid;
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

/** A process's command line, arguments joined by spaces ('' once it is gone). */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
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
