import { describe, expect, it } from 'vitest';
import { classificationMetrics, scoreToClassProbs } from '../train/metrics';
import { generateHospital, RISK_CUTS } from './generator';
import { HOSPITAL_PROFILES, KNOWN_HOSPITALS } from './profiles';
import { parseRecord, toNdjson } from './records';
import type { PatientRecord } from './schema';

const SEED = 42;
const cohorts = Object.fromEntries(KNOWN_HOSPITALS.map((h) => [h, generateHospital(h, { seed: SEED })]));
const mean = (recs: PatientRecord[], f: (r: PatientRecord) => number) => recs.reduce((s, r) => s + f(r), 0) / recs.length;

describe('generator matches the seed spec 1.2 table', () => {
  it.each(KNOWN_HOSPITALS)('%s: count, age, sex, readmission', (h) => {
    const p = HOSPITAL_PROFILES[h];
    const recs = cohorts[h]!.records;
    expect(recs).toHaveLength(p.patients);
    expect(Math.abs(mean(recs, (r) => r.demographics.age) - p.meanAge)).toBeLessThanOrEqual(2);
    expect(Math.abs(mean(recs, (r) => (r.demographics.gender === 'M' ? 1 : 0)) - p.maleShare)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(mean(recs, (r) => r.outcomes.readmission_30d ?? 0) - p.readmissionRate)).toBeLessThanOrEqual(0.03);
    expect(new Set(recs.map((r) => r.patient_id)).size).toBe(recs.length);
    expect(recs.every((r) => r.hospital_id === h)).toBe(true);
  });

  it('every record passes the schema', () => {
    for (const h of KNOWN_HOSPITALS) {
      const bad = cohorts[h]!.records.map((r) => parseRecord(r)).filter((r) => !r.ok);
      expect(bad).toEqual([]);
    }
  });

  it('is non-IID: H3 has fewer lab timestamps, more comorbidity, older patients and more High risk', () => {
    const labs = (h: string) => mean(cohorts[h]!.records, (r) => r.lab_results.timestamps.length);
    expect(labs('H3')).toBeLessThan(0.7 * labs('H1'));
    const comorb = (h: string) => mean(cohorts[h]!.records, (r) => r.demographics.comorbidities.length);
    expect(comorb('H3')).toBeGreaterThan(comorb('H1'));
    expect(comorb('H1')).toBeGreaterThan(comorb('H2'));
    const high = (h: string) => mean(cohorts[h]!.records, (r) => (r.outcomes.risk_level === 'High' ? 1 : 0));
    expect(high('H3')).toBeGreaterThan(high('H1'));
    expect(high('H1')).toBeGreaterThan(high('H2'));
    const ethnicities = (h: string) => new Set(cohorts[h]!.records.map((r) => r.demographics.ethnicity)).size;
    expect(ethnicities('H1')).toBe(5);
  });

  it('has physiological correlations: creatinine with CKD, BNP with heart failure, glucose with diabetes', () => {
    const recs = KNOWN_HOSPITALS.flatMap((h) => cohorts[h]!.records);
    const avg = (xs: (number | null)[]) => {
      const v = xs.filter((x): x is number => x !== null);
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    const byCondition = (cond: string, f: (r: PatientRecord) => (number | null)[]) => {
      const withC = recs.filter((r) => r.demographics.comorbidities.includes(cond as never)).flatMap(f);
      const without = recs.filter((r) => !r.demographics.comorbidities.includes(cond as never)).flatMap(f);
      return avg(withC) / avg(without);
    };
    expect(byCondition('chronic_kidney_disease', (r) => r.lab_results.creatinine)).toBeGreaterThan(1.3);
    expect(byCondition('heart_failure', (r) => r.biology_markers.bnp)).toBeGreaterThan(1.8);
    expect(byCondition('diabetes_type2', (r) => r.lab_results.glucose)).toBeGreaterThan(1.25);
  });

  it('labels follow the latent risk: best achievable macro AUC is high but not trivial', () => {
    const scores = KNOWN_HOSPITALS.flatMap((h) => [...cohorts[h]!.latentRisk]);
    const labels = KNOWN_HOSPITALS.flatMap((h) => cohorts[h]!.records.map((r) => ['Low', 'Medium', 'High'].indexOf(r.outcomes.risk_level!)));
    const m = classificationMetrics(scoreToClassProbs(scores, [RISK_CUTS.lowBelow, RISK_CUTS.highAbove]), labels);
    expect(m.auc_roc).toBeGreaterThan(0.85);
    expect(m.auc_roc).toBeLessThan(0.95);
  });

  it('readmitted patients have days_to_readmission in 1..30, others null', () => {
    for (const r of cohorts.H1!.records) {
      if (r.outcomes.readmission_30d === 1) expect(r.outcomes.days_to_readmission).toBeGreaterThanOrEqual(1);
      else expect(r.outcomes.days_to_readmission).toBeNull();
    }
  });
});

describe('determinism', () => {
  it('same seed → identical bytes; another seed → different', () => {
    const a = toNdjson(generateHospital('H2', { seed: SEED }).records);
    expect(a).toBe(toNdjson(cohorts.H2!.records));
    expect(toNdjson(generateHospital('H2', { seed: SEED + 1 }).records)).not.toBe(a);
  });

  it('rejects unknown hospitals and bad sizes', () => {
    expect(() => generateHospital('H9', { seed: 1 })).toThrow(/unknown hospital "H9"/);
    expect(() => generateHospital('H1', { seed: 1, patients: 0 })).toThrow(/positive integer/);
  });
});

describe('hospitals beyond the spec', () => {
  it('basedOn generates a new hospital id with a known profile and its own stream', () => {
    const h17 = generateHospital('H17', { seed: 1, patients: 20, basedOn: 'H3' }).records;
    expect(h17.every((r) => r.hospital_id === 'H17' && r.patient_id.startsWith('P_H17_'))).toBe(true);
    expect(h17.every((r) => parseRecord(r).ok)).toBe(true);
    const h3 = generateHospital('H3', { seed: 1, patients: 20 }).records;
    expect(h17[0]!.demographics).not.toEqual(h3[0]!.demographics);
  });
});
