import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Json } from '../../protocol/api';
import type { SandboxOutcome } from './sandbox';
import { shellEnvironment } from './shell-environment';
import { ShellRunner, type ShellRunnerOptions } from './shell-runner';
import { isAlive, killAll, untilDead } from '../../../test/helpers/processes';

const UUID = '00000000-0000-4000-8000-00000000005e';
const shellFn = (code: string) => ({ function_uuid: UUID, runtime: 'shell' as const, code });

let dir: string;
const leftovers: number[] = [];
beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-shell-')));
});
afterEach(() => {
  killAll(leftovers);
  rmSync(dir, { recursive: true, force: true });
});

function runner(options: ShellRunnerOptions = {}) {
  return new ShellRunner({ cwd: dir, ...options });
}
function run(r: ShellRunner, code: string, kwargs?: Record<string, Json>, args: Json[] = [], timeout_s = 20): Promise<SandboxOutcome> {
  return r.run(shellFn(code), { args, ...(kwargs ? { kwargs } : {}) }, { timeout_s, memory_mb: 64 });
}
function success(outcome: SandboxOutcome) {
  if (outcome.status !== 'success') throw new Error(`expected success, got ${JSON.stringify(outcome)}`);
  return outcome.result as { cmd: string; stdout: string; stderr: string; returncode: number };
}

