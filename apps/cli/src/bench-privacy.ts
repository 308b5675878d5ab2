/**
 * The privacy–utility table (`fedcare bench --only privacy`): the spec cohort (H1–H3 from the default
 * generator, T = 30, δ = 1e-5) federated with the DP recipe (shared/src/privacy/plan.ts: compact
 * model, lot 128, 10 local epochs, 3 rounds, σ from the planner so the thirstiest hospital spends
 * the target) at each target ε, through the real coordinator and one client process per hospital —
 * and, for each ε, the one-run privacy audit and the membership-inference attack (./audit.ts).
 *
 * One JSON line per target ε: `privacy-utility` with each hospital's accountant inputs as the
 * hospital reported them (sampling rate, σ, steps summed over its rounds, δ) and the ε it charged;
 * then one `privacy-audit` line per ε. ∞ (no DP) is written as target_epsilon null.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateHospital, KNOWN_HOSPITALS, type PatientRecord } from '@fedcare/shared/data';
import { DP_RECIPE, DP_SGD_ORDERS, epsilonFor } from '@fedcare/shared/privacy';
import { generateToDir } from './commands/generate';
import { runConfigFromOptions, runSimulation, SIMULATE_OPTIONS, trainExamplesOf } from './commands/simulate';
import { runAudit, type AuditResult } from './audit';
import { writeFileAtomic } from './io';
import { renderChart } from '@fedcare/shared/report';
import { parseArgs } from 'node:util';

export const EPSILONS = [0.5, 1, 2, 5, 8, Number.POSITIVE_INFINITY] as const;

/** What the accountant is given and charges, per hospital; the mechanism is named. */
export const MECHANISM = 'sampled discrete Gaussian (Poisson sampling; RDP at integer orders, Mironov et al. 2019 bound)';

export interface PrivacyBenchOptions {
  /** Patients per hospital (default: the seed's H1–H3 sizes). */
  patients?: number;
  epsilons?: readonly number[];
  /** Audit canaries (default 1000); 0 skips the audits. */
  canaries?: number;
  /** Write the plot here (SVG). */
  plot?: string;
  onInfo?: (msg: string) => void;
}

export interface HospitalPrivacy {
  mechanism: string;
  sample_rate: number;
  noise_multiplier: number;
  steps: number;
  delta: number;
  epsilon: number;
  /** The same inputs through the accountant here: equals `epsilon` when the hospital charged what it reported. */
  epsilon_recomputed: number;
}

export interface PrivacyUtilityRow {
  bench: 'privacy-utility';
  target_epsilon: number | null;
  auc_roc: number | null;
  /** Each hospital's own test split under the final model. */
  auc_roc_per_hospital: Record<string, number | null>;
  hospitals: Record<string, HospitalPrivacy | { mechanism: 'none' }>;
  model: string;
  rounds: number;
  local_epochs: number;
  batch_size: number;
  patients: number;
  seconds: number;
  seconds_per_round: number;
}

export interface PrivacyAuditRow {
  bench: 'privacy-audit';
  target_epsilon: number | null;
  epsilon_lower_bound: number;
  mia_auc: number;
  epsilon_spent: number | null;
  canary_auc: number;
  correct: number;
  guesses: number;
  canaries: number;
  hospital: string;
  seconds: number;
}

