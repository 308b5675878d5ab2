/**
 * `npm run bench:browser`: training throughput in Debian's Chromium, in the portal's own training
 * worker (shared/src/train/throughput.ts, the same measurement as `fedcare bench --only train`), on
 * WASM with 1 thread and with every core (the portal is cross-origin isolated), on WebGL and on
 * WebGPU (here a SwiftShader software adapter: a floor, not a claim). One JSON object per line
 * (`bench: "train_browser"`), then a `train_browser_threads` line with the thread speed-up. Asserts
 * nothing about time.
 *
 *   npx tsx e2e/bench-browser.ts [--T 30] [--batch 32] [--steps 6] [--warmup 2] [--backends wasm,webgl,webgpu]
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Browser } from 'playwright-core';
import type { Throughput } from '@fedcare/shared/train';
import { launchChromium, startE2eServer, TOKENS } from './support';

interface Case {
  backend: 'wasm' | 'webgl' | 'webgpu';
  threads?: number;
}

/** Opens the portal (H1, the given backend and thread count), waits for the backend, measures in its worker. */
async function measure(browser: Browser, url: string, c: Case, opts: { T: number; batch: number; steps: number; warmup: number }): Promise<Throughput & { detail: string; threads: number | null }> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('worker', (w) => w.on('console', (m) => log.push(`worker: ${m.text()}`)));
    await page.goto(`${url}/hospital/?hospital=H1${c.threads ? `&threads=${c.threads}` : ''}`);
    await page.getByLabel('Hospital token').fill(TOKENS.H1!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const select = page.getByTestId('backend-select');
    await select.waitFor();
    await select.selectOption(c.backend);
    const shown = page.getByTestId('backend');
    await page
      .waitForFunction((want) => document.querySelector('[data-testid="backend"]')?.textContent === want, c.backend, { timeout: 120_000 })
      .catch(async (e: unknown) => {
        const state = await page.locator('main').innerText().catch(() => '');
        throw new Error(`the portal did not start ${c.backend}: ${(e as Error).message}\n${state.slice(0, 2000)}\n${log.join('\n')}`);
      });
    const detail = (await page.getByTestId('backend-detail').textContent())?.replace(/^ — /, '') ?? '';
    const threadsAttr = await shown.getAttribute('data-threads');
    const worker = page.workers().find((w) => w.url().includes('training.worker'));
    if (!worker) throw new Error('no training worker in the portal tab');
    const r = await worker.evaluate(
      (o) => (self as unknown as { fedcareTestHooks: { benchTrain(x: typeof o): Promise<Throughput> } }).fedcareTestHooks.benchTrain(o),
      { T: opts.T, batch: opts.batch, steps: opts.steps, warmup: opts.warmup },
    );
    return { ...r, detail, threads: threadsAttr ? Number(threadsAttr) : null };
  } finally {
    await context.close();
  }
}

const { values } = parseArgs({
  options: {
    T: { type: 'string', default: '30' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    backends: { type: 'string', default: 'wasm,webgl,webgpu' },
  },
});
const opts = { T: Number(values.T), batch: Number(values.batch), steps: Number(values.steps), warmup: Number(values.warmup) };
const backends = values.backends.split(',').map((b) => b.trim());
const cores = availableParallelism();
const cases: Case[] = [];
if (backends.includes('wasm')) {
  cases.push({ backend: 'wasm', threads: 1 });
  if (cores > 1) cases.push({ backend: 'wasm', threads: cores });
}
if (backends.includes('webgl')) cases.push({ backend: 'webgl' });
if (backends.includes('webgpu')) cases.push({ backend: 'webgpu' });

const { server } = await startE2eServer();
const browser = await launchChromium();
const byThreads = new Map<number, number>();
try {
  for (const c of cases) {
    process.stderr.write(`bench:browser: ${c.backend}${c.threads ? ` on ${c.threads} thread(s)` : ''} …\n`);
    const r = await measure(browser, server.url, c, opts);
    if (c.backend === 'wasm' && r.threads != null) byThreads.set(r.threads, r.samples_per_s);
    process.stdout.write(`${JSON.stringify({ bench: 'train_browser', browser: `Chromium ${browser.version()}`, machine_cores: cores, ...r })}\n`);
  }
  const one = byThreads.get(1);
  const many = [...byThreads.entries()].filter(([t]) => t > 1).sort((a, b) => b[0] - a[0])[0];
  if (one && many) {
    process.stdout.write(`${JSON.stringify({ bench: 'train_browser_threads', T: opts.T, batch: opts.batch, threads: many[0], samples_per_s_1: one, samples_per_s_n: many[1], speedup: many[1] / one })}\n`);
  }
} finally {
  await browser.close();
  await server.close();
}
