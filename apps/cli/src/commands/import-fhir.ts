/**
 * `fedcare import-fhir --in DIR_OR_FILE [--in …] --hospital ID --out FILE.ndjson [--support DIR] [--json]`
 *
 * Two kinds of input, told apart by their files:
 *
 * FHIR R4 patient Bundles (*.json: one file, or every *.json directly in a directory) become
 * patient records (NDJSON, one per line). All or nothing: if any bundle fails, every failure is
 * listed and nothing is written.
 *
 * A FHIR Bulk Data export (*.ndjson / *.jsonl whose first line is a FHIR resource: a directory of
 * them, or the files given with several --in) is read line by line — node:readline over a file
 * stream, never a whole file in memory — through the shared streaming importer (fhir-bulk.ts), in
 * any file order. Lenient, like the Bulk Data it reads: a line that cannot be used (bad JSON, a
 * resource that fails validation, a reference to a Patient not in the export) is listed with its
 * file, line and field, and the records of the rest are written; nothing is written when no record
 * is left. *.json files beside the NDJSON (a saved export manifest) are not read.
 *
 * Support bundles (Organizations / Practitioners that conditional references point to) come from
 * --support DIR, else from DIR/support when it exists, in either mode; a support/ folder is never
 * read as patient bundles. Tables and the summary, with the peak memory (RSS and V8 heap used,
 * sampled every 1000 lines and after each bundle), go to stderr; --json prints the reports as one
 * JSON object on stdout.
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  FhirBulkImport,
  HOSPITAL_ID_PATTERN,
  importFhirBundles,
  isFhirResourceLine,
  LAB_NAMES,
  MARKER_NAMES,
  toNdjson,
  VITAL_NAMES,
  type FhirBulkIssue,
  type FhirBulkResult,
  type FhirBundleFailure,
  type FhirBundleReport,
  type FhirImportBatch,
  type FhirImportSummary,
} from '@fedcare/shared/data';
import { CliError, PRIVATE, readText, writeFileAtomic } from '../io';
import { renderTable } from '../table';

export const USAGE = `Usage: fedcare import-fhir --in DIR_OR_FILE [--in …] --hospital ID --out FILE.ndjson [--support DIR] [--json]

Imports FHIR R4 patient Bundles (Synthea or EHR exports), or a FHIR Bulk Data export, as patient
records.

  --in DIR_OR_FILE   FHIR Bundles: one bundle (.json) or a directory: every *.json in it (not in
                     subfolders). A Bulk Data export: a directory with *.ndjson (or *.jsonl) files
                     of FHIR resources (Patient.ndjson, Observation.000.ndjson, …), or such files
                     given with several --in. Bulk files are streamed line by line, in any order;
                     bad lines are listed (file, line, field) and the other records are written.
  --hospital ID      hospital_id of the records (e.g. H4)
  --out FILE         NDJSON file to write (atomically; for bundles nothing is written if any fails)
  --support DIR      support bundles (Organizations, Practitioners) for conditional references;
                     default: DIR/support when it exists
  --json             print the reports, the summary and the peak memory as JSON on stdout
  -h, --help         show this help`;

const BULK_EXTENSIONS = ['.ndjson', '.jsonl'];
const SAMPLE_EVERY_LINES = 1000;
const MAX_ISSUES_SHOWN = 20;

interface Options {
  readonly in: string[];
  readonly hospital: string;
  readonly out: string;
  readonly support: string | undefined;
  readonly json: boolean;
}

/** The high-water mark of the process's memory, sampled by the caller. */
class PeakMemory {
  rss = 0;
  heapUsed = 0;
  sample(): void {
    const m = process.memoryUsage();
    if (m.rss > this.rss) this.rss = m.rss;
    if (m.heapUsed > this.heapUsed) this.heapUsed = m.heapUsed;
  }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

function filesIn(dir: string, extensions: readonly string[]): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && extensions.some((e) => d.name.toLowerCase().endsWith(e)))
    .map((d) => path.join(dir, d.name))
    .sort();
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function parseJsonFile(file: string): unknown {
  try {
    return JSON.parse(readText(file)) as unknown;
  } catch (e) {
    throw new CliError(`${file}: cannot read a JSON support bundle: ${(e as Error).message}`);
  }
}

