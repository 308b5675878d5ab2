/**
 * REST /api/v1 (seed spec 7.2) on node:http: a small route table with a role per route. Every
 * response is JSON; errors are `{ error: { code, message, field? } }`. 401 without a valid token,
 * 403 when the token's role may not use the route, 429 (with Retry-After) for an address blocked
 * after repeated failed authentications, 500 with a correlation id only (the error is logged
 * under that id, never sent).
 *
 * Roles (views.ts decides what each may read): 'any' routes are read by admin, observer and
 * hospital tokens — a hospital sees the global figures and only its own per-hospital rows;
 * 'admin' routes (run control, credentials) need the admin token.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hospitalIdSchema } from '@fedcare/shared/data';
import type { Store, TokenInfo, TokenPrincipal, TokenSpec } from '@fedcare/shared/fl';
import { validate, runConfigSchema } from '@fedcare/shared/protocol';
import { stringifyMetrics } from '@fedcare/shared/util';
import { z } from 'zod';
import { RunConflictError, type Coordinator } from './coordinator';
import { openApiDocument } from './openapi';
import { viewRoundWire, viewStatus } from './views';

export type Access = 'public' | 'any' | 'admin';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  access: Access;
  handler: (ctx: RouteContext) => Promise<[number, unknown]> | [number, unknown];
}

export interface RouteContext {
  url: URL;
  body: unknown;
  principal: TokenPrincipal | undefined;
  actor: string;
}

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


async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'MESSAGE_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'INVALID_PAYLOAD', 'request body is not valid JSON', '(body)');
  }
}

export interface ApiHooks {
  /** After a token is revoked: close the connections that signed in with it; resolves to how many. */
  onRevoke?: () => Promise<number>;
}

/** An expiry in the future (ISO-8601 with an offset). */
const expiresAtSchema = z.iso.datetime({ offset: true }).refine((s) => Date.parse(s) > Date.now(), 'expires_at must be in the future');

const tokenSpecSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('hospital'), hospital_id: hospitalIdSchema, expires_at: expiresAtSchema.optional() }),
  z.strictObject({ role: z.literal('admin'), expires_at: expiresAtSchema.optional() }),
  z.strictObject({ role: z.literal('observer'), expires_at: expiresAtSchema.optional() }),
]);

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
  return [
    { method: 'GET', path: '/api/v1/openapi.json', access: 'public', handler: () => [200, openApiDocument] },
    { method: 'GET', path: '/api/v1/status', access: 'any', handler: ({ principal }) => [200, viewStatus(principal, coordinator.status())] },
    {
      method: 'GET',
      path: '/api/v1/whoami',
      access: 'any',
      handler: ({ principal }) => [200, principal?.role === 'hospital' ? { role: 'hospital', hospital_id: principal.hospitalId } : { role: principal?.role ?? 'admin' }],
    },
    {
      method: 'GET',
      path: '/api/v1/runs',
      access: 'any',
      handler: async () => [
        200,
        {
          runs: (await store.listRuns()).map((r) => ({
            run_id: r.runId,
            status: r.status,
            config: r.config,
            total_rounds: r.totalRounds,
            last_completed_round: r.lastCompletedRound,
            ...(r.reason ? { reason: r.reason } : {}),
            created_at: r.createdAt,
          })),
        },
      ],
    },
    {
      method: 'GET',
      path: '/api/v1/metrics',
      access: 'any',
      handler: async ({ url, principal }) => {
        const runId = url.searchParams.get('run_id');
        if (!runId) throw new HttpError(400, 'INVALID_PAYLOAD', 'run_id is required', 'run_id');
        const rawRound = url.searchParams.get('round_number');
        const round = rawRound === null ? undefined : Number(rawRound);
        if (round !== undefined && !(Number.isInteger(round) && round >= 1)) throw new HttpError(400, 'INVALID_PAYLOAD', 'round_number must be a positive integer', 'round_number');
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
      },
    },
    {
      method: 'POST',
      path: '/api/v1/train/start',
      access: 'admin',
      handler: async ({ body, actor }) => {
        const parsed = validate(z.object({ config: runConfigSchema.optional() }).strict(), body ?? {});
        if (!parsed.ok) throw new HttpError(400, 'INVALID_PAYLOAD', parsed.message, parsed.field);
        try {
          const { runId, config } = await coordinator.start(parsed.value.config ?? {}, actor);
          return [200, { run_id: runId, status: 'running', config }];
        } catch (e) {
          if (e instanceof RunConflictError) throw new HttpError(409, 'RUN_CONFLICT', e.message);
          throw e;
        }
      },
    },
    {
      method: 'POST',
      path: '/api/v1/train/stop',
      access: 'admin',
      handler: async ({ url, body, actor }) => {
        const fromBody = body && typeof body === 'object' && 'run_id' in body ? String((body as { run_id: unknown }).run_id) : undefined;
        const runId = url.searchParams.get('run_id') ?? fromBody;
        const res = await coordinator.stop(runId, actor);
        if (!res) throw new HttpError(404, 'NO_ACTIVE_RUN', runId ? `run ${runId} is not running` : 'no run is running', 'run_id');
        return [200, { run_id: res.runId, status: res.status }];
      },
    },
    // Credentials, for an admin without a shell on the coordinator's database (a deployed container).
    { method: 'GET', path: '/api/v1/tokens', access: 'admin', handler: async () => [200, { tokens: (await store.listTokens()).map(tokenJson) }] },
    {
      method: 'POST',
      path: '/api/v1/tokens',
      access: 'admin',
      handler: async ({ body, actor }) => {
        const parsed = validate(tokenSpecSchema, body ?? {});
        if (!parsed.ok) throw new HttpError(400, 'INVALID_PAYLOAD', parsed.message, parsed.field);
        const v = parsed.value;
        const expiry = v.expires_at === undefined ? {} : { expiresAt: new Date(v.expires_at).toISOString() };
        const spec: TokenSpec = v.role === 'hospital' ? { role: 'hospital', hospitalId: v.hospital_id, ...expiry } : { role: v.role, ...expiry };
        const created = await store.createToken(spec);
        const shown = { role: spec.role, ...(spec.hospitalId ? { hospital_id: spec.hospitalId } : {}), ...(spec.expiresAt ? { expires_at: spec.expiresAt } : {}) };
        await store.appendAudit({ actor, action: 'token.create', outcome: 'ok', detail: { token_id: created.tokenId, ...shown } });
        // The only time the token is shown: the database keeps its SHA-256.
        return [201, { token_id: created.tokenId, token: created.token, ...shown }];
      },
    },
    {
      method: 'POST',
      path: '/api/v1/tokens/revoke',
      access: 'admin',
      handler: async ({ body, actor }) => {
        const parsed = validate(z.strictObject({ token_id: z.string().min(1).max(64) }), body ?? {});
        if (!parsed.ok) throw new HttpError(400, 'INVALID_PAYLOAD', parsed.message, parsed.field);
        const id = parsed.value.token_id;
        if (!(await store.revokeToken(id))) throw new HttpError(404, 'NOT_FOUND', `no active token ${id} (environment tokens are revoked by changing the environment)`, 'token_id');
        const disconnected = (await hooks.onRevoke?.()) ?? 0;
        await store.appendAudit({ actor, action: 'token.revoke', outcome: 'ok', detail: { token_id: id, disconnected } });
        return [200, { token_id: id, revoked: true, disconnected }];
      },
    },
  ];
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

