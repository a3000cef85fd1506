import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Gateway tests run inside workerd (Durable Objects, their WebSockets, KV and R2 included), against
// wrangler.toml's bindings; the secret that .dev.vars holds in development is set here. A global
// setup (Node) starts redis-server behind an Upstash-protocol proxy; its URL and token are bindings.
// The `gateway-redis` project runs the task and agent suites again with TASK_STORE=redis.
const secrets = { JWT_SECRET: 'test-secret-for-gateway-tests-only', GIT_SHA: 'test-sha' };

function workers(extra: Record<string, string>) {
  return cloudflareTest(({ inject }) => ({
    wrangler: { configPath: './wrangler.toml' },
    miniflare: { bindings: { ...secrets, UPSTASH_REDIS_REST_URL: inject('redisUrl'), UPSTASH_REDIS_REST_TOKEN: inject('redisToken'), ...extra } },
  }));
}

export default defineConfig({
  test: {
    projects: [
      {
        // Keepalive comments every second, so a test sees one without waiting 15 s.
        plugins: [workers({ EVENTS_KEEPALIVE_S: '1' })],
        test: {
          name: 'gateway',
          include: ['src/gateway/**/*.test.ts', 'test/gateway/**/*.test.ts'],
          globalSetup: ['./test/gateway/redis-global-setup.ts'],
          testTimeout: 30_000,
          // The route fuzz (test/gateway/route-fuzz.test.ts): a fixed seed and count unless `npm run fuzz` sets them.
          provide: { fuzzSeed: process.env.FUZZ_SEED ?? '', fuzzRuns: process.env.FUZZ_RUNS ?? '' },
        },
      },
      {
        plugins: [workers({ TASK_STORE: 'redis' })],
        test: {
          name: 'gateway-redis',
          include: ['test/gateway/tasks.test.ts', 'test/gateway/task-list.test.ts', 'test/gateway/events-store.test.ts', 'test/gateway/agent-socket.test.ts', 'test/gateway/openapi-walk.test.ts', 'test/gateway/rate-limit.test.ts', 'test/gateway/keys.test.ts', 'test/gateway/sharing.test.ts'],
          globalSetup: ['./test/gateway/redis-global-setup.ts'],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
