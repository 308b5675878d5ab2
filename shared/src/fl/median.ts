// FedMedian: Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates" (ICML), coordinate-wise median.
import { coordinateMedian, fitMetrics, validateFitResults } from './aggregate';
import { BaseStrategy } from './strategy';
import type { AggregateFitOutput, FitResult, StrategyName } from './strategy';

/** Per coordinate, the (unweighted) median of the clients' values; an even count averages the two middle ones. Not a weighted sum. */
export class FedMedian extends BaseStrategy {
  readonly name: StrategyName = 'median';
  readonly weightedSum = false;

  aggregateFit(_round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput {
    validateFitResults(global, results);
    return { weights: coordinateMedian(results.map((r) => r.weights)), metrics: fitMetrics(results) };
  }
}
