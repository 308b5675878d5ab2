// The round engine against an in-memory Grid (scripted hospitals, no sockets, no TF) and a real
// SQLite store: failure policies, dropouts, early stopping, stopping a run.
import { describe, expect, it } from 'vitest';
import { generateHospital, computeFeatureSums, finalizeFeatureStats, mergeFeatureSums, OBSERVATION_WINDOW_DAYS } from '@fedcare/shared/data';
import { createStrategy, runFederation, SHUTDOWN, type Grid, type StageOutcome, type StageRequest } from '@fedcare/shared/fl';
import { sha256Hex, weightsToBytes } from '@fedcare/shared/model';
import { runConfigSchema, type StageResult } from '@fedcare/shared/protocol';
import { storeTabularRun } from '../../../shared/src/testing/tabular-run';
import { openSqliteStore } from './store/sqlite';

type Behaviour = (round: number, stage: string) => 'ok' | 'silent';

/** Hospitals that answer instantly with a fixed update; `behave` decides who stays silent when. */
class MemoryGrid implements Grid {
  requests: { round: number; stage: string; targets: string[]; timeoutMs: number }[] = [];
  /** timeout_s of each train and evaluate instruction sent. */
  timeouts: { stage: string; timeout_s: number | undefined }[] = [];
  constructor(
    private readonly hospitals: string[],
    private readonly behave: Behaviour,
    private readonly valLoss: (round: number) => number = () => 1,
  ) {}
  available() {
    return [...this.hospitals];
  }
  async waitForClients(n: number) {
    return this.hospitals.length >= n;
  }
  readonly broadcasts: unknown[] = [];
  broadcast(...args: unknown[]) {
    this.broadcasts.push(args);
  }
  async request<R extends StageResult>(req: StageRequest<R>): Promise<StageOutcome<R>> {
    this.requests.push({ round: req.round, stage: req.stage, targets: [...req.targets], timeoutMs: req.timeoutMs });
    const results = new Map<string, R>();
    const dropped: StageOutcome<R>['dropped'] = [];
    for (const h of req.targets) {
      if (this.behave(req.round, req.stage) === 'silent' && h === 'H3') {
        dropped.push({ hospitalId: h, reason: 'timeout' });
        continue;
      }
      const instr = req.instruction(h);
      if (instr.stage === 'train' || instr.stage === 'evaluate') this.timeouts.push({ stage: instr.stage, timeout_s: instr.timeout_s });
      let result: StageResult;
      if (instr.stage === 'preprocess') {
        result = { run_id: req.runId, round: 0, stage: 'preprocess', sums: computeFeatureSums(generateHospital(h, { seed: 1, patients: 10 }).records, { seqLen: instr.seq_len, windowDays: OBSERVATION_WINDOW_DAYS }) };
      } else if (instr.stage === 'train') {
        const w = new Float32Array(instr.weights.byteLength / 4).fill(0.01 * req.round);
        const bytes = weightsToBytes(w);
        result = { run_id: req.runId, round: req.round, stage: 'train', weights: bytes, weights_sha256: await sha256Hex(bytes), num_samples: 10, metrics: { train_loss: 1 / req.round } };
      } else {
        result = { run_id: req.runId, round: req.round, stage: 'evaluate', num_examples: 5, metrics: { val_loss: this.valLoss(req.round), test_accuracy: 0.7, accuracy: 0.7 } };
      }
      const err = await req.check?.(h, result as R);
      if (err) dropped.push({ hospitalId: h, reason: 'rejected', detail: err.message });
      else results.set(h, result as R);
    }
    return { results, dropped, bytes: new Map(req.targets.map((h) => [h, { up: 1, down: 2 }])) };
  }
}

const hospitals = ['H1', 'H2', 'H3'];
const P = 64; // a tiny "model": the engine only moves flat weights