export async function benchPrivacy(o: PrivacyBenchOptions): Promise<(PrivacyUtilityRow | PrivacyAuditRow)[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedcare-bench-privacy-'));
  generateToDir(KNOWN_HOSPITALS, 42, dir, o.patients);
  const hospitals = [...KNOWN_HOSPITALS];
  const records: PatientRecord[] = hospitals.flatMap((h) => generateHospital(h, { seed: 42, ...(o.patients ? { patients: o.patients } : {}) }).records);
  const examples = trainExamplesOf(records, hospitals);
  const rows: (PrivacyUtilityRow | PrivacyAuditRow)[] = [];
  const utility: PrivacyUtilityRow[] = [];
  const audits: PrivacyAuditRow[] = [];
  const { values: defaults } = parseArgs({ args: [], strict: true, options: SIMULATE_OPTIONS });
  for (const target of o.epsilons ?? EPSILONS) {
    const finite = Number.isFinite(target);
    // The DP recipe for every ε, ∞ included (the same model and schedule without noise): simulate --dp's defaults.
    const config = runConfigFromOptions(
      { ...defaults, dp: finite, model: DP_RECIPE.model, rounds: String(DP_RECIPE.rounds), 'local-epochs': String(DP_RECIPE.local_epochs), 'batch-size': String(DP_RECIPE.batch_size), lr: String(DP_RECIPE.learning_rate), ...(finite ? { 'target-epsilon': String(target) } : {}) },
      hospitals.length,
      examples,
    );
    o.onInfo?.(`privacy bench: target ε ${finite ? target : '∞'}${config.dp ? `, σ ${config.dp.noise_multiplier}` : ''}, ${config.rounds} rounds × ${config.local_epochs} local epochs, lot ${config.batch_size}, ${config.model} model`);
    const t0 = performance.now();
    const res = await runSimulation({ records, hospitals, config, clients: 'process', data: dir });
    const seconds = (performance.now() - t0) / 1000;
    const perHospital: PrivacyUtilityRow['hospitals'] = {};
    for (const h of hospitals) {
      if (!config.dp) {
        perHospital[h] = { mechanism: 'none' };
        continue;
      }
      const mine = res.rounds.map((r) => r.perHospital[h]).filter((m) => m?.dp_steps !== undefined);
      const q = mine[0]?.dp_sample_rate as number;
      const steps = mine.reduce((s, m) => s + (m!.dp_steps as number), 0);
      const epsilon = mine.at(-1)?.privacy_epsilon as number;
      perHospital[h] = {
        mechanism: MECHANISM,
        sample_rate: q,
        noise_multiplier: config.dp.noise_multiplier,
        steps,
        delta: config.dp.delta,
        epsilon,
        epsilon_recomputed: epsilonFor({ sampleRate: q, noiseMultiplier: config.dp.noise_multiplier, steps, delta: config.dp.delta, orders: DP_SGD_ORDERS }).epsilon,
      };
    }
    const test = res.summary.test as { auc_roc?: number } | undefined;
    const perTest = (res.summary.per_hospital ?? {}) as Record<string, { auc_roc?: number }>;
    const row: PrivacyUtilityRow = {
      bench: 'privacy-utility',
      target_epsilon: finite ? target : null,
      auc_roc: test?.auc_roc ?? null,
      auc_roc_per_hospital: Object.fromEntries(hospitals.map((h) => [h, perTest[h]?.auc_roc ?? null])),
      hospitals: perHospital,
      model: config.model,
      rounds: res.rounds.length,
      local_epochs: config.local_epochs,
      batch_size: config.batch_size,
      patients: records.length,
      seconds,
      seconds_per_round: res.rounds.length ? seconds / res.rounds.length : seconds,
    };
    rows.push(row);
    utility.push(row);
    if ((o.canaries ?? 1000) > 0) {
      const a: AuditResult = await runAudit({ targetEpsilon: target, canaries: o.canaries ?? 1000, ...(o.patients ? { patients: o.patients } : {}), onInfo: o.onInfo });
      const audit: PrivacyAuditRow = {
        bench: 'privacy-audit',
        target_epsilon: finite ? target : null,
        epsilon_lower_bound: a.epsilon_lower_bound,
        mia_auc: a.mia_auc,
        epsilon_spent: a.epsilon_spent,
        canary_auc: a.canary_auc,
        correct: a.correct,
        guesses: a.guesses,
        canaries: a.canaries,
        hospital: 'H1',
        seconds: a.seconds,
      };
      rows.push(audit);
      audits.push(audit);
    }
  }
  if (o.plot) writeFileAtomic(o.plot, privacyPlot(utility, audits));
  return rows;
}

/** AUC-ROC (pooled and per hospital) and the audit's lower bound against the target ε; ∞ drawn one step right of the largest finite ε. */
function privacyPlot(utility: PrivacyUtilityRow[], audits: PrivacyAuditRow[]): string {
  const finiteMax = Math.max(1, ...utility.filter((r) => r.target_epsilon !== null).map((r) => r.target_epsilon as number));
  const x = (e: number | null) => e ?? finiteMax * 1.5;
  const hospitals = Object.keys(utility[0]?.auc_roc_per_hospital ?? {});
  return renderChart(
    `fedcare privacy–utility (DP recipe, spec cohort): test macro AUC-ROC and the audit vs target ε (∞ at x = ${(finiteMax * 1.5).toFixed(0)})`,
    [
      {
        title: 'test macro AUC-ROC',
        xLabel: 'target ε (δ 1e-5)',
        yRange: [0.4, 1],
        series: [
          { name: 'pooled', points: utility.filter((r) => r.auc_roc !== null).map((r) => ({ x: x(r.target_epsilon), y: r.auc_roc as number })) },
          ...hospitals.map((h) => ({ name: h, points: utility.filter((r) => r.auc_roc_per_hospital[h] != null).map((r) => ({ x: x(r.target_epsilon), y: r.auc_roc_per_hospital[h] as number })) })),
        ],
      },
      {
        title: 'privacy: accountant ε vs audit lower bound, MIA AUC',
        xLabel: 'target ε',
        series: [
          { name: 'ε charged (H1, accountant)', points: audits.filter((a) => a.epsilon_spent !== null).map((a) => ({ x: x(a.target_epsilon), y: a.epsilon_spent as number })) },
          { name: 'ε lower bound (one-run audit, 95 %)', points: audits.map((a) => ({ x: x(a.target_epsilon), y: a.epsilon_lower_bound })) },
          { name: 'MIA AUC', points: audits.map((a) => ({ x: x(a.target_epsilon), y: a.mia_auc })) },
        ],
      },
    ],
    2,
  );
}
