import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from './journal';

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
});
