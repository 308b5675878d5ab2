/**
 * Record → model inputs (seed spec 1.3).
 *
 *   demographics  10  age, male, BMI, 4 ethnicity one-hots (Other = all zero), #comorbidities,
 *                     #medications, length of stay — continuous ones z-scored, BMI 0 when missing
 *   vitals        T×10  5 channels resampled onto T bins over the 84-day window ending at
 *                     discharge, z-scored, forward-filled, + 5 mask channels (1 = measured in bin)
 *   labs          T×16  8 channels + 8 masks, same grid (creatinine on a log scale)
 *   biology       20  per marker (CRP, D-dimer, troponin, BNP, LDL; all but LDL on a log scale):
 *                     mean, standard deviation, slope per 30 days, last value — z-scored, 0 if absent
 *   omics         32  60 genes + 40 log-metabolites, standardised, projected on the top 32
 *                     principal components of their correlation matrix; 0 if absent
 *
 * Normalisation statistics and the PCA basis are global: `computeFeatureSums` returns additive
 * sums (counts, sums, sums of squares, cross-product sums) per hospital, `mergeFeatureSums` adds
 * them (what the coordinator does, or secure aggregation), `finalizeFeatureStats` turns the total
 * into means, standard deviations and the basis. No hospital needs another's records.
 */
import { symmetricEigen } from './linalg';
import type { PatientRecord } from './schema';
import { GENES, LAB_NAMES, MARKER_NAMES, METABOLITES, RISK_LEVELS, VITAL_NAMES } from './vocabulary';
import { OBSERVATION_WINDOW_DAYS } from './generator';

export const DEMOGRAPHICS_DIM = 10;
export const BIOLOGY_DIM = 20;
export const OMICS_RAW_DIM = GENES.length + METABOLITES.length;
export const OMICS_DIM = 32;
export const VITALS_CHANNELS = VITAL_NAMES.length;
export const LAB_CHANNELS = LAB_NAMES.length;
export const DEFAULT_SEQ_LEN = 30;

const DEMO_CONTINUOUS = ['age', 'bmi', 'comorbidities', 'medications', 'length_of_stay'] as const;
const ETHNICITY_ONE_HOT = ['Caucasian', 'African American', 'Hispanic', 'Asian'] as const;
const LOG_LABS = new Set(['creatinine']);
const LOG_MARKERS = new Set(['crp', 'd_dimer', 'troponin', 'bnp']);
const DAY_MS = 86_400_000;

export interface FeatureConfig {
  /** Length T of the resampled vitals and labs sequences. */
  readonly seqLen: number;
  /** Days of history before (and including) discharge that the sequences cover. */
  readonly windowDays: number;
}
export const DEFAULT_FEATURE_CONFIG: FeatureConfig = { seqLen: DEFAULT_SEQ_LEN, windowDays: OBSERVATION_WINDOW_DAYS };

/** Additive first and second moments of d channels over the values that were observed. */
export interface MomentSums {
  count: number[];
  sum: number[];
  sumSq: number[];
}

export interface FeatureSums {
  /** Records seen. */
  records: number;
  demographics: MomentSums;
  vitals: MomentSums;
  labs: MomentSums;
  biology: MomentSums;
  omics: MomentSums;
  /** Σ x xᵀ over records with a complete omics profile (row-major OMICS_RAW_DIM²), and their count. */
  omicsCross: number[];
  omicsRows: number;
}

export interface ChannelStats {
  mean: number[];
  std: number[];
}

export interface FeatureStats {
  demographics: ChannelStats;
  vitals: ChannelStats;
  labs: ChannelStats;
  biology: ChannelStats;
  omics: ChannelStats;
  /** OMICS_DIM × OMICS_RAW_DIM, rows are principal axes of the standardised omics. */
  pcaBasis: number[];
  /** Fraction of the standardised omics variance each component explains. */
  pcaExplained: number[];
  records: number;
}

function emptyMoments(d: number): MomentSums {
  return { count: new Array<number>(d).fill(0), sum: new Array<number>(d).fill(0), sumSq: new Array<number>(d).fill(0) };
}

function addMoment(m: MomentSums, j: number, x: number): void {
  if (!Number.isFinite(x)) return;
  m.count[j]! += 1;
  m.sum[j]! += x;
  m.sumSq[j]! += x * x;
}

function mergeMoments(a: MomentSums, b: MomentSums): MomentSums {
  return {
    count: a.count.map((v, j) => v + (b.count[j] as number)),
    sum: a.sum.map((v, j) => v + (b.sum[j] as number)),
    sumSq: a.sumSq.map((v, j) => v + (b.sumSq[j] as number)),
  };
}

