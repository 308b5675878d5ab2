/**
 * Personalisation after federation, FedPer/FedRep style: the federation's representation (the
 * encoders and the attention fusion) stays as it is, the hospital fine-tunes its "personal layers"
 * on its own training split — the risk head and the affine (γ, β) of the fusion's LayerNorm.
 * FedPer: Arivazhagan et al. 2019, "Federated Learning with Personalization Layers" (arXiv
 * 1912.00818); FedRep: Collins et al., ICML 2021, "Exploiting Shared Representations for Personalized
 * Federated Learning" (the head trained locally on a fixed shared representation).
 *
 * Why these layers: the fused vector is mean_k(γ ⊙ n_k + β) = γ ⊙ mean_k(n_k) + β over the five
 * normalised tokens n_k, so with the representation frozen the pooled pre-affine vector P =
 * mean_k(n_k) is computed once per patient and (γ, β, head) train on P alone — an MLP on 256
 * features, seconds on a laptop, where fine-tuning the encoders would be a full training pass per
 * epoch and overfits a hospital's few hundred patients. Measured on the spec cohort (README,
 * "Personalisation").
 *
 * Model selection on the hospital's validation split only (never its test split): the epoch with the
 * lowest validation loss, epoch 0 being the global model itself — so a hospital whose validation data
 * says fine-tuning does not help keeps the global head. The temperature is then chosen on the same
 * validation split from the calibration grid (./calibration.ts).
 *
 * Differential privacy: with `dp` each step is DP-SGD on the personal layers (Poisson lots,
 * per-example clipping at C, Gaussian noise σC; Abadi et al., CCS 2016) computed exactly per
 * example from the MLP's activations (ghost clipping, ./dp-fast.ts), and the caller charges the
 * steps to the hospital's budget. The validation-loss choice of epoch and temperature is not
 * private — the validation split is then the hospital's own unprotected holdout.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { FeatureBatch } from '../data/features';
import type { MultimodalRiskClassifier } from '../model/classifier';
import { linear } from '../model/nn';
import type { Param } from '../model/params';
import { GradRecorder } from '../model/recorder';
import { flattenWeights } from '../model/weights';
import { Rng } from '../util/random';
import { atTemperature, nllSum, TEMPERATURE_GRID } from './calibration';
import { clipRecorded } from './dp-fast';
import { discreteNoisySum, poissonSample, type DpSgdConfig } from './dp';
import { classificationMetrics, type ClassificationMetrics } from './metrics';
import { disposeInputs, dpSchedule, inputsFor, labelledIndices } from './train';

/** Parameter-name prefixes of the personal layers. */
export const PERSONAL_PARAM_PREFIXES = ['fusion.norm.', 'head.'] as const;

export const isPersonalParam = (name: string): boolean => PERSONAL_PARAM_PREFIXES.some((p) => name.startsWith(p));

export interface PersonaliseConfig {
  /** Most epochs over the training split; early stopping by validation loss ends sooner. */
  epochs: number;
  learningRate: number;
  batchSize: number;
  /** Epochs without a better validation loss before stopping. */
  patience: number;
  seed: number;
  /** DP-SGD on the personal layers (batchSize then sets the expected lot size). */
  dp?: DpSgdConfig;
}

export const DEFAULT_PERSONALISE_CONFIG: Readonly<PersonaliseConfig> = Object.freeze({ epochs: 30, learningRate: 1e-3, batchSize: 32, patience: 6, seed: 0 });

export interface PersonaliseSplits {
  readonly train: FeatureBatch;
  readonly val: FeatureBatch;
  readonly test: FeatureBatch;
}

export interface PersonaliseEvaluation {
  /** Mean cross-entropy on the validation split. */
  val_loss: number;
  /** On the test split, at temperature 1 (AUC-ROC and accuracy do not depend on it). */
  test: ClassificationMetrics;
}

export interface PersonaliseResult {
  /** The whole model's flat weights with the personal layers fine-tuned (the model's order). */
  weights: Float32Array;
  /** Names of the fine-tuned parameters and how many scalars they hold. */
  params: string[];
  trainable: number;
  /** Epoch kept (0: the global head was best on validation) and epochs run. */
  best_epoch: number;
  epochs_run: number;
  history: { epoch: number; train_loss: number; val_loss: number }[];
  /** Temperature of the personalised model, chosen on the validation split. */
  temperature: number;
  /** DP-SGD steps taken and their sampling rate (for the caller's accountant), when dp was on. */
  dp?: { steps: number; sample_rate: number; noise_multiplier: number };
  global: PersonaliseEvaluation;
  personalised: PersonaliseEvaluation;
}

