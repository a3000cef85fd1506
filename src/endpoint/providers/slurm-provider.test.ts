import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ensureSlurm, type SlurmCluster } from '../../../test/helpers/slurm';
import type { BlockState } from './provider';
import { parseProviderSection, SlurmProviderConfig } from '../config/provider-config';
import { shellQuote } from './scheduler';
import { parseSqueueJson, parseSqueueText, renderSbatchScript, slurmBlockState, SlurmProvider, type SlurmProviderInput } from './slurm-provider';

/** A provider section as the endpoint's config gives it (defaults applied). */
const slurm = (section: SlurmProviderInput = {}) => parseProviderSection(SlurmProviderConfig, { ...section, type: 'slurm' });

const request = { blockId: 'block-7-abcd', nodes: 2, connectFile: '/var/ferry/blocks/block-7-abcd/connect.json', dir: '/var/ferry/blocks/block-7-abcd' };
const fakeManager = (cf: string) => ['/opt/ferry/manager', cf];

describe('sbatch script', () => {
  it('carries exactly the expected directives, then worker_init, then srun', () => {
    const script = renderSbatchScript(request, slurm({
      partition: 'debug', account: 'proj-42', qos: 'normal', walltime: '01:30:00',
      scheduler_options: ['--constraint=cpu', '#SBATCH --mem=0'], worker_init: 'module load node/20\nsource ~/env.sh',
    }), fakeManager);
    expect(script.split('\n')).toEqual([
      '#!/bin/bash',
      '#SBATCH --job-name=ferry-block-7-abcd',
      '#SBATCH --nodes=2',
      '#SBATCH --ntasks-per-node=1',
      '#SBATCH --time=01:30:00',
      '#SBATCH --partition=debug',
      '#SBATCH --account=proj-42',
      '#SBATCH --qos=normal',
      '#SBATCH --exclusive',
      '#SBATCH --output=/var/ferry/blocks/block-7-abcd/slurm-%j.out',
      '#SBATCH --error=/var/ferry/blocks/block-7-abcd/slurm-%j.err',
      '#SBATCH --constraint=cpu',
      '#SBATCH --mem=0',
      expect.stringMatching(/^# Ferry block block-7-abcd/),
      expect.stringMatching(/^# only its path/),
      'module load node/20',
      'source ~/env.sh',
      'exec srun --ntasks-per-node=1 /opt/ferry/manager /var/ferry/blocks/block-7-abcd/connect.json',
      '',
    ]);
  });

  it('leaves out unset options; shared nodes get --cpus-per-task instead of --exclusive', () => {
    const script = renderSbatchScript({ ...request, nodes: 1 }, slurm({ exclusive: false, cpus_per_node: 16 }), fakeManager);
    const directives = script.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives).toEqual([
      '#SBATCH --job-name=ferry-block-7-abcd',
      '#SBATCH --nodes=1',
      '#SBATCH --ntasks-per-node=1',
      '#SBATCH --cpus-per-task=16',
      '#SBATCH --output=/var/ferry/blocks/block-7-abcd/slurm-%j.out',
      '#SBATCH --error=/var/ferry/blocks/block-7-abcd/slurm-%j.err',
    ]);
  });

  it('uses the real manager command by default, and never the connect file contents', () => {
    const script = renderSbatchScript(request, slurm());
    expect(script).toMatch(/exec srun --ntasks-per-node=1 \S*node --no-node-snapshot --import \S+ \S*\/manager\/main\.ts \/var\/ferry\/blocks\/block-7-abcd\/connect\.json\n$/);
  });

  it('quotes arguments so a shell gives back exactly the argv', () => {
    const argv = ['plain', 'with space', "it's", '"double"', '$HOME', '`id`', 'a\\b', '', 'new\nline', '*'];
    const script = renderSbatchScript({ ...request, nodes: 1 }, slurm(), () => ['printf', '%s|', ...argv]);
    // The srun line spans lines when an argument holds a newline: take it from the script's tail.
    const prefix = 'exec srun --ntasks-per-node=1 ';
    const tail = script.slice(script.indexOf(prefix) + prefix.length);
    expect(execFileSync('/bin/bash', ['-c', tail], { encoding: 'utf8' })).toBe(`${argv.join('|')}|`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('/a/b-c_d.json')).toBe('/a/b-c_d.json');
  });

  it('keeps worker_init verbatim: it is shell the owner wrote', () => {
    const init = `export GREETING="it's \\"quoted\\" & spaced"`;
    expect(renderSbatchScript(request, slurm({ worker_init: [init] }), fakeManager)).toContain(`\n${init}\n`);
  });

  it('escapes % in the log directory, which Slurm would expand', () => {
    const script = renderSbatchScript({ ...request, dir: '/scratch/100%/b' }, slurm(), fakeManager);
    expect(script).toContain('#SBATCH --output=/scratch/100%%/b/slurm-%j.out');
  });

  it('rejects options that would break the script, naming the field', () => {
    expect(() => new SlurmProvider({ partition: 'debug --wrap=x' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.partition') }));
    expect(() => new SlurmProvider({ walltime: '1 hour' })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.walltime') }));
    expect(() => renderSbatchScript({ ...request, dir: '/my dir' }, slurm())).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('takes every form of --time Slurm takes, and no other (the rule is the config schema\'s)', () => {
    for (const ok of ['30', '30:00', '01:00:00', '2-12', '2-12:30', '2-00:00:00']) expect(() => new SlurmProvider({ walltime: ok }), ok).not.toThrow();
    for (const bad of ['1 hour', '1:2:3:4', '-5', '2-', '01:00:00 --wrap=id', '']) {
      expect(() => new SlurmProvider({ walltime: bad }), bad).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('provider.walltime') }));
    }
  });
});

// Captured from `squeue --json` on Slurm 22.05.8 here (fields trimmed: the real one has ~110 per
// job). 22.05 lists finished jobs too, and ignores --me/--jobs/--states.
const SQUEUE_22_05 = JSON.stringify({
  meta: { plugin: { type: 'openapi/v0.0.38', name: 'Slurm OpenAPI v0.0.38' }, Slurm: { version: { major: 22, micro: 8, minor: 5 }, release: '22.05.8' } },
  errors: [],
  jobs: [
    { job_id: 1, job_state: 'CANCELLED', state_reason: 'None', exit_code: 15, name: 'wrap' },
    { job_id: 2, job_state: 'PENDING', state_reason: 'JobHeldUser', exit_code: 0, name: 'wrap' },
    { job_id: 3, job_state: 'COMPLETED', state_reason: 'None', exit_code: 0, name: 'wrap' },
    { job_id: 4, job_state: 'FAILED', state_reason: 'NonZeroExitCode', exit_code: 768, name: 'wrap' },
    { job_id: 5, job_state: 'RUNNING', state_reason: 'None', exit_code: 0, name: 'ferry-block-1' },
  ],
});
// The shape newer Slurm (23.02+, data_parser v0.0.39+) prints: states as flag lists, some numbers
// as {set, infinite, number}. Written from Slurm's OpenAPI docs, not captured here.
const SQUEUE_NEWER = JSON.stringify({
  jobs: [
    { job_id: 11, job_state: ['RUNNING'] },
    { job_id: { set: true, infinite: false, number: 12 }, job_state: ['PENDING', 'REQUEUED'] },
    { job_id: 13, job_state: ['COMPLETING', 'COMPLETED'] },
  ],
  errors: [],
});

describe('squeue parsing', () => {
  it('reads 22.05 JSON', () => {
    expect([...parseSqueueJson(SQUEUE_22_05)]).toEqual([['1', 'CANCELLED'], ['2', 'PENDING'], ['3', 'COMPLETED'], ['4', 'FAILED'], ['5', 'RUNNING']]);
  });
  it('reads the newer JSON shape', () => {
    expect([...parseSqueueJson(SQUEUE_NEWER)]).toEqual([['11', 'RUNNING'], ['12', 'PENDING'], ['13', 'COMPLETING']]);
  });
  it('reads the text fallback (--format=%i|%T)', () => {
    expect([...parseSqueueText('7|RUNNING\n8|PENDING\n\n')]).toEqual([['7', 'RUNNING'], ['8', 'PENDING']]);
  });
  it('fails loudly when slurmctld is down, though squeue --json exits 0 with no jobs', () => {
    // Captured on 22.05 with SLURM_CONF naming a controller that is not running (after ~9 s).
    const down = '{"meta":{},"errors":[{"description":"Failed while looking for jobs","error_number":-1,"error":"Unspecified error","source":"slurm_load_jobs"}],"jobs":[]}';
    expect(() => parseSqueueJson(down)).toThrow(expect.objectContaining({ code: 'UNAVAILABLE', message: expect.stringContaining('Failed while looking for jobs') }));
  });
  it('fails loudly on output that is not a job list, rather than calling every block done', () => {
    expect(() => parseSqueueJson('squeue: error: ...')).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    expect(() => parseSqueueJson('{"errors":[{"error":"Unable to contact slurm controller"}]}')).toThrow(/Unable to contact/);
  });
  it('maps states to block states', () => {
    const table: Array<[string, BlockState]> = [
      ['PENDING', 'pending'], ['CONFIGURING', 'pending'], ['REQUEUED', 'pending'],
      ['RUNNING', 'running'], ['COMPLETING', 'running'], ['SUSPENDED', 'running'],
      ['COMPLETED', 'done'], ['CANCELLED', 'done'], ['TIMEOUT', 'done'], ['PREEMPTED', 'done'],
      ['FAILED', 'failed'], ['NODE_FAIL', 'failed'], ['OUT_OF_MEMORY', 'failed'], ['BOOT_FAIL', 'failed'],
      ['SOMETHING_NEW', 'pending'],
    ];
    for (const [state, block] of table) expect([state, slurmBlockState(state)]).toEqual([state, block]);
  });
});

describe('scheduler command failures', () => {
  it('reports a missing sbatch clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-slurm-unit-'));
    try {
      const p = new SlurmProvider({}, { commands: { sbatch: '/nonexistent/sbatch' } });
      await expect(p.submit({ blockId: 'b1', nodes: 1, connectFile: join(dir, 'c.json'), dir })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('command not found') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('reports a failing squeue instead of calling blocks done', async () => {
    const p = new SlurmProvider({}, { commands: { squeue: 'false' } });
    await expect(p.status(['1'])).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('squeue failed') });
  });
});

describe('SlurmProvider on a real Slurm', () => {
  let cluster: SlurmCluster;
  let dir: string;
  let provider: SlurmProvider;
  const submitted: string[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await ensureSlurm();
    console.info(`slurm ready in ${Date.now() - t0} ms`);
    dir = mkdtempSync(join(tmpdir(), 'ferry-slurm-block-'));
    provider = new SlurmProvider(
      {
        exclusive: false, // several test blocks share the one node
        walltime: '00:05:00',
        worker_init: [`export FERRY_TEST_GREETING="it's \\"quoted\\" & spaced"`],
      },
      {
        env: cluster.env,
        // Stand-in for a manager: records what it got and where it ran, then waits like a manager.
        command: (connectFile) => ['/bin/sh', '-c', 'printf "%s\\n" "$1" "$SLURM_JOB_ID" "$FERRY_TEST_GREETING" > "$0/ran it.txt"; exec sleep 300', dir, connectFile],
      },
    );
  });

  afterAll(async () => {
    if (provider) for (const id of submitted) await provider.cancel(id).catch(() => {});
    if (cluster) {
      for (const id of submitted) await vi.waitFor(async () => expect(await squeueLists(id), `job ${id} to leave squeue`).toBe(false), { timeout: 20_000, interval: 100 }).catch(() => {});
      await cluster.stop();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function squeueLists(id: string): Promise<boolean> {
    // Plain squeue shows only live jobs (unlike --json on 22.05).
    const out = execFileSync('squeue', ['-h', '-j', id, '-o', '%i'], { env: cluster.env, encoding: 'utf8' });
    return Promise.resolve(out.trim() === id);
  }

  it('runs a block: one manager with the connect file path, tracked to running, cancelled to done', async () => {
    const connectFile = join(dir, 'connect.json');
    const secret = 'S3CRET-never-on-a-command-line';
    writeFileSync(connectFile, JSON.stringify({ secret }), { mode: 0o600 });
    const t0 = Date.now();
    const jobId = await provider.submit({ blockId: 'block-1-test', nodes: 1, connectFile, dir });
    submitted.push(jobId);
    expect(jobId).toMatch(/^\d+$/);
    expect(['pending', 'running']).toContain((await provider.status([jobId])).get(jobId));

    await vi.waitFor(async () => expect((await provider.status([jobId])).get(jobId), 'the block to run').toBe('running'), { timeout: 30_000, interval: 100 });
    const tRunning = Date.now();
    const ran = join(dir, 'ran it.txt');
    await vi.waitFor(() => expect(existsSync(ran) && readFileSync(ran, 'utf8').split('\n').length >= 4, 'the manager stand-in to write its file').toBe(true), { timeout: 30_000, interval: 100 });
    console.info(`job ${jobId}: running after ${tRunning - t0} ms, command ran after ${Date.now() - t0} ms`);
    expect(readFileSync(ran, 'utf8')).toBe(`${connectFile}\n${jobId}\nit's "quoted" & spaced\n`);

    const script = readFileSync(join(dir, 'ferry-block-1-test.sbatch'), 'utf8');
    expect(script).toContain(connectFile);
    expect(script).not.toContain(secret);
    const shown = execFileSync('scontrol', ['show', 'job', jobId], { env: cluster.env, encoding: 'utf8' });
    expect(shown).toContain('JobName=ferry-block-1-test');
    expect(shown).not.toContain(secret);

    const tCancel = Date.now();
    await provider.cancel(jobId);
    await vi.waitFor(async () => expect((await provider.status([jobId])).get(jobId), 'the cancelled block to be done').toBe('done'), { timeout: 30_000, interval: 100 });
    await vi.waitFor(async () => expect(await squeueLists(jobId), 'squeue to drop the job').toBe(false), { timeout: 30_000, interval: 100 });
    console.info(`job ${jobId}: done ${Date.now() - tCancel} ms after scancel`);
    await expect(provider.cancel(jobId)).resolves.toBeUndefined(); // cancelling again is harmless
  });

  it('calls a job slurmctld never heard of done', async () => {
    expect((await provider.status(['999999'])).get('999999')).toBe('done');
  });

  it('maps a job that exits non-zero to failed, and one that exits 0 to done', async () => {
    const mk = (blockId: string, code: number) =>
      new SlurmProvider({ exclusive: false }, { env: cluster.env, command: () => ['/bin/sh', '-c', `exit ${code}`] })
        .submit({ blockId, nodes: 1, connectFile: join(dir, 'connect.json'), dir });
    const bad = await mk('block-fails', 3);
    const good = await mk('block-ends', 0);
    submitted.push(bad, good);
    await vi.waitFor(async () => {
      const s = await provider.status([bad, good]);
      expect([s.get(bad), s.get(good)], 'the jobs to end failed / done').toEqual(['failed', 'done']);
    }, { timeout: 30_000, interval: 100 });
  });

  it('surfaces sbatch errors with the scheduler\'s message, as config errors when they are', async () => {
    const p = new SlurmProvider({ partition: 'nosuchpartition' }, { env: cluster.env, command: fakeManager });
    await expect(p.submit({ blockId: 'block-bad', nodes: 1, connectFile: join(dir, 'connect.json'), dir })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/sbatch failed \(exit 1\): .*invalid partition/i),
    });
  });
});