function parseOptions(argv: string[]): Options | undefined {
  let values: { in?: string[]; hospital?: string; out?: string; support?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        in: { type: 'string', multiple: true },
        hospital: { type: 'string' },
        out: { type: 'string' },
        support: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help) return undefined;
  const missing = (['in', 'hospital', 'out'] as const).filter((k) => !values[k] || values[k].length === 0);
  if (missing.length > 0) throw new CliError(`missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${USAGE}`, 2);
  const hospital = values.hospital as string;
  if (!HOSPITAL_ID_PATTERN.test(hospital)) {
    throw new CliError(`--hospital "${hospital}" is not a valid hospital id (letters, digits, _ or -, starting with a letter)`, 2);
  }
  for (const i of values.in as string[]) if (!existsSync(i)) throw new CliError(`--in ${i}: no such file or directory`);
  return { in: values.in as string[], hospital, out: values.out as string, support: values.support, json: values.json ?? false };
}

// ---------------------------------------------------------------------------------------------
// What the inputs are

interface Inputs {
  readonly kind: 'bundles' | 'bulk';
  readonly files: string[];
  /** *.json files beside a Bulk export (not read). */
  readonly skipped: string[];
}

/** The first line of a file, read from a stream (a Bulk file may be far larger than memory). */
async function firstLine(file: string): Promise<string> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const line of rl) if (line.trim() !== '') return line.charCodeAt(0) === 0xfeff ? line.slice(1) : line;
    return '';
  } finally {
    rl.close();
  }
}

/** Bundles (*.json) or Bulk Data files (*.ndjson, *.jsonl of FHIR resources), from every --in. */
async function collectInputs(ins: readonly string[]): Promise<Inputs> {
  const bundles: string[] = [];
  const bulk: string[] = [];
  const beside: string[] = [];
  for (const i of ins) {
    if (isDir(i)) {
      const nd = filesIn(i, BULK_EXTENSIONS);
      bulk.push(...nd);
      (nd.length > 0 ? beside : bundles).push(...filesIn(i, ['.json']));
    } else if (BULK_EXTENSIONS.some((e) => i.toLowerCase().endsWith(e))) {
      bulk.push(i);
    } else {
      bundles.push(i);
    }
  }
  if (bulk.length === 0) {
    if (bundles.length === 0) throw new CliError(`--in ${ins.join(', ')}: no *.json bundles and no *.ndjson Bulk Data files here`);
    return { kind: 'bundles', files: bundles, skipped: [] };
  }
  if (bundles.length > 0) {
    throw new CliError(`--in: ${bundles[0]} is a bundle and ${bulk[0]} a Bulk Data file: import bundles and a Bulk export in separate runs`, 2);
  }
  for (const f of bulk) {
    const line = await firstLine(f);
    if (line !== '' && !isFhirResourceLine(line)) {
      throw new CliError(`${f}: its first line is not a FHIR resource (no "resourceType"): not a FHIR Bulk Data file (fedcare NDJSON records need no import)`);
    }
  }
  return { kind: 'bulk', files: bulk, skipped: beside };
}

function supportBundles(options: Options): { dir: string | undefined; files: string[]; parsed: unknown[] } {
  let dir = options.support;
  if (dir !== undefined && !isDir(dir)) throw new CliError(`--support ${dir}: not a directory`);
  if (dir === undefined) {
    const first = options.in[0] as string;
    const auto = path.join(isDir(first) ? first : path.dirname(first), 'support');
    if (isDir(auto)) dir = auto;
  }
  const files = dir !== undefined ? filesIn(dir, ['.json']) : [];
  return { dir, files, parsed: files.map(parseJsonFile) };
}

/** File names for issues and sources: the base name, or the path when two inputs share a base name. */
function displayNames(files: readonly string[]): Map<string, string> {
  const bases = files.map((f) => path.basename(f));
  const unique = new Set(bases).size === bases.length;
  return new Map(files.map((f, k) => [f, unique ? (bases[k] as string) : f]));
}

// ---------------------------------------------------------------------------------------------
// Reports

const sumOf = (r: FhirBundleReport, names: readonly string[]) =>
  names.reduce((s, n) => s + ((r.counts as Record<string, number>)[n] ?? 0), 0);

/** "140 obs → 3 d": observations found in the bundle and days (timestamps) in the record. */
function cell(found: number, days: number): string {
  return found === 0 ? '-' : `${found} obs → ${days} d`;
}

