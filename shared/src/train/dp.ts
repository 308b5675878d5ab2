/**
 * DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy", Algorithm 1) as the
 * accountant assumes it (Mironov, Talwar, Zhang 2019: the sampled Gaussian mechanism):
 *
 * - each step's lot is a Poisson sample: every labelled example joins independently with
 *   probability q = batch_size / n (so lots vary in size; an empty lot still gets its noise);
 * - each example's gradient of the data loss is clipped to L2 norm ≤ C over all parameters;
 * - the clipped gradients are summed and the sum is privatised on an integer grid with discrete
 *   Gaussian noise (`discreteNoisySum`: Canonne, Kamath & Steinke 2020, exact sampling from the
 *   CSPRNG — no floating-point Gaussian, so no Mironov-2012-style leak from the noise's low bits),
 *   then divided by the expected lot size q·n (Opacus's "mean" reduction with Poisson sampling);
 * - the FedProx term μ(w − w_global) does not touch the data, so it is added after the noise and
 *   costs no privacy.
 *
 * Per-example clipping runs in one recorded batched pass (./dp-fast.ts, ghost norms + book-keeping)
 * for models that support it, and otherwise — or with perExample: 'naive' — one backward pass per
 * example, the reference the fast path is tested against.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addMany } from '../model/nn';
import type { FeatureBatch } from '../data/features';
import { cryptoRandom, type RandomSource } from '../util/csprng';
import { cryptoIntegers, discreteGaussians, MAX_SIGMA2, type UniformIntegers } from '../privacy/discrete-gaussian';
import { disposeInputs, inputsFor, type TrainableModel } from './train';
import { clippedGradientSumFast, type RecordingModel } from './dp-fast';

/** Models that can record their parameter uses say so (MultimodalRiskClassifier with the fast LSTM). */
function isRecordingModel(model: TrainableModel): model is RecordingModel {
  return (model as { recordsParameterUses?: boolean }).recordsParameterUses === true;
}

export interface DpSgdConfig {
  /** σ: noise standard deviation as a multiple of maxGradNorm. 0 switches noise off (tests only: not private). */
  noiseMultiplier: number;
  /** C: per-example gradient L2 bound over all parameters. */
  maxGradNorm: number;
  /** Randomness for Poisson sampling; the CSPRNG unless a test passes a seeded source. */
  random?: RandomSource;
  /** Uniform integers for the discrete Gaussian noise; the CSPRNG unless a test passes a seeded source. */
  noise?: UniformIntegers;
  /**
   * How per-example gradients are clipped: 'fast' (default; one recorded batched pass, ./dp-fast.ts,
   * for models that record their parameter uses) or 'naive' (one backward pass per example, the
   * reference).
   */
  perExample?: 'fast' | 'naive';
}

export function validateDpSgd(c: DpSgdConfig): void {
  if (!(Number.isFinite(c.noiseMultiplier) && c.noiseMultiplier >= 0)) throw new Error(`noise_multiplier must be a finite number ≥ 0, got ${c.noiseMultiplier}`);
  if (!(Number.isFinite(c.maxGradNorm) && c.maxGradNorm > 0)) throw new Error(`max_grad_norm must be a finite number > 0, got ${c.maxGradNorm}`);
}

/** Poisson sampling: each row joins with probability q, independently. */
export function poissonSample(rows: readonly number[], q: number, random: RandomSource = cryptoRandom): number[] {
  if (!(q > 0 && q <= 1)) throw new Error(`sample rate must be in (0, 1], got ${q}`);
  const u = new Float64Array(rows.length);
  random.uniforms(u);
  return rows.filter((_, i) => (u[i] as number) < q);
}

export interface ClippedSum {
  /** Σ_i clip(g_i), one tensor per variable (caller disposes). */
  sum: tf.Tensor[];
  /** ‖g_i‖ before clipping, per example (for tests and diagnostics). */
  norms: number[];
  /** Σ_i loss_i. */
  lossSum: number;
}

