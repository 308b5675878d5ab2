/**
 * The coordinator: owns the active run, drives the round engine over the Socket.IO grid, persists
 * through the Store, resumes an interrupted run at boot, and publishes progress to dashboards and
 * Prometheus.
 */
import { createStrategy, runFederation, SHUTDOWN, type FederationSummary, type Logger, type RoundReport, type StageProgress, type Store } from '@fedcare/shared/fl';
import { runConfigSchema, type RunConfig, type RunConfigInput, type ServerStatus, type StageName } from '@fedcare/shared/protocol';
import { PROTOCOL_VERSION } from '@fedcare/shared/protocol';
import type { SocketGrid } from './grid';
import { initialWeights } from './model';

export interface CoordinatorEvents {
  onStatus?(s: ServerStatus): void;
  onStage?(p: StageProgress): void;
  onRound?(r: RoundReport): void;
  onRunEnd?(s: FederationSummary): void;
}

export class RunConflictError extends Error {}

interface Active {
  runId: string;
  config: RunConfig;
  controller: AbortController;
  done: Promise<FederationSummary | undefined>;
  round: number;
  stage: StageName | null;
  lastAccuracy: number | null;
  /** Largest ε any hospital has spent in this run (null: not private). */
  lastEpsilon: number | null;
}

export class Coordinator {
  private active: Active | undefined;
  private lastEnded: { runId: string; status: ServerStatus['status']; round: number; total: number; accuracy: number | null } | undefined;

  constructor(
    private readonly store: Store,
    private readonly grid: SocketGrid,
    private readonly log: Logger,
    private readonly events: CoordinatorEvents = {},
    /** What a run takes for the keys its start request leaves out (`fedcare serve --config`); schema defaults beyond. */
    private readonly runDefaults: RunConfigInput = {},
  ) {}

  /** Resumes the run a previous process left running (after a crash or kill -9). */
  async boot(): Promise<void> {
    const run = await this.store.activeRun();
    if (!run) return;
    const parsed = runConfigSchema.safeParse(run.config);
    if (!parsed.success) {
      await this.store.setRunStatus(run.runId, 'failed', `stored config no longer valid: ${parsed.error.issues[0]?.message}`);
      return;
    }
    this.log.info({ runId: run.runId, lastCompletedRound: run.lastCompletedRound }, 'resuming interrupted run');
    await this.store.appendAudit({ actor: 'system', action: 'run.resume', outcome: 'ok', runId: run.runId, detail: { lastCompletedRound: run.lastCompletedRound } });
    this.launch(run.runId, parsed.data, run.lastCompletedRound);
  }

  async start(input: RunConfigInput, actor: string): Promise<{ runId: string; config: RunConfig }> {
    if (this.active) throw new RunConflictError(`run ${this.active.runId} is still running; stop it first`);
    const config = runConfigSchema.parse({ ...this.runDefaults, ...input });
    createStrategy(config.strategy); // fail early on an unusable strategy
    const runId = `run-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${crypto.randomUUID().slice(0, 8)}`;
    await this.store.createRun(runId, config as unknown as Record<string, unknown>, config.rounds);
    await this.store.appendAudit({ actor, action: 'train.start', outcome: 'ok', runId, detail: { config } });
    this.launch(runId, config, 0);
    return { runId, config };
  }

  async stop(runId: string | undefined, actor: string): Promise<{ runId: string; status: string } | undefined> {
    const a = this.active;
    if (!a || (runId !== undefined && runId !== a.runId)) return undefined;
    await this.store.appendAudit({ actor, action: 'train.stop', outcome: 'ok', runId: a.runId });
    a.controller.abort();
    const summary = await a.done;
    return { runId: a.runId, status: summary?.status ?? 'stopped' };
  }

  /**
   * For a process about to exit (SIGTERM of a deploy, Ctrl-C): interrupts the active run without
   * ending it — it stays running in the store and resumes from its last committed round at the next
   * start, as after a crash, but audited and without a half-done round in flight.
   */
  async shutdown(): Promise<void> {
    const a = this.active;
    if (!a) return;
    await this.store.appendAudit({ actor: 'system', action: 'run.interrupt', outcome: 'ok', runId: a.runId, detail: { round: a.round, reason: SHUTDOWN } });
    a.controller.abort(SHUTDOWN);
    await a.done;
  }

