import { describe, expect, it } from 'vitest';
import { sampleRecords } from '../testing/records';
import { formatIssue, parseNdjson, parseNdjsonStrict, parseRecord, toNdjson, RecordValidationError } from './records';

const good = () => sampleRecords('H1', 3)[0]!;
// Tests break records on purpose, so they handle them as untyped JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

describe('record schema', () => {
  it('accepts generated records', () => {
    for (const r of sampleRecords('H3', 20)) expect(parseRecord(r).ok).toBe(true);
  });

  type Case = { name: string; mutate: (r: Json) => void; field: string; message: RegExp };
  it.each<Case>([
    { name: 'missing field', mutate: (r) => delete r.demographics.age, field: 'demographics.age', message: /age in years/ },
    { name: 'wrong type', mutate: (r) => (r.demographics.age = '65'), field: 'demographics.age', message: /expected age in years/ },
    { name: 'Fahrenheit temperature', mutate: (r) => (r.clinical_timeseries.temperature[2] = 98.6), field: 'clinical_timeseries.temperature[2]', message: /30–43 Celsius: wrong unit/ },
    { name: 'glucose in mmol/L', mutate: (r) => (r.lab_results.glucose[0] = 5.5), field: 'lab_results.glucose[0]', message: /mg\/dL/ },
    { name: 'string in a series', mutate: (r) => (r.lab_results.sodium[0] = '140'), field: 'lab_results.sodium[0]', message: /mEq\/L/ },
    { name: 'series length mismatch', mutate: (r) => r.clinical_timeseries.spo2.pop(), field: 'clinical_timeseries.spo2', message: /values for \d+ timestamps/ },
    { name: 'bad date', mutate: (r) => (r.metadata.admission_date = '01/02/2025'), field: 'metadata.admission_date', message: /ISO date/ },
    { name: 'non-ICD-10 diagnosis', mutate: (r) => (r.metadata.diagnosis_codes = ['44054006']), field: 'metadata.diagnosis_codes[0]', message: /ICD-10/ },
    { name: 'unknown gene', mutate: (r) => (r.omics_data.gene_expression = { XYZ1: 3 }), field: 'omics_data.gene_expression.XYZ1', message: /unknown gene/ },
    { name: 'readmitted without days', mutate: (r) => (r.outcomes = { ...r.outcomes, readmission_30d: 1, days_to_readmission: null }), field: 'outcomes.days_to_readmission', message: /required/ },
    { name: 'unknown risk level', mutate: (r) => (r.outcomes.risk_level = 'Severe'), field: 'outcomes.risk_level', message: /Low/ },
    { name: 'inconsistent length of stay', mutate: (r) => (r.metadata.length_of_stay += 1), field: 'metadata.length_of_stay', message: /days apart/ },
    { name: 'unexpected key', mutate: (r) => (r.demographics.shoe_size = 44), field: 'demographics', message: /shoe_size/ },
  ])('names the field: $name', ({ mutate, field, message }) => {
    const r = good() as unknown as Json;
    mutate(r);
    const res = parseRecord(r, {}, 5);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    const issue = res.issues.find((i) => i.field === field);
    expect(issue, JSON.stringify(res.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(issue!.line).toBe(5);
    expect(issue!.patientId).toBe(r.patient_id);
    expect(formatIssue(issue!)).toContain(`line 5, patient ${r.patient_id}: ${field}:`);
  });

  it('rejects an unknown hospital and a record in the wrong hospital file', () => {
    const r = good();
    r.hospital_id = 'H9';
    const res = parseRecord(r, { knownHospitals: ['H1', 'H2', 'H3'] });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.issues[0]).toMatchObject({ field: 'hospital_id', message: expect.stringMatching(/unknown hospital "H9"/) });
    const wrong = parseRecord(good(), { expectedHospital: 'H2' });
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.issues[0]!.message).toMatch(/belongs to "H2"/);
  });
});

describe('NDJSON', () => {
  it('round-trips and keeps valid lines while reporting bad ones by line', () => {
    const recs = sampleRecords('H2', 4);
    const lines = toNdjson(recs).trimEnd().split('\n');
    lines.splice(1, 0, '{"patient_id": "broken", ');
    lines.push('', JSON.stringify({ ...recs[0], patient_id: recs[0]!.patient_id }));
    const res = parseNdjson(lines.join('\n'));
    expect(res.records.map((r) => r.patient_id)).toEqual(recs.map((r) => r.patient_id));
    expect(res.issues).toHaveLength(2);
    expect(res.issues[0]).toMatchObject({ line: 2, field: '(record)', message: expect.stringMatching(/not valid JSON/) });
    expect(res.issues[1]).toMatchObject({ line: 7, field: 'patient_id', message: 'duplicates line 1' });
    expect(res.lines).toBe(6); // the blank line is not counted
  });

  it('strict parsing throws with every issue and returns nothing', () => {
    const text = toNdjson(sampleRecords('H1', 3)) + '{"x":1}\n';
    expect(() => parseNdjsonStrict(text)).toThrow(RecordValidationError);
    expect(() => parseNdjsonStrict(text)).toThrow(/line 4: patient_id/);
  });
});