/** Per-example gradients of the data loss, each clipped to `maxGradNorm`, summed. */
export async function clippedGradientSum(model: TrainableModel, batch: FeatureBatch, rows: readonly number[], maxGradNorm: number): Promise<ClippedSum> {
  const vars = model.params.map((p) => p.variable);
  let sum: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
  const norms: number[] = [];
  let lossSum = 0;
  for (const r of rows) {
    const inputs = inputsFor(batch, [r]);
    const label = tf.tensor1d([batch.labels[r] as number], 'int32');
    const { value, grads } = tf.variableGrads(() => model.loss(inputs, label, { training: true }), vars);
    disposeInputs(inputs);
    label.dispose();
    const gs = vars.map((v) => grads[v.name] as tf.Tensor);
    const sq = tf.tidy(() => addMany(gs.map((g) => tf.sum(tf.square(g)))));
    const [norm, loss] = await Promise.all([sq.data(), value.data()]);
    sq.dispose();
    value.dispose();
    const n = Math.sqrt(norm[0] as number);
    norms.push(n);
    lossSum += loss[0] as number;
    const scale = Math.min(1, maxGradNorm / (n + 1e-12));
    const next = tf.tidy(() => gs.map((g, i) => tf.add(sum[i] as tf.Tensor, scale === 1 ? g : tf.mul(g, scale))));
    tf.dispose(sum);
    tf.dispose(gs);
    sum = next;
  }
  return { sum, norms, lossSum };
}

/** Grid steps per C: the clipped sum is rounded to multiples of γ = C / GRID_RESOLUTION before the noise. */
export const GRID_RESOLUTION = 2 ** 16;

/** The discrete mechanism of one step, as `discreteNoisySum` applies it. */
export interface DiscreteMechanism {
  /** Grid spacing γ in gradient units. */
  gamma: number;
  /** Grid steps per C (GRID_RESOLUTION, or less where σ is so large that σ_Z² would pass the sampler's 2^50). */
  resolution: number;
  /**
   * Integer L2 sensitivity Δ of round(Σ clip(g_i) / γ): adding one example moves the sum by ≤ C/γ in
   * L2 and the rounding of each of the d coordinates by < 1, so Δ = resolution + ⌈√d⌉.
   */
  sensitivity: number;
  /** Variance parameter of the integer noise, σ_Z² = (σ·Δ)², as a rational rounded up (never less noise than claimed). */
  sigma2: { num: bigint; den: bigint };
}

/**
 * The grid and the integer noise for `dims` coordinates at noise multiplier σ. The accountant is
 * given σ itself: the integer noise has σ_Z ≥ σ·Δ for an integer sensitivity Δ, i.e. noise
 * multiplier σ_Z / Δ ≥ σ for the sampled mechanism. For integer Rényi orders the sampled Gaussian's
 * moment bound (Mironov, Talwar & Zhang 2019, §3.3) holds for the discrete Gaussian too, since
 * N_Z(0, σ²) is σ²-subgaussian, E[e^{tX}] ≤ e^{t²σ²/2} (Canonne, Kamath & Steinke 2020, §2), so
 * each term of the binomial expansion of E[(μ₁/μ₀)^α] is bounded by the continuous one — hence the
 * accountant's integer orders, DP_SGD_ORDERS.
 */
export function discreteMechanism(dims: number, noiseMultiplier: number, maxGradNorm: number): DiscreteMechanism {
  if (!(Number.isSafeInteger(dims) && dims > 0)) throw new Error(`dims must be a positive integer, got ${dims}`);
  validateDpSgd({ noiseMultiplier, maxGradNorm });
  if (!(noiseMultiplier > 0)) throw new Error('the discrete mechanism needs noise_multiplier > 0');
  const root = Math.ceil(Math.sqrt(dims));
  let resolution = GRID_RESOLUTION;
  // σ_Z = σ·Δ must stay ≤ 2^24 (σ_Z² ≤ 2^48 < the sampler's 2^50): a coarser grid for very large σ.
  while (resolution > 1 && noiseMultiplier * (resolution + root) > 2 ** 24) resolution /= 2;
  const sensitivity = resolution + root;
  const sd = noiseMultiplier * sensitivity;
  if (sd * sd > MAX_SIGMA2) throw new Error(`noise_multiplier ${noiseMultiplier} is too large for ${dims} coordinates (σ_Z² > 2^50)`);
  // σ_Z² = (σΔ)² rounded up to a multiple of 2^-20; the float product is nudged up by 2^-40 relative first.
  const den = 2n ** 20n;
  const num = BigInt(Math.ceil(sd * sd * 2 ** 20 * (1 + 2 ** -40)));
  return { gamma: maxGradNorm / resolution, resolution, sensitivity, sigma2: { num, den } };
}

