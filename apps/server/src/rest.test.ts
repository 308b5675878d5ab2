// REST /api/v1 against a real coordinator on port 0: authentication (401) and roles (403) on every
// route, run control (start, conflict, stop), input errors naming their field, the OpenAPI 3.1
// document (validated by a real validator and compared with the route table and with every status
// code these tests observed), and Prometheus /metrics.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createApiClient, endpoints, type EndpointName } from '@fedcare/shared/api';
import { runConfigSchema, STRATEGY_NAMES } from '@fedcare/shared/protocol';
import { apiRoutes, openApiDocument } from './http';
import { UNAUTHENTICATED_MESSAGE_BYTES } from './message-limit';
import type { RunningServer } from './server';
import { ADMIN_TOKEN, FakeHospital, HOSPITAL_TOKENS, startTestServer } from './testing/fake-hospital';

let server: RunningServer;
/** A run that completed one round, for the metrics routes. */
let completedRunId: string;
/** Status codes seen per documented operation, e.g. 'POST /api/v1/train/start' → {200, 401, …}. */
const observed = new Map<string, Set<number>>();
/** Success answers that did not parse with their endpoint's zod response schema. */
const mismatches: string[] = [];

const H1 = HOSPITAL_TOKENS.H1 as string;
const WRONG = 'wrong-token-0123456789abcdef';
const WRONG_BEARER = { token: WRONG };

interface Call {
  status: number;
  body: unknown;
  headers: Headers;
}