/** The personal layers of a classifier, as variables of the model itself. */
export interface PersonalLayers {
  gamma: tf.Variable;
  beta: tf.Variable;
  layers: { W: tf.Variable; b: tf.Variable }[];
}

/** The personal layers (fusion LayerNorm γ, β and the head's dense layers) of `params`. */
export function personalLayers(params: readonly Param[]): PersonalLayers {
  const byName = new Map(params.map((p) => [p.name, p.variable]));
  const gamma = byName.get('fusion.norm.gamma');
  const beta = byName.get('fusion.norm.beta');
  if (!gamma || !beta) throw new Error('personalise: the model has no fusion.norm.gamma / beta');
  const layers: PersonalLayers['layers'] = [];
  for (let k = 0; byName.has(`head.dense${k}.kernel`); k++) {
    layers.push({ W: byName.get(`head.dense${k}.kernel`)!, b: byName.get(`head.dense${k}.bias`)! });
  }
  if (layers.length === 0) throw new Error('personalise: the model has no head.dense0');
  return { gamma, beta, layers };
}

/** Logits of the personal layers on the pooled pre-affine representation P [n, fusionDim]. */
function headLogits(h: PersonalLayers, P: tf.Tensor2D, recorder?: GradRecorder): tf.Tensor2D {
  let x: tf.Tensor2D = recorder ? affineRecorded(P, h.gamma, h.beta, recorder) : tf.add(tf.mul(P, h.gamma), h.beta);
  h.layers.forEach((l, k) => {
    x = linear(x, l.W as tf.Tensor2D, l.b as tf.Tensor1D, recorder);
    if (k < h.layers.length - 1) x = tf.relu(x);
  });
  return x;
}

/** γ ⊙ P + β recording each example's gradient of γ (dy ⊙ P_i) and β (dy_i); γ, β get zeros. */
function affineRecorded(P: tf.Tensor2D, gamma: tf.Variable, beta: tf.Variable, recorder: GradRecorder): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [p, g, b] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    const gradFunc = (dy: tf.Tensor2D): tf.Tensor[] => {
      recorder.record({ kind: 'direct', param: gamma, grads: tf.mul(dy, p) });
      recorder.record({ kind: 'direct', param: beta, grads: dy });
      return [tf.mul(dy, g), tf.zerosLike(g), tf.zerosLike(b)];
    };
    return { value: tf.add(tf.mul(p, g), b) as tf.Tensor2D, gradFunc };
  });
  return op(P, gamma, beta) as tf.Tensor2D;
}

/** P for the labelled rows of `batch` (inference mode; γ = 1, β = 0 must be set by the caller). */
async function pooled(model: MultimodalRiskClassifier, batch: FeatureBatch, rows: readonly number[]): Promise<tf.Tensor2D> {
  const parts: tf.Tensor2D[] = [];
  for (let s = 0; s < rows.length; s += 128) {
    const inputs = inputsFor(batch, rows.slice(s, s + 128));
    parts.push(model.embed(inputs, { training: false }));
    disposeInputs(inputs);
  }
  const out = parts.length === 0 ? tf.zeros([0, model.fusionDim]) as tf.Tensor2D : tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}

interface SplitTensors {
  P: tf.Tensor2D;
  labels: Int32Array;
}

function meanLoss(h: PersonalLayers, s: SplitTensors): number {
  if (s.labels.length === 0) return Number.NaN;
  return tf.tidy(() => {
    const logp = tf.logSoftmax(headLogits(h, s.P));
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(s.labels, 'int32'), 3), 'float32');
    return -(tf.sum(tf.mul(onehot, logp)).dataSync()[0] as number) / s.labels.length;
  });
}

function probsOf(h: PersonalLayers, s: SplitTensors): Float32Array {
  return tf.tidy(() => tf.softmax(headLogits(h, s.P)).dataSync() as Float32Array);
}

function evaluation(h: PersonalLayers, val: SplitTensors, test: SplitTensors): PersonaliseEvaluation {
  return { val_loss: meanLoss(h, val), test: classificationMetrics(probsOf(h, test), test.labels) };
}

