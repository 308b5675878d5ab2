/**
 * REST /api/v1 client (history and admin actions only; live data comes over the socket). `fetch` is
 * injected so the module runs under Node in tests. Errors keep the server's `{ error: { code,
 * message, field } }` and the HTTP status; `describeError` turns them into what the UI shows.
 */
import type { RunConfigInput, ServerStatus } from '@fedcare/shared/protocol';
import type { Metrics } from './metrics';

export interface RunSummary {
  run_id: string;
  status: string;
  config?: Record<string, unknown>;
  total_rounds?: number;
  last_completed_round?: number;
  reason?: string;
  created_at?: string;
}

export interface RoundMetricsWire {
  round_number: number;
  metrics: Record<string, number | null>;
  per_hospital?: Record<string, Metrics>;
  participation?: unknown[];
  timestamp: string;
}

/** A stored credential as the coordinator lists it (never the secret). */
export interface TokenSummary {
  token_id: string;
  role: 'admin' | 'hospital';
  hospital_id?: string;
  created_at: string;
  revoked_at?: string;
}

/** A credential just created: the only time its secret is shown. */
export interface CreatedToken {
  token_id: string;
  token: string;
  role: 'admin' | 'hospital';
  hospital_id?: string;
}

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

export type FetchLike = (input: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export interface Api {
  status(): Promise<ServerStatus>;
  runs(): Promise<RunSummary[]>;
  metrics(runId: string): Promise<RoundMetricsWire[]>;
  start(config: RunConfigInput): Promise<{ run_id: string; status: string }>;
  stop(runId?: string): Promise<{ run_id?: string; status: string }>;
  tokens(): Promise<TokenSummary[]>;
  createToken(spec: { role: 'hospital'; hospital_id: string } | { role: 'admin' }): Promise<CreatedToken>;
  revokeToken(tokenId: string): Promise<{ token_id: string; revoked: true; disconnected: number }>;
}

export function createApi(token: string, opts: { baseUrl?: string; fetch?: FetchLike } = {}): Api {
  const base = (opts.baseUrl ?? '').replace(/\/$/, '');
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await doFetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    let payload: unknown;
    try {
      payload = await res.json();
    } catch {
      payload = undefined;
    }
    if (!res.ok) {
      const err = (payload as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `HTTP ${res.status}`, err?.field);
    }
    return payload as T;
  }
  return {
    status: () => call<ServerStatus>('GET', '/api/v1/status'),
    runs: async () => (await call<{ runs: RunSummary[] }>('GET', '/api/v1/runs')).runs,
    metrics: async (runId) => (await call<{ rounds: RoundMetricsWire[] }>('GET', `/api/v1/metrics?run_id=${encodeURIComponent(runId)}`)).rounds,
    start: (config) => call('POST', '/api/v1/train/start', { config }),
    stop: (runId) => call('POST', `/api/v1/train/stop${runId ? `?run_id=${encodeURIComponent(runId)}` : ''}`),
    tokens: async () => (await call<{ tokens: TokenSummary[] }>('GET', '/api/v1/tokens')).tokens,
    createToken: (spec) => call('POST', '/api/v1/tokens', spec),
    revokeToken: (tokenId) => call('POST', '/api/v1/tokens/revoke', { token_id: tokenId }),
  };
}

/** The text the UI shows for a failed call: 403 means the token is not the admin token. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 403) return 'This action needs the admin token.';
    if (e.status === 401) return 'The token was not accepted (401): sign in again.';
    return `${e.message}${e.field && !e.message.includes(e.field) ? ` (${e.field})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}
