import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CreatedToken } from '@fedcare/shared/fl';
import { describeStoreContract, rejectsWith } from './contract';
import { MIGRATIONS, openSqliteStore, SCHEMA_VERSION, type SqliteStore } from './sqlite';
import { hashToken } from './tokens';
import { commitFor, sha256Hex } from './testing/rounds';

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

describeStoreContract('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcare-store-'));
  const file = join(dir, 'fedcare.db');
  let store = openSqliteStore(file);
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async reopen() {
      await store.close();
      store = openSqliteStore(file);
      return store;
    },
    snapshot: async () => snapshot(file),
    // The main file and the WAL, while open.
    rawBytes: async () => readdirSync(dir).map((f) => readFileSync(join(dir, f))),
  };
});

describe('SqliteStore: the file', () => {
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

  it('uses WAL, synchronous=FULL, foreign keys and records the schema version', () => {
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const versions = db.prepare('SELECT version, name FROM schema_migrations').all();
      expect(versions).toEqual([
        { version: 1, name: 'initial schema' },
        { version: 2, name: 'observer tokens, token expiry, audit retention' },
      ]);
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
    await rejectsWith(mem.getRun('m'), 'closed', /the store :memory: is closed/);
  });

  it('takes its timestamps from the now option', async () => {
    let t = Date.UTC(2025, 0, 1);
    await store.close();
    store = openSqliteStore(file, { now: () => new Date((t += 1000)) });
    expect(await store.createRun('r1', {}, 5)).toMatchObject({ createdAt: '2025-01-01T00:00:01.000Z', updatedAt: '2025-01-01T00:00:01.000Z' });
    expect(await store.setRunStatus('r1', 'stopped')).toMatchObject({ updatedAt: '2025-01-01T00:00:02.000Z' });
    expect((await store.appendAudit({ actor: 'a', action: 'b', outcome: 'ok' })).at).toBe('2025-01-01T00:00:03.000Z');
    expect(await store.listAudit({ limit: 10, since: '2025-01-01T00:00:03Z' })).toHaveLength(1);
    expect(await store.listAudit({ limit: 10, since: '2025-01-01T00:00:03.001Z' })).toHaveLength(0);
  });

  it('rolls back a commit that fails after every row is written, as a whole', async () => {
    await store.createRun('r', {}, 20);
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

  it('holds the weights of exactly the kept rounds in model_blobs', async () => {
    await store.createRun('r', {}, 20);
    for (let r = 1; r <= 12; r++) await store.commitRound(commitFor({ runId: 'r', round: r, best: r <= 3 }));
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare('SELECT round FROM model_blobs ORDER BY round').pluck().all()).toEqual([3, 5, 10, 12]);
      expect(db.prepare('SELECT count(*) FROM model_versions').pluck().get()).toBe(12);
    } finally {
      db.close();
    }
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET outcome = 'ok' WHERE id = 1`, /append-only: UPDATE refused/],
    ['DELETE one', 'DELETE FROM audit_log WHERE id = 1', /append-only: DELETE refused/],
    ['DELETE all', 'DELETE FROM audit_log', /append-only: DELETE refused/],
    ['INSERT OR REPLACE over a row', `INSERT OR REPLACE INTO audit_log (id, at, actor, action, outcome) VALUES (1, 'x', 'x', 'x', 'ok')`, /append-only: DELETE refused/],
  ])('the audit table itself refuses %s', async (_name, sql, error) => {
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

  it('creates the database, its WAL and shared-memory files 0600 from the start (never world-readable)', async () => {
    await store.appendAudit({ actor: 'a', action: 'x', outcome: 'ok' });
    const files = readdirSync(dir);
    expect(files).toEqual(expect.arrayContaining(['fedcare.db', 'fedcare.db-wal', 'fedcare.db-shm']));
    for (const f of files) expect({ f, mode: statSync(join(dir, f)).mode & 0o777 }).toEqual({ f, mode: 0o600 });
  });

  it('retention deletes below the horizon only: any other DELETE is still refused', async () => {
    for (let i = 0; i < 5; i++) await store.appendAudit({ actor: `a${i}`, action: 'x', outcome: 'ok' });
    expect(await store.pruneAudit({ maxRows: 3 })).toBe(2);
    const db = new Database(file);
    try {
      expect(() => db.prepare('DELETE FROM audit_log WHERE id = 3').run()).toThrow(/append-only: DELETE refused/);
    } finally {
      db.close();
    }
    expect((await store.listAudit({ limit: 10 })).map((e) => e.id)).toEqual([5, 4, 3]);
  });

  it('migrates a version-1 file: tokens kept (no expiry), the observer role allowed', async () => {
    await store.close();
    const old = join(dir, 'v1.db');
    const db = new Database(old);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    db.exec(MIGRATIONS[0]?.sql ?? '');
    db.prepare(`INSERT INTO schema_migrations VALUES (1, 'initial schema', '2026-01-01T00:00:00.000Z')`).run();
    const token = 'fct_' + 'a'.repeat(43);
    db.prepare(`INSERT INTO tokens VALUES ('tok_000000000001', ?, 'hospital', 'H1', '2026-01-01T00:00:00.000Z', NULL)`).run(hashToken(token));
    db.close();
    store = openSqliteStore(old);
    expect(store.schemaVersion()).toBe(2);
    expect(await store.verifyToken(token)).toEqual({ role: 'hospital', hospitalId: 'H1' });
    const observer = await store.createToken({ role: 'observer' });
    expect(await store.verifyToken(observer.token)).toEqual({ role: 'observer' });
  });

  it('keeps token hashes in token_sha256 and no plaintext in the file after the WAL is checkpointed', async () => {
    const tokens: CreatedToken[] = [];
    for (let i = 0; i < 5; i++) tokens.push(await store.createToken({ role: 'hospital', hospitalId: `H${i}` }));
    tokens.push(await store.createToken({ role: 'admin' }));
    const db = new Database(file, { readonly: true });
    const hashes = db.prepare('SELECT token_sha256 FROM tokens ORDER BY rowid').pluck().all();
    db.close();
    expect(hashes).toEqual(tokens.map((t) => sha256Hex(Buffer.from(t.token, 'utf8'))));
    await store.close(); // checkpoints the WAL into the main file
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
    expect(files.length).toBeGreaterThan(0);
    for (const { token } of tokens) {
      for (const bytes of files) {
        expect(bytes.includes(Buffer.from(token, 'utf8'))).toBe(false);
        expect(bytes.includes(Buffer.from(token.slice(4), 'base64url'))).toBe(false);
      }
    }
    store = openSqliteStore(file);
    for (const { token } of tokens) expect(await store.verifyToken(token)).toBeDefined();
  });
});
