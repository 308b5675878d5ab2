/**
 * Federated k-means on points that stay at their hospitals; the coordinator only learns sums
 * (through an `Aggregator`: plain, or SecAgg+).
 *
 * Lloyd's algorithm (Lloyd 1982, "Least squares quantization in PCM", IEEE Trans. Inf. Theory
 * 28:129–137): each hospital assigns its points to the nearest current centroid and returns, per
 * centroid, the sum of its points and their count (plus its share of the cost); the new centroid
 * is Σ sums / Σ counts. The sums are exact, so with the same seeding the federated run equals
 * centralised k-means on the pooled points (up to float64 summation order, or the fixed-point
 * resolution under SecAgg+).
 *
 * Seeding: greedy k-means++ (Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful
 * seeding", SODA; the greedy variant of their §5) over a pool of candidates that every party
 * derives from a shared seed — never a patient's point. The pool: the federated mean plus points
 * drawn from N(μ, Σ) restricted to the top principal directions of the federated covariance
 * (both from one secure sum of Σ1, Σz, Σzzᵀ). Each greedy step picks the candidate that lowers the
 * pooled k-means cost most; each hospital sends, per candidate, Σ_i min(D(i)², ‖z_i − c‖²) — one
 * secure sum per step. k-means‖ or sampled k-means++ would send individual patients' latent codes
 * to the coordinator, which secure aggregation forbids.
 *
 * Empty clusters: a centroid that gets no point is reseeded with the same greedy step (the
 * candidate that most lowers the cost given the other centroids), then Lloyd continues.
 */
import { symmetricEigen } from '../data/linalg';
import { Rng } from '../util/random';
import type { Aggregator } from './aggregator';
import { nearestCentroid, simplifiedSilhouetteSums, squaredDistanceRow } from './metrics';

/** One hospital's points (row-major n × d). */
export interface Site {
  readonly id: string;
  readonly points: Float32Array | Float64Array;
  readonly n: number;
}

export interface Moments {
  readonly n: number;
  readonly mean: Float64Array;
  /** Covariance, row-major d × d. */
  readonly cov: Float64Array;
}

const map = <T>(sites: readonly Site[], f: (s: Site) => T): Map<string, T> => new Map(sites.map((s) => [s.id, f(s)]));

/** Federated mean and covariance of the points: one aggregation of [n, Σz, Σzzᵀ]. */
export async function federatedMoments(sites: readonly Site[], d: number, agg: Aggregator): Promise<Moments> {
  const sum = await agg.sum(
    'moments',
    map(sites, (s) => {
      const v = new Float64Array(1 + d + d * d);
      v[0] = s.n;
      for (let i = 0; i < s.n; i++) {
        for (let a = 0; a < d; a++) {
          const x = s.points[i * d + a] as number;
          v[1 + a] = (v[1 + a] as number) + x;
          for (let b = 0; b < d; b++) v[1 + d + a * d + b] = (v[1 + d + a * d + b] as number) + x * (s.points[i * d + b] as number);
        }
      }
      return v;
    }),
  );
  const n = sum[0] as number;
  const mean = Float64Array.from({ length: d }, (_, a) => (sum[1 + a] as number) / n);
  const cov = new Float64Array(d * d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b] = (sum[1 + d + a * d + b] as number) / n - (mean[a] as number) * (mean[b] as number);
  return { n, mean, cov };
}

/** The shared-seed candidate pool: μ, then `size − 1` draws μ + Σ_j a_j·√λ_j·v_j over the top `directions` principal axes. */
export function candidatePool(m: Moments, d: number, seed: number, size = 64, directions = 4): Float64Array {
  const eig = symmetricEigen(m.cov, d);
  const p = Math.min(directions, d);
  const rng = new Rng(`fedcare/cluster/candidates/${seed}`);
  const out = new Float64Array(size * d);
  out.set(m.mean, 0);
  for (let c = 1; c < size; c++) {
    for (let a = 0; a < d; a++) out[c * d + a] = m.mean[a] as number;
    for (let j = 0; j < p; j++) {
      const scale = rng.normal(0, 1) * Math.sqrt(Math.max(eig.values[j] as number, 0));
      for (let a = 0; a < d; a++) out[c * d + a] = (out[c * d + a] as number) + scale * (eig.vectors[j * d + a] as number);
    }
  }
  return out;
}

/** Per candidate, Σ over a site's points of min(D(i)², ‖z_i − c‖²), D(i) the distance to the nearest of `centres` (∞ if none). */
export function greedyCosts(site: Site, d: number, centres: Float64Array, k: number, candidates: Float64Array, m: number): Float64Array {
  const out = new Float64Array(m);
  for (let i = 0; i < site.n; i++) {
    const base = k > 0 ? nearestCentroid(site.points, i, centres, k, d).d2 : Number.POSITIVE_INFINITY;
    for (let c = 0; c < m; c++) out[c] = (out[c] as number) + Math.min(base, squaredDistanceRow(site.points, i, candidates, c, d));
  }
  return out;
}

