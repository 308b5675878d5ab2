/**
 * `fedcare start` (what `npm start` runs): the main job on embedded defaults, no cloud. For now:
 * generate the three hospitals if the data directory has none, then a short centralized training
 * run with a progress bar and the test metrics per hospital. Later: the full federation.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KNOWN_HOSPITALS } from '@fedcare/shared/data';
import { generateToDir } from './generate';
import { printReport, trainCentral } from './train';
import { loadRecords } from '../records-io';
import { initTf } from '../tf-node';

const HELP = `usage: fedcare start [--home .fedcare] [--epochs 3] [--seed 42]

Generates H1–H3 into HOME/data (once) and trains the model on the pooled data.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      home: { type: 'string', default: process.env.FEDCARE_HOME ?? '.fedcare' },
      epochs: { type: 'string', default: '3' },
      seed: { type: 'string', default: '42' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const dataDir = path.join(values.home, 'data');
  if (!existsSync(dataDir) || !readdirSync(dataDir).some((f) => f.endsWith('.ndjson'))) {
    process.stderr.write(`generating hospitals ${KNOWN_HOSPITALS.join(', ')} into ${dataDir} …\n`);
    for (const s of generateToDir(KNOWN_HOSPITALS, Number(values.seed), dataDir)) {
      process.stderr.write(`  ${s.hospital}: ${s.patients} patients, mean age ${s.mean_age.toFixed(1)}, readmission ${s.readmission_rate.toFixed(3)}\n`);
    }
  } else {
    process.stderr.write(`using existing data in ${dataDir}\n`);
  }
  const backend = await initTf('wasm');
  const report = await trainCentral({
    records: loadRecords(dataDir),
    epochs: Number(values.epochs),
    seed: Number(values.seed),
    seqLen: 30,
    batchSize: 32,
    learningRate: 1e-3,
    progress: true,
  });
  report.backend = backend;
  printReport(report);
  return 0;
}
