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

  it('sign out clears everything', () => {
    const store = createDashboardStore(() => fakeApi());
    store.getState().signIn('tok');
    store.getState().onClients({ hospitals: [{ hospital_id: 'H1', state: 'connected' }] });
    store.getState().signOut();
    expect(store.getState()).toMatchObject({ token: null, clients: [], connection: 'signed-out' });
  });
});
