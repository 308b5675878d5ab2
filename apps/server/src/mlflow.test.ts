// MLflow tracking (mlflow.ts) against a recording server that checks every request against the
// shapes of MLflow's REST API 2.0 (https://mlflow.org/docs/latest/rest-api.html) and answers as an
// MLflow tracking server with --serve-artifacts does. No live MLflow: it needs PyPI, not here.
// A real coordinator and real headless hospitals (FakeHospital) run each federation.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ROUND_METRIC_NAMES, TABULAR_BUNDLE_FORMAT } from '@fedcare/shared/fl';
import { storeTabularRun } from '../../../shared/src/testing/tabular-run';
import { flattenParams, mlflowMetricValue, mlflowOptionsFromEnv, type MlflowOptions } from './mlflow';
import { startServer, type RunningServer } from './server';
import { ADMIN_TOKEN, FakeHospital, HOSPITAL_TOKENS } from './testing/fake-hospital';

// --- The documented request shapes (REST API 2.0: CreateExperiment, SearchRuns, CreateRun, LogBatch, UpdateRun). ---
const tag = z.strictObject({ key: z.string().min(1).max(250), value: z.string().max(5000) });
const param = z.strictObject({ key: z.string().min(1).max(250), value: z.string().max(6000) });
/** A metric key MLflow accepts: alphanumerics, underscores, dashes, periods, spaces, slashes. */
const metricKey = z.string().min(1).max(250).regex(/^[/\w.\- ]+$/);
/** A `double` in proto3 JSON: a finite number, or the strings for the others (a bare NaN is not JSON). */
const double = z.union([z.number().finite(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
const millis = z.number().int().positive();
const schemas = {
  'experiments/create': z.strictObject({ name: z.string().min(1), artifact_location: z.string().optional(), tags: z.array(tag).optional() }),
  'runs/search': z.strictObject({
    experiment_ids: z.array(z.string().min(1)).min(1),
    filter: z.string().optional(),
    run_view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional(),
    max_results: z.number().int().min(1).max(50_000).optional(),
    order_by: z.array(z.string()).optional(),
    page_token: z.string().optional(),
  }),
  'runs/create': z.strictObject({ experiment_id: z.string().min(1), user_id: z.string().optional(), run_name: z.string().optional(), start_time: millis, tags: z.array(tag).max(100).optional() }),
  'runs/log-batch': z
    .strictObject({
      run_id: z.string().min(1),
      metrics: z.array(z.strictObject({ key: metricKey, value: double, timestamp: millis, step: z.number().int() })).max(1000).optional(),
      params: z.array(param).max(100).optional(),
      tags: z.array(tag).max(100).optional(),
    })
    .refine((b) => (b.metrics?.length ?? 0) + (b.params?.length ?? 0) + (b.tags?.length ?? 0) <= 1000, 'at most 1000 metrics, params and tags in all'),
  'runs/update': z.strictObject({ run_id: z.string().min(1), status: z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']), end_time: millis.optional(), run_name: z.string().optional() }),
} as const;
type Method = keyof typeof schemas;

interface RecordedRun {
  runId: string;
  experimentId: string;
  runName: string | undefined;
  startTime: number;
  tags: Map<string, string>;
  params: Map<string, string>;
  metrics: { key: string; value: number | string; timestamp: number; step: number }[];
  /** log-batch requests that carried metrics. */
  metricBatches: number;
  status: string;
  endTime?: number;
}

/** An MLflow tracking server as far as fedcare uses it: every request checked, recorded and answered. */
class RecordingMlflow {
  readonly requests: { method: string; path: string; body?: unknown; authorization?: string | undefined }[] = [];
  /** Requests that do not have the documented shape; a passing test has none. */
  readonly problems: string[] = [];
  readonly experiments = new Map<string, string>();
  readonly runs = new Map<string, RecordedRun>();
  readonly artifacts = new Map<string, { body: Buffer; type: string | undefined }>();
  /** 'down': every request answers 503, as a server behind a load balancer with no healthy target. */
  mode: 'up' | 'down' = 'up';
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(([status, body]) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private problem(what: string): [number, unknown] {
    this.problems.push(what);
    return [400, { error_code: 'INVALID_PARAMETER_VALUE', message: what }];
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown]> {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: (typeof this.requests)[number] = { method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization };
    this.requests.push(entry);
    if (this.mode === 'down') return [503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'no healthy upstream' }];

    const artifact = /^\/api\/2\.0\/mlflow-artifacts\/artifacts\/([^/]+)\/([^/]+)\/artifacts\/(.+)$/.exec(url.pathname);
    if (artifact) {
      if (req.method !== 'PUT') return this.problem(`${req.method} ${url.pathname}: artifacts are uploaded with PUT`);
      const [, exp, runId, file] = artifact as unknown as [string, string, string, string];
      const run = this.runs.get(runId);
      if (!run || run.experimentId !== exp) return this.problem(`artifact for an unknown run ${exp}/${runId}`);
      this.artifacts.set(decodeURIComponent(file), { body: raw, type: req.headers['content-type'] });
      return [200, {}];
    }
    const m = /^\/api\/2\.0\/mlflow\/(.+)$/.exec(url.pathname);
    if (!m) return this.problem(`${req.method} ${url.pathname}: no such endpoint`);
    const method = m[1] as string;
    if (method === 'experiments/get-by-name') {
      if (req.method !== 'GET') return this.problem('experiments/get-by-name is a GET');
      const name = url.searchParams.get('experiment_name');
      if (!name) return this.problem('experiments/get-by-name needs experiment_name');
      const id = this.experiments.get(name);
      if (id === undefined) return [404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Could not find experiment with name '${name}'` }];
      return [200, { experiment: { experiment_id: id, name, artifact_location: `mlflow-artifacts:/${id}`, lifecycle_stage: 'active' } }];
    }
    if (!(method in schemas)) return this.problem(`${req.method} ${url.pathname}: not an endpoint fedcare should call`);
    if (req.method !== 'POST') return this.problem(`${method} is a POST, got ${req.method}`);
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return this.problem(`${method}: content-type ${req.headers['content-type']}`);
    if (raw.length > 1024 * 1024) return this.problem(`${method}: request over 1 MB`);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.problem(`${method}: body is not JSON`);
    }
    entry.body = json;
    const parsed = schemas[method as Method].safeParse(json);
    if (!parsed.success) return this.problem(`${method}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const body = parsed.data as Record<string, unknown>;

    if (method === 'experiments/create') {
      const name = body.name as string;
      if (this.experiments.has(name)) return [400, { error_code: 'RESOURCE_ALREADY_EXISTS', message: `Experiment '${name}' already exists.` }];
      const id = String(this.experiments.size + 1);
      this.experiments.set(name, id);
      return [200, { experiment_id: id }];
    }
    if (method === 'runs/search') {
      const want = /^tags\.`fedcare\.run_id` = '([^']+)'$/.exec((body.filter as string | undefined) ?? '');
      if (!want) return this.problem(`runs/search: unexpected filter ${String(body.filter)}`);
      const found = [...this.runs.values()].filter((r) => (body.experiment_ids as string[]).includes(r.experimentId) && r.tags.get('fedcare.run_id') === want[1]);
      return [200, found.length ? { runs: found.map((r) => ({ info: this.info(r), data: {} })) } : {}];
    }
    if (method === 'runs/create') {
      const experimentId = body.experiment_id as string;
      if (![...this.experiments.values()].includes(experimentId)) return [404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `No Experiment with id=${experimentId} exists` }];
      const runId = createHash('sha256').update(`${experimentId}/${this.runs.size}`).digest('hex').slice(0, 32);
      const tags = new Map(((body.tags as { key: string; value: string }[] | undefined) ?? []).map((t) => [t.key, t.value]));
      const run: RecordedRun = { runId, experimentId, runName: body.run_name as string | undefined, startTime: body.start_time as number, tags, params: new Map(), metrics: [], metricBatches: 0, status: 'RUNNING' };
      this.runs.set(runId, run);
      return [200, { run: { info: this.info(run), data: { tags: body.tags ?? [] }, inputs: {} } }];
    }
    const run = this.runs.get(body.run_id as string);
    if (!run) return [404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run '${String(body.run_id)}' not found` }];
    if (method === 'runs/log-batch') {
      for (const p of (body.params as { key: string; value: string }[] | undefined) ?? []) {
        const had = run.params.get(p.key);
        if (had !== undefined && had !== p.value) return [400, { error_code: 'INVALID_PARAMETER_VALUE', message: `Changing param values is not allowed. Param with key='${p.key}' was already logged` }];
        run.params.set(p.key, p.value);
      }
      for (const t of (body.tags as { key: string; value: string }[] | undefined) ?? []) run.tags.set(t.key, t.value);
      const metrics = (body.metrics as RecordedRun['metrics'] | undefined) ?? [];
      if (metrics.length) run.metricBatches++;
      run.metrics.push(...metrics);
      return [200, {}];
    }
    // runs/update
    run.status = body.status as string;
    if (body.end_time !== undefined) run.endTime = body.end_time as number;
    return [200, { run_info: this.info(run) }];
  }

  private info(r: RecordedRun) {
    return { run_id: r.runId, run_uuid: r.runId, experiment_id: r.experimentId, run_name: r.runName, status: r.status, start_time: r.startTime, artifact_uri: `mlflow-artifacts:/${r.experimentId}/${r.runId}/artifacts`, lifecycle_stage: 'active' };
  }
}

/** A coordinator on port 0 with MLflow tracking, its pino lines collected. */
async function coordinator(mlflow: MlflowOptions, db = path.join(mkdtempSync(path.join(tmpdir(), 'fc-mlflow-')), 'fedcare.db')): Promise<{ server: RunningServer; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  let buffered = '';
  stream.on('data', (d: Buffer) => {
    buffered += d.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      logs.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
  });
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    db,
    env: { FEDCARE_ADMIN_TOKEN: ADMIN_TOKEN, FEDCARE_HOSPITAL_TOKENS: `H1:${HOSPITAL_TOKENS.H1},H2:${HOSPITAL_TOKENS.H2}` },
    logLevel: 'info',
    logStream: stream,
    limits: { authFailuresPerMinute: 10_000 },
    mlflow,
  });
  return { server, logs };
}

const RUN = { rounds: 2, seq_len: 12, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0 };

/** Two headless hospitals federate a 2-round run; resolves when the coordinator and MLflow's queue are done. */
async function federate(server: RunningServer, resume = false): Promise<{ runId: string; status: string | undefined }> {
  const hospitals = await Promise.all(['H1', 'H2'].map((h) => FakeHospital.connect({ url: server.url, hospitalId: h, token: HOSPITAL_TOKENS[h] as string, patients: 20 })));
  try {
    const t0 = Date.now();
    while (server.grid.available().length < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    const runId = resume ? (server.coordinator.status().run_id as string) : (await server.coordinator.start(RUN, 'test')).runId;
    const summary = await server.coordinator.idle();
    await server.mlflow!.idle();
    for (const h of hospitals) expect(h.failures).toEqual([]);
    return { runId, status: summary?.status };
  } finally {
    for (const h of hospitals) h.close();
  }
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('MLflow tracking', () => {
  it('a tabular run\'s artifacts are its MLP manifest (fedcare-tabular-model/1) with the schema, its weights and a tabular card, never a risk bundle', async () => {
    const mlflow = await new RecordingMlflow().start();
    open.push(mlflow);
    const { server } = await coordinator({ trackingUri: mlflow.url, experimentName: 'fedcare-test', backoffMs: 10 });
    open.push(server);
    const { schema, weights } = await storeTabularRun(server.store, 'tab-mlflow-1');
    server.mlflow!.runStarted('tab-mlflow-1');
    server.mlflow!.runEnded('tab-mlflow-1', 'completed');
    await server.mlflow!.idle();
    expect(mlflow.problems).toEqual([]);
    expect([...mlflow.artifacts.keys()].sort()).toEqual(['model-card.json', 'model/model.json', 'model/weights.bin']);
    const bundle = JSON.parse(mlflow.artifacts.get('model/model.json')!.body.toString('utf8')) as Record<string, unknown>;
    expect(bundle).toMatchObject({ format: TABULAR_BUNDLE_FORMAT, run_id: 'tab-mlflow-1', round: 1, schema });
    expect(Buffer.compare(mlflow.artifacts.get('model/weights.bin')!.body, Buffer.from(weights))).toBe(0);
    expect(JSON.parse(mlflow.artifacts.get('model-card.json')!.body.toString('utf8'))).toMatchObject({ format: 'fedcare-tabular-model-card/1', data: { target: 'readmitted' } });
  });

  it('logs a 2-round run in the documented request shapes: experiment, run with tags, params, every 6.1 metric per round (step = round), model card and model as artifacts, FINISHED', async () => {
    const mlflow = await new RecordingMlflow().start();
    open.push(mlflow);
    const { server } = await coordinator({ trackingUri: mlflow.url, experimentName: 'fedcare-test', token: 'mlflow-test-token', backoffMs: 10 });
    open.push(server);
    const before = Date.now();
    const { runId, status } = await federate(server);
    expect(status).toBe('completed');

    expect(mlflow.problems).toEqual([]);
    expect(server.mlflow!.stats()).toMatchObject({ failed: 0, retries: 0, pending: 0 });
    // Every request carried the token.
    expect(mlflow.requests.every((r) => r.authorization === 'Bearer mlflow-test-token')).toBe(true);
    // The experiment: looked up by name, created when missing.
    expect(mlflow.requests.slice(0, 2).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/2.0/mlflow/experiments/get-by-name', 'POST /api/2.0/mlflow/experiments/create']);
    expect(mlflow.experiments.get('fedcare-test')).toBe('1');

    // One run, with its tags.
    expect(mlflow.runs.size).toBe(1);
    const run = [...mlflow.runs.values()][0]!;
    expect(server.mlflow!.stats().runs).toEqual({ [runId]: run.runId });
    expect(run.experimentId).toBe('1');
    expect(run.runName).toBe(runId);
    expect(Object.fromEntries(run.tags)).toMatchObject({ 'mlflow.runName': runId, 'fedcare.run_id': runId, 'fedcare.strategy': 'fedavg', 'fedcare.dp': 'false', 'fedcare.secure_aggregation': 'none', 'fedcare.model': 'standard' });
    const stored = (await server.store.getRun(runId))!;
    expect(run.startTime).toBe(Date.parse(stored.createdAt));

    // Params: the whole run config, flattened.
    expect(Object.fromEntries(run.params)).toEqual(Object.fromEntries(flattenParams(stored.config).map((p) => [p.key, p.value])));
    expect(run.params.get('rounds')).toBe('2');
    expect(run.params.get('seq_len')).toBe('12');
    expect(run.params.get('strategy')).toBe('fedavg');

    // Metrics: one log-batch per round, every seed spec 6.1 metric with step = round, the values the store committed.
    expect(run.metricBatches).toBe(2);
    const rounds = await server.store.getRoundMetrics(runId);
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);
    for (const r of rounds) {
      for (const name of ROUND_METRIC_NAMES) {
        const logged = run.metrics.filter((m) => m.key === name && m.step === r.round);
        expect(logged, `${name} round ${r.round}`).toHaveLength(1);
        expect(logged[0]!.value, `${name} round ${r.round}`).toEqual(mlflowMetricValue(r.metrics[name] as number));
        expect(logged[0]!.timestamp).toBeGreaterThanOrEqual(before);
      }
    }
    // Without DP ε = ∞: sent as proto3's "Infinity", not dropped and not a bare token.
    expect(run.metrics.find((m) => m.key === 'privacy_epsilon')?.value).toBe('Infinity');
    expect(run.metrics.find((m) => m.key === 'test_accuracy' && m.step === 2)?.value).toBeCloseTo(rounds[1]!.metrics.test_accuracy as number);

    // Artifacts through the proxy: the model card (naming the run) and the final model as `fedcare export` writes it.
    expect([...mlflow.artifacts.keys()].sort()).toEqual(['MODEL_CARD.md', 'model-card.json', 'model/model.json', 'model/weights.bin']);
    const card = JSON.parse(mlflow.artifacts.get('model-card.json')!.body.toString('utf8')) as { format: string; model: { run_id: string; round: number; weights_sha256: string } };
    expect(card).toMatchObject({ format: 'fedcare-model-card/1', model: { run_id: runId, round: 2 } });
    expect(mlflow.artifacts.get('MODEL_CARD.md')!.body.toString('utf8')).toContain(runId);
    const bundle = JSON.parse(mlflow.artifacts.get('model/model.json')!.body.toString('utf8')) as { run_id: string; round: number; weights: { sha256: string; float32_count: number } };
    expect(bundle).toMatchObject({ run_id: runId, round: 2 });
    const weights = mlflow.artifacts.get('model/weights.bin')!;
    expect(weights.type).toBe('application/octet-stream');
    expect(weights.body.length).toBe(bundle.weights.float32_count * 4);
    expect(createHash('sha256').update(weights.body).digest('hex')).toBe(bundle.weights.sha256);
    expect(card.model.weights_sha256).toBe(bundle.weights.sha256);

    // The end: FINISHED, after the artifacts.
    expect(run.status).toBe('FINISHED');
    expect(run.endTime).toBeGreaterThanOrEqual(run.startTime);
    const last = mlflow.requests.at(-1)!;
    expect(`${last.method} ${last.path}`).toBe('POST /api/2.0/mlflow/runs/update');
  }, 60_000);

  it('carries an interrupted run on in the same MLflow run: the next coordinator finds it by its fedcare.run_id tag', async () => {
    const mlflow = await new RecordingMlflow().start();
    open.push(mlflow);
    const db = path.join(mkdtempSync(path.join(tmpdir(), 'fc-mlflow-')), 'fedcare.db');
    const options = { trackingUri: mlflow.url, backoffMs: 10 };
    const first = (await coordinator(options, db)).server;
    const hospitals = await Promise.all(['H1', 'H2'].map((h) => FakeHospital.connect({ url: first.url, hospitalId: h, token: HOSPITAL_TOKENS[h] as string, patients: 20 })));
    const t0 = Date.now();
    while (first.grid.available().length < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    const roundOne = new Promise<void>((resolve) => first.events.once('round', () => resolve()));
    const { runId } = await first.coordinator.start(RUN, 'test');
    await roundOne;
    // SIGTERM's path: the run is interrupted, not ended; what MLflow has queued is flushed.
    await first.close();
    for (const h of hospitals) h.close();
    const [run] = [...mlflow.runs.values()];
    expect(run?.status).toBe('RUNNING');
    expect(run?.tags.get('fedcare.run_id')).toBe(runId);

    const second = (await coordinator(options, db)).server;
    open.push(second);
    expect(second.coordinator.status()).toMatchObject({ run_id: runId, status: 'running' });
    expect((await federate(second, true)).status).toBe('completed');
    expect(mlflow.problems).toEqual([]);
    expect(mlflow.runs.size).toBe(1);
    expect(second.mlflow!.stats()).toMatchObject({ failed: 0, runs: { [runId]: run!.runId } });
    expect(mlflow.requests.filter((r) => r.path.endsWith('/runs/search'))).toHaveLength(2);
    expect(run!.status).toBe('FINISHED');
    expect([...new Set(run!.metrics.filter((m) => m.key === 'test_accuracy').map((m) => m.step))].sort()).toEqual([1, 2]);
  }, 60_000);

  it.each([
    ['answers 503', 'down'],
    ['is not listening', 'closed'],
  ] as const)('when MLflow %s, the run completes all its rounds; the warning and the counter say so', async (_what, how) => {
    const mlflow = await new RecordingMlflow().start();
    if (how === 'down') {
      mlflow.mode = 'down';
      open.push(mlflow);
    } else await mlflow.close();
    const { server, logs } = await coordinator({ trackingUri: mlflow.url, attempts: 3, backoffMs: 5, maxBackoffMs: 20 });
    open.push(server);
    const { runId, status } = await federate(server);
    expect(status).toBe('completed');
    expect((await server.store.getRun(runId))?.lastCompletedRound).toBe(2);

    const stats = server.mlflow!.stats();
    // start run, 2 rounds' metrics, artifacts, status: each given up after its 3 tries.
    expect(stats.failed).toBeGreaterThanOrEqual(5);
    expect(stats.retries).toBeGreaterThanOrEqual(2 * stats.failed);
    expect(stats.pending).toBe(0);
    expect(stats.runs).toEqual({});
    expect(stats.lastError).toMatch(how === 'down' ? /HTTP 503 TEMPORARILY_UNAVAILABLE/ : /ECONNREFUSED/);
    if (how === 'down') expect(mlflow.requests.length).toBe(3 * stats.failed);

    const warnings = logs.filter((l) => l.level === 40 && String(l.msg).startsWith('MLflow: request given up'));
    expect(warnings).toHaveLength(stats.failed);
    expect(warnings[0]).toMatchObject({ run_id: runId, op: 'start run', mlflow_failures: 1 });
    expect(warnings.map((w) => w.op)).toEqual(expect.arrayContaining(['round 1 metrics', 'round 2 metrics', 'run status FINISHED']));

    const res = await fetch(`${server.url}/metrics`);
    expect(await res.text()).toMatch(new RegExp(`^fedcare_mlflow_failures_total ${stats.failed}$`, 'm'));
  }, 60_000);

  it('takes its settings from the environment as MLflow\'s clients do, and refuses a URI it cannot use in one line', () => {
    expect(mlflowOptionsFromEnv({})).toBeUndefined();
    expect(mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'http://mlflow:5000' })).toEqual({ trackingUri: 'http://mlflow:5000' });
    expect(mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'https://mlflow.example/prefix', MLFLOW_EXPERIMENT_NAME: 'icu', MLFLOW_TRACKING_TOKEN: 't', MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' })).toEqual({
      trackingUri: 'https://mlflow.example/prefix',
      experimentName: 'icu',
      token: 't',
      username: 'u',
      password: 'p',
    });
    expect(() => mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' })).toThrow(/^MLFLOW_TRACKING_URI must be an http\(s\) URL/);
    expect(() => mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'databricks' })).toThrow(/^MLFLOW_TRACKING_URI must be an http\(s\) URL/);
    expect(() => mlflowOptionsFromEnv({ MLFLOW_TRACKING_URI: 'http://m', MLFLOW_TRACKING_USERNAME: 'u' })).toThrow(/go together/);
  });

  it('flattens the run config to dot keys and sends non-finite values as proto3 JSON strings', () => {
    expect(flattenParams({ strategy: 'fedprox', rounds: 3, dp: { noise_multiplier: 1.1, delta: 1e-5 }, tags: ['a'], none: undefined, long: 'x'.repeat(600) })).toEqual([
      { key: 'dp.delta', value: '0.00001' },
      { key: 'dp.noise_multiplier', value: '1.1' },
      { key: 'long', value: 'x'.repeat(500) },
      { key: 'rounds', value: '3' },
      { key: 'strategy', value: 'fedprox' },
      { key: 'tags', value: '["a"]' },
    ]);
    expect([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.25].map(mlflowMetricValue)).toEqual(['NaN', 'Infinity', '-Infinity', 0.25]);
    // What JSON.stringify would otherwise make of them: null, which MLflow's server refuses (metrics[].value is required).
    expect(JSON.stringify({ v: Number.NaN })).toBe('{"v":null}');
  });
});
