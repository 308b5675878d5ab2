/**
 * The dashboard's REST calls (history and admin actions only; live data comes over the socket), on
 * the one typed client of the shared core (`@fedcare/shared/api`: paths, inputs and answers checked
 * against the same zod schemas the coordinator serves and documents). `fetch` is injected so the
 * module runs under Node in tests. `describeError` turns a failed call into what the UI shows.
 */
import { ApiError, createApiClient, type CreatedTokenWire, type FetchLike, type RoundMetricsWire, type RunSummary, type TokenSpecInput, type TokenSummary } from '@fedcare/shared/api';
import type { RunConfigInput, ServerStatus } from '@fedcare/shared/protocol';

export { ApiError, type FetchLike, type RoundMetricsWire, type RunSummary, type TokenSummary };
/** A credential just created: the only time its secret is shown. */
export type CreatedToken = CreatedTokenWire;

export interface Api {
  status(): Promise<ServerStatus>;
  runs(): Promise<RunSummary[]>;
  metrics(runId: string): Promise<RoundMetricsWire[]>;
  start(config: RunConfigInput): Promise<{ run_id: string; status: string }>;
  stop(runId?: string): Promise<{ run_id?: string; status: string }>;
  tokens(): Promise<TokenSummary[]>;
  createToken(spec: TokenSpecInput): Promise<CreatedToken>;
  revokeToken(tokenId: string): Promise<{ token_id: string; revoked: true; disconnected: number }>;
  /** The run report (the page `fedcare report` writes) and the file name to save it under. */
  report(runId: string): Promise<{ run_id: string; filename: string; html: string }>;
}

export function createApi(token: string, opts: { baseUrl?: string; fetch?: FetchLike } = {}): Api {
  const { call } = createApiClient({ token, ...opts });
  return {
    status: () => call('getStatus'),
    runs: async () => (await call('listRuns')).runs,
    metrics: async (runId) => (await call('getRunMetrics', { params: { run_id: runId } })).rounds,
    start: (config) => call('startTraining', { body: { config } }),
    stop: (runId) => (runId ? call('stopRun', { params: { run_id: runId } }) : call('stopTraining')),
    tokens: async () => (await call('listTokens')).tokens,
    createToken: (spec) => call('createToken', { body: spec }),
    revokeToken: (tokenId) => call('revokeToken', { params: { token_id: tokenId } }),
    report: (runId) => call('getRunReport', { params: { run_id: runId } }),
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