async function run(configIn: Record<string, unknown>, grid: Grid, abortAfter?: number, abortReason?: unknown) {
  const store = openSqliteStore(':memory:');
  const config = runConfigSchema.parse({ rounds: 4, min_fit_clients: 3, min_evaluate_clients: 2, min_available_clients: 3, rejoin_grace_s: 0, ...configIn });
  await store.createRun('r1', config as unknown as Record<string, unknown>, config.rounds);
  const controller = new AbortController();
  const summary = await runFederation({
    runId: 'r1',
    config,
    strategy: createStrategy(config.strategy, { minFitClients: config.min_fit_clients, minEvaluateClients: config.min_evaluate_clients, minAvailableClients: config.min_available_clients }),
    grid,
    store,
    initialWeights: new Float32Array(P),
    signal: controller.signal,
    events: { onRound: (r) => abortAfter === r.round && controller.abort(abortReason) },
  });
  return { summary, store, run: await store.getRun('r1'), rounds: await store.getRoundMetrics('r1'), audit: await store.listAudit({ limit: 50 }) };
}

describe('round engine policies', () => {
  it('completes every round when everyone answers, with weights aggregated and committed', async () => {
    const grid = new MemoryGrid(hospitals, () => 'ok');
    const { summary, rounds, run: r } = await run({ stage_timeout_s: 42 }, grid);
    // Each hospital is told how long the stage waits for it (it may redo work on another backend within it).
    expect(grid.timeouts).toHaveLength(4 * 2 * 3);
    expect(new Set(grid.timeouts.map((t) => t.timeout_s))).toEqual(new Set([42]));
    expect(grid.requests.every((q) => q.timeoutMs === 42_000)).toBe(true);
    expect(summary.status).toBe('completed');
    expect(rounds.map((x) => x.round)).toEqual([1, 2, 3, 4]);
    expect(r?.lastCompletedRound).toBe(4);
    expect(summary.weights[0]).toBeCloseTo(0.04, 6); // FedAvg of identical updates = the update
    expect(rounds[0]!.metrics.num_participating_clients).toBe(3);
  });

  it('retry: a round that loses a required client is retried, then the run fails with a reason', async () => {
    const grid = new MemoryGrid(hospitals, (round, stage) => (round === 2 && stage === 'train' ? 'silent' : 'ok'));
    const { summary, rounds, run: r, audit } = await run({ round_failure_policy: 'retry', max_round_retries: 2 }, grid);
    expect(summary.status).toBe('failed');
    expect(grid.requests.filter((q) => q.round === 2 && q.stage === 'train')).toHaveLength(3); // first try + 2 retries
    expect(rounds.map((x) => x.round)).toEqual([1]); // round 1 stays committed
    expect(r?.status).toBe('failed');
    expect(r?.reason).toMatch(/round 2: stage train ended with 2 live client\(s\), 3 needed; gave up after 2 retries/);
    expect(audit.filter((a) => a.action === 'round.failed')).toHaveLength(3);
  });

  it('retry succeeds when the client comes back', async () => {
    let tries = 0;
    const grid = new MemoryGrid(hospitals, (round, stage) => (round === 2 && stage === 'train' && tries++ === 0 ? 'silent' : 'ok'));
    const { summary, rounds } = await run({ round_failure_policy: 'retry', max_round_retries: 2 }, grid);
    expect(summary.status).toBe('completed');
    expect(rounds).toHaveLength(4);
  });

  it('stop: the first failed round stops the run', async () => {
    const grid = new MemoryGrid(hospitals, (round, stage) => (round === 3 && stage === 'train' ? 'silent' : 'ok'));
    const { summary, rounds } = await run({ round_failure_policy: 'stop' }, grid);
    expect(summary.status).toBe('failed');
    expect(summary.reason).toMatch(/policy is stop/);
    expect(rounds.map((x) => x.round)).toEqual([1, 2]);
  });

  it('a dropout above the minimum is recorded and the round completes', async () => {
    const grid = new MemoryGrid(hospitals, (round, stage) => (round === 1 && stage === 'evaluate' ? 'silent' : 'ok'));
    const { summary, rounds } = await run({ min_fit_clients: 2 }, grid);
    expect(summary.status).toBe('completed');
    const p = rounds[0]!.participation.find((x) => x.hospitalId === 'H3' && x.stage === 'evaluate');
    expect(p).toMatchObject({ status: 'dropped', reason: 'timeout' });
  });

  it('early stopping after `patience` rounds without a better val_loss', async () => {
    const grid = new MemoryGrid(hospitals, () => 'ok', (round) => (round === 1 ? 0.5 : 0.6 + round / 100));
    const { summary, rounds, run: r } = await run({ rounds: 10, early_stopping_patience: 3 }, grid);
    expect(summary.status).toBe('completed');
    expect(summary.reason).toMatch(/early stopping/);
    expect(rounds).toHaveLength(4); // best at 1, then 3 rounds without improvement
    expect(r?.bestRound).toBe(1);
  });

  it('an aborted run ends as stopped after the round in progress', async () => {
    const grid = new MemoryGrid(hospitals, () => 'ok');
    const { summary, run: r } = await run({ rounds: 4 }, grid, 2);
    expect(summary.status).toBe('stopped');
    expect(r?.status).toBe('stopped');
    expect(r?.lastCompletedRound).toBe(2);
    expect(grid.broadcasts.at(-1)).toEqual(['fl:run', expect.objectContaining({ run_id: 'r1', status: 'stopped' })]);
  });

  it('a shutdown (abort reason SHUTDOWN) interrupts the run without ending it: still running in the store, nothing broadcast', async () => {
    const grid = new MemoryGrid(hospitals, () => 'ok');
    const { summary, run: r } = await run({ rounds: 4 }, grid, 2, SHUTDOWN);
    expect(summary.status).toBe('interrupted');
    expect(summary.reason).toBe('the coordinator shut down during round 3; the run resumes from there at the next start');
    expect(r).toMatchObject({ status: 'running', lastCompletedRound: 2 });
    expect(grid.broadcasts.filter((b) => (b as unknown[])[0] === 'fl:run')).toEqual([]);
  });
});

