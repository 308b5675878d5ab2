// Tabular runs over a real coordinator (port 0, real Socket.IO and SQLite) with in-process
// hospitals: sums no rows could make are refused by name and the statistics are the honest
// hospitals'; a hospital holding patient records, not a table, declines the tabular run and the
// others carry it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateHospital } from '@fedcare/shared/data';
import { describeTable, dirichletPartition, finalizeSchema, isTabularSchema, mergeShapes, splitTable, summarise, summaryLength, type TabularSchema, type TabularTable } from '@fedcare/shared/tabular';
import { startServer, type RunningServer } from '@fedcare/server';
import type { StageResult } from '@fedcare/shared/protocol';
import { generateTabularTable } from '../../../shared/src/testing/tabular';
import { startHospital, type HeadlessHospital } from './hospital';

const TOKENS = { H1: 'h1-token-0123456789abcdef', H2: 'h2-token-0123456789abcdef', H3: 'h3-token-0123456789abcdef' };
const ADMIN = 'admin-token-0123456789abcdef';
const TASK = { target: 'readmitted', min_category_count: 5 };
const tables = dirichletPartition(generateTabularTable(600, 8), 'readmitted', 3, 1, 2);
const tableOf = (h: string) => tables[Number(h.slice(1)) - 1] as TabularTable;

/** The schema the honest hospitals' training splits make (as the coordinator would from them alone). */
function schemaOf(hospitals: string[]): TabularSchema {
  const train = hospitals.map((h) => splitTable(tableOf(h)).train);
  const layout = mergeShapes(train.map((t) => describeTable(t, TASK)), TASK);
  const total = new Float64Array(summaryLength(layout));
  for (const t of train) summarise(t, layout).forEach((v, i) => (total[i]! += v));
  return finalizeSchema(layout, total);
}

let server: RunningServer | undefined;
const hospitals: HeadlessHospital[] = [];
afterEach(async () => {
  for (const h of hospitals.splice(0)) h.close();
  await server?.close();
  server = undefined;
});

async function run(who: Record<string, { table?: boolean; tamper?: (r: StageResult) => StageResult }>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-tabfed-'));
  const env = { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') };
  server = await startServer({ port: 0, host: '127.0.0.1', db: path.join(dir, 'fedcare.db'), env, logLevel: 'silent' });
  for (const [h, o] of Object.entries(who)) {
    const token = TOKENS[h as keyof typeof TOKENS];
    hospitals.push(
      startHospital({
        server: server.url,
        hospitalId: h,
        token,
        records: o.table ? [] : generateHospital(h, { seed: 3, patients: 20 }).records,
        ...(o.table ? { table: tableOf(h) } : {}),
        ...(o.tamper ? { tamper: o.tamper } : {}),
      }),
    );
  }
  expect(await server.grid.waitForClients(3, 30_000)).toBe(true);
  const { runId } = await server.coordinator.start({ task: 'tabular', tabular: { target: 'readmitted' }, rounds: 1, local_epochs: 1, batch_size: 16, learning_rate: 0.01, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2, stage_timeout_s: 60 }, 'test');
  const summary = await server.coordinator.idle();
  const schema = await server.store.getFeatureStats(runId);
  if (!schema || !isTabularSchema(schema)) throw new Error(`run ${runId} stored no tabular schema`);
  return { runId, summary, schema };
}

describe('tabular preprocessing over Socket.IO', () => {
  it('refuses a hospital whose sums claim more rows than it declared, by name; the schema is the honest hospitals\'', async () => {
    const inflate = (r: StageResult): StageResult => (r.stage === 'preprocess' && r.tabular_sums ? { ...r, tabular_sums: r.tabular_sums.map((v) => v * 10) } : r);
    const { summary, schema } = await run({ H1: { table: true }, H2: { table: true }, H3: { table: true, tamper: inflate } });
    expect(summary?.status, summary?.reason).toBe('completed');
    const want = schemaOf(['H1', 'H2']);
    expect(schema.records).toBe(want.records);
    expect(schema.class_counts).toEqual(want.class_counts);
    schema.columns.forEach((c, i) => {
      const w = want.columns[i]!;
      if (c.kind === 'numeric' && w.kind === 'numeric') expect(c.mean).toBeCloseTo(w.mean, 9);
      else expect(c).toEqual(w);
    });
    const audit = await server!.store.listAudit({ limit: 1000 });
    const refused = audit.filter((e) => e.actor === 'hospital:H3' && e.action === 'preprocess.refused');
    expect(refused).toHaveLength(1);
    expect(JSON.stringify(refused[0]!.detail)).toMatch(/OUT_OF_BOUNDS: tabular_sums refused: \d+ rows, at most \d+ declared/);
  }, 120_000);

  it('a hospital with patient records, not a table, declines; the two with tables carry the run', async () => {
    const { runId, summary } = await run({ H1: { table: true }, H2: { table: true }, H3: {} });
    expect(summary?.status, summary?.reason).toBe('completed');
    const [round] = await server!.store.getRoundMetrics(runId);
    expect(round!.participation.filter((p) => p.stage === 'train' && p.status === 'ok').map((p) => p.hospitalId).sort()).toEqual(['H1', 'H2']);
    expect(Number.isFinite(round!.metrics.auc_roc)).toBe(true);
  }, 120_000);
});
