/**
 * The coordinator's durable state, behind a host-agnostic interface: runs, rounds, every seed spec
 * 6.1 metric by name, client participation, model versions and retained weights, the federated
 * feature statistics, an append-only audit log and hospital/admin credentials.
 *
 * Every method returns a Promise, so that a network-backed store (DynamoDB + S3 on AWS) implements
 * the same interface as the default SQLite one (apps/server/src/store), which does its work
 * synchronously and resolves at once. Failures are rejected promises carrying a StoreError whose
 * `code` callers can branch on.
 *
 * Types only plus one error class: no host imports (this file runs in browsers and workers too).
 */
import type { FeatureStats } from '../data/features';
import type { TabularSchema } from '../tabular/schema';

/**
 * What a run's stats slot holds: the risk model's global feature statistics, or a tabular run's
 * schema (run config `task: tabular`). Tell them apart with `isTabularSchema` (../tabular/schema.ts);
 * every reader must, since a tabular run's model is an MLP, not the risk classifier.
 */
export type RunStats = FeatureStats | TabularSchema;

export type RunStatus = 'running' | 'completed' | 'stopped' | 'failed';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'completed', 'stopped', 'failed'];

export interface RunRecord {
  runId: string;
  status: RunStatus;
  /** The run configuration as given to createRun (JSON). */
  config: Record<string, unknown>;
  totalRounds: number;
  /** Highest committed round; 0 when none is. Rounds are committed contiguously from 1. */
  lastCompletedRound: number;
  /** Round whose commit said `best: true` most recently (lowest val_loss so far). */
  bestRound?: number;
  /** That round's `val_loss` metric. */
  bestValLoss?: number;
  /** Why the run stopped or failed, when it did. */
  reason?: string;
  /** ISO-8601 timestamps. */
  createdAt: string;
  updatedAt: string;
}

export type ParticipationStatus = 'ok' | 'dropped' | 'rejected' | 'declined';
export const PARTICIPATION_STATUSES: readonly ParticipationStatus[] = ['ok', 'dropped', 'rejected', 'declined'];

/** One hospital's part in one stage of a round. A hospital has one row per stage it was asked into. */
export interface Participation {
  hospitalId: string;
  /** Round-engine stage name: 'train', 'evaluate', later the secure-aggregation stages. */
  stage: string;
  status: ParticipationStatus;
  /** Why it was dropped, rejected or declined. */
  reason?: string;
  /** Bytes measured on the socket for this hospital in this stage. */
  bytesUp: number;
  bytesDown: number;
}

/** The metric name whose value a `best: true` commit records as the run's best (seed spec 6.1). */
export const BEST_METRIC = 'val_loss';

export interface RoundCommit {
  runId: string;
  round: number;
  /** ISO-8601. */
  startedAt: string;
  completedAt: string;
  /** Every seed spec 6.1 metric by name. NaN (e.g. an undefined AUC) and ±Infinity round-trip. */
  metrics: Record<string, number>;
  /** hospitalId → metric name → value (federated evaluation on each hospital's own test split). */
  perHospital: Record<string, Record<string, number>>;
  participation: Participation[];
  model: {
    /** The aggregated global weights: flat little-endian float32, fixed layer order. */
    bytes: Uint8Array;
    /** Lower-case hex SHA-256 of `bytes`; a store may verify it. */
    sha256: string;
  };
  /** Opaque strategy state (e.g. FedAdam moments) needed to resume exactly; kept for the latest round only. */
  strategyState: Uint8Array;
  /** Keep this round's weights permanently (a checkpoint: every 5 rounds by default). */
  checkpoint: boolean;
  /** This round has a new best `val_loss` (metrics must hold it): keep its weights as the run's best. */
  best: boolean;
}

export interface RoundMetrics {
  round: number;
  metrics: Record<string, number>;
  perHospital: Record<string, Record<string, number>>;
  /** In the order they were committed. */
  participation: Participation[];
  startedAt: string;
  completedAt: string;
}

export interface ResumePoint {
  /** The last completed round; the run continues at round + 1. */
  round: number;
  weights: Uint8Array;
  sha256: string;
  strategyState: Uint8Array;
}

export interface StoredModel {
  round: number;
  sha256: string;
  bytes: Uint8Array;
}

export interface ModelVersion {
  round: number;
  sha256: string;
  sizeBytes: number;
  checkpoint: boolean;
  /** This round was a new best when it was committed. */
  best: boolean;
  /** Whether its weights are still kept (latest, checkpoint or the run's current best). */
  stored: boolean;
  createdAt: string;
}

/** Which weights to fetch: the last completed round's, the run's best, or a round's (if kept). */
export type ModelSelector = 'latest' | 'best' | number;

export type AuditOutcome = 'ok' | 'rejected' | 'error';
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['ok', 'rejected', 'error'];

export interface AuditEntryInput {
  /** Who: 'hospital:H1', 'admin', 'system', an IP for an unauthenticated attempt, … */
  actor: string;
  /** What: 'join', 'auth', 'train.start', 'update', … */
  action: string;
  outcome: AuditOutcome;
  /** Why and any context (JSON). Never put a secret here. */
  detail?: Record<string, unknown>;
  /** The run it concerns, if any. */
  runId?: string;
}

export interface AuditEntry extends AuditEntryInput {
  /** Monotonic: larger ids were appended later. */
  id: number;
  /** ISO-8601. */
  at: string;
}

