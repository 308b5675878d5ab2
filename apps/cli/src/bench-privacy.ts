/**
 * The privacy–utility table (`fedcare bench --only privacy`): the same federation trained at each
 * target ε of the seed's search space {0.5, 1, 2, 5, 8, ∞}. For a finite ε, σ is calibrated so the
 * hospital with the largest sampling rate (the smallest training split) spends exactly the target
 * over the whole run — so no hospital is stopped early and every run trains the same rounds; the
 * others spend less. Reports pooled test macro AUC-ROC per ε, as JSON and an SVG plot.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateHospital, KNOWN_HOSPITALS, type PatientRecord } from '@fedcare/shared/data';
import { HospitalClient } from '@fedcare/shared/fl';
import { noiseForEpsilon } from '@fedcare/shared/privacy';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { dpSchedule } from '@fedcare/shared/train';
import { generateToDir } from './commands/generate';
import { runSimulation } from './commands/simulate';
import { writeFileAtomic } from './io';
import { renderChart } from './plot';

export const EPSILONS = [0.5, 1, 2, 5, 8, Number.POSITIVE_INFINITY] as const;

export interface PrivacyBenchOptions {
  /** Patients per hospital (default: the seed's H1–H3 sizes). */
  patients?: number;
  rounds: number;
  localEpochs: number;
  batchSize: number;
  delta: number;
  maxGradNorm: number;
  seqLen: number;
  epsilons?: readonly number[];
  /** Write the plot here (SVG). */
  plot?: string;
  onInfo?: (msg: string) => void;
}

export interface PrivacyBenchRow {
  bench: 'privacy_utility';
  target_epsilon: number | null;
  noise_multiplier: number;
  epsilon_spent_max: number | null;
  epsilon_spent: Record<string, number | null>;
  test_auc_roc: number | null;
  test_accuracy: number | null;
  rounds: number;
  local_epochs: number;
  patients: number;
  seconds: number;
}

export async function benchPrivacy(o: PrivacyBenchOptions): Promise<PrivacyBenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedcare-bench-privacy-'));
  generateToDir(KNOWN_HOSPITALS, 42, dir, o.patients);
  const records: PatientRecord[] = KNOWN_HOSPITALS.flatMap((h) => generateHospital(h, { seed: 42, ...(o.patients ? { patients: o.patients } : {}) }).records);
  // Each hospital's schedule, from the same split its client makes.
  const schedules = KNOWN_HOSPITALS.map((h) => dpSchedule(new HospitalClient(h, records.filter((r) => r.hospital_id === h)).numTrainExamples, o.batchSize, o.localEpochs));
  const rows: PrivacyBenchRow[] = [];
  for (const target of o.epsilons ?? EPSILONS) {
    const finite = Number.isFinite(target);
    const sigma = finite ? Math.max(...schedules.map((s) => noiseForEpsilon({ targetEpsilon: target, sampleRate: s.sampleRate, steps: s.steps * o.rounds, delta: o.delta }))) : 0;
    const config = runConfigSchema.parse({
      rounds: o.rounds,
      local_epochs: o.localEpochs,
      batch_size: o.batchSize,
      seq_len: o.seqLen,
      early_stopping_patience: 0,
      ...(finite ? { dp: { noise_multiplier: sigma, max_grad_norm: o.maxGradNorm, target_epsilon: target, delta: o.delta } } : {}),
    });
    o.onInfo?.(`privacy bench: target ε ${finite ? target : '∞'}${finite ? `, σ ${sigma.toFixed(3)}` : ''}, ${o.rounds} rounds × ${o.localEpochs} local epoch(s)`);
    const t0 = performance.now();
    const res = await runSimulation({ records, hospitals: [...KNOWN_HOSPITALS], config, clients: 'process', data: dir });
    const last = res.rounds.at(-1);
    const spent = Object.fromEntries(KNOWN_HOSPITALS.map((h) => [h, finite ? (last?.perHospital[h]?.privacy_epsilon ?? null) : null]));
    const test = res.summary.test as { auc_roc?: number; test_accuracy?: number } | undefined;
    rows.push({
      bench: 'privacy_utility',
      target_epsilon: finite ? target : null,
      noise_multiplier: sigma,
      epsilon_spent_max: finite ? Math.max(...Object.values(spent).map((v) => v ?? 0)) : null,
      epsilon_spent: spent,
      test_auc_roc: test?.auc_roc ?? null,
      test_accuracy: test?.test_accuracy ?? null,
      rounds: res.rounds.length,
      local_epochs: o.localEpochs,
      patients: records.length,
      seconds: (performance.now() - t0) / 1000,
    });
  }
  if (o.plot) {
    // ∞ is drawn at the right edge, one step past the largest finite ε.
    const finiteMax = Math.max(...rows.filter((r) => r.target_epsilon !== null).map((r) => r.target_epsilon as number), 1);
    const x = (r: PrivacyBenchRow) => r.target_epsilon ?? finiteMax * 1.5;
    writeFileAtomic(
      o.plot,
      renderChart(
        `fedcare privacy–utility: pooled test macro AUC-ROC vs target ε (∞ at x = ${(finiteMax * 1.5).toFixed(0)})`,
        [
          { title: 'test AUC-ROC', xLabel: 'target ε (δ ' + o.delta + ')', yRange: [0.4, 1], series: [{ name: 'AUC-ROC', points: rows.filter((r) => r.test_auc_roc !== null).map((r) => ({ x: x(r), y: r.test_auc_roc as number })) }] },
          { title: 'noise multiplier σ', xLabel: 'target ε', series: [{ name: 'σ', points: rows.map((r) => ({ x: x(r), y: r.noise_multiplier })) }] },
        ],
        2,
      ),
    );
  }
  return rows;
}
