/**
 * FHIR R4 import: one patient Bundle (Patient, Encounter, Observation, Condition,
 * MedicationRequest/MedicationStatement, Procedure) becomes one patient record of seed spec 1.1,
 * validated with parseRecord, plus a report of what the bundle held and what was made of it.
 * Pure: runs in a browser tab, a Web Worker and Node (no fs, no DOM).
 *
 * A bundle is "the entries of one patient": each entry is reduced into one PatientAccumulator and
 * the record is assembled from it, by the same code the Bulk Data import (fhir-bulk.ts) uses for
 * its NDJSON lines. The mapping rules (dates, index stay and outcomes, time series, LOINC codes and
 * units, demographics, conditions, medications, procedures) are documented in fhir-patient.ts.
 */
import { HOSPITAL_ID_PATTERN, type PatientRecord } from './schema';
import type { LabName, MarkerName, VitalName } from './vocabulary';
import {
  COUNTED,
  FhirFieldError,
  assemblePatient,
  emptyCounts,
  indexReferenceTarget,
  isObj,
  newPatientAccumulator,
  reduceResource,
  str,
  type FhirRefIndex,
  type Json,
} from './fhir-patient';

export {
  FHIR_FOLLOW_UP_DAYS,
  FHIR_LOINC_CODES,
  FHIR_MAX_PROCEDURE_CODES,
  LOINC_SYSTEM,
  ingredientName,
} from './fhir-patient';

// ---------------------------------------------------------------------------------------------
// Public types

export type FhirSeriesChannel = VitalName | LabName | MarkerName;
/** Channels counted in a report: the series channels, BMI, and NT-proBNP (counted, not mapped). */
export type FhirCountedChannel = FhirSeriesChannel | 'bmi' | 'nt_probnp';

export interface FhirImportOptions {
  /** hospital_id of the records (e.g. H4). */
  readonly hospitalId: string;
  /** The bundle's name (file name), used in errors, the report and metadata.source (`fhir:<name>`). */
  readonly source?: string;
  /** Parsed support bundles (Organizations, Locations, Practitioners) for conditional references. */
  readonly support?: readonly unknown[];
}

export interface FhirSeriesWindow {
  /** First and last date of the window (inclusive). */
  readonly start: string;
  readonly end: string;
  /** 'index': ends at the index discharge; 'before' / 'after': fell back to the latest data. */
  readonly kind: 'index' | 'before' | 'after';
}

export interface FhirBundleReport {
  readonly source: string;
  readonly patientId: string;
  readonly modalities: {
    readonly demographics: boolean;
    readonly vitals: boolean;
    readonly labs: boolean;
    readonly biology: boolean;
    readonly omics: false;
    readonly outcomes: 'derived' | 'unknown';
  };
  /** Observations per channel in the whole bundle (one Observation counts once per channel). */
  readonly counts: Record<FhirCountedChannel, number>;
  /** Timestamps (distinct dates) that went into the record per series. */
  readonly series: { readonly vitals: number; readonly labs: number; readonly biology: number };
  readonly windows: {
    readonly vitals: FhirSeriesWindow | null;
    readonly labs: FhirSeriesWindow | null;
    readonly biology: FhirSeriesWindow | null;
  };
  /** The index encounter the record describes. */
  readonly index: {
    readonly class: string;
    readonly admission: string;
    readonly discharge: string;
    /** Days of record after the discharge (to the bundle's last date). */
    readonly followUpDays: number;
    /** The serviceProvider's name (resolved through the bundle or the support bundles), else null. */
    readonly organization: string | null;
  };
  /** Date of death (Patient.deceasedDateTime), else null. */
  readonly deceased: string | null;
  /** Condition resources: mapped to a comorbidity or not (whole bundle, entered-in-error excluded). */
  readonly conditions: { readonly mapped: number; readonly unmapped: number };
  /** MedicationRequest + MedicationStatement resources. */
  readonly medications: number;
  readonly encounters: {
    readonly total: number;
    readonly inpatient: number;
    readonly emergency: number;
    /** Consecutive inpatient stays where the next starts 1–30 days after the previous discharge. */
    readonly readmissionPairs: number;
  };
  /** Conditional references (`Organization?identifier=…`) and how many were resolved. */
  readonly references: { readonly conditional: number; readonly resolved: number };
  /** Values dropped: unknown unit, no numeric value, outside the plausible range. */
  readonly droppedValues: number;
  readonly warnings: string[];
}

export interface FhirImportResult {
  readonly record: PatientRecord;
  readonly report: FhirBundleReport;
}