describe('min_available_clients counts the federation, not the round', () => {
  it('3 available / 2 fit / 2 evaluate: one dropout in train does not fail evaluate', async () => {
    const grid = new MemoryGrid(hospitals, (round, stage) => (round === 1 && stage === 'train' ? 'silent' : 'ok'));
    const { summary, rounds } = await run({ rounds: 2, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 3 }, grid);
    expect(summary.status).toBe('completed');
    expect(rounds[0]!.metrics.num_participating_clients).toBe(2);
    expect(grid.requests.find((q) => q.round === 1 && q.stage === 'evaluate')?.targets).toEqual(['H1', 'H2']);
  });
});

describe("a run's stored statistics and its task", () => {
  // A resumed run whose stats slot holds the other task's statistics (a store edited by hand, a
  // config changed under a run) is refused by name, never trained on a misread schema.
  const options = (store: ReturnType<typeof openSqliteStore>, config: ReturnType<typeof runConfigSchema.parse>) => ({
    runId: 'r1',
    config,
    strategy: createStrategy(config.strategy, { minFitClients: 3, minEvaluateClients: 2, minAvailableClients: 3 }),
    grid: new MemoryGrid(hospitals, () => 'ok'),
    store,
    initialWeights: new Float32Array(P),
  });

  it('a tabular schema under a risk config', async () => {
    const { schema } = await storeTabularRun(openSqliteStore(':memory:'), 'other');
    const store = openSqliteStore(':memory:');
    const config = runConfigSchema.parse({ rounds: 2, min_fit_clients: 3, min_evaluate_clients: 2, min_available_clients: 3 });
    await store.createRun('r1', config as unknown as Record<string, unknown>, 2);
    await store.saveFeatureStats('r1', schema);
    await expect(runFederation(options(store, config))).rejects.toThrow('run r1: its stored statistics are a tabular schema but its config says task risk');
  });

  it("the risk model's statistics under a tabular config", async () => {
    const store = openSqliteStore(':memory:');
    const config = runConfigSchema.parse({ task: 'tabular', tabular: { target: 'readmitted' }, rounds: 2, min_fit_clients: 3, min_evaluate_clients: 2, min_available_clients: 3 });
    await store.createRun('r1', config as unknown as Record<string, unknown>, 2);
    const sums = hospitals.map((h) => computeFeatureSums(generateHospital(h, { seed: 1, patients: 10 }).records, { seqLen: 8, windowDays: OBSERVATION_WINDOW_DAYS }));
    await store.saveFeatureStats('r1', finalizeFeatureStats(sums.reduce((a, b) => mergeFeatureSums(a, b))));
    await expect(runFederation(options(store, config))).rejects.toThrow("run r1: its stored statistics are the risk model's but its config says task tabular");
  });
});
