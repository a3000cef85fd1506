// Process liveness for tests that kill processes: a killed child whose parent died stays a zombie
// until something reaps it, and `kill(pid, 0)` still says it exists.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/** One process as /proc/<pid>/stat describes it. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** Process group. */
  pgrp: number;
  comm: string;
  /** User + system CPU so far, in ticks (USER_HZ, 100 a second on Linux). */
  cpuTicks: number;
  /** The same for its children that exited and were reaped. */
  childCpuTicks: number;
}

/** Every process on the machine, from /proc (those that exit while it is read are left out). */
export function procStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command (which may hold spaces and parentheses) start after the last ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.push({ pid: Number(entry), ppid: Number(f[1]), pgrp: Number(f[2]), comm, cpuTicks: Number(f[11]) + Number(f[12]), childCpuTicks: Number(f[13]) + Number(f[14]) });
    } catch {
      // gone
    }
  }
  return out;
}

/** workerd processes of the gateway's process group (the launcher spawns them). */
export function workerdPids(groupId: number): number[] {
  return procStats().filter((p) => p.pgrp === groupId && p.comm.includes('workerd')).map((p) => p.pid);
}

interface TcpSocket {
  localPort: number;
  remotePort: number;
  established: boolean;
  listening: boolean;
  /** The peer closed its side and the owner has not closed its own yet (CLOSE_WAIT). */
  peerClosed: boolean;
  /** Bytes received and not yet read by the owning process (Recv-Q). */
  unread: number;
  inode: string;
}

/** Every TCP socket on the machine (IPv4 and IPv6), from /proc/net/tcp*. */
function tcpSockets(): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      out.push({
        localPort: parseInt(f[1]!.split(':')[1]!, 16),
        remotePort: parseInt(f[2]!.split(':')[1]!, 16),
        established: f[3] === '01',
        listening: f[3] === '0A',
        peerClosed: f[3] === '08',
        unread: parseInt(f[4]!.split(':')[1]!, 16),
        inode: f[9]!,
      });
    }
  }
  return out;
}

/** Inodes of the sockets a process has open (from the links in /proc/<pid>/fd). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * Bytes that arrived on loopback TCP connections `clientPid` opened to `port` and the listening
 * process has not read yet (the Recv-Q of its established sockets, from /proc/net/tcp): that
 * client's work in flight to a frozen server. Other clients (say, the heartbeats of other agents)
 * do not count.
 */
export function unreadBytesOnPort(port: number, clientPid: number): number {
  const sockets = tcpSockets();
  const inodes = socketInodes(clientPid);
  const clientPorts = new Set(sockets.filter((s) => s.remotePort === port && inodes.has(s.inode)).map((s) => s.localPort));
  let total = 0;
  for (const s of sockets) {
    if (s.localPort === port && s.established && clientPorts.has(s.remotePort)) total += s.unread;
  }
  return total;
}

/**
 * The connections `clientPid` holds to `port`: open ones, and those the server has closed while the
 * client has not yet read the close (CLOSE_WAIT), as the kernel sees them now.
 */
export function connectionsToPort(port: number, clientPid: number): { open: number; closedByServer: number } {
  const inodes = socketInodes(clientPid);
  const mine = tcpSockets().filter((s) => s.remotePort === port && inodes.has(s.inode));
  return { open: mine.filter((s) => s.established).length, closedByServer: mine.filter((s) => s.peerClosed).length };
}

/** `root` and every process descended from it. */
export function processTree(root: number): number[] {
  const procs = procStats();
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    for (const p of procs) if (p.ppid === pid) stack.push(p.pid);
  }
  return out;
}

/** TCP ports on which any process of the tree rooted at `root` listens. */
export function listeningPorts(root: number): number[] {
  const inodes = new Set<string>();
  for (const pid of processTree(root)) for (const inode of socketInodes(pid)) inodes.add(inode);
  return [...new Set(tcpSockets().filter((s) => s.listening && inodes.has(s.inode)).map((s) => s.localPort))].sort((a, b) => a - b);
}
