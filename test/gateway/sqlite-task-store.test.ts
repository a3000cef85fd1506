// The Durable Object SQLite adapter of TaskStore, inside a real Durable Object's storage.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { GatewayEnv } from '../../src/gateway/env';
import { SqliteTaskStore } from '../../src/gateway/task-store/sqlite-task-store';
import { taskStoreContract, type WithStore } from './task-store-contract';

/** A fresh Durable Object (an id nobody registered) lends its storage to the store. */
const withSqliteStore: WithStore = async (use) => {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  await runInDurableObject(ns.get(ns.newUniqueId()), async (_hub, state) => {
    const store = new SqliteTaskStore(state.storage);
    store.createSchema();
    await use(store, crypto.randomUUID());
  });
};

taskStoreContract('Durable Object SQLite', withSqliteStore, { ttl: false });

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
