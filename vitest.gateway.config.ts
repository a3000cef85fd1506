import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// Gateway tests run inside workerd (Durable Objects, their WebSockets, KV and R2 included), against
// wrangler.toml's bindings; the secret that .dev.vars holds in development is set here.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: { bindings: { JWT_SECRET: 'test-secret-for-gateway-tests-only', GIT_SHA: 'test-sha' } },
    }),
  ],
  test: {
    include: ['src/gateway/**/*.test.ts', 'test/gateway/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
