/**
 * FHIR Bulk Data import, streamed: NDJSON files of FHIR R4 resources, one resource per line, as a
 * Bulk Data export writes them (FHIR Bulk Data Access IG, https://hl7.org/fhir/uv/bulkdata/: one
 * file per resource type, e.g. Patient.ndjson, Observation.000.ndjson, Observation.001.ndjson,
 * Organization.ndjson), become one patient record per Patient.
 *
 * Streaming. The caller feeds lines (addLine, or addLines with an iterable / async iterable of one
 * file's lines), files and lines in any order, and calls finish(). Each line is parsed and its
 * resource reduced at once into its patient's PatientAccumulator (fhir-patient.ts: the reduction a
 * Bundle's entries go through too), then dropped: memory grows with what the records keep (dates,
 * mapped values, codes), not with the size of the export. finish() assembles every record with the
 * same code as the Bundle import, so a patient gives the same record either way (but for
 * metadata.source: `fhir:<Patient file>#Patient/<id>`).
 *
 * Patients. A resource belongs to the patient its `subject` (else `patient`, else `beneficiary`)
 * names: `Patient/<id>`, an absolute `…/Patient/<id>` (with or without `/_history/<v>`), or
 * `urn:uuid:<id>`. Resources are kept by that id and matched with the Patient line at finish, so an
 * Observation file may come before Patient.ndjson. A resource that names no patient (Organization,
 * Location, Practitioner, Medication, …) is a reference target: reduced to its name / code display
 * under every key a reference can use (`Type/id`, `urn:uuid:id`, `Type?identifier=…`), like the
 * support bundles of the Bundle import (which may be given here too).
 *
 * Problems are issues, never exceptions, each naming the file, the line and the field: a line that
 * is not JSON or not a resource, a resource that fails validation (e.g. a valueQuantity.value that
 * is not a number: that resource is skipped), a record-type resource that names no Patient, a
 * Patient that appears twice or cannot be mapped, a patient whose Patient line never comes (every
 * resource of it skipped; reported at the first line that named it), a patient whose resources
 * cannot give a record (no Encounter: reported at its Patient line). The valid rest is kept.
 * Pure: runs in a browser tab, a Web Worker and Node (no fs, no DOM).
 */
import { FhirImportError, summarizeFhirImport, type FhirBundleReport, type FhirImportSummary } from './fhir';
import {
  FHIR_RECORD_TYPES,
  FhirFieldError,
  assemblePatient,
  indexReferenceTarget,
  isObj,
  newPatientAccumulator,
  obj,
  reduceResource,
  str,
  type FhirRefIndex,
  type Json,
  type PatientAccumulator,
} from './fhir-patient';
import { HOSPITAL_ID_PATTERN, type PatientRecord } from './schema';

export interface FhirBulkOptions {
  /** hospital_id of the records (e.g. H4). */
  readonly hospitalId: string;
  /** Support bundles (parsed or text: Organizations, Locations, Practitioners) that resolve references. */
  readonly support?: readonly unknown[];
}

export interface FhirBulkIssue {
  readonly file: string;
  /** 1-based line of the file. */
  readonly line: number;
  /** `Observation/abc` when the line's resource has a type and an id, else its type, else ''. */
  readonly resource: string;
  /** The field inside the resource (`valueQuantity.value`, `subject.reference`), `(line)` for a line that is no resource, `(patient)` for a patient that gives no record. */
  readonly field: string;
  readonly message: string;
}

export interface FhirBulkFileSummary {
  readonly name: string;
  /** Non-blank lines. */
  readonly lines: number;
  /** Resources per resourceType (lines that parsed as a resource). */
  readonly resources: Readonly<Record<string, number>>;
  /** Records whose Patient line is in this file. */
  readonly records: number;
  readonly issues: number;
}

/** Where a record's Patient line is. */
export interface FhirBulkOrigin {
  readonly file: string;
  readonly line: number;
  /** The Patient's id. */
  readonly id: string;
}

export interface FhirBulkResult {
  /** One per Patient that gives a record, in the order the Patient lines came. */
  readonly records: PatientRecord[];
  readonly reports: FhirBundleReport[];
  /** Per record (same order): where its Patient line is. */
  readonly origins: FhirBulkOrigin[];
  readonly issues: FhirBulkIssue[];
  readonly summary: FhirImportSummary;
  /** In the order each file's first line came. */
  readonly files: FhirBulkFileSummary[];
}

