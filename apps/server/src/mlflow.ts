/**
 * MLflow tracking (issue 17 item 6): with `MLFLOW_TRACKING_URI` set, the coordinator logs each run to
 * an MLflow tracking server through its REST API 2.0 (https://mlflow.org/docs/latest/rest-api.html;
 * request limits from the Log Batch section: ≤ 1000 metrics, ≤ 100 params, ≤ 100 tags, ≤ 1 MB a request).
 * No MLflow client library: plain `fetch`, the requests MLflow's own Python client sends.
 *
 *   experiment  GET  /api/2.0/mlflow/experiments/get-by-name?experiment_name=…  (404
 *               RESOURCE_DOES_NOT_EXIST: POST /api/2.0/mlflow/experiments/create {name})
 *   run         POST /api/2.0/mlflow/runs/search {experiment_ids, filter: tags.`fedcare.run_id` = '…'}
 *               finds the MLflow run of a fedcare run resumed after a restart; otherwise
 *               POST /api/2.0/mlflow/runs/create {experiment_id, run_name, start_time, tags}
 *               with the tags mlflow.runName, fedcare.run_id, fedcare.strategy, fedcare.dp,
 *               fedcare.secure_aggregation, fedcare.model
 *   params      POST /api/2.0/mlflow/runs/log-batch {run_id, params}: the run config flattened to
 *               dot keys (dp.noise_multiplier, …), ≤ 100 a request
 *   metrics     POST /api/2.0/mlflow/runs/log-batch {run_id, metrics}: one request per committed round,
 *               every metric of the round (the seed spec 6.1 names and the others the engine adds),
 *               step = round, timestamp = when the round was committed (ms)
 *   artifacts   at the run's end, PUT /api/2.0/mlflow-artifacts/artifacts/<path of the run's
 *               artifact_uri>/<file> — MLflow's artifact proxy, there when the server runs with
 *               --serve-artifacts (the default of `mlflow server` since 2.0): model-card.json,
 *               MODEL_CARD.md, and the final (latest) model as `fedcare export` writes it,
 *               model/model.json + model/weights.bin. A run whose artifact_uri is not
 *               mlflow-artifacts: (s3://… without the proxy) gets no artifacts, with a warning.
 *   status      POST /api/2.0/mlflow/runs/update {run_id, status, end_time}: completed → FINISHED,
 *               stopped → KILLED, failed → FAILED; an interrupted run (SIGTERM) stays RUNNING and
 *               the next coordinator finds it again by its fedcare.run_id tag.
 *
 * Non-finite metric values (ε = ∞ without DP, NaN for a metric no hospital reported) are sent as the
 * strings "Infinity", "-Infinity", "NaN": proto3's JSON mapping of a double, which the server parses
 * (json_format.ParseDict) and MLflow's Python client itself sends; a bare NaN is not JSON at all.
 *
 * Never in the round's way: every call is queued per run and runs after the round path returned; a
 * request that fails (network error, timeout, 429, 5xx) is retried with exponential backoff, then
 * given up with a pino warning and the failure counter (`stats().failed`, Prometheus
 * `fedcare_mlflow_failures_total`); a 4xx is given up at once. The run goes on either way.
 */
import { randomInt } from 'node:crypto';
import type { FederationSummary, Logger, RoundReport, Store } from '@fedcare/shared/fl';
import { modelCard, modelCardMarkdown, storedBundle, tabularModelCard } from '@fedcare/shared/fl';
import { modelBackendReady } from './model';

