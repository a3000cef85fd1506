// What the batch providers (Slurm, PBS) share: running a scheduler command without a shell, its
// errors, the environment a job inherits, and the quoting and checks of what a job script holds.

import { execFile } from 'node:child_process';
import { FerryError } from '../../protocol/errors';
import type { BlockRequest } from './provider';

/** What a test or a site's wrapper changes of how scheduler commands run; not part of the config. */
export interface SchedulerHooks<Command extends string> {
  /** Command names or paths, for tests and sites that wrap the scheduler's commands. */
  commands?: Partial<Record<Command, string>>;
  /** Environment of the scheduler commands (e.g. SLURM_CONF); default process.env, minus secrets. */
  env?: NodeJS.ProcessEnv;
  /** The argv that starts one manager; tests inject a stand-in. Default: the real manager. */
  command?: (connectFile: string) => string[];
  /** Deadline of one scheduler command, ms (default 60 s: a busy scheduler answers slowly). */
  commandTimeoutMs?: number;
}

/** How a provider with these hooks runs its scheduler's commands (in `cwd`, when given). */
export function runOptionsOf(hooks: SchedulerHooks<string>, cwd?: string): RunOptions {
  return { env: schedulerEnv(hooks.env), timeoutMs: hooks.commandTimeoutMs ?? 60_000, ...(cwd ? { cwd } : {}) };
}

/** Quotes one argument for a POSIX shell: single quotes, with `'` written as `'\''`. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Splits a multi-line option into lines (dropping blank ones), whether given as text or lines. */
export function lines(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  const all = typeof value === 'string' ? [value] : [...value];
  return all.flatMap((v) => v.split(/\r?\n/)).filter((l) => l.trim() !== '');
}

/** A job name schedulers accept: letters, digits, `_`, `-`, `.`. */
export function jobNameSafe(blockId: string): string {
  return blockId.replace(/[^\w.-]/g, '_');
}

/** Directive values must be one word: a path with spaces or quotes would be split or mangled. */
export function checkRequest(request: BlockRequest): void {
  for (const [field, value] of [['dir', request.dir], ['connectFile', request.connectFile]] as const) {
    if (/[\s"'\\]/.test(value)) throw new FerryError('CONFIG_INVALID', `block ${field} must not contain spaces, quotes or backslashes: ${JSON.stringify(value)}`);
  }
  if (!Number.isInteger(request.nodes) || request.nodes < 1) throw new FerryError('CONFIG_INVALID', `block nodes must be an integer ≥ 1 (got ${request.nodes})`);
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  cwd?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a scheduler command without a shell. A missing command or a timeout resolves with code 127/124. */
export function runScheduler(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: opts.env, cwd: opts.cwd, timeout: opts.timeoutMs, maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
      if (e.code === 'ENOENT') return resolve({ code: 127, stdout, stderr: `${cmd}: command not found` });
      if (e.killed) return resolve({ code: 124, stdout, stderr: `${stderr}${cmd}: timed out after ${opts.timeoutMs} ms` });
      resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr });
    });
  });
}

/** One error for a scheduler command that failed; config mistakes are the user's, the rest retryable. */
export function schedulerError(command: string, result: RunResult, configErrors?: RegExp): FerryError {
  const detail = (result.stderr.trim() || result.stdout.trim() || '(no output)').slice(0, 2000);
  const code = configErrors?.test(detail) ? 'CONFIG_INVALID' : 'UNAVAILABLE';
  return new FerryError(code, `${command} failed (exit ${result.code}): ${detail}`, { command, exitCode: result.code, stderr: result.stderr, stdout: result.stdout });
}

const SECRET_NAME = /TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE_?KEY/i;

/**
 * sbatch and qsub copy the submitter's environment into the job, where the scheduler shows it:
 * leave out variables that look like secrets (the block's own secret is only in its connect file).
 */
export function schedulerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !SECRET_NAME.test(k)));
}
