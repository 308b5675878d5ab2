/**
 * Clustering quality measures used by `fedcare cluster`.
 *
 * - Adjusted Rand index (Hubert & Arabie 1985, "Comparing partitions", J. Classification 2:193–218):
 *   agreement of two partitions, 1 for identical ones (up to relabelling), ~0 for independent ones.
 * - Simplified silhouette (Hruschka, Campello & de Castro 2004, "Evolving clusters in
 *   gene-expression data"): the silhouette of Rousseeuw (1987) with a(i) and b(i) taken as the
 *   distances from point i to its own centroid and to the nearest other centroid. Unlike the exact
 *   silhouette it needs no pairwise distances between points, so each hospital computes it for its
 *   own points and only Σ s(i) and the count leave the hospital (through secure aggregation).
 */

const choose2 = (n: number): number => (n * (n - 1)) / 2;

/** Adjusted Rand index of two labelings of the same items (any integer labels). */
export function adjustedRandIndex(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`adjustedRandIndex: ${a.length} labels against ${b.length}`);
  const n = a.length;
  if (n < 2) return 1;
  const table = new Map<string, number>();
  const rows = new Map<number, number>();
  const cols = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    table.set(`${x}\u0000${y}`, (table.get(`${x}\u0000${y}`) ?? 0) + 1);
    rows.set(x, (rows.get(x) ?? 0) + 1);
    cols.set(y, (cols.get(y) ?? 0) + 1);
  }
  let index = 0;
  for (const v of table.values()) index += choose2(v);
  let sumA = 0;
  for (const v of rows.values()) sumA += choose2(v);
  let sumB = 0;
  for (const v of cols.values()) sumB += choose2(v);
  const expected = (sumA * sumB) / choose2(n);
  const max = (sumA + sumB) / 2;
  // Both partitions trivial (one cluster each, or all singletons): identical by convention (as sklearn).
  if (max === expected) return 1;
  return (index - expected) / (max - expected);
}

/** Squared Euclidean distance between row i of `points` (width d) and row j of `centroids`. */
export function squaredDistanceRow(points: ArrayLike<number>, i: number, centroids: ArrayLike<number>, j: number, d: number): number {
  let s = 0;
  const pi = i * d;
  const cj = j * d;
  for (let t = 0; t < d; t++) {
    const diff = (points[pi + t] as number) - (centroids[cj + t] as number);
    s += diff * diff;
  }
  return s;
}

/** The nearest centroid of row i (lowest index on ties), its squared distance and the second-nearest squared distance. */
export function nearestCentroid(points: ArrayLike<number>, i: number, centroids: ArrayLike<number>, k: number, d: number): { index: number; d2: number; second: number } {
  let index = -1;
  let d2 = Number.POSITIVE_INFINITY;
  let second = Number.POSITIVE_INFINITY;
  for (let j = 0; j < k; j++) {
    const v = squaredDistanceRow(points, i, centroids, j, d);
    if (v < d2) {
      second = d2;
      d2 = v;
      index = j;
    } else if (v < second) second = v;
  }
  return { index, d2, second };
}

/** Simplified silhouette of one point from its distances to its own (a) and the nearest other (b) centroid. */
export function simplifiedSilhouettePoint(a: number, b: number): number {
  const m = Math.max(a, b);
  return m > 0 && Number.isFinite(b) ? (b - a) / m : 0;
}

/** Σ s(i) and n over the rows of `points` (n × d) against k centroids: one hospital's contribution. */
export function simplifiedSilhouetteSums(points: ArrayLike<number>, n: number, centroids: ArrayLike<number>, k: number, d: number): { sum: number; count: number } {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const near = nearestCentroid(points, i, centroids, k, d);
    sum += simplifiedSilhouettePoint(Math.sqrt(near.d2), Math.sqrt(near.second));
  }
  return { sum, count: n };
}

/** Index of the largest standardised value per row of an [n, m] matrix, after z-scoring each column over the rows. */
export function dominantColumn(matrix: ArrayLike<number>, n: number, m: number, columns?: readonly number[]): Int32Array {
  const use = columns ?? [...Array(m).keys()];
  const mean = new Float64Array(m);
  const sd = new Float64Array(m);
  for (const j of use) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = matrix[i * m + j] as number;
      s += v;
      s2 += v * v;
    }
    mean[j] = s / n;
    sd[j] = Math.sqrt(Math.max(s2 / n - (s / n) ** 2, 0)) || 1;
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestV = Number.NEGATIVE_INFINITY;
    for (const j of use) {
      const v = ((matrix[i * m + j] as number) - (mean[j] as number)) / (sd[j] as number);
      if (v > bestV) {
        bestV = v;
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}
