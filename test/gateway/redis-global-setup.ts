// Node side of the gateway tests: one real redis-server behind the Upstash-protocol proxy for the
// whole run; its URL and token reach workerd as bindings (vitest.gateway.config.ts). Without
// redis-server the Redis half is skipped locally, and fails under CI=true.

import type { TestProject } from 'vitest/node';
import { redisServerBinary } from '../helpers/redis-server';
import { startRedisWithProxy, type RedisForTests } from '../helpers/upstash-proxy';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisToken: string;
  }
}

let redis: RedisForTests | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (!redisServerBinary()) {
    if (process.env.CI === 'true') throw new Error('redis-server is missing (apt-get install -y redis-server): CI runs the Redis TaskStore tests, it never skips them');
    console.warn('redis-server is missing: the Redis TaskStore tests are skipped (they fail under CI=true)');
    project.provide('redisUrl', '');
    project.provide('redisToken', '');
    return;
  }
  redis = await startRedisWithProxy();
  project.provide('redisUrl', redis.url);
  project.provide('redisToken', redis.token);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}
