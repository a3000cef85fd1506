import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureSlurm, type SlurmCluster } from '../../../test/helpers/slurm';
import type { BlockState } from './provider';
import { parseProviderSection, PbsProviderConfig } from '../config/provider-config';
import { parseQstatFull, parseQstatTable, pbsBlockState, PbsProvider, renderPbsScript, type PbsProviderInput, type QstatJob } from './pbs-provider';

/** A provider section as the endpoint's config gives it (defaults applied). */
const pbs = (section: PbsProviderInput = {}) => parseProviderSection(PbsProviderConfig, { ...section, type: 'pbs' });

const request = { blockId: 'block-3-beef', nodes: 1, connectFile: '/home/u/.ferry/blocks/block-3-beef/connect.json', dir: '/home/u/.ferry/blocks/block-3-beef' };
const fakeManager = (cf: string) => ['/opt/ferry/manager', '--name', 'has space', cf];

describe('PBS script', () => {
  it('carries exactly the expected directives (PBS Pro select), then worker_init, then the manager', () => {
    const script = renderPbsScript(request, pbs({
      queue: 'debug', account: 'PRJ01', walltime: '00:30:00', select: 'ncpus=64:mem=200gb',
      scheduler_options: '-l filesystems=home:eagle\n#PBS -j oe', worker_init: ['module load nodejs', `export X="a b's"`],
    }), fakeManager);
    expect(script.split('\n')).toEqual([
      '#!/bin/bash',
      '#PBS -N ferry-block-3-beef',
      '#PBS -l select=1:ncpus=64:mem=200gb',
      '#PBS -l walltime=00:30:00',
      '#PBS -q debug',
      '#PBS -A PRJ01',
      '#PBS -o /home/u/.ferry/blocks/block-3-beef/pbs.out',
      '#PBS -e /home/u/.ferry/blocks/block-3-beef/pbs.err',
      '#PBS -l filesystems=home:eagle',
      '#PBS -j oe',
      expect.stringMatching(/^# Ferry block block-3-beef/),
      'module load nodejs',
      `export X="a b's"`,
      `exec /opt/ferry/manager --name 'has space' /home/u/.ferry/blocks/block-3-beef/connect.json`,
      '',
    ]);
  });

  it('writes Torque nodes=…:ppn=… when asked', () => {
    const script = renderPbsScript({ ...request, nodes: 1 }, pbs({ resource_style: 'nodes', cpus_per_node: 8 }), fakeManager);
    expect(script.split('\n').filter((l) => l.startsWith('#PBS -l'))).toEqual(['#PBS -l nodes=1:ppn=8']);
  });

  it('spreads multi-node blocks with place=scatter and the configured launcher, and insists on one', () => {
    const script = renderPbsScript({ ...request, nodes: 4 }, pbs({ cpus_per_node: 32, launcher: 'mpiexec -n 4 -ppn 1' }), fakeManager);
    expect(script).toContain('#PBS -l select=4:ncpus=32\n#PBS -l place=scatter\n');
    expect(script).toContain(`\nexec mpiexec -n 4 -ppn 1 /opt/ferry/manager --name 'has space' /home/u/.ferry/blocks/block-3-beef/connect.json\n`);
    expect(() => renderPbsScript({ ...request, nodes: 4 }, pbs(), fakeManager)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.launcher') }));
  });

  it('rejects options that would break the script, naming the field', () => {
    expect(() => new PbsProvider({ queue: 'debug -A x' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.queue') }));
    expect(() => new PbsProvider({ walltime: '2-00:00:00' })).toThrow(expect.objectContaining({ message: expect.stringContaining('provider.walltime') }));
    expect(() => new PbsProvider({ select: 'ncpus=4\n#PBS -q other' })).toThrow(expect.objectContaining({ message: expect.stringContaining('provider.select') }));
  });

  it('takes the walltimes PBS takes and refuses Slurm\'s day prefix, as the endpoint config does (one rule, the schema\'s)', () => {
    for (const ok of ['3600', '30:00', '48:00:00']) expect(() => new PbsProvider({ walltime: ok }), ok).not.toThrow();
    for (const bad of ['2-00:00:00', '1 hour', '']) {
      expect(() => new PbsProvider({ walltime: bad }), bad).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.walltime') }));
    }
  });
});

// Captured from Slurm 22.05's qstat wrapper (slurm-wlm-torque): tab-indented, no exit_status.
const QSTAT_F_SLURM_WRAPPER = `Job Id:\t5
\tJob_Name = ferry-probe
\tJob_Owner = root@localhost
\tjob_state = R
\tqueue = debug
\tqtime = Sun Nov 22 04:55:29 2026
\texec_host = localhost/1
\tResource_List.walltime = 00:05:00
\tResource_List.nodect = 1
\tResource_List.ncpus = 1

Job Id:\t4
\tJob_Name = wrap
\tjob_state = C
\tqueue = debug

Job Id:\t2
\tJob_Name = wrap
\tjob_state = Q
\tqueue = debug
`;
// Torque / PBS Pro layout (from their manuals, not captured here): four-space indents, server
// suffix on ids, long values wrapped onto tab-indented lines, exit_status once finished.
const QSTAT_F_TORQUE = `Job Id: 1234.pbs01.cluster.org
    Job_Name = ferry-block-1
    job_state = C
    exit_status = 3
    Variable_List = PBS_O_QUEUE=batch,PBS_O_HOME=/home/u,PBS_O_LANG=C.UTF-8,
\tPBS_O_LOGNAME=u,PBS_O_PATH=/usr/bin:/bin
    queue = batch

Job Id: 1235.pbs01.cluster.org
    job_state = C
    exit_status = 271

Job Id: 1236.pbs01.cluster.org
    job_state = E
`;
const QSTAT_TABLE = `Job id              Name             Username        Time Use S Queue          
------------------- ---------------- --------------- -------- - ---------------
1                   wrap             root            00:00:00 C debug          
2                   wrap             root            00:00:00 Q debug          
5                   ferry-probe      root            00:00:00 R debug          
`;

describe('qstat parsing', () => {
  it('reads the Slurm wrapper\'s qstat -f', () => {
    const jobs = parseQstatFull(QSTAT_F_SLURM_WRAPPER);
    expect([...jobs.keys()]).toEqual(['5', '4', '2']);
    expect(jobs.get('5')!.attributes.get('job_name')).toBe('ferry-probe');
    expect([...jobs.values()].map(pbsBlockState)).toEqual(['running', 'done', 'pending']);
  });

  it('reads Torque-style qstat -f: wrapped values, exit_status', () => {
    const jobs = parseQstatFull(QSTAT_F_TORQUE);
    const first = jobs.get('1234.pbs01.cluster.org')!;
    expect(first.attributes.get('variable_list')).toBe('PBS_O_QUEUE=batch,PBS_O_HOME=/home/u,PBS_O_LANG=C.UTF-8,PBS_O_LOGNAME=u,PBS_O_PATH=/usr/bin:/bin');
    expect(first.attributes.get('queue')).toBe('batch');
    expect([...jobs.values()].map(pbsBlockState)).toEqual(['failed', 'done', 'running']);
  });

  it('reads the qstat table', () => {
    expect([...parseQstatTable(QSTAT_TABLE)]).toEqual([['1', 'C'], ['2', 'Q'], ['5', 'R']]);
  });

  it('maps job_state letters to block states', () => {
    const job = (s: string, exit?: string): QstatJob => ({ id: '1', attributes: new Map([['job_state', s], ...(exit ? [['exit_status', exit] as [string, string]] : [])]) });
    const table: Array<[QstatJob, BlockState]> = [
      [job('Q'), 'pending'], [job('H'), 'pending'], [job('W'), 'pending'], [job('T'), 'pending'],
      [job('R'), 'running'], [job('E'), 'running'], [job('S'), 'running'],
      [job('C'), 'done'], [job('F', '0'), 'done'], [job('C', '271'), 'done'], [job('F', '1'), 'failed'], [job('C', '-1'), 'failed'],
    ];
    for (const [j, state] of table) expect([j.attributes.get('job_state'), j.attributes.get('exit_status'), pbsBlockState(j)]).toEqual([j.attributes.get('job_state'), j.attributes.get('exit_status'), state]);
  });
});

describe('scheduler command failures', () => {
  it('reports a qstat that cannot reach its server instead of calling blocks done', async () => {
    // What Slurm's wrapper does with slurmctld down (seen here): exit 8, only stderr.
    const bin = mkdtempSync(join(tmpdir(), 'ferry-fake-qstat-'));
    try {
      writeFileSync(join(bin, 'qstat'), '#!/bin/sh\necho "Problem loading jobs." >&2\nexit 8\n', { mode: 0o755 });
      const p = new PbsProvider({}, { commands: { qstat: join(bin, 'qstat') } });
      await expect(p.status(['1'])).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'qstat failed (exit 8): Problem loading jobs.' });
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('PbsProvider on a real scheduler (Slurm\'s PBS wrappers)', () => {
  let cluster: SlurmCluster;
  let dir: string;
  let provider: PbsProvider;
  const submitted: string[] = [];

  beforeAll(async () => {
    cluster = await ensureSlurm();
    dir = mkdtempSync(join(tmpdir(), 'ferry-pbs-block-'));
    provider = new PbsProvider(
      { walltime: '00:05:00', worker_init: `export FERRY_TEST_GREETING="it's \\"quoted\\" & spaced"` },
      {
        env: cluster.env,
        command: (connectFile) => ['/bin/sh', '-c', 'printf "%s\\n" "$1" "${PBS_JOBID:-$SLURM_JOB_ID}" "$FERRY_TEST_GREETING" > "$0/ran it.txt"; exec sleep 300', dir, connectFile],
      },
    );
  });

  afterAll(async () => {
    if (provider) for (const id of submitted) await provider.cancel(id).catch(() => {});
    if (cluster) {
      for (const id of submitted) await vi.waitFor(() => expect(squeueLists(id), `job ${id} to leave squeue`).toBe(false), { timeout: 20_000, interval: 100 }).catch(() => {});
      await cluster.stop();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function squeueLists(id: string): boolean {
    return execFileSync('squeue', ['-h', '-j', id, '-o', '%i'], { env: cluster.env, encoding: 'utf8' }).trim() === id;
  }

  it('runs a block through qsub, tracks it with qstat to running, and qdel makes it done', async () => {
    const connectFile = join(dir, 'connect.json');
    const secret = 'S3CRET-pbs-never-on-a-command-line';
    writeFileSync(connectFile, JSON.stringify({ secret }), { mode: 0o600 });
    const t0 = Date.now();
    const jobId = await provider.submit({ blockId: 'block-1-pbs', nodes: 1, connectFile, dir });
    submitted.push(jobId);
    expect(jobId).toMatch(/^\d+$/);
    expect(['pending', 'running']).toContain((await provider.status([jobId])).get(jobId));

    await vi.waitFor(async () => expect((await provider.status([jobId])).get(jobId), 'the block to run').toBe('running'), { timeout: 30_000, interval: 100 });
    const ran = join(dir, 'ran it.txt');
    await vi.waitFor(() => expect(existsSync(ran) && readFileSync(ran, 'utf8').split('\n').length >= 4, 'the manager stand-in to write its file').toBe(true), { timeout: 30_000, interval: 100 });
    console.info(`pbs job ${jobId}: command ran after ${Date.now() - t0} ms`);
    expect(readFileSync(ran, 'utf8')).toBe(`${connectFile}\n${jobId}\nit's "quoted" & spaced\n`);
    expect(readFileSync(join(dir, 'ferry-block-1-pbs.pbs'), 'utf8')).not.toContain(secret);

    // The wrapper hands #PBS -N and -l walltime to sbatch, and the logs land in the block's dir.
    const shown = execFileSync('scontrol', ['show', 'job', jobId], { env: cluster.env, encoding: 'utf8' });
    expect(shown).toContain('JobName=ferry-block-1-pbs');
    expect(shown).toContain('TimeLimit=00:05:00');
    expect(shown).toContain(`StdOut=${join(dir, 'pbs.out')}`);

    await provider.cancel(jobId);
    await vi.waitFor(async () => expect((await provider.status([jobId])).get(jobId), 'the deleted block to be done').toBe('done'), { timeout: 30_000, interval: 100 });
    await vi.waitFor(() => expect(squeueLists(jobId), 'squeue to drop the job').toBe(false), { timeout: 30_000, interval: 100 });
    await expect(provider.cancel(jobId)).resolves.toBeUndefined(); // qdel of a finished job fails; cancel does not
  });

  it('calls a job qstat does not know done, alone or beside known ones', async () => {
    expect((await provider.status(['999999'])).get('999999')).toBe('done');
    const live = await provider.submit({ blockId: 'block-2-pbs', nodes: 1, connectFile: join(dir, 'connect.json'), dir });
    submitted.push(live);
    const states = await provider.status([live, '999999']);
    expect(['pending', 'running']).toContain(states.get(live));
    expect(states.get('999999')).toBe('done');
  });

  it('surfaces qsub errors with the scheduler\'s message', async () => {
    const p = new PbsProvider({ queue: 'nosuchqueue' }, { env: cluster.env, command: fakeManager });
    await expect(p.submit({ blockId: 'block-bad', nodes: 1, connectFile: join(dir, 'connect.json'), dir })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/qsub failed \(exit 1\): .*invalid partition/is),
    });
  });
});
