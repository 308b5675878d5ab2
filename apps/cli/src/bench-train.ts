/**
 * Training throughput of the MultimodalRiskClassifier on the current TF.js backend: Adam (lr 1e-3)
 * steps on random inputs of the real shapes, fast hand-written-BPTT LSTM vs the autograd LSTM.
 * Reports medians after warm-up; asserts nothing about time.
 *
 *   npx tsx apps/cli/src/bench-train.ts      # wasm, T = 30 and 90, one JSON object per line
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { classifierParamCount, createClassifier, DEFAULT_CLASSIFIER_CONFIG, type ClassifierInputs } from '@fedcare/shared/model';
import { initTf } from './tf-node';

export interface BenchTrainOptions {
  seqLens: number[];
  batch: number;
  /** Timed steps of the fast model (the autograd one gets fewer: it is ~5× slower). */
  steps: number;
  /** Untimed steps first (JIT, allocator, XNNPACK operator caches). */
  warmup: number;
}

export interface BenchTrainResult {
  bench: 'train';
  backend: string;
  T: number;
  batch: number;
  samples_per_s: number;
  autograd_samples_per_s: number;
  speedup: number;
  params: number;
  step_ms_median: number;
  autograd_step_ms_median: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function randomInputs(batch: number, T: number): ClassifierInputs {
  const c = DEFAULT_CLASSIFIER_CONFIG;
  // Half the mask channels observed, like real data with missingness.
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

/** Median wall time (ms) of one Adam step, after `warmup` untimed steps. */
function timeSteps(fastLstm: boolean, inputs: ClassifierInputs, labels: tf.Tensor1D, warmup: number, steps: number): number {
  const model = createClassifier({ fastLstm }, 1);
  const optimizer = tf.train.adam(1e-3);
  const varList = model.params.map((p) => p.variable);
  const times: number[] = [];
  try {
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      const loss = optimizer.minimize(() => model.loss(inputs, labels, { training: true }), true, varList);
      const value = loss?.dataSync()[0]; // wasm is synchronous; this only reads the scalar back
      loss?.dispose();
      if (value === undefined || !Number.isFinite(value)) throw new Error(`bench-train: loss is ${value}`);
      if (s >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  return median(times);
}

export async function benchTrain(opts: BenchTrainOptions): Promise<BenchTrainResult[]> {
  if (tf.getGradient(tf.BatchMatMul) == null) {
    throw new Error('bench-train: TF.js gradients are not registered; initialise TF.js with initTf() from tf-node.ts');
  }
  const { batch } = opts;
  const steps = Math.max(1, Math.floor(opts.steps));
  const warmup = Math.max(0, Math.floor(opts.warmup));
  const results: BenchTrainResult[] = [];
  for (const T of opts.seqLens) {
    const inputs = randomInputs(batch, T);
    const labels = tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => i % 3), 'int32');
    try {
      const fastMs = timeSteps(true, inputs, labels, warmup, steps);
      const autogradMs = timeSteps(false, inputs, labels, Math.min(warmup, 1), Math.max(1, Math.ceil(steps / 4)));
      results.push({
        bench: 'train',
        backend: tf.getBackend(),
        T,
        batch,
        samples_per_s: batch / (fastMs / 1000),
        autograd_samples_per_s: batch / (autogradMs / 1000),
        speedup: autogradMs / fastMs,
        params: classifierParamCount(),
        step_ms_median: fastMs,
        autograd_step_ms_median: autogradMs,
      });
    } finally {
      tf.dispose([inputs.vitals, inputs.labs, inputs.demographics, inputs.biology, inputs.omics, labels]);
    }
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await initTf('wasm');
  for (const r of await benchTrain({ seqLens: [30, 90], batch: 32, steps: 8, warmup: 2 })) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
}
