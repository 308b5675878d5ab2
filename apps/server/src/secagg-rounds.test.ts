// The round engine with secure aggregation on, against an in-memory Grid whose hospitals run the
// real SecAgg+ client (shared/src/secagg) on known updates, and a real SQLite store: the new global
// model must be the weighted average of exactly the survivors' updates, whoever drops at whichever
// stage — and the engine must never receive an update in the clear.
import { describe, expect, it } from 'vitest';
import { computeFeatureSums, finalizeFeatureStats, flattenFeatureSums, generateHospital, mergeFeatureSums, OBSERVATION_WINDOW_DAYS, type FeatureSums } from '@fedcare/shared/data';
import { createStrategy, riskStatsOf, runFederation, type FederationSummary, type Grid, type StageOutcome, type StageRequest } from '@fedcare/shared/fl';
import { resultSchema, runConfigSchema, validate, type StageResult } from '@fedcare/shared/protocol';
import { generateIdentityKeyPair, SecAggClient, sumErrorBound, quantizationOf } from '@fedcare/shared/secagg';
import { Rng } from '@fedcare/shared/util';
import { openSqliteStore } from './store/sqlite';

/** A risk run's statistics (a tabular schema, or none, fails the test by name). */
const statsOf = (s: FederationSummary) => riskStatsOf(s.runId, s.stats ?? expect.fail(`run ${s.runId} has no statistics`), 'these checks');

const P = 257; // a small "model": the engine only moves flat weights
const HOSPITALS = ['H1', 'H2', 'H3', 'H4', 'H5'];
const SAMPLES: Record<string, number> = { H1: 40, H2: 25, H3: 60, H4: 10, H5: 33 };

/** Each hospital's update (local − global) in a round: small deterministic values. */
function delta(h: string, round: number): Float32Array {
  const rng = new Rng(`delta/${h}/${round}`);
  return Float32Array.from({ length: P }, () => (rng.next() - 0.5) * 0.2);
}

/** Each hospital's preprocessing sums: its own small generated cohort. */
function sumsOf(h: string, seqLen: number): FeatureSums {
  const seed = HOSPITALS.indexOf(h) + 1;
  return computeFeatureSums(generateHospital(seed % 2 ? 'H1' : 'H3', { seed, patients: 12 }).records, { seqLen, windowDays: OBSERVATION_WINDOW_DAYS });
}

/** The statistics the plain (clear) preprocessing would compute from these hospitals' sums. */
function plainStats(hospitals: readonly string[], seqLen: number) {
  return finalizeFeatureStats(hospitals.map((h) => sumsOf(h, seqLen)).reduce((a, b) => mergeFeatureSums(a, b)));
}

type Drop = (h: string, stage: string, round: number) => boolean;

class SecAggMemoryGrid implements Grid {
  readonly clients = new Map<string, SecAggClient>();
  readonly received: StageResult[] = [];
  /** Who sent a masked input, per round (the survivors the aggregate must be made of). */
  readonly masked = new Map<number, string[]>();
  private readonly identities = new Map<string, Awaited<ReturnType<typeof generateIdentityKeyPair>>>();
  private seqLen = 0;
  constructor(private readonly drop: Drop) {}
  available() {
    return [...HOSPITALS];
  }
  async waitForClients() {
    return true;
  }
  broadcast() {}
  async request<R extends StageResult>(req: StageRequest<R>): Promise<StageOutcome<R>> {
    const results = new Map<string, R>();
    const dropped: StageOutcome<R>['dropped'] = [];
    for (const h of req.targets) {
      if (this.drop(h, req.stage, req.round)) {
        dropped.push({ hospitalId: h, reason: 'timeout' });
        continue;
      }
      const instr = req.instruction(h);
      let result: unknown;
      if (instr.stage === 'preprocess') {
        // Secure preprocessing: the sums are held for round 0's masked input, the reply carries none.
        expect(instr.secure_aggregation).toBe('secagg');
        this.seqLen = instr.seq_len;
        result = { run_id: req.runId, round: 0, stage: 'preprocess' };
      } else if (instr.stage === 'train') {
        expect(instr.config.secure_aggregation).toBe('secagg');
        result = { run_id: req.runId, round: req.round, stage: 'train', num_samples: SAMPLES[h], metrics: { train_loss: 1 } };
      } else if (instr.stage === 'evaluate') {
        result = { run_id: req.runId, round: req.round, stage: 'evaluate', num_examples: 5, metrics: { test_accuracy: 0.7, accuracy: 0.7 } };
      } else {
        if (!this.identities.has(h)) this.identities.set(h, await generateIdentityKeyPair());
        if (instr.stage === 'advertise-keys') this.clients.set(h, new SecAggClient({ clientId: h, identity: this.identities.get(h)! }));
        const c = this.clients.get(h)!;
        if (instr.stage === 'advertise-keys') result = await c.advertise(instr);
        else if (instr.stage === 'share-keys') result = await c.shareKeys(instr);
        else if (instr.stage === 'masked-input') {
          result = req.round === 0 ? await c.maskedInput(instr, flattenFeatureSums(sumsOf(h, this.seqLen)), 1) : await c.maskedInput(instr, delta(h, req.round), SAMPLES[h] as number);
          this.masked.set(req.round, [...(this.masked.get(req.round) ?? []), h]);
        } else if (instr.stage === 'consistency-check') result = await c.consistencyCheck(instr);
        else result = await c.unmask(instr);
      }
      // What a socket would deliver: checked by the protocol's own schema, as the server's grid does.
      const parsed = validate(resultSchema, result);
      expect(parsed.ok, parsed.ok ? '' : parsed.message).toBe(true);
      this.received.push(result as StageResult);
      const err = await req.check?.(h, result as R);
      if (err) dropped.push({ hospitalId: h, reason: 'rejected', detail: err.message });
      else results.set(h, result as R);
    }
    return { results, dropped, bytes: new Map(req.targets.map((h) => [h, { up: 1, down: 1 }])) };
  }
}

