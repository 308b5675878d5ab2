// What a coordinator tells browsers and whom it answers, against real servers on port 0: the
// security headers of each surface, browser origins (REST and Socket.IO, own / listed / foreign),
// /healthz and /readyz, CSP reports, and TLS (1.3 offered, 1.1 refused, HSTS, WSS).
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_NAMESPACE } from '@fedcare/shared/protocol';
import { parseAllowedOrigins } from './security';
import type { RunningServer } from './server';
import { ADMIN_TOKEN, startTestServer } from './testing/fake-hospital';
import { makeTestCertificates, type TestCertificates } from './testing/tls';

/** The CSP of a response as directive → sources. */
function csp(headers: Headers): Record<string, string[]> {
  const value = headers.get('content-security-policy') ?? '';
  return Object.fromEntries(
    value
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([name, ...sources]) => [name as string, sources]),
  );
}

/** Socket.IO connect as a browser page of `origin` would (the Origin header), with a valid token. */
function socketFrom(url: string, origin: string | undefined, transport: 'websocket' | 'polling'): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = io(`${url}${DASHBOARD_NAMESPACE}`, {
      auth: { token: ADMIN_TOKEN },
      transports: [transport],
      reconnection: false,
      ...(origin ? { extraHeaders: { origin } } : {}),
    });
    socket.on('connect', () => {
      socket.close();
      resolve('connected');
    });
    socket.on('connect_error', (e) => {
      socket.close();
      resolve(e.message);
    });
  });
}

