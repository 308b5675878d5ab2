/**
 * Training throughput of the MultimodalRiskClassifier on the current TF.js backend
 * (shared/src/train/throughput.ts): Adam steps on random inputs of the real shapes, the fast
 * hand-written-BPTT LSTM vs the autograd LSTM. Medians after warm-up; asserts nothing about time.
 *
 *   npx tsx apps/cli/src/bench-train.ts      # wasm, T = 30 and 90, one JSON object per line
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { classifierParamCount } from '@fedcare/shared/model';
import { measureTrainThroughput } from '@fedcare/shared/train';
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

export async function benchTrain(opts: BenchTrainOptions): Promise<BenchTrainResult[]> {
  if (tf.getGradient(tf.BatchMatMul) == null) {
    throw new Error('bench-train: TF.js gradients are not registered; initialise TF.js with initTf() from tf-node.ts');
  }
  const { batch, steps, warmup } = opts;
  const results: BenchTrainResult[] = [];
  for (const T of opts.seqLens) {
    const fast = await measureTrainThroughput({ T, batch, steps, warmup });
    const autograd = await measureTrainThroughput({ T, batch, steps: Math.max(1, Math.ceil(steps / 4)), warmup: Math.min(warmup, 1), fastLstm: false });
    results.push({
      bench: 'train',
      backend: fast.backend,
      T,
      batch,
      samples_per_s: fast.samples_per_s,
      autograd_samples_per_s: autograd.samples_per_s,
      speedup: autograd.step_ms_median / fast.step_ms_median,
      params: classifierParamCount(),
      step_ms_median: fast.step_ms_median,
      autograd_step_ms_median: autograd.step_ms_median,
    });
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await initTf('wasm');
  for (const r of await benchTrain({ seqLens: [30, 90], batch: 32, steps: 8, warmup: 5 })) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
}
