import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { importFhirBundles, type FhirBundleReport, type FhirImportBatch } from './fhir';
import { FhirBulkImport, importFhirBulk, isFhirResourceLine, ndjsonLines, patientIdOfReference, type FhirBulkResult } from './fhir-bulk';
import { parseRecord } from './records';
import type { PatientRecord } from './schema';
import { bundlesToBulk, type BulkTestFile } from '../testing/fhir-bulk';

// The Synthea fixtures (<repo>/fixtures/fhir/synthea, SOURCE.md there), as fhir.test.ts reads them.
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../fixtures/fhir/synthea');

function readJsonFiles(dir: string): { name: string; json: unknown }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, json: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as unknown }));
}

const byId = (a: { patient_id: string }, b: { patient_id: string }) => (a.patient_id < b.patient_id ? -1 : 1);
/** A record without metadata.source: the one field that names where it came from (bundle file vs Bulk file and Patient id). */
const withoutSource = (r: PatientRecord) => ({ ...r, metadata: { ...r.metadata, source: undefined } });
const reportWithoutSource = (r: FhirBundleReport) => ({ ...r, source: undefined });

describe('Bulk Data import of the 12 Synthea patients: the same records as their bundles', () => {
  let fixtures: { name: string; json: unknown }[];
  let bundles: FhirImportBatch;
  let files: BulkTestFile[];
  let bulk: FhirBulkResult;

  beforeAll(async () => {
    fixtures = readJsonFiles(FIXTURES);
    const support = readJsonFiles(path.join(FIXTURES, 'support')).map((f) => f.json);
    bundles = importFhirBundles(fixtures, { hospitalId: 'H4', support });
    files = bundlesToBulk(
      fixtures.map((f) => f.json),
      { seed: 'fhir-bulk.test', support },
    );
    // Each file's lines arrive as an async stream of text chunks of an awkward size (not whole lines).
    const chunked = (lines: string[]) => {
      const text = lines.join('\n') + '\n';
      return Array.from({ length: Math.ceil(text.length / 4093) }, (_, k) => text.slice(k * 4093, (k + 1) * 4093));
    };
    bulk = await importFhirBulk(
      files.map((f) => ({ name: f.name, lines: ndjsonLines(chunked(f.lines)) })),
      { hospitalId: 'H4' },
    );
  });

  it('the export is shuffled: one file per type (Observation split), Patient last, patients interleaved', () => {
    const names = files.map((f) => f.name);
    expect(names.at(-1)).toBe('Patient.ndjson');
    expect(names.filter((n) => n.startsWith('Observation.')).length).toBeGreaterThan(1);
    for (const t of ['Encounter', 'Condition', 'MedicationRequest', 'Procedure', 'Organization', 'Practitioner']) {
      expect(names.some((n) => n.startsWith(`${t}.`)), t).toBe(true);
    }
    expect(names.slice(0, 3)).not.toEqual(['Organization.ndjson', 'Location.ndjson', 'Practitioner.ndjson']);
    const obs = files.find((f) => f.name.startsWith('Observation.')) as BulkTestFile;
    const subjects = obs.lines.slice(0, 12).map((l) => (JSON.parse(l) as { subject: { reference: string } }).subject.reference);
    expect(new Set(subjects.map((s) => s.replace(/^(urn:uuid:|Patient\/)/, ''))).size).toBeGreaterThan(2);
    // both reference forms are in use
    expect(subjects.some((s) => s.startsWith('Patient/'))).toBe(true);
    expect(subjects.some((s) => s.startsWith('urn:uuid:'))).toBe(true);
  });

  it('gives exactly the bundle import’s records (deep equal, but for metadata.source) and no issue', () => {
    expect(bulk.issues).toEqual([]);
    expect(bulk.records).toHaveLength(12);
    expect([...bulk.records].sort(byId).map(withoutSource)).toEqual([...bundles.records].sort(byId).map(withoutSource));
    for (const r of bulk.records) {
      expect(r.metadata.source).toMatch(/^fhir:Patient\.ndjson#Patient\/[0-9a-f-]{36}$/);
      expect(parseRecord(r, { knownHospitals: ['H4'] }).ok).toBe(true);
    }
  });

  it('and the same reports, but for the conditional references of a Provenance (which names no patient)', () => {
    const bulkReports = new Map(bulk.reports.map((r) => [r.patientId, r]));
    for (const b of bundles.reports) {
      const r = bulkReports.get(b.patientId) as FhirBundleReport;
      expect({ ...reportWithoutSource(r), references: undefined }).toEqual({ ...reportWithoutSource(b), references: undefined });
      const provenanceRefs = conditionalRefsOfProvenance(fixtures.find((f) => f.name === b.source)?.json);
      expect(r.references, b.source).toEqual({ conditional: b.references.conditional - provenanceRefs, resolved: b.references.resolved - provenanceRefs });
    }
    expect(bulk.summary).toEqual(bundles.summary);
  });

  it('counts lines and resources per file', () => {
    const total = (t: string) => bulk.files.reduce((s, f) => s + (f.resources[t] ?? 0), 0);
    const inBundles = (t: string) => fixtures.reduce((s, f) => s + (f.json as { entry: { resource: { resourceType: string } }[] }).entry.filter((e) => e.resource.resourceType === t).length, 0);
    expect(total('Patient')).toBe(12);
    expect(total('Observation')).toBe(inBundles('Observation'));
    expect(total('Encounter')).toBe(inBundles('Encounter'));
    expect(bulk.files.find((f) => f.name === 'Patient.ndjson')).toMatchObject({ lines: 12, records: 12, issues: 0 });
    expect(bulk.files.reduce((s, f) => s + f.lines, 0)).toBe(files.reduce((s, f) => s + f.lines.length, 0));
  });
});

/** Conditional references (`Type?identifier=`) in a bundle's Provenance resources. */
function conditionalRefsOfProvenance(bundle: unknown): number {
  const provenances = (bundle as { entry: { resource: { resourceType: string } }[] }).entry.filter((e) => e.resource.resourceType === 'Provenance');
  return provenances.reduce((s, e) => s + (JSON.stringify(e.resource).match(/"reference":"[^"]*\?/g) ?? []).length, 0);
}

