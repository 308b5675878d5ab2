/**
 * Readers of a run's stats slot (`Store.getFeatureStats`, a `RunStats`): a risk run's feature
 * statistics or a tabular run's schema. A reader that knows the risk model only asks `riskStatsOf`,
 * which refuses a tabular run by name instead of misreading its schema as feature statistics.
 */
import type { FeatureStats } from '../data/features';
import { isTabularSchema } from '../tabular/schema';
import type { RunStats } from './store';

/** `what` (an export format, a command) handles the risk model only, and run `runId` is a tabular run. */
export class TabularRunError extends Error {
  constructor(
    readonly runId: string,
    what: string,
  ) {
    super(`run ${runId} is a tabular run: ${what} supports the risk model only`);
    this.name = 'TabularRunError';
  }
}

/** The risk model's feature statistics of run `runId`, or a TabularRunError naming `what` when it is a tabular run. */
export function riskStatsOf(runId: string, stats: RunStats, what: string): FeatureStats {
  if (isTabularSchema(stats)) throw new TabularRunError(runId, what);
  return stats;
}
