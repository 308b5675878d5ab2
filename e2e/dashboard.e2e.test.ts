// The admin's view, end to end: a real coordinator serving the built dashboard, three headless
// hospitals as real processes, and Debian's Chromium. The admin signs in, starts a 3-round run from
// the form and watches it complete; the per-hospital panel lists all three. Screenshot in test-results/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '@fedcare/server';
import { generateHospital, toNdjson } from '@fedcare/shared/data';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'apps/cli/bin/fedcare.mjs');
const DIST = path.join(ROOT, 'apps/dashboard/dist');
const OUT = path.join(ROOT, 'test-results');
const ADMIN = 'fct_e2e_admin_token_0123456789';
const TOKENS: Record<string, string> = { H1: 'fct_e2e_h1_token_0123456789', H2: 'fct_e2e_h2_token_0123456789', H3: 'fct_e2e_h3_token_0123456789' };
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

describe('dashboard in Chromium', () => {
  let server: RunningServer;
  let browser: Browser;
  const clients: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(path.join(DIST, 'index.html'))) throw new Error(`dashboard not built: run \`npm run build:web\` (looked in ${DIST})`);
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-e2e-'));
    server = await startServer({
      port: 0,
      host: '127.0.0.1',
      db: path.join(dir, 'fedcare.db'),
      env: { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') },
      logLevel: 'warn',
      logStream: process.stderr,
      staticApps: [{ prefix: '/dashboard/', dir: DIST }],
    });
    for (const h of Object.keys(TOKENS)) {
      const file = path.join(dir, `${h}.ndjson`);
      writeFileSync(file, toNdjson(generateHospital(h, { seed: 21, patients: 60 }).records));
      clients.push(spawn(process.execPath, [BIN, 'client', '--server', server.url, '--hospital', h, '--data', file, '--quiet'], { stdio: 'ignore', env: { ...process.env, FEDCARE_TOKEN: TOKENS[h] } }));
    }
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of clients) c.kill('SIGTERM');
    await server?.close();
  });

  it('signs in, starts a 3-round run from the form and shows it complete with all hospitals', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 1800 } })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/dashboard/`);
    await page.getByLabel('Token').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const hospitals = page.getByRole('region', { name: 'Hospitals' });
    for (const h of ['H1', 'H2', 'H3']) await expect.poll(() => hospitals.getByText(h, { exact: true }).count(), { timeout: 60_000 }).toBeGreaterThan(0);

    const form = page.getByRole('region', { name: 'Run control' });
    await form.getByLabel('Rounds').fill('3');
    await form.getByLabel('Local epochs').fill('1');
    await form.getByLabel('Min clients').fill('3');
    await form.getByRole('button', { name: 'Start run' }).click();

    await expect.poll(() => page.getByTestId('last-round').textContent(), { timeout: 300_000, interval: 1000 }).toBe('3');
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000 }).toBe('completed');
    const perHospital = page.getByRole('region', { name: 'Per-hospital metrics' });
    for (const h of ['H1', 'H2', 'H3']) expect(await perHospital.getByRole('row', { name: new RegExp(`^${h}\\b`) }).count()).toBe(1);
    // metric values are on screen, and the run really happened on the coordinator
    const runs = await server.store.listRuns();
    expect(runs[0]?.status).toBe('completed');
    expect((await server.store.getRoundMetrics(runs[0]!.runId)).length).toBe(3);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'dashboard-run-complete.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 400_000);
});
