// The TaskStore contract: what every adapter (Durable Object SQLite, Redis) must do. An adapter's
// test calls `taskStoreContract` with a way to get a fresh, empty store for a fresh endpoint; an
// adapter that expires records (Redis) also calls `expiringTaskStoreContract`.

import { describe, expect, it, vi } from 'vitest';
import type { TaskOutcome, TaskStore } from '../../src/gateway/task-store/port';
import type { TaskState } from '../../src/protocol/task-state';

export interface StoreOptions {
  /** Seconds a task lives (adapters with a TTL only). */
  ttlSeconds?: number;
}

/** Lends `use` a fresh store and the endpoint id its task ids must start with. */
export type WithStore = (use: (store: TaskStore, endpointId: string) => Promise<void>, options?: StoreOptions) => Promise<void>;

const FN = '00000000-0000-8000-8000-000000000001';
const FINAL: TaskState[] = ['success', 'failed', 'cancelled'];
const ALL: TaskState[] = ['waiting-for-ep', 'waiting-for-nodes', 'running', 'success', 'failed', 'cancelled'];
/** The legal moves, written out here rather than taken from the code under test. */
const LEGAL: Record<TaskState, TaskState[]> = {
  'waiting-for-ep': ['waiting-for-nodes', 'running', 'success', 'failed', 'cancelled'],
  'waiting-for-nodes': ['waiting-for-ep', 'running', 'success', 'failed', 'cancelled'],
  running: ['waiting-for-ep', 'success', 'failed', 'cancelled'],
  success: [],
  failed: [],
  cancelled: [],
};

const idOf = (ep: string, n: number) => `${ep}.${String(n).padStart(20, '0')}`;

async function seed(store: TaskStore, ep: string, count: number, group = idOf(ep, 0), first = 1): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => idOf(ep, first + i));
  await store.createTasks({
    task_group_id: group,
    new_group: first === 1,
    request_id: crypto.randomUUID(),
    created_at: 1000,
    workflow_id: 'wf',
    campaign_id: null,
    resource_specification_json: '{"cores":2}',
    tasks: ids.map((task_id) => ({ task_id, function_uuid: FN })),
  });
  return ids;
}

function outcome(taskId: string, state: TaskState, extra: Partial<TaskOutcome> = {}): TaskOutcome {
  return {
    task_id: taskId,
    state,
    transitions: { [state]: 1003 },
    result_json: state === 'success' ? '{"a":1}' : null,
    result_ref: null,
    exception_json: state === 'failed' ? '{"code":"FERRY_FUNCTION_ERROR","name":"Error","message":"x"}' : null,
    stdout: null,
    completion_t: 1003,
    execution_json: null,
    counts_attempt: state !== 'cancelled',
    reported_attempt: 0,
    ...extra,
  };
}

/** Brings a fresh task into `state` through the store's own writes. */
async function bringTo(store: TaskStore, taskId: string, state: TaskState): Promise<void> {
  if (state === 'waiting-for-ep') return;
  if (FINAL.includes(state)) {
    const report = await store.finishTasks([outcome(taskId, state)], []);
    expect(report.finished).toEqual([taskId]);
    return;
  }
  await store.saveTransitions([{ task_id: taskId, from: 'waiting-for-ep', to: state, at: 1001 }]);
}

