/**
 * The local training loop shared by every host (CLI, headless hospital, browser worker): Adam on
 * softmax cross-entropy over minibatches of a FeatureBatch, with progress callbacks, plus
 * prediction and evaluation. Tensors are created per minibatch and disposed at once.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addMany } from '../model/nn';
import type { TaskTargets, TaskWeights } from '../model/classifier';
import type { FeatureBatch } from '../data/features';
import { Rng } from '../util/random';
import { classificationMetrics, type ClassificationMetrics } from './metrics';
import { dpSgdStep, validateDpSgd, type DpSgdConfig } from './dp';
import { dpSchedule } from '../privacy/schedule';

export { dpSchedule };

/** Model inputs for one minibatch. */
export interface ModelInputs {
  vitals: tf.Tensor3D;
  labs: tf.Tensor3D;
  demographics: tf.Tensor2D;
  biology: tf.Tensor2D;
  omics: tf.Tensor2D;
}

/** What the loop needs of a model: its variables, a loss and logits. */
export interface TrainableModel {
  readonly params: readonly { readonly variable: tf.Variable }[];
  /** Set when the model has the multi-task heads: the loop then passes `targets` to `loss`. */
  readonly taskWeights?: Readonly<TaskWeights> | null;
  loss(inputs: ModelInputs, labels: tf.Tensor1D, options: { training: boolean }, targets?: TaskTargets): tf.Scalar;
  predictLogits(inputs: ModelInputs, options: { training: boolean }): tf.Tensor2D;
}

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seed for the minibatch order. */
  seed: number;
  /**
   * FedProx proximal term μ (Li et al., MLSys 2020): adds μ/2·‖w − w_start‖² to the loss, where
   * w_start are the weights when training began (the global model). 0 disables it.
   */
  proximalMu: number;
  /**
   * Differential privacy (DP-SGD, ./dp.ts): each epoch is round(n / batchSize) steps on Poisson
   * lots with rate q = batchSize / n, per-example clipping and Gaussian noise. Absent: plain SGD on
   * shuffled minibatches.
   */
  dp?: DpSgdConfig;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = { epochs: 5, batchSize: 32, learningRate: 1e-3, seed: 0, proximalMu: 0 };



export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** Running mean training loss of the current epoch. */
  loss: number;
}

export interface EpochSummary {
  epoch: number;
  loss: number;
  seconds: number;
}

export interface TrainResult {
  epochs: EpochSummary[];
  /** Labelled examples trained on (per epoch). */
  samples: number;
  seconds: number;
}

/** Indices of the first `n` labels that are known (≥ 0; −1 = unlabelled). */
export function knownLabelRows(labels: ArrayLike<number>, n = labels.length): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if ((labels[i] as number) >= 0) out.push(i);
  return out;
}

/** Indices of records with a known label. */
export function labelledIndices(batch: FeatureBatch): number[] {
  return knownLabelRows(batch.labels, batch.n);
}

