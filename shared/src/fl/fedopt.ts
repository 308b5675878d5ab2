// FedOpt: Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR), Algorithm 2.
import { AggregationError } from './aggregate';
import { FedAvg } from './fedavg';
import type { FitInstructionConfig, StrategyOptions, StrategyState } from './strategy';

export interface FedOptParams {
  /** Server learning rate η. */
  eta?: number;
  /**
   * Client learning rate η_l. When set, configureFit sends it as `learning_rate`; when absent (the
   * default) the run's own learning_rate (seed spec 3.2: Adam, 1e-3) goes to the clients unchanged.
   */
  etaL?: number;
  /** First-moment (momentum) decay β1. */
  beta1?: number;
  /** Second-moment decay β2 (FedAdam, FedYogi). */
  beta2?: number;
  /** Adaptivity τ: floor on the denominator √v + τ. */
  tau?: number;
}

/**
 * The defaults of our FedAdam and FedYogi (FedAdagrad: the same with β1 = 0, as Flower).
 *
 * η = 1e-2, τ = 1e-3 (Flower's FedYogi defaults; Reddi et al. found τ = 1e-3 and a server rate
 * around 10^-2…10^-1.5 good across their tasks). The adaptive step moves a coordinate by about η
 * whenever |Δ| ≫ τ, whatever Δ's size. Our clients run Adam at 1e-3 for 5 epochs of ~25–40 batches,
 * so a consistently-pushed weight moves by ~1e-2…1e-1 per round and a noisy one by ~1e-3: η = 1e-2
 * keeps the server step no larger than what local training already does (Flower's FedAdam default
 * η = 1e-1 would move every coordinate of a ~0.57M-parameter network initialised at ~0.05–0.1
 * scale by ~0.1 per round, noise included, and wreck it in a few rounds), and τ = 1e-3 (not Flower's
 * older 1e-9) keeps coordinates the clients barely moved (|Δ| ≲ 1e-3, i.e. noise) from being
 * amplified to full η-sized sign steps. β1 = 0.9, β2 = 0.99 are the paper's and Flower's.
 * η_l: the run's learning_rate is left alone (see FedOptParams.etaL).
 */
export const FEDOPT_DEFAULTS: Readonly<Required<Omit<FedOptParams, 'etaL'>>> = Object.freeze({ eta: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3 });

function requireIn(name: string, value: number, lo: number, hi: number, loOpen: boolean): void {
  const ok = Number.isFinite(value) && (loOpen ? value > lo : value >= lo) && value < hi;
  if (!ok) throw new RangeError(`${name} must be in ${loOpen ? '(' : '['}${lo}, ${hi}), got ${value}`);
}

/**
 * Server-side adaptive optimisation over FedAvg's mean. Per coordinate, with the pseudo-gradient
 * Δ = weightedAverage(client weights) − global:
 *   m ← β1·m + (1 − β1)·Δ;   v ← nextV(v, Δ²) (the variant);   w ← global + η_t·m / (√v + τ)
 * with m, v starting at 0 (as Flower) and η_t = η except FedAdam's bias correction (see stepSize).
 * m and v are kept as Float32Array (exactly what a checkpoint stores, so a restart resumes bit for
 * bit); the arithmetic is done in Float64. `step` counts the server updates made so far.
 */
export abstract class FedOpt extends FedAvg {
  readonly eta: number;
  readonly etaL: number | undefined;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  protected m: Float32Array | undefined;
  protected v: Float32Array | undefined;
  protected step = 0;

  constructor(options: Partial<StrategyOptions>, params: FedOptParams, defaults: Readonly<Required<Omit<FedOptParams, 'etaL'>>>) {
    super(options);
    this.eta = params.eta ?? defaults.eta;
    this.etaL = params.etaL;
    this.beta1 = params.beta1 ?? defaults.beta1;
    this.beta2 = params.beta2 ?? defaults.beta2;
    this.tau = params.tau ?? defaults.tau;
    requireIn('eta', this.eta, 0, Infinity, true);
    if (this.etaL !== undefined) requireIn('etaL', this.etaL, 0, Infinity, true);
    requireIn('beta1', this.beta1, 0, 1, false);
    requireIn('beta2', this.beta2, 0, 1, false);
    requireIn('tau', this.tau, 0, Infinity, true);
  }

  /** The variant's second-moment update, per coordinate, from the old v and Δ². */
  protected abstract nextV(v: number, deltaSquared: number): number;

  /** The server learning rate for the t-th update (t = 1, 2, …). */
  protected stepSize(_t: number): number {
    return this.eta;
  }

  override configureFit(round: number, base: FitInstructionConfig): FitInstructionConfig {
    const config = super.configureFit(round, base);
    if (this.etaL !== undefined) config.learning_rate = this.etaL;
    return config;
  }

  protected override applyMean(_round: number, global: Float32Array, mean: Float32Array): Float32Array {
    const len = global.length;
    if (this.m !== undefined && this.m.length !== len) {
      throw new AggregationError(undefined, `${this.name} optimizer state has ${this.m.length} values, the global model has ${len}: did the model change?`);
    }
    const m = this.m ?? new Float32Array(len);
    const v = this.v ?? new Float32Array(len);
    const t = this.step + 1;
    const lr = this.stepSize(t);
    const { beta1, tau } = this;
    const out = mean; // fresh from FedAvg: overwritten in place
    for (let i = 0; i < len; i++) {
      const g = global[i] as number;
      const d = (mean[i] as number) - g;
      const mi = beta1 * (m[i] as number) + (1 - beta1) * d;
      const vi = this.nextV(v[i] as number, d * d);
      m[i] = mi;
      v[i] = vi;
      out[i] = g + (lr * mi) / (Math.sqrt(vi) + tau);
    }
    this.m = m;
    this.v = v;
    this.step = t;
    return out;
  }

  /** { step } before the first update; { step, m, v } (copies) after. */
  override exportState(): StrategyState {
    if (this.m === undefined || this.v === undefined) return { step: this.step };
    return { step: this.step, m: Float32Array.from(this.m), v: Float32Array.from(this.v) };
  }

  override importState(state: StrategyState): void {
    const { step, m, v, ...rest } = state;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw new Error(`${this.name} state has unknown key(s) ${extra.join(', ')}`);
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) throw new Error(`${this.name} state: step must be an integer >= 0, got ${String(step)}`);
    if (m === undefined && v === undefined) {
      if (step !== 0) throw new Error(`${this.name} state: step is ${step} but m and v are missing`);
      this.m = undefined;
      this.v = undefined;
    } else {
      if (!(m instanceof Float32Array) || !(v instanceof Float32Array) || m.length !== v.length) {
        throw new Error(`${this.name} state: m and v must be Float32Arrays of equal length`);
      }
      this.m = Float32Array.from(m);
      this.v = Float32Array.from(v);
    }
    this.step = step;
  }
}
