import { describe, expect, it } from 'vitest';
import { sampleRecords } from '../testing/records';
import {
  BIOLOGY_DIM,
  computeFeatureSums,
  DEMOGRAPHICS_DIM,
  encodeRecords,
  FEATURE_SUMS_LENGTH,
  flattenFeatureSums,
  unflattenFeatureSums,
  finalizeFeatureStats,
  fitAndEncode,
  mergeFeatureSums,
  OMICS_DIM,
  OMICS_RAW_DIM,
} from './features';
import { symmetricEigen } from './linalg';
import { addInto } from '../secagg/mask';
import { decodeFixedPointSum, encodeFixedPoint, fixedPointFor } from '../secagg/fixed-point';

const recs = [...sampleRecords('H1', 60), ...sampleRecords('H3', 60)];
const cfg = { seqLen: 12, windowDays: 84 };

describe('feature encoding', () => {
  const { stats, batch } = fitAndEncode(recs, cfg);

  it('has the seed spec 1.3 shapes', () => {
    expect(batch.n).toBe(120);
    expect(batch.demographics).toHaveLength(120 * DEMOGRAPHICS_DIM);
    expect(batch.vitals).toHaveLength(120 * 12 * 10);
    expect(batch.labs).toHaveLength(120 * 12 * 16);
    expect(batch.biology).toHaveLength(120 * BIOLOGY_DIM);
    expect(batch.omics).toHaveLength(120 * OMICS_DIM);
    expect(stats.pcaBasis).toHaveLength(OMICS_DIM * OMICS_RAW_DIM);
    expect([...batch.labels].every((l) => l >= 0 && l <= 2)).toBe(true);
    expect(batch.patientIds[0]).toBe(recs[0]!.patient_id);
    for (const arr of [batch.demographics, batch.vitals, batch.labs, batch.biology, batch.omics]) {
      expect(arr.every(Number.isFinite)).toBe(true);
    }
  });

  it('masks mark exactly the bins that hold a measurement; H3 has sparser lab masks', () => {
    const labMaskRate = (from: number, to: number) => {
      let on = 0;
      let total = 0;
      for (let i = from; i < to; i++) {
        for (let t = 0; t < 12; t++) {
          for (let c = 0; c < 8; c++) {
            on += batch.labs[(i * 12 + t) * 16 + 8 + c]!;
            total++;
          }
        }
      }
      return on / total;
    };
    expect(labMaskRate(60, 120)).toBeLessThan(0.75 * labMaskRate(0, 60));
    const masks = [...batch.vitals].filter((_, k) => k % 10 >= 5);
    expect(new Set(masks)).toEqual(new Set([0, 1]));
  });

  it('z-scores observed values with the global statistics', () => {
    // Heart rate (channel 0) over observed bins: roughly zero mean and unit spread.
    const hr: number[] = [];
    for (let i = 0; i < batch.n; i++) for (let t = 0; t < 12; t++) if (batch.vitals[(i * 12 + t) * 10 + 5] === 1) hr.push(batch.vitals[(i * 12 + t) * 10]!);
    const m = hr.reduce((a, b) => a + b, 0) / hr.length;
    const sd = Math.sqrt(hr.reduce((a, b) => a + (b - m) ** 2, 0) / hr.length);
    expect(Math.abs(m)).toBeLessThan(0.1);
    expect(sd).toBeGreaterThan(0.8);
    expect(sd).toBeLessThan(1.2);
    // Age is demographics[0]
    const ages = Array.from({ length: batch.n }, (_, i) => batch.demographics[i * DEMOGRAPHICS_DIM]!);
    expect(Math.abs(ages.reduce((a, b) => a + b, 0) / ages.length)).toBeLessThan(1e-5);
  });

  it('resamples by bin mean with forward fill on a hand-made record', () => {
    const r = structuredClone(recs[0]!);
    r.metadata.discharge_date = '2025-03-24';
    r.metadata.admission_date = '2025-03-20';
    r.metadata.length_of_stay = 4;
    // window: 84 days ending 2025-03-24 → starts 2024-12-31; 12 bins of 7 days
    r.clinical_timeseries = {
      timestamps: ['2024-12-31', '2025-01-02', '2025-01-20', '2025-03-24'],
      heart_rate: [60, 80, null, 100],
      systolic_bp: [120, null, 130, 140],
      diastolic_bp: [80, 80, 80, 80],
      spo2: [98, 98, 98, 98],
      temperature: [37, 37, 37, 37],
    };
    const b = encodeRecords([r], stats, cfg);
    const hr = (t: number) => b.vitals[t * 10]! * stats.vitals.std[0]! + stats.vitals.mean[0]!;
    const mask = (t: number) => b.vitals[t * 10 + 5];
    expect(hr(0)).toBeCloseTo(70, 4); // mean of 60 and 80 in bin 0
    expect(mask(0)).toBe(1);
    expect(hr(1)).toBeCloseTo(70, 4); // forward-filled
    expect(mask(1)).toBe(0);
    expect(mask(2)).toBe(0); // heart rate null on 2025-01-20 (bin 2)
    expect(hr(11)).toBeCloseTo(100, 4);
    expect(mask(11)).toBe(1);
    expect(b.vitals[2 * 10 + 1 + 5]).toBe(1); // systolic measured in bin 2
  });

  it('encodes a missing modality as zeros with masks off', () => {
    const r = structuredClone(recs[1]!);
    r.omics_data = { gene_expression: null, metabolomics: null };
    r.lab_results = { timestamps: [], wbc: [], rbc: [], hemoglobin: [], platelets: [], glucose: [], creatinine: [], sodium: [], potassium: [] };
    const b = encodeRecords([r], stats, cfg);
    expect([...b.omics].every((v) => v === 0)).toBe(true);
    expect([...b.labs].every((v) => v === 0)).toBe(true);
  });
});