/**
 * Privatises a clipped gradient sum: each coordinate is rounded to the grid, integer noise from
 * the discrete Gaussian N_Z(0, σ_Z²) is added (exact sampler, ../privacy/discrete-gaussian.ts), and
 * the integers are mapped back to gradient units (post-processing). Returns new tensors.
 */
export async function discreteNoisySum(sum: readonly tf.Tensor[], noiseMultiplier: number, maxGradNorm: number, source: UniformIntegers = cryptoIntegers()): Promise<tf.Tensor[]> {
  const dims = sum.reduce((n, t) => n + t.size, 0);
  const mech = discreteMechanism(dims, noiseMultiplier, maxGradNorm);
  const out: tf.Tensor[] = [];
  for (const t of sum) {
    const v = await t.data();
    const z = discreteGaussians(v.length, mech.sigma2, source);
    const noisy = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) noisy[i] = (Math.round((v[i] as number) / mech.gamma) + (z[i] as number)) * mech.gamma;
    out.push(tf.tensor(noisy, t.shape, 'float32'));
  }
  return out;
}

export interface DpStepResult {
  /** Examples in this step's Poisson lot. */
  lotSize: number;
  /** Mean data loss over the lot (NaN for an empty lot). */
  loss: number;
  /** Examples whose gradient was clipped. */
  clipped: number;
}

/**
 * One DP-SGD step: Poisson lot from `rows`, clipped per-example gradients, noise, division by the
 * expected lot size, plus the FedProx gradient, applied by `optimizer`.
 */
export async function dpSgdStep(
  model: TrainableModel,
  optimizer: tf.Optimizer,
  batch: FeatureBatch,
  rows: readonly number[],
  sampleRate: number,
  dp: DpSgdConfig,
  prox?: { mu: number; anchors: readonly tf.Tensor[] },
): Promise<DpStepResult> {
  const random = dp.random ?? cryptoRandom;
  const lot = poissonSample(rows, sampleRate, random);
  const expected = sampleRate * rows.length;
  const { sum, norms, lossSum } =
    dp.perExample === 'naive' || !isRecordingModel(model)
      ? await clippedGradientSum(model, batch, lot, dp.maxGradNorm)
      : await clippedGradientSumFast(model, batch, lot, dp.maxGradNorm);
  // σ = 0 (tests only: not private) keeps the float sum as it is.
  const noisy = dp.noiseMultiplier > 0 ? await discreteNoisySum(sum, dp.noiseMultiplier, dp.maxGradNorm, dp.noise) : sum;
  const vars = model.params.map((p) => p.variable);
  const named: tf.NamedTensorMap = {};
  tf.tidy(() => {
    vars.forEach((v, i) => {
      let g = noisy[i] as tf.Tensor;
      g = tf.div(g, expected);
      if (prox && prox.mu > 0) g = tf.add(g, tf.mul(tf.sub(v, prox.anchors[i] as tf.Tensor), prox.mu));
      named[v.name] = tf.keep(g);
    });
  });
  tf.dispose(sum);
  if (noisy !== sum) tf.dispose(noisy);
  optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  return { lotSize: lot.length, loss: lot.length ? lossSum / lot.length : Number.NaN, clipped: norms.filter((n) => n > dp.maxGradNorm).length };
}
