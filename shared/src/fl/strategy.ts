/**
 * The strategy contract, Flower's split in TypeScript: the round engine asks a strategy who trains
 * (sampleFit), with what config (configureFit), how the replies combine (aggregateFit), and the same
 * for evaluation. A strategy knows no transport, no clock and no store; secure aggregation, HE and DP
 * wrap it rather than fork it. One strategy per file; the arithmetic lives in aggregate.ts.
 */
import { evaluateMetrics } from './aggregate';

export { AggregationError } from './aggregate';

export type StrategyName = 'fedavg' | 'fedprox' | 'fedadam' | 'fedyogi' | 'fedadagrad' | 'median' | 'trimmed' | 'krum';

/** What a client receives for local training. */
export interface FitInstructionConfig {
  local_epochs: number;
  batch_size: number;
  learning_rate: number;
  /** FedProx's proximal coefficient μ; 0 for every other strategy. */
  proximal_mu: number;
  [k: string]: number | string | boolean;
}

/** A client's reply to a train stage. */
export interface FitResult {
  hospitalId: string;
  /** The client's full local model after training (flat, the global model's layout). */
  weights: Float32Array;
  /** Examples trained on: the client's weight in averaging. */
  numSamples: number;
  /** E.g. train_loss, train_accuracy. */
  metrics: Record<string, number>;
}

export interface EvaluateResult {
  hospitalId: string;
  numExamples: number;
  metrics: Record<string, number>;
}

export interface AggregateFitOutput {
  weights: Float32Array;
  /** num_samples-weighted average of the clients' fit metrics, plus num_examples (the total). */
  metrics: Record<string, number>;
}

/** Who takes part in a round (seed spec 3.1; defaults in DEFAULT_STRATEGY_OPTIONS). */
export interface StrategyOptions {
  fractionFit: number;
  fractionEvaluate: number;
  minFitClients: number;
  minEvaluateClients: number;
  minAvailableClients: number;
}

/** Seed spec 3.1: every client trains and evaluates, and a round needs three. */
export const DEFAULT_STRATEGY_OPTIONS: Readonly<StrategyOptions> = Object.freeze({
  fractionFit: 1.0,
  fractionEvaluate: 1.0,
  minFitClients: 3,
  minEvaluateClients: 3,
  minAvailableClients: 3,
});

export type StrategyState = Record<string, Float32Array | number>;