async function call(method: 'GET' | 'POST' | 'DELETE', target: string, o: { token?: string; body?: unknown; raw?: string; authorization?: string } = {}): Promise<Call> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.authorization) headers.authorization = o.authorization;
  let body: string | undefined;
  if (o.raw !== undefined) body = o.raw;
  else if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${target}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (Prometheus text)
  }
  const path = new URL(target, 'http://x').pathname;
  const route = apiRoutes(server.coordinator, server.store).find((r) => r.method === method && new RegExp(`^${r.path.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
  if (route) {
    const key = `${route.method} ${route.path}`;
    const seen = observed.get(key) ?? new Set<number>();
    seen.add(res.status);
    observed.set(key, seen);
    // Every success answer is what the shared zod schema (the typed client's, the document's) says.
    if (res.status === route.endpoint.status) {
      const r = route.endpoint.response.safeParse(parsed);
      if (!r.success) mismatches.push(`${key}: ${r.error.message}`);
    }
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The typed client, its requests going through `call` (so that their statuses are observed too). */
function client(token?: string) {
  return createApiClient({
    baseUrl: server.url,
    ...(token !== undefined ? { token } : {}),
    fetch: async (url, init) => {
      const res = await call((init?.method ?? 'GET') as 'GET', url.slice(server.url.length), { ...(init?.headers?.authorization ? { authorization: init.headers.authorization } : {}), ...(init?.body !== undefined ? { raw: init.body } : {}) });
      return { ok: res.status < 400, status: res.status, json: async () => res.body };
    },
  });
}

function routeKeys(): string[] {
  return apiRoutes(server.coordinator, server.store).map((r) => `${r.method} ${r.path}`);
}

function errorOf(c: Call): { code: string; message: string; field?: string } {
  return (c.body as { error: { code: string; message: string; field?: string } }).error;
}

beforeAll(async () => {
  server = await startTestServer();
  // One real round with three fake hospitals, so that a run with metrics exists; they leave afterwards.
  const fakes = await Promise.all(['H1', 'H2', 'H3'].map((h) => FakeHospital.connect({ url: server.url, hospitalId: h, token: HOSPITAL_TOKENS[h] as string })));
  const { runId } = await server.coordinator.start({ rounds: 1, seq_len: 12, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0 }, 'test');
  const summary = await server.coordinator.idle();
  expect(summary?.status).toBe('completed');
  completedRunId = runId;
  for (const f of fakes) {
    await f.settled();
    f.close();
  }
  const t0 = Date.now();
  while (server.grid.available().length > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
  expect(server.grid.available()).toEqual([]);
});

afterAll(async () => {
  await server?.close();
});

describe('read routes: any valid token', () => {
  const targets = () => ['/api/v1/status', `/api/v1/metrics?run_id=${completedRunId}`, '/api/v1/runs'];

  it('answer 401 without a token, with a wrong token and with a malformed Authorization header', async () => {
    for (const t of targets()) {
      for (const o of [{}, WRONG_BEARER, { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }, { authorization: ADMIN_TOKEN }]) {
        const res = await call('GET', t, o);
        expect(res.status, `${t} ${JSON.stringify(o)}`).toBe(401);
        expect(res.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
        // RFC 6750 §3: the Bearer challenge; invalid_token only where a bearer token was offered
        expect(res.headers.get('www-authenticate'), JSON.stringify(o)).toBe(o === WRONG_BEARER ? 'Bearer realm="fedcare", error="invalid_token"' : 'Bearer realm="fedcare"');
      }
    }
  });

  it('answer 200 with a hospital token and with the admin token', async () => {
    for (const token of [H1, ADMIN_TOKEN]) {
      const status = await call('GET', '/api/v1/status', { token });
      expect(status.status).toBe(200);
      expect(status.headers.get('content-type')).toMatch(/^application\/json/);
      expect(status.body).toMatchObject({ protocol_version: 3, run_id: completedRunId, status: 'completed', current_round: 1, total_rounds: 1, active_clients: [], privacy_budget: null });

      const metrics = await call('GET', `/api/v1/metrics?run_id=${completedRunId}`, { token });
      expect(metrics.status).toBe(200);
      const m = metrics.body as { run_id: string; rounds: { round_number: number; metrics: Record<string, number | null>; participation: unknown[]; timestamp: string }[] };
      expect(m.run_id).toBe(completedRunId);
      expect(m.rounds.map((r) => r.round_number)).toEqual([1]);
      expect(m.rounds[0]!.metrics.num_participating_clients).toBe(3);
      expect(m.rounds[0]!.metrics.privacy_epsilon).toBeNull(); // ε = ∞ is null in JSON
      expect(Number.isNaN(Date.parse(m.rounds[0]!.timestamp))).toBe(false);
      const one = await call('GET', `/api/v1/metrics?run_id=${completedRunId}&round_number=1`, { token });
      expect(one.status).toBe(200);
      expect((one.body as { rounds: unknown[] }).rounds).toHaveLength(1);

      const runs = await call('GET', '/api/v1/runs', { token });
      expect(runs.status).toBe(200);
      expect((runs.body as { runs: { run_id: string; status: string; total_rounds: number; last_completed_round: number }[] }).runs).toContainEqual(
        expect.objectContaining({ run_id: completedRunId, status: 'completed', total_rounds: 1, last_completed_round: 1 }),
      );
    }
  });

  it('whoami names the hospital of a hospital token and the admin role, and answers 401 to a wrong token', async () => {
    expect(await call('GET', '/api/v1/whoami', { token: H1 })).toMatchObject({ status: 200, body: { role: 'hospital', hospital_id: 'H1' } });
    const h2 = await call('GET', '/api/v1/whoami', { token: HOSPITAL_TOKENS.H2 as string });
    expect(h2.body).toEqual({ role: 'hospital', hospital_id: 'H2' });
    expect((await call('GET', '/api/v1/whoami', { token: ADMIN_TOKEN })).body).toEqual({ role: 'admin' });
    expect((await call('GET', '/api/v1/whoami', { token: `${H1}x` })).status).toBe(401);
  });

  it('metrics: 404 for an unknown run, 400 naming the field for a bad round_number or a missing run_id', async () => {
    const unknown = await call('GET', '/api/v1/metrics?run_id=run-nope', { token: H1 });
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown)).toEqual({ code: 'NOT_FOUND', message: 'no run run-nope', field: 'run_id' });
    for (const bad of ['abc', '0', '-1', '1.5', '']) {
      const res = await call('GET', `/api/v1/metrics?run_id=${completedRunId}&round_number=${bad}`, { token: H1 });
      expect(res.status, `round_number=${bad}`).toBe(400);
      expect(errorOf(res)).toEqual({ code: 'INVALID_PAYLOAD', message: 'round_number: must be a positive integer', field: 'round_number' });
    }
    const missing = await call('GET', '/api/v1/metrics', { token: H1 });
    expect(missing.status).toBe(400);
    expect(errorOf(missing)).toMatchObject({ code: 'INVALID_PAYLOAD', field: 'run_id' });
    // A round that the run does not have is an empty list, not an error.
    const later = await call('GET', `/api/v1/metrics?run_id=${completedRunId}&round_number=7`, { token: H1 });
    expect(later.status).toBe(200);
    expect((later.body as { rounds: unknown[] }).rounds).toEqual([]);
  });
});

describe('run control: admin only', () => {
  const config = { rounds: 2, seq_len: 12, min_fit_clients: 3, min_evaluate_clients: 3, min_available_clients: 3, wait_for_clients_s: 120 };

  it('start and stop answer 401 without a token or with a wrong one, 403 with a hospital token, and audit it', async () => {
    await server.flushRefusals();
    for (const path of ['/api/v1/train/start', '/api/v1/train/stop']) {
      for (const o of [{}, { token: WRONG }]) {
        const res = await call('POST', path, { ...o, body: { config } });
        expect(res.status, `${path} ${JSON.stringify(o)}`).toBe(401);
        expect(errorOf(res).code).toBe('UNAUTHORIZED');
      }
      const forbidden = await call('POST', path, { token: H1, body: { config } });
      expect(forbidden.status).toBe(403);
      expect(errorOf(forbidden)).toEqual({ code: 'FORBIDDEN', message: `${path} needs the admin token; this is hospital H1's token` });
      expect(forbidden.headers.get('www-authenticate')).toBe('Bearer realm="fedcare", error="insufficient_scope"');
    }
    expect(server.coordinator.status().status).toBe('completed'); // nothing started
    // Audited in aggregate: one row for this address and window, counted by route and status.
    await server.flushRefusals();
    const audit = (await server.store.listAudit({ limit: 1000 })).filter((e) => e.action === 'auth.refused');
    expect(audit[0]).toMatchObject({ outcome: 'rejected', detail: { count: 6, by: { 'rest:401 /api/v1/train/start': 2, 'rest:403 /api/v1/train/start': 1, 'rest:401 /api/v1/train/stop': 2, 'rest:403 /api/v1/train/stop': 1 } } });
    expect(audit[0]?.actor).toMatch(/127\.0\.0\.1$/);
    expect(JSON.stringify(audit)).not.toContain(WRONG);
  });

  it('start answers 400 naming the field for a bad config, and for a body that is not JSON or too large', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ config: { strategy: 'fedfoo' } }, 'config.strategy', /^config\.strategy: .*fedavg/],
      [{ config: { rounds: 0 } }, 'config.rounds', /^config\.rounds: /],
      [{ config: { rounds: 2.5 } }, 'config.rounds', /^config\.rounds: /],
      [{ config: { fraction_fit: 1.5 } }, 'config.fraction_fit', /^config\.fraction_fit: /],
      [{ config: { learning_rate: 'fast' } }, 'config.learning_rate', /^config\.learning_rate: /],
      [{ config: { rounds: 2, foo: 1 } }, 'config', /^config: .*"foo"/],
      [{ confg: { rounds: 2 } }, '(payload)', /^\(payload\): .*"confg"/],
      [{ config: 'fedavg' }, 'config', /^config: /],
    ];
    for (const [body, field, message] of cases) {
      const res = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(res)).toEqual({ code: 'INVALID_PAYLOAD', field, message: expect.stringMatching(message) });
    }
    const notJson = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, raw: '{"config": ' });
    expect(notJson.status).toBe(400);
    expect(errorOf(notJson)).toEqual({ code: 'INVALID_PAYLOAD', message: 'request body is not valid JSON', field: '(body)' });
    const huge = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, raw: JSON.stringify({ config: {}, pad: 'x'.repeat(70_000) }) });
    expect(huge.status).toBe(413);
    expect(errorOf(huge).code).toBe('MESSAGE_TOO_LARGE');
    expect(server.coordinator.status().status).toBe('completed'); // still nothing started
  });

  it('start answers 200 with the admin token, 409 while that run is active; stop answers 200, then 404', async () => {
    const started = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, body: { config } });
    expect(started.status).toBe(200);
    const { run_id, status, config: effective } = started.body as { run_id: string; status: string; config: Record<string, unknown> };
    expect(status).toBe('running');
    expect(effective).toMatchObject({ ...config, strategy: 'fedavg' }); // defaults filled in
    const t0 = Date.now();

    const conflict = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, body: { config } });
    expect(conflict.status).toBe(409);
    expect(errorOf(conflict)).toEqual({ code: 'RUN_CONFLICT', message: `run ${run_id} is still running; stop it first` });

    const live = await call('GET', '/api/v1/status', { token: H1 });
    expect(live.body).toMatchObject({ run_id, status: 'running', total_rounds: 2 });
    const wrongRun = await call('POST', '/api/v1/train/stop?run_id=run-other', { token: ADMIN_TOKEN });
    expect(wrongRun.status).toBe(404);
    expect(errorOf(wrongRun)).toEqual({ code: 'NO_ACTIVE_RUN', message: 'run run-other is not running', field: 'run_id' });

    // No hospital is connected: the run is waiting for clients (wait_for_clients_s 120) and stop must not wait that out.
    const stopped = await call('POST', '/api/v1/train/stop', { token: ADMIN_TOKEN, body: { run_id } });
    expect(stopped.status).toBe(200);
    expect(stopped.body).toEqual({ run_id, status: 'stopped' });
    expect(Date.now() - t0).toBeLessThan(20_000);

    const again = await call('POST', '/api/v1/train/stop', { token: ADMIN_TOKEN });
    expect(again.status).toBe(404);
    expect(errorOf(again)).toEqual({ code: 'NO_ACTIVE_RUN', message: 'no run is running', field: 'run_id' });
    const runs = await call('GET', '/api/v1/runs', { token: ADMIN_TOKEN });
    expect((runs.body as { runs: { run_id: string; status: string; reason?: string }[] }).runs[0]).toMatchObject({ run_id, status: 'stopped', reason: 'stopped by an administrator' });
    const audit = await server.store.listAudit({ limit: 100 });
    expect(audit.filter((e) => e.runId === run_id).map((e) => [e.actor, e.action])).toEqual([
      ['admin', 'train.stop'],
      ['admin', 'train.start'],
    ]);
  });

  it('stop right after start (while the run is still being set up) returns at once', async () => {
    const started = await call('POST', '/api/v1/train/start', { token: ADMIN_TOKEN, body: { config } });
    expect(started.status).toBe(200);
    const t0 = Date.now();
    const { run_id } = started.body as { run_id: string };
    // POST /api/v1/runs/{run_id}/stop, through the typed client.
    expect(await client(ADMIN_TOKEN).call('stopRun', { params: { run_id } })).toEqual({ run_id, status: 'stopped' });
    expect(Date.now() - t0).toBeLessThan(20_000);
    await expect(client(ADMIN_TOKEN).call('stopRun', { params: { run_id } })).rejects.toMatchObject({ status: 404, code: 'NO_ACTIVE_RUN', field: 'run_id' });
    await expect(client(H1).call('stopRun', { params: { run_id } })).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await expect(client().call('stopRun', { params: { run_id } })).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });
});

