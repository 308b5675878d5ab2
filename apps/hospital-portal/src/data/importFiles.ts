/**
 * Turning the files a hospital drops into the portal into patient records. Pure: no DOM, no
 * node:* — it runs in the tab, in a Web Worker and under vitest alike.
 *
 * Lenient where the CLI is strict: every valid record is kept and every problem becomes an
 * ImportIssue that names the file, where in it (line / patient / FHIR entry) and the field.
 *
 * Kind by content, not by name: text that parses as one JSON object with `resourceType` is a FHIR
 * R4 Bundle (one patient per file); NDJSON whose first line is a FHIR resource ("resourceType") is
 * a FHIR Bulk Data file (one resource per line: Patient.ndjson, Observation.000.ndjson, …; a file
 * of one such line only when named *.ndjson / *.jsonl), and all the Bulk files of one import are
 * read together, in any order, by the shared streaming importer (fhir-bulk.ts); any other text is
 * NDJSON, one fedcare record per line. A Bundle that holds only Organizations / Locations /
 * Practitioners (Synthea's hospitalInformation* and practitionerInformation* files) is a support
 * bundle: it is passed to every patient bundle (and the Bulk files) of the same import to resolve
 * conditional references, as `fedcare import-fhir` does with its support/ folder, and yields no
 * records.
 *
 * Two ways in: importFiles takes texts; importFileStreams takes Files (anything with stream() and
 * text()) and streams a Bulk file line by line (file.stream() through a TextDecoderStream), so a
 * Bulk export far larger than a string can be is read without holding its text; other files are
 * read whole, as importFiles does.
 */
import {
  FhirBulkImport,
  FhirImportError,
  HOSPITAL_ID_PATTERN,
  importFhirBundle,
  ndjsonLines,
  parseNdjson,
  type FhirBulkIssue,
  type FhirBulkResult,
  type NdjsonResult,
  type PatientRecord,
} from '@fedcare/shared/data';

export interface ImportInputFile {
  readonly name: string;
  readonly text: string;
}

/** A file the portal can stream (a DOM File is one). */
export interface ImportStreamFile {
  readonly name: string;
  stream(): ReadableStream<Uint8Array<ArrayBuffer>>;
  text(): Promise<string>;
}

export interface ImportIssue {
  readonly file: string;
  /** `line 7`, `line 7, patient P_H1_0003`, `line 7 (Observation/abc)`, `patient FHIR_…`, `entry[12] (Observation/abc)`, `bundle`, `file`. */
  readonly where: string;
  /** Dotted field path (`lab_results.glucose[0]`, `valueQuantity.value`), or `(record)`, `(bundle)`, `(file)`, `(line)`, `(patient)`. */
  readonly field: string;
  readonly message: string;
}

export type ImportFileKind = 'ndjson' | 'fhir' | 'fhir-bulk';

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
  /** A Bulk Data file: its lines went to the import's FhirBulkImport. */
  | { readonly kind: 'fhir-bulk'; readonly name: string }
  | { readonly kind: 'other-json'; readonly name: string; readonly what: string };

/** A name a Bulk Data file has: a one-line file of one FHIR resource is Bulk only by such a name. */
function isBulkName(name: string): boolean {
  return /\.(ndjson|jsonl)$/i.test(name);
}

/** Non-blank lines looked at, at most, for a valid JSON line that tells a Bulk file from records. */
const SNIFF_LINES = 50;

/**
 * Tells from a file's first lines whether it is a FHIR Bulk Data file: the first line that is valid
 * JSON (bad lines before it are skipped: they become issues) is a FHIR resource other than a Bundle,
 * and the file has another non-blank line (or a Bulk file's name). push() answers once it knows.
 */
class BulkSniffer {
  private nonBlank = 0;
  private fhir = false;
  constructor(private readonly bulkName: boolean) {}

  push(line: string): boolean | undefined {
    if (line.trim() === '') return undefined;
    this.nonBlank++;
    if (this.fhir) return true;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return this.nonBlank >= SNIFF_LINES ? false : undefined;
    }
    // JSON but no FHIR resource (a fedcare record, or a whole Bundle on one line): not Bulk.
    if (!isObj(v) || typeof v.resourceType !== 'string' || v.resourceType === 'Bundle') return false;
    this.fhir = true;
    return this.bulkName || this.nonBlank >= 2 ? true : undefined;
  }
}

/**
 * A file that is one JSON document: a FHIR resource (a Bundle, or any resource but a one-line
 * Bulk file's), or a multi-line document that is not NDJSON; undefined for anything else.
 */
