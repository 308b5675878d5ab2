/**
 * Federated clustering of patients (seed spec 2.2; `fedcare cluster`).
 *
 * Scope: the federation runs in one process. Each `ClusterHospital` holds only its own records and
 * computes only what the protocol sends; the coordinator (this module's driver) learns every
 * quantity through an `Aggregator` (aggregator.ts), which with SecAgg+ gives it masked vectors and
 * their sum only. A run with `task: "cluster"` over the Socket.IO round engine (fl/rounds.ts) is
 * not built.
 *
 * 1. Feature statistics: Σ of each hospital's `computeFeatureSums` (one aggregation) →
 *    `finalizeFeatureStats`; every hospital encodes its records with them (features.ts).
 * 2. FederatedAutoencoder (model/autoencoder.ts) on the flattened features (demographics,
 *    biology markers, omics PCs, then the T-bin vitals and labs values; masks left out): FedAvg
 *    rounds, each hospital sending n·w and n (plus n·loss) — the coordinator divides the sums.
 * 3. Latent codes (32-d) stay at their hospitals. Federated k-means (kmeans.ts) for each k in
 *    [kMin, kMax]; k chosen by the largest federated simplified silhouette (metrics.ts).
 * 4. Per-cluster report from one more aggregation: size per hospital (each hospital fills its own
 *    slot of the vector — the per-hospital sizes are published by design), risk-level mix,
 *    readmission rate, and per-cluster Σx, Σx² of 75 readable features (the cluster-vs-rest
 *    standardised mean difference names the features that set a cluster apart).
 */
import * as tf from '@tensorflow/tfjs-core';

import {
  BIOLOGY_DIM,
  DEMOGRAPHICS_DIM,
  LAB_CHANNELS,
  LAB_NAMES,
  MARKER_NAMES,
  OBSERVATION_WINDOW_DAYS,
  OMICS_DIM,
  RISK_LEVELS,
  VITALS_CHANNELS,
  VITAL_NAMES,
  computeFeatureSums,
  encodeRecords,
  finalizeFeatureStats,
  flattenFeatureSums,
  unflattenFeatureSums,
  type FeatureBatch,
  type FeatureConfig,
  type FeatureStats,
  type PatientRecord,
} from '../data';
import { createAutoencoder, flattenWeights, unflattenWeights, type FederatedAutoencoder } from '../model';
import { Rng } from '../util/random';
import type { Aggregator } from './aggregator';
import { assignPoints, candidatePool, federatedKMeans, federatedMoments, federatedSilhouette, type KMeansResult, type Site } from './kmeans';

export interface ClusterOptions {
  readonly rounds: number;
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly seqLen: number;
  readonly kMin: number;
  readonly kMax: number;
  readonly latentDim?: number;
  readonly hidden?: readonly number[];
  readonly onInfo?: (msg: string) => void;
  readonly onRound?: (round: number, loss: number) => void;
}

export const DEFAULT_CLUSTER_OPTIONS = { rounds: 5, localEpochs: 2, batchSize: 64, learningRate: 1e-3, seed: 1, seqLen: 30, kMin: 2, kMax: 8 } as const;

/** Width of the autoencoder's input for T bins: 10 + 20 + 32 + T·(5 + 8). */
export const flatWidth = (seqLen: number): number => DEMOGRAPHICS_DIM + BIOLOGY_DIM + OMICS_DIM + seqLen * (VITALS_CHANNELS + LAB_CHANNELS);

/** Names of the 75 report features (cluster profiles): demographics, markers, omics PCs, channel means over the window. */
export const REPORT_FEATURES: readonly string[] = Object.freeze([
  'age', 'male', 'bmi', 'eth_caucasian', 'eth_african_american', 'eth_hispanic', 'eth_asian', 'n_comorbidities', 'n_medications', 'length_of_stay',
  ...MARKER_NAMES.flatMap((m) => ['mean', 'sd', 'slope', 'last'].map((s) => `${m}_${s}`)),
  ...Array.from({ length: OMICS_DIM }, (_, i) => `omics_pc${i + 1}`),
  ...VITAL_NAMES.map((v) => `${v}_mean`),
  ...LAB_NAMES.map((l) => `${l}_mean`),
]);

