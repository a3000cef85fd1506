// The Slurm provider: a block is one batch job (sbatch) whose script starts one manager per node
// with srun. Scheduler commands run through execFile (no shell); their stderr becomes the error.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../protocol/errors';
import type { BlockRequest, BlockState, Provider } from './provider';
import { managerCommand } from './provider';

export interface SlurmProviderOptions {
  partition?: string;
  account?: string;
  qos?: string;
  /** `--time`: `MM`, `HH:MM:SS` or `D-HH:MM:SS`. Omitted: the partition's default. */
  walltime?: string;
  /**
   * Whole nodes per block (`--exclusive`, default true). A block runs one manager per node that
   * forks many workers: without whole nodes (or `cpusPerNode`) Slurm grants one CPU per node.
   */
  exclusive?: boolean;
  /** `--cpus-per-task` of the one task per node, for sites that share nodes (`exclusive: false`). */
  cpusPerNode?: number;
  /** Extra directives, one per line, with or without the leading `#SBATCH`. */
  schedulerOptions?: string | readonly string[];
  /** Shell lines run before the managers start (`module load …`, `source venv/bin/activate`). */
  workerInit?: string | readonly string[];
  /** Command names or paths, for tests and sites that wrap the Slurm commands. */
  commands?: { sbatch?: string; squeue?: string; scancel?: string };
  /** Environment of the scheduler commands (e.g. SLURM_CONF); default process.env, minus secrets. */
  env?: NodeJS.ProcessEnv;
  /** The argv that starts one manager; tests inject a stand-in. Default: the real manager. */
  command?: (connectFile: string) => string[];
  /** Deadline of one scheduler command, ms (default 60 s: a busy slurmctld answers slowly). */
  commandTimeoutMs?: number;
}

export class SlurmProvider implements Provider {
  readonly type = 'slurm';
  private readonly opts: SlurmProviderOptions;
  /** Set once `squeue --json` fails but the text format works (Slurm built without JSON). */
  private squeueJsonBroken = false;

  constructor(options: SlurmProviderOptions = {}) {
    validateSlurmOptions(options);
    this.opts = { ...options };
  }

  /** The sbatch script of a block, exactly as submit() writes it. */
  renderScript(request: BlockRequest): string {
    return renderSbatchScript(request, this.opts);
  }

  async submit(request: BlockRequest): Promise<string> {
    const script = join(request.dir, `ferry-${jobNameSafe(request.blockId)}.sbatch`);
    writeFileSync(script, this.renderScript(request), { mode: 0o700 });
    const result = await runScheduler(this.cmd('sbatch'), ['--parsable', script], this.runOptions(request.dir));
    if (result.code !== 0) throw schedulerError('sbatch', result, SLURM_CONFIG_ERRORS);
    // --parsable prints `jobid` or `jobid;cluster`.
    const jobId = result.stdout.trim().split('\n').pop()?.split(';')[0]?.trim() ?? '';
    if (!/^\d+$/.test(jobId)) {
      throw new FerryError('UNAVAILABLE', `sbatch printed no job id: ${JSON.stringify(result.stdout.slice(0, 200))}`, { command: 'sbatch', stdout: result.stdout, stderr: result.stderr });
    }
    return jobId;
  }

  async cancel(jobId: string): Promise<void> {
    const result = await runScheduler(this.cmd('scancel'), [jobId], this.runOptions());
    if (result.code === 0) return;
    // Cancelling a job that already ended is not a failure: the block is gone either way.
    const states = await this.status([jobId]);
    if (states.get(jobId) === 'done' || states.get(jobId) === 'failed') return;
    throw schedulerError('scancel', result);
  }

  /**
   * Slurm 22.05's `squeue --json` ignores its filters (--me, --jobs, --states) and lists every job
   * slurmctld still holds, finished ones included for MinJobAge (300 s): pick ours out of it, and
   * map finished states too. A job squeue no longer knows has ended: 'done'.
   */
  async status(jobIds: string[]): Promise<Map<string, BlockState>> {
    const out = new Map<string, BlockState>();
    if (jobIds.length === 0) return out;
    const known = await this.queryQueue();
    for (const id of jobIds) {
      const state = known.get(id);
      out.set(id, state === undefined ? 'done' : slurmBlockState(state));
    }
    return out;
  }

