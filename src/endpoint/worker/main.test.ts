import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RESULT_PART_BYTES, RESULT_PARTS_IN_FLIGHT, type FromWorker, type ResultPart, type ToWorker, type WorkerLimits } from '../../protocol/interchange';
import type { TaskResult } from '../../protocol/wire';
import { forkWorker } from './fork';
import { isAlive, killAll, untilDead } from '../../../test/helpers/processes';

const INC = '00000000-0000-4000-8000-0000000000a1';
const HANG = '00000000-0000-4000-8000-0000000000a2';
const BUSY = '00000000-0000-4000-8000-0000000000a3';
const FUNCTIONS = [
  { function_uuid: INC, runtime: 'js' as const, code: '(x) => x + 1' },
  { function_uuid: HANG, runtime: 'js' as const, code: 'async () => { await new Promise(() => {}) }' },
  // Busy for 200 ms: long enough to be announced with `started`.
  { function_uuid: BUSY, runtime: 'js' as const, code: '() => { const end = Date.now() + 200; while (Date.now() < end); return "busy done" }' },
];

/** A real worker process and what it has said, with waits bounded by deadlines. */
class WorkerUnderTest {
  readonly messages: FromWorker[] = [];
  private waiters: Array<() => void> = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(limits: WorkerLimits, cwd?: string) {
    this.child = forkWorker(limits, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...(cwd ? { cwd } : {}) });
    this.child.on('message', (m: FromWorker) => {
      this.messages.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  send(msg: ToWorker) {
    this.child.send(msg);
  }

  results(): TaskResult[] {
    return this.messages.flatMap((m) => (m.type === 'results' ? m.results : []));
  }

  until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (ok()) {
          clearTimeout(deadline);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }
}

const started: WorkerUnderTest[] = [];
function startWorker(limits: WorkerLimits = { memory_mb: 64, timeout_s: 1 }, cwd?: string) {
  const w = new WorkerUnderTest(limits, cwd);
  started.push(w);
  return w;
}
afterEach(async () => {
  for (const w of started.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) {
      w.child.kill('SIGTERM');
      await w.exited;
    }
  }
});

describe('worker process', () => {
  it('says ready, then runs 1,000 tasks sent in one message', async () => {
    const w = startWorker();
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    expect(w.messages[0]).toEqual({ type: 'ready', pid: w.child.pid });

    const N = 1000;
    const tasks = Array.from({ length: N }, (_, i) => ({ task_id: `t${i}`, function_uuid: INC, payload: { args: [i] }, attempt: 1 }));
    const t0 = performance.now();
    w.send({ type: 'tasks', tasks, functions: FUNCTIONS });
    await w.until(`${N} results`, () => w.results().length >= N);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`worker process: ${N} tasks in ${(seconds * 1000).toFixed(0)} ms = ${Math.round(N / seconds)} tasks/s (one worker, incl. IPC, ${w.messages.filter((m) => m.type === 'results').length} result messages)`);

    const results = w.results();
    expect(results).toHaveLength(N);
    results.forEach((r, i) => {
      expect(r).toMatchObject({ task_id: `t${i}`, status: 'success', result: i + 1 });
      expect(r.execution).toMatchObject({ attempt: 1, worker_pid: w.child.pid });
    });
    expect(w.messages.some((m) => m.type === 'started')).toBe(false);
  });

  it('times out a hung task, announces a long one, drops cancelled ones and keeps going', async () => {
    const w = startWorker({ memory_mb: 64, timeout_s: 1 });
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    const t = (task_id: string, function_uuid: string, args: number[] = [], attempt = 1) => ({ task_id, function_uuid, payload: { args }, attempt });
    w.send({ type: 'tasks', tasks: [t('hang', HANG, [], 2), t('c1', INC, [1]), t('c2', INC, [2])], functions: FUNCTIONS });
    await w.until('started for the hung task', () => w.messages.some((m) => m.type === 'started' && m.task_id === 'hang'));
    w.send({ type: 'cancel', task_ids: ['c1', 'c2'] });
    w.send({ type: 'tasks', tasks: [t('busy', BUSY), t('missing', '00000000-0000-4000-8000-0000000000ff'), t('after', INC, [41])], functions: [] });
    await w.until('4 results', () => w.results().length >= 4);

    const results = w.results();
    // Tasks run in order, so no result for c1 or c2 can come after `after`: they were dropped.
    expect(results.map((r) => r.task_id)).toEqual(['hang', 'busy', 'missing', 'after']);
    expect(results[0]).toMatchObject({ status: 'failed', exception: { code: 'FERRY_TASK_TIMEOUT' }, execution: { attempt: 2 } });
    const hang = results[0]!.execution!;
    expect(hang.ended_at - hang.started_at).toBeLessThan(2);
    expect(results[1]).toMatchObject({ status: 'success', result: 'busy done' });
    expect(results[2]).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_UNAVAILABLE' } });
    expect(results[3]).toMatchObject({ status: 'success', result: 42 });
    expect(w.messages.filter((m) => m.type === 'started').map((m) => m.type === 'started' && m.task_id)).toEqual(['hang', 'busy']);
  });

  it('sends a bytes result in parts, paced by the acknowledgements, then names it in its batch', async () => {
    const w = startWorker({ memory_mb: 64, timeout_s: 5 });
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    const BYTES = '00000000-0000-4000-8000-0000000000a4';
    const n = (RESULT_PARTS_IN_FLIGHT + 3) * RESULT_PART_BYTES + 10;
    w.send({ type: 'tasks', tasks: [{ task_id: 'bytes', function_uuid: BYTES, payload: { args: [n] }, attempt: 2 }], functions: [{ function_uuid: BYTES, runtime: 'js', code: '(n) => { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = i % 251; return a }' }] });
    const parts = () => w.messages.filter((m): m is ResultPart => m.type === 'result_part');
    await w.until('a window of parts', () => parts().length >= RESULT_PARTS_IN_FLIGHT);
    // Nothing acknowledged yet: no more than the window (pacing itself: result-parts.test.ts).
    expect(parts()).toHaveLength(RESULT_PARTS_IN_FLIGHT);
    expect(w.results()).toEqual([]);
    for (let acked = 0; acked < Math.ceil(n / RESULT_PART_BYTES); acked++) {
      await w.until(`part ${acked}`, () => parts().length > acked);
      const p = parts()[acked]!;
      w.send({ type: 'result_part_ack', task_id: p.task_id, attempt: p.attempt, offset: p.offset });
    }
    await w.until('the result', () => w.results().length === 1);
    const data = Buffer.concat(parts().map((p) => p.data));
    expect(data.length).toBe(n);
    expect(data.every((b, i) => b === i % 251)).toBe(true);
    expect(parts().every((p) => p.task_id === 'bytes' && p.attempt === 2)).toBe(true);
    const [r] = w.results();
    expect(r).toMatchObject({ task_id: 'bytes', status: 'success', result_body: { size: n, sha256: createHash('sha256').update(data).digest('hex'), content_type: 'application/octet-stream' }, execution: { attempt: 2 } });
    expect(r).not.toHaveProperty('result');
    // The result came after the last part.
    expect(w.messages.findIndex((m) => m.type === 'results')).toBeGreaterThan(w.messages.lastIndexOf(parts().at(-1)!));
  });

  it('exits on SIGTERM and when its manager disconnects', async () => {
    const a = startWorker();
    await a.until('ready', () => a.messages.some((m) => m.type === 'ready'));
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);

    const b = startWorker();
    await b.until('ready', () => b.messages.some((m) => m.type === 'ready'));
    b.child.disconnect();
    expect(await b.exited).toBe(0);
  });
});


