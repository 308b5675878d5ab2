/**
 * Local training of the tabular MLP: Adam on softmax cross-entropy over shuffled minibatches, or
 * DP-SGD exactly as the risk model's (../train/dp.ts): Poisson lots with rate q = batch / n,
 * per-example clipping in one recorded pass (../train/dp-fast.ts `clipRecorded`), discrete Gaussian
 * noise on the clipped sum (`discreteNoisySum`), division by the expected lot size, the FedProx term
 * after the noise. A loop of its own rather than ../train/train.ts's: that one feeds the risk
 * model's five modalities and three classes; this one feeds a matrix and k classes, with the same
 * DP primitives.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GradRecorder } from '../model/recorder';
import { dpSchedule } from '../privacy/schedule';
import { clipRecorded } from '../train/dp-fast';
import { discreteNoisySum, poissonSample, validateDpSgd, type DpSgdConfig } from '../train/dp';
import { classificationMetrics, type ClassificationMetrics } from '../train/metrics';
import { knownLabelRows, type TrainConfig } from '../train/train';
import { cryptoRandom } from '../util/csprng';
import { Rng } from '../util/random';
import type { TabularMlp } from './mlp';
import type { TabularData } from './schema';


export interface TabularTrainResult {
  samples: number;
  seconds: number;
  /** Mean loss of the last epoch (over its lots with DP). */
  lastLoss: number;
}

/** Rows with a known label. */
export function labelledRows(data: TabularData): number[] {
  return knownLabelRows(data.y, data.n);
}

function rowsTensor(data: TabularData, rows: readonly number[]): tf.Tensor2D {
  const out = new Float32Array(rows.length * data.width);
  rows.forEach((r, i) => out.set(data.x.subarray(r * data.width, (r + 1) * data.width), i * data.width));
  return tf.tensor2d(out, [rows.length, data.width]);
}

const yieldToHost = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export async function trainTabular(model: TabularMlp, data: TabularData, config: TrainConfig, onBatch?: (p: { epoch: number; batch: number; batches: number; loss: number }) => void): Promise<TabularTrainResult> {
  const rows = labelledRows(data);
  if (rows.length === 0) throw new Error('no labelled rows to train on');
  const started = performance.now();
  const optimizer = tf.train.adam(config.learningRate);
  const vars = model.params.map((p) => p.variable);
  const anchors = config.proximalMu > 0 ? vars.map((v) => tf.keep(v.clone())) : [];
  let lastLoss = Number.NaN;
  try {
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      let sum = 0;
      let steps = 0;
      if (config.dp) {
        validateDpSgd(config.dp);
        const { sampleRate, stepsPerEpoch } = dpSchedule(rows.length, config.batchSize, config.epochs);
        for (let b = 0; b < stepsPerEpoch; b++) {
          const loss = await dpStep(model, optimizer, data, rows, sampleRate, config.dp, anchors, config.proximalMu);
          if (Number.isFinite(loss)) {
            sum += loss;
            steps++;
          }
          onBatch?.({ epoch: epoch + 1, batch: b + 1, batches: stepsPerEpoch, loss: steps ? sum / steps : Number.NaN });
          await yieldToHost();
        }
      } else {
        const order = new Rng(`tabular/train/${config.seed}/${epoch}`).shuffle([...rows]);
        const batches = Math.ceil(order.length / config.batchSize);
        for (let b = 0; b < batches; b++) {
          const rb = order.slice(b * config.batchSize, (b + 1) * config.batchSize);
          const x = rowsTensor(data, rb);
          const y = tf.tensor1d(Int32Array.from(rb, (r) => data.y[r] as number), 'int32');
          let loss: tf.Scalar | null;
          try {
            loss = optimizer.minimize(() => {
              const base = model.loss(x, y, { training: true });
              if (anchors.length === 0) return base;
              const prox = tf.addN(vars.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i] as tf.Tensor))));
              return tf.add(base, tf.mul(prox, config.proximalMu / 2)) as tf.Scalar;
            }, true, vars);
          } finally {
            x.dispose();
            y.dispose();
          }
          const value = loss ? ((await loss.data())[0] as number) : Number.NaN;
          loss?.dispose();
          if (!Number.isFinite(value)) throw new Error(`training diverged: loss is ${value} at epoch ${epoch + 1}, batch ${b + 1}`);
          sum += value;
          steps++;
          onBatch?.({ epoch: epoch + 1, batch: b + 1, batches, loss: sum / steps });
          await yieldToHost();
        }
      }
      lastLoss = steps ? sum / steps : Number.NaN;
    }
  } finally {
    optimizer.dispose();
    tf.dispose(anchors);
  }
  return { samples: rows.length, seconds: (performance.now() - started) / 1000, lastLoss };
}

