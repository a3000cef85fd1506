import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FromWorker, ResultBody, WorkerLimits } from '../../protocol/interchange';
import type { TaskResult } from '../../protocol/wire';
import { FakeSandbox } from '../../../test/fakes/fake-sandbox';
import type { EncodedResult, Sandbox } from './sandbox';
import { ShellRunner } from './shell-runner';
import { WorkerLoop } from './worker-loop';

const ADD = '00000000-0000-4000-8000-000000000001';
const GATE = '00000000-0000-4000-8000-000000000002';
const spec = (function_uuid: string) => ({ function_uuid, runtime: 'js' as const, code: '(unused by the fake)' });
const task = (task_id: string, function_uuid: string, args: unknown[] = []) => ({ task_id, function_uuid, payload: { args: args as never[] }, attempt: 1 });

type SendBody = (taskId: string, attempt: number, body: EncodedResult) => Promise<ResultBody>;

function harness(functions: ConstructorParameters<typeof FakeSandbox>[0], extra: { shell?: Sandbox; python?: Sandbox; limits?: Partial<WorkerLimits>; sendBody?: SendBody } = {}) {
  const sent: FromWorker[] = [];
  const waiters: Array<() => void> = [];
  const loop = new WorkerLoop({
    sandbox: new FakeSandbox(functions),
    ...(extra.shell ? { shell: extra.shell } : {}),
    ...(extra.python ? { python: extra.python } : {}),
    ...(extra.sendBody ? { sendBody: extra.sendBody } : {}),
    limits: { memory_mb: 64, timeout_s: 5, ...extra.limits },
    send: (m) => {
      sent.push(m);
      for (const w of waiters.splice(0)) w();
    },
    host: 'test-host',
    pid: 4242,
  });
  const results = () => sent.flatMap((m) => (m.type === 'results' ? m.results : []));
  /** Resolves once `n` results have been sent, or fails after a deadline. */
  const untilResults = (n: number, ms = 5000) =>
    new Promise<TaskResult[]>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`only ${results().length} of ${n} results`)), ms);
      const check = () => {
        if (results().length >= n) {
          clearTimeout(deadline);
          resolve(results());
        } else waiters.push(check);
      };
      check();
    });
  return { loop, sent, results, untilResults };
}