/** One greedy k-means++ step: the candidate (not in `used`) that most lowers the pooled cost given `centres`. */
async function greedyStep(sites: readonly Site[], d: number, centres: Float64Array, k: number, candidates: Float64Array, used: Set<number>, agg: Aggregator, label: string): Promise<number> {
  const m = candidates.length / d;
  const costs = await agg.sum(label, map(sites, (s) => greedyCosts(s, d, centres, k, candidates, m)));
  let best = -1;
  for (let c = 0; c < m; c++) if (!used.has(c) && (best < 0 || (costs[c] as number) < (costs[best] as number))) best = c;
  if (best < 0) throw new Error('k-means seeding: the candidate pool is exhausted');
  used.add(best);
  return best;
}

/** Per centroid the sum of a site's points assigned to it and their count, then the cost: length k·d + k + 1. */
export function lloydStats(site: Site, d: number, centroids: Float64Array, k: number): Float64Array {
  const out = new Float64Array(k * d + k + 1);
  for (let i = 0; i < site.n; i++) {
    const near = nearestCentroid(site.points, i, centroids, k, d);
    const j = near.index;
    for (let a = 0; a < d; a++) out[j * d + a] = (out[j * d + a] as number) + (site.points[i * d + a] as number);
    out[k * d + j] = (out[k * d + j] as number) + 1;
    out[k * d + k] = (out[k * d + k] as number) + near.d2;
  }
  return out;
}

/** Cluster index of each of a site's points. */
export function assignPoints(site: Site, d: number, centroids: Float64Array, k: number): Int32Array {
  return Int32Array.from({ length: site.n }, (_, i) => nearestCentroid(site.points, i, centroids, k, d).index);
}

export interface KMeansOptions {
  /** The shared seed of the candidate pool. */
  readonly seed: number;
  readonly maxIterations?: number;
  /** Stop when no centroid moves more than this (Euclidean). */
  readonly tolerance?: number;
  readonly candidates?: Float64Array;
}

export interface KMeansResult {
  readonly k: number;
  /** Row-major k × d. */
  readonly centroids: Float64Array;
  readonly counts: Float64Array;
  /** Σ squared distance to the nearest centroid over all points, after the last assignment. */
  readonly cost: number;
  readonly iterations: number;
  readonly reseeded: number;
}

/** Federated k-means: greedy k-means++ seeding over the shared pool, then Lloyd until stable. */
export async function federatedKMeans(sites: readonly Site[], d: number, k: number, agg: Aggregator, opts: KMeansOptions & { readonly moments?: Moments }): Promise<KMeansResult> {
  const candidates = opts.candidates ?? candidatePool(opts.moments ?? (await federatedMoments(sites, d, agg)), d, opts.seed);
  const m = candidates.length / d;
  if (k < 1 || k > m) throw new Error(`k-means: k must be in [1, ${m}], got ${k}`);
  const used = new Set<number>();
  let centroids = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    const c = await greedyStep(sites, d, centroids, j, candidates, used, agg, `k${k}/seed${j}`);
    centroids.set(candidates.subarray(c * d, (c + 1) * d), j * d);
  }
  const maxIterations = opts.maxIterations ?? 100;
  const tolerance = opts.tolerance ?? 1e-6;
  let counts = new Float64Array(k);
  let cost = Number.NaN;
  let reseeded = 0;
  let it = 0;
  while (it < maxIterations) {
    it++;
    const s = await agg.sum(`k${k}/lloyd${it}`, map(sites, (site) => lloydStats(site, d, centroids, k)));
    counts = Float64Array.from(s.subarray(k * d, k * d + k), (c) => Math.round(c));
    cost = s[k * d + k] as number;
    const next = new Float64Array(k * d);
    const empty: number[] = [];
    for (let j = 0; j < k; j++) {
      if ((counts[j] as number) < 1) {
        empty.push(j);
        next.set(centroids.subarray(j * d, (j + 1) * d), j * d);
        continue;
      }
      for (let a = 0; a < d; a++) next[j * d + a] = (s[j * d + a] as number) / (counts[j] as number);
    }
    for (const j of empty) {
      // Reseed against the other (non-empty) centroids, packed without j.
      const others = new Float64Array((k - 1) * d);
      let r = 0;
      for (let q = 0; q < k; q++) if (q !== j) others.set(next.subarray(q * d, (q + 1) * d), d * r++);
      const c = await greedyStep(sites, d, others, k - 1, candidates, used, agg, `k${k}/reseed${it}/${j}`);
      next.set(candidates.subarray(c * d, (c + 1) * d), j * d);
      reseeded++;
    }
    let shift = 0;
    for (let j = 0; j < k; j++) shift = Math.max(shift, Math.sqrt(squaredDistanceRow(next, j, centroids, j, d)));
    centroids = next;
    if (empty.length === 0 && shift <= tolerance) break;
  }
  return { k, centroids, counts, cost, iterations: it, reseeded };
}

/** Federated simplified silhouette (metrics.ts) of a clustering: one aggregation of [Σ s(i), n]. */
export async function federatedSilhouette(sites: readonly Site[], d: number, centroids: Float64Array, k: number, agg: Aggregator): Promise<number> {
  const s = await agg.sum(
    `k${k}/silhouette`,
    map(sites, (site) => {
      const r = simplifiedSilhouetteSums(site.points, site.n, centroids, k, d);
      return Float64Array.of(r.sum, r.count);
    }),
  );
  return (s[0] as number) / (s[1] as number);
}