/** One DP-SGD step; returns the lot's mean loss (NaN for an empty lot, which still gets its noise). */
async function dpStep(model: TabularMlp, optimizer: tf.Optimizer, data: TabularData, rows: readonly number[], sampleRate: number, dp: DpSgdConfig, anchors: readonly tf.Tensor[], mu: number): Promise<number> {
  const lot = poissonSample(rows, sampleRate, dp.random ?? cryptoRandom);
  const vars = model.params.map((p) => p.variable);
  let sum: tf.Tensor[];
  let lossSum = 0;
  if (lot.length === 0) sum = vars.map((v) => tf.zerosLike(v));
  else {
    const recorder = new GradRecorder();
    const x = rowsTensor(data, lot);
    const y = tf.tensor1d(Int32Array.from(lot, (r) => data.y[r] as number), 'int32');
    try {
      // Σ_i loss_i; the layers hand each example's factors to the recorder and return zero weight gradients.
      const { value, grads } = tf.variableGrads(() => tf.mul(model.loss(x, y, { training: true, recorder }), lot.length), vars);
      tf.dispose(Object.values(grads));
      lossSum = (await value.data())[0] as number;
      value.dispose();
      sum = (await clipRecorded(recorder.uses, vars, dp.maxGradNorm)).sum;
    } finally {
      recorder.dispose();
      x.dispose();
      y.dispose();
    }
  }
  const noisy = dp.noiseMultiplier > 0 ? await discreteNoisySum(sum, dp.noiseMultiplier, dp.maxGradNorm, dp.noise) : sum;
  const expected = sampleRate * rows.length;
  const named: tf.NamedTensorMap = {};
  tf.tidy(() => {
    vars.forEach((v, i) => {
      let g = tf.div(noisy[i] as tf.Tensor, expected);
      if (mu > 0) g = tf.add(g, tf.mul(tf.sub(v, anchors[i] as tf.Tensor), mu));
      named[v.name] = tf.keep(g);
    });
  });
  tf.dispose(sum);
  if (noisy !== sum) tf.dispose(noisy);
  optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  return lot.length ? lossSum / lot.length : Number.NaN;
}

/** Class probabilities [rows × classes], row-major. */
export async function predictTabular(model: TabularMlp, data: TabularData, rows: readonly number[], batchSize = 256): Promise<Float32Array> {
  const k = model.config.classes;
  const out = new Float32Array(rows.length * k);
  for (let s = 0; s < rows.length; s += batchSize) {
    const x = rowsTensor(data, rows.slice(s, s + batchSize));
    const p = tf.tidy(() => tf.softmax(model.logits(x, { training: false })));
    out.set(await p.data(), s * k);
    p.dispose();
    x.dispose();
  }
  return out;
}

/** Metrics (loss, accuracy, macro one-vs-rest AUC-ROC, AUC-PR, F1, …) on the labelled rows. */
export async function evaluateTabular(model: TabularMlp, data: TabularData, rows: readonly number[] = labelledRows(data)): Promise<ClassificationMetrics> {
  const probs = await predictTabular(model, data, rows);
  return classificationMetrics(probs, Int32Array.from(rows, (r) => data.y[r] as number), model.config.classes);
}
