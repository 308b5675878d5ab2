/**
 * The arithmetic of aggregation, as plain functions over flat Float32Array models (one array per
 * client, every array the same length). Strategies call these; nothing here keeps state.
 *
 * Cost: weightedAverage, coordinateMedian and trimmedMean are O(clients × params); krumScores and
 * multiKrum are O(clients² × params). Sums accumulate in Float64, and no function allocates per
 * element: scratch space is one Float64Array of `params` or of `clients`, allocated once per call.
 */

/** A client's contribution was unusable (or the set of contributions was). `hospitalId` names the culprit when there is one. */
export class AggregationError extends Error {
  constructor(
    readonly hospitalId: string | undefined,
    message: string,
  ) {
    super(hospitalId === undefined ? message : `hospital ${hospitalId}: ${message}`);
    this.name = 'AggregationError';
  }
}

/** Index of the first NaN or ±Infinity in `values`, or -1 when every value is finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity; cheaper than Number.isFinite.
    if (x - x !== 0) return i;
  }
  return -1;
}

/** Throws AggregationError naming `hospitalId` unless `values` is all finite and (when given) `expectedLength` long. */
export function assertValidWeights(
  values: ArrayLike<number>,
  expectedLength: number | undefined,
  hospitalId: string | undefined,
  what = 'weights',
): void {
  if (expectedLength !== undefined && values.length !== expectedLength) {
    throw new AggregationError(hospitalId, `${what} has ${values.length} values, the global model has ${expectedLength}`);
  }
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new AggregationError(hospitalId, `${what}[${bad}] is ${String(values[bad])}, every value must be finite`);
}

/** What aggregateFit checks before any maths (the shape of a FitResult, kept structural so this file has no imports). */
export interface WeightedContribution {
  readonly hospitalId: string;
  readonly weights: Float32Array;
  readonly numSamples: number;
}

/**
 * Validates one round's fit results against the current global model: at least one result, one
 * result per hospital, every `weights` a Float32Array as long as `global` and all finite, every
 * `numSamples` finite and > 0. Throws AggregationError naming the hospital and the problem.
 */
export function validateFitResults(global: Float32Array, results: readonly WeightedContribution[]): void {
  if (results.length === 0) throw new AggregationError(undefined, 'no fit results to aggregate');
  const seen = new Set<string>();
  for (const r of results) {
    if (seen.has(r.hospitalId)) throw new AggregationError(r.hospitalId, 'sent more than one fit result this round');
    seen.add(r.hospitalId);
    if (!(r.weights instanceof Float32Array)) throw new AggregationError(r.hospitalId, 'weights is not a Float32Array');
    if (!(Number.isFinite(r.numSamples) && r.numSamples > 0)) {
      throw new AggregationError(r.hospitalId, `numSamples is ${r.numSamples}, it must be a finite number > 0`);
    }
    assertValidWeights(r.weights, global.length, r.hospitalId);
  }
}

function requireSameLength(arrays: readonly ArrayLike<number>[]): number {
  const first = arrays[0];
  if (first === undefined) throw new RangeError('at least one array is needed');
  for (let c = 1; c < arrays.length; c++) {
    const len = (arrays[c] as ArrayLike<number>).length;
    if (len !== first.length) throw new RangeError(`array ${c} has ${len} values, array 0 has ${first.length}`);
  }
  return first.length;
}

/** Σ wᵢ·xᵢ / Σ wᵢ per coordinate, accumulated in Float64. Weights must be finite, ≥ 0, with a positive sum. */
export function weightedAverage(arrays: readonly Float32Array[], weights: readonly number[]): Float32Array {
  const len = requireSameLength(arrays);
  if (weights.length !== arrays.length) throw new RangeError(`${arrays.length} arrays but ${weights.length} weights`);
  let total = 0;
  for (const w of weights) {
    if (!(Number.isFinite(w) && w >= 0)) throw new RangeError(`weight ${w} must be finite and >= 0`);
    total += w;
  }
  if (!(total > 0)) throw new RangeError('the weights sum to 0');
  const acc = new Float64Array(len);
  for (let c = 0; c < arrays.length; c++) {
    const a = arrays[c] as Float32Array;
    const w = weights[c] as number;
    if (w === 0) continue;
    for (let i = 0; i < len; i++) acc[i] = (acc[i] as number) + w * (a[i] as number);
  }
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = (acc[i] as number) / total;
  return out;
}

