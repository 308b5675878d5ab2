import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type CreatedToken, type RoundCommit } from '@fedcare/shared/fl';
import { openSqliteStore, SCHEMA_VERSION, type SqliteStore } from './sqlite';
import { METRIC_NAMES, commitFor, metricsFor, sha256Hex, weightsFor } from './testing/rounds';

let dir: string;
let file: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedcare-store-'));
  file = join(dir, 'fedcare.db');
  store = openSqliteStore(file);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a StoreError ${code}`).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  if (message) expect((err as StoreError).message).toMatch(message);
}

/** Every table's full contents, for "nothing changed" checks. */
function snapshot(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all();
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}"`).all()]));
  } finally {
    db.close();
  }
}

describe('SqliteStore: opening', () => {
  it('uses WAL, synchronous=FULL, foreign keys and records the schema version', () => {
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const versions = db.prepare('SELECT version, name FROM schema_migrations').all();
      expect(versions).toEqual([{ version: 1, name: 'initial schema' }]);
    } finally {
      db.close();
    }
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION);
  });

  it('reopens an existing file without re-migrating and refuses a newer schema', async () => {
    await store.createRun('r1', {}, 3);
    await store.close();
    store = openSqliteStore(file);
    expect((await store.getRun('r1'))?.status).toBe('running');
    await store.close();
    const db = new Database(file);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, ?)').run('future', 'now');
    db.close();
    expect(() => openSqliteStore(file)).toThrow(/schema version 999, newer than/);
    store = openSqliteStore(':memory:');
  });

  it('works in memory and rejects calls once closed', async () => {
    const mem = openSqliteStore(':memory:');
    await mem.createRun('m', { a: 1 }, 1);
    expect((await mem.listRuns()).map((r) => r.runId)).toEqual(['m']);
    await mem.close();
    await rejectsWith(mem.getRun('m'), 'closed');
  });
});

describe('SqliteStore: run lifecycle', () => {
  it('creates, lists, finds the active run and moves it to a terminal state', async () => {
    let t = Date.UTC(2025, 0, 1);
    await store.close();
    store = openSqliteStore(file, { now: () => new Date((t += 1000)) });
    const config = { strategy: 'fedavg', rounds: 5, nested: { mu: 0.01, hospitals: ['H1', 'H2'] } };
    const created = await store.createRun('r1', config, 5);
    expect(created).toEqual({
      runId: 'r1',
      status: 'running',
      config,
      totalRounds: 5,
      lastCompletedRound: 0,
      createdAt: '2025-01-01T00:00:01.000Z',
      updatedAt: '2025-01-01T00:00:01.000Z',
    });
    expect(await store.activeRun()).toEqual(created);
    await rejectsWith(store.createRun('r2', {}, 5), 'conflict', /"r1" is still running/);
    await rejectsWith(store.createRun('r1', {}, 5), 'conflict', /already exists/);

    const stopped = await store.setRunStatus('r1', 'stopped', 'admin asked');
    expect(stopped).toMatchObject({ status: 'stopped', reason: 'admin asked', updatedAt: '2025-01-01T00:00:02.000Z' });
    expect(await store.activeRun()).toBeUndefined();

    await store.createRun('r2', {}, 2);
    expect((await store.listRuns()).map((r) => r.runId)).toEqual(['r2', 'r1']);
    expect(await store.getRun('nope')).toBeUndefined();
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
    if (ok) expect((await store.setRunStatus('r', to)).status).toBe(to);
    else await rejectsWith(store.setRunStatus('r', to), 'conflict');
  });

  it('rejects bad input with clear errors', async () => {
    await rejectsWith(store.createRun('', {}, 3), 'invalid', /runId/);
    await rejectsWith(store.createRun('r', {}, 0), 'invalid', /totalRounds/);
    await rejectsWith(store.createRun('r', [] as unknown as Record<string, unknown>, 3), 'invalid', /config/);
    await rejectsWith(store.setRunStatus('missing', 'stopped'), 'not_found');
  });
});

