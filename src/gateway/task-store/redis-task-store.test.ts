// The Redis adapter of TaskStore (@upstash/redis over REST), against a real redis-server behind
// the Upstash-protocol proxy that the global setup started (test/helpers/upstash-proxy.ts).

import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { GatewayEnv } from '../env';
import { redisClient } from './redis-client';
import { RedisTaskStore } from './redis-task-store';
import { expiringTaskStoreContract, taskStoreContract, type WithStore } from '../../../test/helpers/task-store-contract';

const gatewayEnv = env as unknown as GatewayEnv;
const redis = () => redisClient({ url: gatewayEnv.UPSTASH_REDIS_REST_URL!, token: gatewayEnv.UPSTASH_REDIS_REST_TOKEN! });

/** Every store gets a fresh endpoint id: its keys share nothing with any other test's. */
const withRedisStore: WithStore = async (use, options = {}) => {
  const endpointId = crypto.randomUUID();
  await use(new RedisTaskStore({ redis: redis(), ttlSeconds: options.ttlSeconds ?? 600, endpointId }), endpointId);
};

describe('Redis', () => {
  taskStoreContract('Redis (@upstash/redis)', withRedisStore);
  expiringTaskStoreContract('Redis (@upstash/redis)', withRedisStore);

  it('Redis adapter: runs alongside writes after its own, and not at all when its write fails', async () => {
    const endpointId = crypto.randomUUID();
    const order: string[] = [];
    const store = new RedisTaskStore({ redis: redis(), ttlSeconds: 600, endpointId, local: (writes) => (order.push('local'), writes()) });
    const task = { task_id: `${endpointId}.00000000000000000001`, function_uuid: '00000000-0000-8000-8000-000000000001' };
    const batch = { task_group_id: `${endpointId}.00000000000000000000`, new_group: true, request_id: 'r', created_at: 1, workflow_id: null, campaign_id: null, resource_specification_json: null, tasks: [task] };
    await store.createTasks(batch, () => {
      order.push('outbox');
    });
    expect(order).toEqual(['local', 'outbox']);
    expect((await store.readStates([task.task_id])).get(task.task_id)?.state).toBe('waiting-for-ep');

    const broken = new RedisTaskStore({ redis: redisClient({ url: gatewayEnv.UPSTASH_REDIS_REST_URL!, token: 'wrong-token' }), ttlSeconds: 600, endpointId });
    let ran = false;
    await expect(broken.createTasks({ ...batch, tasks: [{ ...task, task_id: `${endpointId}.00000000000000000002` }] }, () => void (ran = true))).rejects.toThrow();
    expect(ran).toBe(false);
  });

  it('Redis adapter: keys carry the endpoint as a hash tag and expire', async () => {
    const endpointId = crypto.randomUUID();
    const store = new RedisTaskStore({ redis: redis(), ttlSeconds: 1234, endpointId });
    const taskId = `${endpointId}.00000000000000000001`;
    await store.createTasks({ task_group_id: `${endpointId}.00000000000000000000`, new_group: true, request_id: 'r', created_at: 1, workflow_id: null, campaign_id: null, resource_specification_json: null, tasks: [{ task_id: taskId, function_uuid: '00000000-0000-8000-8000-000000000001' }] });
    const ttl = Number(await redis().ttl(`ferry:{${endpointId}}:task:${taskId}`));
    expect(ttl).toBeGreaterThan(1200);
    expect(ttl).toBeLessThanOrEqual(1234);
    expect(Number(await redis().ttl(`ferry:{${endpointId}}:group:${endpointId}.00000000000000000000`))).toBeGreaterThan(1200);
  });
});