// ---------------------------------------------------------------------------------------------
// Hand-made exports

type Res = Record<string, unknown>;
const PID = 'a1b2c3d4-e5f6-0000-0000-000000000000';
const PATIENT: Res = { resourceType: 'Patient', id: PID, gender: 'female', birthDate: '1950-03-01' };
function enc(id: string, cls: string, start: string, end: string, patient = `Patient/${PID}`): Res {
  return { resourceType: 'Encounter', id, subject: { reference: patient }, class: { code: cls }, period: { start: `${start}T08:00:00Z`, end: `${end}T10:00:00Z` } };
}
function obs(id: string, code: string, date: string, value: unknown, unit: string, patient = `Patient/${PID}`): Res {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    subject: { reference: patient },
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: `${date}T09:00:00Z`,
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}
const line = (r: Res) => JSON.stringify(r);

function run(files: Record<string, string[]>): FhirBulkResult {
  const bulk = new FhirBulkImport({ hospitalId: 'H9' });
  for (const [name, lines] of Object.entries(files)) lines.forEach((l, k) => bulk.addLine(name, k + 1, l));
  return bulk.finish();
}

describe('FhirBulkImport: bad lines are issues with file, line and field; the rest is kept', () => {
  it('a malformed JSON line, an Observation with a bad valueQuantity, a reference to an unknown Patient', () => {
    const out = run({
      'Observation.ndjson': [
        line(obs('o1', '8867-4', '2020-03-02', 70, '/min')),
        '{"resourceType": "Observation", "id": "o2", "subject": {"refer',
        line(obs('o3', '8867-4', '2020-03-03', '72', '/min')),
        line(obs('o4', '8867-4', '2020-03-03', 75, '/min', 'Patient/nobody')),
        '',
        line(obs('o6', '8867-4', '2020-03-04', 80, '/min')),
      ],
      'Encounter.ndjson': [line(enc('e1', 'IMP', '2020-03-01', '2020-03-05')), line(enc('e2', 'AMB', '2020-05-01', '2020-05-01'))],
      'Patient.ndjson': [line(PATIENT)],
    });
    expect(out.issues).toEqual([
      { file: 'Observation.ndjson', line: 2, resource: '', field: '(line)', message: expect.stringMatching(/^not valid JSON/) },
      {
        file: 'Observation.ndjson',
        line: 3,
        resource: 'Observation/o3',
        field: 'valueQuantity.value',
        message: 'expected a number, got string "72": this resource was skipped',
      },
      {
        file: 'Observation.ndjson',
        line: 4,
        resource: 'Observation/o4',
        field: 'subject.reference',
        message: 'Patient/nobody is not in the export (no Patient line has this id): its 1 resource(s) were skipped',
      },
    ]);
    expect(out.records).toHaveLength(1);
    const r = out.records[0] as PatientRecord;
    expect(r.patient_id).toBe('FHIR_a1b2c3d4e5f6');
    expect(r.metadata.source).toBe(`fhir:Patient.ndjson#Patient/${PID}`);
    expect(r.clinical_timeseries.timestamps).toEqual(['2020-03-02', '2020-03-04']);
    expect(r.clinical_timeseries.heart_rate).toEqual([70, 80]);
    expect(out.reports[0]?.counts.heart_rate).toBe(2);
    expect(out.files).toEqual([
      { name: 'Observation.ndjson', lines: 5, resources: { Observation: 4 }, records: 0, issues: 3 },
      { name: 'Encounter.ndjson', lines: 2, resources: { Encounter: 2 }, records: 0, issues: 0 },
      { name: 'Patient.ndjson', lines: 1, resources: { Patient: 1 }, records: 1, issues: 0 },
    ]);
  });

  it('names the component of a bad blood-pressure panel, and keeps the patient', () => {
    const bp = {
      ...obs('bp', '85354-9', '2020-03-02', 1, '1'),
      valueQuantity: undefined,
      component: [
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 80, code: 'mm[Hg]' } },
        { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: 'high' },
      ],
    };
    const out = run({ 'Patient.ndjson': [line(PATIENT)], 'all.ndjson': [line(enc('e1', 'AMB', '2020-03-01', '2020-03-02')), line(bp)] });
    expect(out.issues).toEqual([
      { file: 'all.ndjson', line: 2, resource: 'Observation/bp', field: 'component[1].valueQuantity', message: 'expected an object: this resource was skipped' },
    ]);
    expect(out.records).toHaveLength(1);
    expect(out.reports[0]?.counts.diastolic_bp).toBe(0); // the whole panel was skipped, not half of it
  });

  it('reports Patients that give no record at their line, and resources that name no Patient', () => {
    const noBirth = { ...PATIENT, id: 'p-nobirth', birthDate: undefined };
    const noEncounter = { ...PATIENT, id: 'p-noenc' };
    const out = run({
      'Patient.ndjson': [line(PATIENT), line(noBirth), line(noEncounter), line(PATIENT), line({ resourceType: 'Patient', gender: 'male' })],
      'Encounter.ndjson': [
        line(enc('e1', 'AMB', '2020-01-01', '2020-01-01')),
        line(enc('e2', 'AMB', '2020-01-01', '2020-01-01', 'Patient/p-nobirth')),
        line({ ...enc('e3', 'AMB', '2020-01-01', '2020-01-01'), subject: undefined }),
        line(enc('e4', 'AMB', '2020-01-01', '2020-01-01', 'Group/g1')),
        line({ ...enc('e5', 'AMB', '2020-01-01', '2020-01-01'), class: undefined }),
        '[1, 2]',
        line({ patient_id: 'P_H9_0001', hospital_id: 'H9' }),
      ],
    });
    expect(out.records.map((r) => r.patient_id)).toEqual(['FHIR_a1b2c3d4e5f6']);
    expect(out.issues.map((i) => [i.file, i.line, i.resource, i.field, i.message])).toEqual([
      ['Patient.ndjson', 2, 'Patient/p-nobirth', 'birthDate', 'missing: this patient gives no record'],
      ['Patient.ndjson', 3, 'Patient/p-noenc', '(patient)', 'no Encounter resource: the record needs an admission (index encounter): this patient gives no record'],
      ['Patient.ndjson', 4, `Patient/${PID}`, 'id', `Patient/${PID} already came at Patient.ndjson line 1: this copy was skipped`],
      ['Patient.ndjson', 5, 'Patient', 'id', 'missing: other resources name a Patient by its id'],
      ['Encounter.ndjson', 3, 'Encounter/e3', 'subject', 'missing: the resource names no Patient, so it belongs to no record'],
      ['Encounter.ndjson', 4, 'Encounter/e4', 'subject.reference', '"Group/g1" is not a Patient reference (Patient/<id> or urn:uuid:<id>): the resource belongs to no record'],
      ['Encounter.ndjson', 5, 'Encounter/e5', 'class', 'missing: this resource was skipped'],
      ['Encounter.ndjson', 6, '', '(line)', 'not a FHIR resource (got an array)'],
      ['Encounter.ndjson', 7, '', 'resourceType', 'missing: not a FHIR resource (a fedcare record belongs in a file of its own)'],
    ]);
  });

  it('resolves a medicationReference and a serviceProvider through resources that name no patient, in any order', () => {
    const med = { resourceType: 'MedicationRequest', id: 'm1', status: 'active', subject: { reference: `Patient/${PID}` }, authoredOn: '2020-01-01', medicationReference: { reference: 'Medication/lis' } };
    const encounter = { ...enc('e1', 'AMB', '2020-03-01', '2020-03-01'), serviceProvider: { reference: 'Organization?identifier=https://example.org|org-1' } };
    const out = run({
      'MedicationRequest.ndjson': [line(med)],
      'Encounter.ndjson': [line(encounter)],
      'Patient.ndjson': [line(PATIENT)],
      'Medication.ndjson': [line({ resourceType: 'Medication', id: 'lis', code: { coding: [{ display: 'lisinopril 10 MG Oral Tablet' }] } })],
      'Organization.ndjson': [line({ resourceType: 'Organization', id: 'o1', name: 'General Hospital', identifier: [{ system: 'https://example.org', value: 'org-1' }] })],
    });
    expect(out.issues).toEqual([]);
    expect(out.records[0]?.demographics.medications).toEqual(['lisinopril']);
    expect(out.reports[0]?.index.organization).toBe('General Hospital');
    expect(out.reports[0]?.references).toEqual({ conditional: 1, resolved: 1 });
  });

  it('refuses a line after finish(), a second finish() and an invalid hospital id (caller bugs)', () => {
    const bulk = new FhirBulkImport({ hospitalId: 'H9' });
    bulk.finish();
    expect(() => bulk.addLine('x.ndjson', 1, line(PATIENT))).toThrow(/after finish/);
    expect(() => bulk.finish()).toThrow(/called already/);
    expect(() => new FhirBulkImport({ hospitalId: 'not one' })).toThrow(/hospital id "not one"/);
  });
});

