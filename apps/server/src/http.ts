/**
 * REST /api/v1 (seed spec 7.2) on Hono with @hono/zod-openapi: the endpoints, their roles and
 * schemas are data in the shared core (`@fedcare/shared/api`, also what the typed client reads);
 * this file gives each one its handler, checks the bearer token and role before anything else,
 * lets Hono validate path parameters, query and body with the zod schemas, and generates the
 * OpenAPI 3.1 document from them. Every response is JSON; errors are `{ error: { code, message,
 * field? } }`. 401 without a valid token, 403 when the token's role may not use the route, 429
 * (with Retry-After) for an address blocked after repeated failed authentications, 500 with a
 * correlation id only (the error is logged under that id, never sent).
 *
 * Why Hono rather than Fastify: the coordinator's node:http server is shared with Socket.IO, static
 * files and /metrics, and Hono mounts as one request listener on it (@hono/node-server) where
 * Fastify wants to own the server; its zod-openapi integration takes our zod 4 schemas as they are;
 * and it speaks the web's Request/Response, the same API the typed client uses in a tab.
 *
 * Roles (views.ts decides what each may read): 'any' routes are read by admin, observer and
 * hospital tokens — a hospital sees the global figures and only its own per-hospital rows;
 * 'admin' routes (run control, credentials) need the admin token.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { OpenAPIHono, createRoute, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import type { RunConfigInput } from '@fedcare/shared/protocol';
import { apiErrorSchema, endpoints, type Endpoint, type EndpointName, type Endpoints } from '@fedcare/shared/api';
import { reportHtml, runAudit } from '@fedcare/shared/report';
import { modelCard, modelCardFor, storedBundle, storedCard, tabularModelCard, tabularModelCardFor, type Store, type TokenInfo, type TokenPrincipal, type TokenSpec } from '@fedcare/shared/fl';
import { stringifyMetrics } from '@fedcare/shared/util';
import { RunConflictError, type Coordinator } from './coordinator';
import { modelBackendReady } from './model';
import { viewRoundWire, viewStatus } from './views';

export type { Access } from '@fedcare/shared/api';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const BEARER_CHALLENGE = 'Bearer realm="fedcare"';

/** 401 with the challenge of RFC 6750 §3: the scheme alone without a bearer token, invalid_token for a wrong one. */
export function unauthorized(token: string | undefined): HttpError {
  const challenge = token === undefined ? BEARER_CHALLENGE : `${BEARER_CHALLENGE}, error="invalid_token"`;
  return new HttpError(401, 'UNAUTHORIZED', 'a valid bearer token is required', undefined, { 'www-authenticate': challenge });
}

/** 403 for a valid token of the wrong role (RFC 6750 §3.1 insufficient_scope). */
export function forbidden(message: string): HttpError {
  return new HttpError(403, 'FORBIDDEN', message, undefined, { 'www-authenticate': `${BEARER_CHALLENGE}, error="insufficient_scope"` });
}

const MAX_BODY = 64 * 1024;

/** What a handler gets: the validated parts of the request, and who asks. */
export interface RouteContext<K extends EndpointName = EndpointName> {
  params: Endpoints[K] extends { params: infer S extends z.ZodType } ? z.output<S> : Record<string, never>;
  query: Endpoints[K] extends { query: infer S extends z.ZodType } ? z.output<S> : Record<string, never>;
  body: Endpoints[K] extends { body: infer S extends z.ZodType } ? z.output<S> : undefined;
  /** The body as sent (it passed `body`'s schema): which keys the client gave, before defaults. */
  raw?: unknown;
  principal: TokenPrincipal | undefined;
  actor: string;
}

type Handler<K extends EndpointName> = (ctx: RouteContext<K>) => Promise<[number, z.input<Endpoints[K]['response']>]> | [number, z.input<Endpoints[K]['response']>];
type Handlers = { [K in EndpointName]: Handler<K> };

/** One served endpoint: its name, the shared definition, and its handler. */
export interface Route {
  name: EndpointName;
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI style (`/api/v1/runs/{run_id}`). */
  path: string;
  access: Endpoint['access'];
  endpoint: Endpoint;
  handler: (ctx: RouteContext) => Promise<[number, unknown]> | [number, unknown];
}

export interface ApiHooks {
  /** After a token is revoked: close the connections that signed in with it; resolves to how many. */
  onRevoke?: () => Promise<number>;
}

