// A real single-node Slurm for tests (STACK.md, "Real services"): munged, slurmctld and
// `slurmd -N localhost` as root, configured by a slurm.conf in a temp dir that SLURM_CONF names.
// Reuses a cluster that `sinfo` already reaches. Slurm's PBS wrappers (qsub/qstat/qdel) use it too.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { missingServiceError } from './missing-service';

export interface SlurmCluster {
  /** Environment for Slurm commands and providers: `{ ...process.env, SLURM_CONF }`. */
  env: NodeJS.ProcessEnv;
  /** The temp dir holding slurm.conf, state and logs (undefined when reusing a running cluster). */
  dir?: string;
  /** Stops the daemons this helper started (none when it reused a cluster). */
  stop(): Promise<void>;
}

const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sinfo', 'sbatch', 'squeue', 'scancel', 'srun', 'qsub', 'qstat', 'qdel'];
const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin'];

/** The Slurm programs (.ci/slurm-packages.txt) not on this machine. */
export function missingSlurmBinaries(): string[] {
  return BINARIES.filter((b) => !SEARCH.some((d) => d && existsSync(join(d, b))));
}

/** A running cluster; throws, naming the packages, when Slurm is not installed (tests fail, never skip). */
export async function ensureSlurm(): Promise<SlurmCluster> {
  const missing = missingSlurmBinaries();
  if (missing.length) throw missingServiceError(`Slurm (${missing.join(', ')})`, 'slurm-packages.txt');
  if ((await run('sinfo', ['-h', '-o', '%T'], process.env)).code === 0) {
    return { env: { ...process.env }, async stop() {} };
  }
  if (process.getuid?.() !== 0) throw new Error('starting Slurm daemons needs root');

  const dir = mkdtempSync(join(tmpdir(), 'ferry-slurm-'));
  for (const sub of ['state', 'spool', 'log']) mkdirSync(join(dir, sub));
  const conf = join(dir, 'slurm.conf');
  writeFileSync(conf, slurmConf(dir));
  const env = { ...process.env, SLURM_CONF: conf };
  const started: string[] = []; // pid files of daemons we started, stopped in reverse order

  const stop = async () => {
    for (const pidFile of started.reverse()) await stopDaemon(pidFile);
    started.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if ((await run('munge', ['-n'], env)).code !== 0) {
      mkdirSync('/run/munge', { recursive: true });
      await checked('chown', ['munge:munge', '/run/munge'], env);
      await daemon('runuser', ['-u', 'munge', '--', 'munged'], env);
      started.push('/run/munge/munged.pid');
      await waitFor(async () => (await run('munge', ['-n'], env)).code === 0, 10_000, 'munged to answer');
    }
    await daemon('slurmctld', [], env);
    started.push(join(dir, 'slurmctld.pid'));
    await daemon('slurmd', ['-N', 'localhost'], env);
    started.push(join(dir, 'slurmd.pid'));
    await waitFor(async () => {
      const r = await run('sinfo', ['-h', '-n', 'localhost', '-o', '%T'], env);
      return r.code === 0 && r.stdout.trim() === 'idle';
    }, 30_000, 'sinfo to show node localhost idle', dir);
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, dir, stop };
}

function slurmConf(dir: string): string {
  return `ClusterName=ferrytest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`;
}

interface Result { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 15_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function checked(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const r = await run(cmd, args, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

/** Starts a self-daemonizing program and waits for its foreground process to exit. */
function daemon(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr}`))));
  });
}

async function stopDaemon(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  try {
    await waitFor(async () => !alive(pid), 15_000, `pid ${pid} (${pidFile}) to exit`);
  } catch {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

/** Whether a process still runs; a zombie (exited, not yet reaped by init) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Polls `check` every 100 ms until it holds; throws at the deadline (with Slurm's logs if given).
 * ensureSlurm's own: the benchmarks start clusters too, outside Vitest, where vi.waitFor cannot run.
 */
async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, logDir?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      let logs = '';
      if (logDir) {
        for (const f of ['slurmctld.log', 'slurmd.log']) {
          try {
            logs += `\n--- ${f}\n${readFileSync(join(logDir, 'log', f), 'utf8').split('\n').slice(-20).join('\n')}`;
          } catch { /* not written */ }
        }
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${logs}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
