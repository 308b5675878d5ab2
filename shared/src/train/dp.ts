/**
 * DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy", Algorithm 1) as the
 * accountant assumes it (Mironov, Talwar, Zhang 2019: the sampled Gaussian mechanism):
 *
 * - each step's lot is a Poisson sample: every labelled example joins independently with
 *   probability q = batch_size / n (so lots vary in size; an empty lot still gets its noise);
 * - each example's gradient of the data loss is clipped to L2 norm ≤ C over all parameters;
 * - the clipped gradients are summed, N(0, σ²C²) noise is added to every coordinate, drawn from
 *   the CSPRNG (crypto.getRandomValues; never Math.random), and the sum is divided by the
 *   expected lot size q·n (Opacus's "mean" reduction with Poisson sampling);
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
import { cryptoRandom, gaussians, type RandomSource } from '../util/csprng';
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
  /** Randomness for sampling and noise; the CSPRNG unless a test passes a seeded source. */
  random?: RandomSource;
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

/** N(0, σ²C²) noise shaped like each tensor, from `random`. */
export function gaussianNoiseLike(tensors: readonly tf.Tensor[], std: number, random: RandomSource = cryptoRandom): tf.Tensor[] {
  return tensors.map((t) => {
    const z = gaussians(t.size, random);
    for (let i = 0; i < z.length; i++) z[i] = (z[i] as number) * std;
    return tf.tensor(z, t.shape, 'float32');
  });
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
  const noise = dp.noiseMultiplier > 0 ? gaussianNoiseLike(sum, dp.noiseMultiplier * dp.maxGradNorm, random) : [];
  const vars = model.params.map((p) => p.variable);
  const named: tf.NamedTensorMap = {};
  tf.tidy(() => {
    vars.forEach((v, i) => {
      let g = sum[i] as tf.Tensor;
      if (noise[i]) g = tf.add(g, noise[i] as tf.Tensor);
      g = tf.div(g, expected);
      if (prox && prox.mu > 0) g = tf.add(g, tf.mul(tf.sub(v, prox.anchors[i] as tf.Tensor), prox.mu));
      named[v.name] = tf.keep(g);
    });
  });
  tf.dispose(sum);
  tf.dispose(noise);
  optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  return { lotSize: lot.length, loss: lot.length ? lossSum / lot.length : Number.NaN, clipped: norms.filter((n) => n > dp.maxGradNorm).length };
}