export function taskStoreContract(adapter: string, withStore: WithStore): void {
  describe(`TaskStore contract: ${adapter}`, () => {
    it('creates tasks waiting for the endpoint, in their group, in order', () =>
      withStore(async (store, ep) => {
        let alongside = 0;
        const ids = Array.from({ length: 3 }, (_, i) => idOf(ep, i + 1));
        await store.createTasks(
          { task_group_id: idOf(ep, 0), new_group: true, request_id: 'r1', created_at: 1000, workflow_id: 'wf', campaign_id: 'c', resource_specification_json: null, tasks: ids.map((task_id) => ({ task_id, function_uuid: FN })) },
          () => void alongside++,
        );
        expect(alongside).toBe(1);
        const [record] = await store.readTasks([ids[0]!]);
        expect(record).toMatchObject({ task_id: ids[0], task_group_id: idOf(ep, 0), function_uuid: FN, state: 'waiting-for-ep', attempts: 0, created_at: 1000, workflow_id: 'wf', campaign_id: 'c', result_json: null });
        expect(JSON.parse(record!.transitions_json)).toEqual({ 'waiting-for-ep': 1000 });
        expect(await store.groupExists(idOf(ep, 0))).toBe(true);
        expect(await store.groupExists(idOf(ep, 99))).toBe(false);
        expect((await store.groupTasks(idOf(ep, 0)))!.map((t) => t.task_id)).toEqual(ids);
        expect(await store.groupTasks(idOf(ep, 99))).toBeNull();
        // A second batch joins the group, after the first.
        const more = await seed(store, ep, 2, idOf(ep, 0), 10);
        expect((await store.groupTasks(idOf(ep, 0)))!.map((t) => t.task_id)).toEqual([...ids, ...more]);
      }));

    it('reads states and records of many ids, leaving unknown ones out', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 250);
        const states = await store.readStates([...ids, idOf(ep, 9999)]);
        expect(states.size).toBe(250);
        expect(states.get(ids[200]!)).toEqual({ task_id: ids[200], state: 'waiting-for-ep', transitions: { 'waiting-for-ep': 1000 } });
        const records = await store.readTasks([...ids, idOf(ep, 9999)]);
        expect(records.length).toBe(250);
        expect(records.find((r) => r.task_id === ids[7])).toMatchObject({ resource_specification_json: '{"cores":2}', workflow_id: 'wf', campaign_id: null });
      }));

    it('applies a transition only to tasks still in its from-state', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 3);
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

    it('makes every legal move and refuses every illegal one', () =>
      withStore(async (store, ep) => {
        const pairs = ALL.flatMap((from) => ALL.filter((to) => to !== from).map((to) => ({ from, to })));
        const ids = await seed(store, ep, pairs.length);
        for (let i = 0; i < pairs.length; i++) await bringTo(store, ids[i]!, pairs[i]!.from);
        // Moves into a final state go through finishTasks, the others through saveTransitions.
        const finishes = pairs.map((p, i) => ({ ...p, id: ids[i]! })).filter((p) => FINAL.includes(p.to));
        const moves = pairs.map((p, i) => ({ ...p, id: ids[i]! })).filter((p) => !FINAL.includes(p.to));
        await store.saveTransitions(moves.map((m) => ({ task_id: m.id, from: m.from, to: m.to, at: 2000 })));
        const report = await store.finishTasks(finishes.map((f) => outcome(f.id, f.to, { transitions: { [f.to]: 2000 } })), []);
        const states = await store.readStates(ids);
        for (const [i, { from, to }] of pairs.entries()) {
          const legal = LEGAL[from].includes(to);
          const s = states.get(ids[i]!)!;
          expect(s.state, `${from} → ${to}`).toBe(legal ? to : from);
          if (legal) expect(s.transitions[to], `${from} → ${to} stamped`).toBe(2000);
        }
        expect(report.finished.sort()).toEqual(finishes.filter((f) => LEGAL[f.from].includes(f.to)).map((f) => f.id).sort());
        expect(report.refused.sort()).toEqual(finishes.filter((f) => !LEGAL[f.from].includes(f.to)).map((f) => f.id).sort());
      }));

    it('stores outcomes and counts attempts, extra ones included', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 2);
        const ok = outcome(ids[0]!, 'success', { transitions: { 'waiting-for-ep': 1000, success: 1003 }, stdout: 'hi' });
        const report = await store.finishTasks([ok, outcome(ids[1]!, 'cancelled')], []);
        expect(report).toEqual({ finished: ids, refused: [] });
        await store.finishTasks([], [ids[0]!, ids[1]!]);
        const records = new Map((await store.readTasks(ids)).map((r) => [r.task_id, r]));
        expect(records.get(ids[0]!)).toMatchObject({ state: 'success', result_json: '{"a":1}', stdout: 'hi', completion_t: 1003, attempts: 2 });
        expect(JSON.parse(records.get(ids[0]!)!.transitions_json)).toEqual({ 'waiting-for-ep': 1000, success: 1003 });
        expect(records.get(ids[1]!)).toMatchObject({ state: 'cancelled', result_json: null, attempts: 1 });
      }));

    it('keeps an empty stdout apart from none, and a large result as a reference', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 2);
        await store.finishTasks([outcome(ids[0]!, 'success', { stdout: '', result_json: '""' }), outcome(ids[1]!, 'success', { result_json: null, result_ref: `results/${ids[1]}` })], []);
        const records = new Map((await store.readTasks(ids)).map((r) => [r.task_id, r]));
        expect(records.get(ids[0]!)).toMatchObject({ stdout: '', result_json: '""', result_ref: null });
        expect(records.get(ids[1]!)).toMatchObject({ stdout: null, result_json: null, result_ref: `results/${ids[1]}` });
      }));

    it('takes the endpoint\'s execution count when a run was lost before its result arrived', () =>
      withStore(async (store, ep) => {
        const [id] = await seed(store, ep, 1);
        await store.finishTasks([outcome(id!, 'success', { reported_attempt: 3 })], []);
        expect((await store.readTasks([id!]))[0]).toMatchObject({ attempts: 3 });
      }));

    it('stores one of many results delivered at once for one task; the others count attempts', () =>
      withStore(async (store, ep) => {
        const [id] = await seed(store, ep, 1);
        await store.saveTransitions([{ task_id: id!, from: 'waiting-for-ep', to: 'running', at: 1001 }]);
        const reports = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.finishTasks([outcome(id!, i % 2 ? 'failed' : 'success', { result_json: i % 2 ? null : `{"run":${i}}`, stdout: `run ${i}` })], [])),
        );
        const winners = reports.flatMap((r, i) => (r.finished.length ? [i] : []));
        expect(winners).toHaveLength(1);
        const [record] = await store.readTasks([id!]);
        const w = winners[0]!;
        expect(record).toMatchObject({ state: w % 2 ? 'failed' : 'success', stdout: `run ${w}`, attempts: 8 });
        // The same task twice in one call: the first outcome is the one kept.
        const [other] = await seed(store, ep, 1, idOf(ep, 500), 600);
        const report = await store.finishTasks([outcome(other!, 'success', { stdout: 'first' }), outcome(other!, 'failed', { stdout: 'second' })], []);
        expect(report).toEqual({ finished: [other], refused: [other] });
        expect((await store.readTasks([other!]))[0]).toMatchObject({ state: 'success', stdout: 'first', attempts: 2 });
      }));

    it('cancel racing a result: whichever is stored first wins, the other is refused', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 20);
        const raced = await Promise.all(
          ids.map(async (id, i) => {
            // Half the races start with the cancel, half with the result.
            const cancel = () => store.finishTasks([outcome(id, 'cancelled')], []);
            const result = () => store.finishTasks([outcome(id, 'success')], []);
            const [c, r] = i % 2 ? await Promise.all([cancel(), result()]) : (await Promise.all([result(), cancel()])).reverse();
            return { id, cancelled: c!.finished.length === 1, succeeded: r!.finished.length === 1 };
          }),
        );
        const states = await store.readStates(ids);
        const records = new Map((await store.readTasks(ids)).map((r) => [r.task_id, r]));
        for (const { id, cancelled, succeeded } of raced) {
          expect(cancelled !== succeeded, `exactly one of cancel and result wins for ${id}`).toBe(true);
          expect(states.get(id)!.state).toBe(cancelled ? 'cancelled' : 'success');
          // A cancel executes nothing; a refused result still counts its execution.
          expect(records.get(id)!.attempts).toBe(1);
          expect(records.get(id)!.result_json).toBe(cancelled ? null : '{"a":1}');
        }
      }));

    it('answers the states and records of 1,000 ids in one call', () =>
      withStore(async (store, ep) => {
        const ids = await seed(store, ep, 1000);
        await store.saveTransitions(ids.slice(0, 500).map((task_id) => ({ task_id, from: 'waiting-for-ep', to: 'running', at: 1001 })));
        await store.finishTasks(ids.slice(0, 250).map((id) => outcome(id, 'success')), []);
        const started = Date.now();
        const records = await store.readTasks(ids);
        const states = await store.readStates(ids);
        expect(Date.now() - started).toBeLessThan(5000);
        expect(records).toHaveLength(1000);
        const count = (s: TaskState) => [...states.values()].filter((r) => r.state === s).length;
        expect([count('success'), count('running'), count('waiting-for-ep')]).toEqual([250, 250, 500]);
      }));

    it('sees only its own endpoint\'s tasks', () =>
      withStore(async (mine, ep) => {
        const ids = await seed(mine, ep, 3);
        // Only `theirs` is touched in here: a Durable Object's storage is not reachable from another's context.
        await withStore(async (theirs, otherEp) => {
          const foreign = await seed(theirs, otherEp, 2);
          expect((await theirs.readStates(ids)).size).toBe(0);
          expect(await theirs.readTasks(ids)).toEqual([]);
          expect(await theirs.groupExists(idOf(ep, 0))).toBe(false);
          expect(await theirs.groupTasks(idOf(ep, 0))).toBeNull();
          // Writes aimed at the other endpoint's tasks change nothing there.
          await theirs.saveTransitions([{ task_id: ids[0]!, from: 'waiting-for-ep', to: 'running', at: 1 }]);
          const report = await theirs.finishTasks([outcome(ids[1]!, 'success')], [ids[2]!]);
          expect(report.finished).toEqual([]);
          expect((await theirs.readStates(foreign)).size).toBe(2);
        });
        const states = await mine.readStates(ids);
        expect([...states.values()].map((s) => s.state)).toEqual(['waiting-for-ep', 'waiting-for-ep', 'waiting-for-ep']);
        expect((await mine.readTasks(ids)).map((r) => r.attempts)).toEqual([0, 0, 0]);
      }));
  });
}

/** The clause for adapters with a TTL on records (Redis); the Durable Object's SQLite has none. */
export function expiringTaskStoreContract(adapter: string, withStore: WithStore): void {
  describe(`TaskStore contract, expiry: ${adapter}`, () => {
    it('forgets tasks and groups after their TTL', () =>
      withStore(
        async (store, ep) => {
          const ids = await seed(store, ep, 3);
          expect((await store.readStates(ids)).size).toBe(3);
          await vi.waitFor(async () => {
            expect((await store.readStates(ids)).size, 'the tasks to expire').toBe(0);
            expect(await store.groupExists(idOf(ep, 0)), 'the group to expire').toBe(false);
          }, { timeout: 10_000, interval: 100 });
          expect(await store.readTasks(ids)).toEqual([]);
          expect(await store.groupTasks(idOf(ep, 0))).toBeNull();
          // A result arriving after expiry stores nothing (and resurrects no record without a TTL).
          const report = await store.finishTasks([outcome(ids[0]!, 'success')], [ids[1]!]);
          expect(report.finished).toEqual([]);
          expect((await store.readStates(ids)).size).toBe(0);
        },
        { ttlSeconds: 1 },
      ));
  });
}