/** The grid temperature with the lowest validation NLL (1 when there is no validation data). */
function validationTemperature(h: PersonalLayers, val: SplitTensors): number {
  if (val.labels.length === 0) return 1;
  const probs = probsOf(h, val);
  let best = 1;
  let bestNll = nllSum(probs, val.labels);
  for (const t of TEMPERATURE_GRID) {
    const nll = nllSum(atTemperature(probs, 3, t), val.labels);
    if (nll < bestNll - 1e-9) [best, bestNll] = [t, nll];
  }
  return best;
}

/** One minibatch step of plain Adam on the personal layers. */
function plainStep(h: PersonalLayers, vars: tf.Variable[], optimizer: tf.Optimizer, train: SplitTensors, rows: readonly number[]): number {
  const loss = optimizer.minimize(() => tf.tidy(() => {
    const idx = tf.tensor1d(Int32Array.from(rows), 'int32');
    const logits = headLogits(h, tf.gather(train.P, idx));
    const onehot = tf.cast(tf.oneHot(tf.gather(tf.tensor1d(train.labels, 'int32'), idx), 3), 'float32');
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  }), true, vars);
  const v = loss ? (loss.dataSync()[0] as number) : Number.NaN;
  loss?.dispose();
  return v;
}

/** The variables of the personal layers in parameter order (γ, β, then each dense layer's W, b). */
const variablesOf = (h: PersonalLayers): tf.Variable[] => [h.gamma, h.beta, ...h.layers.flatMap((l) => [l.W, l.b])];

/**
 * Σ_i min(1, C/‖g_i‖)·g_i over the examples of P [n, fusionDim] with `labels`, g_i being example i's
 * gradient of its cross-entropy w.r.t. the personal layers, from one batched backward pass (ghost
 * clipping, ./dp-fast.ts); in `variablesOf` order, with the norms and the summed loss.
 */
export async function clippedHeadSum(h: PersonalLayers, P: tf.Tensor2D, labels: Int32Array, maxGradNorm: number): Promise<{ sum: tf.Tensor[]; norms: number[]; lossSum: number }> {
  const vars = variablesOf(h);
  if (labels.length === 0) return { sum: vars.map((v) => tf.zerosLike(v)), norms: [], lossSum: 0 };
  const recorder = new GradRecorder();
  try {
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), 'float32');
      return tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(headLogits(h, P, recorder))))) as tf.Scalar; // the SUM of per-example losses
    }), vars);
    tf.dispose(Object.values(grads)); // zeros while recording
    const lossSum = value.dataSync()[0] as number;
    value.dispose();
    const { sum, norms } = await clipRecorded(recorder.uses, vars, maxGradNorm);
    return { sum, norms, lossSum };
  } finally {
    recorder.dispose();
  }
}

/** One DP-SGD step on the personal layers: a Poisson lot, exact per-example clipping, noise σC. */
async function dpStep(h: PersonalLayers, optimizer: tf.Optimizer, train: SplitTensors, all: readonly number[], sampleRate: number, dp: DpSgdConfig): Promise<number> {
  const lot = poissonSample(all, sampleRate, dp.random);
  const P = tf.tidy(() => tf.gather(train.P, tf.tensor1d(Int32Array.from(lot), 'int32')) as tf.Tensor2D);
  const { sum, lossSum } = await clippedHeadSum(h, P, Int32Array.from(lot, (i) => train.labels[i] as number), dp.maxGradNorm);
  P.dispose();
  const noisy = dp.noiseMultiplier > 0 ? await discreteNoisySum(sum, dp.noiseMultiplier, dp.maxGradNorm, dp.noise) : sum;
  const expected = sampleRate * all.length;
  const named: tf.NamedTensorMap = {};
  variablesOf(h).forEach((v, i) => (named[v.name] = tf.div(noisy[i] as tf.Tensor, expected)));
  optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  tf.dispose(sum);
  if (noisy !== sum) tf.dispose(noisy);
  return lot.length ? lossSum / lot.length : Number.NaN;
}

/**
 * Fine-tunes the personal layers of `model` (loaded with the global weights; left holding the
 * personalised ones) on `splits.train`, keeping the epoch with the lowest validation loss.
 */
