/**
 * Calibration of the risk probabilities: expected calibration error and reliability bins, and the
 * statistics federated temperature scaling needs.
 *
 * ECE (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3; Naeini et al. 2015):
 * the top-label confidence split into CALIBRATION_BINS equal-width bins over [0, 1];
 * ECE = Σ_b (n_b / n) · |accuracy_b − confidence_b|. Temperature scaling (Guo et al. §4.2) divides
 * the logits by one scalar T > 0, which changes no argmax (accuracy and AUC are unchanged). Here
 * each hospital returns, with its evaluation, the sum of its validation examples' negative
 * log-likelihood at every T of TEMPERATURE_GRID and its test ECE at each; the coordinator adds the
 * sums like any other statistic and picks the T of the smallest pooled NLL (`pickTemperature`).
 * Probabilities at T come from those at 1: softmax(z / T) ∝ p^(1/T).
 */

export const CALIBRATION_BINS = 10;
/** The temperatures tried (log-spaced-ish from 0.5 to 3, 1 included). */
export const TEMPERATURE_GRID = [0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.15, 1.3, 1.5, 1.75, 2, 2.5, 3] as const;

export interface ReliabilityBin {
  count: number;
  /** Mean top-label confidence in the bin (NaN when empty). */
  confidence: number;
  /** Fraction of the bin's examples whose top label is right (NaN when empty). */
  accuracy: number;
}

/** Probabilities (n × k, row-major) at temperature T: p^(1/T), renormalised per row. */
export function atTemperature(probs: ArrayLike<number>, k: number, temperature: number): Float64Array {
  const n = probs.length / k;
  const out = new Float64Array(probs.length);
  for (let i = 0; i < n; i++) {
    // In log space, shifted by the row's largest log-probability for stability.
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, Math.log(Math.max(probs[i * k + c] as number, 1e-30)) / temperature);
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const v = Math.exp(Math.log(Math.max(probs[i * k + c] as number, 1e-30)) / temperature - max);
      out[i * k + c] = v;
      sum += v;
    }
    for (let c = 0; c < k; c++) out[i * k + c] = (out[i * k + c] as number) / sum;
  }
  return out;
}

/** Top-label ECE and the reliability bins of `probs` (n × k) against `labels` (n class ids). */
export function expectedCalibrationError(probs: ArrayLike<number>, labels: ArrayLike<number>, k = 3, bins = CALIBRATION_BINS): { ece: number; bins: ReliabilityBin[] } {
  const n = labels.length;
  if (probs.length !== n * k) throw new Error(`calibration: ${probs.length} probabilities for ${n} labels × ${k} classes`);
  const count = new Array<number>(bins).fill(0);
  const conf = new Array<number>(bins).fill(0);
  const right = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if ((probs[i * k + c] as number) > (probs[i * k + best] as number)) best = c;
    const p = probs[i * k + best] as number;
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b]! += 1;
    conf[b]! += p;
    if (best === labels[i]) right[b]! += 1;
  }
  let ece = 0;
  const out = count.map((c, b) => {
    if (c > 0) ece += (c / n) * Math.abs((right[b] as number) / c - (conf[b] as number) / c);
    return { count: c, confidence: c > 0 ? (conf[b] as number) / c : Number.NaN, accuracy: c > 0 ? (right[b] as number) / c : Number.NaN };
  });
  return { ece: n > 0 ? ece : Number.NaN, bins: out };
}

/** Σ −log p(label) of `probs` (n × k). */
export function nllSum(probs: ArrayLike<number>, labels: ArrayLike<number>, k = 3): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) s -= Math.log(Math.max(probs[i * k + (labels[i] as number)] as number, 1e-30));
  return s;
}

const tKey = (j: number) => `t${String(j).padStart(2, '0')}`;
/** Metric names a hospital reports (every round, with its evaluation). */
export const calibrationMetricNames = {
  ece: 'ece',
  bin: (b: number, what: 'count' | 'confidence' | 'accuracy') => `reliability_${b}_${what}`,
  valNll: (j: number) => `calibration_val_nll_sum_${tKey(j)}`,
  valN: 'calibration_val_n',
  eceAt: (j: number) => `ece_${tKey(j)}`,
} as const;

/**
 * A hospital's calibration metrics for one evaluation: its test ECE and reliability bins at T = 1,
 * its test ECE at every grid T, and its validation NLL sums at every grid T (with the count).
 * Empty bins report confidence and accuracy 0 beside count 0 (metrics must be finite).
 */
export function calibrationMetrics(test: { probs: ArrayLike<number>; labels: ArrayLike<number> }, val: { probs: ArrayLike<number>; labels: ArrayLike<number> } | undefined, k = 3): Record<string, number> {
  const out: Record<string, number> = {};
  if (test.labels.length === 0) return out;
  const base = expectedCalibrationError(test.probs, test.labels, k);
  out[calibrationMetricNames.ece] = base.ece;
  base.bins.forEach((bin, b) => {
    out[calibrationMetricNames.bin(b, 'count')] = bin.count;
    out[calibrationMetricNames.bin(b, 'confidence')] = bin.count > 0 ? bin.confidence : 0;
    out[calibrationMetricNames.bin(b, 'accuracy')] = bin.count > 0 ? bin.accuracy : 0;
  });
  TEMPERATURE_GRID.forEach((t, j) => {
    out[calibrationMetricNames.eceAt(j)] = expectedCalibrationError(atTemperature(test.probs, k, t), test.labels, k).ece;
    if (val && val.labels.length > 0) out[calibrationMetricNames.valNll(j)] = nllSum(atTemperature(val.probs, k, t), val.labels, k);
  });
  if (val && val.labels.length > 0) out[calibrationMetricNames.valN] = val.labels.length;
  return out;
}

/**
 * The round's temperature and its pooled ECE before and after, from the hospitals' calibration
 * metrics: T minimises the summed validation NLL; pooled ECE is the test-example-weighted mean of the
 * hospitals' ECEs (at 1 and at T). Undefined when no hospital reported validation sums.
 */
export function pickTemperature(hospitals: readonly { metrics: Readonly<Record<string, number>>; numExamples: number }[]): { temperature: number; ece: number; eceCalibrated: number } | undefined {
  const withVal = hospitals.filter((h) => TEMPERATURE_GRID.every((_, j) => Number.isFinite(h.metrics[calibrationMetricNames.valNll(j)])));
  if (withVal.length === 0) return undefined;
  let best = 0;
  let bestNll = Infinity;
  TEMPERATURE_GRID.forEach((_, j) => {
    const nll = withVal.reduce((s, h) => s + (h.metrics[calibrationMetricNames.valNll(j)] as number), 0);
    if (nll < bestNll) {
      bestNll = nll;
      best = j;
    }
  });
  const weighted = (key: string) => {
    const usable = hospitals.filter((h) => Number.isFinite(h.metrics[key]) && h.numExamples > 0);
    const n = usable.reduce((s, h) => s + h.numExamples, 0);
    return n > 0 ? usable.reduce((s, h) => s + (h.metrics[key] as number) * h.numExamples, 0) / n : Number.NaN;
  };
  return { temperature: TEMPERATURE_GRID[best] as number, ece: weighted(calibrationMetricNames.ece), eceCalibrated: weighted(calibrationMetricNames.eceAt(best)) };
}