describe('Bulk Data helpers', () => {
  it('ndjsonLines splits chunks at any boundary, with \\n or \\r\\n, and keeps a last line without an end', async () => {
    const text = 'a\r\nbb\n\nccc\r\ndddd';
    for (const size of [1, 2, 3, 5, 100]) {
      const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, k) => text.slice(k * size, (k + 1) * size));
      const lines: string[] = [];
      for await (const l of ndjsonLines(chunks)) lines.push(l);
      expect(lines, `chunks of ${size}`).toEqual(['a', 'bb', '', 'ccc', 'dddd']);
    }
  });

  it('patientIdOfReference and isFhirResourceLine', () => {
    expect(patientIdOfReference('Patient/abc-1')).toBe('abc-1');
    expect(patientIdOfReference('urn:uuid:3afaeb2a-9f18-40b5-8fe7-dfd882de2f2b')).toBe('3afaeb2a-9f18-40b5-8fe7-dfd882de2f2b');
    expect(patientIdOfReference('https://fhir.example.org/r4/Patient/abc/_history/2')).toBe('abc');
    expect(patientIdOfReference('Group/abc')).toBeUndefined();
    expect(patientIdOfReference('Patient?identifier=x|1')).toBeUndefined();
    expect(isFhirResourceLine('{"resourceType":"Observation","id":"1"}')).toBe(true);
    expect(isFhirResourceLine('{"resourceType":"Bundle","entry":[]}')).toBe(false);
    expect(isFhirResourceLine('{"patient_id":"P_H1_0001"}')).toBe(false);
    expect(isFhirResourceLine('{"resourceType":')).toBe(false);
  });
});