/** Row i of a batch as the autoencoder's input (width flatWidth(T)) and as the report's 75 features. */
function flatRows(b: FeatureBatch): { x: Float32Array; report: Float64Array } {
  const T = b.seqLen;
  const W = flatWidth(T);
  const F = REPORT_FEATURES.length;
  const x = new Float32Array(b.n * W);
  const report = new Float64Array(b.n * F);
  for (let i = 0; i < b.n; i++) {
    let o = i * W;
    let r = i * F;
    const copy = (src: Float32Array, from: number, len: number) => {
      for (let j = 0; j < len; j++) {
        x[o++] = src[from + j] as number;
        report[r++] = src[from + j] as number;
      }
    };
    copy(b.demographics, i * DEMOGRAPHICS_DIM, DEMOGRAPHICS_DIM);
    copy(b.biology, i * BIOLOGY_DIM, BIOLOGY_DIM);
    copy(b.omics, i * OMICS_DIM, OMICS_DIM);
    const seq = (src: Float32Array, C: number) => {
      const base = i * T * 2 * C;
      const means = new Float64Array(C);
      for (let t = 0; t < T; t++)
        for (let c = 0; c < C; c++) {
          const v = src[base + t * 2 * C + c] as number;
          x[o++] = v;
          means[c] = (means[c] as number) + v / T;
        }
      for (let c = 0; c < C; c++) report[r++] = means[c] as number;
    };
    seq(b.vitals, VITALS_CHANNELS);
    seq(b.labs, LAB_CHANNELS);
  }
  return { x, report };
}

/** One hospital: its records, and what it derives from them locally. Nothing here leaves except through the aggregator. */
export class ClusterHospital {
  x: Float32Array = new Float32Array(0);
  report: Float64Array = new Float64Array(0);
  latents: Float32Array = new Float32Array(0);
  assignments: Int32Array = new Int32Array(0);
  constructor(
    readonly id: string,
    readonly records: readonly PatientRecord[],
  ) {}
  get n(): number {
    return this.records.length;
  }
  featureSums(cfg: FeatureConfig): Float64Array {
    return flattenFeatureSums(computeFeatureSums(this.records, cfg));
  }
  encodeFeatures(stats: FeatureStats, cfg: FeatureConfig): void {
    const rows = flatRows(encodeRecords(this.records, stats, cfg));
    this.x = rows.x;
    this.report = rows.report;
  }
  /** Local epochs of Adam from the global weights; returns [n·w…, n, n·loss]. */
  async fedAvgUpdate(model: FederatedAutoencoder, global: Float32Array, o: ClusterOptions, round: number): Promise<Float64Array> {
    unflattenWeights(model.params, global);
    const W = model.config.inputDim;
    const opt = tf.train.adam(o.learningRate);
    const vars = model.params.map((p) => p.variable);
    const rng = new Rng(`fedcare/cluster/${o.seed}/${this.id}/${round}`);
    const X = tf.tensor2d(this.x, [this.n, W]);
    let lossSum = 0;
    let batches = 0;
    try {
      for (let e = 0; e < o.localEpochs; e++) {
        const order = Int32Array.from(rng.shuffle([...Array(this.n).keys()]));
        for (let s = 0; s < this.n; s += o.batchSize) {
          const idx = tf.tensor1d(order.subarray(s, Math.min(this.n, s + o.batchSize)), 'int32');
          const xb = tf.gather(X, idx);
          const loss = opt.minimize(() => model.loss(xb, { training: true }), true, vars);
          if (loss) {
            lossSum += (await loss.data())[0] as number;
            loss.dispose();
          }
          batches++;
          xb.dispose();
          idx.dispose();
        }
      }
    } finally {
      X.dispose();
      opt.dispose();
    }
    const w = await flattenWeights(model.params);
    const out = new Float64Array(w.length + 2);
    for (let i = 0; i < w.length; i++) out[i] = this.n * (w[i] as number);
    out[w.length] = this.n;
    out[w.length + 1] = this.n * (batches ? lossSum / batches : 0);
    return out;
  }
  encodeLatents(model: FederatedAutoencoder, global: Float32Array): void {
    unflattenWeights(model.params, global);
    this.latents = tf.tidy(() => model.encode(tf.tensor2d(this.x, [this.n, model.config.inputDim]), { training: false }).dataSync() as Float32Array);
  }
  site(d: number): Site {
    if (this.latents.length !== this.n * d) throw new Error(`hospital ${this.id}: no latents`);
    return { id: this.id, points: this.latents, n: this.n };
  }
  /** [size slots H×k][risk k×3][risk-known k][readmitted k][readmission-known k][Σx k×F][Σx² k×F]. */
  reportSums(slot: number, hospitals: number, k: number): Float64Array {
    const F = REPORT_FEATURES.length;
    const { risk, riskKnown, readm, readmKnown, sx, sx2, length } = reportLayout(hospitals, k);
    const out = new Float64Array(length);
    this.records.forEach((rec, i) => {
      const c = this.assignments[i] as number;
      out[slot * k + c]! += 1;
      const level = rec.outcomes.risk_level;
      if (level !== null) {
        out[risk + c * 3 + RISK_LEVELS.indexOf(level)]! += 1;
        out[riskKnown + c]! += 1;
      }
      const ra = rec.outcomes.readmission_30d;
      if (ra !== null) {
        out[readm + c]! += ra;
        out[readmKnown + c]! += 1;
      }
      for (let f = 0; f < F; f++) {
        const v = this.report[i * F + f] as number;
        out[sx + c * F + f]! += v;
        out[sx2 + c * F + f]! += v * v;
      }
    });
    return out;
  }
}