export function createHttpHandler(
  routes: Route[],
  verify: (token: string | undefined) => Promise<TokenPrincipal | undefined>,
  extra: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean,
  guard: HttpGuard,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
      res.end(stringifyMetrics(value));
    };
    try {
      if (await extra(req, res, url)) return;
      const route = routes.find((r) => r.path === url.pathname && r.method === req.method);
      if (!route) {
        const other = routes.find((r) => r.path === url.pathname);
        if (other) return send(405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${url.pathname}` } });
        return send(404, { error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } });
      }
      let principal: TokenPrincipal | undefined;
      if (route.access !== 'public') {
        const wait = await guard.retryAfter(req);
        if (wait !== undefined) {
          await guard.denied(req, 401, url.pathname);
          throw rateLimited(wait);
        }
        const token = bearer(req);
        principal = await verify(token);
        if (!principal) {
          const blocked = await guard.denied(req, 401, url.pathname);
          throw blocked === undefined ? unauthorized(token) : rateLimited(blocked);
        }
        if (route.access === 'admin' && principal.role !== 'admin') {
          await guard.denied(req, 403, url.pathname);
          throw forbidden(`${url.pathname} needs the admin token; this is ${principal.role === 'hospital' ? `hospital ${principal.hospitalId}'s` : `an ${principal.role}`} token`);
        }
      }
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      const actor = principal ? (principal.role === 'hospital' ? `hospital:${principal.hospitalId}` : principal.role) : 'anonymous';
      const [status, value] = await route.handler({ url, body, principal, actor });
      send(status, value);
    } catch (e) {
      if (e instanceof HttpError) return send(e.status, { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } }, e.headers);
      // Never the message (it may name files, SQL or a stack): a correlation id the log has with the error.
      const id = randomUUID();
      guard.internal(e, id, req);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(500, { error: { code: 'INTERNAL', message: `internal error; the coordinator's log has it under correlation id ${id}`, correlation_id: id } });
    }
  };
}