describe('routes with path parameters, through the typed client (@fedcare/shared/api)', () => {
  it('is the only client of fedcare\'s REST API: no other source file of the apps or the shared core calls fetch or XMLHttpRequest (but the MLflow tracker, a client of MLflow\'s)', () => {
    const root = path.resolve(import.meta.dirname, '../../..');
    const sources = ['shared/src', 'apps/server/src', 'apps/cli/src', 'apps/dashboard/src', 'apps/hospital-portal/src']
      .flatMap((d) => readdirSync(path.join(root, d), { recursive: true, encoding: 'utf8' }).map((f) => path.join(d, f)))
      .filter((f) => /\.(ts|tsx)$/.test(f) && !/\.d\.ts$|\.test\.tsx?$|[/\\]testing[/\\]|[/\\]adversarial[/\\]/.test(f));
    expect(sources.length).toBeGreaterThan(50);
    const callers = sources.filter((f) => /\bfetch\s*\(|XMLHttpRequest/.test(readFileSync(path.join(root, f), 'utf8')));
    expect(callers.sort()).toEqual([path.join('apps/server/src/mlflow.ts'), path.join('shared/src/api/index.ts')]);
  });

  it('GET /api/v1/runs/{run_id}/models/{version}: the export (model.json, weights, model card) for the admin and the run\'s hospitals; 403 for an observer or another hospital; 404/400 naming the field', async () => {
    const admin = await call('GET', `/api/v1/runs/${completedRunId}/models/latest`, { token: ADMIN_TOKEN });
    expect(admin.status).toBe(200);
    const body = admin.body as { model: { run_id: string; round: number; weights: { sha256: string; float32_count: number } }; weights_base64: string; model_card: { model: { weights_sha256: string } } };
    const weights = Buffer.from(body.weights_base64, 'base64');
    expect(weights.byteLength).toBe(body.model.weights.float32_count * 4);
    expect(createHash('sha256').update(weights).digest('hex')).toBe(body.model.weights.sha256);
    const stored = await server.store.getModel(completedRunId, 'latest');
    expect(body.model.weights.sha256).toBe(stored!.sha256);
    expect(body.model).toMatchObject({ run_id: completedRunId, round: 1 });
    expect(body.model_card.model.weights_sha256).toBe(stored!.sha256);
    expect((await call('GET', `/api/v1/runs/${completedRunId}/models/1`, { token: H1 })).status).toBe(200);
    const observer = (await client(ADMIN_TOKEN).call('createToken', { body: { role: 'observer' } })).token;
    const h4 = (await client(ADMIN_TOKEN).call('createToken', { body: { role: 'hospital', hospital_id: 'H4' } })).token;
    const asObserver = await call('GET', `/api/v1/runs/${completedRunId}/models/latest`, { token: observer });
    expect(asObserver.status).toBe(403);
    expect(errorOf(asObserver).message).toMatch(/not an observer token/);
    const asH4 = await call('GET', `/api/v1/runs/${completedRunId}/models/best`, { token: h4 });
    expect(asH4.status).toBe(403);
    expect(errorOf(asH4).message).toMatch(/hospital H4 took no part in run/);
    const noRound = await call('GET', `/api/v1/runs/${completedRunId}/models/9`, { token: ADMIN_TOKEN });
    expect([noRound.status, errorOf(noRound).field]).toEqual([404, 'version']);
    expect((await call('GET', '/api/v1/runs/run-nope/models/latest', { token: ADMIN_TOKEN })).status).toBe(404);
    const bad = await call('GET', `/api/v1/runs/${completedRunId}/models/newest`, { token: ADMIN_TOKEN });
    expect(bad.status).toBe(400);
    expect(errorOf(bad).field).toBe('version');
    expect((await call('GET', `/api/v1/runs/${completedRunId}/models/latest`)).status).toBe(401);
  });

  it('GET /api/v1/runs/{run_id}/report: the run report (every section, the model card\'s SHA-256, the audit trail) for the admin only; 403 for a hospital, 404 naming run_id', async () => {
    const res = await client(ADMIN_TOKEN).call('getRunReport', { params: { run_id: completedRunId } });
    expect(res).toMatchObject({ run_id: completedRunId, filename: `fedcare-report-${completedRunId}.html` });
    const headings = [...res.html.matchAll(/<h2>([^<]+)<\/h2>/g)].map((m) => m[1]);
    expect(headings).toEqual(['Model card', 'Configuration', 'Metrics per round', 'Hospitals', 'Fairness', 'Calibration', 'Privacy', 'Participation and dropouts', 'Audit trail']);
    expect(res.html).toContain((await server.store.getModel(completedRunId, 'latest'))!.sha256);
    expect(res.html).toMatch(/<section id="audit-trail">.*hospital:H1/s);
    expect(res.html).not.toMatch(/<script|(src|href)="https?:/i); // self-contained
    const asH1 = await call('GET', `/api/v1/runs/${completedRunId}/report`, { token: H1 });
    expect(asH1.status).toBe(403);
    const none = await call('GET', '/api/v1/runs/run-nope/report', { token: ADMIN_TOKEN });
    expect([none.status, errorOf(none).field]).toEqual([404, 'run_id']);
  });

  it('GET /api/v1/runs/{run_id}: the run as the list shows it; 404 naming run_id; 401 without a token', async () => {
    const listed = (await client(H1).call('listRuns')).runs.find((r) => r.run_id === completedRunId);
    expect(listed).toBeDefined();
    expect(await client(H1).call('getRun', { params: { run_id: completedRunId } })).toEqual(listed);
    await expect(client(H1).call('getRun', { params: { run_id: 'run-nope' } })).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND', field: 'run_id' });
    await expect(client(WRONG).call('getRun', { params: { run_id: completedRunId } })).rejects.toMatchObject({ status: 401 });
  });

  it('GET /api/v1/runs/{run_id}/metrics equals the older /api/v1/metrics?run_id=, per round too; bad round_number is a 400 naming it', async () => {
    const byPath = await client(ADMIN_TOKEN).call('getRunMetrics', { params: { run_id: completedRunId } });
    expect(byPath.rounds.length).toBe(1);
    expect(byPath).toEqual(await client(ADMIN_TOKEN).call('getMetrics', { query: { run_id: completedRunId } }));
    expect(await client(ADMIN_TOKEN).call('getRunMetrics', { params: { run_id: completedRunId }, query: { round_number: 1 } })).toEqual(byPath);
    // A hospital sees only its own per-hospital row on the new path as on the old one.
    const own = await client(H1).call('getRunMetrics', { params: { run_id: completedRunId } });
    expect(Object.keys(own.rounds[0]!.per_hospital ?? {})).toEqual(['H1']);
    const bad = await call('GET', `/api/v1/runs/${completedRunId}/metrics?round_number=abc`, { token: H1 });
    expect(bad.status).toBe(400);
    expect(errorOf(bad)).toMatchObject({ code: 'INVALID_PAYLOAD', field: 'round_number' });
    await expect(client(H1).call('getRunMetrics', { params: { run_id: 'run-nope' } })).rejects.toMatchObject({ status: 404, field: 'run_id' });
    await expect(client().call('getRunMetrics', { params: { run_id: completedRunId } })).rejects.toMatchObject({ status: 401 });
  });

  it('DELETE /api/v1/tokens/{token_id} revokes (the older POST /tokens/revoke is its alias); 404 after; 403 to a hospital', async () => {
    const created = await client(ADMIN_TOKEN).call('createToken', { body: { role: 'observer' } });
    expect(created).toMatchObject({ role: 'observer', token: expect.stringMatching(/^fct_/) as unknown });
    await expect(client(H1).call('revokeToken', { params: { token_id: created.token_id } })).rejects.toMatchObject({ status: 403 });
    await expect(client().call('revokeToken', { params: { token_id: created.token_id } })).rejects.toMatchObject({ status: 401 });
    expect(await client(ADMIN_TOKEN).call('revokeToken', { params: { token_id: created.token_id } })).toEqual({ token_id: created.token_id, revoked: true, disconnected: 0 });
    await expect(client(created.token).call('whoami')).rejects.toMatchObject({ status: 401 });
    await expect(client(ADMIN_TOKEN).call('revokeToken', { params: { token_id: created.token_id } })).rejects.toMatchObject({ status: 404, field: 'token_id' });
  });

  it('checks inputs before sending (nothing reaches the server) and refuses an answer that does not match the API', async () => {
    let sent = 0;
    const counting = createApiClient({ baseUrl: server.url, token: ADMIN_TOKEN, fetch: (u, i) => (sent++, fetch(u, i)) });
    await expect(counting.call('getRun', { params: { run_id: '' } })).rejects.toMatchObject({ status: 0, code: 'INVALID_PAYLOAD', field: 'run_id' });
    await expect(counting.call('createToken', { body: { role: 'hospital', hospital_id: 'not a hospital' } })).rejects.toMatchObject({ status: 0, field: 'hospital_id' });
    expect(sent).toBe(0);
    // A server that answers 200 with something else (here: the status where the runs were expected).
    const wrongAnswer = createApiClient({ baseUrl: server.url, token: ADMIN_TOKEN, fetch: (_u, i) => fetch(`${server.url}/api/v1/status`, i) });
    await expect(wrongAnswer.call('listRuns')).rejects.toMatchObject({ code: 'INVALID_RESPONSE', message: expect.stringMatching(/^listRuns: the coordinator's answer does not match the API \(runs: /) as unknown });
  });
});

describe('other paths', () => {
  it('answers 404 for an unknown path and 405 for a known path with another method', async () => {
    const missing = await call('GET', '/api/v1/nope', { token: ADMIN_TOKEN });
    expect(missing.status).toBe(404);
    expect(errorOf(missing).code).toBe('NOT_FOUND');
    const method = await call('GET', '/api/v1/train/start', { token: ADMIN_TOKEN });
    expect(method.status).toBe(405);
    expect(errorOf(method)).toEqual({ code: 'METHOD_NOT_ALLOWED', message: 'GET is not allowed on /api/v1/train/start' });
  });

  it('leaves /socket.io/ to Socket.IO: a polling handshake is answered by engine.io and the server keeps running', async () => {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.startsWith('0{')).toBe(true);
    // A stranger's limit until a hospital's handshake is accepted (then MAX_MESSAGE_BYTES: message-limit.ts).
    expect(JSON.parse(text.slice(1))).toMatchObject({ maxPayload: UNAUTHENTICATED_MESSAGE_BYTES });
    await new Promise((r) => setTimeout(r, 100));
    expect((await call('GET', '/api/v1/status', { token: ADMIN_TOKEN })).status).toBe(200);
  });

  it('serves Prometheus text at /metrics with the fedcare_ metrics', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const [name, type] of [
      ['fedcare_round', 'gauge'],
      ['fedcare_active_clients', 'gauge'],
      ['fedcare_global_accuracy', 'gauge'],
      ['fedcare_global_auc_roc', 'gauge'],
      ['fedcare_round_duration_seconds', 'gauge'],
      ['fedcare_communication_bytes_total', 'counter'],
      ['fedcare_rejected_messages_total', 'counter'],
      ['fedcare_auth_denied_total', 'counter'],
    ]) {
      expect(text, name).toContain(`# TYPE ${name} ${type}`);
    }
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('fedcare_round')).toBe(1);
    expect(value('fedcare_active_clients')).toBe(0);
    expect(value('fedcare_communication_bytes_total{direction="up"}')).toBeGreaterThan(3 * 2_000_000);
    expect(value('fedcare_auth_denied_total{surface="rest",status="401"}')).toBeGreaterThanOrEqual(12);
    expect(value('fedcare_auth_denied_total{surface="rest",status="403"}')).toBeGreaterThanOrEqual(2);
  });
});

describe('credentials: admin only', () => {
  it('list, create and revoke answer 401 without a token and 403 to a hospital', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/tokens', undefined],
      ['POST', '/api/v1/tokens', { role: 'hospital', hospital_id: 'H9' }],
      ['POST', '/api/v1/tokens/revoke', { token_id: 'tok_000000000000' }],
    ] as const) {
      expect((await call(method, path, { body })).status, path).toBe(401);
      const forbidden = await call(method, path, { token: H1, body });
      expect(forbidden.status, path).toBe(403);
      expect(forbidden.headers.get('www-authenticate')).toBe('Bearer realm="fedcare", error="insufficient_scope"');
    }
    expect((await server.store.listTokens()).filter((t) => t.hospitalId === 'H9')).toEqual([]);
  });

  it('creates a hospital token that signs in at once, shown once, listed without its secret, audited without it', async () => {
    const created = await call('POST', '/api/v1/tokens', { token: ADMIN_TOKEN, body: { role: 'hospital', hospital_id: 'H5' } });
    expect(created.status).toBe(201);
    const c = created.body as { token_id: string; token: string; role: string; hospital_id: string };
    expect(c).toMatchObject({ role: 'hospital', hospital_id: 'H5' });
    expect(c.token).toMatch(/^fct_[A-Za-z0-9_-]{43}$/);
    expect(await call('GET', '/api/v1/whoami', { token: c.token })).toMatchObject({ status: 200, body: { role: 'hospital', hospital_id: 'H5' } });
    const list = await call('GET', '/api/v1/tokens', { token: ADMIN_TOKEN });
    expect(list.status).toBe(200);
    const listed = (list.body as { tokens: Record<string, unknown>[] }).tokens.find((t) => t.token_id === c.token_id);
    expect(listed).toMatchObject({ token_id: c.token_id, role: 'hospital', hospital_id: 'H5' });
    expect(JSON.stringify(list.body)).not.toContain(c.token);
    const audit = (await server.store.listAudit({ limit: 1000 })).filter((e) => e.action === 'token.create');
    expect(audit.find((e) => e.detail?.token_id === c.token_id)).toMatchObject({ actor: 'admin', outcome: 'ok', detail: { token_id: c.token_id, role: 'hospital', hospital_id: 'H5' } });
    expect(JSON.stringify(audit)).not.toContain(c.token);
  });

  it('refuses a bad request naming the field', async () => {
    for (const [body, field] of [
      [{ role: 'hospital' }, 'hospital_id'],
      [{ role: 'hospital', hospital_id: '1bad id' }, 'hospital_id'],
      [{ role: 'root' }, 'role'],
      [{ role: 'admin', hospital_id: 'H1' }, undefined],
    ] as const) {
      const res = await call('POST', '/api/v1/tokens', { token: ADMIN_TOKEN, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(res).code).toBe('INVALID_PAYLOAD');
      if (field) expect(errorOf(res).field, JSON.stringify(body)).toBe(field);
    }
    const noId = await call('POST', '/api/v1/tokens/revoke', { token: ADMIN_TOKEN, body: {} });
    expect(noId.status).toBe(400);
    expect(errorOf(noId).field).toBe('token_id');
    const unknown = await call('POST', '/api/v1/tokens/revoke', { token: ADMIN_TOKEN, body: { token_id: 'tok_ffffffffffff' } });
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown)).toMatchObject({ code: 'NOT_FOUND', field: 'token_id' });
  });

  it('revoking closes the connections signed in with that token at once; the token is refused after', async () => {
    const created = (await call('POST', '/api/v1/tokens', { token: ADMIN_TOKEN, body: { role: 'hospital', hospital_id: 'H6' } })).body as { token_id: string; token: string };
    const h6 = await FakeHospital.connect({ url: server.url, hospitalId: 'H6', token: created.token });
    const h1 = await FakeHospital.connect({ url: server.url, hospitalId: 'H1', token: H1 });
    const gone = new Promise<string>((resolve) => h6.socket.once('disconnect', (reason) => resolve(reason)));
    try {
      const revoked = await call('POST', '/api/v1/tokens/revoke', { token: ADMIN_TOKEN, body: { token_id: created.token_id } });
      expect(revoked).toMatchObject({ status: 200, body: { token_id: created.token_id, revoked: true, disconnected: 1 } });
      expect(await gone).toBe('io server disconnect');
      expect(h6.errors).toEqual([{ code: 'UNAUTHORIZED', message: 'this token was revoked', field: 'token' }]);
      expect(h1.socket.connected).toBe(true); // other hospitals stay
      expect((await call('GET', '/api/v1/whoami', { token: created.token })).status).toBe(401);
      await expect(FakeHospital.connect({ url: server.url, hospitalId: 'H6', token: created.token })).rejects.toThrow(/unknown or revoked token/);
      const again = await call('POST', '/api/v1/tokens/revoke', { token: ADMIN_TOKEN, body: { token_id: created.token_id } });
      expect(again.status).toBe(404);
      const listed = ((await call('GET', '/api/v1/tokens', { token: ADMIN_TOKEN })).body as { tokens: { token_id: string; revoked_at?: string }[] }).tokens.find((t) => t.token_id === created.token_id);
      expect(listed?.revoked_at).toMatch(/^\d{4}-/);
    } finally {
      h6.close();
      h1.close();
    }
  });
});

