import { describe, expect, it } from 'vitest';
import { generateHospital, toNdjson, type PatientRecord } from '@fedcare/shared/data';
import { importFileStreams, importFiles, type ImportIssue, type ImportStreamFile } from './importFiles';
import { bundlesToBulk } from '../../../../shared/src/testing/fhir-bulk';
// Real Synthea bundles (<repo>/fixtures/fhir/synthea, SOURCE.md
// there), read as text through Vite's ?raw imports: the portal's tsconfig has no Node types, so
// node:fs would not typecheck here.
import nigelText from '../../../../fixtures/fhir/synthea/Nigel915_Reilly981_fc7fb56f-f384-f6ae-4266-ce3282cd2069.json?raw';
import wardText from '../../../../fixtures/fhir/synthea/Ward668_Pagac496_0d8e1873-e236-522b-fddd-2501205c0662.json?raw';
import lucienText from '../../../../fixtures/fhir/synthea/Lucien408_Herzog843_9c67d64e-d36e-e626-16e9-75aa668b9835.json?raw';
import bradlyText from '../../../../fixtures/fhir/synthea/Bradly_Douglas_18468941-bdaf-42a0-8648-cba7cafc27ce.json?raw';
import hospitalInfoText from '../../../../fixtures/fhir/synthea/support/hospitalInformation1648909404773.json?raw';
import practitionerInfoText from '../../../../fixtures/fhir/synthea/support/practitionerInformation1648909404773.json?raw';

// Tests break records and bundles on purpose, so they handle them as untyped JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const h1 = generateHospital('H1', { seed: 5, patients: 30 }).records;
const lineOf = (r: PatientRecord) => JSON.stringify(r);
const find = (issues: readonly ImportIssue[], where: string) => issues.filter((i) => i.where === where);

/** The patient_id the FHIR import gives a bundle: FHIR_ + the first 12 hex digits of the Patient's id. */
function fhirPatientId(bundle: Json): string {
  const i = bundle.entry.findIndex((e: Json) => e.resource.resourceType === 'Patient');
  const id: string = bundle.entry[i].resource.id ?? bundle.entry[i].fullUrl.replace('urn:uuid:', '');
  return `FHIR_${id.replace(/-/g, '').slice(0, 12)}`;
}

