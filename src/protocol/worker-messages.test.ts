// The manager ↔ worker IPC messages are parsed on receipt (a worker runs user code): what the real
// processes send passes (src/endpoint/worker/main.test.ts runs them), and a message out of shape
// is refused rather than acted on.
import { describe, expect, it } from 'vitest';
import { FromWorker, ToWorker } from './interchange';

const UUID = '0b6c7a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

describe('FromWorker', () => {
  it('takes each message a worker sends', () => {
    for (const msg of [
      { type: 'ready', pid: 42 },
      { type: 'started', task_id: 't1', at: 1.5 },
      { type: 'results', results: [{ task_id: 't1', status: 'success', result: { a: [1, 'x', null] }, stdout: '' }] },
      { type: 'result_part', task_id: 't1', attempt: 1, offset: 0, data: new Uint8Array(3) },
      { type: 'result_part', task_id: 't1', attempt: 1, offset: 0, data: Buffer.from('abc') },
      { type: 'read', req_id: 'r1', object_id: 'a'.repeat(64), start: 0, end: 10 },
    ]) expect(FromWorker.safeParse(msg).success, JSON.stringify(msg)).toBe(true);
  });

  it('refuses a message out of shape', () => {
    for (const msg of [
      null,
      'ready',
      { type: 'exit' },
      { type: 'results', results: [{ status: 'success' }] },
      { type: 'results', results: [{ task_id: 't1', status: 'done' }] },
      { type: 'result_part', task_id: 't1', attempt: 1, offset: 0, data: 'abc' },
      { type: 'result_part', task_id: 't1', attempt: 0, offset: 0, data: new Uint8Array(1) },
      { type: 'read', req_id: '', object_id: 'x', start: 0, end: 1 },
      { type: 'read', req_id: 'r', object_id: 'x', start: -1, end: 1 },
    ]) expect(FromWorker.safeParse(msg).success, JSON.stringify(msg)).toBe(false);
  });
});

describe('ToWorker', () => {
  it('takes each message a manager sends, and refuses one out of shape', () => {
    const tasks = { type: 'tasks', tasks: [{ task_id: 't1', function_uuid: UUID, payload: { args: [1] }, attempt: 1 }], functions: [{ function_uuid: UUID, runtime: 'js', code: '(x) => x' }] };
    for (const msg of [
      tasks,
      { type: 'cancel', task_ids: ['t1'] },
      { type: 'result_part_ack', task_id: 't1', attempt: 1, offset: 65536 },
      { type: 'read_result', req_id: 'r1', ok: true, size: 3, sha256: 'a'.repeat(64), data: new Uint8Array(3) },
      { type: 'read_result', req_id: 'r1', ok: false, code: 'FERRY_DATA_NOT_FOUND', message: 'no such object' },
    ]) expect(ToWorker.safeParse(msg).success, JSON.stringify(msg)).toBe(true);
    for (const msg of [
      { ...tasks, tasks: [{ ...tasks.tasks[0], attempt: 0 }] },
      { type: 'read_result', req_id: 'r1', ok: true, size: 3, sha256: 'a'.repeat(64) },
      { type: 'cancel' },
    ]) expect(ToWorker.safeParse(msg).success, JSON.stringify(msg)).toBe(false);
  });
});
