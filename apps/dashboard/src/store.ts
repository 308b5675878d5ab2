/**
 * The dashboard's state: a zustand vanilla store (no DOM, so it runs under Node in tests; React
 * binds it with `useStore`). Socket events land in `on*` actions; REST (history, start, stop) goes
 * through the injected `Api`. Derived views (alarms, chart rows) are pure functions in other modules.
 */
import { createStore } from 'zustand/vanilla';
import type { DashboardServerToClient, RunConfigInput, ServerStatus } from '@fedcare/shared/protocol';
import { describeError, type Api, type CreatedToken, type RoundMetricsWire, type RunSummary, type TokenSummary } from './api';
import { computeAlarms, maxEpsilon, type Alarm } from './alarms';
import { applyRound, latestRound, type RoundMessage, type RunSeries } from './metrics';

type Payload<E extends keyof DashboardServerToClient> = Parameters<DashboardServerToClient[E]>[0];
export type StageEvent = Payload<'dash:stage'>;
export type ClientsEvent = Payload<'dash:clients'>;
export type RunEventMsg = Payload<'dash:run'>;

export type ConnectionState = 'signed-out' | 'connecting' | 'connected' | 'disconnected' | 'error';

export interface Notice {
  kind: 'ok' | 'error';
  text: string;
}

export interface DashboardState {
  token: string | null;
  connection: ConnectionState;
  connectionError: string | null;
  status: ServerStatus | null;
  stage: StageEvent | null;
  clients: ClientsEvent['hospitals'];
  run: RunEventMsg | null;
  live: RunSeries;
  runs: RunSummary[];
  historyError: string | null;
  selected: { run_id: string; series: RunSeries } | null;
  /** Past runs ticked for comparison, in the order ticked. */
  compared: { run_id: string; series: RunSeries }[];
  notice: Notice | null;
  busy: boolean;
  /** Stored credentials (admin); null until loaded. */
  tokens: TokenSummary[] | null;
  tokenError: string | null;
  /** What the last revocation did. */
  tokenNotice: string | null;
  /** The token just created, shown once until dismissed. */
  newToken: CreatedToken | null;

  signIn(token: string): void;
  signOut(): void;
  setConnection(c: ConnectionState, error?: string): void;
  onStatus(s: ServerStatus): void;
  onStage(s: StageEvent): void;
  onRound(r: RoundMessage): void;
  onClients(c: ClientsEvent): void;
  onRun(r: RunEventMsg): void;
  loadRuns(): Promise<void>;
  loadRun(runId: string): Promise<void>;
  /** Adds a run to the comparison (loading its rounds), or takes it out. */
  toggleCompare(runId: string): Promise<void>;
  backfill(runId: string): Promise<void>;
  loadTokens(): Promise<void>;
  /** The run report from the coordinator, saved as an HTML file; a failure goes to historyError. */
  downloadReport(runId: string, save: (name: string, html: string) => void): Promise<void>;
  createHospitalToken(hospitalId: string): Promise<void>;
  revokeToken(tokenId: string): Promise<void>;
  dismissNewToken(): void;
  startRun(config: RunConfigInput): Promise<void>;
  stopRun(): Promise<void>;
}

const EMPTY_SERIES: RunSeries = { run_id: null, rounds: [] };