describe('OpenAPI document', () => {
  it('is public and validates as OpenAPI 3.1', async () => {
    const res = await call('GET', '/api/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    const validator = new Validator();
    const result = await validator.validate(res.body as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // every $ref resolves
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  it('documents exactly the route table, with 401 on authenticated routes, 403 on admin routes (and routes that check the role themselves), and public ones open', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).body as {
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(routeKeys().sort());
    for (const r of apiRoutes(server.coordinator, server.store)) {
      const op = doc.paths[r.path]![r.method.toLowerCase()]!;
      const codes = Object.keys(op.responses);
      if (r.access === 'public') expect(op.security, `${r.path} is public`).toEqual([]);
      else expect(codes, `${r.method} ${r.path}`).toContain('401');
      if (r.access === 'admin') expect(codes, `${r.method} ${r.path}`).toContain('403');
      else expect(codes.includes('403'), `${r.method} ${r.path}: 403 documented only where the route refuses roles itself`).toBe(r.endpoint.errors.includes(403));
    }
  });

  it('describes the run configuration with exactly the fields, strategies and secure-aggregation modes the server accepts', () => {
    const doc = openApiDocument() as { components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }> } };
    const documented = doc.components.schemas.RunConfig!.properties;
    expect(Object.keys(documented).sort()).toEqual(Object.keys(runConfigSchema.shape).sort());
    expect(documented.strategy!.enum).toEqual([...STRATEGY_NAMES]);
    expect(documented.secure_aggregation!.enum).toEqual(['none', 'secagg', 'he']); // the hand-kept document had lost 'he'
  });

  it("documents each route's path parameters, query and body as its zod schemas define them", () => {
    type Op = { parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: { required?: boolean; content: Record<string, { schema: unknown }> } };
    const doc = openApiDocument() as { paths: Record<string, Record<string, Op>> };
    for (const [name, e] of Object.entries(endpoints) as [EndpointName, (typeof endpoints)[EndpointName]][]) {
      const op = doc.paths[e.path]![e.method]!;
      const params = (op.parameters ?? []).map((p) => `${p.in}:${p.name}:${p.required ?? false}`).sort();
      const expected = [
        ...('params' in e ? Object.keys(e.params.shape).map((k) => `path:${k}:true`) : []),
        ...('query' in e ? Object.entries(e.query.shape).map(([k, v]) => `query:${k}:${!(v as { safeParse(x: unknown): { success: boolean } }).safeParse(undefined).success}`) : []),
      ].sort();
      expect(params, name).toEqual(expected);
      expect(op.requestBody !== undefined, `${name} body`).toBe('body' in e);
      if ('body' in e) expect(op.requestBody!.required ?? false, `${name} body required`).toBe('bodyRequired' in e && e.bodyRequired);
    }
  });

  it('answered every success with what the endpoint\'s zod response schema says (runs last)', () => {
    expect(mismatches).toEqual([]);
  });

  it('documents every status code these tests observed on each route (runs last)', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect([...observed.keys()].sort(), 'every route was exercised').toEqual(routeKeys().sort());
    for (const [key, codes] of observed) {
      const [method, path] = key.split(' ') as [string, string];
      const documented = Object.keys(doc.paths[path]![method.toLowerCase()]!.responses);
      for (const code of codes) expect(documented, `${key} answered ${code}`).toContain(String(code));
    }
  });
});