/** Sorts the first `n` entries of `s` ascending in place: insertion sort, the fastest for the handful of clients a round has. */
function sortPrefix(s: Float64Array, n: number): void {
  if (n > 32) {
    s.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = s[i] as number;
    let j = i - 1;
    while (j >= 0 && (s[j] as number) > x) {
      s[j + 1] = s[j] as number;
      j--;
    }
    s[j + 1] = x;
  }
}

/** Per-coordinate median (unweighted). With an even number of arrays, the mean of the two middle values. */
export function coordinateMedian(arrays: readonly Float32Array[]): Float32Array {
  const len = requireSameLength(arrays);
  const n = arrays.length;
  const s = new Float64Array(n);
  const out = new Float32Array(len);
  const mid = n >> 1;
  for (let i = 0; i < len; i++) {
    for (let c = 0; c < n; c++) s[c] = (arrays[c] as Float32Array)[i] as number;
    sortPrefix(s, n);
    out[i] = n % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  }
  return out;
}

/** How many values trimmedMean drops at each end for `n` arrays: ⌊beta·n⌋ (a 1e-9 slack absorbs binary rounding, e.g. 0.29·100). */
export function trimCount(n: number, beta: number): number {
  if (!(beta >= 0 && beta < 0.5)) throw new RangeError(`trim proportion beta must be in [0, 0.5), got ${beta}`);
  return Math.floor(beta * n + 1e-9);
}

/**
 * Per-coordinate trimmed mean (unweighted, as scipy.stats.trim_mean): drops the ⌊beta·n⌋ smallest and
 * the ⌊beta·n⌋ largest values of each coordinate and averages the rest. beta in [0, 0.5).
 */
export function trimmedMean(arrays: readonly Float32Array[], beta: number): Float32Array {
  const len = requireSameLength(arrays);
  const n = arrays.length;
  const k = trimCount(n, beta);
  const kept = n - 2 * k;
  const s = new Float64Array(n);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    for (let c = 0; c < n; c++) s[c] = (arrays[c] as Float32Array)[i] as number;
    sortPrefix(s, n);
    let sum = 0;
    for (let c = k; c < n - k; c++) sum += s[c] as number;
    out[i] = sum / kept;
  }
  return out;
}

/** Squared Euclidean distance, accumulated in Float64. */
export function squaredDistance(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const x = (a[i] as number) - (b[i] as number);
    d += x * x;
  }
  return d;
}

/** Krum's neighbour count for n clients and f Byzantine ones: n − f − 2, at least 1 (as Flower) and at most n − 1. */
export function krumNeighbours(n: number, f: number): number {
  return Math.max(1, Math.min(n - 1, n - f - 2));
}

/**
 * Krum scores (Blanchard et al. 2017): for each client, the sum of its squared distances to its
 * n − f − 2 nearest other clients (see krumNeighbours). Lower is more central. One client scores 0.
 */
export function krumScores(arrays: readonly Float32Array[], f: number): Float64Array {
  requireSameLength(arrays);
  if (!(Number.isInteger(f) && f >= 0)) throw new RangeError(`f (Byzantine clients) must be an integer >= 0, got ${f}`);
  const n = arrays.length;
  const scores = new Float64Array(n);
  if (n === 1) return scores;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = squaredDistance(arrays[i] as Float32Array, arrays[j] as Float32Array);
      dist[i * n + j] = d;
      dist[j * n + i] = d;
    }
  }
  const k = krumNeighbours(n, f);
  const others = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let j = 0; j < n; j++) if (j !== i) others[o++] = dist[i * n + j] as number;
    sortPrefix(others, n - 1);
    let score = 0;
    for (let t = 0; t < k; t++) score += others[t] as number;
    scores[i] = score;
  }
  return scores;
}

export interface MultiKrumResult {
  /** The average of the selected arrays (weighted by `weights` when given, else plain). */
  average: Float32Array;
  /** Indices of the selected arrays, best (lowest score) first; ties go to the lower index. */
  selected: number[];
  scores: Float64Array;
}

/**
 * Multi-Krum (Blanchard et al. 2017): selects the m arrays with the lowest Krum scores and averages
 * them; m = 1 is Krum. m is clamped to [1, n]. `weights` (e.g. num_samples, as Flower does) weights
 * the average of the selected arrays; omit it for the paper's plain mean.
 */
