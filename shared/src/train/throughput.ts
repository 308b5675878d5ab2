/**
 * Training throughput of the MultimodalRiskClassifier on the current TF.js backend: Adam (lr 1e-3)
 * steps on random inputs of the real shapes (half the mask channels observed), median wall time
 * after warm-up. Backend-neutral — the loss is read back asynchronously, so it runs on WebGPU too —
 * and shared by `fedcare bench --only train` (Node, wasm) and the portal's worker (Chromium: wasm
 * with 1 or N threads, WebGL, WebGPU; `npm run bench:browser`). Asserts nothing about time.
 */
import * as tf from '@tensorflow/tfjs-core';
import { median } from '../fl/influence';
import { createClassifier, DEFAULT_CLASSIFIER_CONFIG, type ClassifierInputs } from '../model';

export interface ThroughputOptions {
  /** Time steps of the sequences. */
  T: number;
  batch: number;
  /** Timed steps. */
  steps: number;
  /** Untimed steps first (JIT, allocator, XNNPACK operator caches, shader compilation). */
  warmup: number;
  /** The hand-written BPTT LSTM (default) or the autograd reference. */
  fastLstm?: boolean;
}

export interface Throughput {
  backend: string;
  T: number;
  batch: number;
  step_ms_median: number;
  samples_per_s: number;
}

/** Random inputs of the classifier's real shapes; the caller disposes them. */
export function randomClassifierInputs(batch: number, T: number): ClassifierInputs {
  const c = DEFAULT_CLASSIFIER_CONFIG;
  const seq = (channels: number, seed: number): tf.Tensor3D =>
    tf.tidy(() => {
      const half = channels / 2;
      const values = tf.randomNormal([batch, T, half], 0, 1, 'float32', seed);
      const masks = tf.cast(tf.greater(tf.randomUniform([batch, T, half], 0, 1, 'float32', seed + 1), 0.5), 'float32');
      return tf.concat([tf.mul(values, masks), masks], 2) as tf.Tensor3D;
    });
  return {
    vitals: seq(c.vitalsChannels, 1),
    labs: seq(c.labChannels, 3),
    demographics: tf.randomNormal([batch, c.demographicsDim], 0, 1, 'float32', 5),
    biology: tf.randomNormal([batch, c.biologyDim], 0, 1, 'float32', 6),
    omics: tf.randomNormal([batch, c.omicsDim], 0, 1, 'float32', 7),
  };
}

/** Median wall time of one Adam step of the standard model, after `warmup` untimed steps. */
export async function measureTrainThroughput(opts: ThroughputOptions): Promise<Throughput> {
  const { T, batch } = opts;
  const steps = Math.max(1, Math.floor(opts.steps));
  const warmup = Math.max(0, Math.floor(opts.warmup));
  const inputs = randomClassifierInputs(batch, T);
  const labels = tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => i % 3), 'int32');
  const model = createClassifier({ fastLstm: opts.fastLstm ?? true }, 1);
  const optimizer = tf.train.adam(1e-3);
  const varList = model.params.map((p) => p.variable);
  const times: number[] = [];
  try {
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      const loss = optimizer.minimize(() => model.loss(inputs, labels, { training: true }), true, varList);
      // Reading the loss waits for the step to finish on asynchronous backends (WebGPU, WebGL).
      const value = loss ? (await loss.data())[0] : undefined;
      loss?.dispose();
      if (value === undefined || !Number.isFinite(value)) throw new Error(`training throughput: the loss is ${value}`);
      if (s >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    optimizer.dispose();
    model.dispose();
    tf.dispose([inputs.vitals, inputs.labs, inputs.demographics, inputs.biology, inputs.omics, labels]);
  }
  const ms = median(times);
  return { backend: tf.getBackend(), T, batch, step_ms_median: ms, samples_per_s: batch / (ms / 1000) };
}
