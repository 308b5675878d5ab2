/**
 * `fedcare bench` (what `npm run bench` runs): one JSON object per line on stdout, medians after
 * warm-up. Nothing here asserts a time: these machines are shared and noisy.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { computeFeatureSums, encodeRecords, finalizeFeatureStats, generateHospital, KNOWN_HOSPITALS } from '@fedcare/shared/data';
import { createStrategy, weightedAverage } from '@fedcare/shared/fl';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { generateToDir } from './generate';
import { runSimulation } from './simulate';
import { benchTrain } from '../bench-train';
import { benchPrivacy } from '../bench-privacy';
import { benchDp } from '../bench-dp';
import { benchHe, benchSecAgg } from '../bench-secure';
import { benchSpec } from '../bench-spec';
import { FEATURE_SUMS_LENGTH } from '@fedcare/shared/data';
import { initTf } from '../tf-node';
import { CliError } from '../io';

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
      'federation-rounds': { type: 'string', default: '2' },
      steps: { type: 'string', default: '8' },
      'privacy-epsilons': { type: 'string', default: '0.5,1,2,5,8,inf' },
      'privacy-canaries': { type: 'string', default: '1000' },
      'privacy-patients': { type: 'string' },
      'privacy-plot': { type: 'string', default: 'privacy-utility.svg' },
      'spec-scale': { type: 'string', default: '5,10,15' },
      'spec-parts': { type: 'string', default: 'round,bytes,scaling' },
      'spec-patients': { type: 'string', default: '100' },
      'spec-plot': { type: 'string', default: 'spec-scaling.svg' },
      // Output is always JSON lines; --json is accepted as the other commands take it.
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: fedcare bench [--only train|dp|data|secure|aggregation|federation|scale|privacy|spec] [--steps 8] [--federation-rounds 2] [--json]\n' +
        '                     [--privacy-epsilons 0.5,1,2,5,8,inf] [--privacy-canaries 1000] [--privacy-patients N] [--privacy-plot privacy-utility.svg]\n' +
        '                     [--spec-parts round,bytes,scaling] [--spec-scale 5,10,15] [--spec-patients 100] [--spec-plot spec-scaling.svg]\n' +
        'Every result is one JSON line on stdout (--json changes nothing; progress goes to stderr).\n' +
        '`spec` (not in the default set: ~3 min here) runs seed spec 8.3\'s performance tests with one client process per\n' +
        'hospital: one round of the spec configuration ("spec_round", against 2 minutes), bytes per client per round plain,\n' +
        'SecAgg+ and HE ("spec_bytes", against 10 MB), and the same per-client work at 5, 10 and 15 hospitals ("spec_scaling",\n' +
        '"spec_scaling_fit": slopes against proportional growth; the plot).\n' +
        '`privacy` (not in the default set: ~20 min here) federates the spec cohort with the DP recipe at each target ε (one\n' +
        '"privacy-utility" line each, with every hospital\'s accountant inputs and ε) and audits each ε (one "privacy-audit" line:\n' +
        'the one-run ε lower bound and the membership-inference AUC; --privacy-canaries 0 skips the audits).\n',
    );
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
    for (const r of await benchTrain({ seqLens: [30, 90], batch: 32, steps: Number(values.steps), warmup: 5 })) emit(r);
  }
  if (!values.only || values.only === 'dp') {
    // DP-SGD step vs a plain step: per-example clipping naive (a pass per example) and fast (one recorded pass).
    await initTf('wasm');
    emit(await benchDp({ T: 30, batch: 32, steps: Number(values.steps), warmup: 2 }));
  }
  if (!values.only || values.only === 'secure') {
    // SecAgg+ per stage (complete graph up to 30; 100 hospitals on a 16-neighbour graph), then HE.
    for (const n of [3, 10, 30]) emit(await benchSecAgg(n));
    emit(await benchSecAgg(100, undefined, 16));
    // Round 0: the preprocessing statistics, exact in fixed point.
    for (const n of [3, 10]) emit(await benchSecAgg(n, FEATURE_SUMS_LENGTH, undefined, true));
    for (const n of [3, 10]) emit(await benchHe(n));
  }
  if (!values.only || values.only === 'aggregation') {
    // Aggregation of the real model size: 3 and 10 clients, each strategy's server step.
    const P = 569_091;
    for (const n of [3, 10]) {
      const results = Array.from({ length: n }, (_, i) => ({ hospitalId: `H${i + 1}`, weights: Float32Array.from({ length: P }, (_, j) => Math.sin(i * 7 + j)), numSamples: 100 + i, metrics: {} }));
      const global = new Float32Array(P);
      const row: Record<string, unknown> = { bench: 'aggregation', clients: n, params: P };
      for (const name of ['fedavg', 'fedadam', 'median', 'trimmed', 'krum']) {
        const strategy = createStrategy(name, { minFitClients: 1, minAvailableClients: 1, minEvaluateClients: 1 });
        row[`${name}_ms_median`] = timeIt(5, () => strategy.aggregateFit(1, global, results));
      }
      row.weighted_average_ms_median = timeIt(5, () => weightedAverage(results.map((r) => r.weights), results.map((r) => r.numSamples)));
      emit(row);
    }
  }
  if (!values.only || values.only === 'federation') {
    // The spec cohort (H1–H3, 3000 patients), 1 local epoch, one client process per hospital.
    const dir = mkdtempSync(path.join(tmpdir(), 'fedcare-bench-'));
    generateToDir(KNOWN_HOSPITALS, 42, dir);
    const records = KNOWN_HOSPITALS.flatMap((h) => generateHospital(h, { seed: 42 }).records);
    const rounds = Number(values['federation-rounds']);
    const config = runConfigSchema.parse({ rounds, local_epochs: 1, early_stopping_patience: 0 });
    const t0 = performance.now();
    const res = await runSimulation({ records, hospitals: [...KNOWN_HOSPITALS], config, clients: 'process', data: dir });
    const perClientUp = res.rounds.flatMap((r) => Object.values(r.bytes).map((b) => b.up));
    const perClientDown = res.rounds.flatMap((r) => Object.values(r.bytes).map((b) => b.down));
    emit({
      bench: 'federation_round',
      hospitals: 3,
      patients: records.length,
      local_epochs: 1,
      rounds,
      round_seconds_median: median(res.rounds.map((r) => r.metrics.round_duration_seconds as number)),
      aggregation_seconds_median: median(res.rounds.map((r) => r.metrics.aggregation_time_seconds as number)),
      bytes_up_per_client_round_median: median(perClientUp),
      bytes_down_per_client_round_median: median(perClientDown),
      total_seconds: (performance.now() - t0) / 1000,
      test_auc_roc: (res.summary.test as { auc_roc?: number } | undefined)?.auc_roc ?? null,
    });
  }
  if (!values.only || values.only === 'scale') {
    // Many hospitals for one round: small cohorts modelled on H1–H3, clients in this process.
    for (const n of [10, 30]) {
      const hospitals = Array.from({ length: n }, (_, i) => `S${i + 1}`);
      const records = hospitals.flatMap((h, i) => generateHospital(h, { seed: 7, patients: 40, basedOn: KNOWN_HOSPITALS[i % 3] as string }).records);
      const config = runConfigSchema.parse({ rounds: 1, local_epochs: 1, min_fit_clients: n, min_evaluate_clients: n, min_available_clients: n, early_stopping_patience: 0 });
      const t0 = performance.now();
      const res = await runSimulation({ records, hospitals, config, clients: 'inprocess' });
      emit({
        bench: 'federation_scale',
        hospitals: n,
        patients_per_hospital: 40,
        rounds: 1,
        seconds_total: (performance.now() - t0) / 1000,
        round_seconds: res.rounds[0]?.metrics.round_duration_seconds ?? null,
        aggregation_seconds: res.rounds[0]?.metrics.aggregation_time_seconds ?? null,
        communication_bytes: res.rounds[0]?.metrics.communication_bytes ?? null,
        status: res.summary.status,
      });
    }
  }
  if (values.only === 'privacy') {
    const epsilons = values['privacy-epsilons'].split(',').map((t) => {
      const v = t.trim() === 'inf' || t.trim() === '∞' ? Number.POSITIVE_INFINITY : Number(t);
      if (!(v > 0)) throw new CliError(`--privacy-epsilons: "${t}" is not a positive number or inf`, 2);
      return v;
    });
    const canaries = Number(values['privacy-canaries']);
    if (!(Number.isInteger(canaries) && (canaries === 0 || canaries >= 10))) throw new CliError(`--privacy-canaries must be 0 or an integer ≥ 10, got "${values['privacy-canaries']}"`, 2);
    await initTf('wasm');
    const rows = await benchPrivacy({
      epsilons,
      canaries,
      ...(values['privacy-patients'] ? { patients: Number(values['privacy-patients']) } : {}),
      plot: values['privacy-plot'],
      onInfo: (m) => process.stderr.write(`${m}\n`),
    });
    for (const r of rows) emit(r);
    process.stderr.write(`plot written to ${values['privacy-plot']}\n`);
  }
  if (values.only === 'spec') {
    const scale = values['spec-scale'].split(',').map((t) => Number(t.trim()));
    if (!scale.every((n) => Number.isInteger(n) && n >= 2 && n <= 100)) throw new CliError(`--spec-scale: "${values['spec-scale']}" is not a list of hospital counts 2–100`, 2);
    const patients = Number(values['spec-patients']);
    if (!(Number.isInteger(patients) && patients >= 20)) throw new CliError(`--spec-patients must be an integer ≥ 20, got "${values['spec-patients']}"`, 2);
    const parts = values['spec-parts'].split(',').map((t) => t.trim());
    const known = ['round', 'bytes', 'scaling'] as const;
    const bad = parts.filter((t) => !(known as readonly string[]).includes(t));
    if (bad.length > 0 || parts.length === 0) throw new CliError(`--spec-parts: "${values['spec-parts']}" is not a list of ${known.join(', ')}`, 2);
    await benchSpec({ scale, scalePatients: patients, parts: parts as (typeof known)[number][], plot: values['spec-plot'], onInfo: (m) => process.stderr.write(`${m}\n`) }, emit);
    if (parts.includes('scaling')) process.stderr.write(`plot written to ${values['spec-plot']}\n`);
  }
  // (A run of only non-TF benches still reports memory: initialise the backend it reads.)
  await initTf('wasm');
  emit({ bench: 'memory', backend: tf.engine().backendName ?? 'none', tf_num_tensors: tf.memory().numTensors, rss_mb: Math.round(process.memoryUsage().rss / 1e6) });
  return 0;
}