describe('WorkerLoop', () => {
  it('runs tasks in order and stamps each result with its execution', async () => {
    const h = harness({ [ADD]: ([a, b], _k, log) => (log(`adding ${a}`), (a as number) + (b as number)) });
    h.loop.handle({ type: 'tasks', tasks: [task('t1', ADD, [1, 2]), task('t2', ADD, [3, 4])], functions: [spec(ADD)] });
    const [r1, r2] = await h.untilResults(2);
    expect(r1).toMatchObject({ task_id: 't1', status: 'success', result: 3, stdout: 'adding 1\n' });
    expect(r2).toMatchObject({ task_id: 't2', status: 'success', result: 7 });
    expect(r1!.execution).toMatchObject({ attempt: 1, host: 'test-host', worker_pid: 4242 });
    expect(r1!.execution!.ended_at).toBeGreaterThanOrEqual(r1!.execution!.started_at);
    // Both results travel in one message: the queue emptied once.
    expect(h.sent.filter((m) => m.type === 'results')).toHaveLength(1);
  });

  it('loses no result when a timed flush sends a batch while a task runs', async () => {
    // Each task outlasts the 10 ms batch delay, so partial batches go out mid-queue.
    const h = harness({ [ADD]: async ([a]) => (await new Promise((r) => setTimeout(r, 15)), a as number) });
    h.loop.handle({ type: 'tasks', tasks: [1, 2, 3, 4, 5].map((i) => task(`t${i}`, ADD, [i])), functions: [spec(ADD)] });
    const results = await h.untilResults(5);
    expect(results.map((r) => r.result)).toEqual([1, 2, 3, 4, 5]);
    expect(h.sent.filter((m) => m.type === 'results').length).toBeGreaterThan(1);
  });

  it('sends a bytes result through sendBody before naming it in its batch, and fails it when that cannot be done', async () => {
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const bodies: Array<{ taskId: string; attempt: number; body: EncodedResult; sentBefore: number }> = [];
    const info: ResultBody = { size: 4, sha256: 'ab'.repeat(32), content_type: 'application/octet-stream' };
    const h = harness({ [ADD]: () => bytes }, {
      sendBody: async (taskId, attempt, body) => {
        bodies.push({ taskId, attempt, body, sentBefore: h.results().length });
        if (taskId === 'broken') throw new Error('the manager went away');
        return info;
      },
    });
    h.loop.handle({ type: 'tasks', tasks: [{ ...task('b1', ADD), attempt: 3 }, task('broken', ADD)], functions: [spec(ADD)] });
    const [ok, broken] = await h.untilResults(2);
    expect(bodies.map((b) => [b.taskId, b.attempt, b.body.content_type, Array.from(b.body.data)])).toEqual([['b1', 3, 'application/octet-stream', [1, 2, 3, 4]], ['broken', 1, 'application/octet-stream', [1, 2, 3, 4]]]);
    expect(bodies[0]!.sentBefore).toBe(0); // the parts went before the result that names them
    expect(ok).toMatchObject({ task_id: 'b1', status: 'success', result_body: info, execution: { attempt: 3 } });
    expect(ok).not.toHaveProperty('result');
    expect(broken).toMatchObject({ task_id: 'broken', status: 'failed', exception: { code: 'FERRY_RESULT_NOT_STORED', message: expect.stringContaining('the manager went away') } });

    const without = harness({ [ADD]: () => bytes });
    without.loop.handle({ type: 'tasks', tasks: [task('b2', ADD)], functions: [spec(ADD)] });
    expect((await without.untilResults(1))[0]).toMatchObject({ status: 'failed', exception: { code: 'FERRY_RESULT_NOT_STORED' } });
  });

  it('fails a task whose function code it never received', async () => {
    const h = harness({});
    h.loop.handle({ type: 'tasks', tasks: [task('t1', ADD)], functions: [] });
    const [r] = await h.untilResults(1);
    expect(r).toMatchObject({ status: 'failed', exception: { code: 'FERRY_FUNCTION_UNAVAILABLE' } });
  });

  it('keeps function code for later batches, since the manager sends it once', async () => {
    const h = harness({ [ADD]: ([a]) => a as number });
    h.loop.handle({ type: 'tasks', tasks: [task('t1', ADD, [1])], functions: [spec(ADD)] });
    await h.untilResults(1);
    h.loop.handle({ type: 'tasks', tasks: [task('t2', ADD, [2])], functions: [] });
    expect((await h.untilResults(2))[1]).toMatchObject({ status: 'success', result: 2 });
  });

  it('drops cancelled queued tasks without a result, and announces a task running past 50 ms', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const h = harness({ [GATE]: async () => (await gate, 'opened'), [ADD]: ([a]) => a as number });
    h.loop.handle({ type: 'tasks', tasks: [task('slow', GATE), task('c1', ADD, [1]), task('c2', ADD, [2]), task('keep', ADD, [3])], functions: [spec(GATE), spec(ADD)] });
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('no started message')), 2000);
      const poll = setInterval(() => {
        if (h.sent.some((m) => m.type === 'started' && m.task_id === 'slow')) {
          clearInterval(poll);
          clearTimeout(deadline);
          resolve();
        }
      }, 5);
    });
    h.loop.handle({ type: 'cancel', task_ids: ['c1', 'c2'] });
    open();
    const results = await h.untilResults(2);
    expect(results.map((r) => r.task_id)).toEqual(['slow', 'keep']);
    expect(h.loop.idle).toBe(true);
    expect(h.sent.filter((m) => m.type === 'started').map((m) => m.type === 'started' && m.task_id)).toEqual(['slow']);
  });

  describe('shell functions', () => {
    const SH = '00000000-0000-4000-8000-000000000005';
    const shSpec = (code: string) => ({ function_uuid: SH, runtime: 'shell' as const, code });

    it('hands them to the shell runner where allowed, JS to the sandbox', async () => {
      const shell = new FakeSandbox({ [SH]: (_a, kwargs) => ({ ran: kwargs?.['x'] ?? null }) });
      const h = harness({ [ADD]: ([a]) => a as number }, { shell, limits: { allow_shell_functions: true } });
      h.loop.handle({ type: 'tasks', tasks: [{ ...task('s1', SH), payload: { args: [], kwargs: { x: 'y' } } }, task('j1', ADD, [5])], functions: [shSpec('echo {x}'), spec(ADD)] });
      const [s1, j1] = await h.untilResults(2);
      expect(s1).toMatchObject({ task_id: 's1', status: 'success', result: { ran: 'y' } });
      expect(j1).toMatchObject({ task_id: 'j1', status: 'success', result: 5 });
      expect(shell.calls).toEqual([{ function_uuid: SH, payload: { args: [], kwargs: { x: 'y' } }, opts: { timeout_s: 5, memory_mb: 64, allow_wasm: false } }]);
    });

    it.each([
      ['allow_shell_functions is off', { allow_shell_functions: false }, true],
      ['allow_shell_functions is absent', {}, true],
      ['no runner was given', { allow_shell_functions: true }, false],
    ])('refuses them with FERRY_SHELL_NOT_ALLOWED when %s, and never runs the command', async (_why, limits, withRunner) => {
      const dir = mkdtempSync(join(tmpdir(), 'ferry-loop-'));
      try {
        const shell = new ShellRunner({ cwd: dir });
        const h = harness({}, { limits, ...(withRunner ? { shell } : {}) });
        h.loop.handle({ type: 'tasks', tasks: [task('s1', SH)], functions: [shSpec('touch SENTINEL')] });
        const [r] = await h.untilResults(1);
        expect(r).toMatchObject({ status: 'failed', exception: { code: 'FERRY_SHELL_NOT_ALLOWED', name: 'ShellNotAllowed' } });
        expect(existsSync(join(dir, 'SENTINEL'))).toBe(false);
        // The same runner does run it once allowed: the sentinel would have proved a leak.
        const allowed = harness({}, { limits: { allow_shell_functions: true }, shell });
        allowed.loop.handle({ type: 'tasks', tasks: [task('s2', SH)], functions: [shSpec('touch SENTINEL')] });
        expect((await allowed.untilResults(1))[0]).toMatchObject({ status: 'success', result: { returncode: 0 } });
        expect(existsSync(join(dir, 'SENTINEL'))).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('Python functions', () => {
    const PY = '00000000-0000-4000-8000-000000000004';
    const pySpec = { function_uuid: PY, runtime: 'python' as const, code: 'def f(x):\n    return x\n', name: 'f' };
    const python = { executable: '/usr/bin/python3', threads: 1 };

    it('hands them to the Python runner where the config enables Python', async () => {
      const runner = new FakeSandbox({ [PY]: ([x]) => x ?? null });
      const h = harness({}, { python: runner, limits: { python } });
      h.loop.handle({ type: 'tasks', tasks: [task('p1', PY, [7])], functions: [pySpec] });
      expect((await h.untilResults(1))[0]).toMatchObject({ task_id: 'p1', status: 'success', result: 7 });
      expect(runner.calls).toHaveLength(1);
    });

    it.each([
      ['python is absent from the limits', {}, true],
      ['no runner was given', { python }, false],
    ])('refuses them with FERRY_RUNTIME_NOT_ALLOWED when %s, and runs nothing', async (_why, limits, withRunner) => {
      const runner = new FakeSandbox({ [PY]: () => 'ran' });
      const h = harness({ [PY]: () => 'ran in the JS sandbox' }, { limits, ...(withRunner ? { python: runner } : {}) });
      h.loop.handle({ type: 'tasks', tasks: [task('p1', PY)], functions: [pySpec] });
      expect((await h.untilResults(1))[0]).toMatchObject({ status: 'failed', exception: { code: 'FERRY_RUNTIME_NOT_ALLOWED', name: 'RuntimeNotAllowed' } });
      expect(runner.calls).toHaveLength(0);
    });
  });
});
