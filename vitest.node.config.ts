import { defineConfig } from 'vitest/config';

// Node-side tests: runtime-free code, the endpoint (isolated-vm needs --no-node-snapshot, which
// the threads pool rejects, hence forks), the SDK, the CLI, and end-to-end runs against workerd.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'src/endpoint/**/*.test.ts', 'src/functions/**/*.test.ts', 'src/protocol/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