  private async queryQueue(): Promise<Map<string, string>> {
    const run = this.runOptions();
    if (!this.squeueJsonBroken) {
      const json = await runScheduler(this.cmd('squeue'), ['--json', '--me'], run);
      if (json.code === 0) return parseSqueueJson(json.stdout);
      const text = await runScheduler(this.cmd('squeue'), SQUEUE_TEXT_ARGS, run);
      if (text.code !== 0) throw schedulerError('squeue', json);
      this.squeueJsonBroken = true;
      return parseSqueueText(text.stdout);
    }
    const text = await runScheduler(this.cmd('squeue'), SQUEUE_TEXT_ARGS, run);
    if (text.code !== 0) throw schedulerError('squeue', text);
    return parseSqueueText(text.stdout);
  }

  private cmd(name: 'sbatch' | 'squeue' | 'scancel'): string {
    return this.opts.commands?.[name] ?? name;
  }

  private runOptions(cwd?: string): RunOptions {
    return { env: schedulerEnv(this.opts.env), timeoutMs: this.opts.commandTimeoutMs ?? 60_000, ...(cwd ? { cwd } : {}) };
  }
}

const SQUEUE_TEXT_ARGS = ['--noheader', '--me', '--states=all', '--format=%i|%T'];

/** sbatch errors that a wrong config causes: retrying will not help. */
const SLURM_CONFIG_ERRORS = /invalid (partition|account|qos)|invalid.*specification|not allowed|node configuration is not available|time limit|unrecognized option|invalid option/i;