function table(reports: readonly FhirBundleReport[]): string {
  const header = ['bundle', 'patient', 'vitals', 'labs', 'biology', 'outcome'];
  const rows = reports.map((r) => [
    r.source.length > 40 ? `${r.source.slice(0, 39)}…` : r.source,
    r.patientId,
    cell(sumOf(r, VITAL_NAMES), r.series.vitals),
    cell(sumOf(r, LAB_NAMES), r.series.labs),
    cell(sumOf(r, MARKER_NAMES), r.series.biology) + (r.counts.nt_probnp > 0 ? ` (+${r.counts.nt_probnp} NT-proBNP, unmapped)` : ''),
    r.modalities.outcomes,
  ]);
  return renderTable(header, rows);
}

function summaryText(summary: FhirImportSummary, reports: readonly FhirBundleReport[], json: boolean, unit: string): string {
  const warned = reports.filter((r) => r.warnings.length > 0).length;
  return (
    `${summary.records} records: readmission/adverse-event outcomes derived for ${summary.labelled}, unknown for ${summary.unlabelled}` +
    (summary.unlabelled > 0 ? ` (those ${summary.unlabelled} are excluded from supervised training on these outcomes)` : '') +
    `\nrisk_level is not derivable from FHIR: the risk classifier can score these records but not train on them` +
    `\nmodalities: vitals ${summary.modalities.vitals}, labs ${summary.modalities.labs}, biology ${summary.modalities.biology}, omics 0 of ${summary.records}` +
    `; ${summary.droppedValues} value(s) dropped; ${warned} ${unit}(s) with warnings${json ? '' : ' (see --json)'}\n`
  );
}

function memoryText(peak: PeakMemory, inputBytes: number, seconds: number, lines?: number): string {
  return (
    `peak memory: RSS ${mb(peak.rss)}, V8 heap used ${mb(peak.heapUsed)}` +
    ` (input ${mb(inputBytes)}${lines !== undefined ? `, ${lines.toLocaleString('en-US')} lines` : ''}, ${seconds.toFixed(1)} s)\n`
  );
}

function memoryJson(peak: PeakMemory, inputBytes: number, seconds: number) {
  return { peakRssBytes: peak.rss, peakHeapUsedBytes: peak.heapUsed, inputBytes, seconds: Math.round(seconds * 10) / 10 };
}

// ---------------------------------------------------------------------------------------------
// Bundles

