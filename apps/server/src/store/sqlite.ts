/**
 * The default Store: one SQLite file via better-sqlite3.
 *
 * - WAL journal: readers (REST, dashboard) never block the round engine's writes, and a commit is
 *   a single append to the WAL, so a process killed at any instant (kill -9) leaves every
 *   transaction either wholly in the database or wholly absent; the next open recovers the WAL.
 * - synchronous=FULL: each commit fsyncs the WAL. NORMAL would already survive a process crash;
 *   FULL also keeps the last committed round through an OS crash or power loss, for the cost of one
 *   fsync per commit, which is nothing next to a federated round (seconds to minutes).
 * - foreign keys on; recursive_triggers on, so that INSERT OR REPLACE cannot delete audit rows
 *   behind the append-only triggers' back; busy_timeout so that a second process (`fedcare token
 *   create` while the server runs) waits for the write lock instead of failing.
 * - Versioned migrations recorded in schema_migrations; a file from a newer version is refused.
 * - Every statement is prepared once; every multi-row write is one IMMEDIATE transaction.
 *
 * The methods do their work synchronously and return resolved (or rejected) promises, as the
 * host-agnostic Store interface asks.
 */
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import {
  StoreError,
  type AuditEntry,
  type AuditEntryInput,
  type AuditOutcome,
  type AuditQuery,
  type AuditRetention,
  type CreatedToken,
  type ModelSelector,
  type ModelVersion,
  type Participation,
  type ParticipationStatus,
  type ResumePoint,
  type RoundCommit,
  type RoundMetrics,
  type RunRecord,
  type RunStats,
  type RunStatus,
  type Store,
  type StoredModel,
  type TokenInfo,
  type TokenPrincipal,
  type TokenRole,
  type TokenSpec,
} from '@fedcare/shared/fl';
import { generateToken, generateTokenId, hashToken } from './tokens';
import {
  plausibleToken,
  selectedRound,
  validateAuditEntry,
  validateAuditQuery,
  validateCommit,
  validateNewRun,
  validateRoundFilter,
  validateRunStatus,
  validateTokenSpec,
  validateAuditRetention,
  unexpired,
  jsonText,
} from './validate';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append-only list: never edit a released migration, add the next one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE runs (
        run_id TEXT PRIMARY KEY CHECK (length(run_id) BETWEEN 1 AND 200),
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'stopped', 'failed')),
        config_json TEXT NOT NULL,
        total_rounds INTEGER NOT NULL CHECK (total_rounds >= 1),
        last_completed_round INTEGER NOT NULL DEFAULT 0 CHECK (last_completed_round >= 0),
        best_round INTEGER,
        best_val_loss REAL,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      -- At most one run is running: the one a restarted coordinator resumes.
      CREATE UNIQUE INDEX runs_one_running ON runs (status) WHERE status = 'running';

      CREATE TABLE rounds (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        round INTEGER NOT NULL CHECK (round >= 1),
        started_at TEXT NOT NULL,
        completed_at TEXT NOT NULL,
        PRIMARY KEY (run_id, round)
      ) WITHOUT ROWID;

      -- One row per seed spec 6.1 metric name. value NULL encodes NaN (SQLite has no NaN).
      CREATE TABLE round_metrics (
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, round, name),
        FOREIGN KEY (run_id, round) REFERENCES rounds (run_id, round)
      ) WITHOUT ROWID;

      CREATE TABLE hospital_metrics (
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        hospital_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, round, hospital_id, name),
        FOREIGN KEY (run_id, round) REFERENCES rounds (run_id, round)
      ) WITHOUT ROWID;

      CREATE TABLE participation (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        hospital_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'dropped', 'rejected', 'declined')),
        reason TEXT,
        bytes_up INTEGER NOT NULL CHECK (bytes_up >= 0),
        bytes_down INTEGER NOT NULL CHECK (bytes_down >= 0),
        FOREIGN KEY (run_id, round) REFERENCES rounds (run_id, round)
      );
      CREATE INDEX participation_by_round ON participation (run_id, round, id);

      -- Every committed round's model, kept forever (the weights themselves may be dropped).
      CREATE TABLE model_versions (
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        checkpoint INTEGER NOT NULL CHECK (checkpoint IN (0, 1)),
        best INTEGER NOT NULL CHECK (best IN (0, 1)),
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, round),
        FOREIGN KEY (run_id, round) REFERENCES rounds (run_id, round)
      ) WITHOUT ROWID;

      -- Weights kept: the latest round (resume), checkpoint rounds, the run's best.
      CREATE TABLE model_blobs (
        run_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        weights BLOB NOT NULL,
        PRIMARY KEY (run_id, round),
        FOREIGN KEY (run_id, round) REFERENCES model_versions (run_id, round)
      );

      -- Strategy state of the last completed round, for an exact resume.
      CREATE TABLE resume_state (
        run_id TEXT PRIMARY KEY REFERENCES runs (run_id),
        round INTEGER NOT NULL,
        strategy_state BLOB NOT NULL,
        FOREIGN KEY (run_id, round) REFERENCES rounds (run_id, round)
      );

      CREATE TABLE feature_stats (
        run_id TEXT PRIMARY KEY REFERENCES runs (run_id),
        stats_json TEXT NOT NULL,
        saved_at TEXT NOT NULL
      );

      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'rejected', 'error')),
        run_id TEXT,
        detail_json TEXT
      );
      CREATE INDEX audit_log_by_time ON audit_log (at);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;

      -- Only the SHA-256 of a token is ever stored.
      CREATE TABLE tokens (
        token_id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE CHECK (length(token_sha256) = 64),
        role TEXT NOT NULL CHECK (role IN ('hospital', 'admin')),
        hospital_id TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        CHECK ((role = 'hospital') = (hospital_id IS NOT NULL))
      );
    `,
  },
  {
    version: 2,
    name: 'observer tokens, token expiry, audit retention',
    sql: `
      -- SQLite cannot change a CHECK: the tokens table is rebuilt with the observer role and expires_at.
      CREATE TABLE tokens_v2 (
        token_id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE CHECK (length(token_sha256) = 64),
        role TEXT NOT NULL CHECK (role IN ('hospital', 'admin', 'observer')),
        hospital_id TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        expires_at TEXT,
        CHECK ((role = 'hospital') = (hospital_id IS NOT NULL))
      );
      INSERT INTO tokens_v2 (token_id, token_sha256, role, hospital_id, created_at, revoked_at)
        SELECT token_id, token_sha256, role, hospital_id, created_at, revoked_at FROM tokens ORDER BY rowid;
      DROP TABLE tokens;
      ALTER TABLE tokens_v2 RENAME TO tokens;

      -- Retention: rows at or below the horizon may be deleted (pruneAudit raises it, oldest first,
      -- in the same transaction); every other DELETE is still refused.
      CREATE TABLE audit_prune_horizon (id INTEGER PRIMARY KEY CHECK (id = 1), horizon INTEGER NOT NULL);
      INSERT INTO audit_prune_horizon (id, horizon) VALUES (1, 0);
      DROP TRIGGER audit_log_no_delete;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN OLD.id > (SELECT horizon FROM audit_prune_horizon WHERE id = 1)
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