export function renderSbatchScript(request: BlockRequest, opts: SlurmProviderOptions): string {
  checkRequest(request);
  // Slurm expands `%` patterns in --output: a literal `%` in the directory is written `%%`.
  const out = (name: string) => join(request.dir.replaceAll('%', '%%'), `slurm-%j.${name}`);
  const directives = [
    `--job-name=ferry-${jobNameSafe(request.blockId)}`,
    `--nodes=${request.nodes}`,
    '--ntasks-per-node=1',
    ...(opts.walltime ? [`--time=${opts.walltime}`] : []),
    ...(opts.partition ? [`--partition=${opts.partition}`] : []),
    ...(opts.account ? [`--account=${opts.account}`] : []),
    ...(opts.qos ? [`--qos=${opts.qos}`] : []),
    ...(opts.exclusive ?? true ? ['--exclusive'] : []),
    ...(opts.cpusPerNode ? [`--cpus-per-task=${opts.cpusPerNode}`] : []),
    `--output=${out('out')}`,
    `--error=${out('err')}`,
  ].map((d) => `#SBATCH ${d}`);
  const extra = lines(opts.schedulerOptions).map((l) => (l.startsWith('#') ? l : `#SBATCH ${l}`));
  const command = (opts.command ?? managerCommand)(request.connectFile);
  return [
    '#!/bin/bash',
    ...directives,
    ...extra,
    `# Ferry block ${request.blockId}: one manager per node. The connect file holds the block's secret;`,
    '# only its path appears here.',
    ...lines(opts.workerInit),
    // srun with one task per node starts a manager on every node of the allocation; without --exact
    // each step gets all the CPUs the job holds on its node.
    `exec srun --ntasks-per-node=1 ${command.map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}

/** Maps a Slurm job state (base name, flags ignored) to a block state. */
export function slurmBlockState(state: string): BlockState {
  switch (state.toUpperCase()) {
    case 'PENDING':
    case 'CONFIGURING':
    case 'REQUEUED':
    case 'REQUEUE_HOLD':
    case 'REQUEUE_FED':
    case 'RESV_DEL_HOLD':
      return 'pending';
    case 'RUNNING':
    case 'COMPLETING':
    case 'SUSPENDED':
    case 'STOPPED':
    case 'SIGNALING':
    case 'STAGE_OUT':
    case 'RESIZING':
      return 'running';
    // A pilot job that reached its wall time, was cancelled or preempted ended normally.
    case 'COMPLETED':
    case 'CANCELLED':
    case 'TIMEOUT':
    case 'PREEMPTED':
    case 'DEADLINE':
      return 'done';
    case 'FAILED':
    case 'NODE_FAIL':
    case 'OUT_OF_MEMORY':
    case 'BOOT_FAIL':
    case 'SPECIAL_EXIT':
      return 'failed';
    default:
      // An unknown state of a job slurmctld still holds: it exists, but do not count it as capacity.
      return 'pending';
  }
}

/**
 * `squeue --json` → job id → state. Tolerates both shapes seen in the wild: 22.05 (OpenAPI
 * v0.0.38: `job_id: 5, job_state: "RUNNING"`) and 23.02+ (`job_state: ["RUNNING", …flags]`,
 * numbers sometimes as `{set, infinite, number}`).
 */
export function parseSqueueJson(text: string): Map<string, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new FerryError('UNAVAILABLE', `squeue --json printed invalid JSON: ${(err as Error).message}`);
  }
  const { jobs, errors } = (doc ?? {}) as { jobs?: unknown; errors?: unknown };
  // With slurmctld unreachable, 22.05 exits 0 with `jobs: []` and the failure in `errors`:
  // reading that as "no jobs" would call every block done.
  if (Array.isArray(errors) && errors.length > 0) {
    throw new FerryError('UNAVAILABLE', `squeue --json reported errors: ${JSON.stringify(errors).slice(0, 500)}`, { errors });
  }
  if (!Array.isArray(jobs)) throw new FerryError('UNAVAILABLE', 'squeue --json printed no job list');
  const out = new Map<string, string>();
  for (const job of jobs as Array<Record<string, unknown>>) {
    const id = numberish(job?.job_id);
    const state = firstString(job?.job_state);
    if (id !== undefined && state !== undefined) out.set(String(id), state);
  }
  return out;
}

/** `squeue --format=%i|%T` lines → job id → state. */
export function parseSqueueText(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [id, state] = line.trim().split('|');
    if (id && state) out.set(id.trim(), state.trim());
  }
  return out;
}

function numberish(v: unknown): number | string | undefined {
  if (typeof v === 'number' || (typeof v === 'string' && v !== '')) return v;
  if (v && typeof v === 'object' && 'number' in v) return numberish((v as { number: unknown }).number);
  return undefined;
}

function firstString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.find((x): x is string => typeof x === 'string');
  if (v && typeof v === 'object' && 'current' in v) return firstString((v as { current: unknown }).current);
  return undefined;
}

// ---- shared by the batch providers (Slurm, PBS) ----

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

const NAME = /^[\w.@+-]+$/;
const WALLTIME = /^(\d+-)?\d+(:\d{1,2}){0,2}$/;

function validateSlurmOptions(o: SlurmProviderOptions): void {
  for (const field of ['partition', 'account', 'qos'] as const) {
    const v = o[field];
    if (v !== undefined && !NAME.test(v)) throw new FerryError('CONFIG_INVALID', `provider.${field}: not a valid Slurm name: ${JSON.stringify(v)}`);
  }
  if (o.walltime !== undefined && !WALLTIME.test(o.walltime)) throw new FerryError('CONFIG_INVALID', `provider.walltime: must be HH:MM:SS or D-HH:MM:SS (got ${JSON.stringify(o.walltime)})`);
  if (o.cpusPerNode !== undefined && (!Number.isInteger(o.cpusPerNode) || o.cpusPerNode < 1)) throw new FerryError('CONFIG_INVALID', 'provider.cpus_per_node: must be an integer ≥ 1');
}

export function validateWalltime(field: string, v: string | undefined): void {
  if (v !== undefined && !/^\d+(:\d{1,2}){0,2}$/.test(v)) throw new FerryError('CONFIG_INVALID', `${field}: must be HH:MM:SS (got ${JSON.stringify(v)})`);
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
