/**
 * Validating records one by one and NDJSON files line by line. Every problem is reported as a
 * RecordIssue that names where (line, patient) and what (the field path) went wrong; callers decide
 * whether to keep the valid records (the portal) or refuse the whole file (the CLI).
 */
import type { z } from 'zod';
import { patientRecordSchema, type PatientRecord } from './schema';

export interface RecordIssue {
  /** 1-based line of an NDJSON file, when the record came from one. */
  readonly line?: number;
  /** The record's patient_id when it could be read, else undefined. */
  readonly patientId?: string;
  /** Dotted field path, e.g. `clinical_timeseries.temperature[3]`; `(record)` for the whole line. */
  readonly field: string;
  readonly message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(record)' : out;
}

export function formatIssue(issue: RecordIssue): string {
  const where = [
    issue.line !== undefined ? `line ${issue.line}` : undefined,
    issue.patientId !== undefined ? `patient ${issue.patientId}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  return `${where ? `${where}: ` : ''}${issue.field}: ${issue.message}`;
}

export class RecordValidationError extends Error {
  constructor(readonly issues: readonly RecordIssue[], context = 'records') {
    const shown = issues.slice(0, 10).map((i) => `  - ${formatIssue(i)}`);
    const more = issues.length > 10 ? [`  … and ${issues.length - 10} more`] : [];
    super([`${issues.length} invalid ${context}:`, ...shown, ...more].join('\n'));
    this.name = 'RecordValidationError';
  }
}

export interface ParseOptions {
  /** Hospitals a record may belong to; any other hospital_id is an error ("unknown hospital"). */
  readonly knownHospitals?: readonly string[];
  /** When set, every record must carry this hospital_id (e.g. a file named H1.ndjson). */
  readonly expectedHospital?: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: RecordIssue[] };

function patientIdOf(value: unknown): string | undefined {
  if (value && typeof value === 'object' && 'patient_id' in value) {
    const id = (value as { patient_id: unknown }).patient_id;
    if (typeof id === 'string' && id.length > 0) return id;
  }
  return undefined;
}

function zodIssues(error: z.ZodError, line: number | undefined, patientId: string | undefined): RecordIssue[] {
  return error.issues.map((i) => ({
    ...(line !== undefined ? { line } : {}),
    ...(patientId !== undefined ? { patientId } : {}),
    field: formatPath(i.path),
    message: i.message,
  }));
}

/** Validates one decoded record against the schema and the hospital rules. */
export function parseRecord(value: unknown, options: ParseOptions = {}, line?: number): ParseResult<PatientRecord> {
  const patientId = patientIdOf(value);
  const res = patientRecordSchema.safeParse(value);
  if (!res.success) return { ok: false, issues: zodIssues(res.error, line, patientId) };
  const rec = res.data;
  const at = { ...(line !== undefined ? { line } : {}), patientId: rec.patient_id, field: 'hospital_id' };
  if (options.knownHospitals && !options.knownHospitals.includes(rec.hospital_id)) {
    return {
      ok: false,
      issues: [{ ...at, message: `unknown hospital "${rec.hospital_id}" (known: ${options.knownHospitals.join(', ')})` }],
    };
  }
  if (options.expectedHospital !== undefined && rec.hospital_id !== options.expectedHospital) {
    return {
      ok: false,
      issues: [{ ...at, message: `is "${rec.hospital_id}" but this file belongs to "${options.expectedHospital}"` }],
    };
  }
  return { ok: true, value: rec };
}

export interface NdjsonResult {
  readonly records: PatientRecord[];
  readonly issues: RecordIssue[];
  /** Non-empty lines read. */
  readonly lines: number;
}

/**
 * Parses NDJSON text: one JSON record per line, blank lines ignored. Returns the valid records and
 * every issue; duplicate patient_ids are an issue on the later line.
 */
export function parseNdjson(text: string, options: ParseOptions = {}): NdjsonResult {
  const records: PatientRecord[] = [];
  const issues: RecordIssue[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '') continue;
    count++;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      issues.push({ line, field: '(record)', message: `not valid JSON: ${(e as Error).message}` });
      continue;
    }
    const res = parseRecord(value, options, line);
    if (!res.ok) {
      issues.push(...res.issues);
      continue;
    }
    const first = seen.get(res.value.patient_id);
    if (first !== undefined) {
      issues.push({ line, patientId: res.value.patient_id, field: 'patient_id', message: `duplicates line ${first}` });
      continue;
    }
    seen.set(res.value.patient_id, line);
    records.push(res.value);
  }
  return { records, issues, lines: count };
}

/** Like parseNdjson, but all-or-nothing: throws a RecordValidationError listing every issue. */
export function parseNdjsonStrict(text: string, options: ParseOptions = {}, context = 'records'): PatientRecord[] {
  const res = parseNdjson(text, options);
  if (res.issues.length > 0) throw new RecordValidationError(res.issues, context);
  return res.records;
}

/** One record per line, keys in schema order: byte-identical output for identical records. */
export function toNdjson(records: readonly PatientRecord[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
}