describe('worker process, shell functions', () => {
  const ARGV = '00000000-0000-4000-8000-0000000000b1';
  const SEQ = '00000000-0000-4000-8000-0000000000b2';
  const FAIL = '00000000-0000-4000-8000-0000000000b3';
  const SLEEP = '00000000-0000-4000-8000-0000000000b4';
  const SHELL = [
    { function_uuid: ARGV, runtime: 'shell' as const, code: '{node} argv.cjs {v}' },
    { function_uuid: SEQ, runtime: 'shell' as const, code: 'seq 1 {n}' },
    { function_uuid: FAIL, runtime: 'shell' as const, code: 'echo "in $(pwd)"; echo oops >&2; exit 2' },
    { function_uuid: SLEEP, runtime: 'shell' as const, code: 'sleep 100 & echo $! > bg.pid; sleep 100' },
  ];
  let dir: string;
  const leftovers: number[] = [];
  const bgPid = () => {
    const pid = Number(readFileSync(join(dir, 'bg.pid'), 'utf8'));
    leftovers.push(pid);
    return pid;
  };
  afterEach(() => {
    killAll(leftovers);
    rmSync(dir, { recursive: true, force: true });
  });
  const fresh = () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-worker-')));
    writeFileSync(join(dir, 'argv.cjs'), 'process.stdout.write(JSON.stringify(process.argv.slice(2)))');
  };
  const t = (task_id: string, function_uuid: string, kwargs?: Record<string, string | number>) => ({ task_id, function_uuid, payload: { args: [], ...(kwargs ? { kwargs } : {}) }, attempt: 1 });

  it('runs them end to end where allowed: one argv element per value, last N lines, exit codes, timeouts', async () => {
    fresh();
    const w = startWorker({ memory_mb: 64, timeout_s: 1, allow_shell_functions: true, shell_output_lines: 3 }, dir);
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    const hostile = "'; touch PWNED; echo $(touch PWNED) `touch PWNED`\ntouch PWNED";
    w.send({
      type: 'tasks',
      tasks: [t('argv', ARGV, { node: process.execPath, v: hostile }), t('seq', SEQ, { n: 10 }), t('fail', FAIL), t('sleep', SLEEP), { ...t('js', INC), payload: { args: [41] } }],
      functions: [...SHELL, ...FUNCTIONS],
    });
    await w.until('5 results', () => w.results().length >= 5);
    const [argv, seq, fail, sleep, js] = w.results();

    expect(argv).toMatchObject({ status: 'success', result: { returncode: 0, stderr: '' } });
    expect(JSON.parse((argv!.result as { stdout: string }).stdout)).toEqual([hostile]);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
    expect(seq).toMatchObject({ status: 'success', result: { cmd: "seq 1 '10'", stdout: '8\n9\n10\n', stderr: '', returncode: 0 } });
    expect(fail).toMatchObject({ status: 'success', result: { stdout: `in ${dir}\n`, stderr: 'oops\n', returncode: 2 } });
    expect(sleep).toMatchObject({ status: 'failed', exception: { code: 'FERRY_TASK_TIMEOUT' } });
    expect(sleep!.execution!.ended_at - sleep!.execution!.started_at).toBeLessThan(3);
    expect(await untilDead(bgPid())).toBe(true);
    // JS still runs in the isolate beside them.
    expect(js).toMatchObject({ status: 'success', result: 42 });
  });

  it('refuses them where not allowed, running nothing', async () => {
    fresh();
    const w = startWorker({ memory_mb: 64, timeout_s: 1 }, dir);
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    w.send({ type: 'tasks', tasks: [t('touch', ARGV, { node: 'touch', v: 'PWNED' })], functions: SHELL });
    await w.until('1 result', () => w.results().length >= 1);
    expect(w.results()[0]).toMatchObject({ status: 'failed', exception: { code: 'FERRY_SHELL_NOT_ALLOWED' } });
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('takes a running command and its background jobs along when it exits', async () => {
    fresh();
    const w = startWorker({ memory_mb: 64, timeout_s: 60, allow_shell_functions: true }, dir);
    await w.until('ready', () => w.messages.some((m) => m.type === 'ready'));
    w.send({ type: 'tasks', tasks: [t('sleep', SLEEP)], functions: SHELL });
    await w.until('started', () => w.messages.some((m) => m.type === 'started' && m.task_id === 'sleep'));
    // `started` comes 50 ms in; the pid file is the command's own word that its job is running.
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(dir, 'bg.pid')) || readFileSync(join(dir, 'bg.pid'), 'utf8') === '') {
      if (Date.now() > deadline) throw new Error('bg.pid never written');
      await new Promise((r) => setTimeout(r, 10));
    }
    const bg = bgPid();
    expect(isAlive(bg)).toBe(true);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(await untilDead(bg)).toBe(true);
  });
});
