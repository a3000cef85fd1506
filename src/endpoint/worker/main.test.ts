import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { FromWorker, ToWorker, WorkerLimits } from '../../protocol/interchange';
import type { TaskResult } from '../../protocol/wire';
import { forkWorker } from './fork';

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

  constructor(limits: WorkerLimits) {
    this.child = forkWorker(limits, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
function startWorker(limits: WorkerLimits = { memory_mb: 64, timeout_s: 1 }) {
  const w = new WorkerUnderTest(limits);
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
