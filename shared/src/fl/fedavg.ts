// FedAvg: McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from Decentralized Data" (AISTATS).
import { assertValidWeights, fitMetrics, validateFitResults, weightedAverage } from './aggregate';
import { BaseStrategy } from './strategy';
import type { AggregateFitOutput, FitResult, StrategyName } from './strategy';

/**
 * The new global model is the num_samples-weighted mean of the clients' models. A weighted sum, so
 * secure aggregation and HE can compute the mean and hand it to aggregateFromMean. Subclasses that
 * post-process the mean (FedOpt) override applyMean; FedProx only changes the fit config.
 */
export class FedAvg extends BaseStrategy {
  readonly name: StrategyName = 'fedavg';
  readonly weightedSum = true;

  aggregateFit(round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput {
    validateFitResults(global, results);
    const mean = weightedAverage(
      results.map((r) => r.weights),
      results.map((r) => r.numSamples),
    );
    return { weights: this.applyMean(round, global, mean), metrics: fitMetrics(results) };
  }

  aggregateFromMean(round: number, global: Float32Array, mean: Float32Array): Float32Array {
    assertValidWeights(global, undefined, undefined, 'the global model');
    assertValidWeights(mean, global.length, undefined, 'the aggregated mean');
    return this.applyMean(round, global, Float32Array.from(mean));
  }

  /** The new global weights from the validated weighted mean (which this call may return or overwrite). */
  protected applyMean(_round: number, _global: Float32Array, mean: Float32Array): Float32Array {
    return mean;
  }
}