function finalizeMoments(m: MomentSums): ChannelStats {
  const mean = m.sum.map((s, j) => (m.count[j] ? s / (m.count[j] as number) : 0));
  const std = m.sumSq.map((s2, j) => {
    const c = m.count[j] as number;
    if (c < 2) return 1;
    const variance = (s2 - c * (mean[j] as number) ** 2) / (c - 1);
    return variance > 1e-12 ? Math.sqrt(variance) : 1;
  });
  return { mean, std };
}

// ---------------------------------------------------------------------------------------------
// Raw (un-normalised) values per modality.

function demographicsRaw(r: PatientRecord): { continuous: number[]; male: number; ethnicity: number[] } {
  const d = r.demographics;
  return {
    continuous: [d.age, d.bmi ?? Number.NaN, d.comorbidities.length, d.medications.length, r.metadata.length_of_stay],
    male: d.gender === 'M' ? 1 : 0,
    ethnicity: ETHNICITY_ONE_HOT.map((e) => (d.ethnicity === e ? 1 : 0)),
  };
}

function transform(value: number | null | undefined, log: boolean): number {
  if (value === null || value === undefined) return Number.NaN;
  return log ? Math.log1p(value) : value;
}

/** Day offset (0 … windowDays−1, may be outside) of an ISO date relative to the window start. */
function windowOffset(iso: string, windowStartMs: number): number {
  return Math.round((Date.parse(iso) - windowStartMs) / DAY_MS);
}

function windowStart(r: PatientRecord, cfg: FeatureConfig): number {
  return Date.parse(r.metadata.discharge_date) - (cfg.windowDays - 1) * DAY_MS;
}

type Series = { timestamps: string[] } & Record<string, unknown>;

/** Values of one series in the observation window, transformed: [time index][channel]. */
function seriesInWindow(
  series: Series,
  channels: readonly string[],
  logSet: Set<string>,
  startMs: number,
  cfg: FeatureConfig,
): { day: number; values: number[] }[] {
  const out: { day: number; values: number[] }[] = [];
  series.timestamps.forEach((ts, t) => {
    const day = windowOffset(ts, startMs);
    if (day < 0 || day >= cfg.windowDays) return;
    out.push({ day, values: channels.map((c) => transform((series[c] as (number | null)[])[t], logSet.has(c))) });
  });
  return out;
}

function biologyRaw(r: PatientRecord, cfg: FeatureConfig): number[] {
  const start = windowStart(r, cfg);
  const obs = seriesInWindow(r.biology_markers as Series, MARKER_NAMES, LOG_MARKERS, start, cfg);
  const out: number[] = [];
  MARKER_NAMES.forEach((_, c) => {
    const pts = obs.map((o) => ({ x: o.day / 30, y: o.values[c] as number })).filter((p) => Number.isFinite(p.y));
    if (pts.length === 0) {
      out.push(Number.NaN, Number.NaN, Number.NaN, Number.NaN);
      return;
    }
    const mean = pts.reduce((s, p) => s + p.y, 0) / pts.length;
    const std = Math.sqrt(pts.reduce((s, p) => s + (p.y - mean) ** 2, 0) / pts.length);
    const mx = pts.reduce((s, p) => s + p.x, 0) / pts.length;
    const sxx = pts.reduce((s, p) => s + (p.x - mx) ** 2, 0);
    const slope = sxx > 0 ? pts.reduce((s, p) => s + (p.x - mx) * (p.y - mean), 0) / sxx : 0;
    out.push(mean, std, slope, (pts[pts.length - 1] as { y: number }).y);
  });
  return out;
}

