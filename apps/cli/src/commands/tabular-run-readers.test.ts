// A stored tabular run (task tabular: an MLP and the run's schema in the stats slot) is never read
// as the risk model: `fedcare export` (both formats) and `fedcare predict` refuse it by name, and
// `fedcare report` shows its MLP and schema.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@fedcare/server';
import { generateHospital, toNdjson } from '@fedcare/shared/data';
import { storedBundle, TABULAR_BUNDLE_FORMAT } from '@fedcare/shared/fl';
import { storeTabularRun } from '../../../../shared/src/testing/tabular-run';
import { initTf } from '../tf-node';
import { run as exportRun } from './export';
import { run as predictRun } from './predict';
import { run as reportRun } from './report';

const RUN = 'tab-run-1';
let dir: string;
let db: string;
let schemaSha: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fc-tabular-readers-'));
  db = path.join(dir, 'fedcare.db');
  const store = openSqliteStore(db);
  try {
    await storeTabularRun(store, RUN);
    const run = (await store.getRun(RUN))!;
    const stored = await storedBundle(store, run, await store.getRoundMetrics(RUN), 'latest');
    if (!('tabular' in stored)) throw new Error('the stored tabular run did not read back as one');
    schemaSha = stored.tabular.schema_sha256;
    // What the REST model route hands out for it, as a hospital would save it.
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(stored.tabular));
    writeFileSync(path.join(dir, 'weights.bin'), stored.weights);
  } finally {
    await store.close();
  }
  await initTf('wasm');
});

describe('a tabular run, read by the risk model commands', () => {
  it.each(['fedcare', 'onnx'])('fedcare export --format %s refuses it, naming the run and why', async (format) => {
    await expect(exportRun(['--db', db, '--run', RUN, '--out', path.join(dir, `out-${format}`), '--format', format])).rejects.toThrow(
      new RegExp(`run ${RUN} is a tabular run: fedcare export --format ${format} supports the risk model only`),
    );
  });

  it('fedcare predict refuses its model (fedcare-tabular-model/1) before reading any record', async () => {
    const data = path.join(dir, 'records.ndjson');
    writeFileSync(data, toNdjson(generateHospital('H1', { seed: 3, patients: 5 }).records));
    expect(JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')).format).toBe(TABULAR_BUNDLE_FORMAT);
    await expect(predictRun(['--model', dir, '--data', data, '--out', path.join(dir, 'scores.csv')])).rejects.toThrow(new RegExp(`run ${RUN} is a tabular run: fedcare predict supports the risk model only`));
  });

  it('fedcare report shows its MLP, target, classes and columns (never the risk model card)', async () => {
    const out = path.join(dir, 'report.html');
    expect(await reportRun([RUN, '--db', db, '--out', out])).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('Tabular model <code>mlp ');
    expect(html).toContain(schemaSha);
    expect(html).toMatch(/Target <code>readmitted<\/code>/);
    for (const column of ['age', 'ward', 'lactate']) expect(html).toContain(`<td>${column}</td>`);
    expect(html).not.toContain('Intended use');
  });
});
