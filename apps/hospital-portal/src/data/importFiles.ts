/**
 * Turning the files a hospital drops into the portal into patient records. Pure: no DOM, no
 * node:* — it runs in the tab, in a Web Worker and under vitest alike.
 *
 * Lenient where the CLI is strict: every valid record is kept and every problem becomes an
 * ImportIssue that names the file, where in it (line / patient / FHIR entry) and the field.
 *
 * Kind by content, not by name: text that parses as one JSON object with `resourceType` is a FHIR
 * R4 Bundle (one patient per file); anything else is NDJSON, one record per line. A Bundle that
 * holds only Organizations / Locations / Practitioners (Synthea's hospitalInformation* and
 * practitionerInformation* files) is a support bundle: it is passed to every patient bundle of the
 * same import to resolve conditional references, as `fedcare import-fhir` does with its support/
 * folder, and yields no records.
 */
import {
  FhirImportError,
  HOSPITAL_ID_PATTERN,
  importFhirBundle,
  parseNdjson,
  type NdjsonResult,
  type PatientRecord,
} from '@fedcare/shared/data';

export interface ImportInputFile {
  readonly name: string;
  readonly text: string;
}

export interface ImportIssue {
  readonly file: string;
  /** `line 7`, `line 7, patient P_H1_0003`, `patient FHIR_…`, `entry[12] (Observation/abc)`, `bundle`, `file`. */
  readonly where: string;
  /** Dotted field path (`lab_results.glucose[0]`, `valueQuantity.value`), or `(record)`, `(bundle)`, `(file)`. */
  readonly field: string;
  readonly message: string;
}

export type ImportFileKind = 'ndjson' | 'fhir';

export interface ImportFileSummary {
  readonly name: string;
  readonly kind: ImportFileKind;
  /** Records kept from this file (0 for a support bundle). */
  readonly records: number;
  readonly issues: number;
}

export interface ImportOutcome {
  readonly records: PatientRecord[];
  readonly issues: ImportIssue[];
  readonly files: ImportFileSummary[];
}

/** Resource types of a Synthea support bundle (the same list fhir.ts uses to recognise one). */
const SUPPORT_TYPES = new Set(['Organization', 'Location', 'Practitioner', 'PractitionerRole']);

type Json = Record<string, unknown>;

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

type Classified =
  | { readonly kind: 'ndjson'; readonly name: string; readonly text: string }
  | { readonly kind: 'fhir'; readonly name: string; readonly json: Json; readonly support: boolean }
  | { readonly kind: 'other-json'; readonly name: string; readonly what: string };

function classify(file: ImportInputFile): Classified {
  const text = file.text.charCodeAt(0) === 0xfeff ? file.text.slice(1) : file.text;
  const trimmed = text.trim();
  // NDJSON with two or more records fails JSON.parse at the second line, so this is cheap.
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let json: unknown;
    let parsed = false;
    try {
      json = JSON.parse(trimmed);
      parsed = true;
    } catch {
      // not one JSON document: NDJSON (or garbage, which parseNdjson reports)
    }
    if (parsed) {
      if (isObj(json) && 'resourceType' in json) return { kind: 'fhir', name: file.name, json, support: isSupportBundle(json) };
      // One JSON record on one line is a one-line NDJSON file; a multi-line document is not NDJSON.
      if (trimmed.includes('\n')) {
        return { kind: 'other-json', name: file.name, what: Array.isArray(json) ? 'a JSON array' : 'a multi-line JSON object' };
      }
    }
  }
  return { kind: 'ndjson', name: file.name, text };
}

function isSupportBundle(b: Json): boolean {
  if (b.resourceType !== 'Bundle' || !Array.isArray(b.entry) || b.entry.length === 0) return false;
  return b.entry.every((e) => {
    const r = isObj(e) ? e.resource : undefined;
    return isObj(r) && typeof r.resourceType === 'string' && SUPPORT_TYPES.has(r.resourceType);
  });
}

/**
 * `entry[5] (Observation/abc)`: the entry index and, when the bundle has them, the resource type
 * and id; Synthea transaction bundles often have no resource id, only a `urn:uuid:` fullUrl.
 */
function entryLabel(bundle: Json, index: number): string {
  const entry = Array.isArray(bundle.entry) ? (bundle.entry[index] as unknown) : undefined;
  const r = isObj(entry) ? entry.resource : undefined;
  if (!isObj(entry) || !isObj(r) || typeof r.resourceType !== 'string') return `entry[${index}]`;
  const fullUrl = typeof entry.fullUrl === 'string' ? entry.fullUrl : '';
  const id = typeof r.id === 'string' && r.id !== '' ? r.id : fullUrl.startsWith('urn:uuid:') ? fullUrl.slice('urn:uuid:'.length) : '';
  return `entry[${index}] (${r.resourceType}${id ? `/${id}` : ''})`;
}

/**
 * Splits a FhirImportError's `where` (`entry[5].resource.component[1].valueQuantity.value`,
 * `entry[3]`, `resourceType`, or '' for the whole bundle) into the entry and the field inside it.
 */
export function splitFhirWhere(bundle: Json, where: string): { where: string; field: string } {
  const m = /^entry\[(\d+)\](.*)$/.exec(where);
  if (m) {
    const rest = m[2] as string;
    let field: string;
    if (rest === '') field = '(entry)';
    else if (rest.startsWith('.resource.')) field = rest.slice('.resource.'.length);
    else field = rest.slice(1); // '.resource' (missing) or anything else fhir.ts may add
    return { where: entryLabel(bundle, Number(m[1])), field };
  }
  return { where: 'bundle', field: where === '' ? '(bundle)' : where };
}