export interface FeatureDifference {
  readonly feature: string;
  /** (mean in cluster − mean elsewhere) / pooled SD, on the standardised features. */
  readonly smd: number;
}

export interface ClusterProfile {
  readonly cluster: number;
  readonly size: number;
  readonly size_per_hospital: Record<string, number>;
  readonly risk_mix: Record<string, number>;
  readonly readmission_rate: number;
  readonly top_features: FeatureDifference[];
}

export interface ClusterRun {
  readonly input_width: number;
  readonly latent_dim: number;
  readonly autoencoder_loss: { round: number; loss: number }[];
  readonly selection: { k: number; silhouette: number; cost: number; iterations: number; reseeded: number }[];
  readonly k: number;
  readonly silhouette: number;
  readonly clusters: ClusterProfile[];
  readonly aggregations: number;
  readonly hospitals: ClusterHospital[];
}

/** Offsets of the report vector's blocks (reportSums writes it, profiles reads it): one layout for both. */
function reportLayout(hospitals: number, k: number) {
  const F = REPORT_FEATURES.length;
  const risk = hospitals * k;
  const riskKnown = risk + 3 * k;
  const readm = riskKnown + k;
  const readmKnown = readm + k;
  const sx = readmKnown + k;
  const sx2 = sx + k * F;
  return { risk, riskKnown, readm, readmKnown, sx, sx2, length: sx2 + k * F };
}

function profiles(sum: Float64Array, ids: readonly string[], k: number): ClusterProfile[] {
  const H = ids.length;
  const F = REPORT_FEATURES.length;
  const { risk, riskKnown, readm, readmKnown, sx, sx2 } = reportLayout(H, k);
  const size = (c: number) => ids.reduce((s, _h, h) => s + Math.round(sum[h * k + c] as number), 0);
  const total = Array.from({ length: k }, (_, c) => size(c)).reduce((a, b) => a + b, 0);
  return Array.from({ length: k }, (_, c) => {
    const n = size(c);
    const top: FeatureDifference[] = REPORT_FEATURES.map((feature, f) => {
      let allS = 0;
      let allS2 = 0;
      for (let q = 0; q < k; q++) {
        allS += sum[sx + q * F + f] as number;
        allS2 += sum[sx2 + q * F + f] as number;
      }
      const s = sum[sx + c * F + f] as number;
      const s2 = sum[sx2 + c * F + f] as number;
      const m = total - n;
      const meanIn = n ? s / n : 0;
      const meanOut = m ? (allS - s) / m : 0;
      const varIn = n ? Math.max(s2 / n - meanIn ** 2, 0) : 0;
      const varOut = m ? Math.max((allS2 - s2) / m - meanOut ** 2, 0) : 0;
      const sd = Math.sqrt((varIn + varOut) / 2);
      return { feature, smd: sd > 0 ? (meanIn - meanOut) / sd : 0 };
    })
      .sort((a, b) => Math.abs(b.smd) - Math.abs(a.smd))
      .slice(0, 3);
    const known = sum[riskKnown + c] as number;
    return {
      cluster: c + 1,
      size: n,
      size_per_hospital: Object.fromEntries(ids.map((h, i) => [h, Math.round(sum[i * k + c] as number)])),
      risk_mix: Object.fromEntries(RISK_LEVELS.map((l, j) => [l, known ? (sum[risk + c * 3 + j] as number) / known : Number.NaN])),
      readmission_rate: (sum[readmKnown + c] as number) ? (sum[readm + c] as number) / (sum[readmKnown + c] as number) : Number.NaN,
      top_features: top,
    };
  });
}

