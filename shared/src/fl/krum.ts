// Krum / Multi-Krum: Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent" (NeurIPS).
import { fitMetrics, multiKrum, validateFitResults } from './aggregate';
import { BaseStrategy } from './strategy';
import type { AggregateFitOutput, FitResult, StrategyName, StrategyOptions } from './strategy';

export interface KrumParams {
  /**
   * f, the number of Byzantine clients to tolerate. Default (undefined): the most Krum's guarantee
   * n ≥ 2f + 3 allows for the n results of the round, ⌊(n − 3)/2⌋, at least 0 (0 for 3 hospitals,
   * 1 for 5). An explicit f is used as is; each score sums the n − f − 2 nearest distances, at least 1.
   */
  numMaliciousClients?: number;
  /** m, how many lowest-score models to average. Default 1 (Krum); m > 1 is Multi-Krum; clamped to n. */
  numClientsToKeep?: number;
}

/** f when none is configured: the largest with n ≥ 2f + 3, at least 0. */
export function defaultByzantineCount(n: number): number {
  return Math.max(0, Math.floor((n - 3) / 2));
}

/**
 * Scores every client's model by its squared distances to its n − f − 2 nearest neighbours, keeps the
 * m most central and averages them weighted by num_samples (as Flower; the paper's plain mean is
 * the same for m = 1). Not a weighted sum of all clients. `lastSelected` names the hospitals kept.
 */
export class Krum extends BaseStrategy {
  readonly name: StrategyName = 'krum';
  readonly weightedSum = false;
  readonly numMaliciousClients: number | undefined;
  readonly numClientsToKeep: number;
  private selected: readonly string[] = [];

  constructor(options: Partial<StrategyOptions> = {}, params: KrumParams = {}) {
    super(options);
    const f = params.numMaliciousClients;
    if (f !== undefined && !(Number.isInteger(f) && f >= 0)) throw new RangeError(`numMaliciousClients must be an integer >= 0, got ${f}`);
    const m = params.numClientsToKeep ?? 1;
    if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`numClientsToKeep must be an integer >= 1, got ${m}`);
    this.numMaliciousClients = f;
    this.numClientsToKeep = m;
  }

  /** Hospitals whose models the last aggregateFit averaged, most central first. */
  get lastSelected(): readonly string[] {
    return this.selected;
  }

  aggregateFit(_round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput {
    validateFitResults(global, results);
    const f = this.numMaliciousClients ?? defaultByzantineCount(results.length);
    const { average, selected } = multiKrum(
      results.map((r) => r.weights),
      f,
      this.numClientsToKeep,
      results.map((r) => r.numSamples),
    );
    this.selected = Object.freeze(selected.map((i) => (results[i] as FitResult).hospitalId));
    return { weights: average, metrics: fitMetrics(results) };
  }
}