async function runBundles(options: Options, files: readonly string[], support: ReturnType<typeof supportBundles>): Promise<number> {
  const started = performance.now();
  const peak = new PeakMemory();
  process.stderr.write(
    `import-fhir: ${files.length} bundle(s) from ${options.in.join(', ')}` +
      (support.dir !== undefined ? `, ${support.files.length} support bundle(s) from ${support.dir}` : '') +
      '\n',
  );
  // Read lazily: one bundle's text in memory at a time. Every failure is collected, then reported.
  const failures: FhirBundleFailure[] = [];
  function* bundles(): Generator<{ name: string; json: unknown }> {
    for (const file of files) {
      const name = path.basename(file);
      let text: string;
      try {
        text = readText(file);
      } catch (e) {
        failures.push({ name, error: `bundle ${name}: cannot read ${file}: ${(e as Error).message}` });
        continue;
      }
      peak.sample();
      yield { name, json: text };
    }
  }
  const batch: FhirImportBatch = importFhirBundles(bundles(), { hospitalId: options.hospital, support: support.parsed, keepGoing: true });
  failures.push(...batch.failures);
  if (failures.length > 0) {
    if (options.json) process.stdout.write(`${JSON.stringify({ ok: false, failures }, null, 2)}\n`);
    const list = failures.map((f) => `  - ${f.error}`).join('\n');
    throw new CliError(`${failures.length} of ${files.length} FHIR bundle(s) could not be imported:\n${list}\nNothing was written to ${options.out}.`, 1);
  }
  writeFileAtomic(options.out, toNdjson(batch.records), PRIVATE);
  peak.sample();
  const seconds = (performance.now() - started) / 1000;
  const inputBytes = files.reduce((s, f) => s + statSync(f).size, 0);
  process.stderr.write(table(batch.reports));
  process.stderr.write(summaryText(batch.summary, batch.reports, options.json, 'bundle') + memoryText(peak, inputBytes, seconds) + `wrote ${options.out}\n`);
  if (options.json) {
    const memory = memoryJson(peak, inputBytes, seconds);
    process.stdout.write(`${JSON.stringify({ ok: true, mode: 'bundles', out: options.out, summary: batch.summary, memory, reports: batch.reports }, null, 2)}\n`);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Bulk Data

/** Streams every file into the importer, line by line; the peak memory is sampled as it goes. */
async function streamBulk(bulk: FhirBulkImport, files: readonly string[], names: ReadonlyMap<string, string>, peak: PeakMemory): Promise<number> {
  let total = 0;
  for (const file of files) {
    const name = names.get(file) as string;
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) {
      bulk.addLine(name, ++n, line);
      if (n % SAMPLE_EVERY_LINES === 0) peak.sample();
    }
    peak.sample();
    total += n;
  }
  return total;
}

function fileTable(result: FhirBulkResult): string {
  const header = ['file', 'lines', 'resources', 'records', 'issues'];
  const rows = result.files.map((f) => [
    f.name,
    String(f.lines),
    Object.entries(f.resources)
      .map(([t, n]) => `${n} ${t}`)
      .join(', '),
    String(f.records),
    String(f.issues),
  ]);
  return renderTable(header, rows);
}

function issueLine(i: FhirBulkIssue): string {
  return `  - ${i.file} line ${i.line}${i.resource ? ` (${i.resource})` : ''}: ${i.field}: ${i.message}`;
}

function issuesText(issues: readonly FhirBulkIssue[]): string {
  if (issues.length === 0) return '';
  const shown = issues.slice(0, MAX_ISSUES_SHOWN).map(issueLine);
  const more = issues.length > MAX_ISSUES_SHOWN ? [`  … and ${issues.length - MAX_ISSUES_SHOWN} more (see --json)`] : [];
  return [`${issues.length} issue(s): those lines (or patients) were skipped, the rest imported:`, ...shown, ...more].join('\n') + '\n';
}

async function runBulk(options: Options, inputs: Inputs, support: ReturnType<typeof supportBundles>): Promise<number> {
  const started = performance.now();
  const peak = new PeakMemory();
  peak.sample();
  const inputBytes = inputs.files.reduce((s, f) => s + statSync(f).size, 0);
  process.stderr.write(
    `import-fhir: a FHIR Bulk Data export: ${inputs.files.length} NDJSON file(s) (${mb(inputBytes)}) from ${options.in.join(', ')}` +
      (support.dir !== undefined ? `, ${support.files.length} support bundle(s) from ${support.dir}` : '') +
      (inputs.skipped.length > 0 ? `; not read: ${inputs.skipped.map((f) => path.basename(f)).join(', ')}` : '') +
      '\n',
  );
  const bulk = new FhirBulkImport({ hospitalId: options.hospital, support: support.parsed });
  const lines = await streamBulk(bulk, inputs.files, displayNames(inputs.files), peak);
  const result = bulk.finish();
  peak.sample();
  if (result.records.length === 0) {
    if (options.json) process.stdout.write(`${JSON.stringify({ ok: false, mode: 'bulk', files: result.files, issues: result.issues }, null, 2)}\n`);
    throw new CliError(`no record could be made from this Bulk Data export.\n${issuesText(result.issues)}Nothing was written to ${options.out}.`, 1);
  }
  writeFileAtomic(options.out, toNdjson(result.records), PRIVATE);
  peak.sample();
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    fileTable(result) +
      issuesText(result.issues) +
      summaryText(result.summary, result.reports, options.json, 'patient') +
      memoryText(peak, inputBytes, seconds, lines) +
      `wrote ${options.out}\n`,
  );
  if (options.json) {
    const memory = memoryJson(peak, inputBytes, seconds);
    const { summary, files, issues, reports } = result;
    process.stdout.write(`${JSON.stringify({ ok: true, mode: 'bulk', out: options.out, summary, lines, memory, files, issues, reports }, null, 2)}\n`);
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const inputs = await collectInputs(options.in);
  const support = supportBundles(options);
  return inputs.kind === 'bulk' ? runBulk(options, inputs, support) : runBundles(options, inputs.files, support);
}
