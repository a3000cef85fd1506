// The Redis task store as the gateway's settings name it (TASK_STORE=redis): one place builds it
// from `env`, for the hubs (scoped to their endpoint) and for the routes that read tasks without a
// hub (GET /v2/tasks under Redis).

import { redisSettings, taskTtlSeconds, type GatewayEnv } from '../env';
import { redisClient } from './redis-client';
import { RedisTaskStore, type RedisTaskStoreOptions } from './redis-task-store';

export function redisTaskStoreFor(env: GatewayEnv, scope: Pick<RedisTaskStoreOptions, 'endpointId' | 'local'> = {}): RedisTaskStore {
  return new RedisTaskStore({ redis: redisClient(redisSettings(env)), ttlSeconds: taskTtlSeconds(env), ...scope });
}