export interface SqliteStoreOptions {
  /** Clock for timestamps (tests). */
  now?: () => Date;
  /**
   * Fault injection for crash tests: called inside commitRound's transaction after every row is
   * written and before COMMIT.
   */
  testHooks?: { inCommitTransaction?: (round: number) => void };
}

interface RunRow {
  run_id: string;
  status: RunStatus;
  config_json: string;
  total_rounds: number;
  last_completed_round: number;
  best_round: number | null;
  best_val_loss: number | null;
  reason: string | null;
  created_at: string;
  updated_at: string;
}
interface RoundRow {
  round: number;
  started_at: string;
  completed_at: string;
}
interface MetricRow {
  round: number;
  name: string;
  value: number | null;
}
interface HospitalMetricRow extends MetricRow {
  hospital_id: string;
}
interface ParticipationRow {
  round: number;
  hospital_id: string;
  stage: string;
  status: ParticipationStatus;
  reason: string | null;
  bytes_up: number;
  bytes_down: number;
}
interface VersionRow {
  round: number;
  sha256: string;
  size_bytes: number;
  checkpoint: number;
  best: number;
  created_at: string;
  stored: number;
}
interface BlobRow {
  round: number;
  sha256: string;
  weights: Buffer;
}
interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  outcome: AuditOutcome;
  run_id: string | null;
  detail_json: string | null;
}
interface TokenRow {
  token_id: string;
  role: TokenRole;
  hospital_id: string | null;
  created_at: string;
  revoked_at: string | null;
  expires_at: string | null;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
/** A fresh, offset-0 copy (so callers can view it as a Float32Array). */
function toBytes(buf: Buffer): Uint8Array {
  return new Uint8Array(buf);
}
function encodeValue(v: number): number | null {
  return Number.isNaN(v) ? null : v;
}
function decodeValue(v: number | null): number {
  return v === null ? Number.NaN : v;
}

export class SqliteStore implements Store {
  readonly file: string;
  private readonly db: Db;
  private readonly now: () => Date;
  private readonly hooks: NonNullable<SqliteStoreOptions['testHooks']>;
  private readonly s: ReturnType<typeof prepare>;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.file = file;
    this.now = options.now ?? (() => new Date());
    this.hooks = options.testHooks ?? {};
    // Created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the database's mode):
    // it holds patient-derived metrics and the model; never world-readable, not even for a moment.
    if (file !== ':memory:' && file !== '') closeSync(openSync(file, 'a', 0o600));
    this.db = new Database(file);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('recursive_triggers = ON');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db, () => this.iso());
      this.s = prepare(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /** The schema version of the open file. */
  schemaVersion(): number {
    return currentVersion(this.db);
  }

  private iso(): string {
    return this.now().toISOString();
  }

  /** Runs `fn` synchronously and turns its outcome into a promise (StoreError 'closed' once closed). */
  private call<T>(fn: () => T): Promise<T> {
    try {
      if (!this.db.open) throw new StoreError('closed', `the store ${this.file} is closed`);
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private runRow(runId: string): RunRow | undefined {
    return this.s.getRun.get(runId);
  }

  private requireRun(runId: string): RunRow {
    const row = this.runRow(runId);
    if (row === undefined) throw new StoreError('not_found', `run ${JSON.stringify(runId)} does not exist`);
    return row;
  }

  // ---- runs ----------------------------------------------------------------------------------

  createRun(runId: string, config: Record<string, unknown>, totalRounds: number): Promise<RunRecord> {
    return this.call(() => {
      const configJson = validateNewRun(runId, config, totalRounds);
      return this.db
        .transaction(() => {
          if (this.runRow(runId) !== undefined) throw new StoreError('conflict', `run ${JSON.stringify(runId)} already exists`);
          const active = this.s.activeRun.get();
          if (active !== undefined) {
            throw new StoreError('conflict', `run ${JSON.stringify(active.run_id)} is still running; stop it before starting ${JSON.stringify(runId)}`);
          }
          const now = this.iso();
          this.s.insertRun.run({ runId, configJson, totalRounds, now });
          return toRunRecord(this.requireRun(runId));
        })
        .immediate();
    });
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.call(() => {
      const row = this.runRow(runId);
      return row === undefined ? undefined : toRunRecord(row);
    });
  }

  listRuns(): Promise<RunRecord[]> {
    return this.call(() => this.s.listRuns.all().map(toRunRecord));
  }

  activeRun(): Promise<RunRecord | undefined> {
    return this.call(() => {
      const row = this.s.activeRun.get();
      return row === undefined ? undefined : toRunRecord(row);
    });
  }

  setRunStatus(runId: string, status: RunStatus, reason?: string): Promise<RunRecord> {
    return this.call(() => {
      validateRunStatus(status, reason);
      return this.db
        .transaction(() => {
          const row = this.requireRun(runId);
          if (row.status !== 'running' || status === 'running') {
            throw new StoreError('conflict', `run ${JSON.stringify(runId)} is ${row.status}; only a running run can become completed, stopped or failed (asked: ${status})`);
          }
          this.s.setStatus.run({ runId, status, reason: reason ?? null, now: this.iso() });
          return toRunRecord(this.requireRun(runId));
        })
        .immediate();
    });
  }

  // ---- rounds --------------------------------------------------------------------------------

  commitRound(c: RoundCommit): Promise<RunRecord> {
    return this.call(() => {
      const valLoss = validateCommit(c);

      return this.db
        .transaction(() => {
          const run = this.requireRun(c.runId);
          const key = { runId: c.runId, round: c.round };
          if (c.round <= run.last_completed_round || this.s.getRound.get(key) !== undefined) {
            throw new StoreError('replay', `round ${c.round} of run ${JSON.stringify(c.runId)} is already committed; a round is committed once`);
          }
          if (run.status !== 'running') throw new StoreError('conflict', `run ${JSON.stringify(c.runId)} is ${run.status}; rounds are committed only to a running run`);
          if (c.round !== run.last_completed_round + 1) {
            throw new StoreError('out_of_order', `round ${c.round} of run ${JSON.stringify(c.runId)} is out of order: the next round is ${run.last_completed_round + 1}`);
          }
          if (c.round > run.total_rounds) {
            throw new StoreError('out_of_order', `round ${c.round} is past the run's ${run.total_rounds} rounds`);
          }
          const now = this.iso();
          this.s.insertRound.run({ ...key, startedAt: c.startedAt, completedAt: c.completedAt });
          for (const [name, value] of Object.entries(c.metrics)) this.s.insertMetric.run({ ...key, name, value: encodeValue(value) });
          for (const [hospitalId, m] of Object.entries(c.perHospital)) {
            for (const [name, value] of Object.entries(m)) this.s.insertHospitalMetric.run({ ...key, hospitalId, name, value: encodeValue(value) });
          }
          for (const p of c.participation) {
            this.s.insertParticipation.run({
              ...key,
              hospitalId: p.hospitalId,
              stage: p.stage,
              status: p.status,
              reason: p.reason ?? null,
              bytesUp: p.bytesUp,
              bytesDown: p.bytesDown,
            });
          }
          this.s.insertVersion.run({
            ...key,
            sha256: c.model.sha256,
            sizeBytes: c.model.bytes.byteLength,
            checkpoint: c.checkpoint ? 1 : 0,
            best: c.best ? 1 : 0,
            now,
          });
          this.s.insertBlob.run({ ...key, weights: toBuffer(c.model.bytes) });
          this.s.upsertResume.run({ ...key, state: toBuffer(c.strategyState) });
          const bestRound = c.best ? c.round : run.best_round;
          this.s.finishRound.run({
            ...key,
            bestRound,
            bestValLoss: c.best ? (valLoss as number) : run.best_val_loss,
            now,
          });
          // Drop weights no longer needed: not this round, not a checkpoint, not the best.
          this.s.pruneBlobs.run({ ...key, bestRound: bestRound ?? 0 });
          this.hooks.inCommitTransaction?.(c.round);
          return toRunRecord(this.requireRun(c.runId));
        })
        .immediate();
    });
  }

  getRoundMetrics(runId: string, round?: number): Promise<RoundMetrics[]> {
    return this.call(() => {
      validateRoundFilter(round);
      return this.db.transaction(() => {
        const from = round ?? 1;
        const to = round ?? Number.MAX_SAFE_INTEGER;
        const q = { runId, from, to };
        const byRound = new Map<number, RoundMetrics>();
        for (const r of this.s.roundsIn.all(q)) {
          byRound.set(r.round, { round: r.round, metrics: {}, perHospital: {}, participation: [], startedAt: r.started_at, completedAt: r.completed_at });
        }
        for (const m of this.s.metricsIn.all(q)) {
          const r = byRound.get(m.round);
          if (r) r.metrics[m.name] = decodeValue(m.value);
        }
        for (const m of this.s.hospitalMetricsIn.all(q)) {
          const r = byRound.get(m.round);
          if (r) (r.perHospital[m.hospital_id] ??= {})[m.name] = decodeValue(m.value);
        }
        for (const p of this.s.participationIn.all(q)) {
          const r = byRound.get(p.round);
          if (!r) continue;
          const out: Participation = { hospitalId: p.hospital_id, stage: p.stage, status: p.status, bytesUp: p.bytes_up, bytesDown: p.bytes_down };
          if (p.reason !== null) out.reason = p.reason;
          r.participation.push(out);
        }
        return [...byRound.values()];
      })();
    });
  }

  resumePoint(runId: string): Promise<ResumePoint | undefined> {
    return this.call(() =>
      this.db.transaction(() => {
        const run = this.requireRun(runId);
        if (run.last_completed_round === 0) return undefined;
        const key = { runId, round: run.last_completed_round };
        const blob = this.s.getBlob.get(key);
        const state = this.s.getResume.get(runId);
        if (blob === undefined || state === undefined || state.round !== run.last_completed_round) {
          throw new Error(`store ${this.file} is inconsistent: run ${runId} round ${run.last_completed_round} has no weights or strategy state`);
        }
        return { round: blob.round, weights: toBytes(blob.weights), sha256: blob.sha256, strategyState: toBytes(state.strategy_state) };
      })(),
    );
  }

  getModel(runId: string, which: ModelSelector): Promise<StoredModel | undefined> {
    return this.call(() =>
      this.db.transaction(() => {
        const run = this.runRow(runId);
        if (run === undefined) return undefined;
        const round = selectedRound(which, run.last_completed_round, run.best_round ?? undefined);
        if (round === undefined) return undefined;
        const blob = this.s.getBlob.get({ runId, round });
        return blob === undefined ? undefined : { round: blob.round, sha256: blob.sha256, bytes: toBytes(blob.weights) };
      })(),
    );
  }

  listModelVersions(runId: string): Promise<ModelVersion[]> {
    return this.call(() =>
      this.s.listVersions.all(runId).map((v) => ({
        round: v.round,
        sha256: v.sha256,
        sizeBytes: v.size_bytes,
        checkpoint: v.checkpoint === 1,
        best: v.best === 1,
        stored: v.stored === 1,
        createdAt: v.created_at,
      })),
    );
  }

  // ---- feature statistics --------------------------------------------------------------------

  saveFeatureStats(runId: string, stats: unknown): Promise<void> {
    return this.call(() => {
      const json = jsonText('feature stats', stats);
      this.db
        .transaction(() => {
          const run = this.requireRun(runId);
          if (run.last_completed_round > 0) {
            throw new StoreError('conflict', `run ${JSON.stringify(runId)} has completed rounds; its feature statistics are fixed`);
          }
          this.s.upsertStats.run({ runId, json, now: this.iso() });
        })
        .immediate();
    });
  }

  getFeatureStats(runId: string): Promise<RunStats | undefined> {
    return this.call(() => {
      const row = this.s.getStats.get(runId);
      // What saveFeatureStats was given, as it was given (the store keeps the JSON, not its kind).
      return row === undefined ? undefined : (JSON.parse(row.stats_json) as RunStats);
    });
  }

  // ---- audit ---------------------------------------------------------------------------------

  appendAudit(entry: AuditEntryInput): Promise<AuditEntry> {
    return this.call(() => {
      const detailJson = validateAuditEntry(entry);
      const at = this.iso();
      const info = this.s.insertAudit.run({
        at,
        actor: entry.actor,
        action: entry.action,
        outcome: entry.outcome,
        runId: entry.runId ?? null,
        detailJson,
      });
      const out: AuditEntry = { id: Number(info.lastInsertRowid), at, actor: entry.actor, action: entry.action, outcome: entry.outcome };
      if (entry.runId !== undefined) out.runId = entry.runId;
      if (entry.detail !== undefined) out.detail = JSON.parse(detailJson as string) as Record<string, unknown>;
      return out;
    });
  }

  listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.call(() => {
      const { limit, sinceIso } = validateAuditQuery(query);
      return this.s.listAudit.all({ since: sinceIso, limit }).map((r) => {
        const out: AuditEntry = { id: r.id, at: r.at, actor: r.actor, action: r.action, outcome: r.outcome };
        if (r.run_id !== null) out.runId = r.run_id;
        if (r.detail_json !== null) out.detail = JSON.parse(r.detail_json) as Record<string, unknown>;
        return out;
      });
    });
  }

  pruneAudit(retention: AuditRetention): Promise<number> {
    return this.call(() => {
      const { maxRows, maxAgeMs } = validateAuditRetention(retention);
      return this.db
        .transaction(() => {
          const byCount = (this.s.auditMaxId.get()?.id ?? 0) - maxRows;
          const cutoff = maxAgeMs === undefined ? '' : new Date(this.now().getTime() - maxAgeMs).toISOString();
          const byAge = cutoff === '' ? 0 : (this.s.auditLastBefore.get(cutoff)?.id ?? 0);
          const horizon = Math.max(byCount, byAge, 0);
          if (horizon === 0) return 0;
          this.s.setAuditHorizon.run(horizon);
          return this.s.pruneAudit.run(horizon).changes;
        })
        .immediate();
    });
  }

  // ---- tokens --------------------------------------------------------------------------------

  createToken(spec: TokenSpec): Promise<CreatedToken> {
    return this.call(() => {
      validateTokenSpec(spec);
      const token = generateToken();
      const tokenId = generateTokenId();
      const expiresAt = spec.expiresAt === undefined ? null : new Date(spec.expiresAt).toISOString();
      this.s.insertToken.run({ tokenId, hash: hashToken(token), role: spec.role, hospitalId: spec.hospitalId ?? null, now: this.iso(), expiresAt });
      return { tokenId, token };
    });
  }

  verifyToken(token: string): Promise<TokenPrincipal | undefined> {
    return plausibleToken(token) ? this.verifyTokenHash(hashToken(token)) : this.call(() => undefined);
  }

  verifyTokenHash(sha256Hex: string): Promise<TokenPrincipal | undefined> {
    return this.call(() => {
      if (!/^[0-9a-f]{64}$/.test(sha256Hex)) return undefined;
      const row = this.s.findToken.get(sha256Hex);
      if (row === undefined || !unexpired(row.expires_at, this.now())) return undefined;
      if (row.role === 'admin' || row.role === 'observer') return { role: row.role };
      if (row.hospital_id === null) return undefined;
      return { role: 'hospital', hospitalId: row.hospital_id };
    });
  }

  revokeToken(tokenId: string): Promise<boolean> {
    return this.call(() => this.s.revokeToken.run({ tokenId, now: this.iso() }).changes > 0);
  }

  listTokens(): Promise<TokenInfo[]> {
    return this.call(() =>
      this.s.listTokens.all().map((r) => {
        const out: TokenInfo = { tokenId: r.token_id, role: r.role, createdAt: r.created_at };
        if (r.hospital_id !== null) out.hospitalId = r.hospital_id;
        if (r.revoked_at !== null) out.revokedAt = r.revoked_at;
        if (r.expires_at !== null) out.expiresAt = r.expires_at;
        return out;
      }),
    );
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}

function toRunRecord(r: RunRow): RunRecord {
  const out: RunRecord = {
    runId: r.run_id,
    status: r.status,
    config: JSON.parse(r.config_json) as Record<string, unknown>,
    totalRounds: r.total_rounds,
    lastCompletedRound: r.last_completed_round,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  if (r.best_round !== null) out.bestRound = r.best_round;
  if (r.best_val_loss !== null) out.bestValLoss = r.best_val_loss;
  if (r.reason !== null) out.reason = r.reason;
  return out;
}

function currentVersion(db: Db): number {
  const row = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations').get();
  return row?.v ?? 0;
}

function migrate(db: Db, now: () => string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  db.transaction(() => {
    const version = currentVersion(db);
    if (version > SCHEMA_VERSION) {
      throw new Error(`the database has schema version ${version}, newer than this fedcare's ${SCHEMA_VERSION}; upgrade fedcare`);
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of MIGRATIONS) {
      if (m.version <= version) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, now());
    }
  }).immediate();
}

type Key = { runId: string; round: number };
type Range = { runId: string; from: number; to: number };

function prepare(db: Db) {
  const p = <B extends unknown[] | object, R = unknown>(sql: string): Statement<B, R> => db.prepare<B, R>(sql);
  return {
    getRun: p<[string], RunRow>('SELECT * FROM runs WHERE run_id = ?'),
    activeRun: p<[], RunRow>(`SELECT * FROM runs WHERE status = 'running'`),
    listRuns: p<[], RunRow>('SELECT * FROM runs ORDER BY created_at DESC, rowid DESC'),
    insertRun: p<[{ runId: string; configJson: string; totalRounds: number; now: string }]>(
      `INSERT INTO runs (run_id, status, config_json, total_rounds, created_at, updated_at)
       VALUES (@runId, 'running', @configJson, @totalRounds, @now, @now)`,
    ),
    setStatus: p<[{ runId: string; status: RunStatus; reason: string | null; now: string }]>(
      'UPDATE runs SET status = @status, reason = @reason, updated_at = @now WHERE run_id = @runId',
    ),
    getRound: p<[Key], { round: number }>('SELECT round FROM rounds WHERE run_id = @runId AND round = @round'),
    insertRound: p<[Key & { startedAt: string; completedAt: string }]>(
      'INSERT INTO rounds (run_id, round, started_at, completed_at) VALUES (@runId, @round, @startedAt, @completedAt)',
    ),
    insertMetric: p<[Key & { name: string; value: number | null }]>(
      'INSERT INTO round_metrics (run_id, round, name, value) VALUES (@runId, @round, @name, @value)',
    ),
    insertHospitalMetric: p<[Key & { hospitalId: string; name: string; value: number | null }]>(
      'INSERT INTO hospital_metrics (run_id, round, hospital_id, name, value) VALUES (@runId, @round, @hospitalId, @name, @value)',
    ),
    insertParticipation: p<[Key & { hospitalId: string; stage: string; status: ParticipationStatus; reason: string | null; bytesUp: number; bytesDown: number }]>(
      `INSERT INTO participation (run_id, round, hospital_id, stage, status, reason, bytes_up, bytes_down)
       VALUES (@runId, @round, @hospitalId, @stage, @status, @reason, @bytesUp, @bytesDown)`,
    ),
    insertVersion: p<[Key & { sha256: string; sizeBytes: number; checkpoint: number; best: number; now: string }]>(
      `INSERT INTO model_versions (run_id, round, sha256, size_bytes, checkpoint, best, created_at)
       VALUES (@runId, @round, @sha256, @sizeBytes, @checkpoint, @best, @now)`,
    ),
    insertBlob: p<[Key & { weights: Buffer }]>('INSERT INTO model_blobs (run_id, round, weights) VALUES (@runId, @round, @weights)'),
    upsertResume: p<[Key & { state: Buffer }]>(
      `INSERT INTO resume_state (run_id, round, strategy_state) VALUES (@runId, @round, @state)
       ON CONFLICT (run_id) DO UPDATE SET round = excluded.round, strategy_state = excluded.strategy_state`,
    ),
    finishRound: p<[Key & { bestRound: number | null; bestValLoss: number | null; now: string }]>(
      `UPDATE runs SET last_completed_round = @round, best_round = @bestRound, best_val_loss = @bestValLoss, updated_at = @now
       WHERE run_id = @runId`,
    ),
    pruneBlobs: p<[Key & { bestRound: number }]>(
      `DELETE FROM model_blobs WHERE run_id = @runId AND round <> @round AND round <> @bestRound
         AND round IN (SELECT round FROM model_versions WHERE run_id = @runId AND checkpoint = 0)`,
    ),
    roundsIn: p<[Range], RoundRow>(
      'SELECT round, started_at, completed_at FROM rounds WHERE run_id = @runId AND round BETWEEN @from AND @to ORDER BY round',
    ),
    metricsIn: p<[Range], MetricRow>(
      'SELECT round, name, value FROM round_metrics WHERE run_id = @runId AND round BETWEEN @from AND @to ORDER BY round, name',
    ),
    hospitalMetricsIn: p<[Range], HospitalMetricRow>(
      `SELECT round, hospital_id, name, value FROM hospital_metrics WHERE run_id = @runId AND round BETWEEN @from AND @to
       ORDER BY round, hospital_id, name`,
    ),
    participationIn: p<[Range], ParticipationRow>(
      `SELECT round, hospital_id, stage, status, reason, bytes_up, bytes_down FROM participation
       WHERE run_id = @runId AND round BETWEEN @from AND @to ORDER BY round, id`,
    ),
    getBlob: p<[Key], BlobRow>(
      `SELECT b.round, v.sha256, b.weights FROM model_blobs b JOIN model_versions v USING (run_id, round)
       WHERE b.run_id = @runId AND b.round = @round`,
    ),
    getResume: p<[string], { round: number; strategy_state: Buffer }>('SELECT round, strategy_state FROM resume_state WHERE run_id = ?'),
    listVersions: p<[string], VersionRow>(
      `SELECT v.round, v.sha256, v.size_bytes, v.checkpoint, v.best, v.created_at,
              EXISTS (SELECT 1 FROM model_blobs b WHERE b.run_id = v.run_id AND b.round = v.round) AS stored
       FROM model_versions v WHERE v.run_id = ? ORDER BY v.round`,
    ),
    upsertStats: p<[{ runId: string; json: string; now: string }]>(
      `INSERT INTO feature_stats (run_id, stats_json, saved_at) VALUES (@runId, @json, @now)
       ON CONFLICT (run_id) DO UPDATE SET stats_json = excluded.stats_json, saved_at = excluded.saved_at`,
    ),
    getStats: p<[string], { stats_json: string }>('SELECT stats_json FROM feature_stats WHERE run_id = ?'),
    insertAudit: p<[{ at: string; actor: string; action: string; outcome: AuditOutcome; runId: string | null; detailJson: string | null }]>(
      `INSERT INTO audit_log (at, actor, action, outcome, run_id, detail_json) VALUES (@at, @actor, @action, @outcome, @runId, @detailJson)`,
    ),
    listAudit: p<[{ since: string; limit: number }], AuditRow>(
      'SELECT * FROM audit_log WHERE at >= @since ORDER BY id DESC LIMIT @limit',
    ),
    auditMaxId: p<[], { id: number }>('SELECT max(id) AS id FROM audit_log'),
    /** The newest entry older than the cutoff (ids and times grow together). */
    auditLastBefore: p<[string], { id: number }>('SELECT max(id) AS id FROM audit_log WHERE at < ?'),
    setAuditHorizon: p<[number]>('UPDATE audit_prune_horizon SET horizon = max(horizon, ?) WHERE id = 1'),
    pruneAudit: p<[number]>('DELETE FROM audit_log WHERE id <= ?'),
    insertToken: p<[{ tokenId: string; hash: string; role: TokenRole; hospitalId: string | null; now: string; expiresAt: string | null }]>(
      `INSERT INTO tokens (token_id, token_sha256, role, hospital_id, created_at, expires_at) VALUES (@tokenId, @hash, @role, @hospitalId, @now, @expiresAt)`,
    ),
    findToken: p<[string], { role: TokenRole; hospital_id: string | null; expires_at: string | null }>(
      'SELECT role, hospital_id, expires_at FROM tokens WHERE token_sha256 = ? AND revoked_at IS NULL',
    ),
    revokeToken: p<[{ tokenId: string; now: string }]>('UPDATE tokens SET revoked_at = @now WHERE token_id = @tokenId AND revoked_at IS NULL'),
    listTokens: p<[], TokenRow>('SELECT token_id, role, hospital_id, created_at, revoked_at, expires_at FROM tokens ORDER BY created_at, rowid'),
  };
}

/** Opens (creating and migrating if needed) a SQLite store; ':memory:' gives a private in-memory one. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(file, options);
}
