/**
 * Sanity bounds on one hospital's (or a secure total's) feature sums before they become everyone's
 * normalisation (issue 13): one hospital's sums must not set the global means (a mean age of
 * 5.6e297) nor put NaN in the PCA basis. The bounds come from the record schema's plausible ranges
 * (vocabulary.ts channels, schema.ts demographics), widened where a feature is derived (standard
 * deviations and slopes of the biology markers); a value outside them is not a sick patient but an
 * entry error or an attack.
 *
 * Checked per channel j with count c, sum s and sum of squares q over values in [lo, hi]:
 *   c ≤ records × per-record multiplicity, c·lo ≤ s ≤ c·hi, q ≤ c·max(lo², hi²), s² ≤ c·q (Cauchy–Schwarz),
 * plus records ≤ the hospital's weight bound, omicsRows ≤ records, every entry finite.
 */
import { OBSERVATION_WINDOW_DAYS } from './generator';
import type { FeatureSums, MomentSums } from './features';
import { LABS, MARKERS, VITALS, type Channel } from './vocabulary';

type Range = readonly [number, number];

const LOG_LABS = new Set(['creatinine']);
const LOG_MARKERS = new Set(['crp', 'd_dimer', 'troponin', 'bnp']);

const range = (c: Channel, log: boolean): Range => (log ? [Math.log1p(c.min), Math.log1p(c.max)] : [c.min, c.max]);

/** age (schema 0–120), BMI (10–90), #comorbidities and #medications (≤ 100 and 200), length of stay (≤ 10 years). */
const DEMOGRAPHICS: readonly Range[] = [
  [0, 120],
  [10, 90],
  [0, 100],
  [0, 200],
  [0, 3650],
];

/** Per marker: mean, standard deviation, slope per 30 days (two readings a day apart give 30 × the span; twice that for room), last value. */
function biologyRanges(): Range[] {
  const out: Range[] = [];
  for (const m of MARKERS) {
    const [lo, hi] = range(m, LOG_MARKERS.has(m.name));
    const span = hi - lo;
    out.push([lo, hi], [0, span], [-60 * span, 60 * span], [lo, hi]);
  }
  return out;
}

/** 100 omics values: gene expression and log-metabolite abundances, generously within ±1000. */
const OMICS_ABS = 1000;

export const FEATURE_RANGES: Readonly<Record<'demographics' | 'vitals' | 'labs' | 'biology', readonly Range[]>> = Object.freeze({
  demographics: DEMOGRAPHICS,
  vitals: VITALS.map((c) => range(c, false)),
  labs: LABS.map((c) => range(c, LOG_LABS.has(c.name))),
  biology: biologyRanges(),
});

/** Readings per record a series channel can hold: one per day of the window, with room for several a day. */
const SERIES_PER_RECORD = OBSERVATION_WINDOW_DAYS * 24;

function checkMoments(block: string, m: MomentSums, ranges: (j: number) => Range, maxCount: number): string | undefined {
  for (let j = 0; j < m.count.length; j++) {
    const c = m.count[j] as number;
    const s = m.sum[j] as number;
    const q = m.sumSq[j] as number;
    const [lo, hi] = ranges(j);
    const at = `${block}[${j}]`;
    if (![c, s, q].every(Number.isFinite)) return `${at}: count ${c}, sum ${s}, sum of squares ${q}: not finite`;
    if (c < 0 || c > maxCount) return `${at}: count ${c} is outside [0, ${maxCount}]`;
    const slack = 1e-6 * (1 + Math.abs(c * Math.max(Math.abs(lo), Math.abs(hi))));
    if (s < c * lo - slack || s > c * hi + slack) return `${at}: sum ${s} over ${c} values is outside the plausible range [${lo}, ${hi}] per value`;
    const maxSq = c * Math.max(lo * lo, hi * hi);
    if (q < 0 || q > maxSq * (1 + 1e-9) + slack) return `${at}: sum of squares ${q} over ${c} values is outside [0, ${maxSq}]`;
    if (s * s > c * q * (1 + 1e-9) + slack) return `${at}: sum ${s} and sum of squares ${q} over ${c} values are inconsistent (sum² > count × sum of squares)`;
  }
  return undefined;
}

/**
 * Why these sums are refused, or undefined when plausible. `maxRecords`: the most records they may
 * cover (a hospital's weight bound; for a secure total, the survivors' bounds added up).
 */
export function refuseFeatureSums(sums: FeatureSums, maxRecords: number): string | undefined {
  const n = sums.records;
  if (!Number.isInteger(n) || n < 0 || n > maxRecords) return `records: ${n} is outside [0, ${maxRecords}]`;
  if (!Number.isInteger(sums.omicsRows) || sums.omicsRows < 0 || sums.omicsRows > n) return `omicsRows: ${sums.omicsRows} is outside [0, ${n}]`;
  for (const block of ['demographics', 'biology'] as const) {
    const err = checkMoments(block, sums[block], (j) => FEATURE_RANGES[block][j] as Range, n);
    if (err) return err;
  }
  for (const block of ['vitals', 'labs'] as const) {
    const err = checkMoments(block, sums[block], (j) => FEATURE_RANGES[block][j] as Range, n * SERIES_PER_RECORD);
    if (err) return err;
  }
  const omicsErr = checkMoments('omics', sums.omics, () => [-OMICS_ABS, OMICS_ABS], sums.omicsRows);
  if (omicsErr) return omicsErr;
  const maxCross = sums.omicsRows * OMICS_ABS * OMICS_ABS * (1 + 1e-9);
  for (let i = 0; i < sums.omicsCross.length; i++) {
    const v = sums.omicsCross[i] as number;
    if (!Number.isFinite(v) || Math.abs(v) > maxCross + 1e-6) return `omicsCross[${i}]: ${v} is outside ±${maxCross}`;
  }
  return undefined;
}

/** The first non-finite number in the finalized statistics (a NaN in the PCA basis), or undefined. */
export function nonFiniteStat(stats: Record<string, unknown>, path = 'stats'): string | undefined {
  for (const [k, v] of Object.entries(stats)) {
    const at = `${path}.${k}`;
    if (typeof v === 'number' && !Number.isFinite(v)) return `${at} is ${v}`;
    if (Array.isArray(v)) {
      const i = v.findIndex((x) => typeof x === 'number' && !Number.isFinite(x));
      if (i >= 0) return `${at}[${i}] is ${v[i]}`;
    } else if (v && typeof v === 'object') {
      const inner = nonFiniteStat(v as Record<string, unknown>, at);
      if (inner) return inner;
    }
  }
  return undefined;
}
