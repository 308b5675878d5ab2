/** Loading record files for the CLI: a directory of <HOSPITAL>.ndjson files or single files. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseNdjson, formatIssue, type PatientRecord } from '@fedcare/shared/data';
import { CliError, readText } from './io';

/**
 * Reads every *.ndjson under `dir` (or the single file). A file named H1.ndjson must hold only
 * H1's records. All-or-nothing: any invalid line fails the whole load, naming file, line and field.
 */
export function loadRecords(dirOrFile: string): PatientRecord[] {
  if (!existsSync(dirOrFile)) throw new CliError(`${dirOrFile}: no such file or directory`);
  const files = statSync(dirOrFile).isDirectory()
    ? readdirSync(dirOrFile)
        .filter((f) => f.endsWith('.ndjson'))
        .sort()
        .map((f) => path.join(dirOrFile, f))
    : [dirOrFile];
  if (files.length === 0) throw new CliError(`${dirOrFile}: no .ndjson files (run \`fedcare generate --out ${dirOrFile}\`)`);
  const records: PatientRecord[] = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    const expectedHospital = path.basename(file, '.ndjson');
    const res = parseNdjson(readText(file), /^[A-Za-z][A-Za-z0-9_-]*$/.test(expectedHospital) ? { expectedHospital } : {});
    for (const issue of res.issues) problems.push(`${file}: ${formatIssue(issue)}`);
    for (const r of res.records) {
      const key = `${r.hospital_id}/${r.patient_id}`;
      const other = seen.get(key);
      if (other) problems.push(`${file}: patient ${r.patient_id} also appears in ${other}`);
      seen.set(key, file);
      records.push(r);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).join('\n  ');
    throw new CliError(`${problems.length} invalid record(s), nothing loaded:\n  ${shown}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`);
  }
  return records;
}
