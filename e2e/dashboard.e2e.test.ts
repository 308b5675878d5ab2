// The admin's view, end to end: a real coordinator serving the built dashboard, three headless
// hospitals as real processes, and Debian's Chromium. The admin signs in, starts a 3-round run from
// the form and watches it complete; the per-hospital panel lists all three; a second run (FedProx)
// is then compared with the first in the run history. Screenshots in test-results/.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '@fedcare/server';
import { generateHospital, toNdjson } from '@fedcare/shared/data';
import { ADMIN, BIN, CspWatch, OUT, TOKENS, launchChromium, screenshot, seriousA11yViolations, startE2eServer } from './support';

describe('dashboard in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const clients: ChildProcess[] = [];
  let csp: CspWatch;
  let dataDir: string;

  beforeAll(async () => {
    const started = await startE2eServer();
    server = started.server;
    csp = new CspWatch(server);
    const dir = started.dir;
    dataDir = dir;
    for (const h of Object.keys(TOKENS)) {
      const file = path.join(dir, `${h}.ndjson`);
      writeFileSync(file, toNdjson(generateHospital(h, { seed: 21, patients: 60 }).records));
      clients.push(spawn(process.execPath, [BIN, 'client', '--server', server.url, '--hospital', h, '--data', file, '--quiet'], { stdio: 'ignore', env: { ...process.env, FEDCARE_TOKEN: TOKENS[h] } }));
    }
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of clients) c.kill('SIGTERM');
    await server?.close();
  });

  it('signs in, starts a 3-round run from the form and shows it complete with all hospitals', async () => {
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1800 } })).newPage();
    csp.watch(page);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/dashboard/`);
    await page.getByLabel('Token').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const hospitals = page.getByRole('region', { name: 'Hospitals' });
    for (const h of ['H1', 'H2', 'H3']) await expect.poll(() => hospitals.getByText(h, { exact: true }).count(), { timeout: 60_000 }).toBeGreaterThan(0);
    // what each hospital runs on, as it said at sign-in
    for (const h of ['H1', 'H2', 'H3']) expect(await hospitals.getByRole('row', { name: new RegExp(`^${h}\\b`) }).textContent()).toContain('node');

    const form = page.getByRole('region', { name: 'Run control' });
    await form.getByLabel('Rounds').fill('3');
    await form.getByLabel('Local epochs').fill('1');
    await form.getByLabel('Min clients').fill('3');
    await form.getByLabel('Sequence length').fill('12'); // the seed's 30 makes every LSTM step 2.5× longer
    await form.getByRole('button', { name: 'Start run' }).click();

    await expect.poll(() => page.getByTestId('last-round').textContent(), { timeout: 300_000, interval: 1000 }).toBe('3');
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000 }).toBe('completed');
    // the run history learns the end of the run from the push (dash:run), without a refresh
    const history = page.getByRole('region', { name: 'Run history' });
    await expect.poll(() => history.getByRole('row').nth(1).textContent(), { timeout: 10_000 }).toMatch(/completed.*3 \/ 3/);
    const perHospital = page.getByRole('region', { name: 'Per-hospital metrics' });
    for (const h of ['H1', 'H2', 'H3']) expect(await perHospital.getByRole('row', { name: new RegExp(`^${h}\\b`) }).count()).toBe(1);
    // metric values are on screen, and the run really happened on the coordinator
    const runs = await server.store.listRuns();
    expect(runs[0]?.status).toBe('completed');
    expect((await server.store.getRoundMetrics(runs[0]!.runId)).length).toBe(3);
    // Calibration: the pooled ECE, the temperature and each hospital's ECE of the last round, as stored.
    const last = (await server.store.getRoundMetrics(runs[0]!.runId)).at(-1)!;
    const calibration = await page.getByTestId('calibration').textContent();
    expect(calibration).toContain(`expected calibration error ${last.metrics.ece!.toFixed(3)}`);
    const t = last.metrics.temperature!;
    expect(calibration).toContain(`T = ${Number.isInteger(t) ? t : t.toFixed(2)},`);
    for (const h of ['H1', 'H2', 'H3']) expect(calibration).toContain(`${h} ${last.perHospital[h]!.ece!.toFixed(3)}`);
    expect(await page.getByRole('figure', { name: /Reliability diagram of round 3/ }).count()).toBe(1);
    await screenshot(page, 'dashboard-run-complete');
    expect(pageErrors).toEqual([]);
  }, 400_000);

  it('compares two past runs in the run history: one line per run, labelled by strategy, with each final value', async () => {
    const form = page.getByRole('region', { name: 'Run control' });
    await form.getByLabel('Strategy').selectOption('fedprox');
    await form.getByLabel('Rounds').fill('2');
    await form.getByRole('button', { name: 'Start run' }).click();
    const history = page.getByRole('region', { name: 'Run history' });
    await expect.poll(() => history.getByRole('row').nth(1).textContent(), { timeout: 300_000, interval: 1000 }).toMatch(/completed.*2 \/ 2/);
    const runs = await server.store.listRuns();
    expect(runs.map((r) => r.config.strategy).sort()).toEqual(['fedavg', 'fedprox']);
    for (const r of runs) await history.getByLabel(`Compare ${r.runId}`).check();
    const compared = history.getByLabel('Runs compared');
    const figure = compared.getByRole('figure', { name: 'Runs compared: AUC-ROC' });
    await expect.poll(() => figure.count(), { timeout: 10_000 }).toBe(1);
    // recharts draws one line per run, named in the legend by strategy and run id suffix
    await expect.poll(() => figure.locator('path.recharts-line-curve').count(), { timeout: 10_000 }).toBe(2);
    for (const r of runs) expect(await figure.textContent()).toContain(`${r.config.strategy} · no DP (${r.runId.slice(-8)})`);
    // the table's final values are the coordinator's last round of each run
    for (const r of runs) {
      const last = (await server.store.getRoundMetrics(r.runId)).at(-1)!;
      const label = `${r.config.strategy} · no DP (${r.runId.slice(-8)})`;
      const row = compared.getByRole('row').filter({ hasText: label });
      expect(await row.getByRole('cell').allTextContents()).toEqual([label, r.config.strategy === 'fedavg' ? '3' : '2', last.metrics.auc_roc!.toFixed(3)]);
    }
    await compared.getByLabel('Metric').selectOption('test_loss');
    await expect.poll(() => compared.getByRole('figure', { name: 'Runs compared: Test loss' }).count(), { timeout: 10_000 }).toBe(1);
    await screenshot(page, 'dashboard-runs-compared');
    expect(await seriousA11yViolations(page)).toEqual([]);
    // unticking one leaves a hint, not a one-line comparison
    await history.getByLabel(`Compare ${runs[0]!.runId}`).uncheck();
    await expect.poll(() => compared.getByText(/^Tick another run to compare/).count(), { timeout: 10_000 }).toBe(1);
    expect(pageErrors).toEqual([]);
  }, 400_000);

  it('onboards a hospital from the dashboard: creates its token (shown once), which signs in; revoking it refuses it', async () => {
    const panel = page.getByRole('region', { name: 'Credentials' });
    await panel.getByLabel('Hospital id').fill('H5');
    await panel.getByRole('button', { name: 'Create hospital token' }).click();
    const shown = panel.getByTestId('new-token');
    await expect.poll(() => shown.count(), { timeout: 10_000 }).toBe(1);
    const token = (await shown.textContent())!;
    expect(token).toMatch(/^fct_/);
    const whoami = () => fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(await (await whoami()).json()).toEqual({ role: 'hospital', hospital_id: 'H5' });
    expect(await panel.getByRole('link').getAttribute('href')).toBe(`${server.url}/hospital/?hospital=H5`);
    const [stored] = (await server.store.listTokens()).filter((t) => t.hospitalId === 'H5');
    expect(stored).toBeDefined();
    await expect.poll(() => panel.getByRole('row').filter({ hasText: stored!.tokenId }).count(), { timeout: 10_000 }).toBe(1);
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, 'dashboard-credentials');
    await panel.getByRole('button', { name: `Revoke ${stored!.tokenId}` }).click();
    await expect.poll(() => panel.getByText(`Token ${stored!.tokenId} revoked.`).count(), { timeout: 10_000 }).toBe(1);
    expect(await shown.count()).toBe(0); // the revoked token is no longer on screen
    expect((await whoami()).status).toBe(401);
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('fedcare report: the first run as one self-contained page in Chromium — every section, charts, the audit trail, no patient identifier; prints to PDF', async () => {
    const [first] = (await server.store.listRuns()).slice(-1); // newest first: the 3-round FedAvg run is last
    expect(first?.status).toBe('completed');
    const out = path.join(dataDir, 'report.html');
    const proc = spawn(process.execPath, [BIN, 'report', first!.runId.slice(-8), '--db', path.join(dataDir, 'fedcare.db'), '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise((resolve) => proc.on('exit', resolve)), stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained: no script, nothing fetched
    // The dashboard's Report button saves the same page, from the coordinator (GET /api/v1/runs/{id}/report).
    await page.getByRole('region', { name: 'Run history' }).getByRole('row').filter({ hasText: first!.runId }).getByRole('button', { name: 'Metrics' }).click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Report (HTML)' }).click()]);
    expect(download.suggestedFilename()).toBe(`fedcare-report-${first!.runId}.html`);
    const undated = (s: string) => s.replace(/Report generated \S+\./, 'Report generated —.');
    expect(undated(readFileSync(await download.path(), 'utf8'))).toBe(undated(html));
    const report = await browser.newPage();
    const requests: string[] = [];
    report.on('request', (r) => requests.push(r.url()));
    await report.goto(`file://${out}`);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    expect(await report.getByRole('heading', { level: 2 }).allTextContents()).toEqual(['Model card', 'Configuration', 'Metrics per round', 'Hospitals', 'Fairness', 'Calibration', 'Privacy', 'Participation and dropouts', 'Audit trail']);
    expect(await report.locator('#metrics-per-round svg').count()).toBe(1);
    expect(await report.locator('#metrics-per-round tbody tr').count()).toBe(3);
    expect(await report.locator('#hospitals tbody tr').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^H1/), expect.stringMatching(/^H2/), expect.stringMatching(/^H3/)]));
    // The audit trail names who joined during the run.
    const audit = await report.locator('#audit-trail').textContent();
    for (const h of ['H1', 'H2', 'H3']) expect(audit).toContain(`hospital:${h}`);
    expect(audit).toMatch(/train\.start/);
    // No patient identifier anywhere: the coordinator never had one.
    const text = await report.locator('body').textContent();
    for (const h of Object.keys(TOKENS)) {
      for (const r of generateHospital(h, { seed: 21, patients: 60 }).records) {
        expect(html.includes(r.patient_id) || text!.includes(r.patient_id), r.patient_id).toBe(false);
      }
    }
    expect(await seriousA11yViolations(report)).toEqual([]);
    const pdf = await report.pdf({ format: 'A4' });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    mkdirSync(OUT, { recursive: true });
    writeFileSync(path.join(OUT, 'run-report.pdf'), pdf);
    await screenshot(report, 'run-report');
    await report.close();
  }, 120_000);

  it('imports a run configuration file into the run form (examples/dp.yaml) and exports the form as the same YAML; a bad file names its key and line', async () => {
    const form = page.getByRole('region', { name: 'Run control' });
    const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples');
    await form.getByLabel('Import run configuration (YAML or JSON)').setInputFiles(path.join(examples, 'dp.yaml'));
    await expect.poll(() => form.getByRole('status').first().textContent()).toBe('dp.yaml imported');
    expect(await form.getByLabel('Differential privacy').isChecked()).toBe(true);
    expect(await form.getByLabel('Noise multiplier σ').inputValue()).toBe('2.6');
    expect(await form.getByLabel('Local epochs').inputValue()).toBe('10');
    const [download] = await Promise.all([page.waitForEvent('download'), form.getByRole('button', { name: 'Export as YAML' }).click()]);
    expect(download.suggestedFilename()).toBe('fedcare-run.yaml');
    const exported = readFileSync(await download.path(), 'utf8');
    // What the CLI would run from it: the example's settings.
    const { parseRunConfigFile, resolveRunConfig } = await import('@fedcare/shared/protocol');
    const back = resolveRunConfig({ defaults: {}, file: parseRunConfigFile('fedcare-run.yaml', exported) });
    const original = resolveRunConfig({ defaults: {}, file: parseRunConfigFile('dp.yaml', readFileSync(path.join(examples, 'dp.yaml'), 'utf8')) });
    for (const k of ['model', 'rounds', 'local_epochs', 'batch_size', 'learning_rate', 'dp'] as const) expect(back[k], k).toEqual(original[k]);
    const bad = path.join(dataDir, 'bad-run.yaml');
    writeFileSync(bad, 'rounds: 3\nlocal_epochz: 2\n');
    await form.getByLabel('Import run configuration (YAML or JSON)').setInputFiles(bad);
    await expect.poll(() => form.getByRole('alert').textContent()).toBe('invalid run configuration: bad-run.yaml:2: local_epochz: not a run configuration key');
    expect(await form.getByLabel('Noise multiplier σ').inputValue()).toBe('2.6'); // the form kept what it had
  });

  it('met no Content-Security-Policy violation (none reported, none logged), and the dashboard is served with its policy and nosniff', async () => {
    const headers = (await fetch(`${server.url}/dashboard/`)).headers;
    expect(headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(csp.reports).toEqual([]);
    expect(csp.console).toEqual([]);
  });
});