export interface FhirImportSummary {
  readonly bundles: number;
  readonly records: number;
  readonly modalities: {
    readonly demographics: number;
    readonly vitals: number;
    readonly labs: number;
    readonly biology: number;
    readonly omics: number;
  };
  /** Records with derived outcomes (usable for supervised training) and with unknown outcomes. */
  readonly labelled: number;
  readonly unlabelled: number;
  readonly readmissions: number;
  readonly adverseEvents: number;
  readonly counts: Record<FhirCountedChannel, number>;
  readonly encounters: { readonly total: number; readonly inpatient: number; readonly readmissionPairs: number };
  readonly droppedValues: number;
}

export interface FhirBundleFailure {
  readonly name: string;
  readonly error: string;
}

export interface FhirImportBatch {
  readonly records: PatientRecord[];
  readonly reports: FhirBundleReport[];
  readonly summary: FhirImportSummary;
  /** Bundles that failed (only non-empty with keepGoing; otherwise importFhirBundles throws). */
  readonly failures: FhirBundleFailure[];
}

/** A bundle that cannot be imported: names the bundle, where in it, and what is wrong. */
export class FhirImportError extends Error {
  constructor(
    readonly bundle: string,
    readonly where: string,
    readonly detail: string,
  ) {
    super(`bundle ${bundle}: ${where ? `${where}: ` : ''}${detail}`);
    this.name = 'FhirImportError';
  }
}

/** Several bundles failed: every failure is listed. */
export class FhirBatchError extends Error {
  constructor(readonly failures: readonly FhirBundleFailure[]) {
    super(
      [`${failures.length} FHIR bundle(s) could not be imported:`, ...failures.map((f) => `  - ${f.error}`)].join('\n'),
    );
    this.name = 'FhirBatchError';
  }
}

// ---------------------------------------------------------------------------------------------
// One bundle

