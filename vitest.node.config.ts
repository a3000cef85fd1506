import { configDefaults, defineConfig } from 'vitest/config';

// Node-side tests: the unit tests beside their code in every zone but the gateway (whose tests run
// in workerd: vitest.gateway.config.ts), the build scripts' tests beside them, and the end-to-end
// runs against workerd in test/e2e. The endpoint's isolated-vm needs --no-node-snapshot, which the
// threads pool rejects, hence forks.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'src/gateway/**'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