export async function personaliseHead(model: MultimodalRiskClassifier, splits: PersonaliseSplits, config: Partial<PersonaliseConfig> = {}, onEpoch?: (p: { epoch: number; epochs: number; train_loss: number; val_loss: number }) => void): Promise<PersonaliseResult> {
  const cfg = { ...DEFAULT_PERSONALISE_CONFIG, ...config };
  if (!(Number.isInteger(cfg.epochs) && cfg.epochs >= 0)) throw new Error(`personalise: epochs must be a whole number ≥ 0, got ${cfg.epochs}`);
  if (!(cfg.learningRate > 0) || !(Number.isInteger(cfg.batchSize) && cfg.batchSize >= 1)) throw new Error('personalise: learningRate must be > 0 and batchSize a whole number ≥ 1');
  const personal = model.params.filter((p) => isPersonalParam(p.name));
  const h = personalLayers(personal);
  const vars = variablesOf(h);

  // P = mean_k(n_k): the fusion with γ = 1, β = 0, in inference mode; then γ, β back.
  const gamma0 = tf.keep(h.gamma.clone());
  const beta0 = tf.keep(h.beta.clone());
  const split = async (b: FeatureBatch): Promise<SplitTensors> => {
    const rows = labelledIndices(b);
    return { P: await pooled(model, b, rows), labels: Int32Array.from(rows, (r) => b.labels[r] as number) };
  };
  tf.tidy(() => {
    h.gamma.assign(tf.onesLike(gamma0));
    h.beta.assign(tf.zerosLike(beta0));
  });
  let data: { train: SplitTensors; val: SplitTensors; test: SplitTensors };
  try {
    data = { train: await split(splits.train), val: await split(splits.val), test: await split(splits.test) };
  } finally {
    h.gamma.assign(gamma0);
    h.beta.assign(beta0);
    tf.dispose([gamma0, beta0]);
  }
  if (data.train.labels.length === 0) throw new Error('personalise: no labelled records in the training split');

  const optimizer = tf.train.adam(cfg.learningRate);
  const global = evaluation(h, data.val, data.test);
  let best = { epoch: 0, loss: global.val_loss, values: vars.map((v) => tf.keep(v.clone())) };
  const history: PersonaliseResult['history'] = [];
  const all = Array.from(data.train.labels, (_, i) => i);
  const schedule = cfg.dp ? dpSchedule(all.length, cfg.batchSize, cfg.epochs) : undefined;
  let steps = 0;
  try {
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      let lossSum = 0;
      let n = 0;
      if (cfg.dp && schedule) {
        for (let s = 0; s < schedule.stepsPerEpoch; s++, steps++) {
          const l = await dpStep(h, optimizer, data.train, all, schedule.sampleRate, cfg.dp);
          if (Number.isFinite(l)) [lossSum, n] = [lossSum + l, n + 1];
        }
      } else {
        const order = new Rng(`personalise/${cfg.seed}/${epoch}`).shuffle([...all]);
        for (let s = 0; s < order.length; s += cfg.batchSize, n++) lossSum += plainStep(h, vars, optimizer, data.train, order.slice(s, s + cfg.batchSize));
      }
      const valLoss = meanLoss(h, data.val);
      history.push({ epoch, train_loss: n ? lossSum / n : Number.NaN, val_loss: valLoss });
      onEpoch?.({ epoch, epochs: cfg.epochs, train_loss: n ? lossSum / n : Number.NaN, val_loss: valLoss });
      if (!Number.isFinite(valLoss) && data.val.labels.length > 0) throw new Error(`personalise: validation loss is ${valLoss} at epoch ${epoch}`);
      if (valLoss < best.loss) {
        tf.dispose(best.values);
        best = { epoch, loss: valLoss, values: vars.map((v) => tf.keep(v.clone())) };
      } else if (epoch - best.epoch >= cfg.patience) {
        break;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
    }
    vars.forEach((v, i) => v.assign(best.values[i] as tf.Tensor));
  } finally {
    tf.dispose(best.values);
    optimizer.dispose();
  }
  const personalised = evaluation(h, data.val, data.test);
  const temperature = validationTemperature(h, data.val);
  tf.dispose([data.train.P, data.val.P, data.test.P]);
  return {
    weights: await flattenWeights(model.params),
    params: personal.map((p) => p.name),
    trainable: vars.reduce((n, v) => n + v.size, 0),
    best_epoch: best.epoch,
    epochs_run: history.length,
    history,
    temperature,
    ...(cfg.dp && schedule ? { dp: { steps, sample_rate: schedule.sampleRate, noise_multiplier: cfg.dp.noiseMultiplier } } : {}),
    global,
    personalised,
  };
}
