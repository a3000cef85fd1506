import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Journal } from './journal';

// Every fsync the journal makes, counted on the way to the real one.
const fsyncs = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fsyncSync = (fd: number) => {
    fsyncs.count += 1;
    fs.fsyncSync(fd);
  };
  return { ...fs, default: { ...fs, fsyncSync }, fsyncSync };
});

const fn = { function_uuid: '00000000-0000-8000-8000-000000000001', runtime: 'js' as const, code: '(x) => x' };
const task = (i: number) => ({ task_id: `t${i}`, function_uuid: fn.function_uuid, payload: { args: [i] } });
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ferry-journal-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('Journal', () => {
  it('replays tasks, attempts and unacknowledged results after a restart, and forgets acknowledged ones', () => {
    const dir = tmp();
    const j = new Journal(dir);
    expect(j.addTasks([task(1), task(2), task(3)], [fn]).map((t) => t.task_id)).toEqual(['t1', 't2', 't3']);
    j.markDispatched(['t1', 't2']);
    j.markDispatched(['t2']);
    j.addResults([{ task_id: 't1', status: 'success', result: 1 }]);
    j.addResults([{ task_id: 't3', status: 'success', result: 3 }]);
    j.acknowledge(['t3']);
    // No close(): a SIGKILL leaves the file as it is.
    const again = new Journal(dir);
    expect([...again.tasks.keys()]).toEqual(['t2']);
    expect(again.tasks.get('t2')!.attempts).toBe(2);
    expect([...again.results.keys()]).toEqual(['t1']);
    expect(again.heldIds().sort()).toEqual(['t1', 't2']);
    expect(again.functions.get(fn.function_uuid)).toEqual(fn);
  });

  it('replays each lost execution with its attempt, time and reason, across restarts and a compaction', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks([task(1)], [fn]);
    j.markDispatched(['t1']);
    j.markLost(['t1'], 'worker 41 exited (SIGKILL)', 100);
    j.markDispatched(['t1']);
    j.markLost(['t1'], 'manager m-1 lost', 200);
    j.markDispatched(['t1']);
    const expected = [
      { attempt: 1, lost_at: 100, reason: 'worker 41 exited (SIGKILL)' },
      { attempt: 2, lost_at: 200, reason: 'manager m-1 lost' },
    ];
    const again = new Journal(dir); // replays, then compacts: the lost executions are rewritten
    expect(again.tasks.get('t1')).toMatchObject({ attempts: 3, lostAttempts: expected });
    expect(new Journal(dir).tasks.get('t1')).toMatchObject({ attempts: 3, lostAttempts: expected });
  });

  it('keeps a result stored as an object (its reference) until acknowledged, across a restart and a compaction', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks([task(1)], [fn]);
    const result_object = { $ref: 'a'.repeat(64), size: 50 * 1024 * 1024, sha256: 'b'.repeat(64), content_type: 'application/octet-stream' as const };
    j.addResults([{ task_id: 't1', status: 'success', result_object, execution: { attempt: 1, started_at: 1, ended_at: 2, host: 'h', worker_pid: 7 } }]);
    const again = new Journal(dir); // replays, then rewrites the file with the live entries only
    expect(again.results.get('t1')).toMatchObject({ status: 'success', result_object });
    expect(again.results.get('t1')).not.toHaveProperty('result');
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8').length).toBeLessThan(2000); // the reference, not 50 MB
    again.acknowledge(['t1']);
    expect(new Journal(dir).results.size).toBe(0);
  });

  it('ignores a task delivered twice and a torn last line', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks([task(1)], [fn]);
    expect(j.addTasks([task(1), task(2)], [fn]).map((t) => t.task_id)).toEqual(['t2']);
    appendFileSync(join(dir, 'journal.jsonl'), '{"k":"a","ids":["t');
    const again = new Journal(dir);
    expect([...again.tasks.keys()].sort()).toEqual(['t1', 't2']);
  });

  it('drops cancelled tasks and compacts on open', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks(Array.from({ length: 100 }, (_, i) => task(i)), [fn]);
    j.drop(Array.from({ length: 99 }, (_, i) => `t${i}`));
    const again = new Journal(dir);
    expect([...again.tasks.keys()]).toEqual(['t99']);
    const text = readFileSync(join(dir, 'journal.jsonl'), 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(2); // functions + one task
  });
  it('replays an execution the agent did not see end as unfinished, once lost executions are counted', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks([task(1), task(2), task(3), task(4)], [fn]);
    j.markDispatched(['t1', 't2', 't4']);
    j.markLost(['t1'], 'worker 1 exited (SIGKILL)', 1);
    j.markDispatched(['t1']);
    j.markLost(['t4'], 'worker 2 exited (SIGKILL)', 2);
    // t1 runs again and t2 runs when the agent dies; t3 never started; t4's one execution was lost.
    const again = new Journal(dir);
    expect(again.unfinishedExecutions().map((t) => t.task_id)).toEqual(['t1', 't2']);
    again.markLost(['t1', 't2'], 'the agent stopped', 3);
    expect(new Journal(dir).unfinishedExecutions()).toEqual([]);
  });

  it('skips a line nested past the depth bound on replay, keeping every other entry', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.addTasks([task(1)], [fn]);
    // Written as the text JSON.stringify would refuse to build (it recurses).
    appendFileSync(join(dir, 'journal.jsonl'), `{"k":"t","tasks":[{"task_id":"deep","function_uuid":"${fn.function_uuid}","payload":{"args":[${'['.repeat(200_000)}${']'.repeat(200_000)}]}}]}\n`);
    j.addTasks([task(2)], [fn]);
    const again = new Journal(dir);
    expect([...again.tasks.keys()]).toEqual(['t1', 't2']);
    expect(again.skippedLines).toBe(1);
  });

  it('makes everything appended since the last sync durable with one fsync, and fsyncs nothing when nothing was written', () => {
    const j = new Journal(tmp());
    fsyncs.count = 0;
    j.addTasks(Array.from({ length: 1000 }, (_, i) => task(i)), [fn]);
    j.markDispatched(['t1', 't2']);
    j.addResults(Array.from({ length: 300 }, (_, i) => ({ task_id: `t${i}`, status: 'success' as const, result: i })));
    expect(fsyncs.count).toBe(0); // appends alone never fsync: the caller decides when a batch is complete
    j.sync();
    expect(fsyncs.count).toBe(1);
    j.sync();
    expect(fsyncs.count).toBe(1);
    j.acknowledge(['t1']);
    j.sync();
    expect(fsyncs.count).toBe(2);
  });

  it('never fsyncs on sync when journal_fsync is off, and still replays what it wrote', () => {
    const dir = tmp();
    const j = new Journal(dir, { fsync: false });
    fsyncs.count = 0;
    j.addTasks([task(1)], [fn]);
    j.sync();
    expect(fsyncs.count).toBe(0);
    expect([...new Journal(dir, { fsync: false }).tasks.keys()]).toEqual(['t1']);
  });
});
