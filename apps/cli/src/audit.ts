/**
 * `fedcare audit` and `bench --only privacy`'s audit rows: does a DP run leak more than its ε?
 *
 * A one-run audit (Steinke, Nasr & Jagielski 2023; statistics in shared/src/privacy/audit.ts) of
 * the audited hospital's DP-SGD exactly as hospitals run it (trainLocal with the discrete Gaussian,
 * the DP recipe's schedule) inside a FedAvg federation of the generator's hospitals: m canaries —
 * synthetic out-of-distribution records (every feature drawn from N(0, 3²) in the normalised space,
 * a uniformly random risk class) — are each added to that hospital's training split with probability
 * ½; the auditor sees only the final global model (what every hospital and the coordinator see),
 * scores each canary by how much its loss fell from the initial model, guesses the top k "in" and the
 * bottom k "out" (k = m/10, fixed in advance) and turns the correct guesses into an ε lower bound at
 * 95 % confidence. Beside it, a loss-threshold membership-inference attack (Yeom et al. 2018) on the
 * real records: AUC-ROC of −loss separating the hospital's training records from its test records.
 *
 * The harness trains in one process (no coordinator, no sockets): the mechanism under audit is the
 * hospital's DP-SGD and its accountant, which are the same code either way.
 */
import {
  computeFeatureSums,
  encodeRecords,
  finalizeFeatureStats,
  generateHospital,
  KNOWN_HOSPITALS,
  OBSERVATION_WINDOW_DAYS,
  splitByHospital,
  type FeatureBatch,
  type PatientRecord,
} from '@fedcare/shared/data';
import { countParams, createModel, flattenWeights, unflattenWeights, type ModelName } from '@fedcare/shared/model';
import { DP_RECIPE, DP_SGD_ORDERS, epsilonFor, epsilonLowerBound, guessMembership, proposeDp } from '@fedcare/shared/privacy';
import { binaryAucRoc, dpSchedule, evaluate, labelledIndices, predictProbs, trainLocal } from '@fedcare/shared/train';
import { Rng } from '@fedcare/shared/util';

export interface AuditOptions {
  /** Target ε of the run; Infinity trains without noise (the audit's power check). */
  targetEpsilon: number;
  /** Patients per hospital (default: the generator's H1–H3 sizes, the spec cohort). */
  patients?: number;
  /** Canaries m (default 1000). */
  canaries?: number;
  /** The hospital whose training split gets the canaries (default H1). */
  hospital?: string;
  rounds?: number;
  localEpochs?: number;
  batchSize?: number;
  learningRate?: number;
  model?: ModelName;
  delta?: number;
  seqLen?: number;
  seed?: number;
  onInfo?: (msg: string) => void;
}

export interface AuditResult {
  target_epsilon: number | null;
  /** The audited hospital's ε by the accountant (null without noise). */
  epsilon_spent: number | null;
  noise_multiplier: number;
  sample_rate: number;
  steps: number;
  epsilon_lower_bound: number;
  confidence: number;
  canaries: number;
  canaries_included: number;
  guesses: number;
  correct: number;
  /** AUC-ROC of the canary scores against membership (0.5: no signal). */
  canary_auc: number;
  /** Loss-threshold MIA on real records: AUC-ROC of −loss, training vs test records of the hospital. */
  mia_auc: number;
  /** Pooled test macro AUC-ROC of the final model (the run stays useful). */
  test_auc_roc: number;
  parameters: number;
  seconds: number;
}

const CONFIDENCE = 0.95;

