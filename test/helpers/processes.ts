// Process liveness for tests that kill processes: a killed child whose parent died stays a zombie
// until something reaps it, and `kill(pid, 0)` still says it exists.

import { readdirSync, readFileSync } from 'node:fs';

/** Alive, not a zombie: a killed process whose parent died waits for a reaper that may never come. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Resolves once `pid` is dead or a zombie. SIGKILL is certain but not instant: a process closes its
 * files (which ends the runner's wait on the pipes) a moment before it turns into a zombie.
 */
export async function untilDead(pid: number, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** SIGKILLs every pid in the list and empties it (processes a test left behind; gone ones are fine). */
export function killAll(pids: number[]): void {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Resident memory of a process, bytes (0 once it is gone). */
export function vmRssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The processes of a process group, with their command names and CPU used so far (user + system ticks). */
export function groupProcesses(groupId: number): Array<{ pid: number; comm: string; cpuTicks: number }> {
  const out: Array<{ pid: number; comm: string; cpuTicks: number }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = /\(([^)]*)\)/.exec(stat)?.[1] ?? '';
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === groupId) out.push({ pid: Number(entry), comm, cpuTicks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone
    }
  }
  return out;
}

/** workerd processes of the gateway's process group (wrangler dev spawns them). */
export function workerdPids(groupId: number): number[] {
  return groupProcesses(groupId).filter((p) => p.comm.includes('workerd')).map((p) => p.pid);
}

/**
 * Bytes that arrived on loopback TCP connections to `port` and the listening process has not read
 * yet (the Recv-Q of its established sockets, from /proc/net/tcp): work in flight to a frozen server.
 */
export function unreadBytesOnPort(port: number): number {
  let total = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const localPort = parseInt(f[1]!.split(':')[1]!, 16);
      const established = f[3] === '01';
      if (localPort === port && established) total += parseInt(f[4]!.split(':')[1]!, 16);
    }
  }
  return total;
}