function wholeJson(name: string, trimmed: string): Classified | undefined {
  // NDJSON with two or more records fails JSON.parse at the second line, so this is cheap.
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return undefined; // not one JSON document: NDJSON (or garbage, which parseNdjson reports)
  }
  const multiLine = trimmed.includes('\n');
  if (isObj(json) && 'resourceType' in json) {
    const oneBulkLine = json.resourceType !== 'Bundle' && isBulkName(name) && !multiLine;
    return oneBulkLine ? undefined : { kind: 'fhir', name, json, support: isSupportBundle(json) };
  }
  // One JSON record on one line is a one-line NDJSON file; a multi-line document is not NDJSON.
  return multiLine ? { kind: 'other-json', name, what: Array.isArray(json) ? 'a JSON array' : 'a multi-line JSON object' } : undefined;
}

/** The kind of a file's text; a Bulk Data file's lines are fed to `bulk` at once. */
function classify(file: ImportInputFile, bulk: FhirBulkImport): Classified {
  const text = file.text.charCodeAt(0) === 0xfeff ? file.text.slice(1) : file.text;
  const whole = wholeJson(file.name, text.trim());
  if (whole) return whole;
  const lines = text.split('\n');
  const sniffer = new BulkSniffer(isBulkName(file.name));
  let isBulk: boolean | undefined;
  for (let i = 0; i < lines.length && isBulk === undefined; i++) isBulk = sniffer.push(lines[i] as string);
  if (!isBulk) return { kind: 'ndjson', name: file.name, text };
  lines.forEach((line, i) => bulk.addLine(file.name, i + 1, line));
  return { kind: 'fhir-bulk', name: file.name };
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

/** `line 7 (Observation/abc)`. */
function bulkWhere(i: FhirBulkIssue): string {
  return `line ${i.line}${i.resource ? ` (${i.resource})` : ''}`;
}

function checkHospital(hospitalId: string): void {
  if (!HOSPITAL_ID_PATTERN.test(hospitalId)) throw new Error(`importFiles: "${hospitalId}" is not a valid hospital id`);
}

/**
 * Imports NDJSON files, FHIR R4 Bundles and FHIR Bulk Data files for `hospitalId`. Valid records
 * are kept; every problem is an issue: a bad line or field (with line and field), a record of
 * another hospital, a FHIR bundle that cannot be mapped (with its entry and field), a Bulk line
 * that cannot be used (with its line, resource and field), a patient already imported from an
 * earlier file (the first is kept), a file that is neither FHIR JSON nor NDJSON.
 * Throws only when hospitalId itself is not a valid hospital id (a caller bug, not a data problem).
 */
export function importFiles(files: readonly ImportInputFile[], hospitalId: string): ImportOutcome {
  checkHospital(hospitalId);
  const bulk = new FhirBulkImport({ hospitalId });
  return importClassified(
    files.map((f) => classify(f, bulk)),
    bulk,
    hospitalId,
  );
}

/** A file's text as it streams in: decoded as UTF-8 (a byte-order mark dropped), chunk by chunk. */
async function* textChunks(stream: ReadableStream<Uint8Array<ArrayBuffer>>): AsyncGenerator<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        done = true;
        return;
      }
      yield chunk.value;
    }
  } finally {
    if (!done) await reader.cancel();
  }
}

/**
 * Streams a file into `bulk` when it is a Bulk Data file (see BulkSniffer), line by line, and
 * returns true; otherwise stops reading as soon as that is known and returns false.
 */
async function streamIfBulk(file: ImportStreamFile, bulk: FhirBulkImport): Promise<boolean> {
  const lines = ndjsonLines(textChunks(file.stream()));
  const sniffer = new BulkSniffer(isBulkName(file.name));
  const head: string[] = [];
  let isBulk: boolean | undefined;
  while (isBulk === undefined) {
    const r = await lines.next();
    if (r.done) break;
    head.push(r.value);
    isBulk = sniffer.push(r.value);
  }
  if (!isBulk) {
    await lines.return(undefined);
    return false;
  }
  head.forEach((line, i) => bulk.addLine(file.name, i + 1, line));
  let n = head.length;
  for (let r = await lines.next(); !r.done; r = await lines.next()) bulk.addLine(file.name, ++n, r.value);
  return true;
}

/**
 * Like importFiles, for Files: a Bulk Data file is streamed line by line into the import (never
 * held as one text), any other file is read whole. Same outcome as importFiles on the same texts.
 */
export async function importFileStreams(files: readonly ImportStreamFile[], hospitalId: string): Promise<ImportOutcome> {
  checkHospital(hospitalId);
  const bulk = new FhirBulkImport({ hospitalId });
  const classified: Classified[] = [];
  for (const f of files) {
    classified.push((await streamIfBulk(f, bulk)) ? { kind: 'fhir-bulk', name: f.name } : classify({ name: f.name, text: await f.text() }, bulk));
  }
  return importClassified(classified, bulk, hospitalId);
}

