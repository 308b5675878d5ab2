/**
 * Bounded influence per hospital (issue 13): the plain functions the round engine uses so that no
 * single hospital can set the global model, the statistics or the evaluation.
 *
 * - Weight: a hospital's weight (num_samples, num_examples, preprocessing records) is at most its
 *   bound = min(the run's `max_samples_per_hospital`, the num_records it declared at its first
 *   sign-in of the run). The declaration is frozen for the run: a reconnect that declares more is
 *   ignored. We chose "declared once and frozen, with a run cap" over a count registered at token
 *   creation because it needs no new credential field and every host already sends num_records at
 *   sign-in; the cap is what an administrator sets, and it bounds a hospital that declares nothing.
 * - Update norm (plain mode): an update whose L2 norm is above k × the round's median norm is
 *   scaled down to k × median. With one hostile hospital of n ≥ 3 the median is an honest norm.
 * - A mean computed under secure aggregation (SecAgg+ unmasked, HE decrypted) must be finite and
 *   within the clip range ±R (every client clips each coordinate to ±R, so a weighted mean is too).
 */
import type { FitResult } from './strategy';

/** Median of a non-empty list (mean of the middle two for an even count); NaN for an empty one. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Each hospital's weight bound for one run: the first num_records it declared (frozen), capped by the run. */
export class WeightBounds {
  private readonly frozen = new Map<string, number>();
  constructor(readonly cap: number) {}

  /** Records a declaration; only the first one per hospital counts. Returns the frozen value. */
  declare(hospitalId: string, numRecords: number | undefined): number | undefined {
    if (!this.frozen.has(hospitalId) && numRecords !== undefined && Number.isInteger(numRecords) && numRecords >= 1) this.frozen.set(hospitalId, numRecords);
    return this.frozen.get(hospitalId);
  }

  /** The most weight this hospital may carry in this run. */
  of(hospitalId: string): number {
    return Math.min(this.cap, this.frozen.get(hospitalId) ?? this.cap);
  }

  /** Why `value` is refused for this hospital, or undefined when within its bound. */
  refuse(hospitalId: string, field: string, value: number): string | undefined {
    const bound = this.of(hospitalId);
    if (value <= bound) return undefined;
    const why = this.frozen.has(hospitalId) && (this.frozen.get(hospitalId) as number) < this.cap ? `the ${this.frozen.get(hospitalId)} records it declared at sign-in` : `the run's max_samples_per_hospital ${this.cap}`;
    return `${field}: ${value} is above ${hospitalId}'s bound ${bound} (${why})`;
  }
}

/** L2 norm of a − b, in float64. */
export function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    s += d * d;
  }
  return Math.sqrt(s);
}

export interface ClippedUpdate {
  hospitalId: string;
  /** The update's L2 norm as sent, and the bound it was scaled down to. */
  norm: number;
  bound: number;
}

/**
 * Scales every update (weights − global) whose L2 norm exceeds `factor` × the median norm of the
 * round down to that bound (direction kept). factor 0, or fewer than 3 results (no meaningful
 * median against one outlier), leaves them as they are. Returns new results (inputs untouched).
 */
export function boundUpdateNorms(global: Float32Array, results: readonly FitResult[], factor: number): { results: FitResult[]; clipped: ClippedUpdate[] } {
  if (factor <= 0 || results.length < 3) return { results: [...results], clipped: [] };
  const norms = results.map((r) => distance(r.weights, global));
  const bound = factor * median(norms);
  const clipped: ClippedUpdate[] = [];
  const out = results.map((r, k) => {
    const norm = norms[k] as number;
    if (norm <= bound) return r;
    clipped.push({ hospitalId: r.hospitalId, norm, bound });
    const scale = norm > 0 ? bound / norm : 0;
    const w = new Float32Array(global.length);
    for (let i = 0; i < w.length; i++) w[i] = (global[i] as number) + ((r.weights[i] as number) - (global[i] as number)) * scale;
    return { ...r, weights: w };
  });
  return { results: out, clipped };
}

/**
 * Why a mean update from secure aggregation is refused, or undefined: every coordinate must be
 * finite and within ±(clip + tolerance) (tolerance: the quantisation error of the protocol).
 */
export function refuseSecureMean(mean: ArrayLike<number>, clip: number, tolerance: number): string | undefined {
  const limit = clip + tolerance;
  for (let i = 0; i < mean.length; i++) {
    const v = mean[i] as number;
    if (!Number.isFinite(v)) return `mean[${i}] is ${v}, not a finite number`;
    if (Math.abs(v) > limit) return `mean[${i}] is ${v}, outside the clip range ±${clip}`;
  }
  return undefined;
}

/** Ranges of evaluation metrics a hospital may report: rates and areas in [0, 1], losses ≥ 0. */
export function refuseEvaluateMetrics(metrics: Readonly<Record<string, number>>): string | undefined {
  for (const [k, v] of Object.entries(metrics)) {
    if (!Number.isFinite(v)) return `metrics.${k}: ${v} is not a finite number`;
    const rate = /accuracy|auc|f1|precision|recall|confidence|^ece/.test(k);
    if (rate && (v < 0 || v > 1)) return `metrics.${k}: ${v} is outside [0, 1]`;
    if (/loss|nll/.test(k) && v < 0) return `metrics.${k}: ${v} is below 0`;
    if ((/_count$/.test(k) || k === 'calibration_val_n') && !(Number.isInteger(v) && v >= 0)) return `metrics.${k}: ${v} is not a count`;
  }
  return undefined;
}