/** A stored credential as REST (and `fedcare token list`) shows it: never the secret. */
export const tokenJson = (t: TokenInfo) => ({
  token_id: t.tokenId,
  role: t.role,
  ...(t.hospitalId ? { hospital_id: t.hospitalId } : {}),
  created_at: t.createdAt,
  ...(t.expiresAt ? { expires_at: t.expiresAt } : {}),
  ...(t.revokedAt ? { revoked_at: t.revokedAt } : {}),
});

export function apiRoutes(coordinator: Coordinator, store: Store, hooks: ApiHooks = {}): Route[] {
  const metrics = async (runId: string, round: number | undefined, principal: TokenPrincipal | undefined): Promise<[number, z.input<Endpoints['getMetrics']['response']>]> => {
    if (!(await store.getRun(runId))) throw new HttpError(404, 'NOT_FOUND', `no run ${runId}`, 'run_id');
    const rounds = await store.getRoundMetrics(runId, round);
    return [
      200,
      {
        run_id: runId,
        rounds: rounds.map((r) =>
          viewRoundWire(principal, { round_number: r.round, metrics: r.metrics, per_hospital: r.perHospital, participation: r.participation, timestamp: r.completedAt }),
        ),
      },
    ];
  };
  const runJson = (r: Awaited<ReturnType<Store['listRuns']>>[number]) => ({
    run_id: r.runId,
    status: r.status,
    config: r.config as unknown as Record<string, unknown>,
    total_rounds: r.totalRounds,
    last_completed_round: r.lastCompletedRound,
    ...(r.reason ? { reason: r.reason } : {}),
    created_at: r.createdAt,
  });
  const stop = async (runId: string | undefined, actor: string): Promise<[number, { run_id?: string; status: string }]> => {
    const res = await coordinator.stop(runId, actor);
    if (!res) throw new HttpError(404, 'NO_ACTIVE_RUN', runId ? `run ${runId} is not running` : 'no run is running', 'run_id');
    return [200, { run_id: res.runId, status: res.status }];
  };
  const revoke = async (id: string, actor: string): Promise<[number, { token_id: string; revoked: true; disconnected: number }]> => {
    if (!(await store.revokeToken(id))) throw new HttpError(404, 'NOT_FOUND', `no active token ${id} (environment tokens are revoked by changing the environment)`, 'token_id');
    const disconnected = (await hooks.onRevoke?.()) ?? 0;
    await store.appendAudit({ actor, action: 'token.revoke', outcome: 'ok', detail: { token_id: id, disconnected } });
    return [200, { token_id: id, revoked: true, disconnected }];
  };
  const handlers: Handlers = {
    getOpenApi: () => [200, {}], // answered by the app itself (createHttpHandler), from the generated document
    getStatus: ({ principal }) => [200, viewStatus(principal, coordinator.status())],
    whoami: ({ principal }) => [200, principal?.role === 'hospital' ? { role: 'hospital', hospital_id: principal.hospitalId } : { role: principal?.role ?? 'admin' }],
    listRuns: async () => [200, { runs: (await store.listRuns()).map(runJson) }],
    getRun: async ({ params }) => {
      const r = await store.getRun(params.run_id);
      if (!r) throw new HttpError(404, 'NOT_FOUND', `no run ${params.run_id}`, 'run_id');
      return [200, runJson(r)];
    },
    getRunMetrics: ({ params, query, principal }) => metrics(params.run_id, query.round_number, principal),
    getModel: async ({ params, principal }) => {
      const run = await store.getRun(params.run_id);
      if (!run) throw new HttpError(404, 'NOT_FOUND', `no run ${params.run_id}`, 'run_id');
      const rounds = await store.getRoundMetrics(run.runId);
      if (principal?.role === 'observer') throw forbidden('a run\'s model is for the admin and the hospitals of the run, not an observer token');
      if (principal?.role === 'hospital' && !rounds.some((r) => r.participation.some((p) => p.hospitalId === principal.hospitalId))) {
        throw forbidden(`hospital ${principal.hospitalId} took no part in run ${run.runId}`);
      }
      await modelBackendReady();
      const stored = await storedBundle(store, run, rounds, params.version);
      if ('missing' in stored) {
        throw stored.missing === 'model'
          ? new HttpError(404, 'NOT_FOUND', `run ${run.runId} has no ${typeof params.version === 'number' ? `kept model for round ${params.version}` : `${params.version} model`}`, 'version')
          : new HttpError(404, 'NOT_FOUND', `run ${run.runId} has no feature statistics`, 'run_id');
      }
      const hospital = principal?.role === 'hospital' ? principal.hospitalId : undefined;
      // A tabular run's model is its MLP with the run's schema (TabularModelBundle), never read as the risk model.
      if ('tabular' in stored) return [200, { model: stored.tabular as unknown as Record<string, unknown>, weights_base64: Buffer.from(stored.weights).toString('base64'), model_card: tabularModelCardFor(tabularModelCard(run, rounds, stored.tabular), hospital) as unknown as Record<string, unknown> }];
      const { bundle } = stored;
      return [200, { model: bundle, weights_base64: Buffer.from(stored.weights).toString('base64'), model_card: modelCardFor(modelCard(run, rounds, bundle), hospital) as unknown as Record<string, unknown> }];
    },
    getRunReport: async ({ params }) => {
      const run = await store.getRun(params.run_id);
      if (!run) throw new HttpError(404, 'NOT_FOUND', `no run ${params.run_id}`, 'run_id');
      const rounds = await store.getRoundMetrics(run.runId);
      await modelBackendReady();
      const stored = await storedBundle(store, run, rounds, 'latest');
      const html = reportHtml(run, rounds, storedCard(run, rounds, stored), runAudit(run, rounds, await store.listAudit({ limit: 10_000 })));
      return [200, { run_id: run.runId, filename: `fedcare-report-${run.runId}.html`, html }];
    },
    getMetrics: ({ query, principal }) => metrics(query.run_id, query.round_number, principal),
    startTraining: async ({ raw, actor }) => {
      // The keys the request gave (validated against the schema already); the coordinator fills the
      // rest from its run defaults (`fedcare serve --config`), then the schema's.
      const requested = ((raw as { config?: RunConfigInput } | undefined)?.config ?? {}) as RunConfigInput;
      try {
        const { runId, config } = await coordinator.start(requested, actor);
        return [200, { run_id: runId, status: 'running', config: config as unknown as Record<string, unknown> }];
      } catch (e) {
        if (e instanceof RunConflictError) throw new HttpError(409, 'RUN_CONFLICT', e.message);
        if (e instanceof z.ZodError) {
          const i = e.issues[0];
          throw new HttpError(400, 'INVALID_PAYLOAD', `config.${i?.path.join('.')}: ${i?.message} (with the coordinator's run defaults)`, `config.${i?.path.join('.')}`);
        }
        throw e;
      }
    },
    stopTraining: ({ query, body, actor }) => stop(query.run_id ?? body?.run_id, actor),
    stopRun: ({ params, actor }) => stop(params.run_id, actor),
    // Credentials, for an admin without a shell on the coordinator's database (a deployed container).
    listTokens: async () => [200, { tokens: (await store.listTokens()).map(tokenJson) }],
    createToken: async ({ body: v, actor }) => {
      const expiry = v.expires_at === undefined ? {} : { expiresAt: new Date(v.expires_at).toISOString() };
      const spec: TokenSpec = v.role === 'hospital' ? { role: 'hospital', hospitalId: v.hospital_id, ...expiry } : { role: v.role, ...expiry };
      const created = await store.createToken(spec);
      const shown = { role: spec.role, ...(spec.hospitalId ? { hospital_id: spec.hospitalId } : {}), ...(spec.expiresAt ? { expires_at: spec.expiresAt } : {}) };
      await store.appendAudit({ actor, action: 'token.create', outcome: 'ok', detail: { token_id: created.tokenId, ...shown } });
      // The only time the token is shown: the database keeps its SHA-256.
      return [201, { token_id: created.tokenId, token: created.token, ...shown }];
    },
    revokeToken: ({ params, actor }) => revoke(params.token_id, actor),
    revokeTokenByBody: ({ body, actor }) => revoke(body.token_id, actor),
  };
  return (Object.keys(endpoints) as EndpointName[]).map((name) => {
    const endpoint: Endpoint = endpoints[name];
    return {
      name,
      method: endpoint.method.toUpperCase() as Route['method'],
      path: endpoint.path,
      access: endpoint.access,
      endpoint,
      handler: handlers[name] as unknown as Route['handler'],
    };
  });
}