describe('importFiles: NDJSON', () => {
  it('keeps the valid records and names line and field of each bad one', () => {
    const recs = h1.slice(0, 10).map((r) => structuredClone(r) as Json);
    recs[4]!.demographics.age = -5; // line 5
    const t = recs[6]!.clinical_timeseries.temperature as (number | null)[];
    const k = t.findIndex((v) => v !== null);
    t[k] = 98.6; // line 7: °F in a Celsius channel
    const lines = recs.map((r) => JSON.stringify(r));
    lines[2] = '{"patient_id": "P_H1_0003", "hospital_id": '; // line 3: cut off
    const out = importFiles([{ name: 'H1.ndjson', text: lines.join('\n') + '\n' }], 'H1');

    expect(out.records.map((r) => r.patient_id)).toEqual(h1.slice(0, 10).filter((_, i) => ![2, 4, 6].includes(i)).map((r) => r.patient_id));
    expect(out.records[0]).toEqual(h1[0]);
    expect(out.issues).toHaveLength(3);
    expect(find(out.issues, 'line 3')).toEqual([{ file: 'H1.ndjson', where: 'line 3', field: '(record)', message: expect.stringMatching(/^not valid JSON/) }]);
    expect(find(out.issues, `line 5, patient ${h1[4]!.patient_id}`)).toEqual([
      { file: 'H1.ndjson', where: `line 5, patient ${h1[4]!.patient_id}`, field: 'demographics.age', message: expect.any(String) },
    ]);
    const temp = find(out.issues, `line 7, patient ${h1[6]!.patient_id}`);
    expect(temp).toHaveLength(1);
    expect(temp[0]!.field).toBe(`clinical_timeseries.temperature[${k}]`);
    expect(temp[0]!.message).toMatch(/30–43 Celsius: wrong unit/);
    expect(out.files).toEqual([{ name: 'H1.ndjson', kind: 'ndjson', records: 7, issues: 3 }]);
  });

  it('reports a record of another hospital and keeps the rest', () => {
    const other = generateHospital('H2', { seed: 5, patients: 3 }).records[1]!;
    const text = [h1[0]!, other, h1[1]!].map(lineOf).join('\n');
    const out = importFiles([{ name: 'mixed.ndjson', text }], 'H1');
    expect(out.records.map((r) => r.patient_id)).toEqual([h1[0]!.patient_id, h1[1]!.patient_id]);
    expect(out.issues).toEqual([
      { file: 'mixed.ndjson', where: `line 2, patient ${other.patient_id}`, field: 'hospital_id', message: 'is "H2" but this file belongs to "H1"' },
    ]);
  });

  it('reads a one-record file, CRLF line ends and a byte-order mark', () => {
    const one = importFiles([{ name: 'one.ndjson', text: lineOf(h1[0]!) }], 'H1');
    expect(one.records).toEqual([h1[0]]);
    expect(one.issues).toEqual([]);
    const crlf = importFiles([{ name: 'win.ndjson', text: '\uFEFF' + h1.slice(0, 3).map(lineOf).join('\r\n') + '\r\n' }], 'H1');
    expect(crlf.records.map((r) => r.patient_id)).toEqual(h1.slice(0, 3).map((r) => r.patient_id));
    expect(crlf.issues).toEqual([]);
  });

  it.each([
    { name: 'notes.txt', text: 'patient one\npatient two\n', message: /neither a FHIR Bundle \(JSON\) nor NDJSON: none of its 2 line\(s\) is valid JSON/ },
    { name: 'empty.ndjson', text: '\n  \n', message: /^empty/ },
    { name: 'pretty.json', text: JSON.stringify(h1[0], null, 2), message: /a multi-line JSON object is neither a FHIR Bundle/ },
    { name: 'array.json', text: JSON.stringify(h1.slice(0, 2), null, 1), message: /a JSON array is neither/ },
  ])('gives one clear issue for a file that holds no records: $name', ({ name, text, message }) => {
    const out = importFiles([{ name, text }, { name: 'H1.ndjson', text: toNdjson(h1.slice(0, 2)) }], 'H1');
    expect(out.records).toHaveLength(2);
    expect(out.issues).toHaveLength(1);
    expect(out.issues[0]).toMatchObject({ file: name, where: 'file', field: '(file)' });
    expect(out.issues[0]!.message).toMatch(message);
    expect(out.files[0]).toEqual({ name, kind: 'ndjson', records: 0, issues: 1 });
  });

  it('keeps the first copy of a patient found in two files and names the later one', () => {
    const a = { name: 'a.ndjson', text: toNdjson(h1.slice(0, 10)) };
    const b = { name: 'b.ndjson', text: toNdjson(h1.slice(5, 15)) };
    const out = importFiles([a, b], 'H1');
    expect(out.records.map((r) => r.patient_id)).toEqual(h1.slice(0, 15).map((r) => r.patient_id));
    expect(out.issues).toHaveLength(5);
    expect(out.issues[0]).toEqual({
      file: 'b.ndjson',
      where: `line 1, patient ${h1[5]!.patient_id}`,
      field: 'patient_id',
      message: `patient ${h1[5]!.patient_id} was already imported from a.ndjson line 6; this copy was skipped`,
    });
    expect(out.issues.map((i) => i.where)).toEqual(h1.slice(5, 10).map((r, k) => `line ${k + 1}, patient ${r.patient_id}`));
    expect(out.files).toEqual([
      { name: 'a.ndjson', kind: 'ndjson', records: 10, issues: 0 },
      { name: 'b.ndjson', kind: 'ndjson', records: 5, issues: 5 },
    ]);
  });

  it('refuses a hospital id that is not one (a caller bug)', () => {
    expect(() => importFiles([], 'not a hospital')).toThrow(/not a valid hospital id/);
  });
});