function gatherRows(src: Float32Array, width: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(src.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

/** The multi-task heads' targets for `rows` of `batch` (caller disposes); undefined when the batch carries none. */
export function taskTargetsFor(batch: FeatureBatch, rows: readonly number[]): TaskTargets | undefined {
  const readmission = batch.readmission;
  const days = batch.daysToReadmission;
  if (!readmission || !days) return undefined;
  return {
    readmission: tf.tensor1d(Float32Array.from(rows, (r) => readmission[r] as number)),
    days: tf.tensor1d(Float32Array.from(rows, (r) => days[r] as number)),
  };
}

/** Builds model input tensors for the given rows of a FeatureBatch (caller disposes). */
export function inputsFor(batch: FeatureBatch, rows: readonly number[]): ModelInputs {
  const b = rows.length;
  const T = batch.seqLen;
  const vw = batch.vitals.length / batch.n / T;
  const lw = batch.labs.length / batch.n / T;
  return {
    vitals: tf.tensor3d(gatherRows(batch.vitals, T * vw, rows), [b, T, vw]),
    labs: tf.tensor3d(gatherRows(batch.labs, T * lw, rows), [b, T, lw]),
    demographics: tf.tensor2d(gatherRows(batch.demographics, batch.demographics.length / batch.n, rows), [b, batch.demographics.length / batch.n]),
    biology: tf.tensor2d(gatherRows(batch.biology, batch.biology.length / batch.n, rows), [b, batch.biology.length / batch.n]),
    omics: tf.tensor2d(gatherRows(batch.omics, batch.omics.length / batch.n, rows), [b, batch.omics.length / batch.n]),
  };
}

export function disposeInputs(inputs: ModelInputs): void {
  tf.dispose([inputs.vitals, inputs.labs, inputs.demographics, inputs.biology, inputs.omics]);
}

const yieldToHost = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Trains `model` in place on the labelled rows (or `rows`) of `batch`. Unlabelled rows are never
 * used. Yields to the host between minibatches so UIs and sockets stay responsive.
 */
export async function trainLocal(
  model: TrainableModel,
  batch: FeatureBatch,
  config: Partial<TrainConfig> = {},
  onProgress?: (p: TrainProgress) => void,
  rows: readonly number[] = labelledIndices(batch),
): Promise<TrainResult> {
  const cfg = { ...DEFAULT_TRAIN_CONFIG, ...config };
  const usable = rows.filter((r) => (batch.labels[r] as number) >= 0);
  if (usable.length === 0) throw new Error('no labelled records to train on');
  const optimizer = tf.train.adam(cfg.learningRate);
  const varList = model.params.map((p) => p.variable);
  const batches = Math.ceil(usable.length / cfg.batchSize);
  const started = performance.now();
  const epochs: EpochSummary[] = [];
  const anchors = cfg.proximalMu > 0 ? varList.map((v) => tf.keep(v.clone())) : [];
  const objective = (inputs: ModelInputs, labels: tf.Tensor1D, targets?: TaskTargets): tf.Scalar => {
    const base = targets ? model.loss(inputs, labels, { training: true }, targets) : model.loss(inputs, labels, { training: true });
    if (anchors.length === 0) return base;
    const prox = addMany(varList.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i] as tf.Tensor)))) as tf.Scalar;
    return tf.add(base, tf.mul(prox, cfg.proximalMu / 2));
  };
  try {
    if (cfg.dp) {
      // The heads' masked means couple the examples of a lot: not a per-example loss DP-SGD can clip.
      if (model.taskWeights) throw new Error('multi-task heads (task_weights) cannot train under DP-SGD (dp): drop one of the two');
      validateDpSgd(cfg.dp);
      const { sampleRate, stepsPerEpoch } = dpSchedule(usable.length, cfg.batchSize, cfg.epochs);
      const prox = anchors.length ? { mu: cfg.proximalMu, anchors } : undefined;
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        const t0 = performance.now();
        let lossSum = 0;
        let lossSteps = 0;
        for (let b = 0; b < stepsPerEpoch; b++) {
          const step = await dpSgdStep(model, optimizer, batch, usable, sampleRate, cfg.dp, prox);
          if (Number.isFinite(step.loss)) {
            lossSum += step.loss;
            lossSteps++;
          } else if (step.lotSize > 0) {
            throw new Error(`training diverged: loss is ${step.loss} at epoch ${epoch + 1}, step ${b + 1}`);
          }
          onProgress?.({ epoch: epoch + 1, epochs: cfg.epochs, batch: b + 1, batches: stepsPerEpoch, loss: lossSteps ? lossSum / lossSteps : Number.NaN });
          await yieldToHost();
        }
        epochs.push({ epoch: epoch + 1, loss: lossSteps ? lossSum / lossSteps : Number.NaN, seconds: (performance.now() - t0) / 1000 });
      }
      return { epochs, samples: usable.length, seconds: (performance.now() - started) / 1000 };
    }
    for (let epoch = 0; epoch < cfg.epochs; epoch++) {
      const t0 = performance.now();
      const order = new Rng(`train/${cfg.seed}/${epoch}`).shuffle([...usable]);
      let lossSum = 0;
      for (let b = 0; b < batches; b++) {
        const rowsB = order.slice(b * cfg.batchSize, (b + 1) * cfg.batchSize);
        const inputs = inputsFor(batch, rowsB);
        const labels = tf.tensor1d(Int32Array.from(rowsB, (r) => batch.labels[r] as number), 'int32');
        const targets = model.taskWeights ? taskTargetsFor(batch, rowsB) : undefined;
        let loss: tf.Scalar | null;
        try {
          loss = optimizer.minimize(() => objective(inputs, labels, targets), true, varList);
        } finally {
          disposeInputs(inputs);
          labels.dispose();
          if (targets) tf.dispose([targets.readmission, targets.days]);
        }
        const value = loss ? (await loss.data())[0] as number : Number.NaN;
        loss?.dispose();
        if (!Number.isFinite(value)) throw new Error(`training diverged: loss is ${value} at epoch ${epoch + 1}, batch ${b + 1}`);
        lossSum += value;
        onProgress?.({ epoch: epoch + 1, epochs: cfg.epochs, batch: b + 1, batches, loss: lossSum / (b + 1) });
        await yieldToHost();
      }
      epochs.push({ epoch: epoch + 1, loss: lossSum / batches, seconds: (performance.now() - t0) / 1000 });
    }
  } finally {
    optimizer.dispose();
    tf.dispose(anchors);
  }
  return { epochs, samples: usable.length, seconds: (performance.now() - started) / 1000 };
}

/** Class probabilities [rows.length × 3], row-major, in inference mode. */
export async function predictProbs(model: TrainableModel, batch: FeatureBatch, rows: readonly number[], batchSize = 128): Promise<Float32Array> {
  const out = new Float32Array(rows.length * 3);
  for (let s = 0; s < rows.length; s += batchSize) {
    const rowsB = rows.slice(s, s + batchSize);
    const inputs = inputsFor(batch, rowsB);
    const probs = tf.tidy(() => tf.softmax(model.predictLogits(inputs, { training: false })));
    out.set(await probs.data(), s * 3);
    probs.dispose();
    disposeInputs(inputs);
    await yieldToHost();
  }
  return out;
}

/** Seed spec 6.1 metrics of the model on the labelled rows (or `rows`) of `batch`. */
export async function evaluate(model: TrainableModel, batch: FeatureBatch, rows: readonly number[] = labelledIndices(batch)): Promise<ClassificationMetrics> {
  const usable = rows.filter((r) => (batch.labels[r] as number) >= 0);
  const probs = await predictProbs(model, batch, usable);
  return classificationMetrics(probs, Int32Array.from(usable, (r) => batch.labels[r] as number));
}
