// Process liveness for tests that kill processes: a killed child whose parent died stays a zombie
// until something reaps it, and `kill(pid, 0)` still says it exists.

import { readFileSync } from 'node:fs';

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