function readPid(name: string): number {
  const pid = Number(readFileSync(join(dir, name), 'utf8').trim());
  expect(pid).toBeGreaterThan(1);
  leftovers.push(pid);
  return pid;
}
/** Resolves once the command has written `file` (its word that it got that far), or fails after a deadline. */
async function untilWritten(file: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(file) || statSync(file).size === 0) {
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Values that would run `touch PWNED` (or delete ./victim) if they ever reached the shell as syntax.
const HOSTILE: string[] = [
  '; touch PWNED',
  '; rm -rf ./victim',
  '$(touch PWNED)',
  '`touch PWNED`',
  "'; touch PWNED; '",
  "'\\''; touch PWNED; '",
  '"; touch PWNED; "',
  'x\ntouch PWNED',
  'x\rtouch PWNED',
  '&& touch PWNED',
  '|| touch PWNED',
  '| touch PWNED',
  '> PWNED',
  '& touch PWNED &',
  '${IFS}touch${IFS}PWNED',
  '$((1+1)) ~ * ? [a] $HOME \\ \\n',
  '-n',
  'naïve 🚀 データ\u202e',
  ' \t ',
  '',
  'x; touch PWNED; echo ',
  '$(id -un)',
  "'",
  '"',
  '\\',
  '*',
  '--help',
  'a\nb\n',
];

describe('ShellRunner', () => {
  it('passes each hostile value as exactly one argv element, and runs none of it', async () => {
    mkdirSync(join(dir, 'victim'));
    writeFileSync(join(dir, 'argv.cjs'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    const r = runner();
    for (const v of HOSTILE) {
      const res = success(await run(r, '{node} argv.cjs {v}', { node: process.execPath, v }));
      expect(res.returncode).toBe(0);
      expect(JSON.parse(res.stdout), `value ${JSON.stringify(v)}`).toEqual([v]);
    }
    // All at once, as kwargs and as appended positional args.
    const kwargs = Object.fromEntries(HOSTILE.map((v, i) => [`v${i}`, v]));
    const template = `{node} argv.cjs ${HOSTILE.map((_, i) => `{v${i}}`).join(' ')}`;
    const res = success(await run(r, template, { node: process.execPath, ...kwargs }, HOSTILE));
    expect(JSON.parse(res.stdout)).toEqual([...HOSTILE, ...HOSTILE]);

    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
    expect(existsSync(join(dir, 'victim'))).toBe(true);
  });

  // Every placement of {v}: bare ones pass the value as one literal word; any other is refused
  // before anything runs (`touch RAN` first shows that), whatever the value.
  const BARE: Array<[string, (v: string) => string]> = [
    ['{v}', (v) => v],
    ['x{v}y', (v) => `x${v}y`],
    ['--opt={v}', (v) => `--opt=${v}`],
    ['"pre"{v}\'post\'', (v) => `pre${v}post`],
  ];
  const NOT_BARE = ["'{v}'", "'x{v}y'", '"{v}"', '"x {v} y"', "$'{v}'", '\\{v}', '`echo {v}`', '"$(echo {v})"', '${{X:-{v}}}', '# {v}', '<<EOF\n{v}\nEOF'];

  it.each(BARE)('passes each hostile value placed as %s as one literal word', async (placement, word) => {
    writeFileSync(join(dir, 'argv.cjs'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    const r = runner();
    for (const v of HOSTILE) {
      const res = success(await run(r, `{node} argv.cjs ${placement}`, { node: process.execPath, v }));
      expect(JSON.parse(res.stdout), `value ${JSON.stringify(v)}`).toEqual([word(v)]);
    }
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it.each(NOT_BARE)('refuses the template placing {v} as %s, running nothing, whatever the value', async (placement) => {
    const r = runner();
    for (const v of HOSTILE) {
      const outcome = await run(r, `touch RAN; {node} argv.cjs ${placement}`, { node: process.execPath, v });
      expect(outcome, `value ${JSON.stringify(v)}`).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', name: 'ShellTemplateError', message: expect.stringContaining('{v} at offset') } });
    }
    expect(existsSync(join(dir, 'RAN'))).toBe(false);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('refuses a NUL byte in a value, running nothing', async () => {
    const outcome = await run(runner(), 'touch RAN; echo {v}', { v: 'a\0b' });
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', message: expect.stringContaining("kwarg 'v' contains a NUL") } });
    expect(existsSync(join(dir, 'RAN'))).toBe(false);
  });

  it('gives commands PATH, HOME and LANG and the configured variables, nothing else of the worker\'s environment', async () => {
    process.env.FERRY_TOKEN = 'agent-secret-token';
    try {
      const names = (text: string) => text.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))).filter((n) => !['PWD', 'SHLVL', 'OLDPWD', '_'].includes(n)).sort();
      const plain = success(await run(runner(), 'env'));
      expect(plain.stdout).not.toContain('agent-secret-token');
      expect(names(plain.stdout)).toEqual(['HOME', 'LANG', 'PATH'].filter((n) => process.env[n] !== undefined));
      const configured = success(await run(runner({ env: shellEnvironment(process.env, { SITE_SCRATCH: '/scratch/x' }) }), 'env'));
      expect(configured.stdout).toContain('SITE_SCRATCH=/scratch/x\n');
      expect(configured.stdout).not.toContain('FERRY_');
    } finally {
      delete process.env.FERRY_TOKEN;
    }
  });

  it('counts one line per value with printf | wc -l, newlines and all', async () => {
    const res = success(await run(runner(), `printf '%s\\n' {v} | wc -l`, { v: 'one\ntwo\nthree' }));
    // printf prints the value once: its two embedded newlines and the format's make 3 lines.
    expect(res.stdout.trim()).toBe('3');
    const one = success(await run(runner(), `printf '%s|' {v} | wc -c`, { v: 'a b  c' }));
    expect(one.stdout.trim()).toBe('7');
  });

  it('passes numbers, booleans, null, arrays and objects as their JSON text', async () => {
    writeFileSync(join(dir, 'argv.cjs'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
    const res = success(await run(runner(), '{node} argv.cjs {n} {b} {z} {a} {o}', { node: process.execPath, n: 2.5, b: false, z: null, a: [1, "it's"], o: { k: '$(id)' } }, [7, true]));
    expect(JSON.parse(res.stdout)).toEqual(['2.5', 'false', 'null', `[1,"it's"]`, '{"k":"$(id)"}', '7', 'true']);
  });

  it('answers {cmd, stdout, stderr, returncode}, a non-zero exit still a success', async () => {
    const outcome = await run(runner(), `printf 'out\\n'; printf 'err: %s\\n' {what} >&2; exit 3`, { what: 'bad input' });
    expect(outcome).toEqual({
      status: 'success',
      result: { cmd: `printf 'out\\n'; printf 'err: %s\\n' 'bad input' >&2; exit 3`, stdout: 'out\n', stderr: 'err: bad input\n', returncode: 3 },
      stdout: '',
    });
    // A shell killed by a signal reports 128 + N, as $? would.
    expect(success(await run(runner(), 'kill -TERM $$')).returncode).toBe(143);
  });

  it('runs in the configured directory, by default the worker’s own', async () => {
    expect(success(await run(runner(), 'pwd')).stdout).toBe(`${dir}\n`);
    expect(success(await run(new ShellRunner(), 'pwd')).stdout).toBe(`${realpathSync(process.cwd())}\n`);
  });

  it('keeps only the last N lines of long output, and caps an endless line by bytes', async () => {
    const lines = success(await run(runner({ outputLines: 5 }), 'seq 1 200000; seq 1 3 >&2'));
    expect(lines.stdout).toBe('199996\n199997\n199998\n199999\n200000\n');
    expect(lines.stderr).toBe('1\n2\n3\n');

    // 20 MB on one line, read through a 1 KiB window: its end is what comes back.
    const endless = success(await run(runner({ maxOutputBytes: 1024 }), `head -c 20000000 /dev/zero | tr '\\0' a; printf b`));
    expect(endless.stdout).toBe(`${'a'.repeat(1023)}b`);
  });

  it('answers a result past the inline limit as a JSON body, to be stored as an object', async () => {
    const outcome = await run(runner({ maxInlineResultBytes: 200, maxOutputBytes: 1000 }), 'seq 1 1000');
    expect(outcome.status).toBe('success');
    if (outcome.status !== 'success' || !outcome.body) throw new Error(`expected a body, got ${JSON.stringify(outcome)}`);
    expect(outcome.body.content_type).toBe('application/json');
    const value = JSON.parse(Buffer.from(outcome.body.data).toString('utf8')) as { stdout: string; returncode: number };
    expect(value.returncode).toBe(0);
    expect(value.stdout.endsWith('999\n1000\n')).toBe(true);
    expect(Buffer.byteLength(value.stdout)).toBeLessThanOrEqual(1000);
  });

  it('times out by killing the whole process group: the shell, its job and its background job', async () => {
    const t0 = performance.now();
    const outcome = await run(runner(), 'echo $$ > sh.pid; sleep 100 & echo $! > bg.pid; echo started; sleep 100', {}, [], 1);
    expect((performance.now() - t0) / 1000).toBeLessThan(5);
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'FERRY_TASK_TIMEOUT', name: 'TaskTimeout' }, stdout: 'started\n' });
    expect(await untilDead(readPid('sh.pid'))).toBe(true);
    expect(await untilDead(readPid('bg.pid'))).toBe(true);
  });

  it('returns when the command exits, killing what it left running in the background', async () => {
    const t0 = performance.now();
    const res = success(await run(runner(), 'sleep 100 & echo $! > bg.pid; echo done'));
    expect(res).toMatchObject({ stdout: 'done\n', returncode: 0 });
    expect((performance.now() - t0) / 1000).toBeLessThan(5);
    expect(await untilDead(readPid('bg.pid'))).toBe(true);
  });

  it('does not wait for a process that left the group and holds the output open', async () => {
    // The shell waits until the escapee has its own session, so the group kill cannot catch it.
    const t0 = performance.now();
    const res = success(await run(runner({ drainGraceMs: 300 }), `setsid sh -c 'echo $$ > esc.pid; exec sleep 100' & while [ ! -s esc.pid ]; do :; done; echo done`));
    expect(res).toMatchObject({ stdout: 'done\n', returncode: 0 });
    const escapee = readPid('esc.pid'); // killed by afterEach
    expect(isAlive(escapee)).toBe(true);
    // It was cut loose after the grace, not waited for.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('answers a timeout even when an escaped process keeps the output open', async () => {
    const t0 = performance.now();
    const outcome = await run(runner({ drainGraceMs: 300 }), `setsid sh -c 'echo $$ > esc.pid; exec sleep 100' & while [ ! -s esc.pid ]; do :; done; sleep 100`, {}, [], 1);
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'FERRY_TASK_TIMEOUT' } });
    expect((performance.now() - t0) / 1000).toBeLessThan(5);
    readPid('esc.pid'); // killed by afterEach
  });

  it('fails on a missing placeholder without running anything', async () => {
    const outcome = await run(runner(), 'touch PWNED; echo {missing}', { present: 1 });
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', name: 'ShellTemplateError', message: expect.stringContaining("'missing'") } });
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('fails a command line too long for the system with a clear error', async () => {
    const outcome = await run(runner(), 'echo {big}', { big: 'x'.repeat(300_000) });
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_ERROR', name: 'ShellCommandTooLong' } });
  });

  it('reports a working directory that does not exist', async () => {
    const outcome = await run(new ShellRunner({ cwd: join(dir, 'nope') }), 'true');
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'INTERNAL', name: 'ShellSpawnError', message: expect.stringContaining(join(dir, 'nope')) } });
  });

  it('kills running commands on dispose, so a worker leaves none behind', async () => {
    const r = runner();
    const outcome = run(r, 'sleep 100 & echo $! > bg.pid; wait', {}, [], 60);
    await untilWritten(join(dir, 'bg.pid'));
    const bg = readPid('bg.pid');
    expect(isAlive(bg)).toBe(true);
    r.dispose();
    expect(success(await outcome).returncode).toBe(137);
    expect(await untilDead(bg)).toBe(true);
  });

  it('refuses a function of another runtime', async () => {
    const outcome = await runner().run({ function_uuid: UUID, runtime: 'js', code: '() => 1' }, { args: [] }, { timeout_s: 1, memory_mb: 64 });
    expect(outcome).toMatchObject({ status: 'failed', exception: { code: 'INTERNAL' } });
  });
});