export interface AuditQuery {
  /** At most this many entries, newest first. */
  limit: number;
  /** Only entries at or after this ISO-8601 instant. */
  since?: string;
}

/**
 * admin: everything. observer: reads what the dashboard shows (every hospital's metrics), never
 * credentials, never run control. hospital: its own metrics and the global ones, nothing of another
 * hospital's.
 */
export type TokenRole = 'hospital' | 'admin' | 'observer';
export const TOKEN_ROLES: readonly TokenRole[] = ['hospital', 'admin', 'observer'];

/** Who a verified token speaks for. A hospital token always names its hospital; the others none. */
export type TokenPrincipal = { role: 'admin' | 'observer'; hospitalId?: undefined } | { role: 'hospital'; hospitalId: string };

/** `expiresAt` (ISO-8601): after it the token verifies as unknown; without it the token lasts until revoked. */
export type TokenSpec = ({ role: 'admin' | 'observer'; hospitalId?: undefined } | { role: 'hospital'; hospitalId: string }) & { expiresAt?: string };

export interface CreatedToken {
  /** Public handle for listing and revoking; not a secret. */
  tokenId: string;
  /** The secret (256 random bits, base64url). Shown once; the store keeps only its SHA-256. */
  token: string;
}

export interface TokenInfo {
  tokenId: string;
  role: TokenRole;
  hospitalId?: string;
  createdAt: string;
  revokedAt?: string;
  expiresAt?: string;
}

/** What pruneAudit keeps: at most the newest `maxRows` entries, none older than `maxAgeMs`. */
export interface AuditRetention {
  maxRows: number;
  maxAgeMs?: number;
}

export type StoreErrorCode =
  /** The run (or other named thing) does not exist. */
  | 'not_found'
  /** A round already committed was committed again. Nothing was written. */
  | 'replay'
  /** A round was committed out of order (not lastCompletedRound + 1) or past totalRounds. */
  | 'out_of_order'
  /** The operation contradicts the current state (run not running, another run running, …). */
  | 'conflict'
  /** The input is malformed (bad sha256, empty id, best without val_loss, …). */
  | 'invalid'
  /** The store was closed. */
  | 'closed';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}

export interface Store {
  /** Starts a run in status 'running'. Rejects ('conflict') while another run is running or the id is taken. */
  createRun(runId: string, config: Record<string, unknown>, totalRounds: number): Promise<RunRecord>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(): Promise<RunRecord[]>;
  /** The run in status 'running', if any (at most one is). A restarted coordinator resumes it. */
  activeRun(): Promise<RunRecord | undefined>;
  /** Only 'running' → 'completed' | 'stopped' | 'failed'; anything else rejects ('conflict'). */
  setRunStatus(runId: string, status: RunStatus, reason?: string): Promise<RunRecord>;

  /**
   * Atomically records a completed round: the round, every metric, per-hospital metrics,
   * participation, a model version (round, sha256, size), the weights (kept while latest, forever
   * if checkpoint, while best if best), the strategy state for resume, and the run's
   * lastCompletedRound / best. Either all of it is written or none. The run must be running and
   * `round` must be lastCompletedRound + 1 ≤ totalRounds; a round already committed rejects with
   * 'replay' and changes nothing.
   */
  commitRound(c: RoundCommit): Promise<RunRecord>;
  /** Committed rounds (only `round` when given), ordered by round. */
  getRoundMetrics(runId: string, round?: number): Promise<RoundMetrics[]>;
  /** The last completed round's weights and strategy state, or undefined before round 1. */
  resumePoint(runId: string): Promise<ResumePoint | undefined>;
  /** Undefined when the run has no such round or its weights were not kept. */
  getModel(runId: string, which: ModelSelector): Promise<StoredModel | undefined>;
  /** Every committed round's version, ordered by round. */
  listModelVersions(runId: string): Promise<ModelVersion[]>;

  /** The run's global normalisation statistics or tabular schema (JSON). Replaceable until round 1 commits, fixed after. */
  saveFeatureStats(runId: string, stats: RunStats): Promise<void>;
  getFeatureStats(runId: string): Promise<RunStats | undefined>;

  /** Append-only: entries can be added, never changed; only pruneAudit removes them, oldest first. */
  appendAudit(entry: AuditEntryInput): Promise<AuditEntry>;
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /**
   * Retention: removes the oldest entries beyond `maxRows` and those older than `maxAgeMs`; the
   * newest `maxRows` younger entries stay exactly as they were, and ids keep growing. Resolves to
   * how many were removed.
   */
  pruneAudit(retention: AuditRetention): Promise<number>;

  /** Creates a credential; the plaintext is returned once and only its SHA-256 is stored. */
  createToken(spec: TokenSpec): Promise<CreatedToken>;
  /** The principal of a valid, unrevoked, unexpired token; undefined otherwise. */
  verifyToken(token: string): Promise<TokenPrincipal | undefined>;
  /**
   * The same by the token's SHA-256 (lower-case hex), the form it is stored in: what a live
   * connection keeps to re-check its credential (revocation) without keeping the token itself.
   */
  verifyTokenHash(sha256Hex: string): Promise<TokenPrincipal | undefined>;
  /** Revokes by tokenId; false when no such unrevoked token exists. */
  revokeToken(tokenId: string): Promise<boolean>;
  /** Metadata only, never secrets or hashes. Oldest first. */
  listTokens(): Promise<TokenInfo[]>;

  close(): Promise<void>;
}