/** The whole pipeline; the coordinator's knowledge is exactly what `agg` returns. */
export async function runFederatedClustering(data: readonly { id: string; records: readonly PatientRecord[] }[], agg: Aggregator, o: ClusterOptions): Promise<ClusterRun> {
  if (!(o.kMin >= 2 && o.kMax >= o.kMin)) throw new Error(`k range [${o.kMin}, ${o.kMax}] is not valid (2 ≤ kMin ≤ kMax)`);
  const hospitals = [...data].sort((a, b) => (a.id < b.id ? -1 : 1)).map((h) => new ClusterHospital(h.id, h.records));
  const ids = hospitals.map((h) => h.id);
  const cfg: FeatureConfig = { seqLen: o.seqLen, windowDays: OBSERVATION_WINDOW_DAYS };
  const byId = <T>(f: (h: ClusterHospital) => T) => new Map(hospitals.map((h) => [h.id, f(h)]));

  // 1. Normalisation statistics.
  const stats = finalizeFeatureStats(unflattenFeatureSums(await agg.sum('feature-stats', byId((h) => h.featureSums(cfg)))));
  for (const h of hospitals) h.encodeFeatures(stats, cfg);

  // 2. FedAvg on the autoencoder.
  const width = flatWidth(o.seqLen);
  const model = createAutoencoder({ inputDim: width, ...(o.latentDim ? { latentDim: o.latentDim } : {}), ...(o.hidden ? { hidden: o.hidden } : {}) }, o.seed);
  const d = model.config.latentDim;
  const losses: { round: number; loss: number }[] = [];
  try {
    let global = await flattenWeights(model.params);
    for (let r = 1; r <= o.rounds; r++) {
      const updates = new Map<string, Float64Array>();
      for (const h of hospitals) updates.set(h.id, await h.fedAvgUpdate(model, global, o, r));
      const s = await agg.sum(`autoencoder/round${r}`, updates);
      const n = s[global.length] as number;
      global = Float32Array.from(s.subarray(0, global.length), (v) => v / n);
      const loss = (s[global.length + 1] as number) / n;
      losses.push({ round: r, loss });
      o.onRound?.(r, loss);
    }
    for (const h of hospitals) h.encodeLatents(model, global);
  } finally {
    model.dispose();
  }

  // 3. k-means for each k; the largest simplified silhouette wins.
  const sites = hospitals.map((h) => h.site(d));
  const moments = await federatedMoments(sites, d, agg);
  const candidates = candidatePool(moments, d, o.seed);
  const selection: ClusterRun['selection'][number][] = [];
  let best: { km: KMeansResult; silhouette: number } | undefined;
  for (let k = o.kMin; k <= o.kMax; k++) {
    const km = await federatedKMeans(sites, d, k, agg, { seed: o.seed, candidates });
    const silhouette = await federatedSilhouette(sites, d, km.centroids, k, agg);
    selection.push({ k, silhouette, cost: km.cost, iterations: km.iterations, reseeded: km.reseeded });
    o.onInfo?.(`k ${k}: simplified silhouette ${silhouette.toFixed(3)}, cost ${km.cost.toFixed(1)}, ${km.iterations} Lloyd iterations`);
    if (!best || silhouette > best.silhouette) best = { km, silhouette };
  }
  const chosen = best as { km: KMeansResult; silhouette: number };
  const k = chosen.km.k;
  for (const h of hospitals) h.assignments = assignPoints(h.site(d), d, chosen.km.centroids, k);

  // 4. The per-cluster report.
  const sum = await agg.sum('report', new Map(hospitals.map((h, i) => [h.id, h.reportSums(i, hospitals.length, k)])));
  return {
    input_width: width,
    latent_dim: d,
    autoencoder_loss: losses,
    selection,
    k,
    silhouette: chosen.silhouette,
    clusters: profiles(sum, ids, k),
    aggregations: agg.rounds,
    hospitals,
  };
}