describe('importFiles: FHIR bundles', () => {
  const nigel = { name: 'Nigel915_Reilly981_fc7fb56f-f384-f6ae-4266-ce3282cd2069.json', text: nigelText };
  const ward = { name: 'Ward668_Pagac496_0d8e1873-e236-522b-fddd-2501205c0662.json', text: wardText };
  const lucien = { name: 'Lucien408_Herzog843_9c67d64e-d36e-e626-16e9-75aa668b9835.json', text: lucienText };
  const bradly = { name: 'Bradly_Douglas_18468941-bdaf-42a0-8648-cba7cafc27ce.json', text: bradlyText };
  const support = [
    { name: 'hospitalInformation1648909404773.json', text: hospitalInfoText },
    { name: 'practitionerInformation1648909404773.json', text: practitionerInfoText },
  ];

  it('imports good bundles, recognises support bundles and names the entry and field of a broken Observation', () => {
    const broken = JSON.parse(nigel.text) as Json;
    // the first heart-rate Observation (LOINC 8867-4) with a value
    const i = broken.entry.findIndex(
      (e: Json) => e.resource.resourceType === 'Observation' && e.resource.valueQuantity && e.resource.code.coding.some((c: Json) => c.code === '8867-4'),
    );
    expect(i).toBeGreaterThan(0);
    broken.entry[i].resource.valueQuantity.value = 'seventy';
    const uuid = (broken.entry[i].fullUrl as string).replace('urn:uuid:', '');

    const files = [support[0]!, ward, { name: nigel.name, text: JSON.stringify(broken) }, lucien, bradly, support[1]!];
    const out = importFiles(files, 'H4');

    const expected = [ward, lucien, bradly].map((f) => fhirPatientId(JSON.parse(f.text) as Json));
    expect(out.records.map((r) => r.patient_id)).toEqual(expected);
    for (const r of out.records) {
      expect(r.hospital_id).toBe('H4');
      expect(r.metadata.source).toMatch(/^fhir:/);
    }
    expect(out.issues).toEqual([
      {
        file: nigel.name,
        where: `entry[${i}] (Observation/${uuid})`,
        field: 'valueQuantity.value',
        message: 'expected a number, got string "seventy"',
      },
    ]);
    expect(out.files).toEqual([
      { name: support[0]!.name, kind: 'fhir', records: 0, issues: 0 },
      { name: ward.name, kind: 'fhir', records: 1, issues: 0 },
      { name: nigel.name, kind: 'fhir', records: 0, issues: 1 },
      { name: lucien.name, kind: 'fhir', records: 1, issues: 0 },
      { name: bradly.name, kind: 'fhir', records: 1, issues: 0 },
      { name: support[1]!.name, kind: 'fhir', records: 0, issues: 0 },
    ]);
  });

  it('names the Patient field when the bundle cannot give a record', () => {
    const b = JSON.parse(bradly.text) as Json;
    const p = b.entry.findIndex((e: Json) => e.resource.resourceType === 'Patient');
    delete b.entry[p].resource.birthDate;
    const out = importFiles([{ name: 'nobirth.json', text: JSON.stringify(b) }], 'H4');
    expect(out.records).toEqual([]);
    expect(out.issues).toEqual([
      { file: 'nobirth.json', where: `entry[${p}] (Patient/${b.entry[p].resource.id})`, field: 'birthDate', message: 'missing' },
    ]);
  });

  it('reports a FHIR resource that is not a Bundle on the bundle itself', () => {
    const out = importFiles([{ name: 'patient.json', text: '{"resourceType":"Patient","id":"x"}' }], 'H4');
    expect(out.issues).toEqual([
      { file: 'patient.json', where: 'bundle', field: 'resourceType', message: 'expected "Bundle", got "Patient": not a FHIR Bundle' },
    ]);
  });

  it('keeps the first of two bundles of the same patient, and NDJSON and FHIR mix in one import', () => {
    const copy = { name: 'copy-of-ward.json', text: ward.text };
    const ndjson = { name: 'H4.ndjson', text: toNdjson(generateHospital('H4', { seed: 5, patients: 4, basedOn: 'H2' }).records) };
    const out = importFiles([ward, ndjson, copy], 'H4');
    const id = fhirPatientId(JSON.parse(ward.text) as Json);
    expect(out.records.map((r) => r.patient_id)).toEqual([id, 'P_H4_0001', 'P_H4_0002', 'P_H4_0003', 'P_H4_0004']);
    expect(out.issues).toEqual([
      { file: copy.name, where: `patient ${id}`, field: 'patient_id', message: `patient ${id} was already imported from ${ward.name}; this copy was skipped` },
    ]);
    expect(out.files.map((f) => [f.kind, f.records, f.issues])).toEqual([
      ['fhir', 1, 0],
      ['ndjson', 4, 0],
      ['fhir', 0, 1],
    ]);
  });
});