/** Where a line is: file, line, and the resource's label. */
interface LineAt {
  readonly file: string;
  readonly line: number;
  readonly resource: string;
}

interface BulkPatient {
  readonly acc: PatientAccumulator;
  /** The Patient line (set even when it could not be used). */
  patientAt: LineAt | undefined;
  /** The Patient line had an error (already an issue): no record, no "unknown patient" issue. */
  rejected: boolean;
  /** The first line that named this patient, and the field that did. */
  firstReference: (LineAt & { readonly field: string }) | undefined;
  /** Lines other than the Patient's that named it. */
  lines: number;
}

interface FileTally {
  lines: number;
  readonly resources: Map<string, number>;
}

const PATIENT_FIELDS = ['subject', 'patient', 'beneficiary'] as const;
const ABSOLUTE_PATIENT_REF = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/[^?#]*\/)?Patient\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[^/?#]+)?$/;

/** The Patient id a reference names (`Patient/<id>`, `…/Patient/<id>[/_history/v]`, `urn:uuid:<id>`), else undefined. */
export function patientIdOfReference(reference: string): string | undefined {
  if (reference.startsWith('urn:uuid:')) return reference.slice('urn:uuid:'.length) || undefined;
  return ABSOLUTE_PATIENT_REF.exec(reference)?.[1];
}

/** True when a line is one FHIR resource other than a Bundle (a Bulk Data line), not a fedcare record. */
export function isFhirResourceLine(line: string): boolean {
  if (!line.includes('"resourceType"')) return false;
  try {
    const v: unknown = JSON.parse(line);
    return isObj(v) && typeof v.resourceType === 'string' && v.resourceType !== 'Bundle';
  } catch {
    return false;
  }
}

function resourceLabel(r: Json): string {
  const type = str(r.resourceType) ?? '';
  const id = str(r.id);
  return type && id ? `${type}/${id}` : type;
}

/** The field naming the resource's patient, and its reference (undefined: the field has none). */
function patientField(r: Json): { field: string; reference: string | undefined } | undefined {
  for (const field of PATIENT_FIELDS) {
    const v = obj(r[field]);
    if (v) return { field, reference: str(v.reference) };
  }
  return undefined;
}

/**
 * An incremental Bulk Data import: addLine / addLines for every line of every file, then finish().
 * Throws only for caller bugs (an invalid hospital id, a line after finish) and for a support
 * input that is not a Bundle (a FhirImportError); every problem of the lines is an issue.
 */
export class FhirBulkImport {
  private readonly patients = new Map<string, BulkPatient>();
  /** Patient ids in the order their Patient lines came. */
  private readonly patientOrder: string[] = [];
  private readonly refs: FhirRefIndex = new Map();
  private readonly issues: FhirBulkIssue[] = [];
  private readonly files = new Map<string, FileTally>();
  private referenceTargets = 0;
  private finished = false;

  constructor(private readonly options: FhirBulkOptions) {
    if (!HOSPITAL_ID_PATTERN.test(options.hospitalId)) {
      throw new Error(`FhirBulkImport: hospital id "${options.hospitalId}" is not valid (letters, digits, _ or -, starting with a letter)`);
    }
    (options.support ?? []).forEach((s, k) => this.addSupport(s, `support[${k}]`));
  }

  /**
   * Adds a support bundle (parsed or text: Organizations, Locations, Practitioners), whose
   * resources resolve references like the export's own; any time before finish().
   */
  addSupport(bundle: unknown, name = 'support'): void {
    if (this.finished) throw new Error('FhirBulkImport: a support bundle came after finish()');
    let b = bundle;
    if (typeof b === 'string') {
      try {
        b = JSON.parse(b) as unknown;
      } catch (e) {
        throw new FhirImportError(name, '', `not valid JSON: ${(e as Error).message}`);
      }
    }
    if (!isObj(b) || b.resourceType !== 'Bundle' || !Array.isArray(b.entry)) throw new FhirImportError(name, '', 'not a FHIR Bundle with entries');
    for (const e of b.entry as unknown[]) {
      const r = isObj(e) ? e.resource : undefined;
      if (isObj(r)) indexReferenceTarget(this.refs, r, str((e as Json).fullUrl));
    }
    this.referenceTargets++;
  }

  /** Adds one line of a file (lines numbered from 1). Blank lines are skipped. */
  addLine(file: string, line: number, text: string): void {
    if (this.finished) throw new Error('FhirBulkImport: a line came after finish()');
    const tally = this.tally(file);
    const t = line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    if (t.trim() === '') return;
    tally.lines++;
    const r = this.parseLine(file, line, t);
    if (!r) return;
    const type = r.resourceType as string;
    tally.resources.set(type, (tally.resources.get(type) ?? 0) + 1);
    if (type === 'Patient') this.addPatient(r, file, line);
    else this.addResource(r, file, line);
  }

  /** Adds every line of one file, numbered from 1; returns how many lines there were. */
  async addLines(file: string, lines: AsyncIterable<string> | Iterable<string>): Promise<number> {
    let n = 0;
    for await (const text of lines) this.addLine(file, ++n, text);
    return n;
  }

  /** Assembles one record per Patient; the importer takes no lines after. */
  finish(): FhirBulkResult {
    if (this.finished) throw new Error('FhirBulkImport: finish() was called already');
    this.finished = true;
    const records: PatientRecord[] = [];
    const reports: FhirBundleReport[] = [];
    const origins: FhirBulkOrigin[] = [];
    const recordsPerFile = new Map<string, number>();
    const byPatientId = new Map<string, string>();
    for (const id of this.patientOrder) {
      const bp = this.patients.get(id) as BulkPatient;
      this.patients.delete(id);
      const at = bp.patientAt as LineAt;
      if (bp.rejected) continue;
      const result = this.assemble(id, bp, at);
      if (!result) continue;
      const first = byPatientId.get(result.record.patient_id);
      if (first !== undefined) {
        this.issue(at, 'id', `gives patient_id ${result.record.patient_id}, as ${first} did: this patient was skipped`);
        continue;
      }
      byPatientId.set(result.record.patient_id, `Patient/${id}`);
      records.push(result.record);
      reports.push(result.report);
      origins.push({ file: at.file, line: at.line, id });
      recordsPerFile.set(at.file, (recordsPerFile.get(at.file) ?? 0) + 1);
    }
    this.reportUnknownPatients();
    const issues = this.sortedIssues();
    return { records, reports, origins, issues, summary: summarizeFhirImport(records, reports), files: this.fileSummaries(recordsPerFile, issues) };
  }

  private tally(file: string): FileTally {
    let t = this.files.get(file);
    if (!t) {
      t = { lines: 0, resources: new Map() };
      this.files.set(file, t);
    }
    return t;
  }

  private issue(at: LineAt, field: string, message: string): void {
    this.issues.push({ file: at.file, line: at.line, resource: at.resource, field, message });
  }

  /** The line's resource, or undefined (an issue) when the line is not one. */
  private parseLine(file: string, line: number, text: string): Json | undefined {
    const at = { file, line, resource: '' };
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      this.issue(at, '(line)', `not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
      return undefined;
    }
    if (!isObj(v)) {
      this.issue(at, '(line)', `not a FHIR resource (got ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v})`);
      return undefined;
    }
    const type = str(v.resourceType);
    if (!type) {
      this.issue(at, 'resourceType', 'missing: not a FHIR resource (a fedcare record belongs in a file of its own)');
      return undefined;
    }
    if (type === 'Bundle') {
      this.issue({ ...at, resource: resourceLabel(v) }, 'resourceType', 'a Bundle in a Bulk Data file: import a patient Bundle as a .json file of its own');
      return undefined;
    }
    return v;
  }

  private patient(id: string): BulkPatient {
    let bp = this.patients.get(id);
    if (!bp) {
      bp = { acc: newPatientAccumulator(), patientAt: undefined, rejected: false, firstReference: undefined, lines: 0 };
      this.patients.set(id, bp);
    }
    return bp;
  }

  private addPatient(r: Json, file: string, line: number): void {
    const at = { file, line, resource: resourceLabel(r) };
    const id = str(r.id);
    if (!id) {
      this.issue(at, 'id', 'missing: other resources name a Patient by its id');
      return;
    }
    const bp = this.patient(id);
    if (bp.patientAt) {
      this.issue(at, 'id', `Patient/${id} already came at ${bp.patientAt.file} line ${bp.patientAt.line}: this copy was skipped`);
      return;
    }
    bp.patientAt = at;
    this.patientOrder.push(id);
    try {
      reduceResource(bp.acc, r);
    } catch (e) {
      if (!(e instanceof FhirFieldError)) throw e;
      bp.rejected = true;
      this.issue(at, e.field || '(resource)', `${e.detail}: this patient gives no record`);
    }
  }

  private addResource(r: Json, file: string, line: number): void {
    const type = r.resourceType as string;
    const named = patientField(r);
    const isRecordType = FHIR_RECORD_TYPES.has(type);
    if (!named) {
      if (isRecordType) {
        this.issue({ file, line, resource: resourceLabel(r) }, 'subject', 'missing: the resource names no Patient, so it belongs to no record');
        return;
      }
      const id = str(r.id);
      indexReferenceTarget(this.refs, r, id ? `urn:uuid:${id}` : undefined);
      this.referenceTargets++;
      return;
    }
    const field = `${named.field}.reference`;
    const id = named.reference === undefined ? undefined : patientIdOfReference(named.reference);
    if (id === undefined) {
      if (isRecordType) {
        const what = named.reference === undefined ? 'missing' : `${JSON.stringify(named.reference)} is not a Patient reference (Patient/<id> or urn:uuid:<id>)`;
        this.issue({ file, line, resource: resourceLabel(r) }, field, `${what}: the resource belongs to no record`);
      }
      return;
    }
    const bp = this.patient(id);
    bp.lines++;
    bp.firstReference ??= { file, line, resource: resourceLabel(r), field };
    try {
      reduceResource(bp.acc, r);
    } catch (e) {
      if (!(e instanceof FhirFieldError)) throw e;
      this.issue({ file, line, resource: resourceLabel(r) }, e.field || '(resource)', `${e.detail}: this resource was skipped`);
    }
  }

  private assemble(id: string, bp: BulkPatient, at: LineAt): ReturnType<typeof assemblePatient> | undefined {
    try {
      return assemblePatient(bp.acc, this.refs, {
        hospitalId: this.options.hospitalId,
        source: `${at.file}#Patient/${id}`,
        supportGiven: this.referenceTargets > 0,
      });
    } catch (e) {
      if (!(e instanceof FhirFieldError)) throw e;
      this.issue(at, e.field || '(patient)', `${e.detail}: this patient gives no record`);
      return undefined;
    }
  }

  /** One issue per patient that resources named but no Patient line gave, at the first line that named it. */
  private reportUnknownPatients(): void {
    for (const [id, bp] of this.patients) {
      if (bp.patientAt || !bp.firstReference) continue;
      const { field, ...at } = bp.firstReference;
      this.issue(at, field, `Patient/${id} is not in the export (no Patient line has this id): its ${bp.lines} resource(s) were skipped`);
    }
    this.patients.clear();
  }

  /** By file (in the order files came), then line. */
  private sortedIssues(): FhirBulkIssue[] {
    const order = new Map([...this.files.keys()].map((f, k) => [f, k]));
    return [...this.issues].sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line);
  }

  private fileSummaries(records: ReadonlyMap<string, number>, issues: readonly FhirBulkIssue[]): FhirBulkFileSummary[] {
    return [...this.files].map(([name, t]) => ({
      name,
      lines: t.lines,
      resources: Object.fromEntries(t.resources),
      records: records.get(name) ?? 0,
      issues: issues.filter((i) => i.file === name).length,
    }));
  }
}

/**
 * Splits text chunks (a decoded byte stream, in any chunk sizes) into lines without their line
 * ends (`\n`, `\r\n`). A line is held only until its end arrives.
 */
export async function* ndjsonLines(chunks: AsyncIterable<string> | Iterable<string>): AsyncGenerator<string> {
  let pending: string[] = [];
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', start)) {
      pending.push(chunk.slice(start, nl));
      const line = pending.join('');
      pending = [];
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.slice(start));
  }
  const last = pending.join('');
  if (last !== '') yield last.endsWith('\r') ? last.slice(0, -1) : last;
}

/** Imports Bulk Data files given as lines (iterables or async iterables, one file after the other). */
export async function importFhirBulk(
  files: Iterable<{ readonly name: string; readonly lines: AsyncIterable<string> | Iterable<string> }>,
  options: FhirBulkOptions,
): Promise<FhirBulkResult> {
  const bulk = new FhirBulkImport(options);
  for (const f of files) await bulk.addLines(f.name, f.lines);
  return bulk.finish();
}