describe('federated preprocessing from sums', () => {
  it('merging per-hospital sums gives the pooled statistics', () => {
    const a = computeFeatureSums(recs.slice(0, 60), cfg);
    const b = computeFeatureSums(recs.slice(60), cfg);
    const merged = finalizeFeatureStats(mergeFeatureSums(a, b));
    const pooled = finalizeFeatureStats(computeFeatureSums(recs, cfg));
    for (const k of ['demographics', 'vitals', 'labs', 'biology', 'omics'] as const) {
      merged[k].mean.forEach((v, j) => expect(v).toBeCloseTo(pooled[k].mean[j]!, 8));
      merged[k].std.forEach((v, j) => expect(v).toBeCloseTo(pooled[k].std[j]!, 8));
    }
    merged.pcaBasis.forEach((v, j) => expect(v).toBeCloseTo(pooled.pcaBasis[j]!, 6));
    expect(merged.records).toBe(120);
  });

  it('flattened sums round-trip, and adding flattened vectors in fixed point (as secure aggregation does) gives the pooled statistics', () => {
    const a = computeFeatureSums(recs.slice(0, 60), cfg);
    const b = computeFeatureSums(recs.slice(60), cfg);
    expect(flattenFeatureSums(a)).toHaveLength(FEATURE_SUMS_LENGTH);
    expect(unflattenFeatureSums(flattenFeatureSums(a))).toEqual(a);
    const fp = fixedPointFor(2);
    const words = addInto(encodeFixedPoint(flattenFeatureSums(a), fp), encodeFixedPoint(flattenFeatureSums(b), fp));
    const secure = finalizeFeatureStats(unflattenFeatureSums(decodeFixedPointSum(words, 2, fp)));
    const pooled = finalizeFeatureStats(computeFeatureSums(recs, cfg));
    expect(secure.records).toBe(120);
    for (const k of ['demographics', 'vitals', 'labs', 'biology', 'omics'] as const) {
      secure[k].mean.forEach((v, j) => expect(Math.abs(v - pooled[k].mean[j]!)).toBeLessThan(1e-9 * (1 + Math.abs(v))));
      secure[k].std.forEach((v, j) => expect(Math.abs(v - pooled[k].std[j]!)).toBeLessThan(1e-8 * (1 + Math.abs(v))));
    }
    secure.pcaBasis.forEach((v, j) => expect(v).toBeCloseTo(pooled.pcaBasis[j]!, 6));
  });

  it('unflattening refuses what is not a sum of records, naming the entry', () => {
    const v = flattenFeatureSums(computeFeatureSums(recs.slice(0, 10), cfg));
    expect(() => unflattenFeatureSums(v.subarray(1))).toThrow(`feature sums: ${FEATURE_SUMS_LENGTH - 1} values, expected ${FEATURE_SUMS_LENGTH}`);
    const nan = v.slice();
    nan[5] = Number.NaN;
    expect(() => unflattenFeatureSums(nan)).toThrow('feature sums: demographics.count[3] is NaN');
    const negative = v.slice();
    negative[0] = -3;
    expect(() => unflattenFeatureSums(negative)).toThrow('feature sums: records is -3, below 0');
  });

  it('the PCA basis is orthonormal and ordered by explained variance', () => {
    const s = finalizeFeatureStats(computeFeatureSums(recs, cfg));
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) {
        let dot = 0;
        for (let j = 0; j < OMICS_RAW_DIM; j++) dot += s.pcaBasis[a * OMICS_RAW_DIM + j]! * s.pcaBasis[b * OMICS_RAW_DIM + j]!;
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 8);
      }
    }
    for (let c = 1; c < OMICS_DIM; c++) expect(s.pcaExplained[c]!).toBeLessThanOrEqual(s.pcaExplained[c - 1]! + 1e-12);
    // the generator's omics has low-rank structure: the first components dominate
    // low-rank structure: 6 latent states drive the panels, so 6 of 100 components explain far
    // more than the ~0.1 that white noise would give at this sample size
    expect(s.pcaExplained.slice(0, 6).reduce((a, b) => a + b, 0)).toBeGreaterThan(0.3);
  });
});

describe('symmetricEigen', () => {
  it('diagonalises a known matrix', () => {
    // [[2,1],[1,2]] has eigenvalues 3 and 1 with vectors (1,1)/√2 and (1,−1)/√2
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[0]!)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[0]! * vectors[1]!).toBeGreaterThan(0);
    expect(vectors[2]! * vectors[3]!).toBeLessThan(0);
  });
});