describe('security headers, origins and health on a plain-HTTP coordinator', () => {
  let server: RunningServer;
  let web: string;
  const violations: unknown[] = [];

  beforeAll(async () => {
    web = path.join(makeTestCertificates().dir, 'web');
    for (const app of ['hospital', 'dashboard']) {
      mkdirSync(path.join(web, app), { recursive: true });
      writeFileSync(path.join(web, app, 'index.html'), `<!doctype html><title>${app}</title>`);
    }
    server = await startTestServer({}, {
      allowedOrigins: ['https://dashboard.example.org'],
      staticApps: [
        { prefix: '/hospital/', dir: path.join(web, 'hospital') },
        { prefix: '/dashboard/', dir: path.join(web, 'dashboard') },
      ],
    });
    server.events.on('cspViolation', (r: unknown) => violations.push(r));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('the portal: a CSP that lets WASM and its worker run (never unsafe-inline or unsafe-eval), cross-origin isolated, nosniff, no referrer, no framing', async () => {
    const res = await fetch(`${server.url}/hospital/`);
    expect(res.status).toBe(200);
    const p = csp(res.headers);
    expect(p['default-src']).toEqual(["'none'"]);
    expect(p['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(p['worker-src']).toEqual(["'self'"]);
    expect(p['connect-src']).toEqual(["'self'"]);
    expect(p['frame-ancestors']).toEqual(["'none'"]);
    expect(p['object-src']).toEqual(["'none'"]);
    expect(p['report-uri']).toEqual(['/csp-report']);
    expect(res.headers.get('content-security-policy')).not.toMatch(/'unsafe-inline'|'unsafe-eval'/);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    // plain HTTP (TLS ends at a load balancer): no HSTS from here
    expect(res.headers.get('strict-transport-security')).toBeNull();
  });

  it("the training worker's script: the portal's policy plus 'unsafe-eval' (node-seal's bindings) and blob: workers and scripts (TF.js's WASM threads), for that script only", async () => {
    mkdirSync(path.join(web, 'hospital', 'assets'), { recursive: true });
    writeFileSync(path.join(web, 'hospital', 'assets', 'training.worker-AbC_12-x.js'), 'export {};');
    writeFileSync(path.join(web, 'hospital', 'assets', 'index-AbC.js'), 'export {};');
    const worker = await fetch(`${server.url}/hospital/assets/training.worker-AbC_12-x.js`);
    expect(worker.status).toBe(200);
    expect(csp(worker.headers)['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'", "'unsafe-eval'", 'blob:']);
    expect(csp(worker.headers)['worker-src']).toEqual(["'self'", 'blob:']);
    expect(worker.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    const other = await fetch(`${server.url}/hospital/assets/index-AbC.js`);
    expect(csp(other.headers)['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(csp(other.headers)['worker-src']).toEqual(["'self'"]);
  });

  it('the dashboard: no WebAssembly, no worker, not isolated; the API and everything else: default-src none', async () => {
    const dash = await fetch(`${server.url}/dashboard/`);
    const d = csp(dash.headers);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['worker-src']).toBeUndefined();
    expect(dash.headers.get('cross-origin-embedder-policy')).toBeNull();
    expect(dash.headers.get('x-content-type-options')).toBe('nosniff');
    for (const target of ['/api/v1/status', '/healthz', '/nowhere']) {
      const res = await fetch(`${server.url}${target}`);
      expect(csp(res.headers), target).toMatchObject({ 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] });
      expect(csp(res.headers)['script-src'], target).toBeUndefined();
      expect(res.headers.get('x-content-type-options'), target).toBe('nosniff');
    }
  });

  it('REST: a foreign Origin is refused with 403 and no CORS echo; its own origin and a listed one are answered, the listed one with CORS', async () => {
    const foreign = await fetch(`${server.url}/api/v1/status`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await foreign.json()) as { error: { message: string } }).error.message).toMatch(/origin https:\/\/evil\.example is not allowed/);
    const own = await fetch(`${server.url}/api/v1/status`, { headers: { origin: server.url, authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-allow-origin')).toBeNull(); // same origin: no CORS needed
    const listed = await fetch(`${server.url}/api/v1/status`, { headers: { origin: 'https://dashboard.example.org', authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://dashboard.example.org');
    const preflight = await fetch(`${server.url}/api/v1/train/start`, { method: 'OPTIONS', headers: { origin: 'https://dashboard.example.org', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    // no Origin at all (a headless hospital, curl): not a browser request, answered
    expect((await fetch(`${server.url}/api/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(200);
  });

  it('Socket.IO: a foreign Origin gets no session on either transport; its own origin and no Origin connect', async () => {
    for (const transport of ['websocket', 'polling'] as const) {
      expect(await socketFrom(server.url, 'https://evil.example', transport), transport).not.toBe('connected');
      expect(await socketFrom(server.url, server.url, transport), transport).toBe('connected');
      expect(await socketFrom(server.url, 'https://dashboard.example.org', transport), transport).toBe('connected');
      expect(await socketFrom(server.url, undefined, transport), transport).toBe('connected');
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/fedcare_origin_refused_total\{surface="socket"\} 2/);
  });

  it('/healthz says alive, /readyz ready once started; a CSP report is counted and handed on', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const report = { 'csp-report': { 'document-uri': `${server.url}/hospital/`, 'violated-directive': 'script-src', 'blocked-uri': 'inline' } };
    const res = await fetch(`${server.url}/csp-report`, { method: 'POST', headers: { 'content-type': 'application/csp-report' }, body: JSON.stringify(report) });
    expect(res.status).toBe(204);
    expect(violations).toEqual([report]);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/fedcare_csp_violations_total 1/);
  });

  it('FEDCARE_ALLOWED_ORIGINS is checked: origins only, each named when wrong', () => {
    expect(parseAllowedOrigins(' https://a.example ,http://b.example:8080 ')).toEqual(['https://a.example', 'http://b.example:8080']);
    expect(parseAllowedOrigins(undefined)).toEqual([]);
    expect(() => parseAllowedOrigins('https://a.example/path')).toThrow(/"https:\/\/a\.example\/path" is not an origin/);
    expect(() => parseAllowedOrigins('a.example')).toThrow(/"a\.example" is not an origin/);
  });
});

describe('/readyz while draining', () => {
  it('answers 503 once close() has begun, while the process still serves (drainMs)', async () => {
    const server = await startTestServer();
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const closing = server.close({ drainMs: 500 });
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, reason: 'shutting down' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200); // alive all the same
    await closing;
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});

describe('TLS on a self-hosted coordinator', () => {
  let certs: TestCertificates;
  let server: RunningServer;
  beforeAll(async () => {
    certs = makeTestCertificates();
    server = await startTestServer({}, { tls: { cert: certs.cert, key: certs.key } });
  });
  afterAll(async () => {
    await server?.close();
  });

  function handshake(version: { minVersion: 'TLSv1' | 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1.1' | 'TLSv1.3' }): Promise<string> {
    return new Promise((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: server.port, servername: 'localhost', ca: certs.ca, ...version, ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
        resolve(socket.getProtocol() ?? 'none');
        socket.end();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(`refused: ${e.code ?? e.message}`));
    });
  }

  it('speaks TLS 1.3, refuses TLS 1.1 (the server says protocol version), and sends HSTS', async () => {
    expect(server.url).toMatch(/^https:\/\/localhost:\d+$/);
    expect(await handshake({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' })).toBe('TLSv1.3');
    expect(await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).toMatch(/^refused: ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION$/);
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = httpsRequest(`${server.url}/healthz`, { ca: certs.ca }, (res) => {
        res.resume();
        resolve(res.headers);
      });
      req.on('error', reject);
      req.end();
    });
    expect(headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
  });

  it('a Socket.IO client that trusts the CA connects over WSS; one that does not is refused', async () => {
    const viaWss = (ca?: Buffer) =>
      new Promise<string>((resolve) => {
        // `ca` reaches Node's TLS through engine.io-client (a Node-only option its types leave out).
        const options = { auth: { token: ADMIN_TOKEN }, transports: ['websocket'], reconnection: false, ...(ca ? { ca } : {}) } as Parameters<typeof io>[1];
        const socket = io(`${server.url}${DASHBOARD_NAMESPACE}`, options);
        socket.on('connect', () => {
          socket.close();
          resolve('connected');
        });
        socket.on('connect_error', (e) => {
          socket.close();
          resolve(e.message);
        });
      });
    expect(await viaWss(certs.ca)).toBe('connected');
    expect(await viaWss()).not.toBe('connected');
  });
});
