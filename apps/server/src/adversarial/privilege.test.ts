// Least privilege (issue 13, build item 4), tried as an attacker would against a real coordinator
// on loopback: a hospital's token reads every REST route and watches /dashboard during a real round
// with two other hospitals, and must never see their per-hospital rows, counts, participation or
// hosts; observers read but never act; expired tokens are refused; a 500 tells only a correlation
// id; the database is 0600 from its creation; the coordinator binds to 127.0.0.1 unless told.
// Each test failed on the coordinator before the fix (see README, "Adversarial tests").
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_NAMESPACE, HOSPITAL_NAMESPACE, PROTOCOL_VERSION, type DashboardClientToServer, type DashboardServerToClient, type ServerStatus } from '@fedcare/shared/protocol';
import { fillPath } from '@fedcare/shared/api';
import { apiRoutes } from '../http';
import { startServer, type RunningServer } from '../server';
import { ADMIN_TOKEN, FakeHospital, HOSPITAL_TOKENS, startTestServer } from '../testing/fake-hospital';

type DashSocket = Socket<DashboardServerToClient, DashboardClientToServer>;
type Seen = { event: string; payload: unknown }[];

const H3 = HOSPITAL_TOKENS.H3 as string;
/** Another hospital's id anywhere in a JSON text (as a value or a key). */
const OTHERS = /"H[12]"|\bH[12]\b/;

let server: RunningServer;
let observerToken: string;
let runId: string;
const asH3: Seen = [];
const asObserver: Seen = [];
const dashboards: DashSocket[] = [];
const fakes: FakeHospital[] = [];

function watch(token: string, seen: Seen): Promise<DashSocket> {
  const dash: DashSocket = io(`${server.url}${DASHBOARD_NAMESPACE}`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
  dashboards.push(dash);
  dash.onAny((event: string, payload: unknown) => seen.push({ event, payload }));
  return new Promise((resolve, reject) => {
    dash.once('connect', () => resolve(dash));
    dash.once('connect_error', reject);
  });
}

const get = (route: string, token: string) => fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  server = await startTestServer();
  observerToken = (await server.store.createToken({ role: 'observer' })).token;
  // The dashboards watch from before the hospitals join to after the run ends.
  await watch(H3, asH3);
  await watch(observerToken, asObserver);
  for (const h of ['H1', 'H2', 'H3']) {
    fakes.push(await FakeHospital.connect({ url: server.url, hospitalId: h, token: HOSPITAL_TOKENS[h] as string, auth: { host: `host-of-${h}`, num_records: 100 + Number(h.slice(1)) } }));
  }
  ({ runId } = await server.coordinator.start({ rounds: 1, seq_len: 12, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0, min_fit_clients: 3, min_evaluate_clients: 3, min_available_clients: 3 }, 'test'));
  expect((await server.coordinator.idle())?.status).toBe('completed');
  const t0 = Date.now();
  while (!asH3.some((e) => e.event === 'dash:run') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
}, 120_000);

afterAll(async () => {
  for (const d of dashboards) d.close();
  for (const f of fakes) f.close();
  await server?.close();
});

