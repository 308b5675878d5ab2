// `fedcare serve` as a deployment runs it, as real processes: configured by the environment alone,
// over TLS with a private CA (a headless hospital trusting it with --ca completes a round over WSS),
// and bad settings refused in one line before anything is written.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateHospital, toNdjson } from '@fedcare/shared/data';
import { makeTestCertificates } from '@fedcare/server/testing/tls';
import { fedcareProcess, waitFor, type Proc } from './testing-processes';

const ADMIN = 'admin-token-0123456789abcdef';
const H1 = 'h1-token-0123456789abcdef';
const procs: Proc[] = [];
afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function start(args: string[], env: Record<string, string>): Proc {
  const p = fedcareProcess(args, env);
  procs.push(p);
  return p;
}

/** GET over HTTPS trusting `ca`; the status and headers (undefined while nothing answers). */
function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

describe('fedcare serve in a deployment', () => {
  it('over TLS from the environment alone: HSTS, /readyz, and a hospital trusting the private CA (--ca) completes a round over WSS', async () => {
    const certs = makeTestCertificates();
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-serve-tls-'));
    writeFileSync(path.join(dir, 'H1.ndjson'), toNdjson(generateHospital('H1', { seed: 5, patients: 40 }).records));
    const port = await freePort();
    const server = start(['serve'], {
      PORT: String(port),
      FEDCARE_HOST: '127.0.0.1',
      FEDCARE_DB: path.join(dir, 'fedcare.db'),
      FEDCARE_TLS_CERT: certs.certFile,
      FEDCARE_TLS_KEY: certs.keyFile,
      FEDCARE_ADMIN_TOKEN: ADMIN,
      FEDCARE_HOSPITAL_TOKENS: `H1:${H1}`,
      FEDCARE_LOG_LEVEL: 'warn',
    });
    const url = `https://localhost:${port}`;
    const ready = await waitFor(async () => {
      const r = await httpsGet(`${url}/readyz`, certs.ca);
      return r?.status === 200 ? r : undefined;
    }, 60_000, `the coordinator on ${url} (${server.output()})`);
    expect(ready.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(JSON.parse(ready.body)).toEqual({ ready: true });
    expect((await httpsGet(`${url}/api/v1/status`, certs.ca))?.status).toBe(401);

    const hospital = start(['client', '--server', url, '--ca', certs.caFile, '--hospital', 'H1', '--data', path.join(dir, 'H1.ndjson'), '--once', '--quiet'], { FEDCARE_TOKEN: H1 });
    await waitFor(async () => {
      const r = await httpsGet(`${url}/api/v1/status`, certs.ca, { authorization: `Bearer ${ADMIN}` });
      return r && (JSON.parse(r.body) as { active_clients: string[] }).active_clients.includes('H1') ? true : undefined;
    }, 60_000, `H1 to connect over WSS (${hospital.output()})`);
    const started = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${url}/api/v1/train/start`, { method: 'POST', ca: certs.ca, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ config: { rounds: 1, local_epochs: 1, batch_size: 16, seq_len: 8, min_fit_clients: 1, min_evaluate_clients: 1, min_available_clients: 1 } }));
    });
    const runId = (JSON.parse(started) as { run_id: string }).run_id;
    expect(await hospital.exited).toBe(0); // --once: it leaves when the run ends
    const runs = await httpsGet(`${url}/api/v1/runs`, certs.ca, { authorization: `Bearer ${ADMIN}` });
    expect((JSON.parse(runs!.body) as { runs: { run_id: string; status: string }[] }).runs.find((r) => r.run_id === runId)?.status).toBe('completed');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 180_000);

  it('refuses bad settings in one line naming them, and writes nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-serve-bad-'));
    const db = path.join(dir, 'sub', 'fedcare.db');
    const base = { FEDCARE_DB: db, PORT: '0', FEDCARE_ADMIN_TOKEN: ADMIN };
    const cases: [Record<string, string>, string[], RegExp, number][] = [
      [{ FEDCARE_TLS_CERT: path.join(dir, 'missing.pem'), FEDCARE_TLS_KEY: path.join(dir, 'missing.key') }, [], /^fedcare serve: FEDCARE_TLS_CERT: cannot read .*missing\.pem: ENOENT$/m, 2],
      [{}, ['--tls-cert', path.join(dir, 'x.pem')], /TLS needs both a certificate and a key: --tls-key \(FEDCARE_TLS_KEY\) is missing/, 2],
      [{ PORT: '70000' }, [], /PORT must be a port 0–65535, got "70000"/, 2],
      [{ FEDCARE_STORE: 'mongo' }, [], /FEDCARE_STORE must be sqlite or aws, got "mongo"/, 2],
      [{ FEDCARE_STORE: 'aws' }, [], /the aws store needs FEDCARE_S3_BUCKET/, 2],
      [{ FEDCARE_ALLOWED_ORIGINS: 'evil.example' }, [], /FEDCARE_ALLOWED_ORIGINS: "evil\.example" is not an origin/, 2],
      [{ FEDCARE_CLOUDWATCH_EMF: 'maybe' }, [], /FEDCARE_CLOUDWATCH_EMF must be 1\/true or 0\/false, got "maybe"/, 2],
      [{ FEDCARE_DRAIN_SECONDS: '-1' }, [], /FEDCARE_DRAIN_SECONDS must be seconds 0–3600, got "-1"/, 2],
      // a DynamoDB endpoint nobody answers: serve exits non-zero naming it (and is never ready)
      [{ FEDCARE_STORE: 'aws', FEDCARE_S3_BUCKET: 'fedcare-models', AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' }, [], /cannot open the aws store: .*127\.0\.0\.1:9/, 1],
    ];
    for (const [env, args, message, code] of cases) {
      const p = start(['serve', ...args], { ...base, ...env });
      expect(await p.exited, p.output()).toBe(code);
      expect(p.output(), JSON.stringify(env)).toMatch(message);
      expect(p.output()).not.toMatch(/internal error|\n\s+at /);
    }
    expect(existsSync(db)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  }, 120_000);

  it('--config and --set: the run defaults for runs started over REST (the request wins); a bad key stops serve naming its line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-serve-config-'));
    const cfg = path.join(dir, 'run.yaml');
    writeFileSync(cfg, 'strategy: fedprox\nproximal_mu: 0.05\nrounds: 4\nwait_for_clients_s: 600\n');
    const bad = start(['serve', '--config', cfg, '--set', 'roundz=3'], { FEDCARE_DB: path.join(dir, 'bad.db'), PORT: '0', FEDCARE_ADMIN_TOKEN: ADMIN });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toMatch(/invalid run configuration: --set roundz: not a run configuration key/);
    writeFileSync(path.join(dir, 'typo.yaml'), 'strategy: fedprox\nlocal_epochz: 2\n');
    const typo = start(['serve', '--config', path.join(dir, 'typo.yaml')], { FEDCARE_DB: path.join(dir, 'bad.db'), PORT: '0', FEDCARE_ADMIN_TOKEN: ADMIN });
    expect(await typo.exited).toBe(2);
    expect(typo.output()).toMatch(/typo\.yaml:2: local_epochz: not a run configuration key/);
    expect(existsSync(path.join(dir, 'bad.db'))).toBe(false);

    const port = await freePort();
    const p = start(['serve', '--config', cfg, '--set', 'rounds=6'], { FEDCARE_DB: path.join(dir, 'fedcare.db'), PORT: String(port), FEDCARE_ADMIN_TOKEN: ADMIN });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000, 'serve ready');
    const post = (config: Record<string, unknown>) => fetch(`${url}/api/v1/train/start`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ config }) });
    const res = await post({ local_epochs: 2 });
    expect(res.status).toBe(200);
    const started = (await res.json()) as { run_id: string; config: Record<string, unknown> };
    // file (strategy, proximal_mu) < --set (rounds) < the request (local_epochs); schema defaults for the rest
    expect(started.config).toMatchObject({ strategy: 'fedprox', proximal_mu: 0.05, rounds: 6, local_epochs: 2, batch_size: 32 });
    const stop = await fetch(`${url}/api/v1/train/stop`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: '{}' });
    expect(stop.status).toBe(200);
    const over = await post({ rounds: 2, strategy: 'fedavg' });
    expect(((await over.json()) as { config: Record<string, unknown> }).config).toMatchObject({ strategy: 'fedavg', rounds: 2, proximal_mu: 0.05 });
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }, 120_000);
});
