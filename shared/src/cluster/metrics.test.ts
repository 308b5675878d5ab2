import { describe, expect, it } from 'vitest';
import { adjustedRandIndex, dominantColumn, simplifiedSilhouettePoint, simplifiedSilhouetteSums } from './metrics';

describe('adjustedRandIndex (Hubert & Arabie 1985)', () => {
  it('gives the values of the scikit-learn documentation', () => {
    // sklearn.metrics.adjusted_rand_score examples
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 1])).toBe(1);
    expect(adjustedRandIndex([0, 0, 1, 1], [1, 1, 0, 0])).toBe(1);
    expect(adjustedRandIndex([0, 0, 1, 2], [0, 0, 1, 1])).toBeCloseTo(0.5714285714285714, 12);
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2])).toBeCloseTo(0.5714285714285714, 12);
    expect(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3])).toBe(0);
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1])).toBeCloseTo(-0.5, 12);
  });

  it('is 1 for identical partitions under relabelling, near 0 for independent ones', () => {
    const a = Array.from({ length: 2000 }, (_, i) => i % 5);
    expect(adjustedRandIndex(a, a.map((x) => (x * 3 + 1) % 5))).toBe(1);
    const b = Array.from({ length: 2000 }, (_, i) => Math.floor(i / 400) % 3);
    expect(Math.abs(adjustedRandIndex(a, b))).toBeLessThan(0.01);
    expect(() => adjustedRandIndex([0], [0, 1])).toThrow();
  });
});

describe('simplified silhouette (Hruschka et al. 2004)', () => {
  it('uses distances to the own and the nearest other centroid', () => {
    // 1-d points 0, 1, 9, 10 with centroids 0.5 and 9.5: s = 9/9.5 (outer) and 8/8.5 (inner).
    const r = simplifiedSilhouetteSums([0, 1, 9, 10], 4, [0.5, 9.5], 2, 1);
    expect(r.count).toBe(4);
    expect(r.sum / r.count).toBeCloseTo((9 / 9.5 + 8 / 8.5) / 2, 12);
    expect(simplifiedSilhouettePoint(0, 0)).toBe(0);
    expect(simplifiedSilhouettePoint(2, 1)).toBeCloseTo(-0.5, 12);
  });
});

describe('dominantColumn', () => {
  it('picks the column with the largest z-score per row', () => {
    // z-scores: column 0 (sd 0.71) wins rows 0 and 1; column 1 (sd 11.2) rows 2 and 3
    const m = [1, 10, 0, 0, -1, -10, 0, 20];
    expect(Array.from(dominantColumn(m, 4, 2))).toEqual([0, 0, 1, 1]);
  });
});
