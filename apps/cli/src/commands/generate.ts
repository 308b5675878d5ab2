/** `fedcare generate`: seeded synthetic hospitals as NDJSON, plus a summary table. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateHospital, KNOWN_HOSPITALS, toNdjson, type PatientRecord } from '@fedcare/shared/data';
import { CliError, PRIVATE, writeFileAtomic } from '../io';
import { renderTable } from '../table';

const HELP = `usage: fedcare generate [--hospitals H1,H2,H3] [--seed 42] [--out data] [--patients N] [--json]

Writes OUT/<H>.ndjson for each hospital (seed spec 1.2 cohorts; --patients overrides the size).
The same seed gives byte-identical files.`;

export interface CohortSummary {
  hospital: string;
  patients: number;
  mean_age: number;
  male_share: number;
  readmission_rate: number;
  mean_lab_timestamps: number;
  risk_low: number;
  risk_medium: number;
  risk_high: number;
  file: string;
}

export function summarise(hospital: string, records: readonly PatientRecord[], file: string): CohortSummary {
  const n = records.length;
  const mean = (f: (r: PatientRecord) => number) => records.reduce((s, r) => s + f(r), 0) / n;
  return {
    hospital,
    patients: n,
    mean_age: mean((r) => r.demographics.age),
    male_share: mean((r) => (r.demographics.gender === 'M' ? 1 : 0)),
    readmission_rate: mean((r) => (r.outcomes.readmission_30d === 1 ? 1 : 0)),
    mean_lab_timestamps: mean((r) => r.lab_results.timestamps.length),
    risk_low: mean((r) => (r.outcomes.risk_level === 'Low' ? 1 : 0)),
    risk_medium: mean((r) => (r.outcomes.risk_level === 'Medium' ? 1 : 0)),
    risk_high: mean((r) => (r.outcomes.risk_level === 'High' ? 1 : 0)),
    file,
  };
}

export function generateToDir(hospitals: readonly string[], seed: number, out: string, patients?: number): CohortSummary[] {
  const unknown = hospitals.filter((h) => !(KNOWN_HOSPITALS as readonly string[]).includes(h));
  if (unknown.length) throw new CliError(`unknown hospital(s) ${unknown.join(', ')} (known: ${KNOWN_HOSPITALS.join(', ')})`, 2);
  // Generate everything first, then write: a failure leaves no partial set of files behind.
  const cohorts = hospitals.map((h) => ({ h, records: generateHospital(h, { seed, ...(patients ? { patients } : {}) }).records }));
  return cohorts.map(({ h, records }) => {
    const file = path.join(out, `${h}.ndjson`);
    writeFileAtomic(file, toNdjson(records), PRIVATE);
    return summarise(h, records, file);
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      hospitals: { type: 'string', default: KNOWN_HOSPITALS.join(',') },
      seed: { type: 'string', default: '42' },
      out: { type: 'string', default: 'data' },
      patients: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new CliError(`--seed must be an integer, got "${values.seed}"`, 2);
  const patients = values.patients === undefined ? undefined : Number(values.patients);
  if (patients !== undefined && (!Number.isInteger(patients) || patients < 1)) throw new CliError(`--patients must be a positive integer, got "${values.patients}"`, 2);
  const hospitals = values.hospitals.split(',').map((h) => h.trim()).filter(Boolean);
  const rows = generateToDir(hospitals, seed, values.out, patients);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ seed, hospitals: rows })}\n`);
  } else {
    process.stdout.write(
      renderTable(
        ['hospital', 'patients', 'mean age', 'male', 'readmit 30d', 'labs/patient', 'Low/Med/High', 'file'],
        rows.map((r) => [
          r.hospital,
          String(r.patients),
          r.mean_age.toFixed(1),
          `${(100 * r.male_share).toFixed(1)}%`,
          r.readmission_rate.toFixed(3),
          r.mean_lab_timestamps.toFixed(1),
          `${(100 * r.risk_low).toFixed(0)}/${(100 * r.risk_medium).toFixed(0)}/${(100 * r.risk_high).toFixed(0)}%`,
          r.file,
        ]),
      ),
    );
  }
  return 0;
}
