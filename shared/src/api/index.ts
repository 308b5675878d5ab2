/**
 * The coordinator's REST API /api/v1 (seed spec 7.2) as data: every endpoint's method, path, role,
 * and the zod schemas of its path parameters, query, body and response. The coordinator serves
 * these (Hono + @hono/zod-openapi, apps/server/src/http.ts) and generates the OpenAPI document from
 * them; `createApiClient` below is the one REST client (dashboard, portal, CLI). Nothing here
 * touches the network except through the `fetch` it is given, so it runs in a tab, a worker and Node.
 */
import { z } from 'zod';
import { hospitalIdSchema } from '../data/schema';
import { runConfigSchema, serverStatusSchema } from '../protocol/messages';

/** Who may call an endpoint: anyone; any valid token (views.ts decides what a hospital sees); the admin token. */
export type Access = 'public' | 'any' | 'admin';

export const apiErrorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional(),
      correlation_id: z.string().optional().describe("INTERNAL (500) only: the id the coordinator's log has the error under; the error itself is never sent"),
    }),
  })
  .meta({ id: 'Error' });
export type ApiErrorBody = z.infer<typeof apiErrorSchema>;

const roleSchema = z.enum(['admin', 'observer', 'hospital']);
const metricsMap = z.record(z.string(), z.number().nullable());
const runIdParam = z.string().min(1).max(64);
const positiveInt = z.coerce.number<number>({ message: 'must be a positive integer' }).int('must be a positive integer').min(1, 'must be a positive integer');

export const runSchema = z
  .object({
    run_id: z.string(),
    status: z.string(),
    config: z.record(z.string(), z.unknown()).optional(),
    total_rounds: z.number().int().optional(),
    last_completed_round: z.number().int().optional(),
    reason: z.string().optional(),
    created_at: z.string().optional(),
  })
  .meta({ id: 'Run' });
export type RunSummary = z.infer<typeof runSchema>;

export const roundMetricsSchema = z
  .object({
    round_number: z.number().int(),
    metrics: metricsMap,
    per_hospital: z.record(z.string(), metricsMap).optional(),
    participation: z.array(z.object({ hospitalId: z.string(), stage: z.string(), status: z.string(), reason: z.string().optional() })).optional(),
    timestamp: z.string(),
  })
  .meta({ id: 'RoundMetrics' });
export type RoundMetricsWire = z.infer<typeof roundMetricsSchema>;

const metricsResponse = z.object({ run_id: z.string(), rounds: z.array(roundMetricsSchema) });

export const tokenInfoSchema = z
  .object({
    token_id: z.string(),
    role: roleSchema,
    hospital_id: z.string().optional(),
    created_at: z.string(),
    expires_at: z.string().optional(),
    revoked_at: z.string().optional(),
  })
  .meta({ id: 'TokenInfo' });
export type TokenSummary = z.infer<typeof tokenInfoSchema>;

/** A token's expiry: ISO-8601 with an offset, in the future; without it the token lasts until revoked. */
const expiresAtSchema = z.iso
  .datetime({ offset: true })
  .refine((s) => Date.parse(s) > Date.now(), 'expires_at must be in the future')
  .describe('When the token stops working (ISO-8601 with an offset, in the future)');

export const tokenSpecSchema = z
  .discriminatedUnion('role', [
    z.strictObject({ role: z.literal('hospital'), hospital_id: hospitalIdSchema, expires_at: expiresAtSchema.optional() }),
    z.strictObject({ role: z.literal('admin'), expires_at: expiresAtSchema.optional() }),
    z.strictObject({ role: z.literal('observer'), expires_at: expiresAtSchema.optional() }),
  ])
  .meta({ id: 'TokenSpec' });
export type TokenSpecInput = z.input<typeof tokenSpecSchema>;

export const createdTokenSchema = z.object({
  token_id: z.string(),
  token: z.string().describe('The secret: shown in this response only (the coordinator keeps its SHA-256)'),
  role: roleSchema,
  hospital_id: z.string().optional(),
  expires_at: z.string().optional(),
});
export type CreatedTokenWire = z.infer<typeof createdTokenSchema>;

const revokedSchema = z.object({ token_id: z.string(), revoked: z.literal(true), disconnected: z.number().int().min(0) });
const stoppedSchema = z.object({ run_id: z.string().optional(), status: z.string() });

export interface Endpoint {
  readonly method: 'get' | 'post' | 'delete';
  /** OpenAPI style: `/api/v1/runs/{run_id}`. */
  readonly path: string;
  readonly access: Access;
  readonly summary: string;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  /** Whether a request must have a body (else an absent body is `{}`). */
  readonly bodyRequired?: boolean;
  readonly status: 200 | 201;
  readonly response: z.ZodType;
  /** Error statuses this endpoint answers besides 401/403/429 (which follow from `access`) and 500. */
  readonly errors: readonly (400 | 403 | 404 | 409 | 413 | 415)[];
  /** An older path kept working: the endpoint it is an alias of. */
  readonly aliasOf?: string;
}