export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m?.[1]?.trim();
}

/** 429 for an address blocked after repeated failed authentications (RFC 6585 §4, Retry-After in seconds). */
export function rateLimited(retryAfterS: number): HttpError {
  return new HttpError(429, 'RATE_LIMITED', `too many failed authentications from this address; try again in ${retryAfterS} s`, undefined, { 'retry-after': String(retryAfterS) });
}

export interface HttpGuard {
  /** Seconds this request's address must wait (it is blocked), else undefined. */
  retryAfter(req: IncomingMessage): Promise<number | undefined>;
  /** A refused credential (401) or role (403); resolves to the seconds the address is now blocked for, if it is. */
  denied(req: IncomingMessage, status: 401 | 403, path: string): Promise<number | undefined>;
  /** An unexpected error, answered as 500 with `id` only: log it. */
  internal(err: unknown, id: string, req: IncomingMessage): void;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request: the error names the field',
  401: 'No or unknown token',
  403: 'The token lacks the role',
  404: 'Not found',
  409: 'A run is already active',
  413: `Request body over ${MAX_BODY / 1024} KiB`,
  415: 'The body is not application/json',
  429: 'Too many failed authentications from this address: blocked for a minute (the limit is FEDCARE_AUTH_FAILURES_PER_MINUTE)',
  500: 'Internal error: a correlation id only, under which the coordinator logged it',
};
const ERROR_HEADERS: Record<number, Record<string, { description: string; schema: { type: 'string' | 'integer' } }>> = {
  401: { 'WWW-Authenticate': { description: 'RFC 6750 challenge: `Bearer realm="fedcare"`, with `error="invalid_token"` when a token was offered', schema: { type: 'string' } } },
  403: { 'WWW-Authenticate': { description: 'RFC 6750 challenge with `error="insufficient_scope"`', schema: { type: 'string' } } },
  429: { 'Retry-After': { description: 'Seconds until the address may try again', schema: { type: 'integer' } } },
};

