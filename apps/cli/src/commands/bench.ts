/**
 * `fedcare bench` (what `npm run bench` runs): one JSON object per line on stdout, medians after
 * warm-up. Nothing here asserts a time: these machines are shared and noisy.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { computeFeatureSums, encodeRecords, finalizeFeatureStats, generateHospital } from '@fedcare/shared/data';
import { benchTrain } from '../bench-train';
import { initTf } from '../tf-node';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function timeIt(repeats: number, f: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      only: { type: 'string' },
      steps: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: fedcare bench [--only train|data] [--steps 8]\n');
    return 0;
  }
  const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  if (!values.only || values.only === 'data') {
    const genMs = timeIt(3, () => generateHospital('H2', { seed: 1 }));
    const records = generateHospital('H2', { seed: 1 }).records;
    let stats = finalizeFeatureStats(computeFeatureSums(records));
    const sumsMs = timeIt(3, () => (stats = finalizeFeatureStats(computeFeatureSums(records))));
    const encodeMs = timeIt(3, () => encodeRecords(records, stats));
    emit({ bench: 'data', hospital: 'H2', patients: records.length, generate_ms_median: genMs, feature_stats_ms_median: sumsMs, encode_ms_median: encodeMs, records_per_s_generate: records.length / (genMs / 1000) });
  }
  if (!values.only || values.only === 'train') {
    await initTf('wasm');
    for (const r of await benchTrain({ seqLens: [30, 90], batch: 32, steps: Number(values.steps), warmup: 2 })) emit(r);
  }
  emit({ bench: 'memory', backend: tf.getBackend(), tf_num_tensors: tf.memory().numTensors, rss_mb: Math.round(process.memoryUsage().rss / 1e6) });
  return 0;
}