describe('a hospital token reads REST', () => {
  /** Every GET route a hospital token may use, with what it needs; the table is read from the server's own routes. */
  const readable = () => apiRoutes(server.coordinator, server.store).filter((r) => r.method === 'GET' && r.access !== 'admin');

  it('on every readable route: nothing of another hospital (no per-hospital row, count, participation or host)', async () => {
    const routes = readable().map((r) => r.path);
    expect(routes).toEqual(expect.arrayContaining(['/api/v1/status', '/api/v1/metrics', '/api/v1/runs', '/api/v1/whoami', '/api/v1/runs/{run_id}', '/api/v1/runs/{run_id}/metrics']));
    for (const route of routes) {
      const target = fillPath(route, { run_id: runId, version: 'latest' });
      const res = await get(route === '/api/v1/metrics' ? `${target}?run_id=${runId}` : target, H3);
      expect(res.status, route).toBe(200);
      let text = await res.text();
      // The model's weights are base64 of 2.3 MB of floats, which can spell "+H1/" by chance: numbers, not names.
      if (route === '/api/v1/runs/{run_id}/models/{version}') {
        const { weights_base64: _weights, ...rest } = JSON.parse(text) as { weights_base64: string };
        text = JSON.stringify(rest);
        expect(text).toContain('"hospital_id":"H3"'); // its own row of the model card is there
      }
      expect(text, `${route} shows another hospital`).not.toMatch(OTHERS);
    }
  });

  it('sees its own per-hospital metrics and participation, and the global figures', async () => {
    const body = (await (await get(`/api/v1/metrics?run_id=${runId}`, H3)).json()) as { rounds: { metrics: Record<string, number>; per_hospital: Record<string, unknown>; participation: { hospitalId: string }[] }[] };
    const [round] = body.rounds;
    expect(Object.keys(round!.per_hospital)).toEqual(['H3']);
    expect(new Set(round!.participation.map((p) => p.hospitalId))).toEqual(new Set(['H3']));
    expect(round!.metrics.num_participating_clients).toBe(3);
    // The observer (and the admin) see all three.
    for (const token of [observerToken, ADMIN_TOKEN]) {
      const all = (await (await get(`/api/v1/metrics?run_id=${runId}`, token)).json()) as typeof body;
      expect(Object.keys(all.rounds[0]!.per_hospital).sort()).toEqual(['H1', 'H2', 'H3']);
    }
  });

  it('is refused every admin route (403), and so is an observer', async () => {
    const admin = apiRoutes(server.coordinator, server.store).filter((r) => r.access === 'admin');
    expect(admin.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(['GET /api/v1/tokens', 'POST /api/v1/tokens', 'POST /api/v1/train/start']));
    for (const token of [H3, observerToken]) {
      for (const r of admin) {
        const res = await fetch(`${server.url}${fillPath(r.path, { run_id: runId, token_id: 'tok_000000000000' })}`, { method: r.method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(r.method === 'POST' ? { body: '{}' } : {}) });
        expect(res.status, `${r.method} ${r.path}`).toBe(403);
        expect(await res.text()).not.toMatch(/fct_|token_id/);
      }
    }
    expect(await (await get('/api/v1/whoami', observerToken)).json()).toEqual({ role: 'observer' });
  });
});

describe('a hospital token watches /dashboard', () => {
  it('receives every dashboard event, and none shows another hospital', () => {
    const events = new Set(asH3.map((e) => e.event));
    for (const event of ['dash:status', 'dash:clients', 'dash:stage', 'dash:round', 'dash:run']) expect(events, event).toContain(event);
    for (const { event, payload } of asH3) expect(JSON.stringify(payload), `${event} shows another hospital`).not.toMatch(OTHERS);
    const round = asH3.find((e) => e.event === 'dash:round')?.payload as { per_hospital: Record<string, unknown>; metrics: Record<string, number> };
    expect(Object.keys(round.per_hospital)).toEqual(['H3']);
    const clients = asH3.filter((e) => e.event === 'dash:clients').map((e) => e.payload as { hospitals: { hospital_id: string; host?: string }[] });
    expect(clients.some((c) => c.hospitals.some((h) => h.hospital_id === 'H3' && h.host === 'host-of-H3'))).toBe(true);
  });

  it('while an observer sees every hospital, their hosts and counts', () => {
    const text = JSON.stringify(asObserver);
    for (const h of ['H1', 'H2', 'H3']) expect(text).toContain(`host-of-${h}`);
    const round = asObserver.find((e) => e.event === 'dash:round')?.payload as { per_hospital: Record<string, unknown> };
    expect(Object.keys(round.per_hospital).sort()).toEqual(['H1', 'H2', 'H3']);
  });

  it('and over its own /hospital socket, fl:status lists only itself', async () => {
    const h3 = fakes[2] as FakeHospital;
    const reply = (await h3.socket.timeout(5000).emitWithAck('fl:status')) as { ok: true; value: ServerStatus };
    expect(server.grid.available().sort()).toEqual(['H1', 'H2', 'H3']);
    expect(reply.value.active_clients).toEqual(['H3']);
  });
});