describe('importFiles / importFileStreams: FHIR Bulk Data files', () => {
  const bundleFiles = [
    { name: 'Nigel915_Reilly981_fc7fb56f-f384-f6ae-4266-ce3282cd2069.json', text: nigelText },
    { name: 'Ward668_Pagac496_0d8e1873-e236-522b-fddd-2501205c0662.json', text: wardText },
    { name: 'Lucien408_Herzog843_9c67d64e-d36e-e626-16e9-75aa668b9835.json', text: lucienText },
    { name: 'Bradly_Douglas_18468941-bdaf-42a0-8648-cba7cafc27ce.json', text: bradlyText },
  ];
  const supportFiles = [
    { name: 'hospitalInformation1648909404773.json', text: hospitalInfoText },
    { name: 'practitionerInformation1648909404773.json', text: practitionerInfoText },
  ];
  const bulkFiles = bundlesToBulk(
    bundleFiles.map((f) => JSON.parse(f.text) as unknown),
    { seed: 'importFiles.test', support: supportFiles.map((f) => JSON.parse(f.text) as unknown), maxLinesPerFile: 150 },
  ).map((f) => ({ name: f.name, text: f.lines.join('\n') + '\n' }));
  const withoutSource = (r: PatientRecord) => ({ ...r, metadata: { ...r.metadata, source: undefined } });
  const sorted = (rs: readonly PatientRecord[]) => [...rs].sort((a, b) => (a.patient_id < b.patient_id ? -1 : 1)).map(withoutSource);

  /** A File whose text cannot be read whole: importFileStreams must stream it. */
  const streamOnly = (f: { name: string; text: string }): ImportStreamFile => {
    const file = new File([f.text], f.name);
    return {
      name: f.name,
      stream: () => file.stream(),
      text: () => Promise.reject(new Error(`${f.name} was read whole`)),
    };
  };

  it('streams the Bulk files dropped together (any order) into the same records as the bundles', async () => {
    const fromBundles = importFiles([...supportFiles, ...bundleFiles], 'H4');
    expect(fromBundles.records).toHaveLength(4);
    expect(bulkFiles.length).toBeGreaterThan(10);
    expect(bulkFiles.at(-1)?.name).toBe('Patient.ndjson');

    const streamed = await importFileStreams(bulkFiles.map(streamOnly), 'H4');
    expect(streamed.issues).toEqual([]);
    expect(sorted(streamed.records)).toEqual(sorted(fromBundles.records));
    for (const r of streamed.records) expect(r.metadata.source).toMatch(/^fhir:Patient\.ndjson#Patient\//);
    expect(streamed.files.find((f) => f.name === 'Patient.ndjson')).toEqual({ name: 'Patient.ndjson', kind: 'fhir-bulk', records: 4, issues: 0 });
    expect(streamed.files.filter((f) => f.kind !== 'fhir-bulk')).toEqual([]);
    // the texts through importFiles give the same outcome
    expect(importFiles(bulkFiles, 'H4')).toEqual(streamed);
  });

  it('mixes Bulk files with a support bundle, a bundle and NDJSON records; the first copy of a patient is kept', async () => {
    const ndjson = { name: 'H4.ndjson', text: toNdjson(generateHospital('H4', { seed: 5, patients: 3, basedOn: 'H2' }).records) };
    const files = [supportFiles[0]!, bundleFiles[1]!, ...bulkFiles.filter((f) => !/^(Organization|Location|Practitioner)/.test(f.name)), ndjson];
    const streamed = await importFileStreams(
      files.map((f) => new File([f.text], f.name)),
      'H4',
    );
    // Ward's bundle comes first: his Bulk copy is the duplicate
    const ward = fhirPatientId(JSON.parse(wardText) as Json);
    const bulkPatients = bulkFiles
      .find((f) => f.name === 'Patient.ndjson')!
      .text.trimEnd()
      .split('\n')
      .map((l) => `FHIR_${((JSON.parse(l) as Json).id as string).replace(/-/g, '').slice(0, 12)}`);
    expect(bulkPatients).toHaveLength(4);
    expect(streamed.records.map((r) => r.patient_id)).toEqual([ward, ...bulkPatients.filter((id) => id !== ward), 'P_H4_0001', 'P_H4_0002', 'P_H4_0003']);
    expect(streamed.issues).toEqual([
      {
        file: 'Patient.ndjson',
        where: expect.stringMatching(new RegExp(`^line \\d+, patient ${ward}$`)),
        field: 'patient_id',
        message: `patient ${ward} was already imported from ${bundleFiles[1]!.name}; this copy was skipped`,
      },
    ]);
    expect(streamed).toEqual(importFiles(files, 'H4'));
  });

  it('names the file, line, resource and field of bad Bulk lines and keeps the rest', async () => {
    // a BMI (LOINC 39156-5: mapped, so its value is checked) in one of the Observation files
    const isBmi = (l: string) => l.includes('"code":"39156-5"') && /"valueQuantity":\{"value":[0-9.]+/.test(l);
    const obsFile = bulkFiles.find((f) => f.name.startsWith('Observation.') && f.text.split('\n').some(isBmi))!;
    const lines = obsFile.text.trimEnd().split('\n');
    const k = lines.findIndex(isBmi);
    const id = (JSON.parse(lines[k]!) as Json).id as string;
    lines[k] = lines[k]!.replace(/"valueQuantity":\{"value":[0-9.]+/, '"valueQuantity":{"value":"seventy"');
    lines.unshift('{"resourceType": "Observation", "subj');
    const broken = { name: obsFile.name, text: lines.join('\n') + '\n' };
    const out = await importFileStreams(bulkFiles.map((f) => (f === obsFile ? broken : f)).map((f) => new File([f.text], f.name)), 'H4');
    expect(out.issues).toEqual([
      { file: obsFile.name, where: 'line 1', field: '(line)', message: expect.stringMatching(/^not valid JSON/) },
      { file: obsFile.name, where: `line ${k + 2} (Observation/${id})`, field: 'valueQuantity.value', message: 'expected a number, got string "seventy": this resource was skipped' },
    ]);
    expect(out.records).toHaveLength(4);
    const good = await importFileStreams(bulkFiles.map((f) => new File([f.text], f.name)), 'H4');
    const bmiCount = (o: typeof out) => o.records.reduce((n, r) => n + (r.demographics.bmi === null ? 0 : 1), 0);
    expect(bmiCount(out)).toBeLessThanOrEqual(bmiCount(good));
  });

  it('a Bulk file that only names Patients and Observations badly gives line issues, not a refusal of the file', () => {
    const text = '{"resourceType":"Patient","id":"a"}\n{"resourceType":"Observation","id":"b"}\n';
    const out = importFiles([{ name: 'bulk.ndjson', text }, { name: 'H1.ndjson', text: toNdjson(h1.slice(0, 2)) }], 'H1');
    expect(out.records).toHaveLength(2);
    expect(out.issues).toEqual([
      { file: 'bulk.ndjson', where: 'line 1 (Patient/a)', field: 'birthDate', message: 'missing: this patient gives no record' },
      { file: 'bulk.ndjson', where: 'line 2 (Observation/b)', field: 'subject', message: 'missing: the resource names no Patient, so it belongs to no record' },
    ]);
    expect(out.files[0]).toEqual({ name: 'bulk.ndjson', kind: 'fhir-bulk', records: 0, issues: 2 });
  });
});