/** `rows` of `b`, then `extra` appended (same widths). */
function concatBatches(b: FeatureBatch, extra: FeatureBatch): FeatureBatch {
  const cat = (x: Float32Array, y: Float32Array) => {
    const out = new Float32Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const labels = new Int32Array(b.n + extra.n);
  labels.set(b.labels);
  labels.set(extra.labels, b.n);
  return {
    n: b.n + extra.n,
    seqLen: b.seqLen,
    demographics: cat(b.demographics, extra.demographics),
    vitals: cat(b.vitals, extra.vitals),
    labs: cat(b.labs, extra.labs),
    biology: cat(b.biology, extra.biology),
    omics: cat(b.omics, extra.omics),
    labels,
    patientIds: [...b.patientIds, ...extra.patientIds],
  };
}

/** m synthetic out-of-distribution records in the normalised feature space, random classes. */
function makeCanaries(like: FeatureBatch, m: number, rng: Rng): FeatureBatch {
  const per = (a: Float32Array) => a.length / like.n;
  // The seeded Rng: canaries are public test inputs, not privacy noise.
  const fill = (width: number) => Float32Array.from({ length: m * width }, () => rng.normal(0, 3));
  // Sequences: value channels drawn, their missingness masks set to "observed" (1).
  const seq = (width: number) => {
    const out = fill(width);
    const channels = width / like.seqLen;
    const half = channels / 2;
    for (let i = 0; i < m * like.seqLen; i++) for (let c = half; c < channels; c++) out[i * channels + c] = 1;
    return out;
  };
  return {
    n: m,
    seqLen: like.seqLen,
    demographics: fill(per(like.demographics)),
    vitals: seq(per(like.vitals)),
    labs: seq(per(like.labs)),
    biology: fill(per(like.biology)),
    omics: fill(per(like.omics)),
    labels: Int32Array.from({ length: m }, () => rng.int(0, 2)),
    patientIds: Array.from({ length: m }, (_, i) => `canary-${i}`),
  };
}

/** Per-row cross-entropy of `rows` under the model. */
async function losses(model: Parameters<typeof predictProbs>[0], batch: FeatureBatch, rows: readonly number[]): Promise<Float64Array> {
  const probs = await predictProbs(model, batch, rows);
  return Float64Array.from(rows, (r, i) => -Math.log(Math.max(probs[i * 3 + (batch.labels[r] as number)] as number, 1e-12)));
}

export async function runAudit(o: AuditOptions): Promise<AuditResult> {
  const t0 = performance.now();
  const m = o.canaries ?? 1000;
  const audited = o.hospital ?? 'H1';
  const rounds = o.rounds ?? DP_RECIPE.rounds;
  const localEpochs = o.localEpochs ?? DP_RECIPE.local_epochs;
  const batchSize = o.batchSize ?? DP_RECIPE.batch_size;
  const delta = o.delta ?? DP_RECIPE.delta;
  const seed = o.seed ?? 1;
  if (!(Number.isInteger(m) && m >= 10)) throw new Error(`canaries must be an integer ≥ 10, got ${m}`);
  if (!(KNOWN_HOSPITALS as readonly string[]).includes(audited)) throw new Error(`hospital must be one of ${KNOWN_HOSPITALS.join(', ')}, got ${audited}`);
  const finite = Number.isFinite(o.targetEpsilon);
  if (!(o.targetEpsilon > 0)) throw new Error(`target ε must be > 0 (or inf), got ${o.targetEpsilon}`);

  const records: PatientRecord[] = KNOWN_HOSPITALS.flatMap((h) => generateHospital(h, { seed: 42, ...(o.patients ? { patients: o.patients } : {}) }).records);
  const split = splitByHospital(records, 0.2, 0);
  const cfg = { seqLen: o.seqLen ?? 30, windowDays: OBSERVATION_WINDOW_DAYS };
  const stats = finalizeFeatureStats(computeFeatureSums(split.train, cfg));
  const test = encodeRecords(split.test, stats, cfg);
  const rng = new Rng(`audit/${seed}`);

  const hospitals = KNOWN_HOSPITALS.map((h) => {
    const real = encodeRecords(split.train.filter((r) => r.hospital_id === h), stats, cfg);
    return { h, real, batch: real, rows: labelledIndices(real) };
  });
  const target = hospitals.find((x) => x.h === audited)!;
  const canaries = makeCanaries(target.real, m, rng);
  const included = Array.from({ length: m }, () => rng.bernoulli(0.5));
  target.batch = concatBatches(target.real, canaries);
  target.rows = [...labelledIndices(target.real), ...included.flatMap((inc, i) => (inc ? [target.real.n + i] : []))];
  const canaryRows = Array.from({ length: m }, (_, i) => target.real.n + i);

  const sigma = finite
    ? proposeDp(o.targetEpsilon, hospitals.map((x) => ({ hospital_id: x.h, n: x.rows.length })), { rounds, delta, local_epochs: localEpochs, batch_size: batchSize }).dp.noise_multiplier
    : 0;
  const model = createModel(o.model ?? DP_RECIPE.model, seed);
  try {
    const before = await losses(model, target.batch, canaryRows);
    let global = await flattenWeights(model.params);
    for (let r = 0; r < rounds; r++) {
      const acc = new Float64Array(global.length);
      let total = 0;
      for (const [i, x] of hospitals.entries()) {
        unflattenWeights(model.params, global);
        await trainLocal(
          model,
          x.batch,
          { epochs: localEpochs, batchSize, learningRate: o.learningRate ?? DP_RECIPE.learning_rate, seed: seed * 1000 + r * 10 + i, proximalMu: 0, ...(finite ? { dp: { noiseMultiplier: sigma, maxGradNorm: DP_RECIPE.max_grad_norm } } : {}) },
          undefined,
          x.rows,
        );
        const w = await flattenWeights(model.params);
        for (let k = 0; k < w.length; k++) acc[k] = (acc[k] as number) + (w[k] as number) * x.rows.length;
        total += x.rows.length;
      }
      global = Float32Array.from(acc, (v) => v / total);
      o.onInfo?.(`audit ε ${finite ? o.targetEpsilon : '∞'}: round ${r + 1}/${rounds}`);
    }
    unflattenWeights(model.params, global);
    const after = await losses(model, target.batch, canaryRows);
    const scores = Float64Array.from(before, (b, i) => b - (after[i] as number));
    const k = Math.max(1, Math.round(m / 10));
    const { guesses, correct } = guessMembership(scores, included, k);
    // MIA on real records: the audited hospital's training records vs its test records, equal numbers.
    const ownTest = [...split.test.keys()].filter((i) => (split.test[i] as PatientRecord).hospital_id === audited && (test.labels[i] as number) >= 0);
    const members = labelledIndices(target.real).slice(0, ownTest.length);
    const memberLoss = await losses(model, target.real, members);
    const outLoss = await losses(model, test, ownTest);
    const miaAuc = binaryAucRoc([...Array.from(memberLoss, (l) => -l), ...Array.from(outLoss, (l) => -l)], [...members.map(() => true), ...ownTest.map(() => false)]);
    const { sampleRate, steps } = dpSchedule(target.rows.length, batchSize, localEpochs);
    return {
      target_epsilon: finite ? o.targetEpsilon : null,
      epsilon_spent: finite ? epsilonFor({ sampleRate, noiseMultiplier: sigma, steps: steps * rounds, delta, orders: DP_SGD_ORDERS }).epsilon : null,
      noise_multiplier: sigma,
      sample_rate: sampleRate,
      steps: steps * rounds,
      epsilon_lower_bound: epsilonLowerBound(guesses, correct, CONFIDENCE),
      confidence: CONFIDENCE,
      canaries: m,
      canaries_included: included.filter(Boolean).length,
      guesses,
      correct,
      canary_auc: binaryAucRoc(scores, included),
      mia_auc: miaAuc,
      test_auc_roc: (await evaluate(model, test)).auc_roc,
      parameters: countParams(model.params),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}
