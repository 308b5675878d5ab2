import { describe, expect, it, vi } from 'vitest';
import type { ServerStatus } from '@fedcare/shared/protocol';
import { ApiError, type Api } from './api';
import { createDashboardStore, selectAlarms } from './store';

function fakeApi(over: Partial<Api> = {}): Api {
  return {
    status: vi.fn(async () => status()),
    runs: vi.fn(async () => [{ run_id: 'r1', status: 'running' }]),
    metrics: vi.fn(async () => []),
    start: vi.fn(async () => ({ run_id: 'r2', status: 'running' })),
    stop: vi.fn(async () => ({ run_id: 'r1', status: 'stopped' })),
    tokens: vi.fn(async () => []),
    createToken: vi.fn(async () => ({ token_id: 'tok_1', token: 'fct_x', role: 'hospital' as const, hospital_id: 'H5' })),
    revokeToken: vi.fn(async (id: string) => ({ token_id: id, revoked: true as const, disconnected: 0 })),
    report: vi.fn(async (runId: string) => ({ run_id: runId, filename: `fedcare-report-${runId}.html`, html: '<!doctype html>' })),
    ...over,
  };
}

function status(p: Partial<ServerStatus> = {}): ServerStatus {
  return { protocol_version: 2, run_id: 'r1', status: 'running', current_round: 0, total_rounds: 3, stage: null, active_clients: ['H1', 'H2', 'H3'], global_accuracy: null, privacy_budget: null, ...p };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('dashboard store', () => {
  it('collects live rounds and raises alarms from them', () => {
    const store = createDashboardStore(() => fakeApi(), () => new Date('2025-01-01T00:00:00Z'));
    const s = store.getState();
    s.signIn(' tok ');
    expect(store.getState().token).toBe('tok');
    s.onStatus(status());
    s.onRun({ run_id: 'r1', status: 'running', round: 0, total_rounds: 3 });
    s.onRound({
      run_id: 'r1',
      round: 1,
      metrics: { test_accuracy: 0.55, privacy_epsilon: null as unknown as number },
      per_hospital: { H1: { accuracy: 0.5 } },
      participation: [
        { hospitalId: 'H1', stage: 'train', status: 'ok' },
        { hospitalId: 'H3', stage: 'train', status: 'dropped', reason: 'disconnected' },
      ],
      completed_at: '2025-01-01T00:00:07.000Z',
    });
    const st = store.getState();
    expect(st.live.rounds).toHaveLength(1);
    // the server's completion time, not the time it arrived
    expect(st.live.rounds[0]?.timestamp).toBe('2025-01-01T00:00:07.000Z');
    expect(st.live.rounds[0]?.issues).toEqual([{ hospital_id: 'H3', stage: 'train', status: 'dropped', reason: 'disconnected' }]);
    expect(selectAlarms(st).map((a) => a.id)).toEqual(['low_accuracy']);

    s.onStatus(status({ current_round: 1, active_clients: ['H1'] }));
    expect(selectAlarms(store.getState()).map((a) => a.id)).toEqual(['low_accuracy', 'client_dropout']);

    s.onRun({ run_id: 'r1', status: 'failed', round: 1, total_rounds: 3, reason: 'all hospitals dropped' });
    expect(selectAlarms(store.getState()).map((a) => a.id)).toContain('training_failures');
  });

  it('a new run resets the live series', () => {
    const store = createDashboardStore(() => fakeApi());
    const s = store.getState();
    s.signIn('tok');
    s.onRound({ run_id: 'r1', round: 1, metrics: {}, per_hospital: {}, participation: [], completed_at: '2025-01-01T00:00:00.000Z' });
    s.onRun({ run_id: 'r2', status: 'running', round: 0, total_rounds: 5 });
    expect(store.getState().live).toEqual({ run_id: 'r2', rounds: [] });
  });

  it('backfills the rounds of a run already under way when first seen', async () => {
    const api = fakeApi({ metrics: vi.fn(async () => [{ round_number: 1, metrics: { test_accuracy: 0.7 }, timestamp: 't1' }, { round_number: 2, metrics: { test_accuracy: 0.1 }, timestamp: 't2' }]) });
    const store = createDashboardStore(() => api);
    store.getState().signIn('tok');
    store.getState().onRound({ run_id: 'r1', round: 2, metrics: { test_accuracy: 0.75 }, per_hospital: {}, participation: [], completed_at: '2025-01-01T00:00:00.000Z' });
    store.getState().onStatus(status({ run_id: 'r9', current_round: 2 }));
    await tick();
    expect(api.metrics).toHaveBeenCalledWith('r9');
    // r9 replaces r1; now for r1's own backfill the live round wins over history:
    store.getState().onRound({ run_id: 'r1', round: 2, metrics: { test_accuracy: 0.75 }, per_hospital: {}, participation: [], completed_at: '2025-01-01T00:00:00.000Z' });
    await store.getState().backfill('r1');
    expect(store.getState().live.rounds.map((r) => [r.round, r.metrics.test_accuracy])).toEqual([
      [1, 0.7],
      [2, 0.75],
    ]);
  });

  it('start and stop report success, and 403 as "needs the admin token"', async () => {
    const forbidden = new ApiError(403, 'FORBIDDEN', 'x');
    const api = fakeApi({ start: vi.fn(async () => { throw forbidden; }) });
    const store = createDashboardStore(() => api);
    store.getState().signIn('hospital');
    await store.getState().startRun({ rounds: 3 });
    expect(store.getState().notice).toEqual({ kind: 'error', text: 'This action needs the admin token.' });
    expect(store.getState().busy).toBe(false);

    store.getState().onStatus(status());
    await store.getState().stopRun();
    expect(api.stop).toHaveBeenCalledWith('r1');
    expect(store.getState().notice).toEqual({ kind: 'ok', text: 'Run r1 stopped.' });
  });

  it('loads run history and a run\'s metrics; errors land in historyError', async () => {
    const api = fakeApi({ metrics: vi.fn(async () => [{ round_number: 1, metrics: { auc_roc: null }, per_hospital: { H1: { accuracy: 0.9 } }, timestamp: 't' }]) });
    const store = createDashboardStore(() => api);
    store.getState().signIn('tok');
    await store.getState().loadRuns();
    expect(store.getState().runs.map((r) => r.run_id)).toEqual(['r1']);
    await store.getState().loadRun('r1');
    expect(store.getState().selected?.series.rounds[0]?.per_hospital.H1?.accuracy).toBe(0.9);

    const failing = createDashboardStore(() => fakeApi({ runs: async () => { throw new ApiError(401, 'UNAUTHORIZED', 'no'); } }));
    failing.getState().signIn('bad');
    await failing.getState().loadRuns();
    expect(failing.getState().historyError).toMatch(/401/);
  });

  it('ticks runs into a comparison (loading each once), unticks them, and reports a failed load', async () => {
    const rounds: Record<string, { round_number: number; metrics: Record<string, number | null>; timestamp: string }[]> = {
      r1: [1, 2, 3].map((n) => ({ round_number: n, metrics: { auc_roc: 0.6 + n / 100 }, timestamp: 't' })),
      r2: [1, 2].map((n) => ({ round_number: n, metrics: { auc_roc: 0.7 + n / 100 }, timestamp: 't' })),
    };
    const api = fakeApi({
      metrics: vi.fn(async (id: string) => {
        const r = rounds[id];
        if (!r) throw new ApiError(404, 'NOT_FOUND', `no run ${id}`);
        return r;
      }),
    });
    const store = createDashboardStore(() => api);
    store.getState().signIn('tok');
    const ticking = store.getState().toggleCompare('r1');
    expect(store.getState().compared.map((c) => [c.run_id, c.series.rounds.length])).toEqual([['r1', 0]]); // ticked before its rounds arrive
    await ticking;
    await store.getState().toggleCompare('r2');
    expect(store.getState().compared.map((c) => [c.run_id, c.series.rounds.map((r) => r.metrics.auc_roc)])).toEqual([
      ['r1', [0.61, 0.62, 0.63]],
      ['r2', [0.71, 0.72]],
    ]);
    await store.getState().toggleCompare('r1');
    expect(store.getState().compared.map((c) => c.run_id)).toEqual(['r2']);
    expect(api.metrics).toHaveBeenCalledTimes(2); // unticking loads nothing
    await store.getState().toggleCompare('gone');
    expect(store.getState().compared.map((c) => c.run_id)).toEqual(['r2']);
    expect(store.getState().historyError).toMatch(/no run gone/);
    store.getState().signOut();
    expect(store.getState().compared).toEqual([]);
  });

  it('creates a hospital token (shown once), revokes it, and reports a refusal in tokenError', async () => {
    let stored: { token_id: string; role: 'hospital'; hospital_id: string; created_at: string; revoked_at?: string }[] = [];
    const api = fakeApi({
      tokens: vi.fn(async () => stored),
      createToken: vi.fn(async (spec) => {
        stored = [...stored, { token_id: 'tok_a', role: 'hospital', hospital_id: (spec as { hospital_id: string }).hospital_id, created_at: 't' }];
        return { token_id: 'tok_a', token: 'fct_secret', role: 'hospital' as const, hospital_id: (spec as { hospital_id: string }).hospital_id };
      }),
      revokeToken: vi.fn(async (id: string) => {
        stored = stored.map((t) => (t.token_id === id ? { ...t, revoked_at: 't2' } : t));
        return { token_id: id, revoked: true as const, disconnected: 1 };
      }),
    });
    const store = createDashboardStore(() => api);
    store.getState().signIn('admin');
    await store.getState().createHospitalToken(' H5 ');
    expect(api.createToken).toHaveBeenCalledWith({ role: 'hospital', hospital_id: 'H5' });
    expect(store.getState().newToken).toEqual({ token_id: 'tok_a', token: 'fct_secret', role: 'hospital', hospital_id: 'H5' });
    expect(store.getState().tokens?.map((t) => t.token_id)).toEqual(['tok_a']);
    await store.getState().revokeToken('tok_a');
    expect(store.getState().newToken).toBeNull(); // a revoked token is not left on screen
    expect(store.getState().tokens?.[0]?.revoked_at).toBe('t2');
    expect(store.getState().tokenNotice).toBe('Token tok_a revoked; 1 connection(s) closed.');

    const hospital = createDashboardStore(() => fakeApi({ tokens: async () => { throw new ApiError(403, 'FORBIDDEN', 'needs admin'); } }));
    hospital.getState().signIn('h1');
    await hospital.getState().loadTokens();
    expect(hospital.getState().tokens).toBeNull();
    expect(hospital.getState().tokenError).toBe('This action needs the admin token.');
  });

  it('sign out clears everything', () => {
    const store = createDashboardStore(() => fakeApi());
    store.getState().signIn('tok');
    store.getState().onClients({ hospitals: [{ hospital_id: 'H1', state: 'connected' }] });
    store.getState().signOut();
    expect(store.getState()).toMatchObject({ token: null, clients: [], connection: 'signed-out' });
  });
});