export function multiKrum(arrays: readonly Float32Array[], f: number, m: number, weights?: readonly number[]): MultiKrumResult {
  if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`m (clients to keep) must be an integer >= 1, got ${m}`);
  if (weights !== undefined && weights.length !== arrays.length) throw new RangeError(`${arrays.length} arrays but ${weights.length} weights`);
  const scores = krumScores(arrays, f);
  const order = Array.from({ length: arrays.length }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number) || a - b);
  const selected = order.slice(0, Math.min(m, arrays.length));
  const chosen = selected.map((i) => arrays[i] as Float32Array);
  const chosenWeights = selected.map((i) => (weights === undefined ? 1 : (weights[i] as number)));
  return { average: weightedAverage(chosen, chosenWeights), selected, scores };
}

/** Anything with a sample count and named metrics (EvaluateResult fits as is). */
export interface MetricReport {
  readonly numExamples: number;
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * For every metric name reported by any client: Σ nᵢ·xᵢ / Σ nᵢ over the clients that reported a
 * finite value for it (a NaN, e.g. an AUC where a class is absent, is left out rather than poisoning
 * the average). Clients with numExamples 0 carry no weight. Names are returned in sorted order.
 */
export function weightedMetricAverage(results: readonly MetricReport[]): Record<string, number> {
  const sums = new Map<string, { sum: number; weight: number }>();
  for (const r of results) {
    if (!(r.numExamples > 0)) continue;
    for (const [name, value] of Object.entries(r.metrics)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      const s = sums.get(name) ?? { sum: 0, weight: 0 };
      s.sum += r.numExamples * value;
      s.weight += r.numExamples;
      sums.set(name, s);
    }
  }
  const out: Record<string, number> = {};
  for (const name of [...sums.keys()].sort()) {
    const s = sums.get(name) as { sum: number; weight: number };
    out[name] = s.sum / s.weight;
  }
  return out;
}

export interface Fairness {
  /** Population variance (divide by n) of the per-hospital accuracies. */
  performance_variance: number;
  min_hospital_accuracy: number;
  max_hospital_accuracy: number;
}

/** Fairness across hospitals (seed spec 6.1) from one accuracy per hospital. Throws on an empty list. */
export function fairness(accuracies: readonly number[]): Fairness {
  const n = accuracies.length;
  if (n === 0) throw new RangeError('fairness needs at least one accuracy');
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const a of accuracies) {
    sum += a;
    if (a < min) min = a;
    if (a > max) max = a;
  }
  const mean = sum / n;
  let sq = 0;
  for (const a of accuracies) sq += (a - mean) * (a - mean);
  return { performance_variance: sq / n, min_hospital_accuracy: min, max_hospital_accuracy: max };
}

/** A hospital's accuracy for fairness: its `accuracy` metric, else its `test_accuracy`, when finite. */
export function hospitalAccuracy(metrics: Readonly<Record<string, number>>): number | undefined {
  for (const key of ['accuracy', 'test_accuracy']) {
    const v = metrics[key];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/**
 * The fit metrics a strategy reports: the num_samples-weighted average of every metric the clients
 * sent, plus `num_examples`, the total samples trained on (a total, never an average).
 */
export function fitMetrics(results: readonly { numSamples: number; metrics: Readonly<Record<string, number>> }[]): Record<string, number> {
  let total = 0;
  for (const r of results) total += r.numSamples;
  const averaged = weightedMetricAverage(results.map((r) => ({ numExamples: r.numSamples, metrics: r.metrics })));
  return { ...averaged, num_examples: total };
}

/**
 * The evaluate metrics a strategy reports: num_examples-weighted averages of every metric name,
 * fairness over the per-hospital accuracies (hospitals with numExamples > 0 and a finite
 * `accuracy`/`test_accuracy`; the keys are absent when no hospital has one), and `num_examples`, the
 * total. Throws AggregationError for a duplicate hospital or a numExamples that is not finite and ≥ 0.
 */
export function evaluateMetrics(results: readonly (MetricReport & { readonly hospitalId: string })[]): Record<string, number> {
  const seen = new Set<string>();
  let total = 0;
  const accuracies: number[] = [];
  for (const r of results) {
    if (seen.has(r.hospitalId)) throw new AggregationError(r.hospitalId, 'sent more than one evaluate result this round');
    seen.add(r.hospitalId);
    if (!(Number.isFinite(r.numExamples) && r.numExamples >= 0)) {
      throw new AggregationError(r.hospitalId, `numExamples is ${r.numExamples}, it must be a finite number >= 0`);
    }
    total += r.numExamples;
    if (r.numExamples === 0) continue;
    const acc = hospitalAccuracy(r.metrics);
    if (acc !== undefined) accuracies.push(acc);
  }
  const out: Record<string, number> = weightedMetricAverage(results);
  if (accuracies.length > 0) Object.assign(out, fairness(accuracies));
  out.num_examples = total;
  return out;
}
