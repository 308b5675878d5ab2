// Bring-your-own tabular data in the browser: two hospital tabs each import a CSV (a generated
// admissions table with categories, missing values and a patient-code column) through the same file
// input as records, join, and a one-round tabular run with SecAgg+ starts over REST. The run
// completes with both tabs' metrics; no row of either CSV is on the wire (every WebSocket frame and
// request body the tabs send is searched for their patient codes and measurements).
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '@fedcare/server';
import type { FederationSummary } from '@fedcare/shared/fl';
import { dirichletPartition, isTabularSchema, toCsv, type TabularTable } from '@fedcare/shared/tabular';
import { generateTabularTable } from '../shared/src/testing/tabular';
import { CspWatch, TOKENS, launchChromium, screenshot, startE2eServer } from './support';

const HOSPITALS = ['H1', 'H2'] as const;

describe('tabular data in the hospital portal', () => {
  let server: RunningServer;
  let dir: string;
  let browser: Browser;
  let csp: CspWatch;
  const tables = new Map<string, TabularTable>();

  beforeAll(async () => {
    ({ server, dir } = await startE2eServer());
    csp = new CspWatch(server);
    const parts = dirichletPartition(generateTabularTable(300, 9), 'readmitted', 2, 1, 1);
    HOSPITALS.forEach((h, i) => {
      tables.set(h, parts[i] as TabularTable);
      writeFileSync(path.join(dir, `${h}.csv`), toCsv(parts[i] as TabularTable));
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('two tabs import a CSV each, join, and a tabular run with SecAgg+ completes; no row leaves a tab', async () => {
    const sent = new Map<string, string[]>();
    const pages: Page[] = [];
    for (const h of HOSPITALS) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 1600 } });
      const page = await context.newPage();
      pages.push(page);
      csp.watch(page);
      const out: string[] = [];
      sent.set(h, out);
      page.on('websocket', (ws) => ws.on('framesent', (f) => out.push(typeof f.payload === 'string' ? f.payload : f.payload.toString('latin1'))));
      context.on('request', (r) => {
        const body = r.postDataBuffer();
        if (body) out.push(body.toString('latin1'));
      });
      await page.goto(`${server.url}/hospital/?hospital=${h}`);
      await page.getByLabel('Hospital token').fill(TOKENS[h] as string);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('backend-select').selectOption('wasm');
      await page.getByTestId('import-input').setInputFiles(path.join(dir, `${h}.csv`));
      const rows = tables.get(h)!.rows.length;
      await expect.poll(() => page.getByText(new RegExp(`Table ${h}\\.csv in the worker \\(tabular runs\\): ${rows} rows`)).count(), { timeout: 60_000 }).toBe(1);
      expect(await page.getByTestId('table-stored').textContent()).toContain('8 columns (patient_code, site, age, sex, smoker, ward, lactate, readmitted)');
      // Scoring and personalisation are the risk model's: not offered for a table.
      expect(await page.getByRole('button', { name: /Score patients/ }).count()).toBe(0);
      await page.getByRole('button', { name: 'Join round' }).click();
    }
    expect(await server.grid.waitForClients(2, 60_000)).toBe(true);
    await server.coordinator.start(
      { task: 'tabular', tabular: { target: 'readmitted' }, rounds: 1, local_epochs: 2, batch_size: 16, learning_rate: 0.01, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2, secure_aggregation: 'secagg' },
      'e2e',
    );
    const summary = (await server.coordinator.idle()) as FederationSummary;
    expect(summary.status, summary.reason).toBe('completed');
    const [run] = await server.store.listRuns();
    const [round] = await server.store.getRoundMetrics(run!.runId);
    expect(round!.participation.filter((p) => p.stage === 'train' && p.status === 'ok').map((p) => p.hospitalId).sort()).toEqual([...HOSPITALS]);
    expect(round!.metrics.secure_aggregation).toBe(1);
    expect(round!.metrics.auc_roc).toBeGreaterThan(0.6);
    for (const h of HOSPITALS) expect(Number.isFinite(round!.perHospital[h]!.test_loss)).toBe(true);
    const schema = await server.store.getFeatureStats(run!.runId);
    if (!schema || !isTabularSchema(schema)) throw new Error(`run ${run!.runId} stored no tabular schema`);
    expect(schema.records).toBeGreaterThan(200);
    expect(schema.columns.find((c) => c.name === 'patient_code')).toEqual({ name: 'patient_code', kind: 'categorical', categories: ['(other)'] });
    expect(schema.columns.find((c) => c.name === 'ward')).toMatchObject({ kind: 'categorical' });

    // Nothing of a row on the wire: no patient code, no measurement with its decimals.
    for (const h of HOSPITALS) {
      const wire = sent.get(h)!.join('\n');
      expect(wire.length).toBeGreaterThan(1000);
      const t = tables.get(h)!;
      const lactate = t.columns.indexOf('lactate');
      for (const r of t.rows) {
        expect(wire.includes(r[0] as string), `${h} sent ${r[0]}`).toBe(false);
        const v = r[lactate] as string;
        if (/^\d+\.\d{2}$/.test(v) && Number(v) > 1) expect(wire.includes(`"${v}"`) || wire.includes(`,${v},`), `${h} sent lactate ${v}`).toBe(false);
      }
    }
    for (const [i, page] of pages.entries()) await screenshot(page, `portal-tabular-${HOSPITALS[i]}`);
    expect(csp.reports).toEqual([]);
    expect(csp.console).toEqual([]);
  }, 180_000);
});