/** The OpenAPI route of an endpoint: request schemas, the success response and every error status it answers. */
function openApiRoute(e: Endpoint, name: string, middleware: MiddlewareHandler[]): RouteConfig {
  const statuses = [...e.errors, ...(e.access === 'public' ? [] : [401, 429]), ...(e.access === 'admin' ? [403] : []), 500].sort();
  const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });
  return createRoute({
    method: e.method,
    path: e.path,
    operationId: name,
    summary: e.summary,
    ...(e.access === 'public' ? { security: [] } : {}),
    middleware,
    request: {
      ...(e.params ? { params: e.params } : {}),
      ...(e.query ? { query: e.query } : {}),
      ...(e.body ? { body: { required: e.bodyRequired ?? false, ...json(e.body) } } : {}),
    },
    responses: {
      [e.status]: { description: 'OK', ...json(e.response) },
      ...Object.fromEntries(statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? String(s), ...(ERROR_HEADERS[s] ? { headers: ERROR_HEADERS[s] } : {}), ...json(apiErrorSchema) }])),
    },
  });
}

type Env = { Bindings: HttpBindings; Variables: { principal: TokenPrincipal | undefined } };

/** The generated OpenAPI 3.1 document of `routes` (what /api/v1/openapi.json serves). */
export function openApiDocument(routes: Route[] = apiRoutesForDocument()): Record<string, unknown> {
  return buildApp(routes, async () => undefined, NO_GUARD).document;
}

const NO_GUARD: HttpGuard = { retryAfter: async () => undefined, denied: async () => undefined, internal: () => undefined };

/** The routes with handlers that are never called: enough to generate the document. */
function apiRoutesForDocument(): Route[] {
  return apiRoutes(undefined as unknown as Coordinator, undefined as unknown as Store);
}