function ndjsonWhere(line: number | undefined, patientId: string | undefined): string {
  const parts = [line !== undefined ? `line ${line}` : undefined, patientId !== undefined ? `patient ${patientId}` : undefined];
  return parts.filter((p) => p !== undefined).join(', ') || 'file';
}

/**
 * Lines of the records parseNdjson kept, in order. It numbers lines as `split('\n')` index + 1,
 * skips blank ones, and every line it does not keep carries at least one issue with that line;
 * if the counts disagree (parseNdjson changed), lines are left unknown rather than guessed.
 */
function keptLines(text: string, res: NdjsonResult): (number | undefined)[] {
  const bad = new Set(res.issues.map((i) => i.line));
  const lines: number[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() !== '' && !bad.has(i + 1)) lines.push(i + 1);
  });
  return lines.length === res.records.length ? lines : res.records.map(() => undefined);
}

/** The first line's JSON has a resourceType: FHIR bulk-data NDJSON (one resource per line). */
function looksLikeFhirNdjson(text: string): boolean {
  const first = text.split('\n').find((l) => l.trim() !== '');
  if (first === undefined) return false;
  try {
    const v: unknown = JSON.parse(first);
    return isObj(v) && 'resourceType' in v;
  } catch {
    return false;
  }
}

/**
 * Imports NDJSON files and FHIR R4 Bundles for `hospitalId`. Valid records are kept; every problem
 * is an issue: a bad line or field (with line and field), a record of another hospital, a FHIR
 * bundle that cannot be mapped (with its entry and field), a patient already imported from an
 * earlier file (the first is kept), a file that is neither FHIR JSON nor NDJSON.
 * Throws only when hospitalId itself is not a valid hospital id (a caller bug, not a data problem).
 */
export function importFiles(files: readonly ImportInputFile[], hospitalId: string): ImportOutcome {
  if (!HOSPITAL_ID_PATTERN.test(hospitalId)) throw new Error(`importFiles: "${hospitalId}" is not a valid hospital id`);
  const classified = files.map(classify);
  const support = classified.flatMap((c) => (c.kind === 'fhir' && c.support ? [c.json] : []));

  const records: PatientRecord[] = [];
  const issues: ImportIssue[] = [];
  const summaries: ImportFileSummary[] = [];
  /** patient_id → where it was first kept (`file line 7` / `file`). */
  const seen = new Map<string, string>();

  for (const c of classified) {
    const fileIssues: ImportIssue[] = [];
    const issue = (where: string, field: string, message: string) => fileIssues.push({ file: c.name, where, field, message });
    let kept = 0;
    /** Keeps the record unless an earlier file (or bundle) already gave this patient. */
    const keep = (r: PatientRecord, where: string, origin: string) => {
      const first = seen.get(r.patient_id);
      if (first !== undefined) {
        issue(where, 'patient_id', `patient ${r.patient_id} was already imported from ${first}; this copy was skipped`);
        return;
      }
      seen.set(r.patient_id, origin);
      records.push(r);
      kept++;
    };

    if (c.kind === 'other-json') {
      issue('file', '(file)', `${c.what} is neither a FHIR Bundle (no resourceType) nor NDJSON (one JSON record per line)`);
    } else if (c.kind === 'fhir') {
      if (!c.support) {
        try {
          const { record } = importFhirBundle(c.json, { hospitalId, source: c.name, support });
          keep(record, `patient ${record.patient_id}`, c.name);
        } catch (e) {
          if (e instanceof FhirImportError) {
            const at = splitFhirWhere(c.json, e.where);
            issue(at.where, at.field, e.detail);
          } else {
            issue('bundle', '(bundle)', `cannot be imported: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    } else {
      const res = parseNdjson(c.text, { expectedHospital: hospitalId });
      const unparseable = res.issues.filter((i) => i.field === '(record)' && i.message.startsWith('not valid JSON'));
      if (res.lines === 0) {
        issue('file', '(file)', 'empty: no records');
      } else if (res.records.length === 0 && looksLikeFhirNdjson(c.text)) {
        issue('file', '(file)', 'FHIR NDJSON (one resource per line) is not supported: import one FHIR Bundle per patient, or fedcare NDJSON records');
      } else if (unparseable.length === res.lines) {
        const first = unparseable[0];
        issue(
          'file',
          '(file)',
          `neither a FHIR Bundle (JSON) nor NDJSON: none of its ${res.lines} line(s) is valid JSON` +
            (first ? ` (line ${first.line}: ${first.message})` : ''),
        );
      } else {
        for (const i of res.issues) issue(ndjsonWhere(i.line, i.patientId), i.field, i.message);
        const lines = keptLines(c.text, res);
        res.records.forEach((r, k) => {
          const line = lines[k];
          keep(r, ndjsonWhere(line, r.patient_id), line !== undefined ? `${c.name} line ${line}` : c.name);
        });
      }
    }
    issues.push(...fileIssues);
    summaries.push({ name: c.name, kind: c.kind === 'fhir' ? 'fhir' : 'ndjson', records: kept, issues: fileIssues.length });
  }
  return { records, issues, files: summaries };
}
