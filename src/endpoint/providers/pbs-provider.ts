// The PBS provider (PBS Pro, OpenPBS, Torque): a block is one batch job (qsub) that starts the
// managers; tracked with `qstat -f`, cancelled with qdel.
//
// Tested against a real scheduler only through Slurm's PBS wrappers (Debian's slurm-wlm-torque),
// which answer Torque-style. Untested, for want of a PBS Pro server: `qstat -F json`, `qstat -x`
// history (PBS Pro drops finished jobs from qstat without it: we read "Job has finished" as done),
// multi-chunk and multi-node `select` with `place=scatter`, and the multi-node `launcher`.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { FerryError } from '../../protocol/errors';
import { parseProviderSection, PbsProviderConfig } from '../config/provider-config';
import type { BlockRequest, BlockState, Provider } from './provider';
import { managerCommand } from './provider';
import { checkRequest, jobNameSafe, lines, runOptionsOf, runScheduler, schedulerError, shellQuote, type RunOptions, type SchedulerHooks } from './scheduler';

/** The `provider:` section as written (defaults not yet applied), without its `type`. */
export type PbsProviderInput = Omit<z.input<typeof PbsProviderConfig>, 'type'>;

export class PbsProvider implements Provider {
  readonly type = 'pbs';
  private readonly config: PbsProviderConfig;

  /** `config`: the endpoint config's provider section (parsed again here: a tool may pass it raw). */
  constructor(config: PbsProviderInput = {}, private readonly hooks: SchedulerHooks<'qsub' | 'qstat' | 'qdel'> = {}) {
    this.config = parseProviderSection(PbsProviderConfig, { ...config, type: 'pbs' });
  }

  renderScript(request: BlockRequest): string {
    return renderPbsScript(request, this.config, this.hooks.command);
  }

  async submit(request: BlockRequest): Promise<string> {
    const script = join(request.dir, `ferry-${jobNameSafe(request.blockId)}.pbs`);
    writeFileSync(script, this.renderScript(request), { mode: 0o700 });
    // -o/-e on the command line too: Slurm's qsub wrapper passes its own defaults to sbatch, which
    // override the script's #PBS -o/-e. Real PBS treats both the same way.
    const { out, err } = logPaths(request.dir);
    const result = await runScheduler(this.cmd('qsub'), ['-o', out, '-e', err, script], this.runOptions(request.dir));
    if (result.code !== 0) throw schedulerError('qsub', result, PBS_CONFIG_ERRORS);
    const jobId = result.stdout.trim().split('\n').pop()?.trim() ?? '';
    if (!/^[\w.[\]-]+$/.test(jobId)) {
      throw new FerryError('UNAVAILABLE', `qsub printed no job id: ${JSON.stringify(result.stdout.slice(0, 200))}`, { command: 'qsub', stdout: result.stdout, stderr: result.stderr });
    }
    return jobId;
  }

  async cancel(jobId: string): Promise<void> {
    const result = await runScheduler(this.cmd('qdel'), [jobId], this.runOptions());
    if (result.code === 0) return;
    // qdel of a job that already ended fails; the block is gone either way.
    const state = (await this.status([jobId])).get(jobId);
    if (state === 'done' || state === 'failed') return;
    throw schedulerError('qdel', result);
  }

  async status(jobIds: string[]): Promise<Map<string, BlockState>> {
    const out = new Map<string, BlockState>();
    if (jobIds.length === 0) return out;
    const result = await runScheduler(this.cmd('qstat'), ['-f', ...jobIds], this.runOptions());
    const jobs = parseQstatFull(result.stdout);
    // qstat exits non-zero when any id is unknown (finished and purged): that is an answer, not a
    // failure. Slurm's wrapper says nothing on stderr then; Torque and PBS Pro say "Unknown Job Id"
    // or "Job has finished".
    if (result.code !== 0 && jobs.size === 0 && result.stderr.trim() !== '' && !/unknown job|job has finished/i.test(result.stderr)) {
      throw schedulerError('qstat', result);
    }
    for (const id of jobIds) {
      const job = jobs.get(id) ?? jobs.get(shortId(id)) ?? findByShortId(jobs, id);
      out.set(id, job ? pbsBlockState(job) : 'done');
    }
    return out;
  }

  private cmd(name: 'qsub' | 'qstat' | 'qdel'): string {
    return this.hooks.commands?.[name] ?? name;
  }

  private runOptions(cwd?: string): RunOptions {
    return runOptionsOf(this.hooks, cwd);
  }
}

// Torque/PBS Pro messages, and the Slurm wrapper's (sbatch's, on stdout).
const PBS_CONFIG_ERRORS = /invalid partition|unknown queue|unknown resource|illegal attribute|invalid (account|queue)|exceeds|not authorized|bad uid/i;

function logPaths(dir: string): { out: string; err: string } {
  return { out: join(dir, 'pbs.out'), err: join(dir, 'pbs.err') };
}

