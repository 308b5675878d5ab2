import { describe, expect, it } from 'vitest';
import { ApiError, createApi, describeError, type FetchLike } from './api';

function fakeFetch(status: number, body: unknown, calls: Array<{ url: string; init: Parameters<FetchLike>[1] }> = []): FetchLike {
  return async (url, init) => {
    calls.push({ url, init });
    return { ok: status >= 200 && status < 300, status, json: async () => body };
  };
}

describe('createApi', () => {
  it('sends the bearer token and the config on start', async () => {
    const calls: Array<{ url: string; init: Parameters<FetchLike>[1] }> = [];
    const answer = { run_id: 'r1', status: 'running', config: { rounds: 3 } };
    const api = createApi('tok', { baseUrl: 'http://h:1/', fetch: fakeFetch(200, answer, calls) });
    await expect(api.start({ rounds: 3 })).resolves.toEqual(answer);
    expect(calls[0]?.url).toBe('http://h:1/api/v1/train/start');
    expect(calls[0]?.init?.method).toBe('POST');
    expect(calls[0]?.init?.headers?.authorization).toBe('Bearer tok');
    expect(JSON.parse(calls[0]?.init?.body ?? '')).toEqual({ config: { rounds: 3 } });
  });

  it('puts run_id in the path for metrics and stop (encoded), and stops the active run without one', async () => {
    const calls: Array<{ url: string; init: Parameters<FetchLike>[1] }> = [];
    const api = createApi('tok', { fetch: fakeFetch(200, { run_id: 'x', rounds: [], status: 'stopped' }, calls) });
    await api.metrics('a b');
    await api.stop('r&1');
    await api.stop();
    expect(calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual(['GET /api/v1/runs/a%20b/metrics', 'POST /api/v1/runs/r%261/stop', 'POST /api/v1/train/stop']);
  });

  it('revokes with DELETE /api/v1/tokens/{token_id}', async () => {
    const calls: Array<{ url: string; init: Parameters<FetchLike>[1] }> = [];
    const api = createApi('tok', { fetch: fakeFetch(200, { token_id: 'tok_1', revoked: true, disconnected: 2 }, calls) });
    await expect(api.revokeToken('tok_1')).resolves.toEqual({ token_id: 'tok_1', revoked: true, disconnected: 2 });
    expect(calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual(['DELETE /api/v1/tokens/tok_1']);
  });

  it('turns an error body into an ApiError; 403 reads "needs the admin token"', async () => {
    const api = createApi('hospital-token', { fetch: fakeFetch(403, { error: { code: 'FORBIDDEN', message: 'nope' } }) });
    const err = await api.start({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(403);
    expect(describeError(err)).toMatch(/needs the admin token/);
  });

  it('copes with a non-JSON error body', async () => {
    const api = createApi('t', { fetch: async () => ({ ok: false, status: 502, json: async () => { throw new Error('not json'); } }) });
    const err = (await api.runs().catch((e: unknown) => e)) as ApiError;
    expect([err.status, err.code]).toEqual([502, 'HTTP_502']);
  });
});