function omicsRaw(r: PatientRecord): number[] | null {
  const g = r.omics_data.gene_expression;
  const m = r.omics_data.metabolomics;
  if (!g || !m) return null;
  const out = GENES.map((name) => g[name] ?? Number.NaN);
  for (const name of METABOLITES) {
    const v = m[name];
    out.push(v === undefined || v <= 0 ? Number.NaN : Math.log(v));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sums → statistics.

/** Additive statistics of one hospital's records; the building block of federated preprocessing. */
export function computeFeatureSums(records: readonly PatientRecord[], cfg: FeatureConfig = DEFAULT_FEATURE_CONFIG): FeatureSums {
  const sums: FeatureSums = {
    records: records.length,
    demographics: emptyMoments(DEMO_CONTINUOUS.length),
    vitals: emptyMoments(VITALS_CHANNELS),
    labs: emptyMoments(LAB_CHANNELS),
    biology: emptyMoments(BIOLOGY_DIM),
    omics: emptyMoments(OMICS_RAW_DIM),
    omicsCross: new Array<number>(OMICS_RAW_DIM * OMICS_RAW_DIM).fill(0),
    omicsRows: 0,
  };
  for (const r of records) {
    demographicsRaw(r).continuous.forEach((x, j) => addMoment(sums.demographics, j, x));
    const start = windowStart(r, cfg);
    for (const o of seriesInWindow(r.clinical_timeseries as Series, VITAL_NAMES, new Set(), start, cfg)) {
      o.values.forEach((x, j) => addMoment(sums.vitals, j, x));
    }
    for (const o of seriesInWindow(r.lab_results as Series, LAB_NAMES, LOG_LABS, start, cfg)) {
      o.values.forEach((x, j) => addMoment(sums.labs, j, x));
    }
    biologyRaw(r, cfg).forEach((x, j) => addMoment(sums.biology, j, x));
    const om = omicsRaw(r);
    if (om && om.every(Number.isFinite)) {
      om.forEach((x, j) => addMoment(sums.omics, j, x));
      sums.omicsRows++;
      for (let i = 0; i < OMICS_RAW_DIM; i++) {
        const xi = om[i] as number;
        for (let j = i; j < OMICS_RAW_DIM; j++) sums.omicsCross[i * OMICS_RAW_DIM + j]! += xi * (om[j] as number);
      }
    }
  }
  for (let i = 0; i < OMICS_RAW_DIM; i++) {
    for (let j = 0; j < i; j++) sums.omicsCross[i * OMICS_RAW_DIM + j] = sums.omicsCross[j * OMICS_RAW_DIM + i] as number;
  }
  return sums;
}

export function mergeFeatureSums(a: FeatureSums, b: FeatureSums): FeatureSums {
  return {
    records: a.records + b.records,
    demographics: mergeMoments(a.demographics, b.demographics),
    vitals: mergeMoments(a.vitals, b.vitals),
    labs: mergeMoments(a.labs, b.labs),
    biology: mergeMoments(a.biology, b.biology),
    omics: mergeMoments(a.omics, b.omics),
    omicsCross: a.omicsCross.map((v, j) => v + (b.omicsCross[j] as number)),
    omicsRows: a.omicsRows + b.omicsRows,
  };
}

/**
 * FeatureSums as one vector, for secure aggregation of the preprocessing stage (the masked sum of
 * the vectors is the vector of the merged sums): records, omicsRows, then count/sum/sumSq of
 * demographics, vitals, labs, biology and omics, then the upper triangle (i ≤ j, row by row) of the
 * omics cross-products (the lower one is its mirror).
 */
/** Channels of each block of moments, in their flattened order. */
const MOMENT_DIMS = { demographics: DEMO_CONTINUOUS.length, vitals: VITALS_CHANNELS, labs: LAB_CHANNELS, biology: BIOLOGY_DIM, omics: OMICS_RAW_DIM } as const;
const MOMENT_BLOCKS = Object.keys(MOMENT_DIMS) as (keyof typeof MOMENT_DIMS)[];

export const FEATURE_SUMS_LENGTH = 2 + 3 * Object.values(MOMENT_DIMS).reduce((a, b) => a + b, 0) + (OMICS_RAW_DIM * (OMICS_RAW_DIM + 1)) / 2;

export function flattenFeatureSums(sums: FeatureSums): Float64Array {
  const out = new Float64Array(FEATURE_SUMS_LENGTH);
  let k = 0;
  out[k++] = sums.records;
  out[k++] = sums.omicsRows;
  for (const block of MOMENT_BLOCKS) {
    const m = sums[block];
    for (const part of [m.count, m.sum, m.sumSq]) for (const v of part) out[k++] = v;
  }
  for (let i = 0; i < OMICS_RAW_DIM; i++) for (let j = i; j < OMICS_RAW_DIM; j++) out[k++] = sums.omicsCross[i * OMICS_RAW_DIM + j] as number;
  return out;
}

/**
 * The inverse of flattenFeatureSums, for a (summed) vector. Counts come back as integers (a sum of
 * integers is exact in the fixed-point encoding); a vector that is not such a sum (wrong length,
 * non-finite, a negative count or sum of squares) is an error naming the entry.
 */
export function unflattenFeatureSums(v: Float64Array | readonly number[]): FeatureSums {
  if (v.length !== FEATURE_SUMS_LENGTH) throw new RangeError(`feature sums: ${v.length} values, expected ${FEATURE_SUMS_LENGTH}`);
  let k = 0;
  const next = (what: string, nonNegative: boolean, integer: boolean): number => {
    const x = v[k++] as number;
    if (!Number.isFinite(x)) throw new RangeError(`feature sums: ${what} is ${x}`);
    const y = integer ? Math.round(x) : x;
    // (Rounding leaves a sum of squares a hair below 0 at most; anything more is not a sum of records.)
    if (nonNegative && y < -1e-6) throw new RangeError(`feature sums: ${what} is ${x}, below 0`);
    return nonNegative ? Math.max(0, y) : y;
  };
  const records = next('records', true, true);
  const omicsRows = next('omicsRows', true, true);
  const blocks = {} as Record<keyof typeof MOMENT_DIMS, MomentSums>;
  for (const block of MOMENT_BLOCKS) {
    const d = MOMENT_DIMS[block];
    const count = Array.from({ length: d }, (_, j) => next(`${block}.count[${j}]`, true, true));
    const sum = Array.from({ length: d }, (_, j) => next(`${block}.sum[${j}]`, false, false));
    const sumSq = Array.from({ length: d }, (_, j) => next(`${block}.sumSq[${j}]`, true, false));
    blocks[block] = { count, sum, sumSq };
  }
  const omicsCross = new Array<number>(OMICS_RAW_DIM * OMICS_RAW_DIM).fill(0);
  for (let i = 0; i < OMICS_RAW_DIM; i++) {
    for (let j = i; j < OMICS_RAW_DIM; j++) {
      const x = next(`omicsCross[${i}][${j}]`, i === j, false);
      omicsCross[i * OMICS_RAW_DIM + j] = x;
      omicsCross[j * OMICS_RAW_DIM + i] = x;
    }
  }
  return { records, omicsRows, ...blocks, omicsCross };
}

/** Global statistics and the shared PCA basis from (merged) sums. */
export function finalizeFeatureStats(sums: FeatureSums, components = OMICS_DIM): FeatureStats {
  const omics = finalizeMoments(sums.omics);
  const d = OMICS_RAW_DIM;
  const corr = new Float64Array(d * d);
  const n = sums.omicsRows;
  if (n >= 2) {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        const cov = ((sums.omicsCross[i * d + j] as number) - n * (omics.mean[i] as number) * (omics.mean[j] as number)) / (n - 1);
        corr[i * d + j] = cov / ((omics.std[i] as number) * (omics.std[j] as number));
      }
    }
  } else {
    for (let i = 0; i < d; i++) corr[i * d + i] = 1;
  }
  const eig = symmetricEigen(corr, d);
  const total = eig.values.reduce((s, v) => s + Math.max(0, v), 0) || 1;
  return {
    demographics: finalizeMoments(sums.demographics),
    vitals: finalizeMoments(sums.vitals),
    labs: finalizeMoments(sums.labs),
    biology: finalizeMoments(sums.biology),
    omics,
    pcaBasis: Array.from(eig.vectors.subarray(0, components * d)),
    pcaExplained: Array.from(eig.values.subarray(0, components), (v) => Math.max(0, v) / total),
    records: sums.records,
  };
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/** Model inputs for n records, flat row-major Float32Arrays (shapes in comments). */
export interface FeatureBatch {
  n: number;
  seqLen: number;
  /** [n, 10] */
  demographics: Float32Array;
  /** [n, T, 10]: 5 z-scored vitals, then their 5 masks */
  vitals: Float32Array;
  /** [n, T, 16]: 8 z-scored labs, then their 8 masks */
  labs: Float32Array;
  /** [n, 20] */
  biology: Float32Array;
  /** [n, 32] */
  omics: Float32Array;
  /** Risk class per record (0 Low, 1 Medium, 2 High) or −1 when unknown. */
  labels: Int32Array;
  /** outcomes.readmission_30d per record: 1, 0, or −1 when unknown (the multi-task heads' target). */
  readmission?: Int8Array;
  /** outcomes.days_to_readmission per record (1–30), NaN when not readmitted or unknown. */
  daysToReadmission?: Float32Array;
  patientIds: string[];
}

function z(x: number, stats: ChannelStats, j: number): number {
  return Number.isFinite(x) ? (x - (stats.mean[j] as number)) / (stats.std[j] as number) : 0;
}

/** Resamples observations onto T equal bins of the window: bin mean, forward fill, mask. */
function encodeSequence(
  obs: { day: number; values: number[] }[],
  channels: number,
  stats: ChannelStats,
  cfg: FeatureConfig,
  out: Float32Array,
  offset: number,
): void {
  const T = cfg.seqLen;
  const sum = new Float64Array(T * channels);
  const cnt = new Uint16Array(T * channels);
  for (const o of obs) {
    const bin = Math.min(T - 1, Math.floor((o.day * T) / cfg.windowDays));
    o.values.forEach((x, c) => {
      if (!Number.isFinite(x)) return;
      sum[bin * channels + c]! += x;
      cnt[bin * channels + c]! += 1;
    });
  }
  const width = 2 * channels;
  for (let c = 0; c < channels; c++) {
    let last = 0;
    for (let t = 0; t < T; t++) {
      const k = t * channels + c;
      const at = offset + t * width;
      if (cnt[k]) {
        last = z((sum[k] as number) / (cnt[k] as number), stats, c);
        out[at + channels + c] = 1;
      }
      out[at + c] = last;
    }
  }
}

/** Encodes records with global statistics into model inputs. */
export function encodeRecords(records: readonly PatientRecord[], stats: FeatureStats, cfg: FeatureConfig = DEFAULT_FEATURE_CONFIG): FeatureBatch {
  const n = records.length;
  const T = cfg.seqLen;
  if (!Number.isInteger(T) || T < 1) throw new Error(`seqLen must be a positive integer, got ${T}`);
  const batch: FeatureBatch = {
    n,
    seqLen: T,
    demographics: new Float32Array(n * DEMOGRAPHICS_DIM),
    vitals: new Float32Array(n * T * 2 * VITALS_CHANNELS),
    labs: new Float32Array(n * T * 2 * LAB_CHANNELS),
    biology: new Float32Array(n * BIOLOGY_DIM),
    omics: new Float32Array(n * OMICS_DIM),
    labels: new Int32Array(n),
    readmission: new Int8Array(n),
    daysToReadmission: new Float32Array(n),
    patientIds: records.map((r) => r.patient_id),
  };
  const basis = stats.pcaBasis;
  const comps = basis.length / OMICS_RAW_DIM;
  if (comps !== OMICS_DIM) throw new Error(`PCA basis has ${comps} components, expected ${OMICS_DIM}`);
  records.forEach((r, i) => {
    const demo = demographicsRaw(r);
    const d = batch.demographics;
    const base = i * DEMOGRAPHICS_DIM;
    d[base] = z(demo.continuous[0] as number, stats.demographics, 0);
    d[base + 1] = demo.male;
    d[base + 2] = z(demo.continuous[1] as number, stats.demographics, 1);
    demo.ethnicity.forEach((v, j) => (d[base + 3 + j] = v));
    for (let j = 2; j < 5; j++) d[base + 5 + j] = z(demo.continuous[j] as number, stats.demographics, j);

    const start = windowStart(r, cfg);
    encodeSequence(seriesInWindow(r.clinical_timeseries as Series, VITAL_NAMES, new Set(), start, cfg), VITALS_CHANNELS, stats.vitals, cfg, batch.vitals, i * T * 2 * VITALS_CHANNELS);
    encodeSequence(seriesInWindow(r.lab_results as Series, LAB_NAMES, LOG_LABS, start, cfg), LAB_CHANNELS, stats.labs, cfg, batch.labs, i * T * 2 * LAB_CHANNELS);

    biologyRaw(r, cfg).forEach((x, j) => (batch.biology[i * BIOLOGY_DIM + j] = z(x, stats.biology, j)));

    const om = omicsRaw(r);
    if (om) {
      const std = om.map((x, j) => z(x, stats.omics, j));
      for (let c = 0; c < OMICS_DIM; c++) {
        let s = 0;
        for (let j = 0; j < OMICS_RAW_DIM; j++) s += (basis[c * OMICS_RAW_DIM + j] as number) * (std[j] as number);
        batch.omics[i * OMICS_DIM + c] = s;
      }
    }
    const level = r.outcomes.risk_level;
    batch.labels[i] = level === null ? -1 : RISK_LEVELS.indexOf(level);
    const readmitted = r.outcomes.readmission_30d;
    batch.readmission![i] = readmitted === 1 ? 1 : readmitted === 0 ? 0 : -1;
    const days = r.outcomes.days_to_readmission;
    batch.daysToReadmission![i] = readmitted === 1 && typeof days === 'number' && Number.isFinite(days) ? days : Number.NaN;
  });
  return batch;
}

/** Convenience for one site (or pooled data): sums → stats → encoded batch. */
export function fitAndEncode(records: readonly PatientRecord[], cfg: FeatureConfig = DEFAULT_FEATURE_CONFIG): { stats: FeatureStats; batch: FeatureBatch } {
  const stats = finalizeFeatureStats(computeFeatureSums(records, cfg));
  return { stats, batch: encodeRecords(records, stats, cfg) };
}
