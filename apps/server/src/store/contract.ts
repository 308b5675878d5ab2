/**
 * The Store contract as one vitest suite, run against every implementation (sqlite.test.ts,
 * aws.test.ts): runs, rounds, retention of weights, resume, feature statistics, the audit log,
 * tokens and close, each asserted through the Store interface alone, plus — through the optional
 * hooks of the store under test — that a refused write leaves the backend's state exactly as it
 * was and that no token's plaintext is stored anywhere.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type CreatedToken, type RoundCommit, type RunStats, type Store, type StoreErrorCode, type TokenSpec } from '@fedcare/shared/fl';
import { hashToken } from './tokens';
import { METRIC_NAMES, commitFor, metricsFor, sha256Hex, weightsFor } from './testing/rounds';

/** A stats slot's contents as the store sees them: any JSON (what kind of stats it is, is the caller's business). */
const opaque = (json: unknown) => json as RunStats;

export interface StoreUnderTest {
  store: Store;
  /** Closes the current store (the last one reopen gave, if any) and removes what the test made. */
  cleanup(): Promise<void>;
  /** Closes the store and opens the same backing data again: what a restarted coordinator sees. */
  reopen?(): Promise<Store>;
  /** The backend's whole state as comparable data: a refused write must leave it equal. */
  snapshot?(): Promise<unknown>;
  /** Every byte the backend holds (files, items, objects): no token plaintext may be among them. */
  rawBytes?(): Promise<Buffer[]>;
}

