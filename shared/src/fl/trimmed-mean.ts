// FedTrimmedAvg: Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates" (ICML), coordinate-wise trimmed mean.
import { fitMetrics, trimCount, trimmedMean, validateFitResults } from './aggregate';
import { BaseStrategy } from './strategy';
import type { AggregateFitOutput, FitResult, StrategyName, StrategyOptions } from './strategy';

export interface TrimmedMeanParams {
  /** Fraction trimmed at each end, in [0, 0.5). Default 0.2 (as Flower). */
  beta?: number;
}

/**
 * Per coordinate, drops the ⌊beta·n⌋ smallest and largest client values and averages the rest
 * (unweighted). Note: with the default beta 0.2, fewer than 5 clients trims nothing (⌊0.2·4⌋ = 0),
 * so with our three hospitals this is the plain mean; it needs n ≥ 5, or beta ≥ 1/3 for n = 3.
 */
export class FedTrimmedMean extends BaseStrategy {
  readonly name: StrategyName = 'trimmed';
  readonly weightedSum = false;
  readonly beta: number;

  constructor(options: Partial<StrategyOptions> = {}, params: TrimmedMeanParams = {}) {
    super(options);
    this.beta = params.beta ?? 0.2;
    trimCount(1, this.beta); // validates beta
  }

  aggregateFit(_round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput {
    validateFitResults(global, results);
    return { weights: trimmedMean(results.map((r) => r.weights), this.beta), metrics: fitMetrics(results) };
  }
}
