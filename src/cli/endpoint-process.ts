// The endpoint agent as a background process on the login node: its pid file and log under
// $FERRY_HOME/endpoints/NAME/, starting it detached and waiting until it has connected, stopping
// it with SIGTERM and a deadline. The agent writes its own pid file, so foreground agents count too.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { endpointDir } from '../endpoint/ferry-home';
import { CliError } from './cli-error';
import { PROJECT_ROOT } from './gateway-process';

// Absolute, so the agent starts whatever the working directory (Node resolves --import from it).
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CLI_ENTRY = join(PROJECT_ROOT, 'src', 'cli', 'main.ts');
/** What the agent logs once its WebSocket to the gateway is open (src/endpoint/agent/gateway-link.ts). */
const CONNECTED = /"msg":"connected to gateway"/;

export function pidPath(name: string, home: string): string {
  return join(endpointDir(name, home), 'endpoint.pid');
}

export function logPath(name: string, home: string): string {
  return join(endpointDir(name, home), 'endpoint.log');
}

function readPidFile(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` is a live agent of endpoint `name`. Where /proc exists the command line must be
 * `… endpoint start … NAME …`: after a reboot a stale pid file may name an unrelated process, and a
 * zombie (exited, not yet reaped) has an empty command line.
 */
export function isAgentProcess(pid: number, name: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: gone; EPERM: alive but another user's, so not this user's agent either.
    return false;
  }
  if (!existsSync('/proc/self/cmdline')) return true;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const at = argv.indexOf('endpoint');
  // Options may sit between `start` and the name (`start --config x NAME`).
  return at >= 0 && argv[at + 1] === 'start' && argv.slice(at + 2).includes(name);
}

/** The pid of the endpoint's running agent, or null (no pid file, or a stale one). */
export function runningPid(name: string, home: string): number | null {
  const pid = readPidFile(pidPath(name, home));
  return pid !== null && isAgentProcess(pid, name) ? pid : null;
}

/**
 * Called by the agent process itself: refuses when another live agent holds the pid file, else
 * writes this process's pid. Returns a release that removes the file if it still names us.
 */
export function claimPidFile(name: string, home: string): () => void {
  const path = pidPath(name, home);
  mkdirSync(endpointDir(name, home), { recursive: true, mode: 0o700 });
  const other = runningPid(name, home);
  if (other !== null && other !== process.pid) {
    throw new CliError(`endpoint ${name} is already running (pid ${other}); stop it first: ferry endpoint stop ${name}`);
  }
  writeFileSync(path, `${process.pid}\n`, { mode: 0o644 });
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readPidFile(path) === process.pid) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  };
}

export interface StartDetachedOptions {
  name: string;
  home: string;
  configPath?: string;
  /** How long to wait for the agent to connect to the gateway. */
  timeoutMs: number;
}

export type StartDetachedResult =
  | { outcome: 'connected'; pid: number; log: string }
  | { outcome: 'exited'; pid: number; log: string; code: number | null; signal: string | null; output: string }
  | { outcome: 'timeout'; pid: number; log: string; output: string };

export async function startDetached(options: StartDetachedOptions): Promise<StartDetachedResult> {
  const { name, home } = options;
  const already = runningPid(name, home);
  if (already !== null) throw new CliError(`endpoint ${name} is already running (pid ${already}); stop it first: ferry endpoint stop ${name}`);
  mkdirSync(endpointDir(name, home), { recursive: true, mode: 0o700 });
  const log = logPath(name, home);
  const offset = existsSync(log) ? statSync(log).size : 0;
  const fd = openSync(log, 'a', 0o600);
  const args = ['--no-node-snapshot', '--import', TSX_LOADER, CLI_ENTRY, 'endpoint', 'start', name];
  if (options.configPath) args.push('--config', resolve(options.configPath));
  const level = process.env.FERRY_LOG;
  const child = spawn(process.execPath, args, {
    // Its own session: closing the terminal (SIGHUP) does not reach it.
    detached: true,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      FERRY_HOME: home,
      // The log must keep lifecycle events: this command waits for "connected to gateway" in it.
      FERRY_LOG: level === 'debug' ? 'debug' : 'info',
    },
  });
  closeSync(fd);
  const pid = child.pid!;
  let exit: { code: number | null; signal: string | null } | null = null;
  child.once('exit', (code, signal) => {
    exit = { code, signal };
  });
  child.unref();

  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const output = readFrom(log, offset);
    if (CONNECTED.test(output)) return { outcome: 'connected', pid, log };
    if (exit) {
      const { code, signal } = exit;
      return { outcome: 'exited', pid, log, code, signal, output };
    }
    if (Date.now() > deadline) return { outcome: 'timeout', pid, log, output };
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readFrom(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The lines of an agent's output that explain why it stopped: text lines (the CLI's own
 * `ferry: CODE: …` message) and error-level log records; the last lines when there are none.
 */
export function explainExit(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const telling = lines.flatMap((line) => {
    if (!line.startsWith('{')) return [line];
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string; [k: string]: unknown };
      if (rec.level !== 'error') return [];
      const { t: _t, level: _l, msg, component: _c, endpoint: _e, ...fields } = rec;
      return [`${msg}${Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`];
    } catch {
      return [line];
    }
  });
  return (telling.length ? telling : lines.slice(-20)).join('\n');
}

export interface StopResult {
  wasRunning: boolean;
  pid?: number;
  /** It did not exit within the deadline after SIGTERM and was killed. */
  killed?: boolean;
}

export async function stopAgent(name: string, home: string, timeoutMs: number): Promise<StopResult> {
  const path = pidPath(name, home);
  const pid = runningPid(name, home);
  if (pid === null) {
    // A stale file (the agent was killed, or the machine rebooted) would confuse later commands.
    if (existsSync(path)) unlinkSync(path);
    return { wasRunning: false };
  }
  signal(pid, 'SIGTERM');
  let killed = false;
  if (!(await exitedWithin(pid, name, timeoutMs))) {
    killed = true;
    // A detached agent leads its own process group: take its local managers and workers too.
    signal(-pid, 'SIGKILL');
    signal(pid, 'SIGKILL');
    await exitedWithin(pid, name, 5000);
  }
  if (readPidFile(path) === pid) unlinkSync(path);
  return { wasRunning: true, pid, killed };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or not a process group
  }
}

async function exitedWithin(pid: number, name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAgentProcess(pid, name)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isAgentProcess(pid, name);
}