export async function rejectsWith(p: Promise<unknown>, code: StoreErrorCode, message?: RegExp): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a StoreError ${code}`).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  if (message) expect((err as StoreError).message).toMatch(message);
  return err as StoreError;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isoWithin(iso: string, from: number, to: number): void {
  expect(iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(Date.parse(iso)).toBeGreaterThanOrEqual(from);
  expect(Date.parse(iso)).toBeLessThanOrEqual(to);
}

/** Everything the Store interface shows, for "nothing changed" checks that hold for any backend. */
async function observe(store: Store): Promise<unknown> {
  const runs = [];
  for (const run of await store.listRuns()) {
    const id = run.runId;
    const versions = await store.listModelVersions(id);
    const kept = [];
    for (const v of versions) if (v.stored) kept.push(await store.getModel(id, v.round));
    runs.push({
      run,
      rounds: await store.getRoundMetrics(id),
      versions,
      kept,
      latest: await store.getModel(id, 'latest'),
      best: await store.getModel(id, 'best'),
      resume: await store.resumePoint(id),
      stats: await store.getFeatureStats(id),
    });
  }
  return { runs, active: await store.activeRun(), audit: await store.listAudit({ limit: 100_000 }), tokens: await store.listTokens() };
}

export function describeStoreContract(name: string, make: () => Promise<StoreUnderTest>): void {
  let t: StoreUnderTest;
  let store: Store;

  beforeEach(async () => {
    t = await make();
    store = t.store;
  });
  afterEach(async () => {
    await t.cleanup();
  });

  /** Runs `fn` (which must be refused) and checks that the store — and its backing data — did not change. */
  async function changesNothing(fn: () => Promise<void>): Promise<void> {
    const raw = await t.snapshot?.();
    const seen = await observe(store);
    await fn();
    expect(await observe(store)).toEqual(seen);
    if (t.snapshot) expect(await t.snapshot()).toEqual(raw);
  }

  async function reopened(): Promise<void> {
    if (t.reopen) store = await t.reopen();
  }

  describe(`${name} (Store contract): runs`, () => {
    it('creates, lists, finds the active run and moves it to a terminal state', async () => {
      const config = { strategy: 'fedavg', rounds: 5, nested: { mu: 0.01, hospitals: ['H1', 'H2'] } };
      const from = Date.now();
      const created = await store.createRun('r1', config, 5);
      const to = Date.now();
      expect(created).toEqual({ runId: 'r1', status: 'running', config, totalRounds: 5, lastCompletedRound: 0, createdAt: created.createdAt, updatedAt: created.createdAt });
      isoWithin(created.createdAt, from, to);
      expect(await store.getRun('r1')).toEqual(created);
      expect(await store.activeRun()).toEqual(created);
      await rejectsWith(store.createRun('r2', {}, 5), 'conflict', /"r1" is still running/);
      await rejectsWith(store.createRun('r1', {}, 5), 'conflict', /already exists/);

      await sleep(2);
      const stopped = await store.setRunStatus('r1', 'stopped', 'admin asked');
      expect(stopped).toEqual({ ...created, status: 'stopped', reason: 'admin asked', updatedAt: stopped.updatedAt });
      expect(Date.parse(stopped.updatedAt)).toBeGreaterThan(Date.parse(created.createdAt));
      expect(await store.getRun('r1')).toEqual(stopped);
      expect(await store.activeRun()).toBeUndefined();

      // Newest first, also between runs created within the same millisecond.
      await store.createRun('r2', {}, 2);
      await store.setRunStatus('r2', 'failed');
      const r3 = await store.createRun('r3', {}, 2);
      expect((await store.listRuns()).map((r) => r.runId)).toEqual(['r3', 'r2', 'r1']);
      expect(await store.getRun('r2')).not.toHaveProperty('reason');
      expect(await store.activeRun()).toEqual(r3);
      expect(await store.getRun('nope')).toBeUndefined();
      expect(await store.getRun('')).toBeUndefined();
    });

    it.each([
      { from: 'running', to: 'running', ok: false },
      { from: 'running', to: 'completed', ok: true },
      { from: 'running', to: 'failed', ok: true },
      { from: 'completed', to: 'running', ok: false },
      { from: 'completed', to: 'stopped', ok: false },
      { from: 'stopped', to: 'stopped', ok: false },
    ] as const)('status $from → $to allowed: $ok', async ({ from, to, ok }) => {
      await store.createRun('r', {}, 3);
      if (from !== 'running') await store.setRunStatus('r', from);
      if (ok) {
        expect((await store.setRunStatus('r', to)).status).toBe(to);
        expect((await store.getRun('r'))?.status).toBe(to);
        expect(await store.activeRun()).toBeUndefined();
      } else {
        await rejectsWith(store.setRunStatus('r', to), 'conflict', new RegExp(`run "r" is ${from}; only a running run`));
        expect((await store.getRun('r'))?.status).toBe(from);
      }
    });

    it('rejects bad input with clear errors and creates nothing', async () => {
      await rejectsWith(store.createRun('', {}, 3), 'invalid', /runId/);
      await rejectsWith(store.createRun('x'.repeat(201), {}, 3), 'invalid', /runId/);
      await rejectsWith(store.createRun('r', {}, 0), 'invalid', /totalRounds/);
      await rejectsWith(store.createRun('r', {}, 2.5), 'invalid', /totalRounds/);
      await rejectsWith(store.createRun('r', [] as unknown as Record<string, unknown>, 3), 'invalid', /config/);
      await rejectsWith(store.createRun('r', { n: 1n } as unknown as Record<string, unknown>, 3), 'invalid', /config is not JSON-serialisable/);
      expect(await store.listRuns()).toEqual([]);
      await rejectsWith(store.setRunStatus('missing', 'stopped'), 'not_found', /"missing" does not exist/);
      await store.createRun('r', {}, 3);
      await rejectsWith(store.setRunStatus('r', 'paused' as 'stopped'), 'invalid', /status must be one of/);
      expect((await store.getRun('r'))?.status).toBe('running');
    });

    it('takes any run id of 1 to 200 characters', async () => {
      for (const id of ['a/b/../c d', 'ü-ñ.%2F#?&', 'x'.repeat(200)]) {
        await store.createRun(id, { id }, 2);
        await store.commitRound(commitFor({ runId: id, round: 1 }));
        expect((await store.getModel(id, 'latest'))?.bytes).toEqual(weightsFor(1, 64));
        expect((await store.getRoundMetrics(id)).map((r) => r.round)).toEqual([1]);
        await store.setRunStatus(id, 'completed');
      }
      expect((await store.listRuns()).map((r) => r.runId).sort()).toEqual(['a/b/../c d', 'ü-ñ.%2F#?&', 'x'.repeat(200)].sort());
    });
  });

  describe(`${name} (Store contract): rounds`, () => {
    beforeEach(async () => {
      await store.createRun('r', { strategy: 'fedavg' }, 20);
    });

    it('round-trips metrics (NaN, ±Infinity and extremes too), per-hospital metrics and participation', async () => {
      const c = commitFor({ runId: 'r', round: 1 });
      Object.assign(c.metrics, {
        auc_pr: Number.NaN,
        epsilon: Number.POSITIVE_INFINITY,
        privacy_epsilon: Number.POSITIVE_INFINITY,
        floor: Number.NEGATIVE_INFINITY,
        delta: -0.5,
        tiny: 5e-324,
        huge: Number.MAX_VALUE,
        third: 1 / 3,
        // Names a backend might use for its own fields, and odd characters.
        checkpoint: 7,
        run_id: 8,
        timestamp: 9,
        'a.b c/é#1': 10,
      });
      c.perHospital.H2 = { test_accuracy: Number.NaN, test_loss: Number.POSITIVE_INFINITY, auc_roc: 1e-200 };
      c.participation[2] = { hospitalId: 'H3', stage: 'train', status: 'rejected', reason: 'update failed the norm check', bytesUp: 0, bytesDown: 0 };
      const run = await store.commitRound(c);
      expect(run).toMatchObject({ lastCompletedRound: 1, bestRound: 1, bestValLoss: c.metrics.val_loss, status: 'running' });
      expect(await store.getRun('r')).toEqual(run);
      const [got, ...rest] = await store.getRoundMetrics('r');
      expect(rest).toEqual([]);
      expect(got).toEqual({ round: 1, metrics: c.metrics, perHospital: c.perHospital, participation: c.participation, startedAt: c.startedAt, completedAt: c.completedAt });
      expect(Object.keys(got?.metrics ?? {}).sort()).toEqual([...METRIC_NAMES, 'privacy_epsilon', 'floor', 'tiny', 'huge', 'third', 'checkpoint', 'run_id', 'timestamp', 'a.b c/é#1'].sort());
      expect(got?.metrics.auc_pr).toBeNaN();
      expect(got?.metrics.epsilon).toBe(Number.POSITIVE_INFINITY);
      expect(got?.metrics.floor).toBe(Number.NEGATIVE_INFINITY);
      expect(got?.metrics.tiny).toBe(5e-324);
      expect(got?.metrics.huge).toBe(Number.MAX_VALUE);
      expect(got?.perHospital.H2?.test_accuracy).toBeNaN();
      expect(got?.participation.map((p) => p.hospitalId)).toEqual(['H1', 'H2', 'H3', 'H1']); // in commit order
    });

    it('returns rounds in order, one round on request, and the second round with a dropout', async () => {
      for (let r = 1; r <= 11; r++) await store.commitRound(commitFor({ runId: 'r', round: r }));
      expect((await store.getRoundMetrics('r')).map((m) => m.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // numeric, not text, order
      const [two, ...none] = await store.getRoundMetrics('r', 2);
      expect(none).toEqual([]);
      expect(two?.round).toBe(2);
      expect(two?.participation[1]).toEqual({ hospitalId: 'H2', stage: 'train', status: 'dropped', reason: 'disconnect', bytesUp: 10, bytesDown: 20 });
      expect(two?.participation[0]).not.toHaveProperty('reason');
      expect(two?.metrics).toEqual(metricsFor(2));
      expect(await store.getRoundMetrics('r', 12)).toEqual([]);
      expect(await store.getRoundMetrics('r', 0)).toEqual([]);
      expect(await store.getRoundMetrics('other')).toEqual([]);
      await rejectsWith(store.getRoundMetrics('r', 1.5), 'invalid', /round must be an integer/);
    });

    it('rejects a replayed round and changes nothing', async () => {
      await store.commitRound(commitFor({ runId: 'r', round: 1 }));
      await store.commitRound(commitFor({ runId: 'r', round: 2 }));
      const replay = commitFor({ runId: 'r', round: 2, weightCount: 65 });
      replay.metrics.val_loss = 0.0001;
      await changesNothing(async () => {
        await rejectsWith(store.commitRound(replay), 'replay', /round 2 of run "r" is already committed/);
        await rejectsWith(store.commitRound(commitFor({ runId: 'r', round: 1 })), 'replay');
      });
      expect((await store.getRoundMetrics('r', 2))[0]?.metrics).toEqual(metricsFor(2));
    });

    it('commits a round once when two commits of it race', async () => {
      await store.commitRound(commitFor({ runId: 'r', round: 1 }));
      const a = commitFor({ runId: 'r', round: 2 });
      const b = commitFor({ runId: 'r', round: 2, weightCount: 65 });
      b.metrics.val_loss = 0.001;
      const results = await Promise.allSettled([store.commitRound(a), store.commitRound(b)]);
      const won = results.findIndex((r) => r.status === 'fulfilled');
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results[1 - won];
      expect(lost?.status === 'rejected' && lost.reason instanceof StoreError ? lost.reason.code : lost).toBe('replay');
      const winner = won === 0 ? a : b;
      const rounds = await store.getRoundMetrics('r');
      expect(rounds.map((r) => r.round)).toEqual([1, 2]);
      expect(rounds[1]?.metrics).toEqual(winner.metrics);
      expect((await store.listModelVersions('r')).map((v) => v.sha256)).toEqual([sha256Hex(weightsFor(1, 64)), winner.model.sha256]);
      expect((await store.resumePoint('r'))?.weights).toEqual(winner.model.bytes);
      expect(await store.getRun('r')).toMatchObject({ lastCompletedRound: 2, bestValLoss: winner.metrics.val_loss });
    });

    it.each<{ name: string; change: (c: RoundCommit) => void; code: StoreErrorCode; message: RegExp }>([
      { name: 'a skipped round', change: (c) => (c.round = 4), code: 'out_of_order', message: /next round is 3/ },
      { name: 'a wrong sha256', change: (c) => (c.model.sha256 = '0'.repeat(64)), code: 'invalid', message: /does not match the weights/ },
      { name: 'a malformed sha256', change: (c) => (c.model.sha256 = 'ABC'), code: 'invalid', message: /64 lower-case hex/ },
      { name: 'a string metric', change: (c) => ((c.metrics as Record<string, unknown>).auc_roc = '0.9'), code: 'invalid', message: /metrics.auc_roc must be a number/ },
      { name: 'an empty metric name', change: (c) => (c.metrics[''] = 1), code: 'invalid', message: /empty metric name/ },
      { name: 'best without val_loss', change: (c) => delete c.metrics.val_loss, code: 'invalid', message: /finite val_loss/ },
      { name: 'best with an infinite val_loss', change: (c) => (c.metrics.val_loss = Number.POSITIVE_INFINITY), code: 'invalid', message: /finite val_loss/ },
      { name: 'negative bytes', change: (c) => ((c.participation[0] as { bytesUp: number }).bytesUp = -1), code: 'invalid', message: /participation\[0\].bytesUp/ },
      { name: 'a bad participation status', change: (c) => ((c.participation[0] as { status: string }).status = 'gone'), code: 'invalid', message: /status must be one of/ },
      { name: 'a string as strategy state', change: (c) => ((c as { strategyState: unknown }).strategyState = 'x'), code: 'invalid', message: /strategyState/ },
      { name: 'an unknown run', change: (c) => (c.runId = 'nope'), code: 'not_found', message: /"nope" does not exist/ },
      { name: 'a bad timestamp', change: (c) => (c.startedAt = 'yesterday'), code: 'invalid', message: /startedAt/ },
    ])('rejects $name and writes nothing', async ({ change, code, message }) => {
      await store.commitRound(commitFor({ runId: 'r', round: 1 }));
      await store.commitRound(commitFor({ runId: 'r', round: 2 }));
      const c = commitFor({ runId: 'r', round: 3 });
      change(c);
      await changesNothing(async () => {
        await rejectsWith(store.commitRound(c), code, message);
      });
    });

    it('refuses rounds past totalRounds and on a run that is not running, writing nothing', async () => {
      await store.setRunStatus('r', 'completed');
      await store.createRun('short', {}, 1);
      await store.commitRound(commitFor({ runId: 'short', round: 1 }));
      await changesNothing(async () => {
        await rejectsWith(store.commitRound(commitFor({ runId: 'short', round: 2 })), 'out_of_order', /past the run's 1 rounds/);
        await rejectsWith(store.commitRound(commitFor({ runId: 'r', round: 1 })), 'conflict', /"r" is completed/);
      });
    });

    it('keeps only the latest, checkpoint and best weights; the versions keep every sha', async () => {
      // Best at rounds 1, 2, 3 then never again: best stays 3. Checkpoints every 5 rounds.
      for (let r = 1; r <= 12; r++) await store.commitRound(commitFor({ runId: 'r', round: r, best: r <= 3 }));
      const versions = await store.listModelVersions('r');
      expect(versions.map((v) => v.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      for (const v of versions) {
        expect(v.sha256).toBe(sha256Hex(weightsFor(v.round, 64)));
        expect(v.sizeBytes).toBe(256);
        expect(Date.parse(v.createdAt)).not.toBeNaN();
      }
      expect(versions.filter((v) => v.stored).map((v) => v.round)).toEqual([3, 5, 10, 12]);
      expect(versions.filter((v) => v.checkpoint).map((v) => v.round)).toEqual([5, 10]);
      expect(versions.filter((v) => v.best).map((v) => v.round)).toEqual([1, 2, 3]);

      const run = await store.getRun('r');
      expect(run).toMatchObject({ lastCompletedRound: 12, bestRound: 3, bestValLoss: metricsFor(3).val_loss });
      const cases = [
        { which: 'latest', round: 12 },
        { which: 'best', round: 3 },
        { which: 3, round: 3 },
        { which: 5, round: 5 },
        { which: 10, round: 10 },
        { which: 12, round: 12 },
      ] as const;
      for (const { which, round } of cases) {
        const m = await store.getModel('r', which);
        expect(m?.round).toBe(round);
        expect(m?.bytes).toEqual(weightsFor(round, 64));
        expect(m?.sha256).toBe(sha256Hex(weightsFor(round, 64)));
      }
      for (const dropped of [1, 2, 4, 6, 11]) expect(await store.getModel('r', dropped), `round ${dropped}`).toBeUndefined(); // version kept, weights dropped
      expect(await store.getModel('r', 0)).toBeUndefined();
      expect(await store.getModel('r', 99)).toBeUndefined();
      expect(await store.getModel('nope', 'latest')).toBeUndefined();
      await rejectsWith(store.getModel('r', 'first' as 'best'), 'invalid', /which must be/);
      await rejectsWith(store.getModel('r', 2.5), 'invalid', /which must be/);

      // A new best moves the best pointer and drops the old best's weights (3 is no checkpoint).
      await store.commitRound(commitFor({ runId: 'r', round: 13, best: true }));
      expect((await store.listModelVersions('r')).filter((v) => v.stored).map((v) => v.round)).toEqual([5, 10, 13]);
      expect((await store.getModel('r', 'best'))?.round).toBe(13);
      expect(await store.getModel('r', 3)).toBeUndefined();
      expect(await store.getModel('r', 12)).toBeUndefined();
      expect(await store.listModelVersions('nope')).toEqual([]);
    });

    it('keeps a round whose weights equal a dropped round’s', async () => {
      // Rounds 1–3 aggregate to the same weights (nobody trained); round 1 is the best, 2 is dropped.
      const same = (round: number): RoundCommit => ({ ...commitFor({ runId: 'r', round, best: round === 1 }), model: commitFor({ runId: 'r', round: 1 }).model });
      for (let r = 1; r <= 3; r++) await store.commitRound(same(r));
      expect((await store.listModelVersions('r')).map((v) => [v.round, v.stored])).toEqual([
        [1, true],
        [2, false],
        [3, true],
      ]);
      expect((await store.getModel('r', 'latest'))?.bytes).toEqual(weightsFor(1, 64));
      expect((await store.getModel('r', 'best'))?.bytes).toEqual(weightsFor(1, 64));
      await store.commitRound(commitFor({ runId: 'r', round: 4, best: true })); // 1 and 3 are dropped now
      expect((await store.getModel('r', 'latest'))?.round).toBe(4);
      expect(await store.getModel('r', 1)).toBeUndefined();
      expect((await store.resumePoint('r'))?.weights).toEqual(weightsFor(4, 64));
    });

    it('gives the resume point of the last completed round, also after a reopen', async () => {
      expect(await store.resumePoint('r')).toBeUndefined();
      expect(await store.getModel('r', 'latest')).toBeUndefined();
      expect(await store.getModel('r', 'best')).toBeUndefined();
      for (let r = 1; r <= 7; r++) await store.commitRound(commitFor({ runId: 'r', round: r, weightCount: 1000 }));
      const resume = await store.resumePoint('r');
      expect(resume?.round).toBe(7);
      expect(resume?.weights).toEqual(weightsFor(7, 1000));
      expect(resume?.sha256).toBe(sha256Hex(weightsFor(7, 1000)));
      expect(new TextDecoder().decode(resume?.strategyState)).toBe('{"step":7}');
      // The weights are an offset-0 copy: viewable as float32 directly.
      expect(resume?.weights.byteOffset).toBe(0);
      expect(new Float32Array(resume?.weights.buffer ?? new ArrayBuffer(0))[0]).toBe(7);
      await rejectsWith(store.resumePoint('nope'), 'not_found');

      await reopened();
      expect((await store.resumePoint('r'))?.round).toBe(7);
      expect((await store.activeRun())?.lastCompletedRound).toBe(7);
      await store.commitRound(commitFor({ runId: 'r', round: 8 }));
      expect(new TextDecoder().decode((await store.resumePoint('r'))?.strategyState)).toBe('{"step":8}');
    });

    it('saves feature statistics, replaceable until round 1 commits', async () => {
      expect(await store.getFeatureStats('r')).toBeUndefined();
      await store.saveFeatureStats('r', opaque({ vitals: { mean: [1, 2], std: [0.5, 0.25] } }));
      await store.saveFeatureStats('r', opaque({ vitals: { mean: [3], std: [1] } }));
      expect(await store.getFeatureStats('r')).toEqual({ vitals: { mean: [3], std: [1] } });
      await rejectsWith(store.saveFeatureStats('r', opaque({ n: 1n })), 'invalid', /feature stats is not JSON-serialisable/);
      await store.commitRound(commitFor({ runId: 'r', round: 1 }));
      await changesNothing(async () => {
        await rejectsWith(store.saveFeatureStats('r', opaque({})), 'conflict', /fixed/);
        await rejectsWith(store.saveFeatureStats('nope', opaque({})), 'not_found');
      });
      expect(await store.getFeatureStats('r')).toEqual({ vitals: { mean: [3], std: [1] } });
      expect(await store.getFeatureStats('nope')).toBeUndefined();
      await reopened();
      expect(await store.getFeatureStats('r')).toEqual({ vitals: { mean: [3], std: [1] } });
    });
  });

  describe(`${name} (Store contract): audit log`, () => {
    it('appends and lists newest first, with limit and since', async () => {
      const from = Date.now();
      const a = await store.appendAudit({ actor: 'hospital:H1', action: 'join', outcome: 'ok' });
      await sleep(5);
      const mid = new Date().toISOString();
      await sleep(5);
      const b = await store.appendAudit({ actor: '10.0.0.9', action: 'auth', outcome: 'rejected', detail: { reason: 'unknown token' } });
      const c = await store.appendAudit({ actor: 'admin', action: 'train.start', outcome: 'ok', runId: 'r', detail: { rounds: 5, nested: { x: [1, null] } } });
      const to = Date.now();
      expect(a).toEqual({ id: 1, at: a.at, actor: 'hospital:H1', action: 'join', outcome: 'ok' });
      isoWithin(a.at, from, to);
      expect([b.id, c.id]).toEqual([2, 3]);
      expect(b.detail).toEqual({ reason: 'unknown token' });
      expect(c).toMatchObject({ runId: 'r', detail: { rounds: 5, nested: { x: [1, null] } } });
      expect(await store.listAudit({ limit: 10 })).toEqual([c, b, a]);
      expect(await store.listAudit({ limit: 2 })).toEqual([c, b]);
      expect(await store.listAudit({ limit: 10, since: mid.replace('Z', '+00:00') })).toEqual([c, b]);
      expect(await store.listAudit({ limit: 1, since: mid })).toEqual([c]);
      expect(await store.listAudit({ limit: 10, since: '2999-01-01T00:00:00Z' })).toEqual([]);
    });

    it('is append-only: entries keep their content, ids grow, a refused entry leaves no trace', async () => {
      const written = [];
      for (let i = 0; i < 30; i++) written.push(await store.appendAudit({ actor: `a${i}`, action: 'x', outcome: i % 2 ? 'ok' : 'error', detail: { i } }));
      const listed = await store.listAudit({ limit: 1000 });
      expect(listed).toEqual([...written].reverse());
      expect(listed.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i));
      await changesNothing(async () => {
        await rejectsWith(store.appendAudit({ actor: 'x', action: 'y', outcome: 'maybe' as 'ok' }), 'invalid', /outcome must be one of/);
        await rejectsWith(store.appendAudit({ actor: '', action: 'y', outcome: 'ok' }), 'invalid', /actor/);
        await rejectsWith(store.appendAudit({ actor: 'x', action: '', outcome: 'ok' }), 'invalid', /action/);
        await rejectsWith(store.appendAudit({ actor: 'x', action: 'y', outcome: 'ok', detail: { n: 1n } }), 'invalid', /audit detail is not JSON-serialisable/);
      });
      const next = await store.appendAudit({ actor: 'later', action: 'x', outcome: 'ok' });
      expect(next.id).toBe(31);
      expect((await store.listAudit({ limit: 1000 })).slice(1)).toEqual(listed);
    });

    it('keeps bounded rows by retention: the newest maxRows unchanged, the oldest removed, ids still growing', async () => {
      const written = [];
      for (let i = 0; i < 30; i++) written.push(await store.appendAudit({ actor: `a${i}`, action: 'x', outcome: 'ok', detail: { i } }));
      expect(await store.pruneAudit({ maxRows: 50 })).toBe(0);
      expect(await store.pruneAudit({ maxRows: 10 })).toBe(20);
      expect(await store.listAudit({ limit: 1000 })).toEqual(written.slice(20).reverse());
      expect(await store.pruneAudit({ maxRows: 10 })).toBe(0);
      const next = await store.appendAudit({ actor: 'later', action: 'x', outcome: 'ok' });
      expect(next.id).toBe(31);
      await reopened();
      expect((await store.listAudit({ limit: 1000 })).map((e) => e.id)).toEqual([31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21]);
      // By age: everything written before the sleep goes, the entry after it stays. The horizon is
      // the young entry's age now plus 900 ms (the older ones are ≥ 1 s older than it), so a slow
      // store or a loaded machine (CI: dynalite took > 20 ms for one append) cannot race it.
      await sleep(1000);
      const young = await store.appendAudit({ actor: 'young', action: 'x', outcome: 'ok' });
      const youngAge = Math.max(0, Date.now() - Date.parse(young.at));
      expect(await store.pruneAudit({ maxRows: 1000, maxAgeMs: youngAge + 900 })).toBe(11);
      expect(await store.listAudit({ limit: 1000 })).toEqual([young]);
      await rejectsWith(store.pruneAudit({ maxRows: 0 }), 'invalid', /maxRows/);
      await rejectsWith(store.pruneAudit({ maxRows: 5, maxAgeMs: -1 }), 'invalid', /maxAgeMs/);
    });

    it.each([
      [{ limit: 0 }, /limit/],
      [{ limit: 1.5 }, /limit/],
      [{ limit: 100_001 }, /limit/],
      [{ limit: 10, since: 'yesterday' }, /since must be an ISO-8601 timestamp/],
    ])('refuses the query %j', async (query, message) => {
      await rejectsWith(store.listAudit(query), 'invalid', message);
    });
  });

  describe(`${name} (Store contract): tokens`, () => {
    it('creates, verifies, lists and revokes tokens', async () => {
      const from = Date.now();
      const h1 = await store.createToken({ role: 'hospital', hospitalId: 'H1' });
      const admin = await store.createToken({ role: 'admin' });
      expect(h1.token).toMatch(/^fct_[A-Za-z0-9_-]{43}$/); // 'fct_' + 256 bits, base64url
      expect(h1.tokenId).toMatch(/^tok_[0-9a-f]{12}$/);
      expect(h1.token).not.toBe(admin.token);
      expect(await store.verifyToken(h1.token)).toEqual({ role: 'hospital', hospitalId: 'H1' });
      expect(await store.verifyToken(admin.token)).toEqual({ role: 'admin' });
      const wrong = [`${h1.token}x`, h1.token.slice(1), h1.token.toUpperCase(), hashToken(h1.token), '', 'x'.repeat(5000)];
      for (const w of wrong) expect(await store.verifyToken(w)).toBeUndefined();
      // By digest (what a live connection keeps instead of the token): the same answers.
      expect(await store.verifyTokenHash(hashToken(h1.token))).toEqual({ role: 'hospital', hospitalId: 'H1' });
      expect(await store.verifyTokenHash(hashToken(admin.token))).toEqual({ role: 'admin' });
      for (const w of [hashToken(`${h1.token}x`), hashToken(h1.token).toUpperCase(), h1.token, '', 'f'.repeat(63)]) expect(await store.verifyTokenHash(w)).toBeUndefined();

      const list = await store.listTokens();
      expect(list.map(({ tokenId, role, hospitalId, revokedAt }) => ({ tokenId, role, hospitalId, revokedAt }))).toEqual([
        { tokenId: h1.tokenId, role: 'hospital', hospitalId: 'H1', revokedAt: undefined },
        { tokenId: admin.tokenId, role: 'admin', hospitalId: undefined, revokedAt: undefined },
      ]);
      for (const info of list) isoWithin(info.createdAt, from, Date.now());
      expect(JSON.stringify(list)).not.toContain(h1.token);
      expect(JSON.stringify(list)).not.toContain(hashToken(h1.token));

      expect(await store.revokeToken(h1.tokenId)).toBe(true);
      expect(await store.revokeToken(h1.tokenId)).toBe(false);
      expect(await store.revokeToken('tok_nope')).toBe(false);
      expect(await store.revokeToken('')).toBe(false);
      expect(await store.verifyToken(h1.token)).toBeUndefined();
      expect(await store.verifyTokenHash(hashToken(h1.token))).toBeUndefined();
      expect(await store.verifyToken(admin.token)).toEqual({ role: 'admin' });
      const after = await store.listTokens();
      expect(after.map((i) => i.tokenId)).toEqual([h1.tokenId, admin.tokenId]);
      expect(after[0]?.revokedAt).toMatch(/Z$/);
      expect(after[1]?.revokedAt).toBeUndefined();
    });

    it('observer tokens, and tokens that expire', async () => {
      const observer = await store.createToken({ role: 'observer' });
      const soon = new Date(Date.now() + 60_000).toISOString();
      const lasting = await store.createToken({ role: 'hospital', hospitalId: 'H1', expiresAt: soon });
      const expired = await store.createToken({ role: 'admin', expiresAt: new Date(Date.now() - 1000).toISOString() });
      expect(await store.verifyToken(observer.token)).toEqual({ role: 'observer' });
      expect(await store.verifyToken(lasting.token)).toEqual({ role: 'hospital', hospitalId: 'H1' });
      expect(await store.verifyToken(expired.token)).toBeUndefined();
      expect(await store.verifyTokenHash(hashToken(expired.token))).toBeUndefined();
      const list = await store.listTokens();
      expect(list.map(({ tokenId, role, expiresAt }) => ({ tokenId, role, expiresAt }))).toEqual([
        { tokenId: observer.tokenId, role: 'observer', expiresAt: undefined },
        { tokenId: lasting.tokenId, role: 'hospital', expiresAt: soon },
        { tokenId: expired.tokenId, role: 'admin', expiresAt: expect.stringMatching(/Z$/) as unknown },
      ]);
      await reopened();
      expect(await store.verifyToken(expired.token)).toBeUndefined();
      expect(await store.verifyToken(observer.token)).toEqual({ role: 'observer' });
    });

    it.each([
      [{ role: 'observer', hospitalId: 'H1' }],
      [{ role: 'hospital', hospitalId: 'H1', expiresAt: 'tomorrow' }],
      [{ role: 'hospital', hospitalId: '' }],
      [{ role: 'hospital', hospitalId: 'H 1' }],
      [{ role: 'hospital' }],
      [{ role: 'admin', hospitalId: 'H1' }],
      [{ role: 'root' }],
    ])('refuses token spec %j', async (spec) => {
      await rejectsWith(store.createToken(spec as TokenSpec), 'invalid');
      expect(await store.listTokens()).toEqual([]);
    });

    it('stores only the SHA-256: the plaintext is nowhere in the backend, the hash is', async () => {
      const tokens: CreatedToken[] = [];
      for (let i = 0; i < 5; i++) tokens.push(await store.createToken({ role: 'hospital', hospitalId: `H${i}` }));
      tokens.push(await store.createToken({ role: 'admin' }));
      await store.revokeToken(tokens[0]?.tokenId ?? '');
      if (t.rawBytes) {
        const raw = await t.rawBytes();
        expect(raw.length).toBeGreaterThan(0);
        const all = Buffer.concat(raw);
        for (const { token } of tokens) {
          expect(all.includes(Buffer.from(token, 'utf8'))).toBe(false);
          expect(all.includes(Buffer.from(token.slice(4), 'base64url'))).toBe(false);
          expect(all.includes(Buffer.from(hashToken(token), 'utf8')), 'its SHA-256 is stored').toBe(true);
        }
      }
      await reopened();
      expect(await store.verifyToken(tokens[0]?.token ?? '')).toBeUndefined();
      for (const { token } of tokens.slice(1)) expect(await store.verifyToken(token)).toBeDefined();
    });
  });

  describe(`${name} (Store contract): close`, () => {
    it('rejects every call once closed', async () => {
      await store.createRun('r', {}, 2);
      await store.close();
      await store.close(); // twice is fine
      const calls: [string, () => Promise<unknown>][] = [
        ['createRun', () => store.createRun('s', {}, 1)],
        ['getRun', () => store.getRun('r')],
        ['listRuns', () => store.listRuns()],
        ['activeRun', () => store.activeRun()],
        ['setRunStatus', () => store.setRunStatus('r', 'stopped')],
        ['commitRound', () => store.commitRound(commitFor({ runId: 'r', round: 1 }))],
        ['getRoundMetrics', () => store.getRoundMetrics('r')],
        ['resumePoint', () => store.resumePoint('r')],
        ['getModel', () => store.getModel('r', 'latest')],
        ['listModelVersions', () => store.listModelVersions('r')],
        ['saveFeatureStats', () => store.saveFeatureStats('r', opaque({}))],
        ['getFeatureStats', () => store.getFeatureStats('r')],
        ['appendAudit', () => store.appendAudit({ actor: 'a', action: 'b', outcome: 'ok' })],
        ['listAudit', () => store.listAudit({ limit: 1 })],
        ['createToken', () => store.createToken({ role: 'admin' })],
        ['verifyToken', () => store.verifyToken('fct_x')],
        ['revokeToken', () => store.revokeToken('tok_x')],
        ['listTokens', () => store.listTokens()],
      ];
      for (const [method, call] of calls) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err instanceof StoreError ? err.code : err, method).toBe('closed');
      }
    });
  });
}

