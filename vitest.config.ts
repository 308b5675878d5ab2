import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['shared/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'e2e/**/*.test.ts', 'infra/test/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default is one fork per core less one: a single fork on CI's two cores, which then
    // waits while Chromium trains (the portal e2e file is ~12 min of mostly browser time). Two forks
    // at least, so the other suites run beside it.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