  /** Resolves when the active run (if any) ends. */
  async idle(): Promise<FederationSummary | undefined> {
    return this.active?.done;
  }

  status(): ServerStatus {
    const a = this.active;
    if (a) {
      return {
        protocol_version: PROTOCOL_VERSION,
        run_id: a.runId,
        status: 'running',
        current_round: a.round,
        total_rounds: a.config.rounds,
        stage: a.stage,
        active_clients: this.grid.available(),
        global_accuracy: a.lastAccuracy,
        privacy_budget: a.lastEpsilon,
      };
    }
    const e = this.lastEnded;
    return {
      protocol_version: PROTOCOL_VERSION,
      run_id: e?.runId ?? null,
      status: e?.status ?? 'idle',
      current_round: e?.round ?? 0,
      total_rounds: e?.total ?? 0,
      stage: null,
      active_clients: this.grid.available(),
      global_accuracy: e?.accuracy ?? null,
      privacy_budget: null,
    };
  }

  private launch(runId: string, config: RunConfig, lastCompleted: number): void {
    const controller = new AbortController();
    const strategy = createStrategy(config.strategy, {
      fractionFit: config.fraction_fit,
      fractionEvaluate: config.fraction_evaluate,
      minFitClients: config.min_fit_clients,
      minEvaluateClients: config.min_evaluate_clients,
      minAvailableClients: config.min_available_clients,
      proximalMu: config.proximal_mu,
      ...(config.trimmed_beta !== undefined ? { beta: config.trimmed_beta } : {}),
      ...(config.krum_f !== undefined ? { numMaliciousClients: config.krum_f } : {}),
    });
    const active: Active = { runId, config, controller, done: Promise.resolve(undefined), round: lastCompleted, stage: null, lastAccuracy: null, lastEpsilon: null };
    this.active = active;
    const publish = () => this.events.onStatus?.(this.status());
    active.done = (async () => {
      try {
        const summary = await runFederation({
          runId,
          config,
          strategy,
          grid: this.grid,
          store: this.store,
          // A tabular run's MLP is sized by its schema: the round engine makes its weights after preprocessing.
          initialWeights: config.task === 'tabular' ? new Float32Array(0) : await initialWeights(config.seed, config.model, config),
          signal: controller.signal,
          log: this.log,
          events: {
            onStage: (p) => {
              active.round = p.round;
              active.stage = p.phase === 'start' ? p.stage : null;
              this.events.onStage?.(p);
              publish();
            },
            onRound: (r) => {
              active.lastAccuracy = Number.isFinite(r.metrics.test_accuracy) ? (r.metrics.test_accuracy as number) : null;
              active.lastEpsilon = Number.isFinite(r.metrics.privacy_epsilon) ? (r.metrics.privacy_epsilon as number) : null;
              this.events.onRound?.(r);
              publish();
            },
          },
        });
        // (an interrupted run has not ended: the next process resumes it)
        if (summary.status !== 'interrupted') this.lastEnded = { runId, status: summary.status, round: summary.roundsCompleted, total: config.rounds, accuracy: active.lastAccuracy };
        this.log.info({ runId, status: summary.status, reason: summary.reason }, 'run ended');
        this.events.onRunEnd?.(summary);
        return summary;
      } catch (e) {
        const reason = `internal error: ${(e as Error).message}`;
        this.log.error({ runId, err: (e as Error).stack }, 'run crashed');
        const run = await this.store.getRun(runId).catch(() => undefined);
        if (run?.status === 'running') await this.store.setRunStatus(runId, 'failed', reason).catch(() => undefined);
        this.lastEnded = { runId, status: 'failed', round: run?.lastCompletedRound ?? 0, total: config.rounds, accuracy: active.lastAccuracy };
        return undefined;
      } finally {
        if (this.active === active) this.active = undefined;
        publish();
      }
    })();
  }
}