async function run(grid: SecAggMemoryGrid, configIn: Record<string, unknown> = {}) {
  const store = openSqliteStore(':memory:');
  const config = runConfigSchema.parse({ rounds: 1, min_fit_clients: 3, min_evaluate_clients: 2, min_available_clients: 5, rejoin_grace_s: 0, secure_aggregation: 'secagg', secagg_clip: 0.5, ...configIn });
  await store.createRun('r1', config as unknown as Record<string, unknown>, config.rounds);
  const initial = Float32Array.from({ length: P }, (_, i) => Math.sin(i));
  const summary = await runFederation({
    runId: 'r1',
    config,
    strategy: createStrategy(config.strategy, { minFitClients: config.min_fit_clients, minEvaluateClients: config.min_evaluate_clients, minAvailableClients: config.min_available_clients }),
    grid,
    store,
    initialWeights: initial,
  });
  return { summary, initial, rounds: await store.getRoundMetrics('r1'), store };
}

/** The plain FedAvg of the survivors' updates, and the tolerance of the quantised sum. */
function expectAggregate(result: Float32Array, initial: Float32Array, survivors: readonly string[]): void {
  const total = survivors.reduce((s, h) => s + (SAMPLES[h] as number), 0);
  // The same bound as the protocol: n·Δ on the weighted sum, Δ = 2·W·R/(2^b − 1), divided by Σw.
  const W = Math.max(...survivors.map((h) => SAMPLES[h] as number), ...HOSPITALS.map((h) => SAMPLES[h] as number));
  const bound = sumErrorBound(quantizationOf({ threshold: 3, neighbours: 4, clip: 0.5, bits: 32 - 3, max_weight: W, vector_length: P }), HOSPITALS.length) / total;
  let maxErr = 0;
  for (let i = 0; i < P; i++) {
    let want = initial[i] as number;
    for (const h of survivors) want += ((SAMPLES[h] as number) * (delta(h, 1)[i] as number)) / total;
    maxErr = Math.max(maxErr, Math.abs((result[i] as number) - want));
  }
  expect(maxErr).toBeLessThanOrEqual(bound + 1e-6); // + float32 rounding of the weights
}