function parseInput(input: unknown, name: string, where = ''): unknown {
  if (typeof input !== 'string') return input;
  try {
    return JSON.parse(input) as unknown;
  } catch (e) {
    throw new FhirImportError(name, where, `not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
}

/** The support types: a bundle of only these is a support bundle, not a patient's. */
const SUPPORT_TYPES = ['Organization', 'Location', 'Practitioner', 'PractitionerRole'];

interface BundleEntry {
  readonly index: number;
  readonly fullUrl: string | undefined;
  readonly resource: Json;
  readonly type: string;
}

type Fail = (where: string, detail: string) => never;

/** The bundle's entries, each an object with a resource that has a resourceType. */
function bundleEntries(input: unknown, name: string, fail: Fail): BundleEntry[] {
  const b = parseInput(input, name);
  if (!isObj(b)) fail('', `not a FHIR Bundle (got ${Array.isArray(b) ? 'an array' : b === null ? 'null' : typeof b})`);
  const root = b as Json;
  if (root.resourceType !== 'Bundle') {
    fail('resourceType', `expected "Bundle", got ${JSON.stringify(root.resourceType ?? null)}: not a FHIR Bundle`);
  }
  if (!Array.isArray(root.entry)) fail('entry', root.entry === undefined ? 'missing (an empty Bundle)' : 'expected an array');
  return (root.entry as unknown[]).map((e, index) => {
    if (!isObj(e)) fail(`entry[${index}]`, 'expected an object');
    const resource = (e as Json).resource;
    if (!isObj(resource)) fail(`entry[${index}].resource`, 'missing');
    const type = str((resource as Json).resourceType);
    if (!type) fail(`entry[${index}].resource.resourceType`, 'missing');
    return { index, fullUrl: str((e as Json).fullUrl), resource: resource as Json, type: type as string };
  });
}

/** The bundle's one Patient entry. */
function patientEntry(entries: readonly BundleEntry[], fail: Fail): BundleEntry {
  const patients = entries.filter((e) => e.type === 'Patient');
  if (patients.length === 0) {
    const onlySupport = entries.length > 0 && entries.every((e) => SUPPORT_TYPES.includes(e.type));
    fail(
      '',
      onlySupport
        ? 'no Patient resource (it holds only Organizations/Locations/Practitioners: a support bundle, pass it as support)'
        : 'no Patient resource',
    );
  }
  if (patients.length > 1) fail('', `${patients.length} Patient resources: a bundle must hold exactly one patient`);
  return patients[0] as BundleEntry;
}

/** Reference targets: the bundle's own entries, then the support bundles' (which win on the same key). */
function bundleReferences(entries: readonly BundleEntry[], support: readonly unknown[], name: string, fail: Fail): FhirRefIndex {
  const refs: FhirRefIndex = new Map();
  for (const e of entries) indexReferenceTarget(refs, e.resource, e.fullUrl);
  support.forEach((s, k) => {
    const sb = parseInput(s, name, `support[${k}]`);
    if (!isObj(sb) || sb.resourceType !== 'Bundle' || !Array.isArray(sb.entry)) fail(`support[${k}]`, 'not a FHIR Bundle with entries');
    for (const e of (sb as Json).entry as unknown[]) {
      const r = isObj(e) ? e.resource : undefined;
      if (isObj(r)) indexReferenceTarget(refs, r, str((e as Json).fullUrl));
    }
  });
  return refs;
}

/** Imports one FHIR R4 patient Bundle (parsed JSON or its text) into one validated patient record. */
export function importFhirBundle(bundle: unknown, options: FhirImportOptions): FhirImportResult {
  const name = options.source ?? 'bundle';
  const fail: Fail = (where, detail) => {
    throw new FhirImportError(name, where, detail);
  };
  if (!HOSPITAL_ID_PATTERN.test(options.hospitalId)) {
    fail('', `hospital id "${options.hospitalId}" is not valid (letters, digits, _ or -, starting with a letter)`);
  }
  const entries = bundleEntries(bundle, name, fail);
  const refs = bundleReferences(entries, options.support ?? [], name, fail);
  const patient = patientEntry(entries, fail);
  const acc = newPatientAccumulator();
  // The Patient first, so that its errors come first; then every entry in order.
  for (const e of [patient, ...entries.filter((x) => x !== patient)]) {
    try {
      reduceResource(acc, e.resource, e.fullUrl);
    } catch (err) {
      if (!(err instanceof FhirFieldError)) throw err;
      fail(`entry[${e.index}].resource${err.field ? `.${err.field}` : ''}`, err.detail);
    }
  }
  try {
    return assemblePatient(acc, refs, { hospitalId: options.hospitalId, source: name, supportGiven: (options.support?.length ?? 0) > 0 });
  } catch (err) {
    if (!(err instanceof FhirFieldError)) throw err;
    return fail(err.onPatient ? `entry[${patient.index}].resource${err.field ? `.${err.field}` : ''}` : err.field, err.detail);
  }
}

export interface FhirBatchOptions extends Omit<FhirImportOptions, 'source'> {
  /** Return failed bundles in `failures` instead of throwing a FhirBatchError. */
  readonly keepGoing?: boolean;
}

/**
 * Imports several bundles (`json`: parsed JSON or its text; `list` may be a lazy iterable, so a
 * caller can read one file at a time). Every bundle is tried; unless
 * keepGoing, any failure (including two bundles of the same patient) throws a FhirBatchError that
 * lists them all, so a caller never writes a partial import by accident.
 */
export function importFhirBundles(
  list: Iterable<{ readonly name: string; readonly json: unknown }>,
  options: FhirBatchOptions,
): FhirImportBatch {
  // Support bundles given as text are parsed once, not once per bundle.
  const support = (options.support ?? []).map((s, k) => parseInput(s, 'support', `support[${k}]`));
  const records: PatientRecord[] = [];
  const reports: FhirBundleReport[] = [];
  const failures: FhirBundleFailure[] = [];
  const seen = new Map<string, string>();
  for (const { name, json } of list) {
    try {
      const { record, report } = importFhirBundle(json, { hospitalId: options.hospitalId, support, source: name });
      const first = seen.get(record.patient_id);
      if (first !== undefined) {
        throw new FhirImportError(name, '', `patient ${record.patient_id} was already imported from bundle ${first}`);
      }
      seen.set(record.patient_id, name);
      records.push(record);
      reports.push(report);
    } catch (e) {
      failures.push({ name, error: e instanceof FhirImportError ? e.message : `bundle ${name}: ${(e as Error).message}` });
    }
  }
  if (failures.length > 0 && !options.keepGoing) throw new FhirBatchError(failures);
  return { records, reports, summary: summarizeFhirImport(records, reports), failures };
}

/** Totals over imported bundles: modality counts, labelled / unlabelled, observation counts. */
export function summarizeFhirImport(records: readonly PatientRecord[], reports: readonly FhirBundleReport[]): FhirImportSummary {
  const counts = emptyCounts();
  for (const r of reports) for (const c of COUNTED) counts[c] += r.counts[c];
  const labelled = reports.filter((r) => r.modalities.outcomes === 'derived').length;
  return {
    bundles: reports.length,
    records: records.length,
    modalities: {
      demographics: reports.filter((r) => r.modalities.demographics).length,
      vitals: reports.filter((r) => r.modalities.vitals).length,
      labs: reports.filter((r) => r.modalities.labs).length,
      biology: reports.filter((r) => r.modalities.biology).length,
      omics: 0,
    },
    labelled,
    unlabelled: reports.length - labelled,
    readmissions: records.filter((r) => r.outcomes.readmission_30d === 1).length,
    adverseEvents: records.filter((r) => r.outcomes.adverse_event === 1).length,
    counts,
    encounters: {
      total: reports.reduce((s, r) => s + r.encounters.total, 0),
      inpatient: reports.reduce((s, r) => s + r.encounters.inpatient, 0),
      readmissionPairs: reports.reduce((s, r) => s + r.encounters.readmissionPairs, 0),
    },
    droppedValues: reports.reduce((s, r) => s + r.droppedValues, 0),
  };
}