function buildApp(routes: Route[], verify: (token: string | undefined) => Promise<TokenPrincipal | undefined>, guard: HttpGuard) {
  const app = new OpenAPIHono<Env>({
    // A request that fails its schema: 400 naming the first field at fault (the body's fields by path, e.g. config.rounds).
    defaultHook: (result) => {
      if (result.success) return;
      const issue = result.error.issues[0];
      const field = issue ? issue.path.map(String).join('.') || '(payload)' : '(payload)';
      throw new HttpError(400, 'INVALID_PAYLOAD', `${field}: ${issue?.message ?? 'invalid'}`, field);
    },
  });
  const send = (c: Context<Env>, status: number, value: unknown, headers: Record<string, string> = {}) =>
    c.body(stringifyMetrics(value), status as 200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });

  /** The bearer token and role, before the request's schemas are checked: a stranger learns nothing from 400s. */
  const authorize = (access: Endpoint['access']): MiddlewareHandler<Env> => async (c, next) => {
    if (access === 'public') {
      c.set('principal', undefined);
      return next();
    }
    const req = c.env.incoming;
    const path = new URL(c.req.url).pathname;
    const wait = await guard.retryAfter(req);
    if (wait !== undefined) {
      await guard.denied(req, 401, path);
      throw rateLimited(wait);
    }
    const token = bearer(req);
    const principal = await verify(token);
    if (!principal) {
      const blocked = await guard.denied(req, 401, path);
      throw blocked === undefined ? unauthorized(token) : rateLimited(blocked);
    }
    if (access === 'admin' && principal.role !== 'admin') {
      await guard.denied(req, 403, path);
      throw forbidden(`${path} needs the admin token; this is ${principal.role === 'hospital' ? `hospital ${principal.hospitalId}'s` : `an ${principal.role}`} token`);
    }
    c.set('principal', principal);
    return next();
  };
  const limit = bodyLimit({ maxSize: MAX_BODY, onError: () => { throw new HttpError(413, 'MESSAGE_TOO_LARGE', `request body over ${MAX_BODY} bytes`); } });

  let document: Record<string, unknown> = {};
  for (const r of routes) {
    const middleware = [authorize(r.access), ...(r.endpoint.body ? [limit] : [])] as MiddlewareHandler[];
    app.openapi(openApiRoute(r.endpoint, r.name, middleware), (async (c: Context<Env>) => {
      if (r.name === 'getOpenApi') return send(c, 200, document);
      const valid = c.req as unknown as { valid(target: string): unknown };
      const principal = c.get('principal');
      const actor = principal ? (principal.role === 'hospital' ? `hospital:${principal.hospitalId}` : principal.role) : 'anonymous';
      const [status, value] = await r.handler({
        params: (r.endpoint.params ? valid.valid('param') : {}) as never,
        query: (r.endpoint.query ? valid.valid('query') : {}) as never,
        body: (r.endpoint.body ? valid.valid('json') : undefined) as never,
        raw: r.endpoint.body ? await c.req.json().catch(() => undefined) : undefined,
        principal,
        actor,
      });
      return send(c, status, value);
    }) as never);
  }
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'An admin, observer or hospital token (fedcare token create).' });
  document = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'fedcare coordinator API',
      version: '1.1.0',
      description: 'Status, metrics, run control and credentials of the federated-learning coordinator. Hospitals train over Socket.IO (namespace /hospital), not over this API. Generated from the zod schemas in @fedcare/shared/api.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
  }) as unknown as Record<string, unknown>;

  // A path that exists with another method: 405; else 404.
  const patterns = routes.map((r) => ({ method: r.method, re: new RegExp(`^${r.path.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    if (patterns.some((p) => p.re.test(path))) return send(c, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${c.req.method} is not allowed on ${path}` } });
    return send(c, 404, { error: { code: 'NOT_FOUND', message: `no route ${path}` } });
  });
  app.onError((e, c) => {
    const [status, body, headers] = errorAnswer(e, guard, c.env.incoming);
    return send(c, status, body, headers);
  });
  return { app, document };
}

/**
 * The answer to an error thrown while handling a request: an HttpError as it says; Hono's 415 and
 * malformed-JSON 400 as INVALID_PAYLOAD; anything else a 500 with a correlation id only — never the
 * message (it may name files, SQL or a stack); the log has the error under that id.
 */
function errorAnswer(e: unknown, guard: HttpGuard, req: IncomingMessage): [number, unknown, Record<string, string>] {
  if (e instanceof HttpError) return [e.status, { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } }, e.headers];
  if (e instanceof HTTPException && e.status === 415) return [415, { error: { code: 'INVALID_PAYLOAD', message: 'the request body must be application/json', field: '(body)' } }, {}];
  if (e instanceof HTTPException && e.status === 400) return [400, { error: { code: 'INVALID_PAYLOAD', message: 'request body is not valid JSON', field: '(body)' } }, {}];
  const id = randomUUID();
  guard.internal(e, id, req);
  return [500, { error: { code: 'INTERNAL', message: `internal error; the coordinator's log has it under correlation id ${id}`, correlation_id: id } }, {}];
}

/**
 * The coordinator's HTTP handler: `extra` first (static apps, /metrics, /healthz, /readyz, CSP
 * reports), then the REST API.
 */
export function createHttpHandler(
  routes: Route[],
  verify: (token: string | undefined) => Promise<TokenPrincipal | undefined>,
  extra: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean,
  guard: HttpGuard,
) {
  const { app } = buildApp(routes, verify, guard);
  const listener = getRequestListener(app.fetch, { overrideGlobalObjects: false });
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (await extra(req, res, url)) return;
    } catch (e) {
      const [status, body, headers] = errorAnswer(e, guard, req);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
      res.end(stringifyMetrics(body));
      return;
    }
    await listener(req, res);
  };
}
