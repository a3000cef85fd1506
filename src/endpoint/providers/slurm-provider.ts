// The Slurm provider: a block is one batch job (sbatch) whose script starts one manager per node
// with srun. Scheduler commands run through execFile (no shell); their stderr becomes the error.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { FerryError } from '../../protocol/errors';
import { parseProviderSection, SlurmProviderConfig } from '../config/provider-config';
import type { BlockRequest, BlockState, Provider } from './provider';
import { managerCommand } from './provider';
import { checkRequest, jobNameSafe, lines, runOptionsOf, runScheduler, schedulerError, shellQuote, type RunOptions, type SchedulerHooks } from './scheduler';

/** The `provider:` section as written (defaults not yet applied), without its `type`. */
export type SlurmProviderInput = Omit<z.input<typeof SlurmProviderConfig>, 'type'>;

export class SlurmProvider implements Provider {
  readonly type = 'slurm';
  private readonly config: SlurmProviderConfig;
  /** Set once `squeue --json` fails but the text format works (Slurm built without JSON). */
  private squeueJsonBroken = false;

  /** `config`: the endpoint config's provider section (parsed again here: a tool may pass it raw). */
  constructor(config: SlurmProviderInput = {}, private readonly hooks: SchedulerHooks<'sbatch' | 'squeue' | 'scancel'> = {}) {
    this.config = parseProviderSection(SlurmProviderConfig, { ...config, type: 'slurm' });
  }

  /** The sbatch script of a block, exactly as submit() writes it. */
  renderScript(request: BlockRequest): string {
    return renderSbatchScript(request, this.config, this.hooks.command);
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
    return this.hooks.commands?.[name] ?? name;
  }

  private runOptions(cwd?: string): RunOptions {
    return runOptionsOf(this.hooks, cwd);
  }
}

const SQUEUE_TEXT_ARGS = ['--noheader', '--me', '--states=all', '--format=%i|%T'];

/** sbatch errors that a wrong config causes: retrying will not help. */
const SLURM_CONFIG_ERRORS = /invalid (partition|account|qos)|invalid.*specification|not allowed|node configuration is not available|time limit|unrecognized option|invalid option/i;

export function renderSbatchScript(request: BlockRequest, config: SlurmProviderConfig, command: (connectFile: string) => string[] = managerCommand): string {
  checkRequest(request);
  // Slurm expands `%` patterns in --output: a literal `%` in the directory is written `%%`.
  const out = (name: string) => join(request.dir.replaceAll('%', '%%'), `slurm-%j.${name}`);
  const directives = [
    `--job-name=ferry-${jobNameSafe(request.blockId)}`,
    `--nodes=${request.nodes}`,
    '--ntasks-per-node=1',
    ...(config.walltime ? [`--time=${config.walltime}`] : []),
    ...(config.partition ? [`--partition=${config.partition}`] : []),
    ...(config.account ? [`--account=${config.account}`] : []),
    ...(config.qos ? [`--qos=${config.qos}`] : []),
    ...(config.exclusive ? ['--exclusive'] : []),
    ...(config.cpus_per_node ? [`--cpus-per-task=${config.cpus_per_node}`] : []),
    `--output=${out('out')}`,
    `--error=${out('err')}`,
  ].map((d) => `#SBATCH ${d}`);
  const extra = lines(config.scheduler_options).map((l) => (l.startsWith('#') ? l : `#SBATCH ${l}`));
  const argv = command(request.connectFile);
  return [
    '#!/bin/bash',
    ...directives,
    ...extra,
    `# Ferry block ${request.blockId}: one manager per node. The connect file holds the block's secret;`,
    '# only its path appears here.',
    ...lines(config.worker_init),
    // srun with one task per node starts a manager on every node of the allocation; without --exact
    // each step gets all the CPUs the job holds on its node.
    `exec srun --ntasks-per-node=1 ${argv.map(shellQuote).join(' ')}`,
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