describe('round engine with secure aggregation (SecAgg+, 5 hospitals)', () => {
  it('no dropout: the new model is the weighted average of all updates; no update reaches the engine in the clear', async () => {
    const grid = new SecAggMemoryGrid(() => false);
    const { summary, initial, rounds } = await run(grid);
    expect(summary.status).toBe('completed');
    expectAggregate(summary.weights, initial, HOSPITALS);
    expect(rounds[0]!.metrics).toMatchObject({ secure_aggregation: 1, secagg_dropped: 0, secagg_recovered: 0, num_participating_clients: 5 });
    for (const r of grid.received) if (r.stage === 'train') expect(r.weights).toBeUndefined();
    expect(grid.received.filter((r) => r.stage === 'masked-input' && r.round === 1)).toHaveLength(5);
  });

  for (const stage of ['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask'] as const) {
    it(`one hospital lost at ${stage}: the round completes with the right survivors`, async () => {
      const grid = new SecAggMemoryGrid((h, s, r) => r === 1 && h === 'H2' && s === stage);
      const { summary, initial, rounds } = await run(grid);
      expect(summary.status, summary.reason).toBe('completed');
      const survivors = grid.masked.get(1)!;
      expect(survivors).toEqual(stage === 'unmask' || stage === 'consistency-check' ? HOSPITALS : HOSPITALS.filter((h) => h !== 'H2'));
      expectAggregate(summary.weights, initial, survivors);
      expect(rounds[0]!.participation).toContainEqual(expect.objectContaining({ hospitalId: 'H2', stage, status: 'dropped' }));
      expect(rounds[0]!.metrics.secagg_dropped).toBe(1);
      expect(rounds[0]!.metrics.secagg_recovered).toBe(stage === 'masked-input' ? 1 : 0);
    });
  }

  it('two hospitals lost at different stages (share-keys and masked-input), t = 3: still completes', async () => {
    const grid = new SecAggMemoryGrid((h, s, r) => r === 1 && ((h === 'H1' && s === 'share-keys') || (h === 'H4' && s === 'masked-input')));
    const { summary, initial } = await run(grid);
    expect(summary.status, summary.reason).toBe('completed');
    expectAggregate(summary.weights, initial, ['H2', 'H3', 'H5']);
  });

  it('too many lost for the threshold: the round fails with the protocol’s reason, and the run says so', async () => {
    const grid = new SecAggMemoryGrid((h, s, r) => r === 1 && ['H1', 'H2', 'H3'].includes(h) && s === 'unmask');
    const { summary } = await run(grid, { round_failure_policy: 'stop' });
    expect(summary.status).toBe('failed');
    expect(summary.reason).toMatch(/round 1: stage unmask failed: .*/);
  });

  it('preprocessing: the feature sums go only masked (round 0, fixed point) and give the statistics of the plain sums', async () => {
    const grid = new SecAggMemoryGrid(() => false);
    const { summary } = await run(grid);
    expect(summary.status, summary.reason).toBe('completed');
    expect(grid.masked.get(0)).toEqual(HOSPITALS);
    for (const r of grid.received) if (r.stage === 'preprocess') expect(r.sums).toBeUndefined();
    const want = plainStats(HOSPITALS, 30);
    const stats = statsOf(summary);
    expect(stats.records).toBe(want.records);
    for (const k of ['demographics', 'vitals', 'labs', 'biology', 'omics'] as const) {
      stats[k].mean.forEach((v, j) => expect(Math.abs(v - want[k].mean[j]!), `${k}.mean[${j}]`).toBeLessThan(1e-9 * (1 + Math.abs(v))));
      stats[k].std.forEach((v, j) => expect(Math.abs(v - want[k].std[j]!), `${k}.std[${j}]`).toBeLessThan(1e-8 * (1 + Math.abs(v))));
    }
  });

  it.each(['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask'] as const)('preprocessing with H4 lost at %s: the statistics of the hospitals whose sums are in', async (stage) => {
    const grid = new SecAggMemoryGrid((h, s, r) => r === 0 && h === 'H4' && s === stage);
    const { summary } = await run(grid, { min_available_clients: 4, min_fit_clients: 3 });
    expect(summary.status, summary.reason).toBe('completed');
    const contributors = stage === 'unmask' || stage === 'consistency-check' ? HOSPITALS : HOSPITALS.filter((h) => h !== 'H4');
    expect(statsOf(summary).records).toBe(plainStats(contributors, 30).records);
    const want = plainStats(contributors, 30);
    statsOf(summary).labs.mean.forEach((v, j) => expect(Math.abs(v - want.labs.mean[j]!)).toBeLessThan(1e-9 * (1 + Math.abs(v))));
  });

  it('preprocessing: a hospital that sends its sums in the clear anyway is rejected, not used', async () => {
    const grid = new SecAggMemoryGrid(() => false);
    const leaky = grid.request.bind(grid);
    grid.request = async (req) => {
      if (req.stage !== 'preprocess') return leaky(req);
      const out = await leaky({ ...req, check: undefined } as typeof req);
      const h1 = out.results.get('H1');
      if (h1) Object.assign(h1, { sums: sumsOf('H1', 30) });
      // The engine's check sees the reply as it came.
      for (const [h, r] of [...out.results]) {
        const err = await req.check?.(h, r);
        if (err) {
          out.results.delete(h);
          out.dropped.push({ hospitalId: h, reason: 'rejected', detail: err.message });
        }
      }
      expect(out.dropped).toEqual([{ hospitalId: 'H1', reason: 'rejected', detail: 'sums: not accepted in the clear with secure aggregation (they go masked in round 0)' }]);
      return out;
    };
    const { summary } = await run(grid, { min_available_clients: 4 });
    expect(summary.status, summary.reason).toBe('completed');
    expect(statsOf(summary).records).toBe(plainStats(['H2', 'H3', 'H4', 'H5'], 30).records);
  });

  it('refuses a strategy that needs every update in the clear', () => {
    const res = runConfigSchema.safeParse({ strategy: 'krum', secure_aggregation: 'secagg' });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]).toMatchObject({ path: ['secure_aggregation'], message: expect.stringMatching(/strategy krum needs every update in the clear/) });
  });
});
