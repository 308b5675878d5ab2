/**
 * REST /api/v1 (seed spec 7.2) on node:http: a small route table with a role per route. Every
 * response is JSON; errors are `{ error: { code, message, field? } }`. 401 without a valid token,
 * 403 when the token's role may not use the route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hospitalIdSchema } from '@fedcare/shared/data';
import type { Store, TokenInfo, TokenPrincipal } from '@fedcare/shared/fl';
import { validate, runConfigSchema } from '@fedcare/shared/protocol';
import { stringifyMetrics } from '@fedcare/shared/util';
import { z } from 'zod';
import { RunConflictError, type Coordinator } from './coordinator';
import { openApiDocument } from './openapi';

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

const tokenSpecSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('hospital'), hospital_id: hospitalIdSchema }),
  z.strictObject({ role: z.literal('admin') }),
]);

/** A stored credential as REST (and `fedcare token list`) shows it: never the secret. */
export const tokenJson = (t: TokenInfo) => ({ token_id: t.tokenId, role: t.role, ...(t.hospitalId ? { hospital_id: t.hospitalId } : {}), created_at: t.createdAt, ...(t.revokedAt ? { revoked_at: t.revokedAt } : {}) });

export function apiRoutes(coordinator: Coordinator, store: Store, hooks: ApiHooks = {}): Route[] {
  return [
    { method: 'GET', path: '/api/v1/openapi.json', access: 'public', handler: () => [200, openApiDocument] },
    { method: 'GET', path: '/api/v1/status', access: 'any', handler: () => [200, coordinator.status()] },
    {
      method: 'GET',
      path: '/api/v1/whoami',
      access: 'any',
      handler: ({ principal }) => [200, principal?.role === 'hospital' ? { role: 'hospital', hospital_id: principal.hospitalId } : { role: 'admin' }],
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
      handler: async ({ url }) => {
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
            rounds: rounds.map((r) => ({ round_number: r.round, metrics: r.metrics, per_hospital: r.perHospital, participation: r.participation, timestamp: r.completedAt })),
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
        const spec = parsed.value.role === 'hospital' ? { role: 'hospital' as const, hospitalId: parsed.value.hospital_id } : { role: 'admin' as const };
        const created = await store.createToken(spec);
        await store.appendAudit({ actor, action: 'token.create', outcome: 'ok', detail: { token_id: created.tokenId, role: spec.role, ...(spec.hospitalId ? { hospital_id: spec.hospitalId } : {}) } });
        // The only time the token is shown: the database keeps its SHA-256.
        return [201, { token_id: created.tokenId, token: created.token, role: spec.role, ...(spec.hospitalId ? { hospital_id: spec.hospitalId } : {}) }];
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

export function createHttpHandler(
  routes: Route[],
  verify: (token: string | undefined) => Promise<TokenPrincipal | undefined>,
  extra: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean,
  onDenied: (req: IncomingMessage, status: number, path: string) => void,
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
        const token = bearer(req);
        principal = await verify(token);
        if (!principal) {
          onDenied(req, 401, url.pathname);
          throw unauthorized(token);
        }
        if (route.access === 'admin' && principal.role !== 'admin') {
          onDenied(req, 403, url.pathname);
          throw forbidden(`${url.pathname} needs the admin token; this is ${principal.role === 'hospital' ? `hospital ${principal.hospitalId}'s` : 'another'} token`);
        }
      }
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      const actor = principal ? (principal.role === 'admin' ? 'admin' : `hospital:${principal.hospitalId}`) : 'anonymous';
      const [status, value] = await route.handler({ url, body, principal, actor });
      send(status, value);
    } catch (e) {
      if (e instanceof HttpError) return send(e.status, { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } }, e.headers);
      send(500, { error: { code: 'INTERNAL', message: (e as Error).message } });
    }
  };
}