export interface MlflowOptions {
  /** http(s)://host[:port][/prefix] of the tracking server (MLFLOW_TRACKING_URI). Credentials in the URL are sent as basic auth. */
  trackingUri: string;
  /** Experiment the runs go in (MLFLOW_EXPERIMENT_NAME); created when missing. Default "fedcare". */
  experimentName?: string;
  /** Bearer token (MLFLOW_TRACKING_TOKEN). */
  token?: string;
  /** Basic auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD); wins over the token, as in MLflow's client. */
  username?: string;
  password?: string;
  /** Tries per request, the first included (default 4). */
  attempts?: number;
  /** Delay before the first retry, doubled each time up to maxBackoffMs (defaults 500 ms, 8 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per request (default 15 s). */
  timeoutMs?: number;
  /** How long close() waits for queued requests (default 10 s). */
  flushTimeoutMs?: number;
  /** Upload the model card and the final model at the run's end (default true). */
  artifacts?: boolean;
}

export const MLFLOW_DEFAULT_EXPERIMENT = 'fedcare';
/** The Log Batch limits (REST API, "Request Limits"). */
export const MLFLOW_MAX_METRICS_PER_BATCH = 1000;
export const MLFLOW_MAX_PARAMS_PER_BATCH = 100;
/** Param values are cut here: the length every MLflow version accepts (newer servers take 6000). */
export const MLFLOW_MAX_PARAM_VALUE = 500;

/**
 * The MLflow settings from the environment as MLflow's own clients read them; undefined without
 * MLFLOW_TRACKING_URI. Throws a one-line Error naming the variable for a URI this client cannot use.
 */
