import { describe, expect, it } from 'vitest';
import { generateHospital, LAB_NAMES, MARKER_NAMES, VITAL_NAMES, type PatientRecord } from '@fedcare/shared/data';
import { AGE_BINS, ageBinIndex, summarizeCohort, type CohortSummary } from './cohort';

/**
 * H3 (older, 30 % without omics) plus the shapes FHIR imports give: unknown outcomes, an empty
 * vitals series, a labs series whose readings are all null.
 */
function cohort(): PatientRecord[] {
  const recs = generateHospital('H3', { seed: 11, patients: 240 }).records;
  for (const r of recs.slice(0, 25)) {
    r.outcomes = { readmission_30d: null, risk_level: null, days_to_readmission: null, adverse_event: null };
  }
  for (const r of recs.slice(20, 40)) {
    r.clinical_timeseries = { timestamps: [], heart_rate: [], systolic_bp: [], diastolic_bp: [], spo2: [], temperature: [] };
  }
  const r = recs[50] as PatientRecord;
  const n = r.lab_results.timestamps.length;
  for (const c of LAB_NAMES) r.lab_results[c] = new Array<null>(n).fill(null);
  expect(n).toBeGreaterThan(0);
  return recs;
}

const get = <T extends object>(rows: readonly T[], key: keyof T, value: unknown): T => {
  const row = rows.find((x) => x[key] === value);
  if (!row) throw new Error(`no row with ${String(key)} = ${String(value)}`);
  return row;
};

describe('summarizeCohort', () => {
  const recs = cohort();
  const s: CohortSummary = summarizeCohort(recs);

  it('counts patients, labelled records and sexes', () => {
    expect(s.count).toBe(240);
    expect(s.labelled).toBe(240 - 25);
    expect(s.labelled).toBe(recs.filter((r) => r.outcomes.risk_level !== null).length);
    expect(get(s.sex, 'sex', 'M').count).toBe(recs.filter((r) => r.demographics.gender === 'M').length);
    expect(get(s.sex, 'sex', 'F').count + get(s.sex, 'sex', 'M').count).toBe(240);
  });

  it('bins ages by decade', () => {
    expect(s.ageHistogram.map((b) => b.bin)).toEqual(['<30', '30–39', '40–49', '50–59', '60–69', '70–79', '80–89', '90+']);
    const in60s = recs.filter((r) => r.demographics.age >= 60 && r.demographics.age <= 69).length;
    expect(in60s).toBeGreaterThan(0);
    expect(get(s.ageHistogram, 'bin', '60–69').count).toBe(in60s);
    expect(get(s.ageHistogram, 'bin', '90+').count).toBe(recs.filter((r) => r.demographics.age >= 90).length);
    expect(get(s.ageHistogram, 'bin', '<30').count).toBe(recs.filter((r) => r.demographics.age < 30).length);
    expect(s.ageHistogram.reduce((t, b) => t + b.count, 0)).toBe(240);
  });

  it.each([
    [0, '<30'],
    [29, '<30'],
    [30, '30–39'],
    [39, '30–39'],
    [65, '60–69'],
    [89, '80–89'],
    [90, '90+'],
    [120, '90+'],
  ])('puts age %i in %s', (age, bin) => {
    expect(AGE_BINS[ageBinIndex(age)]).toBe(bin);
  });

  it('gives outcome rates over the records where the outcome is known', () => {
    const known = recs.filter((r) => r.outcomes.readmission_30d !== null);
    const readmitted = known.filter((r) => r.outcomes.readmission_30d === 1).length;
    const readmission = get(s.outcomes, 'key', 'readmission_30d');
    expect(readmission.known).toBe(215);
    expect(readmitted).toBeGreaterThan(0);
    expect(readmission.rate).toBeCloseTo(readmitted / 215, 12);
    const adverse = get(s.outcomes, 'key', 'adverse_event');
    expect(adverse.rate).toBeCloseTo(recs.filter((r) => r.outcomes.adverse_event === 1).length / 215, 12);
  });

  it('counts risk levels, and the unknown ones', () => {
    expect(s.riskLevels.map((r) => r.level)).toEqual(['Low', 'Medium', 'High', 'Unknown']);
    for (const level of ['Low', 'Medium', 'High']) {
      expect(get(s.riskLevels, 'level', level).count).toBe(recs.filter((r) => r.outcomes.risk_level === level).length);
    }
    expect(get(s.riskLevels, 'level', 'Unknown').count).toBe(25);
  });

  it('gives the fraction of records missing each modality', () => {
    const frac = (f: (r: PatientRecord) => boolean) => recs.filter(f).length / recs.length;
    const noValue = (series: Record<string, unknown>, channels: readonly string[]) =>
      channels.every((c) => (series[c] as unknown[]).every((v) => v === null));
    const missing = (m: string) => get(s.missingness, 'modality', m).missing;

    const genes = frac((r) => r.omics_data.gene_expression === null);
    expect(genes).toBeGreaterThan(0.1); // H3 lacks omics for about 30 %
    expect(missing('omics_data.gene_expression')).toBeCloseTo(genes, 12);
    expect(missing('omics_data.metabolomics')).toBeCloseTo(frac((r) => r.omics_data.metabolomics === null), 12);
    expect(missing('clinical_timeseries')).toBeCloseTo(frac((r) => noValue(r.clinical_timeseries, VITAL_NAMES)), 12);
    expect(missing('clinical_timeseries')).toBeGreaterThanOrEqual(20 / 240);
    // record 50's labs have timestamps but no value: missing
    expect(missing('lab_results')).toBeCloseTo(frac((r) => noValue(r.lab_results, LAB_NAMES)), 12);
    expect(missing('lab_results')).toBeGreaterThanOrEqual(1 / 240);
    expect(missing('biology_markers')).toBeCloseTo(frac((r) => noValue(r.biology_markers, MARKER_NAMES)), 12);
    expect(missing('demographics.bmi')).toBeCloseTo(frac((r) => r.demographics.bmi === null), 12);
    for (const m of s.missingness) expect(m.label).not.toBe('');
  });

  it('summarises an empty cohort without NaN', () => {
    const e = summarizeCohort([]);
    expect(e.count).toBe(0);
    expect(e.labelled).toBe(0);
    expect(e.ageHistogram.every((b) => b.count === 0)).toBe(true);
    expect(e.outcomes.map((o) => [o.rate, o.known])).toEqual([
      [0, 0],
      [0, 0],
    ]);
    expect(e.riskLevels.map((r) => r.level)).toEqual(['Low', 'Medium', 'High']);
    expect(e.missingness.every((m) => m.missing === 0)).toBe(true);
  });
});