describe('credentials', () => {
  it('an expired token is refused on REST, /dashboard and /hospital', async () => {
    const past = new Date(Date.now() - 1000).toISOString();
    const admin = await server.store.createToken({ role: 'admin', expiresAt: past });
    const h4 = await server.store.createToken({ role: 'hospital', hospitalId: 'H4', expiresAt: past });
    expect((await get('/api/v1/status', admin.token)).status).toBe(401);
    const dash = io(`${server.url}${DASHBOARD_NAMESPACE}`, { auth: { token: admin.token }, transports: ['websocket'], forceNew: true, reconnection: false });
    const dashErr = await new Promise<{ data?: { code: string } }>((resolve) => {
      dash.once('connect', () => resolve({ data: { code: 'connected' } }));
      dash.once('connect_error', (e: Error & { data?: { code: string } }) => resolve(e));
    });
    dash.close();
    expect(dashErr.data?.code).toBe('UNAUTHORIZED');
    await expect(FakeHospital.connect({ url: server.url, hospitalId: 'H4', token: h4.token })).rejects.toThrow(/unknown or revoked token/);
  });

  it('a live connection whose token expires is closed (UNAUTHORIZED) within the recheck interval', async () => {
    const s = await startTestServer({}, { limits: { tokenRecheckMs: 100 } });
    try {
      const soon = await s.store.createToken({ role: 'hospital', hospitalId: 'H4', expiresAt: new Date(Date.now() + 1500).toISOString() });
      const h4 = await FakeHospital.connect({ url: s.url, hospitalId: 'H4', token: soon.token });
      await h4.until(() => h4.errors.length > 0, 'the expiry notice', 10_000);
      expect(h4.errors).toEqual([{ code: 'UNAUTHORIZED', message: 'this token has expired or was revoked', field: 'token' }]);
      h4.close();
    } finally {
      await s.close();
    }
  });

  it('an observer cannot join as a hospital', async () => {
    const s = io(`${server.url}${HOSPITAL_NAMESPACE}`, { auth: { hospital_id: 'H1', token: observerToken, client_version: PROTOCOL_VERSION }, transports: ['websocket'], forceNew: true, reconnection: false });
    const err = await new Promise<{ data?: { code: string } }>((resolve) => {
      s.once('connect', () => resolve({ data: { code: 'connected' } }));
      s.once('connect_error', (e: Error & { data?: { code: string } }) => resolve(e));
    });
    s.close();
    expect(err.data?.code).toBe('FORBIDDEN');
  });
});

describe('the coordinator itself', () => {
  it('answers a 500 with a correlation id only, and logs the error under it', async () => {
    const lines: string[] = [];
    const logStream = new PassThrough();
    logStream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-500-'));
    const s = await startServer({ port: 0, host: '127.0.0.1', db: path.join(dir, 'fedcare.db'), env: { FEDCARE_ADMIN_TOKEN: ADMIN_TOKEN }, logLevel: 'error', logStream });
    try {
      const secret = `SQLITE_CORRUPT: database disk image is malformed (${dir}/fedcare.db, SELECT * FROM runs)`;
      s.store.listRuns = () => Promise.reject(new Error(secret));
      const res = await fetch(`${s.url}/api/v1/runs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: { code: string; message: string; correlation_id: string } };
      expect(body.error.code).toBe('INTERNAL');
      expect(body.error.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.stringify(body)).not.toMatch(/SQLITE|malformed|fedcare\.db|SELECT/);
      await new Promise((r) => setTimeout(r, 50));
      const logged = lines.map((l) => JSON.parse(l) as { correlation_id?: string; err?: { message?: string } }).find((l) => l.correlation_id === body.error.correlation_id);
      expect(logged?.err?.message).toBe(secret);
    } finally {
      await s.close();
    }
  });

  it('creates its database, WAL and shared memory 0600, and listens on 127.0.0.1 unless told otherwise', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-modes-'));
    const db = path.join(dir, 'fedcare.db');
    const s = await startServer({ port: 0, db, env: {}, logLevel: 'silent' });
    try {
      expect((s.http.address() as { address: string }).address).toBe('127.0.0.1');
      await s.store.appendAudit({ actor: 'test', action: 'x', outcome: 'ok' });
      for (const f of ['fedcare.db', 'fedcare.db-wal', 'fedcare.db-shm']) expect({ f, mode: statSync(path.join(dir, f)).mode & 0o777 }).toEqual({ f, mode: 0o600 });
    } finally {
      await s.close();
    }
  });
});
