import { describe, expect, it } from 'vitest';
import { computeFeatureSums, finalizeFeatureStats, type FeatureSums } from './features';
import { nonFiniteStat, refuseFeatureSums } from './feature-bounds';
import { generateHospital, OBSERVATION_WINDOW_DAYS } from './generator';

const honest = computeFeatureSums(generateHospital('H1', { seed: 3, patients: 40 }).records, { seqLen: 30, windowDays: OBSERVATION_WINDOW_DAYS });
const copy = (): FeatureSums => structuredClone(honest);

describe('refuseFeatureSums', () => {
  it('accepts a real cohort’s sums within its record bound', () => {
    expect(refuseFeatureSums(honest, 40)).toBeUndefined();
    expect(nonFiniteStat(finalizeFeatureStats(honest) as unknown as Record<string, unknown>)).toBeUndefined();
  });
  it.each<[string, (s: FeatureSums) => void, RegExp]>([
    ['more records than its bound', (s) => (s.records = 41), /records: 41 is outside \[0, 40\]/],
    ['a mean age of 5.6e297', (s) => (s.demographics.sum[0] = 5.6e297 * s.demographics.count[0]!), /demographics\[0\]: sum .* outside the plausible range \[0, 120\]/],
    ['a count above its records', (s) => (s.demographics.count[0] = 1e9), /demographics\[0\]: count 1000000000/],
    ['a sum of squares too small for its sum', (s) => (s.vitals.sumSq[0] = 1), /vitals\[0\]: sum .* inconsistent/],
    ['NaN in the omics cross products', (s) => (s.omicsCross[5] = Number.NaN), /omicsCross\[5\]/],
    ['a huge omics cross product (a NaN PCA basis)', (s) => (s.omicsCross[5] = 1e308), /omicsCross\[5\]/],
  ])('refuses %s', (_name, edit, error) => {
    const s = copy();
    edit(s);
    expect(refuseFeatureSums(s, 40)).toMatch(error);
  });
});
