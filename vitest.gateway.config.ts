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
          include: ['src/gateway/**/*.test.ts'],
          globalSetup: ['./test/helpers/redis-global-setup.ts'],
          testTimeout: 30_000,
          // The route fuzz (src/gateway/route-fuzz.test.ts): a fixed seed and count unless `npm run fuzz` sets them.
          provide: { fuzzSeed: process.env.FUZZ_SEED ?? '', fuzzRuns: process.env.FUZZ_RUNS ?? '' },
        },
      },
      {
        plugins: [workers({ TASK_STORE: 'redis' })],
        test: {
          name: 'gateway-redis',
          include: ['src/gateway/routes/tasks.test.ts', 'src/gateway/routes/task-list.test.ts', 'src/gateway/routes/events-store.test.ts', 'src/gateway/endpoint-hub/agent-socket.test.ts', 'src/gateway/openapi-walk.test.ts', 'src/gateway/rate-limit/rate-limit.test.ts', 'src/gateway/routes/keys.test.ts', 'src/gateway/routes/sharing.test.ts'],
          globalSetup: ['./test/helpers/redis-global-setup.ts'],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