export interface Strategy {
  readonly name: StrategyName;
  readonly options: StrategyOptions;
  /** true when aggregateFit is a num_samples-weighted sum of client weights (secure aggregation / HE can wrap it). */
  readonly weightedSum: boolean;
  /**
   * Clients to train this round: max(minFitClients, ⌈fractionFit·n⌉) of the n distinct `available`
   * ids (all of them when that is ≥ n), sampled with `random` (a () => [0, 1) function) and returned
   * sorted. Deterministic given `random` and the set of ids (their order does not matter). Throws
   * NotEnoughClientsError when fewer than minAvailableClients or minFitClients are available.
   */
  sampleFit(available: readonly string[], random: () => number): string[];
  /** As sampleFit with fractionEvaluate / minEvaluateClients; fractionEvaluate 0 turns federated evaluation off ([]), as in Flower. */
  sampleEvaluate(available: readonly string[], random: () => number): string[];
  /** Client config for this round: a copy of `base` with the strategy's settings (FedProx sets proximal_mu, others set it to 0). */
  configureFit(round: number, base: FitInstructionConfig): FitInstructionConfig;
  /**
   * New global weights from the current global and the clients' results. Validates inputs: every
   * result's weights has the global's length, all finite, numSamples > 0, one result per hospital —
   * else throws AggregationError naming the hospital and the problem.
   */
  aggregateFit(round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput;
  /**
   * Present exactly when `weightedSum` is true: the new global weights given the num_samples-weighted
   * mean of the clients' weights computed elsewhere (e.g. unmasked by secure aggregation or decrypted
   * after HE). aggregateFit(r, g, results).weights equals aggregateFromMean(r, g, weightedAverage(results)).
   * FedAvg returns the mean; FedOpt variants take their server optimizer step (and advance their state).
   */
  aggregateFromMean?(round: number, global: Float32Array, mean: Float32Array): Float32Array;
  /**
   * num_examples-weighted averages of every metric name, plus fairness over the per-hospital
   * `accuracy` (or `test_accuracy`) metric: performance_variance (population variance),
   * min_hospital_accuracy, max_hospital_accuracy, and num_examples (the total).
   */
  aggregateEvaluate(round: number, results: readonly EvaluateResult[]): Record<string, number>;
  /** Server-side optimizer state (FedOpt m/v, step counter) for checkpoints: a restart must resume identically. Stateless strategies return {}. Returns copies. */
  exportState(): StrategyState;
  /** Restores exportState's output (copied in). Throws a clear Error for state of the wrong shape. */
  importState(state: StrategyState): void;
}

/** Too few clients are connected for a round to start under the strategy's minimums. */
export class NotEnoughClientsError extends Error {
  constructor(
    readonly available: number,
    readonly required: number,
    message: string,
  ) {
    super(message);
    this.name = 'NotEnoughClientsError';
  }
}

function requireFraction(name: string, value: number, allowZero: boolean): void {
  const ok = Number.isFinite(value) && value <= 1 && (allowZero ? value >= 0 : value > 0);
  if (!ok) throw new RangeError(`${name} must be in ${allowZero ? '[0, 1]' : '(0, 1]'}, got ${value}`);
}

function requireCount(name: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
}

/** DEFAULT_STRATEGY_OPTIONS overlaid with `options`, validated (fractions in range, counts integers ≥ 0), frozen. */
export function resolveStrategyOptions(options: Partial<StrategyOptions> = {}): Readonly<StrategyOptions> {
  const o: StrategyOptions = {
    fractionFit: options.fractionFit ?? DEFAULT_STRATEGY_OPTIONS.fractionFit,
    fractionEvaluate: options.fractionEvaluate ?? DEFAULT_STRATEGY_OPTIONS.fractionEvaluate,
    minFitClients: options.minFitClients ?? DEFAULT_STRATEGY_OPTIONS.minFitClients,
    minEvaluateClients: options.minEvaluateClients ?? DEFAULT_STRATEGY_OPTIONS.minEvaluateClients,
    minAvailableClients: options.minAvailableClients ?? DEFAULT_STRATEGY_OPTIONS.minAvailableClients,
  };
  requireFraction('fractionFit', o.fractionFit, false);
  requireFraction('fractionEvaluate', o.fractionEvaluate, true);
  requireCount('minFitClients', o.minFitClients);
  requireCount('minEvaluateClients', o.minEvaluateClients);
  requireCount('minAvailableClients', o.minAvailableClients);
  return Object.freeze(o);
}

/**
 * How many of n clients a stage uses: max(minimum, ⌈fraction·n⌉), at most n. The ceiling ignores
 * binary rounding noise (0.55 × 100 is 55.00000000000001 in floating point, and must give 55).
 */
export function sampleSize(n: number, fraction: number, minimum: number): number {
  return Math.min(n, Math.max(minimum, Math.ceil(fraction * n - 1e-9)));
}

/**
 * `count` distinct ids drawn uniformly from `available` (de-duplicated and sorted first, so the
 * result depends only on the set and on `random`), by a partial Fisher–Yates shuffle; returned sorted.
 */
export function sampleClients(available: readonly string[], count: number, random: () => number): string[] {
  const pool = [...new Set(available)].sort();
  if (count >= pool.length) return pool;
  for (let i = 0; i < count; i++) {
    const r = random();
    if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return a number in [0, 1), got ${r}`);
    const j = i + Math.floor(r * (pool.length - i));
    const tmp = pool[i] as string;
    pool[i] = pool[j] as string;
    pool[j] = tmp;
  }
  return pool.slice(0, count).sort();
}

/**
 * What every strategy shares: options, client sampling, the fit config, evaluate-metric aggregation
 * and (empty) state. Subclasses supply name, weightedSum and aggregateFit.
 */
export abstract class BaseStrategy implements Strategy {
  abstract readonly name: StrategyName;
  abstract readonly weightedSum: boolean;
  readonly options: Readonly<StrategyOptions>;

  constructor(options: Partial<StrategyOptions> = {}) {
    this.options = resolveStrategyOptions(options);
  }

  sampleFit(available: readonly string[], random: () => number): string[] {
    return this.sample('fit', available, random, this.options.fractionFit, this.options.minFitClients, 'minFitClients');
  }

  sampleEvaluate(available: readonly string[], random: () => number): string[] {
    if (this.options.fractionEvaluate === 0) return [];
    return this.sample('evaluate', available, random, this.options.fractionEvaluate, this.options.minEvaluateClients, 'minEvaluateClients');
  }

  private sample(stage: string, available: readonly string[], random: () => number, fraction: number, minimum: number, minName: string): string[] {
    const n = new Set(available).size;
    const { minAvailableClients } = this.options;
    if (n < minAvailableClients) {
      throw new NotEnoughClientsError(n, minAvailableClients, `${this.name}: ${n} client(s) available for ${stage}, minAvailableClients is ${minAvailableClients}`);
    }
    if (n < minimum) {
      throw new NotEnoughClientsError(n, minimum, `${this.name}: ${n} client(s) available for ${stage}, ${minName} is ${minimum}`);
    }
    return sampleClients(available, sampleSize(n, fraction, minimum), random);
  }

  configureFit(_round: number, base: FitInstructionConfig): FitInstructionConfig {
    return { ...base, proximal_mu: 0 };
  }

  abstract aggregateFit(round: number, global: Float32Array, results: readonly FitResult[]): AggregateFitOutput;

  aggregateEvaluate(_round: number, results: readonly EvaluateResult[]): Record<string, number> {
    return evaluateMetrics(results);
  }

  exportState(): StrategyState {
    return {};
  }

  importState(state: StrategyState): void {
    const keys = Object.keys(state);
    if (keys.length > 0) throw new Error(`${this.name} keeps no server state, but the state to import has ${keys.join(', ')}: was it saved by another strategy?`);
  }
}
