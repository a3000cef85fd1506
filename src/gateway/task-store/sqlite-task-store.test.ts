// The Durable Object SQLite adapter of TaskStore, inside a real Durable Object's storage.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { GatewayEnv } from '../env';
import { SqliteTaskStore } from './sqlite-task-store';
import { taskStoreContract, type WithStore } from '../../../test/helpers/task-store-contract';

/** A fresh Durable Object (an id nobody registered) lends its storage to the store. */
const withSqliteStore: WithStore = async (use) => {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  await runInDurableObject(ns.get(ns.newUniqueId()), async (_hub, state) => {
    const store = new SqliteTaskStore(state.storage);
    store.createSchema();
    await use(store, crypto.randomUUID());
  });
};

taskStoreContract('Durable Object SQLite', withSqliteStore);

it('SQLite adapter: writes made alongside commit or roll back with the tasks', () =>
  withSqliteStore(async (store) => {
    const task = { task_id: '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.00000000000000000001', function_uuid: '00000000-0000-8000-8000-000000000001' };
    const batch = { task_group_id: '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.00000000000000000000', new_group: true, request_id: 'r', created_at: 1, workflow_id: null, campaign_id: null, resource_specification_json: null, tasks: [task] };
    await expect(
      store.createTasks(batch, () => {
        throw new Error('outbox write failed');
      }),
    ).rejects.toThrow('outbox write failed');
    expect((await store.readStates([task.task_id])).size).toBe(0);
    expect(await store.groupExists(batch.task_group_id)).toBe(false);
  }));

it('SQLite adapter: reads each state with its facts when asked, as its record holds them', () =>
  withSqliteStore(async (store, ep) => {
    const ids = [`${ep}.00000000000000000001`, `${ep}.00000000000000000002`];
    const base = { task_group_id: `${ep}.00000000000000000000`, created_at: 1, resource_specification_json: null };
    await store.createTasks({ ...base, new_group: true, request_id: 'r1', workflow_id: 'wf-1', campaign_id: 'c-1', tasks: [{ task_id: ids[0]!, function_uuid: '00000000-0000-8000-8000-000000000001' }] });
    await store.createTasks({ ...base, new_group: false, request_id: 'r2', workflow_id: null, campaign_id: null, tasks: [{ task_id: ids[1]!, function_uuid: '00000000-0000-8000-8000-000000000002' }] });
    await store.finishTasks([], [ids[1]!]);
    const states = await store.readStates(ids, true);
    for (const record of await store.readTasks(ids)) {
      const { task_group_id, function_uuid, attempts, workflow_id, campaign_id, submitter } = record;
      expect(states.get(record.task_id)!.facts).toEqual({ task_group_id, function_uuid, attempts, workflow_id, campaign_id, submitter });
    }
    expect(states.get(ids[1]!)!.facts!.attempts).toBe(1);
    // Without asking, no facts.
    expect((await store.readStates(ids)).get(ids[0]!)).not.toHaveProperty('facts');
  }));
