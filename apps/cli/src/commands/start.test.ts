// `fedcare start` as a person runs it (what `npm start` ends in): it must print the dashboard and,
// per hospital, a portal URL, and the name of the 0600 file whose tokens really sign that hospital
// in — never a token itself; the portal is served.
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { fedcareProcess, waitFor, type Proc } from '../testing-processes';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

describe('fedcare start --no-agents --no-run', () => {
  let proc: Proc | undefined;
  afterAll(async () => {
    proc?.child.kill('SIGKILL');
  });

  it('prints the dashboard URL, a portal URL per hospital (H1–H3 and the portal-only H4) and the 0600 tokens file (no token), serves both apps, and stops on SIGINT', async () => {
    expect(existsSync(path.join(ROOT, 'apps/hospital-portal/dist/index.html')), 'portal built by npm run build:web').toBe(true);
    const home = path.join(mkdtempSync(path.join(tmpdir(), 'fc-start-')), 'home');
    proc = fedcareProcess(['start', '--home', home, '--port', '0', '--no-agents', '--no-run']);
    const out = await waitFor(() => (/credentials file/.test(proc!.output()) ? proc!.output() : undefined), 60_000, 'the start banner');
    const base = /fedcare coordinator\s+(http:\/\/\S+)/.exec(out)?.[1];
    expect(base).toMatch(/^http:\/\/localhost:\d+$/);
    expect(out).toContain(`${base}/dashboard/`);
    const file = path.join(home, 'tokens.json');
    expect(out).toContain(`credentials file    ${file}`);
    const creds = JSON.parse(readFileSync(file, 'utf8')) as { admin: string; hospitals: Record<string, string> };
    for (const token of [creds.admin, ...Object.values(creds.hospitals)]) expect(out, 'no token is printed').not.toContain(token);
    const portals = [...out.matchAll(/ (H\d)\s+(http:\/\/\S+\/hospital\/\?hospital=H\d)\n/g)].map((m) => ({ h: m[1], url: m[2], token: creds.hospitals[m[1] as string] }));
    expect(portals.map((p) => p.h)).toEqual(['H1', 'H2', 'H3', 'H4']);
    for (const p of portals) {
      expect(p.url).toBe(`${base}/hospital/?hospital=${p.h}`);
      const who = await fetch(`${base}/api/v1/whoami`, { headers: { authorization: `Bearer ${p.token}` } });
      expect(await who.json()).toEqual({ role: 'hospital', hospital_id: p.h });
    }
    const page = await fetch(portals[0]!.url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('fedcare hospital portal');
    expect((await fetch(`${base}/dashboard/`)).status).toBe(200);
    // no agents: nobody is connected
    const status = (await (await fetch(`${base}/api/v1/status`, { headers: { authorization: `Bearer ${portals[0]!.token}` } })).json()) as { active_clients: string[] };
    expect(status.active_clients).toEqual([]);
    // Secrets and patient data: 0600 files in a 0700 home, from their creation.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    for (const f of ['fedcare.db', 'data/H1.ndjson']) expect({ f, mode: statSync(path.join(home, f)).mode & 0o777 }).toEqual({ f, mode: 0o600 });
    expect(statSync(path.join(home, 'data')).mode & 0o777).toBe(0o700);
    proc.child.kill('SIGINT');
    expect(await proc.exited).toBe(0);
  }, 120_000);
});
