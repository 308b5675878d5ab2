/**
 * `fedcare predict`: scores records with an exported model (`fedcare export`) for a hospital's batch
 * jobs — the portal's feature encoding and model, so the same records give the portal's
 * probabilities. Records are the NDJSON `fedcare generate` and `import-fhir` write.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BUNDLE_WEIGHTS_FILE, loadBundle, scoreWithBundle, TABULAR_BUNDLE_FORMAT, TabularRunError } from '@fedcare/shared/fl';
import { scoresToCsv } from '@fedcare/shared/train';
import { CliError, readText, writeFileAtomic } from '../io';
import { loadRecords } from '../records-io';
import { initTf } from '../tf-node';

const HELP = `usage: fedcare predict --model DIR --data FILE.ndjson|DIR --out scores.csv

Scores every record with the model exported to DIR: one CSV row per patient (patient_id,
hospital_id, the predicted risk level, P(Low), P(Medium), P(High), the modality the fusion attended
to most and the attention per modality). The weights and statistics are checked against their
SHA-256s in model.json first.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.model || !values.data || !values.out) throw new CliError('--model DIR, --data FILE and --out FILE are required', 2);
  let manifest: unknown;
  try {
    manifest = JSON.parse(readText(path.join(values.model, 'model.json')));
  } catch (e) {
    throw new CliError(e instanceof CliError ? e.message : `${path.join(values.model, 'model.json')}: not JSON (${(e as Error).message})`);
  }
  const tabular = manifest as { format?: unknown; run_id?: unknown } | null;
  if (tabular?.format === TABULAR_BUNDLE_FORMAT) throw new CliError(`${values.model}: ${new TabularRunError(String(tabular.run_id), 'fedcare predict').message}`);
  const records = loadRecords(values.data);
  await initTf('wasm');
  let weights: Uint8Array;
  try {
    weights = new Uint8Array(readFileSync(path.join(values.model, BUNDLE_WEIGHTS_FILE)));
  } catch (e) {
    throw new CliError(`${path.join(values.model, BUNDLE_WEIGHTS_FILE)}: ${(e as Error).message}`);
  }
  const loaded = await loadBundle(manifest, weights).catch((e: unknown) => {
    throw new CliError(`${values.model}: ${(e as Error).message}`);
  });
  try {
    const scores = await scoreWithBundle(loaded.bundle, loaded.model, records);
    const hospital = new Map(records.map((r) => [r.patient_id, r.hospital_id]));
    writeFileAtomic(values.out, scoresToCsv(scores, { hospital_id: (s) => hospital.get(s.patient_id) ?? '' }));
    process.stderr.write(`${scores.length} patients scored with ${loaded.bundle.run_id} round ${loaded.bundle.round} → ${values.out}\n`);
    return 0;
  } finally {
    loaded.model.dispose();
  }
}
