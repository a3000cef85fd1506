// Node side of the gateway tests: one real redis-server behind the Upstash-protocol proxy for the
// whole run; its URL and token reach workerd as bindings (vitest.gateway.config.ts). Without
// redis-server the setup fails, naming the package: the Redis half never skips.

import type { TestProject } from 'vitest/node';
import { startRedisWithProxy, type RedisForTests } from './upstash-proxy';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisToken: string;
  }
}

let redis: RedisForTests | undefined;

export async function setup(project: TestProject): Promise<void> {
  redis = await startRedisWithProxy();
  project.provide('redisUrl', redis.url);
  project.provide('redisToken', redis.token);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}
