/**
 * What the e2e suites share: Debian's Chromium with the flags DEVELOPERS.md lists (and WebGPU on), a real
 * coordinator serving the built web apps, fixed test tokens, screenshots in test-results/, and an
 * axe-core scan.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '@fedcare/server';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'apps/cli/bin/fedcare.mjs');
export const OUT = path.join(ROOT, 'test-results');
export const ADMIN = 'fct_e2e_admin_token_0123456789';
export const TOKENS: Record<string, string> = { H1: 'fct_e2e_h1_token_0123456789', H2: 'fct_e2e_h2_token_0123456789', H3: 'fct_e2e_h3_token_0123456789' };
// --enable-unsafe-webgpu: Chromium on Linux exposes WebGPU only with it (on Windows, macOS and
// ChromeOS it is on by default); here the adapter is SwiftShader, a software one.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'];
const APPS = [
  { prefix: '/dashboard/', dir: path.join(ROOT, 'apps/dashboard/dist') },
  { prefix: '/hospital/', dir: path.join(ROOT, 'apps/hospital-portal/dist') },
];

export async function startE2eServer(): Promise<{ server: RunningServer; dir: string }> {
  for (const app of APPS) {
    if (!existsSync(path.join(app.dir, 'index.html'))) throw new Error(`${app.prefix} not built: run \`npm run build:web\` (looked in ${app.dir})`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-e2e-'));
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    db: path.join(dir, 'fedcare.db'),
    env: { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') },
    logLevel: 'warn',
    logStream: process.stderr,
    staticApps: APPS,
  });
  return { server, dir };
}

/**
 * Content-Security-Policy violations, as the coordinator received them (report-uri) and as the
 * browser logged them in any page or worker: an e2e suite fails on any.
 */
export class CspWatch {
  readonly reports: unknown[] = [];
  readonly console: string[] = [];

  constructor(server: RunningServer) {
    server.events.on('cspViolation', (r: unknown) => this.reports.push(r));
  }

  /** Listens to a page and every worker it starts. */
  watch(page: Page): void {
    const note = (text: string) => {
      if (/Content Security Policy|Content-Security-Policy/i.test(text)) this.console.push(text);
    };
    page.on('console', (m) => note(m.text()));
    page.on('worker', (w) => w.on('console', (m) => note(m.text())));
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** Runs axe-core (WCAG 2 A/AA rules) on the page; returns the serious and critical violations. */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern (an injected <script>
  // would be refused: the apps allow no inline script).
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target, ...(n.failureSummary ? { failureSummary: n.failureSummary } : {}) })) }));
}
