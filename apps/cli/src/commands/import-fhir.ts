/**
 * `fedcare import-fhir --in DIR_OR_FILE --hospital ID --out FILE.ndjson [--support DIR] [--json]`
 *
 * Turns FHIR R4 patient Bundles (one .json file, or every *.json directly in a directory) into
 * patient records (NDJSON, one per line). All or nothing: if any bundle fails, every failure is
 * listed and nothing is written. Support bundles (Organizations / Practitioners that conditional
 * references point to) come from --support DIR, else from DIR/support when it exists; a support/
 * folder is never read as patient bundles. The per-bundle table and the summary go to stderr;
 * --json prints the reports as one JSON object on stdout.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  HOSPITAL_ID_PATTERN,
  importFhirBundles,
  LAB_NAMES,
  MARKER_NAMES,
  toNdjson,
  VITAL_NAMES,
  type FhirBundleFailure,
  type FhirBundleReport,
  type FhirImportBatch,
} from '@fedcare/shared/data';
import { CliError, PRIVATE, readText, writeFileAtomic } from '../io';
import { renderTable } from '../table';

export const USAGE = `Usage: fedcare import-fhir --in DIR_OR_FILE --hospital ID --out FILE.ndjson [--support DIR] [--json]

Imports FHIR R4 patient Bundles (Synthea or EHR exports) as patient records.

  --in DIR_OR_FILE   one bundle (.json) or a directory: every *.json in it (not in subfolders)
  --hospital ID      hospital_id of the records (e.g. H4)
  --out FILE         NDJSON file to write (atomically; nothing is written if any bundle fails)
  --support DIR      support bundles (Organizations, Practitioners) for conditional references;
                     default: DIR/support when it exists
  --json             print the per-bundle reports and the summary as JSON on stdout
  -h, --help         show this help`;

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && d.name.toLowerCase().endsWith('.json'))
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

export async function run(argv: string[]): Promise<number> {
  let values: { in?: string; hospital?: string; out?: string; support?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        in: { type: 'string' },
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
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const missing = (['in', 'hospital', 'out'] as const).filter((k) => !values[k]);
  if (missing.length > 0) throw new CliError(`missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${USAGE}`, 2);
  const input = values.in as string;
  const hospital = values.hospital as string;
  const out = values.out as string;
  if (!HOSPITAL_ID_PATTERN.test(hospital)) {
    throw new CliError(`--hospital "${hospital}" is not a valid hospital id (letters, digits, _ or -, starting with a letter)`, 2);
  }
  if (!existsSync(input)) throw new CliError(`--in ${input}: no such file or directory`);

  // Bundles and support bundles.
  const inputIsDir = isDir(input);
  const files = inputIsDir ? jsonFiles(input) : [input];
  if (files.length === 0) throw new CliError(`--in ${input}: no *.json bundles in this directory`);
  let supportDir: string | undefined = values.support;
  if (supportDir !== undefined && !isDir(supportDir)) throw new CliError(`--support ${supportDir}: not a directory`);
  if (supportDir === undefined) {
    const auto = path.join(inputIsDir ? input : path.dirname(input), 'support');
    if (isDir(auto)) supportDir = auto;
  }
  const supportFiles = supportDir !== undefined ? jsonFiles(supportDir) : [];
  const support = supportFiles.map(parseJsonFile);
  process.stderr.write(
    `import-fhir: ${files.length} bundle(s) from ${input}` +
      (supportDir !== undefined ? `, ${supportFiles.length} support bundle(s) from ${supportDir}` : '') +
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
      yield { name, json: text };
    }
  }
  const batch: FhirImportBatch = importFhirBundles(bundles(), { hospitalId: hospital, support, keepGoing: true });
  failures.push(...batch.failures);
  if (failures.length > 0) {
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, failures }, null, 2)}\n`);
    const list = failures.map((f) => `  - ${f.error}`).join('\n');
    throw new CliError(
      `${failures.length} of ${files.length} FHIR bundle(s) could not be imported:\n${list}\nNothing was written to ${out}.`,
      1,
    );
  }

  writeFileAtomic(out, toNdjson(batch.records), PRIVATE);

  const { summary } = batch;
  process.stderr.write(table(batch.reports));
  const warned = batch.reports.filter((r) => r.warnings.length > 0).length;
  process.stderr.write(
    `${summary.records} records: readmission/adverse-event outcomes derived for ${summary.labelled}, unknown for ${summary.unlabelled}` +
      (summary.unlabelled > 0 ? ` (those ${summary.unlabelled} are excluded from supervised training on these outcomes)` : '') +
      `\nrisk_level is not derivable from FHIR: the risk classifier can score these records but not train on them` +
      `\nmodalities: vitals ${summary.modalities.vitals}, labs ${summary.modalities.labs}, biology ${summary.modalities.biology}, omics 0 of ${summary.records}` +
      `; ${summary.droppedValues} value(s) dropped; ${warned} bundle(s) with warnings${values.json ? '' : ' (see --json)'}` +
      `\nwrote ${out}\n`,
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, out, summary, reports: batch.reports }, null, 2)}\n`);
  }
  return 0;
}
