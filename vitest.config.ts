import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The slowest files on CI's two cores (clean clone, seconds): train 635, portal e2e 562, image 293,
 * simulate-secagg 99, secagg protocol 64, compare 60, simulate-tabular ~60. Without a results cache (a fresh clone)
 * Vitest starts the largest files first, and a small slow file started last is the run's tail;
 * these start first, the rest in Vitest's own order.
 */
const SLOW_FIRST = [
  'apps/cli/src/commands/train.test.ts',
  'e2e/portal.e2e.test.ts',
  'apps/cli/src/image.test.ts',
  'apps/cli/src/commands/simulate-secagg.test.ts',
  'shared/src/secagg/protocol.test.ts',
  'apps/cli/src/commands/compare.test.ts',
  'apps/cli/src/commands/simulate-tabular.test.ts',
];

class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOW_FIRST.findIndex((s) => f.moduleId.replaceAll('\\', '/').endsWith(`/${s}`));
      return i < 0 ? SLOW_FIRST.length : i;
    };
    return base.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ['shared/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'e2e/**/*.test.ts', 'infra/test/**/*.test.ts'],
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default is one fork per core less one: a single fork on CI's two cores, which then
    // waits while Chromium trains (the portal e2e file is ~9 min of mostly browser time). Two forks
    // at least, so the other suites run beside it.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFirst },
  },
});