export function renderPbsScript(request: BlockRequest, config: PbsProviderConfig, command: (connectFile: string) => string[] = managerCommand): string {
  checkRequest(request);
  const { out, err } = logPaths(request.dir);
  const style = config.resource_style;
  const nodes = request.nodes;
  let resources: string[];
  if (style === 'nodes') {
    resources = [`-l nodes=${nodes}${config.cpus_per_node ? `:ppn=${config.cpus_per_node}` : ''}`];
  } else {
    const chunk = config.select ?? (config.cpus_per_node ? `ncpus=${config.cpus_per_node}` : '');
    resources = [`-l select=${nodes}${chunk ? `:${chunk}` : ''}`, ...(nodes > 1 ? ['-l place=scatter'] : [])];
  }
  const directives = [
    `-N ferry-${jobNameSafe(request.blockId)}`,
    ...resources,
    ...(config.walltime ? [`-l walltime=${config.walltime}`] : []),
    ...(config.queue ? [`-q ${config.queue}`] : []),
    ...(config.account ? [`-A ${config.account}`] : []),
    `-o ${out}`,
    `-e ${err}`,
  ].map((d) => `#PBS ${d}`);
  const extra = lines(config.scheduler_options).map((l) => (l.startsWith('#') ? l : `#PBS ${l}`));
  const manager = command(request.connectFile).map(shellQuote).join(' ');
  let start: string;
  if (nodes === 1) start = `exec ${manager}`;
  else if (config.launcher) start = `exec ${config.launcher} ${manager}`;
  else throw new FerryError('CONFIG_INVALID', `provider.launcher: required for blocks of more than one node (nodes_per_block is ${nodes}), e.g. "mpiexec -n ${nodes} -ppn 1"`);
  return [
    '#!/bin/bash',
    ...directives,
    ...extra,
    `# Ferry block ${request.blockId}. The connect file holds the block's secret; only its path appears here.`,
    ...lines(config.worker_init),
    start,
    '',
  ].join('\n');
}

/** One job of `qstat -f`: its id and attributes (`job_state`, `exit_status`, …). */
export interface QstatJob {
  id: string;
  attributes: Map<string, string>;
}

/**
 * Parses `qstat -f` (Torque, PBS Pro, and Slurm's wrapper, which writes `Job Id:\t5`). Attributes
 * are `name = value`; long values wrap onto lines indented by a tab (Torque, PBS Pro), joined here.
 */
export function parseQstatFull(text: string): Map<string, QstatJob> {
  const jobs = new Map<string, QstatJob>();
  let job: QstatJob | undefined;
  let lastKey: string | undefined;
  for (const raw of text.split('\n')) {
    const head = /^Job Id:\s*(\S+)/i.exec(raw);
    if (head) {
      job = { id: head[1]!, attributes: new Map() };
      jobs.set(job.id, job);
      lastKey = undefined;
      continue;
    }
    if (!job || raw.trim() === '') continue;
    // ` = ` with spaces marks an attribute; a wrapped value's next line (`\tPBS_O_HOME=/root,…`) has none.
    const attr = /^\s+([\w.]+) = (.*)$/.exec(raw);
    if (attr) {
      lastKey = attr[1]!.toLowerCase();
      job.attributes.set(lastKey, attr[2]!.trim());
    } else if (lastKey && /^\t/.test(raw)) {
      job.attributes.set(lastKey, job.attributes.get(lastKey)! + raw.trim());
    }
  }
  return jobs;
}

/**
 * Parses the default `qstat` table (`Job id  Name  User  Time Use  S  Queue`) → id → state letter.
 * Not used by status() (which needs exit_status from -f), kept for diagnostics and tests.
 */
export function parseQstatTable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (/^(Job id|-{3,})/i.test(line) || line.trim() === '') continue;
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 6) out.set(cols[0]!, cols[cols.length - 2]!);
  }
  return out;
}

/** Maps a job's `job_state` (and `exit_status` once finished) to a block state. */
export function pbsBlockState(job: QstatJob): BlockState {
  const state = (job.attributes.get('job_state') ?? '').toUpperCase();
  switch (state) {
    case 'Q': // queued
    case 'H': // held
    case 'W': // waiting for its start time
    case 'T': // in transit
    case 'M': // moved to another server
      return 'pending';
    case 'R': // running
    case 'E': // exiting
    case 'B': // array begun
    case 'S': // suspended (Torque), still holds its nodes
    case 'U': // user-suspended (PBS Pro)
      return 'running';
    case 'C': // completed (Torque, Slurm's wrapper)
    case 'F': // finished (PBS Pro, with -x)
    case 'X': {
      // exit_status: the script's exit code; > 256 a signal (qdel, walltime): a normal end for a
      // pilot job. Negative: the scheduler could not start it. Slurm's wrapper gives none.
      const exit = Number(job.attributes.get('exit_status') ?? '0');
      return Number.isFinite(exit) && (exit < 0 || (exit > 0 && exit < 256)) ? 'failed' : 'done';
    }
    default:
      return 'pending';
  }
}

function shortId(id: string): string {
  return id.split('.')[0]!;
}

function findByShortId(jobs: Map<string, QstatJob>, id: string): QstatJob | undefined {
  const want = shortId(id);
  for (const [key, job] of jobs) if (shortId(key) === want) return job;
  return undefined;
}
