// The PBS provider (PBS Pro, OpenPBS, Torque): a block is one batch job (qsub) that starts the
// managers; tracked with `qstat -f`, cancelled with qdel.
//
// Tested against a real scheduler only through Slurm's PBS wrappers (Debian's slurm-wlm-torque),
// which answer Torque-style. Untested, for want of a PBS Pro server: `qstat -F json`, `qstat -x`
// history (PBS Pro drops finished jobs from qstat without it: we read "Job has finished" as done),
// multi-chunk and multi-node `select` with `place=scatter`, and the multi-node `launcher`.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../../protocol/errors';
import type { BlockRequest, BlockState, Provider } from './provider';
import { managerCommand } from './provider';
import { checkRequest, jobNameSafe, lines, runScheduler, schedulerEnv, schedulerError, shellQuote, validateWalltime, type RunOptions } from './slurm-provider';

export interface PbsProviderOptions {
  queue?: string;
  account?: string;
  /** `-l walltime=HH:MM:SS`. Omitted: the queue's default. */
  walltime?: string;
  /**
   * How nodes are requested: 'select' (PBS Pro, OpenPBS; default) writes
   * `-l select=<nodes>:<select>`, 'nodes' (Torque) writes `-l nodes=<nodes>:ppn=<cpusPerNode>`.
   */
  resourceStyle?: 'select' | 'nodes';
  /** The chunk's resources after `select=<nodes>:`, e.g. `ncpus=64:mem=200gb`. */
  select?: string;
  /** CPUs per node: `ncpus=` of the chunk (select style, when `select` is not given) or `ppn=`. */
  cpusPerNode?: number;
  /**
   * Shell words that start one manager per node of a multi-node block (e.g. `mpiexec -n 4 -ppn 1`,
   * or Torque's `pbsdsh -u`); required when a block has more than one node.
   */
  launcher?: string;
  /** Extra directives, one per line, with or without the leading `#PBS`. */
  schedulerOptions?: string | readonly string[];
  /** Shell lines run before the managers start (`module load …`). */
  workerInit?: string | readonly string[];
  commands?: { qsub?: string; qstat?: string; qdel?: string };
  /** Environment of the scheduler commands; default process.env, minus secrets. */
  env?: NodeJS.ProcessEnv;
  command?: (connectFile: string) => string[];
  commandTimeoutMs?: number;
}

export class PbsProvider implements Provider {
  readonly type = 'pbs';
  private readonly opts: PbsProviderOptions;

  constructor(options: PbsProviderOptions = {}) {
    validatePbsOptions(options);
    this.opts = { ...options };
  }

  renderScript(request: BlockRequest): string {
    return renderPbsScript(request, this.opts);
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
    return this.opts.commands?.[name] ?? name;
  }

  private runOptions(cwd?: string): RunOptions {
    return { env: schedulerEnv(this.opts.env), timeoutMs: this.opts.commandTimeoutMs ?? 60_000, ...(cwd ? { cwd } : {}) };
  }
}

// Torque/PBS Pro messages, and the Slurm wrapper's (sbatch's, on stdout).
const PBS_CONFIG_ERRORS = /invalid partition|unknown queue|unknown resource|illegal attribute|invalid (account|queue)|exceeds|not authorized|bad uid/i;

function logPaths(dir: string): { out: string; err: string } {
  return { out: join(dir, 'pbs.out'), err: join(dir, 'pbs.err') };
}

export function renderPbsScript(request: BlockRequest, opts: PbsProviderOptions): string {
  checkRequest(request);
  const { out, err } = logPaths(request.dir);
  const style = opts.resourceStyle ?? 'select';
  const nodes = request.nodes;
  let resources: string[];
  if (style === 'nodes') {
    resources = [`-l nodes=${nodes}${opts.cpusPerNode ? `:ppn=${opts.cpusPerNode}` : ''}`];
  } else {
    const chunk = opts.select ?? (opts.cpusPerNode ? `ncpus=${opts.cpusPerNode}` : '');
    resources = [`-l select=${nodes}${chunk ? `:${chunk}` : ''}`, ...(nodes > 1 ? ['-l place=scatter'] : [])];
  }
  const directives = [
    `-N ferry-${jobNameSafe(request.blockId)}`,
    ...resources,
    ...(opts.walltime ? [`-l walltime=${opts.walltime}`] : []),
    ...(opts.queue ? [`-q ${opts.queue}`] : []),
    ...(opts.account ? [`-A ${opts.account}`] : []),
    `-o ${out}`,
    `-e ${err}`,
  ].map((d) => `#PBS ${d}`);
  const extra = lines(opts.schedulerOptions).map((l) => (l.startsWith('#') ? l : `#PBS ${l}`));
  const command = (opts.command ?? managerCommand)(request.connectFile).map(shellQuote).join(' ');
  let start: string;
  if (nodes === 1) start = `exec ${command}`;
  else if (opts.launcher) start = `exec ${opts.launcher} ${command}`;
  else throw new FerryError('CONFIG_INVALID', `provider.launcher: required for blocks of more than one node (nodes_per_block is ${nodes}), e.g. "mpiexec -n ${nodes} -ppn 1"`);
  return [
    '#!/bin/bash',
    ...directives,
    ...extra,
    `# Ferry block ${request.blockId}. The connect file holds the block's secret; only its path appears here.`,
    ...lines(opts.workerInit),
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

const PBS_NAME = /^[\w.@+-]+$/;

function validatePbsOptions(o: PbsProviderOptions): void {
  for (const field of ['queue', 'account'] as const) {
    const v = o[field];
    if (v !== undefined && !PBS_NAME.test(v)) throw new FerryError('CONFIG_INVALID', `provider.${field}: not a valid PBS name: ${JSON.stringify(v)}`);
  }
  validateWalltime('provider.walltime', o.walltime);
  if (o.select !== undefined && !/^[\w.:=+-]+$/.test(o.select)) throw new FerryError('CONFIG_INVALID', `provider.select: must be chunk resources like "ncpus=64:mem=200gb" (got ${JSON.stringify(o.select)})`);
  if (o.cpusPerNode !== undefined && (!Number.isInteger(o.cpusPerNode) || o.cpusPerNode < 1)) throw new FerryError('CONFIG_INVALID', 'provider.cpus_per_node: must be an integer ≥ 1');
  if (o.resourceStyle !== undefined && o.resourceStyle !== 'select' && o.resourceStyle !== 'nodes') throw new FerryError('CONFIG_INVALID', 'provider.resource_style: must be "select" or "nodes"');
}