/** What one file gives: its issues, and each record with where it came from. */
interface FileYield {
  readonly issues: Omit<ImportIssue, 'file'>[];
  readonly records: { readonly record: PatientRecord; readonly where: string; readonly origin: string }[];
}

function bundleYield(c: Extract<Classified, { kind: 'fhir' }>, hospitalId: string, support: readonly Json[]): FileYield {
  if (c.support) return { issues: [], records: [] };
  try {
    const { record } = importFhirBundle(c.json, { hospitalId, source: c.name, support });
    return { issues: [], records: [{ record, where: `patient ${record.patient_id}`, origin: c.name }] };
  } catch (e) {
    if (e instanceof FhirImportError) {
      const at = splitFhirWhere(c.json, e.where);
      return { issues: [{ where: at.where, field: at.field, message: e.detail }], records: [] };
    }
    return { issues: [{ where: 'bundle', field: '(bundle)', message: `cannot be imported: ${e instanceof Error ? e.message : String(e)}` }], records: [] };
  }
}

function ndjsonYield(c: Extract<Classified, { kind: 'ndjson' }>, hospitalId: string): FileYield {
  const res = parseNdjson(c.text, { expectedHospital: hospitalId });
  const unparseable = res.issues.filter((i) => i.field === '(record)' && i.message.startsWith('not valid JSON'));
  const fileIssue = (message: string): FileYield => ({ issues: [{ where: 'file', field: '(file)', message }], records: [] });
  if (res.lines === 0) return fileIssue('empty: no records');
  if (unparseable.length === res.lines) {
    const first = unparseable[0];
    return fileIssue(
      `neither a FHIR Bundle (JSON) nor NDJSON: none of its ${res.lines} line(s) is valid JSON` + (first ? ` (line ${first.line}: ${first.message})` : ''),
    );
  }
  const lines = keptLines(c.text, res);
  return {
    issues: res.issues.map((i) => ({ where: ndjsonWhere(i.line, i.patientId), field: i.field, message: i.message })),
    records: res.records.map((record, k) => {
      const line = lines[k];
      return { record, where: ndjsonWhere(line, record.patient_id), origin: line !== undefined ? `${c.name} line ${line}` : c.name };
    }),
  };
}

/** A Bulk file's share of the Bulk import: the records whose Patient line is in it, and its issues. */
function bulkYield(name: string, result: FhirBulkResult): FileYield {
  return {
    issues: result.issues.filter((i) => i.file === name).map((i) => ({ where: bulkWhere(i), field: i.field, message: i.message })),
    records: result.records.flatMap((record, k) => {
      const at = result.origins[k];
      return at?.file === name ? [{ record, where: `line ${at.line}, patient ${record.patient_id}`, origin: `${name} line ${at.line}` }] : [];
    }),
  };
}

/** The outcome of classified files, in their order: the first copy of a patient is kept. */
function importClassified(classified: readonly Classified[], bulk: FhirBulkImport, hospitalId: string): ImportOutcome {
  const support = classified.flatMap((c) => (c.kind === 'fhir' && c.support ? [c.json] : []));
  support.forEach((s, k) => bulk.addSupport(s, `support[${k}]`));
  const bulkResult = classified.some((c) => c.kind === 'fhir-bulk') ? bulk.finish() : undefined;

  const records: PatientRecord[] = [];
  const issues: ImportIssue[] = [];
  const summaries: ImportFileSummary[] = [];
  /** patient_id → where it was first kept (`file line 7` / `file`). */
  const seen = new Map<string, string>();
  for (const c of classified) {
    let got: FileYield;
    if (c.kind === 'other-json') {
      got = { issues: [{ where: 'file', field: '(file)', message: `${c.what} is neither a FHIR Bundle (no resourceType) nor NDJSON (one JSON record per line)` }], records: [] };
    } else if (c.kind === 'fhir') got = bundleYield(c, hospitalId, support);
    else if (c.kind === 'fhir-bulk') got = bulkYield(c.name, bulkResult as FhirBulkResult);
    else got = ndjsonYield(c, hospitalId);

    const fileIssues: ImportIssue[] = got.issues.map((i) => ({ file: c.name, ...i }));
    let kept = 0;
    // Keeps each record unless an earlier file (or bundle) already gave this patient.
    for (const { record, where, origin } of got.records) {
      const first = seen.get(record.patient_id);
      if (first !== undefined) {
        fileIssues.push({ file: c.name, where, field: 'patient_id', message: `patient ${record.patient_id} was already imported from ${first}; this copy was skipped` });
        continue;
      }
      seen.set(record.patient_id, origin);
      records.push(record);
      kept++;
    }
    issues.push(...fileIssues);
    summaries.push({ name: c.name, kind: c.kind === 'other-json' ? 'ndjson' : c.kind, records: kept, issues: fileIssues.length });
  }
  return { records, issues, files: summaries };
}