/** Every REST endpoint. Names are the OpenAPI operationIds. */
export const endpoints = {
  getOpenApi: { method: 'get', path: '/api/v1/openapi.json', access: 'public', summary: 'This document (OpenAPI 3.1, generated from the zod schemas)', status: 200, response: z.record(z.string(), z.unknown()), errors: [] },
  getStatus: { method: 'get', path: '/api/v1/status', access: 'any', summary: 'Current training status', status: 200, response: serverStatusSchema, errors: [] },
  whoami: {
    method: 'get',
    path: '/api/v1/whoami',
    access: 'any',
    summary: "The bearer token's role and, for a hospital token, its hospital (the portal's sign-in)",
    status: 200,
    response: z.object({ role: roleSchema, hospital_id: z.string().optional() }),
    errors: [],
  },
  listRuns: { method: 'get', path: '/api/v1/runs', access: 'any', summary: 'Run history, oldest first', status: 200, response: z.object({ runs: z.array(runSchema) }), errors: [] },
  getRun: { method: 'get', path: '/api/v1/runs/{run_id}', access: 'any', summary: 'One run', params: z.object({ run_id: runIdParam }), status: 200, response: runSchema, errors: [404] },
  getRunMetrics: {
    method: 'get',
    path: '/api/v1/runs/{run_id}/metrics',
    access: 'any',
    summary: "Per-round metrics of a run (seed spec 6.1 names); a hospital token sees only its own per-hospital rows",
    params: z.object({ run_id: runIdParam }),
    query: z.object({ round_number: positiveInt.optional() }),
    status: 200,
    response: metricsResponse,
    errors: [400, 404],
  },
  getMetrics: {
    method: 'get',
    path: '/api/v1/metrics',
    access: 'any',
    summary: 'Per-round metrics of a run (the seed spec 7.2 path; GET /api/v1/runs/{run_id}/metrics is the same)',
    query: z.object({ run_id: runIdParam, round_number: positiveInt.optional() }),
    status: 200,
    response: metricsResponse,
    errors: [400, 404],
    aliasOf: 'getRunMetrics',
  },
  getModel: {
    method: 'get',
    path: '/api/v1/runs/{run_id}/models/{version}',
    access: 'any',
    summary:
      "A run's model as `fedcare export` writes it — model.json (definition, parameter layout, the run's feature statistics, vocabularies, temperature, SHA-256s), weights.bin as base64, the model card — for the admin and the hospitals that took part in the run; a tabular run's (task tabular) is its MLP manifest (fedcare-tabular-model/1: layout, the run's schema, SHA-256s), its weights and a tabular model card. version: latest, best or a round number",
    params: z.object({ run_id: runIdParam, version: z.union([z.enum(['latest', 'best']), positiveInt]) }),
    status: 200,
    response: z.object({ model: z.record(z.string(), z.unknown()), weights_base64: z.string(), model_card: z.record(z.string(), z.unknown()) }),
    errors: [400, 403, 404],
  },
  getRunReport: {
    method: 'get',
    path: '/api/v1/runs/{run_id}/report',
    access: 'admin',
    summary:
      'The run report as `fedcare report` writes it (admin): one self-contained HTML page — model card, configuration, metrics per round, hospitals, fairness, calibration, privacy, participation and dropouts, audit trail — with a file name to save it under',
    params: z.object({ run_id: runIdParam }),
    status: 200,
    response: z.object({ run_id: z.string(), filename: z.string(), html: z.string() }),
    errors: [404],
  },
  startTraining: {
    method: 'post',
    path: '/api/v1/train/start',
    access: 'admin',
    summary: 'Start a new training run (admin)',
    body: z.strictObject({ config: runConfigSchema.meta({ id: 'RunConfig' }).optional() }),
    status: 200,
    response: z.object({ run_id: z.string(), status: z.string(), config: z.record(z.string(), z.unknown()) }),
    errors: [400, 409, 413, 415],
  },
  stopTraining: {
    method: 'post',
    path: '/api/v1/train/stop',
    access: 'admin',
    summary: 'Stop the active run, or the one named (admin)',
    query: z.object({ run_id: runIdParam.optional() }),
    body: z.strictObject({ run_id: runIdParam.optional() }),
    status: 200,
    response: stoppedSchema,
    errors: [400, 404, 413, 415],
  },
  stopRun: {
    method: 'post',
    path: '/api/v1/runs/{run_id}/stop',
    access: 'admin',
    summary: 'Stop this run if it is running (admin)',
    params: z.object({ run_id: runIdParam }),
    status: 200,
    response: stoppedSchema,
    errors: [404],
  },
  listTokens: { method: 'get', path: '/api/v1/tokens', access: 'admin', summary: 'Stored credentials, without their secrets (admin)', status: 200, response: z.object({ tokens: z.array(tokenInfoSchema) }), errors: [] },
  createToken: {
    method: 'post',
    path: '/api/v1/tokens',
    access: 'admin',
    summary: 'Create a hospital, observer or admin token (admin); the token is in this response only',
    body: tokenSpecSchema,
    bodyRequired: true,
    status: 201,
    response: createdTokenSchema,
    errors: [400, 413, 415],
  },
  revokeToken: {
    method: 'delete',
    path: '/api/v1/tokens/{token_id}',
    access: 'admin',
    summary: 'Revoke a stored token (admin); connections that signed in with it are closed at once',
    params: z.object({ token_id: z.string().min(1).max(64) }),
    status: 200,
    response: revokedSchema,
    errors: [404],
  },
  revokeTokenByBody: {
    method: 'post',
    path: '/api/v1/tokens/revoke',
    access: 'admin',
    summary: 'Revoke a stored token (admin; the older path of DELETE /api/v1/tokens/{token_id})',
    body: z.strictObject({ token_id: z.string().min(1).max(64) }),
    bodyRequired: true,
    status: 200,
    response: revokedSchema,
    errors: [400, 404, 413, 415],
    aliasOf: 'revokeToken',
  },
} as const satisfies Record<string, Endpoint>;