export function mlflowOptionsFromEnv(env: Record<string, string | undefined>): MlflowOptions | undefined {
  const uri = env.MLFLOW_TRACKING_URI?.trim();
  if (!uri) return undefined;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`MLFLOW_TRACKING_URI must be an http(s) URL of an MLflow tracking server, got "${uri}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`MLFLOW_TRACKING_URI must be an http(s) URL of an MLflow tracking server (file stores and databricks are not supported), got "${uri}"`);
  }
  const o: MlflowOptions = { trackingUri: uri };
  const str = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const experimentName = str('MLFLOW_EXPERIMENT_NAME');
  if (experimentName) o.experimentName = experimentName;
  const token = str('MLFLOW_TRACKING_TOKEN');
  if (token) o.token = token;
  const username = str('MLFLOW_TRACKING_USERNAME');
  const password = str('MLFLOW_TRACKING_PASSWORD');
  if ((username === undefined) !== (password === undefined)) throw new Error('MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD go together: one is set without the other');
  if (username !== undefined && password !== undefined) Object.assign(o, { username, password });
  return o;
}

/** A metric value as the JSON of MLflow's `double`: finite numbers as numbers, the others as proto3's strings. */
export function mlflowMetricValue(v: number): number | 'NaN' | 'Infinity' | '-Infinity' {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return v;
}

export interface MlflowMetric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}

/** Every metric of a committed round, step = round. */
export function roundMetrics(r: RoundReport, timestamp: number): MlflowMetric[] {
  return Object.entries(r.metrics)
    .filter(([, v]) => typeof v === 'number')
    .map(([key, v]) => ({ key, value: mlflowMetricValue(v), timestamp, step: r.round }));
}

/** A run config as MLflow params: nested objects flattened to dot keys, arrays as JSON, values as strings (cut at MLFLOW_MAX_PARAM_VALUE). */
export function flattenParams(config: Record<string, unknown>, prefix = ''): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const [k, v] of Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const key = `${prefix}${k}`;
    if (v === undefined || v === null) continue;
    if (typeof v === 'object' && !Array.isArray(v)) out.push(...flattenParams(v as Record<string, unknown>, `${key}.`));
    else out.push({ key, value: (typeof v === 'string' ? v : JSON.stringify(v)).slice(0, MLFLOW_MAX_PARAM_VALUE) });
  }
  return out;
}

/** The run's tags (runs/create). */
export function runTags(runId: string, config: Record<string, unknown>): { key: string; value: string }[] {
  const s = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
  return [
    { key: 'mlflow.runName', value: runId },
    { key: 'fedcare.run_id', value: runId },
    { key: 'fedcare.strategy', value: s(config.strategy, 'fedavg') },
    { key: 'fedcare.dp', value: config.dp ? 'true' : 'false' },
    { key: 'fedcare.secure_aggregation', value: s(config.secure_aggregation, 'none') },
    { key: 'fedcare.model', value: s(config.model, 'standard') },
  ];
}

const STATUS: Record<Exclude<FederationSummary['status'], 'interrupted'>, 'FINISHED' | 'KILLED' | 'FAILED'> = { completed: 'FINISHED', stopped: 'KILLED', failed: 'FAILED' };

export interface MlflowStats {
  /** Requests MLflow answered with 2xx. */
  ok: number;
  /** Tries repeated after a failure (each one waited its backoff). */
  retries: number;
  /** Operations given up (after their retries, or at once on a 4xx): each one logged a warning. */
  failed: number;
  /** Operations queued or running. */
  pending: number;
  /** The last failure, "operation: why". */
  lastError: string | undefined;
  /** fedcare run id → MLflow run id, for the runs this process logged to. */
  runs: Record<string, string>;
}

class MlflowHttpError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errorCode: string | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

interface RunState {
  runId: string;
  chain: Promise<void>;
  mlflowRunId?: string;
  artifactUri?: string;
  paramsLogged: boolean;
  ended: boolean;
}

interface Deps {
  store: Store;
  log: Logger;
  /** Called once per operation given up (the server's Prometheus counter). */
  onFailure?: () => void;
}

export class MlflowTracker {
  private readonly api: string;
  private readonly tracking: URL;
  private readonly headers: Record<string, string>;
  private readonly experimentName: string;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly flushTimeoutMs: number;
  private readonly artifacts: boolean;
  private experimentId: string | undefined;
  private readonly runs = new Map<string, RunState>();
  private readonly closing = new AbortController();
  private closed = false;
  private readonly counts = { ok: 0, retries: 0, failed: 0, pending: 0 };
  private lastError: string | undefined;

  constructor(
    o: MlflowOptions,
    private readonly deps: Deps,
  ) {
    const url = new URL(o.trackingUri);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`MLflow tracking URI must be http(s): ${o.trackingUri}`);
    let username = o.username;
    let password = o.password;
    // fetch refuses URLs with credentials: they move to the Authorization header.
    if (url.username || url.password) {
      username ??= decodeURIComponent(url.username);
      password ??= decodeURIComponent(url.password);
      url.username = '';
      url.password = '';
    }
    url.search = '';
    url.hash = '';
    this.tracking = url;
    this.api = `${url.origin}${url.pathname.replace(/\/+$/, '')}/api/2.0/mlflow`;
    this.headers = { accept: 'application/json', 'user-agent': 'fedcare-coordinator' };
    if (username && password) this.headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    else if (o.token) this.headers.authorization = `Bearer ${o.token}`;
    this.experimentName = o.experimentName ?? MLFLOW_DEFAULT_EXPERIMENT;
    this.attempts = Math.max(1, o.attempts ?? 4);
    this.backoffMs = o.backoffMs ?? 500;
    this.maxBackoffMs = o.maxBackoffMs ?? 8000;
    this.timeoutMs = o.timeoutMs ?? 15_000;
    this.flushTimeoutMs = o.flushTimeoutMs ?? 10_000;
    this.artifacts = o.artifacts ?? true;
  }

  /** The tracking server, without credentials (for logs). */
  get trackingUri(): string {
    return `${this.tracking.origin}${this.tracking.pathname.replace(/\/+$/, '')}`;
  }

  stats(): MlflowStats {
    const runs: Record<string, string> = {};
    for (const s of this.runs.values()) if (s.mlflowRunId) runs[s.runId] = s.mlflowRunId;
    return { ...this.counts, lastError: this.lastError, runs };
  }

  /** A run started or resumed (idempotent): find or create its MLflow run, log its params. */
  runStarted(runId: string): void {
    this.state(runId);
  }

  /** A committed round: its metrics in one log-batch, queued. Returns at once. */
  round(r: RoundReport): void {
    const s = this.state(r.runId);
    if (!s) return;
    const metrics = roundMetrics(r, Date.now());
    this.enqueue(s, `round ${r.round} metrics`, async () => {
      const id = await this.ensureRun(s);
      for (let i = 0; i < metrics.length; i += MLFLOW_MAX_METRICS_PER_BATCH) await this.post('runs/log-batch', { run_id: id, metrics: metrics.slice(i, i + MLFLOW_MAX_METRICS_PER_BATCH) });
    });
  }

  /** A run ended (not interrupted): the model card and final model as artifacts, then its status. Once per run. */
  runEnded(runId: string, status: Exclude<FederationSummary['status'], 'interrupted'>): void {
    const s = this.state(runId);
    if (!s || s.ended) return;
    s.ended = true;
    const endTime = Date.now();
    if (this.artifacts) this.enqueue(s, 'artifacts', () => this.uploadArtifacts(s));
    this.enqueue(s, `run status ${STATUS[status]}`, async () => {
      await this.post('runs/update', { run_id: await this.ensureRun(s), status: STATUS[status], end_time: endTime });
    });
  }

  /** Resolves when everything queued so far (and whatever it queued) is done. */
  async idle(): Promise<void> {
    for (;;) {
      const chains = [...this.runs.values()].map((s) => s.chain);
      await Promise.allSettled(chains);
      if (this.counts.pending === 0) return;
    }
  }

  /** Waits up to flushTimeoutMs for the queue, then abandons what is left (in-flight requests aborted, no more retries). */
  async close(): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.idle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.flushTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) this.deps.log.warn({ pending: this.counts.pending, tracking_uri: this.trackingUri }, 'MLflow: closing with requests still queued; they are abandoned');
    this.closing.abort();
  }

  private state(runId: string): RunState | undefined {
    let s = this.runs.get(runId);
    if (s) return s;
    if (this.closed) return undefined;
    s = { runId, chain: Promise.resolve(), paramsLogged: false, ended: false };
    this.runs.set(runId, s);
    const state = s;
    this.enqueue(s, 'start run', async () => void (await this.ensureRun(state)));
    return s;
  }

  private enqueue(s: RunState, op: string, fn: () => Promise<void>): void {
    this.counts.pending++;
    s.chain = s.chain
      .then(() => {
        if (this.closing.signal.aborted) throw new Error('the coordinator closed before it was sent');
        return fn();
      })
      .catch((e: unknown) => this.fail(op, s.runId, e))
      .finally(() => void this.counts.pending--);
  }

  private fail(op: string, runId: string, e: unknown): void {
    this.counts.failed++;
    const why = (e as Error).message;
    this.lastError = `${op}: ${why}`;
    this.deps.log.warn({ run_id: runId, op, err: why, mlflow_failures: this.counts.failed, tracking_uri: this.trackingUri }, 'MLflow: request given up after its retries; the run goes on without it');
    this.deps.onFailure?.();
  }

  /** The run's MLflow run id: found by its fedcare.run_id tag (a resumed run) or created; its params logged once. */
  private async ensureRun(s: RunState): Promise<string> {
    if (!s.mlflowRunId) {
      const run = await this.deps.store.getRun(s.runId).catch(() => undefined);
      const config = run?.config ?? {};
      const experimentId = await this.ensureExperiment();
      const found = await this.post<{ runs?: { info: { run_id: string; artifact_uri?: string } }[] }>('runs/search', {
        experiment_ids: [experimentId],
        filter: `tags.\`fedcare.run_id\` = '${s.runId.replace(/'/g, "\\'")}'`,
        max_results: 1,
      });
      let info = found.runs?.[0]?.info;
      if (!info) {
        const startTime = run ? Date.parse(run.createdAt) : Number.NaN;
        const created = await this.post<{ run: { info: { run_id: string; artifact_uri?: string } } }>('runs/create', {
          experiment_id: experimentId,
          run_name: s.runId,
          start_time: Number.isFinite(startTime) ? startTime : Date.now(),
          tags: runTags(s.runId, config),
        });
        info = created.run.info;
      }
      s.mlflowRunId = info.run_id;
      if (info.artifact_uri) s.artifactUri = info.artifact_uri;
      this.deps.log.info({ run_id: s.runId, mlflow_run_id: s.mlflowRunId, experiment_id: experimentId, resumed: Boolean(found.runs?.length), tracking_uri: this.trackingUri }, 'MLflow: logging the run');
      if (!s.paramsLogged) {
        const params = flattenParams(config);
        try {
          for (let i = 0; i < params.length; i += MLFLOW_MAX_PARAMS_PER_BATCH) await this.post('runs/log-batch', { run_id: s.mlflowRunId, params: params.slice(i, i + MLFLOW_MAX_PARAMS_PER_BATCH) });
          s.paramsLogged = true;
        } catch (e) {
          // The params never hold the metrics up; a refused batch (4xx) is not tried again.
          if (e instanceof MlflowHttpError && !e.retryable) s.paramsLogged = true;
          this.fail('params', s.runId, e);
        }
      }
    }
    return s.mlflowRunId;
  }

  private async ensureExperiment(): Promise<string> {
    if (this.experimentId) return this.experimentId;
    const byName = async () => {
      const got = await this.request<{ experiment: { experiment_id: string; lifecycle_stage?: string } }>('GET', `${this.api}/experiments/get-by-name?experiment_name=${encodeURIComponent(this.experimentName)}`, undefined, { notFound: true });
      if (got?.experiment.lifecycle_stage === 'deleted') throw new MlflowHttpError(`experiment "${this.experimentName}" is deleted in MLflow: restore it or set MLFLOW_EXPERIMENT_NAME`, undefined, undefined, false);
      return got?.experiment.experiment_id;
    };
    let id = await byName();
    if (id === undefined) {
      try {
        id = (await this.post<{ experiment_id: string }>('experiments/create', { name: this.experimentName })).experiment_id;
      } catch (e) {
        // Another writer created it in between.
        if (!(e instanceof MlflowHttpError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
        id = await byName();
        if (id === undefined) throw e;
      }
    }
    this.experimentId = id;
    return id;
  }

  /** Where the run's artifacts go through the artifact proxy, resolved as MLflow's MlflowArtifactsRepository does; undefined when the run's store is not proxied. */
  private artifactBase(s: RunState): string | undefined {
    const uri = s.artifactUri ?? `mlflow-artifacts:/${this.experimentId ?? '0'}/${s.mlflowRunId ?? ''}/artifacts`;
    if (!uri.startsWith('mlflow-artifacts:')) return undefined;
    const parsed = new URL(uri);
    const origin = parsed.host ? `${this.tracking.protocol}//${parsed.host}` : this.tracking.origin;
    const rel = parsed.pathname.replace(/^\/+|\/+$/g, '');
    return `${origin}${this.tracking.pathname.replace(/\/+$/, '')}/api/2.0/mlflow-artifacts/artifacts/${rel}`;
  }

  private async uploadArtifacts(s: RunState): Promise<void> {
    await this.ensureRun(s);
    const base = this.artifactBase(s);
    if (!base) {
      this.deps.log.warn({ run_id: s.runId, artifact_uri: s.artifactUri }, 'MLflow: the run\'s artifact store is not the mlflow-artifacts proxy (start the server with --serve-artifacts); no artifacts uploaded');
      return;
    }
    const { store } = this.deps;
    const run = await store.getRun(s.runId);
    if (!run || run.lastCompletedRound < 1) return;
    const rounds = await store.getRoundMetrics(run.runId);
    await modelBackendReady();
    const stored = await storedBundle(store, run, rounds, 'latest');
    if ('missing' in stored) {
      this.deps.log.warn({ run_id: s.runId, missing: stored.missing }, 'MLflow: the run has no exportable model; no artifacts uploaded');
      return;
    }
    const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
    // A tabular run's model is its MLP manifest with the run's schema (no Markdown card: that one describes the risk model).
    const files: [string, string | Uint8Array, string][] =
      'tabular' in stored
        ? [
            ['model-card.json', json(tabularModelCard(run, rounds, stored.tabular)), 'application/json'],
            ['model/model.json', json(stored.tabular), 'application/json'],
            ['model/weights.bin', stored.weights, 'application/octet-stream'],
          ]
        : [
            ['model-card.json', json(modelCard(run, rounds, stored.bundle)), 'application/json'],
            ['MODEL_CARD.md', modelCardMarkdown(modelCard(run, rounds, stored.bundle)), 'text/markdown'],
            ['model/model.json', json(stored.bundle), 'application/json'],
            ['model/weights.bin', stored.weights, 'application/octet-stream'],
          ];
    for (const [file, body, type] of files) {
      const url = `${base}/${file.split('/').map(encodeURIComponent).join('/')}`;
      try {
        await this.request('PUT', url, { body: typeof body === 'string' ? Buffer.from(body) : body, type });
      } catch (e) {
        this.fail(`artifact ${file}`, s.runId, e);
      }
    }
  }

  private async post<T>(method: string, body: unknown): Promise<T> {
    return (await this.request<T>('POST', `${this.api}/${method}`, { body: JSON.stringify(body), type: 'application/json' })) as T;
  }

  /** One request with its retries; `notFound`: a 404 resolves to undefined instead of failing. */
  private async request<T>(method: 'GET' | 'POST' | 'PUT', url: string, payload?: { body: string | Uint8Array; type: string }, o: { notFound?: boolean } = {}): Promise<T | undefined> {
    const what = `${method} ${url.replace(this.tracking.origin, '').split('?')[0]}`;
    for (let attempt = 1; ; attempt++) {
      let err: MlflowHttpError;
      try {
        const res = await fetch(url, {
          method,
          headers: { ...this.headers, ...(payload ? { 'content-type': payload.type } : {}) },
          // A Blob for bytes: one body type that Node's and the DOM's fetch typings both take.
          ...(payload ? { body: typeof payload.body === 'string' ? payload.body : new Blob([payload.body as Uint8Array<ArrayBuffer>]) } : {}),
          signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.closing.signal]),
        });
        const text = await res.text();
        if (res.ok) {
          this.counts.ok++;
          return (text ? JSON.parse(text) : {}) as T;
        }
        let code: string | undefined;
        let message = text.slice(0, 300);
        try {
          const j = JSON.parse(text) as { error_code?: unknown; message?: unknown };
          if (typeof j.error_code === 'string') code = j.error_code;
          if (typeof j.message === 'string') message = j.message.slice(0, 300);
        } catch {
          // not JSON (a proxy's error page)
        }
        if (o.notFound && (res.status === 404 || code === 'RESOURCE_DOES_NOT_EXIST')) return undefined;
        err = new MlflowHttpError(`${what}: HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, res.status, code, res.status === 429 || res.status >= 500);
      } catch (e) {
        if (e instanceof SyntaxError) throw new MlflowHttpError(`${what}: the answer is not JSON`, undefined, undefined, false);
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        err = new MlflowHttpError(`${what}: ${cause?.code ?? cause?.message ?? (e as Error).message}`, undefined, undefined, !this.closing.signal.aborted);
      }
      if (!err.retryable || attempt >= this.attempts) throw new MlflowHttpError(`${err.message}${attempt > 1 ? ` (${attempt} tries)` : ''}`, err.status, err.errorCode, err.retryable);
      this.counts.retries++;
      const delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
      // ±25 % jitter, so that coordinators restarted together do not retry in step.
      await sleep(delay * (0.75 + randomInt(0, 501) / 1000), this.closing.signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