export function createDashboardStore(makeApi: (token: string) => Api, now: () => Date = () => new Date()) {
  return createStore<DashboardState>()((set, get) => {
    const api = (): Api => {
      const t = get().token;
      if (!t) throw new Error('not signed in');
      return makeApi(t);
    };
    /** REST rounds added to a series as the live view keeps them; a round the series already has (a live one) wins. */
    const withRestRounds = (series: RunSeries & { run_id: string }, rows: readonly RoundMetricsWire[]): RunSeries => {
      const have = new Set(series.rounds.map((r) => r.round));
      return rows.reduce<RunSeries>(
        (acc, r) =>
          have.has(r.round_number)
            ? acc
            : applyRound(acc, { run_id: series.run_id, round: r.round_number, metrics: r.metrics, per_hospital: r.per_hospital ?? {}, timestamp: r.timestamp, ...(r.participation ? { participation: r.participation } : {}) }),
        series,
      );
    };
    /** A past run's rounds from REST. */
    const fetchSeries = async (runId: string): Promise<RunSeries> => withRestRounds({ run_id: runId, rounds: [] }, await api().metrics(runId));
    return {
      token: null,
      connection: 'signed-out',
      connectionError: null,
      status: null,
      stage: null,
      clients: [],
      run: null,
      live: EMPTY_SERIES,
      runs: [],
      historyError: null,
      selected: null,
      compared: [],
      notice: null,
      busy: false,
      tokens: null,
      tokenError: null,
      tokenNotice: null,
      newToken: null,

      signIn: (token) => set({ token: token.trim(), connection: 'connecting', connectionError: null }),
      signOut: () =>
        set({ token: null, connection: 'signed-out', connectionError: null, status: null, stage: null, clients: [], run: null, live: EMPTY_SERIES, runs: [], selected: null, compared: [], notice: null, tokens: null, tokenError: null, tokenNotice: null, newToken: null }),
      setConnection: (connection, error) => set({ connection, connectionError: error ?? null }),

      onStatus: (status) => {
        const prev = get().live.run_id;
        set({ status });
        // A run we have no rounds of yet (the dashboard opened mid-run): fetch its past rounds once.
        if (status.run_id && status.run_id !== prev && status.current_round > 0) void get().backfill(status.run_id);
      },
      onStage: (stage) => set({ stage }),
      onRound: (r) => {
        set((s) => ({ live: applyRound(s.live, { ...r, timestamp: r.completed_at || now().toISOString() }) }));
      },
      onClients: (c) => set({ clients: c.hospitals }),
      onRun: (run) => {
        const s = get();
        set({ run, ...(s.live.run_id !== run.run_id ? { live: { run_id: run.run_id, rounds: [] }, stage: null } : {}) });
        if (run.status !== 'running' || !s.runs.some((r) => r.run_id === run.run_id)) void get().loadRuns();
      },

      loadRuns: async () => {
        try {
          set({ runs: await api().runs(), historyError: null });
        } catch (e) {
          set({ historyError: describeError(e) });
        }
      },
      loadRun: async (runId) => {
        try {
          set({ selected: { run_id: runId, series: await fetchSeries(runId) }, historyError: null });
        } catch (e) {
          set({ historyError: describeError(e) });
        }
      },
      toggleCompare: async (runId) => {
        if (get().compared.some((c) => c.run_id === runId)) {
          set((s) => ({ compared: s.compared.filter((c) => c.run_id !== runId) }));
          return;
        }
        // Ticked at once (the box shows it); its rounds fill in when they arrive.
        set((s) => ({ compared: [...s.compared, { run_id: runId, series: { run_id: runId, rounds: [] } }] }));
        try {
          const series = await fetchSeries(runId);
          set((s) => ({ compared: s.compared.map((c) => (c.run_id === runId ? { run_id: runId, series } : c)), historyError: null }));
        } catch (e) {
          set((s) => ({ compared: s.compared.filter((c) => c.run_id !== runId), historyError: describeError(e) }));
        }
      },
      backfill: async (runId) => {
        try {
          const rows = await api().metrics(runId);
          // Live rounds that arrived meanwhile win over history.
          set((s) => ({ live: withRestRounds(s.live.run_id === runId ? { ...s.live, run_id: runId } : { run_id: runId, rounds: [] }, rows) }));
        } catch {
          // History is a convenience here; the live rounds keep coming.
        }
      },
      downloadReport: async (runId, save) => {
        try {
          const r = await api().report(runId);
          save(r.filename, r.html);
          set({ historyError: null });
        } catch (e) {
          set({ historyError: `report of ${runId}: ${describeError(e)}` });
        }
      },
      loadTokens: async () => {
        try {
          set({ tokens: await api().tokens(), tokenError: null });
        } catch (e) {
          set({ tokenError: describeError(e) });
        }
      },
      createHospitalToken: async (hospitalId) => {
        try {
          const created = await api().createToken({ role: 'hospital', hospital_id: hospitalId.trim() });
          set({ newToken: created, tokenError: null, tokenNotice: null });
          await get().loadTokens();
        } catch (e) {
          set({ tokenError: describeError(e) });
        }
      },
      revokeToken: async (tokenId) => {
        try {
          const res = await api().revokeToken(tokenId);
          set((s) => ({ tokenError: null, ...(s.newToken?.token_id === tokenId ? { newToken: null } : {}), tokenNotice: `Token ${tokenId} revoked${res.disconnected ? `; ${res.disconnected} connection(s) closed` : ''}.` }));
          await get().loadTokens();
        } catch (e) {
          set({ tokenError: describeError(e) });
        }
      },
      dismissNewToken: () => set({ newToken: null }),
      startRun: async (config) => {
        set({ busy: true, notice: null });
        try {
          const res = await api().start(config);
          set({ notice: { kind: 'ok', text: `Run ${res.run_id} started.` } });
          void get().loadRuns();
        } catch (e) {
          set({ notice: { kind: 'error', text: describeError(e) } });
        } finally {
          set({ busy: false });
        }
      },
      stopRun: async () => {
        set({ busy: true, notice: null });
        try {
          const runId = get().status?.run_id ?? get().run?.run_id ?? undefined;
          const res = await api().stop(runId);
          set({ notice: { kind: 'ok', text: `Run ${res.run_id ?? ''} ${res.status}.`.replace('  ', ' ') } });
          void get().loadRuns();
        } catch (e) {
          set({ notice: { kind: 'error', text: describeError(e) } });
        } finally {
          set({ busy: false });
        }
      },
    };
  });
}

export type DashboardStore = ReturnType<typeof createDashboardStore>;

/** Alarms for the current state (seed spec 6.3); a pure selector over the store's state. */
export function selectAlarms(s: Pick<DashboardState, 'status' | 'run' | 'live' | 'clients'>): Alarm[] {
  const last = latestRound(s.live);
  const runStatus = s.run && (!s.status?.run_id || s.status.run_id === s.run.run_id) ? s.run.status : (s.status?.status ?? null);
  return computeAlarms({
    runStatus,
    runReason: s.run?.reason,
    testAccuracy: last?.metrics.test_accuracy ?? null,
    epsilon: last ? maxEpsilon(last.metrics, last.per_hospital) : null,
    activeClients: s.status ? s.status.active_clients.length : null,
  });
}