describe('SqliteStore: rounds', () => {
  beforeEach(async () => {
    await store.createRun('r', { strategy: 'fedavg' }, 20);
  });

  it('round-trips metrics (NaN and Infinity too), per-hospital metrics and participation', async () => {
    const c = commitFor({ runId: 'r', round: 1 });
    c.metrics.auc_pr = Number.NaN;
    c.metrics.epsilon = Number.POSITIVE_INFINITY;
    c.metrics.delta = -0.5;
    const run = await store.commitRound(c);
    expect(run).toMatchObject({ lastCompletedRound: 1, bestRound: 1, bestValLoss: c.metrics.val_loss });
    const [got, ...rest] = await store.getRoundMetrics('r');
    expect(rest).toEqual([]);
    expect(got).toEqual({
      round: 1,
      metrics: c.metrics,
      perHospital: c.perHospital,
      participation: c.participation,
      startedAt: c.startedAt,
      completedAt: c.completedAt,
    });
    expect(Object.keys(got?.metrics ?? {}).sort()).toEqual([...METRIC_NAMES].sort());
    expect(got?.metrics.auc_pr).toBeNaN();
    expect(got?.metrics.epsilon).toBe(Number.POSITIVE_INFINITY);
  });

  it('returns rounds in order, one round on request, and the second round with a dropout', async () => {
    for (let r = 1; r <= 3; r++) await store.commitRound(commitFor({ runId: 'r', round: r }));
    expect((await store.getRoundMetrics('r')).map((m) => m.round)).toEqual([1, 2, 3]);
    const [two] = await store.getRoundMetrics('r', 2);
    expect(two?.participation[1]).toEqual({ hospitalId: 'H2', stage: 'train', status: 'dropped', reason: 'disconnect', bytesUp: 10, bytesDown: 20 });
    expect(two?.metrics).toEqual(metricsFor(2));
    expect(await store.getRoundMetrics('r', 9)).toEqual([]);
    expect(await store.getRoundMetrics('other')).toEqual([]);
  });

  it('rejects a replayed round and changes nothing', async () => {
    await store.commitRound(commitFor({ runId: 'r', round: 1 }));
    await store.commitRound(commitFor({ runId: 'r', round: 2 }));
    const before = snapshot(file);
    const replay = commitFor({ runId: 'r', round: 2 });
    replay.metrics.val_loss = 0.0001;
    await rejectsWith(store.commitRound(replay), 'replay', /round 2 of run "r" is already committed/);
    await rejectsWith(store.commitRound(commitFor({ runId: 'r', round: 1 })), 'replay');
    expect(snapshot(file)).toEqual(before);
  });

  it.each<{ name: string; change: (c: RoundCommit) => void; code: string; message: RegExp }>([
    { name: 'a skipped round', change: (c) => (c.round = 4), code: 'out_of_order', message: /next round is 3/ },
    { name: 'a wrong sha256', change: (c) => (c.model.sha256 = '0'.repeat(64)), code: 'invalid', message: /does not match the weights/ },
    { name: 'a malformed sha256', change: (c) => (c.model.sha256 = 'ABC'), code: 'invalid', message: /64 lower-case hex/ },
    { name: 'a string metric', change: (c) => ((c.metrics as Record<string, unknown>).auc_roc = '0.9'), code: 'invalid', message: /metrics.auc_roc must be a number/ },
    { name: 'best without val_loss', change: (c) => delete c.metrics.val_loss, code: 'invalid', message: /finite val_loss/ },
    { name: 'negative bytes', change: (c) => ((c.participation[0] as { bytesUp: number }).bytesUp = -1), code: 'invalid', message: /participation\[0\].bytesUp/ },
    { name: 'a bad participation status', change: (c) => ((c.participation[0] as { status: string }).status = 'gone'), code: 'invalid', message: /status must be one of/ },
    { name: 'an unknown run', change: (c) => (c.runId = 'nope'), code: 'not_found', message: /"nope" does not exist/ },
    { name: 'a bad timestamp', change: (c) => (c.startedAt = 'yesterday'), code: 'invalid', message: /startedAt/ },
  ])('rejects $name and writes nothing', async ({ change, code, message }) => {
    await store.commitRound(commitFor({ runId: 'r', round: 1 }));
    await store.commitRound(commitFor({ runId: 'r', round: 2 }));
    const before = snapshot(file);
    const c = commitFor({ runId: 'r', round: 3 });
    change(c);
    await rejectsWith(store.commitRound(c), code, message);
    expect(snapshot(file)).toEqual(before);
  });

  it('rolls back a commit that fails after every row is written, as a whole', async () => {
    await store.commitRound(commitFor({ runId: 'r', round: 1 }));
    await store.close();
    store = openSqliteStore(file, {
      testHooks: {
        inCommitTransaction: (round) => {
          if (round === 2) throw new Error('disk on fire');
        },
      },
    });
    const before = snapshot(file);
    await expect(store.commitRound(commitFor({ runId: 'r', round: 2, checkpointEvery: 1 }))).rejects.toThrow('disk on fire');
    expect(snapshot(file)).toEqual(before);
    expect((await store.resumePoint('r'))?.round).toBe(1);
  });

  it('refuses rounds past totalRounds and on a run that is not running', async () => {
    await store.setRunStatus('r', 'completed');
    await store.createRun('short', {}, 1);
    await store.commitRound(commitFor({ runId: 'short', round: 1 }));
    await rejectsWith(store.commitRound(commitFor({ runId: 'short', round: 2 })), 'out_of_order', /past the run's 1 rounds/);
    await rejectsWith(store.commitRound(commitFor({ runId: 'r', round: 1 })), 'conflict', /is completed/);
  });

  it('keeps only the latest, checkpoint and best weights; model_versions keeps every sha', async () => {
    // Best at rounds 1, 2, 3 then never again: best stays 3. Checkpoints every 5 rounds.
    for (let r = 1; r <= 12; r++) await store.commitRound(commitFor({ runId: 'r', round: r, best: r <= 3 }));
    const versions = await store.listModelVersions('r');
    expect(versions.map((v) => v.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    for (const v of versions) {
      expect(v.sha256).toBe(sha256Hex(weightsFor(v.round, 64)));
      expect(v.sizeBytes).toBe(256);
    }
    expect(versions.filter((v) => v.stored).map((v) => v.round)).toEqual([3, 5, 10, 12]);
    expect(versions.filter((v) => v.checkpoint).map((v) => v.round)).toEqual([5, 10]);
    expect(versions.filter((v) => v.best).map((v) => v.round)).toEqual([1, 2, 3]);

    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT round FROM model_blobs ORDER BY round').pluck().all()).toEqual([3, 5, 10, 12]);
    db.close();

    const run = await store.getRun('r');
    expect(run).toMatchObject({ lastCompletedRound: 12, bestRound: 3, bestValLoss: metricsFor(3).val_loss });
    const cases = [
      { which: 'latest', round: 12 },
      { which: 'best', round: 3 },
      { which: 5, round: 5 },
      { which: 10, round: 10 },
    ] as const;
    for (const { which, round } of cases) {
      const m = await store.getModel('r', which);
      expect(m?.round).toBe(round);
      expect(m?.bytes).toEqual(weightsFor(round, 64));
      expect(m?.sha256).toBe(sha256Hex(weightsFor(round, 64)));
    }
    expect(await store.getModel('r', 4)).toBeUndefined(); // version kept, weights dropped
    expect(await store.getModel('r', 99)).toBeUndefined();
    expect(await store.getModel('nope', 'latest')).toBeUndefined();

    // A new best moves the best pointer and drops the old best's weights (3 is no checkpoint).
    await store.commitRound(commitFor({ runId: 'r', round: 13, best: true }));
    expect((await store.listModelVersions('r')).filter((v) => v.stored).map((v) => v.round)).toEqual([5, 10, 13]);
    expect((await store.getModel('r', 'best'))?.round).toBe(13);
  });

  it('gives the resume point of the last completed round', async () => {
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

    // Survives a reopen.
    await store.close();
    store = openSqliteStore(file);
    expect((await store.resumePoint('r'))?.round).toBe(7);
    expect((await store.activeRun())?.lastCompletedRound).toBe(7);
  });

  it('saves feature statistics, replaceable until round 1 commits', async () => {
    expect(await store.getFeatureStats('r')).toBeUndefined();
    await store.saveFeatureStats('r', { vitals: { mean: [1, 2], std: [0.5, 0.25] } });
    await store.saveFeatureStats('r', { vitals: { mean: [3], std: [1] } });
    expect(await store.getFeatureStats('r')).toEqual({ vitals: { mean: [3], std: [1] } });
    await store.commitRound(commitFor({ runId: 'r', round: 1 }));
    await rejectsWith(store.saveFeatureStats('r', {}), 'conflict', /fixed/);
    await rejectsWith(store.saveFeatureStats('nope', {}), 'not_found');
    expect(await store.getFeatureStats('r')).toEqual({ vitals: { mean: [3], std: [1] } });
  });
});

describe('SqliteStore: audit log', () => {
  it('appends and lists newest first, with limit and since', async () => {
    let t = Date.UTC(2025, 5, 1);
    await store.close();
    store = openSqliteStore(file, { now: () => new Date((t += 60_000)) });
    const a = await store.appendAudit({ actor: 'hospital:H1', action: 'join', outcome: 'ok' });
    const b = await store.appendAudit({ actor: '10.0.0.9', action: 'auth', outcome: 'rejected', detail: { reason: 'unknown token' } });
    const c = await store.appendAudit({ actor: 'admin', action: 'train.start', outcome: 'ok', runId: 'r', detail: { rounds: 5 } });
    expect(a).toEqual({ id: 1, at: '2025-06-01T00:01:00.000Z', actor: 'hospital:H1', action: 'join', outcome: 'ok' });
    expect(await store.listAudit({ limit: 10 })).toEqual([c, b, a]);
    expect(await store.listAudit({ limit: 2 })).toEqual([c, b]);
    expect(await store.listAudit({ limit: 10, since: '2025-06-01T00:02:00Z' })).toEqual([c, b]);
    expect(b.detail).toEqual({ reason: 'unknown token' });
    await rejectsWith(store.listAudit({ limit: 0 }), 'invalid');
    await rejectsWith(store.appendAudit({ actor: 'x', action: 'y', outcome: 'maybe' as 'ok' }), 'invalid');
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET outcome = 'ok' WHERE id = 1`, /append-only: UPDATE refused/],
    ['DELETE one', 'DELETE FROM audit_log WHERE id = 1', /append-only: DELETE refused/],
    ['DELETE all', 'DELETE FROM audit_log', /append-only: DELETE refused/],
    ['INSERT OR REPLACE over a row', `INSERT OR REPLACE INTO audit_log (id, at, actor, action, outcome) VALUES (1, 'x', 'x', 'x', 'ok')`, /append-only: DELETE refused/],
  ])('the table itself refuses %s', async (_name, sql, error) => {
    await store.appendAudit({ actor: '10.0.0.9', action: 'auth', outcome: 'rejected', detail: { reason: 'bad token' } });
    const before = await store.listAudit({ limit: 10 });
    // A separate connection, as any other process would use: the triggers live in the file.
    const db = new Database(file);
    db.pragma('recursive_triggers = ON');
    try {
      expect(() => db.prepare(sql).run()).toThrow(error);
    } finally {
      db.close();
    }
    expect(await store.listAudit({ limit: 10 })).toEqual(before);
  });
});

describe('SqliteStore: tokens', () => {
  it('creates, verifies, lists and revokes tokens', async () => {
    const h1 = await store.createToken({ role: 'hospital', hospitalId: 'H1' });
    const admin = await store.createToken({ role: 'admin' });
    expect(h1.token).toMatch(/^fct_[A-Za-z0-9_-]{43}$/); // 'fct_' + 256 bits, base64url
    expect(h1.token).not.toBe(admin.token);
    expect(await store.verifyToken(h1.token)).toEqual({ role: 'hospital', hospitalId: 'H1' });
    expect(await store.verifyToken(admin.token)).toEqual({ role: 'admin' });
    const wrong = [`${h1.token}x`, h1.token.slice(1), h1.token.toUpperCase(), '', 'x'.repeat(5000)];
    for (const t of wrong) expect(await store.verifyToken(t)).toBeUndefined();

    const list = await store.listTokens();
    expect(list.map(({ tokenId, role, hospitalId }) => ({ tokenId, role, hospitalId }))).toEqual([
      { tokenId: h1.tokenId, role: 'hospital', hospitalId: 'H1' },
      { tokenId: admin.tokenId, role: 'admin', hospitalId: undefined },
    ]);
    expect(JSON.stringify(list)).not.toContain(h1.token);

    expect(await store.revokeToken(h1.tokenId)).toBe(true);
    expect(await store.revokeToken(h1.tokenId)).toBe(false);
    expect(await store.revokeToken('tok_nope')).toBe(false);
    expect(await store.verifyToken(h1.token)).toBeUndefined();
    expect(await store.verifyToken(admin.token)).toEqual({ role: 'admin' });
    expect((await store.listTokens())[0]?.revokedAt).toBeDefined();
  });

  it.each([
    [{ role: 'hospital', hospitalId: '' }],
    [{ role: 'hospital', hospitalId: 'H 1' }],
    [{ role: 'hospital' }],
    [{ role: 'admin', hospitalId: 'H1' }],
    [{ role: 'root' }],
  ])('refuses token spec %j', async (spec) => {
    await rejectsWith(store.createToken(spec as Parameters<SqliteStore['createToken']>[0]), 'invalid');
  });

  it('stores only the SHA-256: the plaintext never appears in the database files', async () => {
    const tokens: CreatedToken[] = [];
    for (let i = 0; i < 5; i++) tokens.push(await store.createToken({ role: 'hospital', hospitalId: `H${i}` }));
    tokens.push(await store.createToken({ role: 'admin' }));
    const scan = (): Buffer[] => readdirSync(dir).map((f) => readFileSync(join(dir, f)));
    const check = (files: Buffer[]): void => {
      expect(files.length).toBeGreaterThan(0);
      for (const { token } of tokens) {
        for (const bytes of files) {
          expect(bytes.includes(Buffer.from(token, 'utf8'))).toBe(false);
          expect(bytes.includes(Buffer.from(token.slice(4), 'base64url'))).toBe(false);
        }
      }
    };
    check(scan()); // while open: main file + WAL
    const db = new Database(file, { readonly: true });
    const hashes = db.prepare('SELECT token_sha256 FROM tokens ORDER BY rowid').pluck().all();
    db.close();
    expect(hashes).toEqual(tokens.map((t) => sha256Hex(Buffer.from(t.token, 'utf8'))));
    await store.close();
    check(scan()); // after the WAL is checkpointed into the main file
    store = openSqliteStore(file);
    for (const { token } of tokens) expect(await store.verifyToken(token)).toBeDefined();
  });
});