describe('Prometheus /metrics with FEDCARE_METRICS_TOKEN set', () => {
  const METRICS = 'metrics-token-0123456789abcdef';
  let closed: RunningServer;
  beforeAll(async () => {
    closed = await startTestServer({ FEDCARE_METRICS_TOKEN: METRICS });
  });
  afterAll(async () => {
    await closed?.close();
  });
  const get = (authorization?: string) => fetch(`${closed.url}/metrics`, authorization ? { headers: { authorization } } : {});

  it('answers the metrics and admin tokens, 401 with the Bearer challenge without or with a wrong token, 403 to a hospital, and audits the refusals', async () => {
    for (const token of [METRICS, ADMIN_TOKEN]) {
      const ok = await get(`Bearer ${token}`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('# TYPE fedcare_round gauge');
    }
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="fedcare"');
    expect(await none.json()).toEqual({ error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
    const wrong = await get(`Bearer ${METRICS}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="fedcare", error="invalid_token"');
    const hospital = await get(`Bearer ${HOSPITAL_TOKENS.H1}`);
    expect(hospital.status).toBe(403);
    expect(hospital.headers.get('www-authenticate')).toBe('Bearer realm="fedcare", error="insufficient_scope"');
    expect(await hospital.json()).toEqual({ error: { code: 'FORBIDDEN', message: '/metrics needs the metrics token (FEDCARE_METRICS_TOKEN) or the admin token' } });
    await closed.flushRefusals();
    const audit = (await closed.store.listAudit({ limit: 100 })).filter((e) => e.action === 'auth.refused');
    expect(audit.map((e) => [e.outcome, e.detail?.by])).toEqual([['rejected', { 'rest:401 /metrics': 2, 'rest:403 /metrics': 1 }]]);
    expect(JSON.stringify(audit)).not.toContain(METRICS);
    // the refusals are counted where an operator looks
    const text = await (await get(`Bearer ${METRICS}`)).text();
    expect(text).toMatch(/^fedcare_auth_denied_total\{surface="rest",status="401"\} 2$/m);
    expect(text).toMatch(/^fedcare_auth_denied_total\{surface="rest",status="403"\} 1$/m);
  });
});
