import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FhirBatchError,
  FhirImportError,
  importFhirBundle,
  importFhirBundles,
  ingredientName,
  type FhirBundleReport,
  type FhirImportBatch,
} from './fhir';
import { fitAndEncode } from './features';
import { parseNdjsonStrict, parseRecord, toNdjson } from './records';
import type { PatientRecord } from './schema';

// The fixtures: <repo>/fixtures/fhir/synthea (where they come from and their licence: SOURCE.md there).
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../fixtures/fhir/synthea');

const SOURCE_A = ['Arturo47', 'Omega729', 'Olimpia983', 'Lonny638', 'Ward668', 'Lucien408', 'Casimira119', 'Nigel915'];
const SOURCE_B = ['Bradly_Douglas', 'Jordan_Cruickshank', 'Loyd_Connelly', 'Randolph_Wisoky'];

function loadFixtures(): { name: string; json: unknown }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, json: JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')) as unknown }));
}
function loadSupport(): unknown[] {
  const dir = path.join(FIXTURES, 'support');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as unknown);
}

describe('the Synthea fixtures in the repository', () => {
  it('are the files SOURCE.md names, byte for byte (their git blob ids), with the licence beside them', () => {
    const source = readFileSync(path.join(FIXTURES, 'SOURCE.md'), 'utf8');
    const listed = [...source.matchAll(/^\s+([0-9a-f]{40})\s+(\d+)\s+\S*\/([^/\s]+\.json)$/gm)].map((m) => ({ blob: m[1]!, bytes: Number(m[2]), name: m[3]! }));
    expect(listed).toHaveLength(14); // 12 patient bundles + 2 support files
    for (const f of listed) {
      const file = path.join(FIXTURES, f.name.startsWith('hospitalInformation') || f.name.startsWith('practitionerInformation') ? 'support' : '', f.name);
      const bytes = readFileSync(file);
      expect(bytes.length, f.name).toBe(f.bytes);
      // what `git hash-object FILE` prints
      expect(createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'), f.name).toBe(f.blob);
    }
    expect(existsSync(path.join(FIXTURES, 'LICENSE-Apache-2.0.txt'))).toBe(true);
    expect(readFileSync(path.join(FIXTURES, 'LICENSE-Apache-2.0.txt'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS/);
  });
});

describe('importFhirBundles on the 12 Synthea fixtures', () => {
  let fixtures: { name: string; json: unknown }[];
  let batch: FhirImportBatch;
  const byPatient = new Map<string, { record: PatientRecord; report: FhirBundleReport }>();
  const get = (prefix: string) => {
    const hit = [...byPatient.entries()].find(([name]) => name.startsWith(prefix));
    if (!hit) throw new Error(`no fixture ${prefix}`);
    return hit[1];
  };
  const sum = (f: (r: FhirBundleReport) => number) => batch.reports.reduce((s, r) => s + f(r), 0);
  const bundlesWith = (f: (r: FhirBundleReport) => number) => batch.reports.filter((r) => f(r) > 0).length;

  beforeAll(() => {
    fixtures = loadFixtures();
    batch = importFhirBundles(fixtures, { hospitalId: 'H4', support: loadSupport() });
    batch.reports.forEach((report, k) => byPatient.set(report.source, { record: batch.records[k] as PatientRecord, report }));
  });

  it('imported records encode into finite model inputs whose masks show what was measured', () => {
    const { batch: enc } = fitAndEncode(batch.records);
    expect(enc.n).toBe(12);
    for (const arr of [enc.demographics, enc.vitals, enc.labs, enc.biology, enc.omics]) expect(arr.every(Number.isFinite)).toBe(true);
    // a mask bit is on exactly for records with a measurement inside the 84-day window ending at
    // discharge; measurements the import kept from outside that window (its fallback) stay unseen
    const inWindow = (r: PatientRecord, ts: string[]) => {
      const end = Date.parse(r.metadata.discharge_date);
      return ts.some((t) => Date.parse(t) <= end && Date.parse(t) > end - 84 * 86_400_000);
    };
    let withVitals = 0;
    batch.records.forEach((r, i) => {
      const v = enc.vitals.subarray(i * enc.seqLen * 10, (i + 1) * enc.seqLen * 10).filter((_, k) => k % 10 >= 5);
      const l = enc.labs.subarray(i * enc.seqLen * 16, (i + 1) * enc.seqLen * 16).filter((_, k) => k % 16 >= 8);
      expect(v.some((x) => x === 1)).toBe(inWindow(r, r.clinical_timeseries.timestamps));
      expect(l.some((x) => x === 1)).toBe(inWindow(r, r.lab_results.timestamps));
      if (inWindow(r, r.clinical_timeseries.timestamps)) withVitals++;
    });
    expect(withVitals).toBeGreaterThan(0);
    // no omics in FHIR: the omics input is all zeros; risk_level is unknown: every label is -1
    expect(enc.omics.every((x) => x === 0)).toBe(true);
    expect([...enc.labels]).toEqual(new Array(12).fill(-1));
  });

  it('imports all 12 bundles without error, each record valid against the schema', () => {
    expect(fixtures).toHaveLength(12);
    expect(batch.failures).toEqual([]);
    expect(batch.records).toHaveLength(12);
    for (const r of batch.records) {
      const res = parseRecord(r, { knownHospitals: ['H4'] });
      expect(res.ok, JSON.stringify(res)).toBe(true);
      expect(r.patient_id).toMatch(/^FHIR_[0-9a-f]{12}$/);
      expect(r.metadata.source).toMatch(/^fhir:.+\.json$/);
      expect(r.omics_data).toEqual({ gene_expression: null, metabolomics: null });
      expect(r.outcomes.risk_level).toBeNull();
    }
    // NDJSON round trip through the strict parser: no duplicate ids, every line valid.
    expect(parseNdjsonStrict(toNdjson(batch.records), { expectedHospital: 'H4' })).toHaveLength(12);
    expect(new Set(batch.records.map((r) => r.patient_id)).size).toBe(12);
  });

  it('is deterministic', () => {
    const again = importFhirBundles(loadFixtures(), { hospitalId: 'H4', support: loadSupport() });
    expect(toNdjson(again.records)).toBe(toNdjson(batch.records));
  });

  it('counts observations per channel as SOURCE.md tabulates them', () => {
    // vitals
    expect(sum((r) => r.counts.heart_rate)).toBe(50);
    expect(bundlesWith((r) => r.counts.heart_rate)).toBe(8);
    for (const a of SOURCE_A) expect(get(a).report.counts.heart_rate, a).toBeGreaterThan(0);
    for (const b of SOURCE_B) expect(get(b).report.counts.heart_rate, b).toBe(0);
    // Systolic / diastolic come only as components: 85354-9 panels in A, 55284-4 panels in B.
    expect(sum((r) => r.counts.systolic_bp)).toBe(78);
    expect(sum((r) => r.counts.diastolic_bp)).toBe(78);
    expect(bundlesWith((r) => r.counts.systolic_bp)).toBe(12);
    expect(bundlesWith((r) => r.counts.diastolic_bp)).toBe(12);
    // The 2 SpO2 Observations carry both 2708-6 and 59408-5: counted once each.
    expect(sum((r) => r.counts.spo2)).toBe(2);
    expect(bundlesWith((r) => r.counts.spo2)).toBe(2);
    // Temperature: 8 Observations with 8310-5 in 7 bundles (SOURCE.md), plus 2 coded only 8331-1
    // "Oral temperature" (Bradly_Douglas, Jordan_Cruickshank) that the import also maps.
    expect(sum((r) => r.counts.temperature)).toBe(8 + 2);
    expect(bundlesWith((r) => r.counts.temperature)).toBe(7 + 2);
    expect(sum((r) => r.counts.bmi)).toBe(58);
    expect(bundlesWith((r) => r.counts.bmi)).toBe(12);
    // labs: CBC in 12/12 (Jordan_Cruickshank has one extra CBC coded 26464-8 / 26453-1 / 26515-7)
    expect(sum((r) => r.counts.wbc)).toBe(17 + 1);
    expect(sum((r) => r.counts.rbc)).toBe(17 + 1);
    expect(sum((r) => r.counts.hemoglobin)).toBe(18);
    expect(sum((r) => r.counts.platelets)).toBe(17 + 1);
    for (const c of ['wbc', 'rbc', 'hemoglobin', 'platelets'] as const) expect(bundlesWith((r) => r.counts[c])).toBe(12);
    // chemistry: blood codes 23 in 4/12 + one serum/plasma panel in Jordan_Cruickshank
    for (const c of ['glucose', 'creatinine', 'sodium', 'potassium'] as const) {
      expect(sum((r) => r.counts[c]), c).toBe(23 + 1);
      expect(bundlesWith((r) => r.counts[c]), c).toBe(4);
    }
    // markers: only LDL (20 in 9/12); NT-proBNP once (Loyd_Connelly) and never as bnp
    expect(sum((r) => r.counts.ldl)).toBe(20);
    expect(bundlesWith((r) => r.counts.ldl)).toBe(9);
    for (const c of ['crp', 'd_dimer', 'troponin', 'bnp'] as const) expect(sum((r) => r.counts[c]), c).toBe(0);
    expect(get('Loyd_Connelly').report.counts.nt_probnp).toBe(1);
    expect(sum((r) => r.counts.nt_probnp)).toBe(1);
    expect(get('Loyd_Connelly').report.warnings.join('\n')).toMatch(/NT-proBNP.*not mapped into bnp/);
    for (const r of batch.records) expect(r.biology_markers.bnp.every((v) => v === null)).toBe(true);
    expect(batch.summary.counts.systolic_bp).toBe(78);
  });

  it('reports modalities per bundle and in the summary', () => {
    expect(batch.summary.modalities).toEqual({ demographics: 12, vitals: 12, labs: 12, biology: 9, omics: 0 });
    for (const r of batch.reports) {
      expect(r.modalities.omics).toBe(false);
      // every modality present in the bundle ends up in the record (window or fallback)
      expect(r.modalities.vitals).toBe(r.counts.systolic_bp > 0);
      expect(r.modalities.biology).toBe(r.counts.ldl > 0);
    }
    for (const name of ['Bradly_Douglas', 'Casimira119', 'Lucien408']) expect(get(name).report.modalities.biology, name).toBe(false);
  });

  it('counts encounters and finds the one 30-day readmission pair (Bradly_Douglas)', () => {
    expect(sum((r) => r.encounters.total)).toBe(327);
    expect(sum((r) => r.encounters.inpatient)).toBe(59);
    expect(sum((r) => r.encounters.emergency)).toBe(17);
    const inpatient: Record<string, number> = {
      Bradly_Douglas: 38, Arturo47: 6, Randolph_Wisoky: 5, Omega729: 4, Loyd_Connelly: 3,
      Olimpia983: 1, Lonny638: 1, Lucien408: 1, Casimira119: 0, Jordan_Cruickshank: 0, Nigel915: 0, Ward668: 0,
    };
    for (const [name, n] of Object.entries(inpatient)) expect(get(name).report.encounters.inpatient, name).toBe(n);
    expect(batch.summary.encounters.readmissionPairs).toBe(1);
    expect(get('Bradly_Douglas').report.encounters.readmissionPairs).toBe(1);
    // The pair (discharge 2011-09-13 → admission 2011-10-03) is early in Bradly's history. The
    // index is the latest inpatient stay with ≥ 30 days of follow-up: 2019-08-22 (drug
    // rehabilitation), followed by no other stay, so his record's label is readmission_30d = 0.
    const bradly = get('Bradly_Douglas');
    expect(bradly.record.metadata.admission_date).toBe('2019-08-22');
    expect(bradly.record.outcomes).toEqual({ readmission_30d: 0, risk_level: null, days_to_readmission: null, adverse_event: 0 });
    expect(batch.summary.readmissions).toBe(0);
  });

  it('derives outcomes for the 8 patients with an inpatient stay and leaves the other 4 unknown', () => {
    expect(batch.summary.labelled).toBe(8);
    expect(batch.summary.unlabelled).toBe(4);
    const unknown = ['Casimira119', 'Jordan_Cruickshank', 'Nigel915', 'Ward668'];
    for (const name of unknown) {
      const { record, report } = get(name);
      expect(report.modalities.outcomes, name).toBe('unknown');
      expect(record.outcomes).toEqual({ readmission_30d: null, risk_level: null, days_to_readmission: null, adverse_event: null });
    }
    for (const { record, report } of byPatient.values()) {
      if (report.modalities.outcomes !== 'derived') continue;
      expect(report.index.class).toBe('IMP');
      expect(record.outcomes.readmission_30d).not.toBeNull();
      expect(record.outcomes.adverse_event).not.toBeNull();
    }
    // Loyd_Connelly died the day after his last discharge; Lucien408's death is dated during his stay.
    expect(batch.summary.adverseEvents).toBe(2);
    expect(get('Loyd_Connelly').record.outcomes.adverse_event).toBe(1);
    expect(get('Loyd_Connelly').record.metadata).toMatchObject({ admission_date: '2012-06-14', discharge_date: '2012-06-15', length_of_stay: 1 });
    expect(get('Lucien408').record.outcomes.adverse_event).toBe(1);
    expect(get('Randolph_Wisoky').record.outcomes.adverse_event).toBe(0); // died 6 years later
    expect(batch.reports.filter((r) => r.deceased !== null)).toHaveLength(4);
    expect(get('Lonny638').record.metadata.length_of_stay).toBe(4);
  });

  it('maps demographics, conditions and medications', () => {
    const arturo = get('Arturo47').record;
    expect(arturo.demographics).toMatchObject({ age: 35, gender: 'M', ethnicity: 'Hispanic', comorbidities: ['hypertension', 'obesity'] });
    expect(arturo.metadata.diagnosis_codes).toEqual(['I10', 'E66.9']);
    expect(arturo.demographics.medications).toEqual(expect.arrayContaining(['lisinopril', 'hydrochlorothiazide', 'amlodipine']));
    expect(get('Omega729').record.demographics.ethnicity).toBe('African American');
    expect(get('Loyd_Connelly').record.demographics).toMatchObject({ age: 80, ethnicity: 'Asian', comorbidities: ['heart_failure', 'obesity'] });
    expect(get('Randolph_Wisoky').record.metadata.diagnosis_codes).toEqual(['I25.10']);
    expect(sum((r) => r.conditions.mapped)).toBe(10);
    expect(sum((r) => r.conditions.mapped + r.conditions.unmapped)).toBe(241);
    expect(sum((r) => r.medications)).toBe(137);
    // Lucien408 died at 2 years 364 days: the age is taken at death, not at the later discharge.
    expect(get('Lucien408').record.demographics.age).toBe(2);
    for (const r of batch.records) {
      for (const c of r.metadata.unmapped_codes ?? []) expect(c).toMatch(/^http:\/\/snomed\.info\/sct\|\d+$/);
      expect(r.metadata.procedure_codes.length).toBeLessThanOrEqual(50);
      expect(new Set(r.metadata.procedure_codes).size).toBe(r.metadata.procedure_codes.length);
    }
  });

  it('converts the one Fahrenheit temperature (Lucien408, 102.8 °F)', () => {
    const v = get('Lucien408').record.clinical_timeseries;
    const k = v.timestamps.indexOf('1967-01-26');
    expect(k).toBeGreaterThanOrEqual(0);
    expect(v.temperature[k]).toBeCloseTo(((102.8 - 32) * 5) / 9, 2);
  });

  it('resolves conditional references with the support bundles and ignores them without', () => {
    for (const a of SOURCE_A) {
      const { references } = get(a).report;
      expect(references.conditional, a).toBeGreaterThan(0);
      expect(references.resolved, a).toBe(references.conditional);
    }
    for (const b of SOURCE_B) expect(get(b).report.references.conditional, b).toBe(0);
    const arturo = fixtures.find((f) => f.name.startsWith('Arturo47')) as { name: string; json: unknown };
    const alone = importFhirBundle(arturo.json, { hospitalId: 'H4', source: arturo.name });
    expect(alone.report.references.resolved).toBe(0);
    expect(alone.report.references.conditional).toBeGreaterThan(0);
    expect(toNdjson([alone.record])).toBe(toNdjson([get('Arturo47').record]));
  });
});

// ---------------------------------------------------------------------------------------------
// Small hand-made bundles

type Res = Record<string, unknown>;
const PATIENT: Res = {
  resourceType: 'Patient',
  id: 'a1b2c3d4-e5f6-0000-0000-000000000000',
  gender: 'female',
  birthDate: '1950-03-01',
};
function enc(cls: string, start: string, end: string): Res {
  return { resourceType: 'Encounter', class: { code: cls }, period: { start: `${start}T08:00:00Z`, end: `${end}T10:00:00Z` } };
}
function obs(code: string, date: string, value: unknown, unit: string): Res {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: `${date}T09:00:00Z`,
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}
function bundle(...resources: Res[]): Res {
  return { resourceType: 'Bundle', type: 'collection', entry: resources.map((resource) => ({ resource })) };
}
const opts = { hospitalId: 'H9', source: 'test.json' };

describe('importFhirBundle on hand-made bundles', () => {
  it('rejects input that is not a Bundle, with the bundle name', () => {
    expect(() => importFhirBundle({ resourceType: 'Patient' }, opts)).toThrow(FhirImportError);
    expect(() => importFhirBundle({ resourceType: 'Patient' }, opts)).toThrow(/^bundle test\.json: resourceType: .*not a FHIR Bundle/);
    expect(() => importFhirBundle([1, 2], opts)).toThrow(/not a FHIR Bundle \(got an array\)/);
    expect(() => importFhirBundle('{"resourceType": "Bund', opts)).toThrow(/bundle test\.json: not valid JSON/);
    expect(() => importFhirBundle({ resourceType: 'Bundle' }, opts)).toThrow(/entry: missing/);
  });

  it('rejects a bundle without a Patient, or with two', () => {
    expect(() => importFhirBundle(bundle(enc('IMP', '2020-01-01', '2020-01-02')), opts)).toThrow(/bundle test\.json: no Patient resource$/);
    expect(() => importFhirBundle(bundle({ resourceType: 'Organization', name: 'X' }), opts)).toThrow(/support bundle/);
    expect(() => importFhirBundle(bundle(PATIENT, PATIENT, enc('IMP', '2020-01-01', '2020-01-02')), opts)).toThrow(/2 Patient resources/);
  });

  it('names the entry of a malformed resource', () => {
    const noCode = { resourceType: 'Observation', status: 'final', effectiveDateTime: '2020-01-01', valueQuantity: { value: 1 } };
    expect(() => importFhirBundle(bundle(PATIENT, enc('AMB', '2020-01-01', '2020-01-01'), noCode), opts)).toThrow(
      'bundle test.json: entry[2].resource.code: missing',
    );
    expect(() => importFhirBundle(bundle(PATIENT, { resourceType: 'Encounter', class: { code: 'AMB' } }), opts)).toThrow(
      'entry[1].resource.period.start: missing',
    );
    expect(() => importFhirBundle({ resourceType: 'Bundle', entry: [{ fullUrl: 'x' }] }, opts)).toThrow('entry[0].resource: missing');
  });

  it('rejects an Observation whose valueQuantity.value is a string', () => {
    const b = bundle(PATIENT, enc('IMP', '2020-01-01', '2020-01-03'), obs('8867-4', '2020-01-02', '72', '/min'));
    expect(() => importFhirBundle(b, opts)).toThrow(
      'bundle test.json: entry[2].resource.valueQuantity.value: expected a number, got string "72"',
    );
    const bp = {
      resourceType: 'Observation',
      code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
      effectiveDateTime: '2020-01-02',
      component: [
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, code: 'mm[Hg]' } },
        { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: '120', code: 'mm[Hg]' } },
      ],
    };
    expect(() => importFhirBundle(bundle(PATIENT, enc('IMP', '2020-01-01', '2020-01-03'), bp), opts)).toThrow(
      'entry[2].resource.component[1].valueQuantity.value: expected a number',
    );
  });

  it('converts units, averages same-day repeats and drops what it cannot use', () => {
    const b = bundle(
      PATIENT,
      enc('IMP', '2020-03-01', '2020-03-05'),
      enc('AMB', '2020-05-01', '2020-05-01'),
      obs('8310-5', '2020-03-02', 102.2, '[degF]'),
      obs('8310-5', '2020-03-03', 37.5, 'Cel'),
      obs('8867-4', '2020-03-03', 80, '/min'),
      obs('8867-4', '2020-03-03', 90, '/min'),
      obs('8867-4', '2020-03-04', 400, '/min'), // outside 20–250: dropped
      obs('2339-0', '2020-03-02', 5.5, 'mmol/L'),
      obs('38483-4', '2020-03-02', 88.4, 'umol/L'),
      obs('2947-0', '2020-03-02', 140, 'furlongs'), // unknown unit: dropped
      obs('18262-6', '2020-03-02', 2.6, 'mmol/L'),
      obs('33762-6', '2020-03-02', 900, 'pg/mL'), // NT-proBNP: counted, not bnp
      obs('8867-4', '2019-01-01', 60, '/min'), // outside the 84-day window
    );
    const { record, report } = importFhirBundle(b, opts);
    const v = record.clinical_timeseries;
    expect(v.timestamps).toEqual(['2020-03-02', '2020-03-03']);
    expect(v.temperature[0]).toBeCloseTo(39, 3);
    expect(v.temperature[1]).toBe(37.5);
    expect(v.heart_rate).toEqual([null, 85]);
    expect(v.spo2).toEqual([null, null]);
    expect(record.lab_results.timestamps).toEqual(['2020-03-02']);
    expect(record.lab_results.glucose[0]).toBeCloseTo(5.5 * 18.016, 2);
    expect(record.lab_results.creatinine[0]).toBeCloseTo(1, 6);
    expect(record.lab_results.sodium).toEqual([null]);
    expect(record.biology_markers.ldl[0]).toBeCloseTo(2.6 * 38.67, 2);
    expect(record.biology_markers.bnp).toEqual([null]);
    expect(report.counts).toMatchObject({ heart_rate: 4, temperature: 2, sodium: 1, nt_probnp: 1, bnp: 0 });
    expect(report.droppedValues).toBe(2);
    expect(report.warnings.join('\n')).toMatch(/heart_rate: 400 beats\/min outside the plausible range 20–250/);
    expect(report.warnings.join('\n')).toMatch(/sodium: unit "furlongs" cannot be converted to mEq\/L/);
    // 84 days inclusive: 2019-12-13 … 2020-03-05 (2020 is a leap year)
    expect(report.windows.vitals).toEqual({ start: '2019-12-13', end: '2020-03-05', kind: 'index' });
    expect(record.metadata).toMatchObject({ admission_date: '2020-03-01', discharge_date: '2020-03-05', length_of_stay: 4, source: 'fhir:test.json' });
    expect(record.demographics).toMatchObject({ age: 70, gender: 'F', ethnicity: 'Other', bmi: null });
    expect(parseRecord(record).ok).toBe(true);
  });

  it('falls back to the latest earlier measurements when the window is empty, and says so', () => {
    const b = bundle(PATIENT, enc('IMP', '2020-03-01', '2020-03-05'), enc('AMB', '2020-06-01', '2020-06-01'), obs('8867-4', '2019-06-01', 70, '/min'));
    const { record, report } = importFhirBundle(b, opts);
    expect(record.clinical_timeseries.timestamps).toEqual(['2019-06-01']);
    expect(report.windows.vitals?.kind).toBe('before');
    expect(report.warnings.join('\n')).toMatch(/no vitals in the 84 days before the index discharge 2020-03-05/);
    expect(record.lab_results).toEqual({ timestamps: [], wbc: [], rbc: [], hemoglobin: [], platelets: [], glucose: [], creatinine: [], sodium: [], potassium: [] });
    expect(report.modalities.labs).toBe(false);
  });

  it('derives a readmission from the latest inpatient stay that has 30 days of follow-up', () => {
    const b = bundle(
      PATIENT,
      enc('IMP', '2020-01-01', '2020-01-03'),
      enc('EMER', '2020-01-10', '2020-01-10'), // ED visit without admission: not a readmission
      enc('IMP', '2020-01-20', '2020-01-22'), // 17 days after the first discharge
      enc('AMB', '2020-02-10', '2020-02-10'), // follow-up: 38 days after the first, 19 after the second
    );
    const { record, report } = importFhirBundle(b, opts);
    expect(record.metadata.admission_date).toBe('2020-01-01');
    expect(record.outcomes).toEqual({ readmission_30d: 1, risk_level: null, days_to_readmission: 17, adverse_event: 0 });
    expect(report.modalities.outcomes).toBe('derived');
    expect(report.encounters.readmissionPairs).toBe(1);

    // With another month of record the second stay has follow-up itself and becomes the index.
    const later = bundle(...(b.entry as { resource: Res }[]).map((e) => e.resource), enc('AMB', '2020-03-15', '2020-03-15'));
    const r2 = importFhirBundle(later, opts).record;
    expect(r2.metadata.admission_date).toBe('2020-01-20');
    expect(r2.outcomes).toMatchObject({ readmission_30d: 0, days_to_readmission: null });
  });

  it('leaves outcomes unknown without follow-up or without an inpatient stay', () => {
    const short = importFhirBundle(bundle(PATIENT, enc('IMP', '2020-01-01', '2020-01-03'), enc('AMB', '2020-01-20', '2020-01-20')), opts);
    expect(short.report.modalities.outcomes).toBe('unknown');
    expect(short.record.metadata.admission_date).toBe('2020-01-01');
    expect(short.record.outcomes.readmission_30d).toBeNull();
    expect(short.report.warnings.join('\n')).toMatch(/17 day\(s\) of follow-up/);

    const none = importFhirBundle(bundle(PATIENT, enc('AMB', '2020-01-01', '2020-01-01'), enc('AMB', '2021-01-01', '2021-01-01')), opts);
    expect(none.report.modalities.outcomes).toBe('unknown');
    expect(none.record.metadata.admission_date).toBe('2021-01-01');
    expect(none.record.outcomes).toEqual({ readmission_30d: null, risk_level: null, days_to_readmission: null, adverse_event: null });
  });

  it('counts a death within 30 days of discharge as an adverse event (death closes follow-up)', () => {
    const dead = { ...PATIENT, deceasedDateTime: '2020-01-20T00:00:00Z' };
    const { record, report } = importFhirBundle(bundle(dead, enc('IMP', '2020-01-01', '2020-01-03')), opts);
    expect(report.modalities.outcomes).toBe('derived');
    expect(record.outcomes).toEqual({ readmission_30d: 0, risk_level: null, days_to_readmission: null, adverse_event: 1 });
    expect(report.deceased).toBe('2020-01-20');
  });

  it('maps gender, race and ethnicity, with a documented fallback for gender', () => {
    const ext = (race: string, eth: string) => [
      { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race', extension: [{ url: 'ombCategory', valueCoding: { code: race } }] },
      { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity', extension: [{ url: 'ombCategory', valueCoding: { code: eth } }] },
    ];
    const run = (p: Res) => importFhirBundle(bundle(p, enc('AMB', '2020-01-01', '2020-01-01')), opts);
    expect(run({ ...PATIENT, gender: 'male', extension: ext('2106-3', '2186-5') }).record.demographics).toMatchObject({ gender: 'M', ethnicity: 'Caucasian' });
    expect(run({ ...PATIENT, extension: ext('2054-5', '2135-2') }).record.demographics.ethnicity).toBe('Hispanic');
    expect(run({ ...PATIENT, extension: ext('2028-9', '2186-5') }).record.demographics.ethnicity).toBe('Asian');
    expect(run({ ...PATIENT, extension: ext('1002-5', '2186-5') }).record.demographics.ethnicity).toBe('Other');
    expect(() => run({ ...PATIENT, gender: 'unknown' })).toThrow(/entry\[0\]\.resource\.gender: "unknown" cannot be mapped/);
    const birthSex = { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'M' };
    const fallback = run({ ...PATIENT, gender: 'other', extension: [birthSex] });
    expect(fallback.record.demographics.gender).toBe('M');
    expect(fallback.report.warnings.join('\n')).toMatch(/birth sex M/);
    expect(() => run({ ...PATIENT, birthDate: undefined })).toThrow(/birthDate: missing/);
  });

  it('maps SNOMED conditions active at the index stay and keeps the unmapped codes', () => {
    const cond = (code: string, onset: string, abatement?: string): Res => ({
      resourceType: 'Condition',
      clinicalStatus: { coding: [{ code: abatement ? 'resolved' : 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code }] },
      onsetDateTime: onset,
      ...(abatement ? { abatementDateTime: abatement } : {}),
    });
    const { record, report } = importFhirBundle(
      bundle(
        PATIENT,
        enc('IMP', '2020-01-01', '2020-01-03'),
        cond('44054006', '2010-01-01'), // diabetes type 2
        cond('59621000', '2012-01-01'), // hypertension
        cond('59621000', '2013-01-01'), // duplicate
        cond('49436004', '2021-01-01'), // AF after the stay: not a comorbidity at the index
        cond('195967001', '2000-01-01', '2005-01-01'), // asthma, resolved before
        cond('15777000', '2015-01-01'), // prediabetes: unmapped
      ),
      opts,
    );
    expect(record.demographics.comorbidities).toEqual(['hypertension', 'diabetes_type2']);
    expect(record.metadata.diagnosis_codes).toEqual(['I10', 'E11.9']);
    expect(record.metadata.unmapped_codes).toEqual(['http://snomed.info/sct|15777000']);
    expect(report.conditions).toEqual({ mapped: 5, unmapped: 1 });
  });

  it('refuses an invalid hospital id', () => {
    expect(() => importFhirBundle(bundle(PATIENT, enc('AMB', '2020-01-01', '2020-01-01')), { hospitalId: '4 H' })).toThrow(/hospital id "4 H"/);
  });
});

describe('importFhirBundles', () => {
  const good = bundle(PATIENT, enc('AMB', '2020-01-01', '2020-01-01'));
  it('lists every failing bundle, and with keepGoing returns them', () => {
    const list = [
      { name: 'ok.json', json: good },
      { name: 'bad.json', json: { resourceType: 'Patient' } },
      { name: 'empty.json', json: bundle() },
      { name: 'dup.json', json: JSON.stringify(good) },
    ];
    let err: unknown;
    try {
      importFhirBundles(list, { hospitalId: 'H9' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FhirBatchError);
    expect((err as FhirBatchError).failures.map((f) => f.name)).toEqual(['bad.json', 'empty.json', 'dup.json']);
    expect((err as Error).message).toMatch(/bundle dup\.json: patient FHIR_a1b2c3d4e5f6 was already imported from bundle ok\.json/);
    const kept = importFhirBundles(list, { hospitalId: 'H9', keepGoing: true });
    expect(kept.records).toHaveLength(1);
    expect(kept.failures).toHaveLength(3);
    expect(kept.summary).toMatchObject({ bundles: 1, records: 1, labelled: 0, unlabelled: 1 });
  });
});

describe('ingredientName', () => {
  it.each([
    ['lisinopril 10 MG Oral Tablet', 'lisinopril'],
    ['Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet', 'acetaminophen/oxycodone'],
    ['Abuse-Deterrent 12 HR Oxycodone Hydrochloride 15 MG Extended Release Oral Tablet', 'oxycodone'],
    ['24 HR metoprolol succinate 100 MG Extended Release Oral Tablet [Toprol]', 'metoprolol'],
    ['Carbamazepine[Tegretol]', 'carbamazepine'],
    ['2 ML Ondansetron 2 MG/ML Injection', 'ondansetron'],
    ['heparin sodium, porcine', 'heparin'],
    ['Sodium Chloride 9 MG/ML Injectable Solution', 'sodium chloride'],
    ['ferrous sulfate 325 MG Oral Tablet', 'ferrous sulfate'],
    ['24hr nicotine transdermal patch', 'nicotine'],
    ['NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', 'albuterol'],
    ['Lasix 40mg', 'furosemide'],
    ['Remifentanil', 'remifentanil'],
  ])('%s → %s', (display, name) => {
    expect(ingredientName(display)).toBe(name);
  });
});
