/**
 * Cost of a DP-SGD step on the full MultimodalRiskClassifier on the current TF.js backend, against
 * a plain Adam step on the same minibatch: per-example clipping by one backward pass per example
 * (`clippedGradientSum`) and by ghost clipping with book-keeping in one batched pass
 * (`clippedGradientSumFast`). Each DP step is clipped sum + discrete Gaussian noise on the grid (CSPRNG) +
 * division by the lot size + the same Adam update. Real data shapes: a generated hospital encoded
 * at T steps, dropout on (training). The three variants take turns step by step, so load on the
 * machine hits them alike. Reports medians after warm-up; asserts nothing about time.
 *
 *   npx tsx apps/cli/src/bench-dp.ts      # wasm, T = 30, batch 32, one JSON object
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_FEATURE_CONFIG, fitAndEncode, generateHospital, type FeatureBatch } from '@fedcare/shared/data';
import { createClassifier, type MultimodalRiskClassifier } from '@fedcare/shared/model';
import { clippedGradientSum, clippedGradientSumFast, disposeInputs, discreteNoisySum, inputsFor, labelledIndices, type ClippedSum } from '@fedcare/shared/train';
// Not yet exported from @fedcare/shared/train.
import { initTf } from './tf-node';

export interface BenchDpOptions {
  /** Time steps of the sequences. */
  T: number;
  batch: number;
  /** Timed steps of each variant. */
  steps: number;
  /** Untimed steps of each variant first (JIT, allocator, XNNPACK operator caches). */
  warmup: number;
}

export interface BenchDpResult {
  bench: 'dp';
  backend: string;
  T: number;
  batch: number;
  plain_step_ms_median: number;
  dp_naive_step_ms_median: number;
  dp_fast_step_ms_median: number;
  /** DP step time over plain step time. */
  naive_ratio: number;
  fast_ratio: number;
}

/** σ and C of the benchmarked DP steps (the cost does not depend on them). */
const NOISE_MULTIPLIER = 1;
const MAX_GRAD_NORM = 1;

type ClipFn = (model: MultimodalRiskClassifier, batch: FeatureBatch, rows: readonly number[], maxGradNorm: number) => Promise<ClippedSum>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A generated hospital encoded at T steps, with at least `batch` labelled rows. */
function realBatch(T: number, batch: number): { data: FeatureBatch; rows: number[] } {
  const { batch: data } = fitAndEncode(generateHospital('H1', { seed: 1, patients: Math.max(64, 2 * batch) }).records, { ...DEFAULT_FEATURE_CONFIG, seqLen: T });
  const rows = labelledIndices(data).slice(0, batch);
  if (rows.length < batch) throw new Error(`bench-dp: only ${rows.length} labelled rows for a batch of ${batch}`);
  return { data, rows };
}

/** One DP-SGD step on a fixed lot, as dpSgdStep does it (without Poisson sampling and FedProx). */
async function dpStep(clip: ClipFn, model: MultimodalRiskClassifier, optimizer: tf.Optimizer, data: FeatureBatch, rows: readonly number[]): Promise<number> {
  const { sum, lossSum } = await clip(model, data, rows, MAX_GRAD_NORM);
  const noisy = await discreteNoisySum(sum, NOISE_MULTIPLIER, MAX_GRAD_NORM);
  const named: tf.NamedTensorMap = {};
  tf.tidy(() => {
    model.params.forEach((p, i) => {
      named[p.variable.name] = tf.keep(tf.div(noisy[i]!, rows.length));
    });
  });
  tf.dispose([...sum, ...noisy]);
  optimizer.applyGradients(named);
  tf.dispose(Object.values(named));
  return lossSum / rows.length;
}

export async function benchDp(opts: BenchDpOptions): Promise<BenchDpResult> {
  if (tf.getGradient(tf.BatchMatMul) == null) {
    throw new Error('bench-dp: TF.js gradients are not registered; initialise TF.js with initTf() from tf-node.ts');
  }
  const { T, batch } = opts;
  const steps = Math.max(1, Math.floor(opts.steps));
  const warmup = Math.max(0, Math.floor(opts.warmup));
  const { data, rows } = realBatch(T, batch);
  const inputs = inputsFor(data, rows);
  const labels = tf.tensor1d(Int32Array.from(rows, (r) => data.labels[r] as number), 'int32');

  // One model and optimizer per variant, from the same initial weights.
  const variants = ['plain', 'naive', 'fast'] as const;
  const models = variants.map(() => createClassifier({}, 1));
  const optimizers = variants.map(() => tf.train.adam(1e-3));
  const times: Record<(typeof variants)[number], number[]> = { plain: [], naive: [], fast: [] };
  const run: Record<(typeof variants)[number], (k: number) => Promise<number>> = {
    plain: async (k) => {
      const model = models[k]!;
      const loss = optimizers[k]!.minimize(() => model.loss(inputs, labels, { training: true }), true, model.params.map((p) => p.variable));
      const value = loss?.dataSync()[0]; // wasm is synchronous; this only reads the scalar back
      loss?.dispose();
      return value ?? Number.NaN;
    },
    naive: (k) => dpStep(clippedGradientSum, models[k]!, optimizers[k]!, data, rows),
    fast: (k) => dpStep(clippedGradientSumFast, models[k]!, optimizers[k]!, data, rows),
  };
  try {
    for (let s = 0; s < warmup + steps; s++) {
      for (const [k, v] of variants.entries()) {
        const t0 = performance.now();
        const loss = await run[v](k);
        const ms = performance.now() - t0;
        if (!Number.isFinite(loss)) throw new Error(`bench-dp: ${v} loss is ${loss}`);
        if (s >= warmup) times[v].push(ms);
      }
    }
  } finally {
    optimizers.forEach((o) => o.dispose());
    models.forEach((m) => m.dispose());
    disposeInputs(inputs);
    labels.dispose();
  }
  const plain = median(times.plain);
  const naive = median(times.naive);
  const fast = median(times.fast);
  return {
    bench: 'dp',
    backend: tf.getBackend(),
    T,
    batch,
    plain_step_ms_median: plain,
    dp_naive_step_ms_median: naive,
    dp_fast_step_ms_median: fast,
    naive_ratio: naive / plain,
    fast_ratio: fast / plain,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await initTf('wasm');
  process.stdout.write(`${JSON.stringify(await benchDp({ T: 30, batch: 32, steps: 8, warmup: 2 }))}\n`);
}
