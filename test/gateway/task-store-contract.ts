// The TaskStore contract: what every adapter (Durable Object SQLite now, Redis later) must do.
// An adapter's test calls `taskStoreContract` with a way to get a fresh, empty store.

import { describe, expect, it } from 'vitest';
import type { TaskStore } from '../../src/gateway/task-store/port';

export type WithStore = (use: (store: TaskStore) => Promise<void>) => Promise<void>;

const EP = '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b';
const FN = '00000000-0000-8000-8000-000000000001';
const id = (n: number) => `${EP}.${String(n).padStart(20, '0')}`;

async function seed(store: TaskStore, count: number, group = id(0)): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => id(i + 1));
  await store.createTasks({
    task_group_id: group,
    new_group: true,
    request_id: crypto.randomUUID(),
    created_at: 1000,
    workflow_id: 'wf',
    campaign_id: null,
    resource_specification_json: '{"cores":2}',
    tasks: ids.map((task_id) => ({ task_id, function_uuid: FN })),
  });
  return ids;
}

export function taskStoreContract(adapter: string, withStore: WithStore): void {
  describe(`TaskStore contract: ${adapter}`, () => {
    it('creates tasks waiting for the endpoint, in their group, in order', () =>
      withStore(async (store) => {
        let alongside = 0;
        const ids = Array.from({ length: 3 }, (_, i) => id(i + 1));
        await store.createTasks(
          { task_group_id: id(0), new_group: true, request_id: 'r1', created_at: 1000, workflow_id: 'wf', campaign_id: 'c', resource_specification_json: null, tasks: ids.map((task_id) => ({ task_id, function_uuid: FN })) },
          () => void alongside++,
        );
        expect(alongside).toBe(1);
        const [record] = await store.readTasks([ids[0]!]);
        expect(record).toMatchObject({ task_id: ids[0], task_group_id: id(0), function_uuid: FN, state: 'waiting-for-ep', attempts: 0, created_at: 1000, workflow_id: 'wf', campaign_id: 'c', result_json: null });
        expect(JSON.parse(record!.transitions_json)).toEqual({ 'waiting-for-ep': 1000 });
        expect(await store.groupExists(id(0))).toBe(true);
        expect(await store.groupExists(id(99))).toBe(false);
        expect((await store.groupTasks(id(0)))!.map((t) => t.task_id)).toEqual(ids);
        expect(await store.groupTasks(id(99))).toBeNull();
      }));

    it('reads states and records of many ids, leaving unknown ones out', () =>
      withStore(async (store) => {
        const ids = await seed(store, 250);
        const states = await store.readStates([...ids, id(9999)]);
        expect(states.size).toBe(250);
        expect(states.get(ids[200]!)).toEqual({ task_id: ids[200], state: 'waiting-for-ep', transitions: { 'waiting-for-ep': 1000 } });
        expect((await store.readTasks([...ids, id(9999)])).length).toBe(250);
      }));

    it('applies a transition only to tasks still in its from-state', () =>
      withStore(async (store) => {
        const ids = await seed(store, 3);
        await store.saveTransitions([{ task_id: ids[0]!, from: 'waiting-for-ep', to: 'waiting-for-nodes', at: 1001 }]);
        await store.saveTransitions([
          { task_id: ids[0]!, from: 'waiting-for-ep', to: 'running', at: 1002 },
          { task_id: ids[1]!, from: 'waiting-for-ep', to: 'running', at: 1002 },
        ]);
        const states = await store.readStates(ids);
        expect(states.get(ids[0]!)).toMatchObject({ state: 'waiting-for-nodes', transitions: { 'waiting-for-ep': 1000, 'waiting-for-nodes': 1001 } });
        expect(states.get(ids[1]!)).toMatchObject({ state: 'running', transitions: { 'waiting-for-ep': 1000, running: 1002 } });
        expect(states.get(ids[2]!)!.state).toBe('waiting-for-ep');
      }));

    it('stores outcomes and counts attempts, extra ones included', () =>
      withStore(async (store) => {
        const ids = await seed(store, 2);
        const outcome = {
          task_id: ids[0]!,
          state: 'success' as const,
          transitions: { 'waiting-for-ep': 1000, success: 1003 },
          result_json: '{"a":1}',
          result_ref: null,
          exception_json: null,
          stdout: 'hi',
          completion_t: 1003,
          execution_json: null,
          counts_attempt: true,
          reported_attempt: 0,
        };
        await store.finishTasks([outcome, { ...outcome, task_id: ids[1]!, state: 'cancelled', result_json: null, stdout: null, counts_attempt: false }], []);
        await store.finishTasks([], [ids[0]!, ids[1]!]);
        const records = new Map((await store.readTasks(ids)).map((r) => [r.task_id, r]));
        expect(records.get(ids[0]!)).toMatchObject({ state: 'success', result_json: '{"a":1}', stdout: 'hi', completion_t: 1003, attempts: 2 });
        expect(records.get(ids[1]!)).toMatchObject({ state: 'cancelled', result_json: null, attempts: 1 });
      }));

    it('takes the endpoint\'s execution count when a run was lost before its result arrived', () =>
      withStore(async (store) => {
        const [id] = await seed(store, 1);
        await store.finishTasks([{
          task_id: id!, state: 'success', transitions: { success: 1 }, result_json: '1', result_ref: null, exception_json: null,
          stdout: null, completion_t: 1, execution_json: null, counts_attempt: true, reported_attempt: 3,
        }], []);
        expect((await store.readTasks([id!]))[0]).toMatchObject({ attempts: 3 });
      }));
  });
}