export type Endpoints = typeof endpoints;
export type EndpointName = keyof Endpoints;

type Part<E, K extends 'params' | 'query' | 'body'> = E extends { [P in K]: infer S extends z.ZodType }
  ? object extends z.input<S>
    ? { [P in K]?: z.input<S> }
    : { [P in K]: z.input<S> }
  : { [P in K]?: undefined };
/** What a call of endpoint E takes. */
export type EndpointInput<E> = Part<E, 'params'> & Part<E, 'query'> & Part<E, 'body'>;
/** What a call of endpoint E resolves to. */
export type EndpointOutput<E> = E extends { response: infer S extends z.ZodType } ? z.output<S> : never;

/** `/api/v1/runs/{run_id}` with `{ run_id: 'r 1' }` → `/api/v1/runs/r%201`. */
export function fillPath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new TypeError(`${path}: path parameter ${name} is missing`);
    return encodeURIComponent(v);
  });
}

/** A failed call: the server's `{ error: { code, message, field } }` and the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type FetchLike = (
  input: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export interface ApiClientOptions {
  /** The coordinator's origin (`https://fl.example.org`); '' for the page's own. */
  baseUrl?: string;
  /** The bearer token (absent: public endpoints only). */
  token?: string;
  fetch?: FetchLike;
}

export type ApiCall = <K extends EndpointName>(
  name: K,
  ...input: object extends EndpointInput<Endpoints[K]> ? [input?: EndpointInput<Endpoints[K]>] : [input: EndpointInput<Endpoints[K]>]
) => Promise<EndpointOutput<Endpoints[K]>>;

/**
 * The typed REST client: `call('getRunMetrics', { params: { run_id } })`. Inputs are checked
 * against the endpoint's schemas before anything is sent, answers against its response schema
 * (an answer that does not match is an ApiError `INVALID_RESPONSE`, not data used as if it did).
 */
export function createApiClient(opts: ApiClientOptions = {}): { call: ApiCall } {
  const base = (opts.baseUrl ?? '').replace(/\/$/, '');
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => fetch(input, init));
  const call = async (name: EndpointName, input: { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown } = {}): Promise<unknown> => {
    const e: Endpoint = endpoints[name];
    const check = <T>(schema: z.ZodType<T> | undefined, value: unknown, what: string): T | undefined => {
      if (schema === undefined) return undefined;
      const r = schema.safeParse(value ?? {});
      if (r.success) return r.data;
      const issue = r.error.issues[0];
      const field = issue?.path.map(String).join('.') ?? '';
      throw new ApiError(0, 'INVALID_PAYLOAD', `${name} ${what}${field ? ` ${field}` : ''}: ${issue?.message ?? 'invalid'}`, field || undefined);
    };
    check(e.params, input.params, 'path parameter');
    check(e.query, input.query, 'query');
    if (e.body !== undefined && (input.body !== undefined || e.bodyRequired)) check(e.body, input.body, 'body');
    const qs = Object.entries(input.query ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    const url = `${base}${fillPath(e.path, input.params)}${qs ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const hasBody = e.body !== undefined && input.body !== undefined;
    if (hasBody) headers['content-type'] = 'application/json';
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await doFetch(url, { method: e.method.toUpperCase(), headers, ...(hasBody ? { body: JSON.stringify(input.body) } : {}) });
    } catch (err) {
      throw new ApiError(0, 'UNREACHABLE', `cannot reach ${base || 'the coordinator'}: ${(err as Error).message}`);
    }
    let payload: unknown;
    try {
      payload = await res.json();
    } catch {
      payload = undefined;
    }
    if (!res.ok) {
      const err = apiErrorSchema.safeParse(payload);
      if (err.success) throw new ApiError(res.status, err.data.error.code, err.data.error.message, err.data.error.field);
      throw new ApiError(res.status, `HTTP_${res.status}`, `HTTP ${res.status}`);
    }
    const parsed = e.response.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(res.status, 'INVALID_RESPONSE', `${name}: the coordinator's answer does not match the API (${issue?.path.map(String).join('.') || '(body)'}: ${issue?.message ?? 'invalid'})`);
    }
    return parsed.data;
  };
  return { call: call as ApiCall };
}
