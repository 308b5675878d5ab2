/**
 * The round engine. A run is: a `preprocess` stage (hospitals send feature sums, the coordinator
 * returns global statistics), then rounds; a round is a list of stages — `train` then `evaluate`
 * (secure aggregation will insert its own) — each with a timeout and a minimum number of live
 * clients. A hospital that drops out of a stage is out for the rest of the round; the round completes
 * when enough remain and otherwise fails cleanly, to be retried or to stop the run (policy). Every
 * completed round is committed to the Store atomically, so a restarted coordinator resumes from the
 * last completed round. The strategy decides who trains and how results combine; this file only
 * orchestrates.
 */
import { FEATURE_SUMS_LENGTH, finalizeFeatureStats, mergeFeatureSums, unflattenFeatureSums, type FeatureStats, type FeatureSums } from '../data/features';
import { nonFiniteStat, refuseFeatureSums } from '../data/feature-bounds';
import { DEFAULT_FRACTION_BITS } from '../secagg/fixed-point';
import { sha256Hex, weightsFromBytes, weightsToBytes } from '../model/weights';
import { modelOptionsOf } from '../model/classifier';
import { ProtocolError } from '../protocol/errors';
import type { Instruction, RunConfig, StageName, StageResult } from '../protocol/messages';
import { quantizationOf, SecAggProtocolError, SecAggServer, secAggConfig, type SecAggResult, type SecAggStage } from '../secagg/protocol';
import { sumErrorBound } from '../secagg/quantize';
import { ciphertextCount, decodeSum, heConfig, heConfigSchema, meanErrorBound, refuseSlots, serverContext, weightDigits, type HeServer } from '../he/aggregate';
import { compactSum, seedOf } from '../he/compact';
import { heKeysReplySchema, packChunks, unpackChunks, type HeStage } from '../he/messages';
import { pickTemperature } from '../train/calibration';
import { poolMultiTaskMetrics } from '../train/multitask';
import { Rng } from '../util/random';
import { mlpConfigFor, mlpInitialWeights } from '../tabular/mlp';
import { finalizeSchema, isTabularSchema, mergeShapes, refuseSummary, summaryLength, type TabularSchema, type TabularShape } from '../tabular/schema';
import type { Grid, StageOutcome, StageRequest } from './grid';
import { decodeStrategyState, encodeStrategyState } from './state-codec';
import type { Participation, RunStats, Store } from './store';
import { NotEnoughClientsError, type EvaluateResult, type FitResult, type Strategy } from './strategy';
import { boundUpdateNorms, median, refuseEvaluateMetrics, refuseSecureMean, WeightBounds } from './influence';
import { StragglerPolicy, stageStragglers, type AdaptiveDeadline } from './stragglers';

export interface Logger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

const silent: Logger = { info() {}, warn() {}, error() {} };

/** Seed spec 6.1 metric names every round reports. */
export const ROUND_METRIC_NAMES = [
  'train_loss',
  'train_accuracy',
  'val_loss',
  'val_accuracy',
  'test_loss',
  'test_accuracy',
  'auc_roc',
  'auc_pr',
  'f1_score',
  'precision',
  'recall',
  'accuracy_high_risk',
  'accuracy_medium_risk',
  'accuracy_low_risk',
  'num_participating_clients',
  'aggregation_time_seconds',
  'communication_bytes',
  'round_duration_seconds',
  'privacy_epsilon',
  'privacy_delta',
  'noise_multiplier',
  'performance_variance',
  'min_hospital_accuracy',
  'max_hospital_accuracy',
] as const;

export interface RoundReport {
  runId: string;
  round: number;
  metrics: Record<string, number>;
  perHospital: Record<string, Record<string, number>>;
  participation: Participation[];
  /** Bytes per hospital over the whole round. */
  bytes: Record<string, { up: number; down: number }>;
  /** Size of the global model's weights on the wire (float32); the round engine always sets it. */
  modelBytes?: number;
}

export interface StageProgress {
  runId: string;
  round: number;
  stage: StageName;
  phase: 'start' | 'end';
  targets: string[];
  dropped: string[];
}

export interface FederationEvents {
  onStage?(p: StageProgress): void;
  onRound?(r: RoundReport): void;
  onStats?(stats: RunStats): void;
}

export interface FederationOptions {
  runId: string;
  config: RunConfig;
  strategy: Strategy;
  grid: Grid;
  store: Store;
  /** Fresh global weights, used unless the store has a resume point for the run. */
  initialWeights: Float32Array;
  signal?: AbortSignal;
  log?: Logger;
  events?: FederationEvents;
  /** Clock (ms) for durations; injectable for tests. */
  now?: () => number;
}

export interface FederationSummary {
  runId: string;
  /** 'interrupted': the coordinator shut down (`SHUTDOWN`); the run stays running in the store and resumes at the next start. */
  status: 'completed' | 'stopped' | 'failed' | 'interrupted';
  reason?: string;
  roundsCompleted: number;
  weights: Float32Array;
  /** The run's feature statistics or, for a tabular run, its schema; undefined when it ended before preprocessing did. */
  stats: RunStats | undefined;
}

/** A stage ended with too few live clients. */
export class StageFailedError extends Error {
  constructor(
    readonly stage: StageName,
    readonly round: number,
    readonly got: number,
    readonly needed: number,
    /** Why, when it is not just a count (e.g. secure aggregation had to abort). */
    readonly detail?: string,
  ) {
    super(detail ? `round ${round}: stage ${stage} failed: ${detail}` : `round ${round}: stage ${stage} ended with ${got} live client(s), ${needed} needed`);
    this.name = 'StageFailedError';
  }
}

/**
 * The abort reason of a coordinator shutting down (a deploy's SIGTERM, Ctrl-C): unlike an
 * administrator's stop, the run is not ended — it stays `running` in the store, the round in
 * progress is dropped like a crash's would be, and the next start resumes from the last committed
 * round. Hospitals are not told the run ended (they reconnect and carry on).
 */
export const SHUTDOWN = 'coordinator shutting down';

class Aborted extends Error {}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new Aborted('stopped');
}

function hasNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i] as number)) return i;
  return -1;
}

/** Weighted mean of one metric across results that have it. */
function weightedMetric(results: { weight: number; metrics: Record<string, number> }[], name: string): number {
  let s = 0;
  let w = 0;
  for (const r of results) {
    const v = r.metrics[name];
    if (v === undefined || !Number.isFinite(v)) continue;
    s += v * r.weight;
    w += r.weight;
  }
  return w > 0 ? s / w : Number.NaN;
}

export async function runFederation(o: FederationOptions): Promise<FederationSummary> {
  const log = o.log ?? silent;
  const now = o.now ?? (() => Date.now());
  const { config: cfg, strategy, grid, store, runId } = o;
  const timeoutMs = cfg.stage_timeout_s * 1000;
  const rng = new Rng(`fl/sampling/${runId}/${cfg.seed}`);
  const random = () => rng.next();

  // Resume or start fresh.
  let global = o.initialWeights;
  let startRound = 1;
  const resume = await store.resumePoint(runId);
  if (resume) {
    global = weightsFromBytes(resume.weights);
    strategy.importState(decodeStrategyState(resume.strategyState));
    startRound = resume.round + 1;
    log.info({ runId, round: resume.round }, 'resuming after the last completed round');
  }
  let expectedBytes = global.length * 4;
  const run = await store.getRun(runId);
  let bestValLoss = run?.bestValLoss ?? Number.POSITIVE_INFINITY;
  let bestRound = run?.bestRound ?? 0;

  let stats = await store.getFeatureStats(runId);
  const guard = runGuard(o, log);
  try {
    if (!stats) {
      try {
        // A tabular run keeps its schema (../tabular/schema.ts) where a risk run keeps its feature statistics.
        stats = cfg.task === 'tabular' ? await tabularPreprocess(o, guard, log, timeoutMs) : await preprocess(o, guard, log, timeoutMs);
      } catch (e) {
        // A preprocessing failure (too few plausible sums, a refused secure total) ends the run cleanly, with its reason.
        if (!(e instanceof StageFailedError)) throw e;
        await store.appendAudit({ actor: 'system', action: 'round.failed', outcome: 'error', runId, detail: { round: 0, stage: e.stage, got: e.got, needed: e.needed, reason: e.message } });
        const reason = `preprocessing failed: ${e.message}`;
        log.warn({ runId, err: e.message }, 'preprocessing failed');
        await store.setRunStatus(runId, 'failed', reason);
        grid.broadcast('fl:run', { run_id: runId, status: 'failed', round: 0, total_rounds: cfg.rounds, reason });
        return { runId, status: 'failed', reason, roundsCompleted: 0, weights: global, stats };
      }
      await store.saveFeatureStats(runId, stats);
    }
    // A stats slot of the other kind (a resumed run's store edited by hand) is refused, never misread.
    if (isTabularSchema(stats) !== (cfg.task === 'tabular')) throw new Error(`run ${runId}: its stored statistics are ${isTabularSchema(stats) ? 'a tabular schema' : "the risk model's"} but its config says task ${cfg.task}`);
    if (isTabularSchema(stats)) {
      const schema = stats;
      // The MLP's width comes from the schema: its initial weights are made now (seeded), unless resumed.
      if (!resume) global = mlpInitialWeights(mlpConfigFor(schema, cfg), cfg.seed);
      expectedBytes = global.length * 4;
      grid.broadcast('fl:stats', { run_id: runId, seq_len: cfg.seq_len, tabular: schema });
    } else grid.broadcast('fl:stats', { run_id: runId, seq_len: cfg.seq_len, stats });
    o.events?.onStats?.(stats);

    let round = startRound;
    let retries = 0;
    const privacy: PrivacyRunState = { epsilon: new Map(), exhausted: new Map() };
    while (round <= cfg.rounds) {
      throwIfAborted(o.signal);
      try {
        const report = await runRound(o, round, global, expectedBytes, { random, timeoutMs, now, privacy, guard });
        global = report.weights;
        // The loss that picks the best model and drives early stopping (selection_aggregate: median by default).
        const valLoss = report.selectionLoss;
        const best = Number.isFinite(valLoss) && valLoss < bestValLoss;
        if (best) {
          bestValLoss = valLoss;
          bestRound = round;
        }
        const bytes = weightsToBytes(global);
        await store.commitRound({
          runId,
          round,
          startedAt: new Date(report.startedAt).toISOString(),
          completedAt: new Date(now()).toISOString(),
          metrics: report.report.metrics,
          perHospital: report.report.perHospital,
          participation: report.report.participation,
          model: { bytes, sha256: await sha256Hex(bytes) },
          strategyState: encodeStrategyState(strategy.exportState()),
          checkpoint: round % cfg.checkpoint_every === 0,
          best,
        });
        o.events?.onRound?.(report.report);
        log.info({ runId, round, metrics: report.report.metrics }, 'round completed');
        await excludeStragglers(o, guard, report);
        retries = 0;
        if (cfg.early_stopping_patience > 0 && round - bestRound >= cfg.early_stopping_patience) {
          const reason = `early stopping: val_loss has not improved for ${cfg.early_stopping_patience} rounds (best ${bestValLoss.toFixed(4)} at round ${bestRound})`;
          await store.setRunStatus(runId, 'completed', reason);
          grid.broadcast('fl:run', { run_id: runId, status: 'completed', round, total_rounds: cfg.rounds, reason });
          return { runId, status: 'completed', reason, roundsCompleted: round, weights: global, stats };
        }
        round++;
      } catch (e) {
        if (!(e instanceof StageFailedError)) throw e;
        await store.appendAudit({ actor: 'system', action: 'round.failed', outcome: 'error', runId, detail: { round, stage: e.stage, got: e.got, needed: e.needed, ...(e.detail ? { reason: e.detail } : {}) } });
        // Hospitals out of privacy budget will not come back: the run is over, not failed.
        const willing = grid.available().filter((h) => !privacy.exhausted.has(h));
        if (cfg.dp && privacy.exhausted.size > 0 && willing.length < cfg.min_fit_clients) {
          const spent = [...privacy.exhausted.keys()].sort().map((h) => `${h} (ε ${(privacy.epsilon.get(h) ?? 0).toFixed(3)})`);
          // (A hospital may stop below the run's target: its own cap can be lower.)
          const reason = `privacy budget spent: ${spent.join(', ')} cannot train another round within their budget (run target ε ${cfg.dp.target_epsilon}); ${willing.length} hospital(s) left, ${cfg.min_fit_clients} needed`;
          log.info({ runId, round, reason }, 'run ends: privacy budgets spent');
          await store.setRunStatus(runId, 'completed', reason);
          grid.broadcast('fl:run', { run_id: runId, status: 'completed', round: round - 1, total_rounds: cfg.rounds, reason });
          return { runId, status: 'completed', reason, roundsCompleted: round - 1, weights: global, stats };
        }
        log.warn({ runId, round, err: e.message }, 'round failed');
        if (cfg.round_failure_policy === 'retry' && retries < cfg.max_round_retries) {
          retries++;
          log.info({ runId, round, retry: retries }, 'retrying round');
          continue;
        }
        const reason = `${e.message}; ${cfg.round_failure_policy === 'retry' ? `gave up after ${retries} retries` : 'policy is stop'}`;
        await store.setRunStatus(runId, 'failed', reason);
        grid.broadcast('fl:run', { run_id: runId, status: 'failed', round, total_rounds: cfg.rounds, reason });
        return { runId, status: 'failed', reason, roundsCompleted: round - 1, weights: global, stats };
      }
    }
    await store.setRunStatus(runId, 'completed');
    grid.broadcast('fl:run', { run_id: runId, status: 'completed', round: cfg.rounds, total_rounds: cfg.rounds });
    return { runId, status: 'completed', roundsCompleted: cfg.rounds, weights: global, stats };
  } catch (e) {
    if ((e instanceof Aborted || o.signal?.aborted) && o.signal?.reason === SHUTDOWN) {
      const current = await store.getRun(runId);
      const done = current?.lastCompletedRound ?? 0;
      log.info({ runId, lastCompletedRound: done }, 'run interrupted by shutdown; it resumes at the next start');
      return { runId, status: 'interrupted', reason: `the coordinator shut down during round ${done + 1}; the run resumes from there at the next start`, roundsCompleted: done, weights: global, stats };
    }
    if (e instanceof Aborted || o.signal?.aborted) {
      const reason = 'stopped by an administrator';
      const current = await store.getRun(runId);
      if (current?.status === 'running') await store.setRunStatus(runId, 'stopped', reason);
      grid.broadcast('fl:run', { run_id: runId, status: 'stopped', round: current?.lastCompletedRound ?? 0, total_rounds: cfg.rounds, reason });
      return { runId, status: 'stopped', reason, roundsCompleted: current?.lastCompletedRound ?? 0, weights: global, stats };
    }
    throw e;
  }
}

/**
 * A run's defences against one hospital's influence (./influence.ts, ./stragglers.ts): weight
 * bounds frozen at sign-in, the straggler policy, the adaptive deadline, and an audit entry naming
 * the hospital for everything refused or bounded.
 */
interface RunGuard {
  bounds: WeightBounds;
  stragglers: StragglerPolicy;
  deadline: AdaptiveDeadline | undefined;
  /** Audits (and logs) what a hospital caused; `hospitalId` undefined: not identifiable (a secure sum). */
  audit(hospitalId: string | undefined, action: string, detail: Record<string, unknown>): Promise<void>;
}

function runGuard(o: FederationOptions, log: Logger): RunGuard {
  const cfg = o.config;
  return {
    bounds: new WeightBounds(cfg.max_samples_per_hospital),
    stragglers: new StragglerPolicy(cfg.straggler_strikes, cfg.straggler_policy === 'exclude'),
    deadline: cfg.straggler_factor > 0 ? { factor: cfg.straggler_factor, minMs: cfg.straggler_min_s * 1000 } : undefined,
    audit: async (hospitalId, action, detail) => {
      log.warn({ runId: o.runId, hospital: hospitalId, ...detail }, action);
      await o.store.appendAudit({ actor: hospitalId ? `hospital:${hospitalId}` : 'system', action, outcome: 'rejected', runId: o.runId, detail });
    },
  };
}

/** Freezes the records each available hospital declared at sign-in (the first declaration of the run counts). */
function declareRecords(o: FederationOptions, guard: RunGuard): void {
  for (const h of o.grid.available()) guard.bounds.declare(h, o.grid.declaredRecords?.(h));
}

/** After a committed round: strikes for its stragglers, and exclusion by policy (audited). */
async function excludeStragglers(o: FederationOptions, guard: RunGuard, out: RoundOutput): Promise<void> {
  const keep = Math.max(o.config.min_available_clients, o.config.min_fit_clients);
  const participants = [...new Set(out.report.participation.map((p) => p.hospitalId))];
  for (const e of guard.stragglers.endRound(participants, out.struck, o.grid.available(), keep)) {
    await guard.audit(e.hospitalId, 'hospital.excluded', { round: out.report.round, reason: `straggled in ${e.strikes} consecutive rounds (straggler_policy exclude)` });
  }
}

/** Hospitals that have taken part in this run (in this process): a round waits briefly for them to rejoin. */
const participants = new WeakMap<FederationOptions, Set<string>>();

async function waitForClients(o: FederationOptions, round: number): Promise<void> {
  const need = o.config.min_available_clients;
  const ok = await o.grid.waitForClients(need, o.config.wait_for_clients_s * 1000, o.signal);
  throwIfAborted(o.signal);
  if (!ok) throw new StageFailedError(round === 0 ? 'preprocess' : 'train', round, o.grid.available().length, need);
  const known = participants.get(o) ?? new Set<string>();
  participants.set(o, known);
  const missing = () => [...known].filter((h) => !o.grid.available().includes(h));
  if (missing().length > 0 && o.config.rejoin_grace_s > 0) {
    // A hospital that dropped out of the last round gets a short grace period to reconnect.
    await o.grid.waitForClients(o.grid.available().length + missing().length, o.config.rejoin_grace_s * 1000, o.signal);
    throwIfAborted(o.signal);
  }
  for (const h of o.grid.available()) known.add(h);
}

/**
 * Round 0: every available hospital's feature sums → global statistics. With secure aggregation
 * (either mode) the sums never go in the clear: the hospitals hold them and the SecAgg+ stages of
 * round 0 deliver only their total, in exact fixed point (secagg/fixed-point.ts). HE mode uses
 * SecAgg+ here too: one small vector needs no key ceremony, and the coordinator learns the same sum.
 */
async function preprocess(o: FederationOptions, guard: RunGuard, log: Logger, timeoutMs: number): Promise<FeatureStats> {
  await waitForClients(o, 0);
  declareRecords(o, guard);
  const targets = o.grid.available();
  const secure = o.config.secure_aggregation !== 'none';
  const min = o.config.min_available_clients;
  o.events?.onStage?.({ runId: o.runId, round: 0, stage: 'preprocess', phase: 'start', targets, dropped: [] });
  // The initial model goes with it, so round 1 names it alone (../protocol/messages.ts: each model once).
  const weights = weightsToBytes(o.initialWeights);
  const model = { weights, weights_sha256: await sha256Hex(weights) };
  const out = await o.grid.request<Extract<StageResult, { stage: 'preprocess' }>>(
    {
      runId: o.runId,
      round: 0,
      stage: 'preprocess',
      targets,
      instruction: () => ({ run_id: o.runId, round: 0, stage: 'preprocess', seq_len: o.config.seq_len, ...(secure ? { secure_aggregation: 'secagg' as const } : {}), ...model }),
      check: async (h, r) => {
        if (secure && r.sums !== undefined) return new ProtocolError('INVALID_PAYLOAD', 'sums: not accepted in the clear with secure aggregation (they go masked in round 0)', 'sums');
        if (!secure && r.sums === undefined) return new ProtocolError('INVALID_PAYLOAD', 'sums: missing', 'sums');
        // One hospital's sums must not set everyone's normalisation: implausible sums are refused by name.
        const refused = r.sums && refuseFeatureSums(r.sums as FeatureSums, guard.bounds.of(h));
        return refused ? new ProtocolError('OUT_OF_BOUNDS', `sums refused: ${refused}`, 'sums') : undefined;
      },
      timeoutMs,
      minResults: min,
      ...(guard.deadline ? { adaptiveDeadline: guard.deadline } : {}),
    },
    o.signal,
  );
  throwIfAborted(o.signal);
  o.events?.onStage?.({ runId: o.runId, round: 0, stage: 'preprocess', phase: 'end', targets, dropped: out.dropped.map((d) => d.hospitalId) });
  const refused = out.dropped.filter((d) => d.reason === 'rejected');
  for (const d of refused) await guard.audit(d.hospitalId, 'preprocess.refused', { round: 0, reason: d.detail ?? d.reason });
  if (out.results.size < min) {
    const who = refused.map((d) => `${d.hospitalId} (${d.detail ?? d.reason})`).join('; ');
    throw new StageFailedError('preprocess', 0, out.results.size, min, who ? `${out.results.size} hospital(s) sent plausible sums, ${min} needed; refused: ${who}` : undefined);
  }
  let hospitals = [...out.results.keys()].sort();
  const total = secure ? await securePreprocessSums(o, guard, hospitals, timeoutMs) : undefined;
  const sums = total ? total.sums : [...out.results.values()].map((r) => r.sums as FeatureSums).reduce((a, b) => mergeFeatureSums(a, b));
  if (total) hospitals = total.survivors;
  const stats = finalizeFeatureStats(sums);
  const bad = nonFiniteStat(stats as unknown as Record<string, unknown>);
  if (bad) throw new StageFailedError('preprocess', 0, hospitals.length, min, `the global statistics from ${hospitals.join(', ')} are not finite (${bad})`);
  log.info({ runId: o.runId, hospitals, records: stats.records, secure }, 'global feature statistics ready');
  return stats;
}

/**
 * Secure preprocessing: the SecAgg+ stages of round 0 deliver the survivors' total only, checked
 * against the survivors' bounds added up; an implausible total cannot be traced to one hospital,
 * so it fails preprocessing naming the survivors.
 */
async function securePreprocessSums(o: FederationOptions, guard: RunGuard, hospitals: readonly string[], timeoutMs: number): Promise<{ sums: FeatureSums; survivors: string[] }> {
  const min = o.config.min_available_clients;
  // Round 0's stages are not a round: their bookkeeping is not committed anywhere.
  const sa = await secureAggregate(o, 0, { clients: hospitals, vectorLength: FEATURE_SUMS_LENGTH, maxWeight: 1, fixedPoint: true, minSurvivors: min, guard }, timeoutMs, roundAccounting());
  const survivors = [...sa.survivors];
  let sums: FeatureSums;
  try {
    sums = unflattenFeatureSums(sa.sum);
  } catch (e) {
    throw new StageFailedError('unmask', 0, survivors.length, min, `the securely aggregated feature sums are not a sum of records: ${(e as Error).message}`);
  }
  const refused = refuseFeatureSums(sums, survivors.reduce((s, h) => s + guard.bounds.of(h), 0));
  if (refused) {
    await guard.audit(undefined, 'preprocess.refused', { round: 0, reason: refused, contributors: survivors });
    throw new StageFailedError('unmask', 0, survivors.length, min, `the securely aggregated feature sums of ${survivors.join(', ')} are implausible (${refused}); one of them sent sums that are not its records`);
  }
  return { sums, survivors };
}

/** Sampling refuses when too few hospitals are there: that is a failed stage, not a crash. */
function sample(f: () => string[], stage: StageName, round: number, needed: number): string[] {
  try {
    return f();
  } catch (e) {
    if (e instanceof NotEnoughClientsError) throw new StageFailedError(stage, round, e.available, needed);
    throw e;
  }
}

/** Differential privacy across a run's rounds: each hospital's last reported ε, and who has spent its budget. */
interface PrivacyRunState {
  epsilon: Map<string, number>;
  /** Hospitals that declined training because of their budget, with their reason; not asked again in this run. */
  exhausted: Map<string, string>;
}

const PRIVACY_BUDGET_PREFIX = 'PRIVACY_BUDGET';

interface RoundOutput {
  weights: Float32Array;
  report: RoundReport;
  startedAt: number;
  /** The validation loss that decides the best model and early stopping (selection_aggregate). */
  selectionLoss: number;
  /** Hospitals that straggled in some stage of the round (./stragglers.ts). */
  struck: Set<string>;
}

/** Per-round bookkeeping the stages share: participation, bytes, who is out. */
interface RoundAccounting {
  record: (stage: string, outcome: StageOutcome, targets: readonly string[]) => void;
  addBytes: (outcome: StageOutcome) => void;
  /** Dropped for the rest of the round. */
  out: Set<string>;
  /** Straggled in some stage (dropped for a timeout, or last and slower than twice the median). */
  struck: Set<string>;
  participation: Participation[];
  bytes: Record<string, { up: number; down: number }>;
}

/** minMs: the straggler floor (straggler_min_s): slower-than-median answers below it are not strikes. */
function roundAccounting(minMs = Number.POSITIVE_INFINITY): RoundAccounting {
  const participation: Participation[] = [];
  const bytes: Record<string, { up: number; down: number }> = {};
  const struck = new Set<string>();
  return {
    participation,
    bytes,
    out: new Set<string>(),
    struck,
    addBytes: (outcome) => {
      for (const [h, b] of outcome.bytes) {
        const cur = (bytes[h] ??= { up: 0, down: 0 });
        cur.up += b.up;
        cur.down += b.down;
      }
    },
    record: (stage, outcome, targets) => {
      for (const h of stageStragglers(outcome, minMs)) struck.add(h);
      const dropped = new Map(outcome.dropped.map((d) => [d.hospitalId, d]));
      for (const h of targets) {
        const d = dropped.get(h);
        const b = outcome.bytes.get(h) ?? { up: 0, down: 0 };
        participation.push({
          hospitalId: h,
          stage,
          status: d ? (d.reason === 'rejected' ? 'rejected' : d.reason === 'declined' ? 'declined' : 'dropped') : 'ok',
          ...(d ? { reason: d.detail ? `${d.reason}: ${d.detail}` : d.reason } : {}),
          bytesUp: b.up,
          bytesDown: b.down,
        });
      }
    },
  };
}

/** What every stage of one round shares. */
interface RoundContext {
  o: FederationOptions;
  round: number;
  /** The run's sampling stream. */
  random: () => number;
  timeoutMs: number;
  now: () => number;
  privacy: PrivacyRunState;
  guard: RunGuard;
  acc: RoundAccounting;
}

/** A round: train, aggregate (in the clear, SecAgg+ or HE), evaluate, then the round's metrics. */
async function runRound(
  o: FederationOptions,
  round: number,
  global: Float32Array,
  expectedBytes: number,
  shared: Pick<RoundContext, 'random' | 'timeoutMs' | 'now' | 'privacy' | 'guard'>,
): Promise<RoundOutput> {
  const startedAt = shared.now();
  await waitForClients(o, round);
  declareRecords(o, shared.guard);
  const ctx: RoundContext = { o, round, ...shared, acc: roundAccounting(o.config.straggler_min_s * 1000) };
  const fitResults = await trainStage(ctx, global, expectedBytes);
  const aggregated = await aggregateStage(ctx, global, fitResults);
  const evalResults = await evaluateStage(ctx, aggregated.weights);
  const { metrics, perHospital } = roundMetrics(ctx, fitResults, evalResults, aggregated, (shared.now() - startedAt) / 1000);
  return {
    weights: aggregated.weights,
    startedAt,
    selectionLoss: selectionLoss(o.config.selection_aggregate, evalResults, metrics.val_loss ?? Number.NaN),
    struck: ctx.acc.struck,
    report: { runId: o.runId, round, metrics, perHospital, participation: ctx.acc.participation, bytes: ctx.acc.bytes, modelBytes: aggregated.weights.length * 4 },
  };
}

/** The median over hospitals of their val_loss ('median'), or the num_examples-weighted one the round reports ('weighted'). */
function selectionLoss(how: RunConfig['selection_aggregate'], evalResults: readonly EvaluateResult[], weighted: number): number {
  if (how === 'weighted') return weighted;
  const losses = evalResults.map((r) => r.metrics.val_loss).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return median(losses);
}

/**
 * Checks one train result before it reaches aggregation: num_samples within the hospital's bound;
 * no update in the clear with secure aggregation, else a whole, finite one.
 */
function trainResultCheck(secure: boolean, expectedBytes: number, bounds: WeightBounds) {
  return async (h: string, r: Extract<StageResult, { stage: 'train' }>): Promise<ProtocolError | undefined> => {
    const over = bounds.refuse(h, 'num_samples', r.num_samples);
    if (over) return new ProtocolError('OUT_OF_BOUNDS', over, 'num_samples');
    if (secure) {
      // An update in the clear would defeat secure aggregation: refuse it rather than look at it.
      if (r.weights !== undefined) return new ProtocolError('INVALID_PAYLOAD', 'weights: not accepted in the clear with secure aggregation (they go masked in masked-input)', 'weights');
      return undefined;
    }
    if (!r.weights || !r.weights_sha256) return new ProtocolError('INVALID_PAYLOAD', 'weights: missing', 'weights');
    if (r.weights.byteLength !== expectedBytes) {
      return new ProtocolError('WRONG_LENGTH', `weights: ${r.weights.byteLength} bytes, expected ${expectedBytes} (${expectedBytes / 4} float32)`, 'weights');
    }
    if ((await sha256Hex(r.weights)) !== r.weights_sha256) return new ProtocolError('CHECKSUM_MISMATCH', 'weights: SHA-256 does not match weights_sha256', 'weights_sha256');
    const bad = hasNonFinite(weightsFromBytes(r.weights));
    if (bad >= 0) return new ProtocolError('NON_FINITE', `weights[${bad}] is not a finite number`, `weights[${bad}]`);
    return undefined;
  };
}

/** The train stage: the strategy's sample trains from the global weights; returns the accepted results. */
async function trainStage({ o, round, random, timeoutMs, privacy, guard, acc }: RoundContext, global: Float32Array, expectedBytes: number): Promise<FitResult[]> {
  const { config: cfg, strategy, grid, runId } = o;
  const secure = cfg.secure_aggregation !== 'none';
  const willing = grid.available().filter((h) => !privacy.exhausted.has(h) && !guard.stragglers.excluded.has(h));
  const targets = sample(() => strategy.sampleFit(willing, random), 'train', round, cfg.min_fit_clients);
  const weights = weightsToBytes(global);
  const weightsSha = await sha256Hex(weights);
  const fitConfig = strategy.configureFit(round, {
    local_epochs: cfg.local_epochs,
    batch_size: cfg.batch_size,
    learning_rate: cfg.learning_rate,
    proximal_mu: 0,
  });
  const config = {
    local_epochs: Number(fitConfig.local_epochs),
    batch_size: Number(fitConfig.batch_size),
    learning_rate: Number(fitConfig.learning_rate),
    proximal_mu: Number(fitConfig.proximal_mu),
    seq_len: cfg.seq_len,
    seed: cfg.seed * 1000 + round,
    ...(cfg.model && cfg.model !== 'standard' ? { model: cfg.model } : {}),
    ...(modelOptionsOf(cfg) ? { model_options: modelOptionsOf(cfg) } : {}),
    ...(cfg.dp ? { dp: cfg.dp } : {}),
    ...(secure ? { secure_aggregation: cfg.secure_aggregation as 'secagg' | 'he' } : {}),
  };
  o.events?.onStage?.({ runId, round, stage: 'train', phase: 'start', targets, dropped: [] });
  const train = await grid.request<Extract<StageResult, { stage: 'train' }>>(
    {
      runId,
      round,
      stage: 'train',
      targets,
      instruction: () => ({ run_id: runId, round, stage: 'train', config, weights, weights_sha256: weightsSha, timeout_s: timeoutMs / 1000 }),
      check: trainResultCheck(secure, expectedBytes, guard.bounds),
      timeoutMs,
      minResults: Math.min(cfg.min_fit_clients, targets.length),
      ...(guard.deadline ? { adaptiveDeadline: guard.deadline } : {}),
    },
    o.signal,
  );
  throwIfAborted(o.signal);
  acc.addBytes(train);
  acc.record('train', train, targets);
  for (const d of train.dropped) {
    acc.out.add(d.hospitalId);
    if (d.reason === 'declined' && d.detail?.startsWith(PRIVACY_BUDGET_PREFIX)) privacy.exhausted.set(d.hospitalId, d.detail);
  }
  for (const [h, r] of train.results) {
    const e = r.metrics.privacy_epsilon;
    if (e !== undefined && Number.isFinite(e)) privacy.epsilon.set(h, e);
  }
  o.events?.onStage?.({ runId, round, stage: 'train', phase: 'end', targets, dropped: train.dropped.map((d) => d.hospitalId) });
  if (train.results.size < cfg.min_fit_clients) throw new StageFailedError('train', round, train.results.size, cfg.min_fit_clients);
  return [...train.results].map(([h, r]) => ({
    hospitalId: h,
    weights: r.weights ? weightsFromBytes(r.weights) : new Float32Array(0),
    numSamples: r.num_samples,
    metrics: r.metrics,
  }));
}

interface Aggregated {
  weights: Float32Array;
  seconds: number;
  /** With secure aggregation: whose updates are in the sum, how many were lost and how many recovered. */
  secure?: { survivors: readonly string[]; dropped: number; recovered: number };
}

/** The new global weights: the strategy's aggregate of the updates, or with SecAgg+ / HE of their weighted mean only. */
async function aggregateStage({ o, round, timeoutMs, now, guard, acc }: RoundContext, global: Float32Array, fitResults: readonly FitResult[]): Promise<Aggregated> {
  const { config: cfg, strategy } = o;
  if (cfg.secure_aggregation === 'none') {
    const aggStart = now();
    // An update far larger than the round's median (a ±3.4e38 one) is scaled down before any strategy sees it.
    const bounded = boundUpdateNorms(global, fitResults, cfg.update_norm_bound);
    for (const c of bounded.clipped) await guard.audit(c.hospitalId, 'update.bounded', { round, norm: c.norm, bound: c.bound, update_norm_bound: cfg.update_norm_bound });
    const { weights } = strategy.aggregateFit(round, global, bounded.results);
    return { weights, seconds: (now() - aggStart) / 1000 };
  }
  const sa =
    cfg.secure_aggregation === 'he'
      ? await heAggregate(o, guard, round, global, fitResults, timeoutMs, acc)
      : await secureAggregate(
          o,
          round,
          { clients: fitResults.map((f) => f.hospitalId), vectorLength: global.length, maxWeight: Math.max(...fitResults.map((f) => f.numSamples)), minSurvivors: cfg.min_fit_clients, guard },
          timeoutMs,
          acc,
        );
  const aggStart = now();
  const mean = new Float32Array(global.length);
  for (let i = 0; i < mean.length; i++) mean[i] = (global[i] as number) + (sa.sum[i] as number) / sa.totalWeight;
  const weights = (strategy.aggregateFromMean as NonNullable<typeof strategy.aggregateFromMean>).call(strategy, round, global, mean);
  return { weights, seconds: (now() - aggStart) / 1000 + sa.serverSeconds, secure: { survivors: sa.survivors, dropped: sa.dropped, recovered: sa.recovered } };
}

/**
 * The evaluate stage: sampled among every connected hospital (min_available_clients counts the
 * federation, not the round), less those dropped earlier in this round.
 */
async function evaluateStage({ o, round, random, timeoutMs, guard, acc }: RoundContext, weights: Float32Array): Promise<EvaluateResult[]> {
  const { config: cfg, strategy, grid, runId } = o;
  const available = grid.available().filter((h) => !guard.stragglers.excluded.has(h));
  const targets = sample(() => strategy.sampleEvaluate(available, random), 'evaluate', round, cfg.min_evaluate_clients).filter((h) => !acc.out.has(h));
  const bytes = weightsToBytes(weights);
  const sha = await sha256Hex(bytes);
  o.events?.onStage?.({ runId, round, stage: 'evaluate', phase: 'start', targets, dropped: [] });
  const evaluation = await grid.request<Extract<StageResult, { stage: 'evaluate' }>>(
    {
      runId,
      round,
      stage: 'evaluate',
      targets,
      instruction: () => ({ run_id: runId, round, stage: 'evaluate', weights: bytes, weights_sha256: sha, timeout_s: timeoutMs / 1000, ...(cfg.model && cfg.model !== 'standard' ? { model: cfg.model } : {}), ...(modelOptionsOf(cfg) ? { model_options: modelOptionsOf(cfg) } : {}) }),
      // num_examples within the hospital's bound, metrics within their ranges: one hospital cannot set the stored AUC.
      check: async (h, r) => {
        const refused = guard.bounds.refuse(h, 'num_examples', r.num_examples) ?? refuseEvaluateMetrics(r.metrics);
        return refused ? new ProtocolError('OUT_OF_BOUNDS', refused, refused.split(':')[0]) : undefined;
      },
      timeoutMs,
      minResults: Math.min(cfg.min_evaluate_clients, targets.length),
      ...(guard.deadline ? { adaptiveDeadline: guard.deadline } : {}),
    },
    o.signal,
  );
  throwIfAborted(o.signal);
  acc.addBytes(evaluation);
  acc.record('evaluate', evaluation, targets);
  o.events?.onStage?.({ runId, round, stage: 'evaluate', phase: 'end', targets, dropped: evaluation.dropped.map((d) => d.hospitalId) });
  if (evaluation.results.size < cfg.min_evaluate_clients) throw new StageFailedError('evaluate', round, evaluation.results.size, cfg.min_evaluate_clients);
  return [...evaluation.results].map(([h, r]) => ({ hospitalId: h, numExamples: r.num_examples, metrics: r.metrics }));
}

/** The round's seed spec 6.1 metrics and each hospital's own figures. */
function roundMetrics(
  { o, round, privacy, acc }: RoundContext,
  fitResults: readonly FitResult[],
  evalResults: readonly EvaluateResult[],
  aggregated: Aggregated,
  durationSeconds: number,
): { metrics: Record<string, number>; perHospital: Record<string, Record<string, number>> } {
  const { config: cfg, strategy } = o;
  const evalMetrics = strategy.aggregateEvaluate(round, [...evalResults]);
  const perHospital: Record<string, Record<string, number>> = {};
  for (const r of evalResults) perHospital[r.hospitalId] = { ...r.metrics, num_examples: r.numExamples };
  for (const r of fitResults) {
    const h = (perHospital[r.hospitalId] ??= {});
    for (const [k, v] of Object.entries(r.metrics)) h[k] = v;
    h.num_samples = r.numSamples;
  }
  // ε per hospital: what each reported after its last training in this run (also for those now out of budget).
  for (const [h, e] of privacy.epsilon) {
    const ph = (perHospital[h] ??= {});
    ph.privacy_epsilon = e;
    if (privacy.exhausted.has(h)) ph.privacy_budget_exhausted = 1;
  }
  const fitWeighted = fitResults.map((r) => ({ weight: r.numSamples, metrics: r.metrics }));
  let communication = 0;
  for (const b of Object.values(acc.bytes)) communication += b.up + b.down;
  for (const [h, b] of Object.entries(acc.bytes)) {
    const ph = (perHospital[h] ??= {});
    ph.communication_bytes_up = b.up;
    ph.communication_bytes_down = b.down;
  }
  const evaluated = (name: string) => evalMetrics[name] ?? Number.NaN;
  const metrics: Record<string, number> = {
    train_loss: weightedMetric(fitWeighted, 'train_loss'),
    train_accuracy: weightedMetric(fitWeighted, 'train_accuracy'),
    val_loss: evaluated('val_loss'),
    val_accuracy: evaluated('val_accuracy'),
    test_loss: evaluated('test_loss'),
    test_accuracy: evaluated('test_accuracy'),
    auc_roc: evaluated('auc_roc'),
    auc_pr: evaluated('auc_pr'),
    f1_score: evaluated('f1_score'),
    precision: evaluated('precision'),
    recall: evaluated('recall'),
    accuracy_high_risk: evaluated('accuracy_high_risk'),
    accuracy_medium_risk: evaluated('accuracy_medium_risk'),
    accuracy_low_risk: evaluated('accuracy_low_risk'),
    num_participating_clients: aggregated.secure ? aggregated.secure.survivors.length : fitResults.length,
    aggregation_time_seconds: aggregated.seconds,
    communication_bytes: communication,
    round_duration_seconds: durationSeconds,
    // Without DP: ε = ∞ (not private), δ = 0, no noise. With DP: the largest ε any hospital has spent.
    privacy_epsilon: cfg.dp ? Math.max(0, ...privacy.epsilon.values()) : Number.POSITIVE_INFINITY,
    privacy_delta: cfg.dp?.delta ?? 0,
    noise_multiplier: cfg.dp?.noise_multiplier ?? 0,
    // 0: none, 1: SecAgg+, 2: HE; dropped = lost during its stages, recovered = (SecAgg+) masks removed via shares.
    secure_aggregation: cfg.secure_aggregation === 'secagg' ? 1 : cfg.secure_aggregation === 'he' ? 2 : 0,
    secagg_dropped: aggregated.secure?.dropped ?? 0,
    secagg_recovered: aggregated.secure?.recovered ?? 0,
    performance_variance: evaluated('performance_variance'),
    min_hospital_accuracy: evaluated('min_hospital_accuracy'),
    max_hospital_accuracy: evaluated('max_hospital_accuracy'),
  };
  // Calibration (../train/calibration.ts): pooled ECE, and the temperature the hospitals' validation NLL sums pick.
  const calibration = pickTemperature(evalResults);
  if (calibration) Object.assign(metrics, { ece: calibration.ece, temperature: calibration.temperature, ece_calibrated: calibration.eceCalibrated });
  // The validation split's AUC-ROC (num_examples-weighted over hospitals), when the hospitals report one: what `fedcare tune` ranks by.
  if (Number.isFinite(evalMetrics.val_auc_roc)) metrics.val_auc_roc = evalMetrics.val_auc_roc as number;
  // Multi-task heads (run config task_weights): readmission AUC-ROC, days MAE / RMSE pooled exactly from the hospitals' counts.
  for (const [k, v] of Object.entries(poolMultiTaskMetrics(evalResults))) if (Number.isFinite(v)) metrics[k] = v;
  return { metrics, perHospital };
}

/**
 * One protocol stage of secure aggregation over the grid, with the round's bookkeeping: stage
 * events, bytes, participation, and every hospital lost in it marked out of the round. Nobody's
 * absence fails the stage here (minResults 0): the protocol decides what it can survive.
 */
async function runStage<R extends StageResult>(
  o: FederationOptions,
  round: number,
  stage: StageName,
  targets: readonly string[],
  instruction: (h: string) => Instruction,
  check: StageRequest<R>['check'],
  timeoutMs: number,
  acc: RoundAccounting,
): Promise<StageOutcome<R>> {
  const { runId, grid } = o;
  o.events?.onStage?.({ runId, round, stage, phase: 'start', targets: [...targets], dropped: [] });
  const deadline = o.config.straggler_factor > 0 ? { adaptiveDeadline: { factor: o.config.straggler_factor, minMs: o.config.straggler_min_s * 1000 } } : {};
  const outcome = await grid.request<R>({ runId, round, stage, targets: [...targets], instruction, ...(check ? { check } : {}), timeoutMs, minResults: 0, ...deadline }, o.signal);
  throwIfAborted(o.signal);
  acc.addBytes(outcome);
  acc.record(stage, outcome, targets);
  for (const d of outcome.dropped) acc.out.add(d.hospitalId);
  o.events?.onStage?.({ runId, round, stage, phase: 'end', targets: [...targets], dropped: outcome.dropped.map((d) => d.hospitalId) });
  return outcome;
}

/** What secureAggregate sums: one vector per client, weights up to maxWeight; fixed point for statistics. */
interface SecureInputs {
  clients: readonly string[];
  vectorLength: number;
  maxWeight: number;
  fixedPoint?: boolean;
  /** Fewer survivors than this fail the stage. */
  minSurvivors: number;
  guard: RunGuard;
}

/**
 * The five SecAgg+ stages over the grid (shared/src/secagg/protocol.ts): the server state machine
 * builds each hospital's request and checks each reply as it arrives (a bad reply drops that
 * hospital, like any rejected result); a hospital lost at any stage is left out or recovered as
 * the protocol allows. Fails the round (StageFailedError) when the protocol must abort.
 */
async function secureAggregate(
  o: FederationOptions,
  round: number,
  inputs: SecureInputs,
  timeoutMs: number,
  acc: RoundAccounting,
): Promise<{ sum: Float64Array; totalWeight: number; survivors: readonly string[]; dropped: number; recovered: number; serverSeconds: number }> {
  const { config: cfg, runId } = o;
  const clients = [...inputs.clients].sort();
  let serverMs = 0;
  const timed = <T>(f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      serverMs += performance.now() - t0;
    }
  };
  let server: SecAggServer;
  try {
    server = new SecAggServer({
      runId,
      round,
      seed: `${runId}/${round}/${cfg.seed}`,
      clients,
      config: secAggConfig({
        clients: clients.length,
        vectorLength: inputs.vectorLength,
        clip: cfg.secagg_clip,
        maxWeight: inputs.maxWeight,
        ...(inputs.fixedPoint ? { fixedPointFractionBits: DEFAULT_FRACTION_BITS } : {}),
        ...(cfg.secagg_neighbours !== undefined ? { neighbours: Math.min(cfg.secagg_neighbours, clients.length - 1) } : {}),
        ...(cfg.secagg_threshold !== undefined ? { threshold: cfg.secagg_threshold } : {}),
      }),
    });
  } catch (e) {
    if (e instanceof SecAggProtocolError) throw new StageFailedError('advertise-keys', round, clients.length, inputs.minSurvivors, e.message);
    throw e;
  }
  const stage = async <S extends SecAggStage>(name: S, requests: () => ReadonlyMap<string, Instruction>, receive: (h: string, r: unknown) => Promise<void>): Promise<void> => {
    let reqs: ReadonlyMap<string, Instruction>;
    try {
      reqs = timed(requests);
    } catch (e) {
      if (e instanceof SecAggProtocolError) throw new StageFailedError(name, round, 0, server.config.threshold, e.message);
      throw e;
    }
    const check = async (h: string, r: unknown) => {
      const t0 = performance.now();
      try {
        await receive(h, r);
        return undefined;
      } catch (e) {
        if (e instanceof SecAggProtocolError) return new ProtocolError('INVALID_PAYLOAD', e.message, 'reply');
        throw e;
      } finally {
        serverMs += performance.now() - t0;
      }
    };
    await runStage<Extract<StageResult, { stage: S }>>(o, round, name, [...reqs.keys()].sort(), (h) => reqs.get(h) as Instruction, check, timeoutMs, acc);
  };
  const advertise = server.advertiseRequest();
  await stage('advertise-keys', () => new Map(clients.map((h) => [h, advertise])), (h, r) => server.receiveAdvertise(h, r));
  await stage('share-keys', () => server.shareKeysRequests(), (h, r) => server.receiveShareKeys(h, r));
  await stage('masked-input', () => server.maskedInputRequests(), (h, r) => server.receiveMaskedInput(h, r));
  await stage('consistency-check', () => server.consistencyCheckRequests(), (h, r) => server.receiveConsistencyCheck(h, r));
  await stage('unmask', () => server.unmaskRequests(), (h, r) => server.receiveUnmask(h, r));
  let res: SecAggResult;
  try {
    const t0 = performance.now();
    res = await server.result();
    serverMs += performance.now() - t0;
  } catch (e) {
    if (e instanceof SecAggProtocolError) throw new StageFailedError('unmask', round, 0, server.config.threshold, e.message);
    throw e;
  }
  if (res.survivors.length < inputs.minSurvivors) throw new StageFailedError('masked-input', round, res.survivors.length, inputs.minSurvivors);
  if (!inputs.fixedPoint) {
    const refused = refuseUnmasked(res, cfg.secagg_clip, sumErrorBound(quantizationOf(server.config), res.survivors.length), inputs.guard.bounds);
    if (refused) {
      // Whose input it was cannot be known from a sum: the round is refused, naming who is in it.
      await inputs.guard.audit(undefined, 'round.refused', { round, stage: 'unmask', reason: refused, contributors: res.survivors });
      throw new StageFailedError('unmask', round, res.survivors.length, inputs.minSurvivors, `the unmasked sum of ${res.survivors.join(', ')} is out of bounds (${refused}); one of them masked an input it may not send`);
    }
  }
  return { sum: res.sum, totalWeight: res.totalWeight, survivors: res.survivors, dropped: res.dropped.length, recovered: res.recovered.length, serverSeconds: serverMs / 1000 };
}

/** Why an unmasked SecAgg+ sum is refused: total weight above the survivors' bounds, or a mean outside ±clip (plus the quantisation error). */
function refuseUnmasked(res: SecAggResult, clip: number, sumError: number, bounds: WeightBounds): string | undefined {
  const most = res.survivors.reduce((s, h) => s + bounds.of(h), 0);
  if (!(res.totalWeight >= res.survivors.length && res.totalWeight <= most)) return `total weight ${res.totalWeight} is outside [${res.survivors.length}, ${most}]`;
  const mean = new Float64Array(res.sum.length);
  for (let i = 0; i < mean.length; i++) mean[i] = (res.sum[i] as number) / res.totalWeight;
  return refuseSecureMean(mean, clip, sumError / res.totalWeight);
}

/**
 * HE aggregation over the grid (../he/messages.ts): a ceremony each round with the first surviving
 * hospital as key holder, encrypted updates checked as they arrive and added without any key, the
 * decryption shared out among the hospitals (each a slice; all hold the secret key). The
 * coordinator learns the weighted mean only. Fails the round when the holder is lost before the
 * keys exist, or nobody is left to decrypt.
 */
async function heAggregate(
  o: FederationOptions,
  guard: RunGuard,
  round: number,
  global: Float32Array,
  fit: readonly FitResult[],
  timeoutMs: number,
  acc: RoundAccounting,
): Promise<{ sum: Float64Array; totalWeight: number; survivors: readonly string[]; dropped: number; recovered: number; serverSeconds: number }> {
  const { config: cfg, runId } = o;
  const clients = fit.map((f) => f.hospitalId).sort();
  const holder = clients[0] as string;
  // The wire form (zod output) of the run's HE parameters, checked once.
  const config = heConfigSchema.parse(heConfig({ vectorLength: global.length, clip: cfg.secagg_clip, maxWeight: Math.max(...fit.map((f) => f.numSamples)), maxClients: Math.max(100, clients.length) }));
  let lost = 0;
  let serverMs = 0;
  const stage = async <S extends HeStage>(name: S, targets: readonly string[], instruction: (h: string) => Instruction, check?: (h: string, r: Extract<StageResult, { stage: S }>) => Promise<ProtocolError | undefined>) => {
    const outcome = await runStage<Extract<StageResult, { stage: S }>>(o, round, name, targets, instruction, check, timeoutMs, acc);
    lost += outcome.dropped.length;
    return outcome.results;
  };
  const fromSelf = async (h: string, r: { client_id: string }) => (r.client_id === h ? undefined : new ProtocolError('INVALID_PAYLOAD', `reply names ${r.client_id}, not the sender ${h}`, 'client_id'));

  const keys = await stage('he-keys', clients, () => ({ stage: 'he-keys', run_id: runId, round, holder }), fromSelf);
  if (!keys.has(holder)) throw new StageFailedError('he-keys', round, keys.size, cfg.min_fit_clients, `the key holder ${holder} was lost before the keys existed`);
  const ads = new Map([...keys].map(([h, r]) => [h, heKeysReplySchema.parse(r)]));
  const peers = [...ads.keys()].filter((h) => h !== holder);
  const setup = await stage('he-setup', [holder], () => ({ stage: 'he-setup', run_id: runId, round, config, peers: peers.map((h) => ads.get(h)!) }), fromSelf);
  const keyed = setup.get(holder);
  if (!keyed) throw new StageFailedError('he-setup', round, 0, 1, `the key holder ${holder} was lost during the key ceremony`);
  const wrapped = new Map(keyed.wrapped.map((w) => [w.to, w.ciphertext]));
  const server = await serverContext(config.params, { compression: config.compression, ciphertexts: ciphertextCount(config) });
  // Each upload is checked as it arrives: one that cannot be added is refused by name, the others go on.
  const addable = async (h: string, r: { client_id: string; ciphertexts: Uint8Array }) => {
    const refused = (await fromSelf(h, r)) ?? server.refuseUpload(unpackChunks(r.ciphertexts));
    return typeof refused === 'string' ? new ProtocolError('INVALID_PAYLOAD', `ciphertexts: ${refused}`, 'ciphertexts') : refused;
  };
  const inputs = await stage(
    'he-input',
    [...ads.keys()],
    (h) => ({ stage: 'he-input', run_id: runId, round, config, holder: ads.get(holder)!, public_key: keyed.public_key, ...(h === holder ? {} : { wrapped: wrapped.get(h) as Uint8Array }) }),
    addable,
  );
  const contributors = [...inputs.keys()].sort();
  if (contributors.length < cfg.min_fit_clients) throw new StageFailedError('he-input', round, contributors.length, cfg.min_fit_clients);
  const t0 = performance.now();
  let sum: KeylessSum;
  try {
    sum = addUploads(server, config, contributors.map((h) => unpackChunks(inputs.get(h)!.ciphertexts)));
  } catch (e) {
    throw new StageFailedError('he-input', round, contributors.length, cfg.min_fit_clients, `the encrypted updates cannot be added: ${(e as Error).message}`);
  }
  serverMs += performance.now() - t0;
  const decoded = await decryptShared({ o, guard, round, config, contributors, sum, stage });
  const out = new Float64Array(global.length);
  for (let i = 0; i < out.length; i++) out[i] = (decoded.mean[i] as number) * decoded.totalWeight;
  return { sum: out, totalWeight: decoded.totalWeight, survivors: contributors, dropped: lost, recovered: 0, serverSeconds: serverMs / 1000 };
}

type HeWireConfig = ReturnType<typeof heConfigSchema.parse>;

/** The keyless sum, one entry per ciphertext: in full, or compact (Σ c0 under the first seed, and the other seeds; ../he/compact.ts). */
interface KeylessSum {
  sum: Uint8Array[];
  seeds?: Uint8Array[];
}

/** Adds the uploads without any key; compact when every upload is an uncompressed seeded ciphertext (half the bytes to decrypt). */
function addUploads(server: HeServer, config: HeWireConfig, uploads: Uint8Array[][]): KeylessSum {
  const full = server.addCiphertexts(uploads);
  const compact = full.map((c, k) => {
    const seeds = uploads.map((u) => seedOf(u[k] as Uint8Array, config.params));
    return seeds.every((x) => x !== undefined) ? compactSum(c, seeds, config.params) : undefined;
  });
  if (compact.some((c) => c === undefined)) return { sum: full };
  return { sum: compact.map((c) => c!.c0), seeds: compact.map((c) => c!.seeds) };
}

interface SharedDecryption {
  o: FederationOptions;
  guard: RunGuard;
  round: number;
  config: HeWireConfig;
  contributors: readonly string[];
  sum: KeylessSum;
  stage: <S extends HeStage>(name: S, targets: readonly string[], instruction: (h: string) => Instruction, check?: (h: string, r: Extract<StageResult, { stage: S }>) => Promise<ProtocolError | undefined>) => Promise<Map<string, Extract<StageResult, { stage: S }>>>;
}

/** A contiguous run of ciphertexts of the sum: [first, first + count). */
interface Slice {
  first: number;
  count: number;
}

/** [0, total) in `parts` contiguous slices of near-equal size (fewer when there are fewer ciphertexts). */
function slices(total: number, parts: number): Slice[] {
  const n = Math.max(1, Math.min(parts, total));
  return Array.from({ length: n }, (_, i) => {
    const first = Math.floor((i * total) / n);
    return { first, count: Math.floor(((i + 1) * total) / n) - first };
  });
}

/**
 * The decryption shared out (../he/messages.ts he-decrypt): each contributor still connected
 * decrypts one contiguous slice of the sum, checked as it arrives (each slot a possible sum of n
 * uploads, padding zero); then the whole is decoded and its total weight and mean checked, the
 * slice at fault refused by name. A slice lost or refused goes to another hospital in the next
 * pass — never to one that failed before — so each pass either completes a slice or rules out a
 * hospital. Fails the round when nobody is left to decrypt what remains.
 */
async function decryptShared(d: SharedDecryption): Promise<{ mean: Float32Array; totalWeight: number }> {
  const { o, guard, round, config, contributors, sum } = d;
  const n = config.params.poly_modulus_degree;
  const slots = new Uint32Array(sum.sum.length * n);
  const owner = new Map<number, string>(); // first ciphertext of a decrypted slice → who decrypted it
  const failed = new Set<string>();
  let todo = slices(sum.sum.length, contributors.filter((h) => o.grid.available().includes(h)).length);
  const refuse = async (h: string, slice: Slice, reason: string) => {
    failed.add(h);
    owner.delete(slice.first);
    todo.push(slice);
    await guard.audit(h, 'he.decrypt.refused', { round, first: slice.first, ciphertexts: slice.count, reason });
  };
  for (;;) {
    while (todo.length > 0) {
      const who = contributors.filter((h) => !failed.has(h) && o.grid.available().includes(h));
      if (who.length === 0) throw new StageFailedError('he-decrypt', round, 0, 1, `no hospital holding the secret key is left to decrypt ${todo.reduce((s, x) => s + x.count, 0)} ciphertext(s) of the sum`);
      const assigned = new Map(todo.slice(0, who.length).map((slice, i) => [who[i] as string, slice]));
      todo = todo.slice(who.length);
      const results = await d.stage(
        'he-decrypt',
        [...assigned.keys()],
        (h) => {
          const { first, count } = assigned.get(h) as Slice;
          const seeds = sum.seeds ? { seeds: packChunks(sum.seeds.slice(first, first + count)) } : {};
          return { stage: 'he-decrypt', run_id: o.runId, round, config, clients: contributors.length, first, sum: packChunks(sum.sum.slice(first, first + count)), ...seeds };
        },
        async (h, r) => {
          const { first, count } = assigned.get(h) as Slice;
          if (r.client_id !== h) return new ProtocolError('INVALID_PAYLOAD', `reply names ${r.client_id}, not the sender ${h}`, 'client_id');
          if (r.first !== first || r.slots.byteLength !== count * n * 4) return new ProtocolError('WRONG_LENGTH', `slots: ${r.slots.byteLength} bytes from ciphertext ${r.first}, expected ${count * n * 4} from ${first}`, 'slots');
          const refused = refuseSlots(slotsOf(r.slots), first * n, contributors.length, config);
          return refused ? new ProtocolError('OUT_OF_BOUNDS', `slots: ${refused}`, 'slots') : undefined;
        },
      );
      for (const [h, slice] of assigned) {
        const r = results.get(h);
        if (!r) {
          failed.add(h);
          todo.push(slice);
          continue;
        }
        slots.set(slotsOf(r.slots), slice.first * n);
        owner.set(slice.first, h);
      }
    }
    const blame = await checkDecoded(slots, d, owner);
    if ('mean' in blame) return blame;
    await refuse(blame.hospital, blame.slice, blame.reason);
  }
}

const slotsOf = (bytes: Uint8Array) => new Uint32Array(bytes.slice().buffer);

/**
 * The decrypted sum decoded, or the slice to blame: the total weight (its digits' slice) outside
 * the contributors' bounds, or a mean coordinate (its slice) not finite or outside ±clip.
 */
async function checkDecoded(slots: Uint32Array, d: SharedDecryption, owner: Map<number, string>): Promise<{ mean: Float32Array; totalWeight: number } | { hospital: string; slice: Slice; reason: string }> {
  const { config, contributors, guard } = d;
  const n = config.params.poly_modulus_degree;
  const firsts = [...owner.keys()].sort((a, b) => a - b);
  const sliceOf = (slot: number): Slice => {
    const k = Math.floor(slot / n);
    const first = firsts.filter((f) => f <= k).pop() as number;
    const next = firsts.find((f) => f > first) ?? slots.length / n;
    return { first, count: next - first };
  };
  const blame = (slot: number, reason: string) => {
    const slice = sliceOf(slot);
    return { hospital: owner.get(slice.first) as string, slice, reason };
  };
  const L = config.vector_length;
  let totalWeight = 0;
  for (let j = weightDigits(config) - 1; j >= 0; j--) totalWeight = totalWeight * 2 ** config.bits + (slots[L + j] as number);
  const most = Math.min(contributors.reduce((s, h) => s + guard.bounds.of(h), 0), contributors.length * config.max_weight);
  if (!(totalWeight >= contributors.length && totalWeight <= most)) return blame(L, `total_weight ${totalWeight} is outside [${contributors.length}, ${most}]`);
  const { mean } = decodeSum(slots, contributors.length, config);
  const limit = config.clip + meanErrorBound(config, contributors.length, totalWeight) + 1e-6 * config.clip;
  const bad = mean.findIndex((v) => !Number.isFinite(v) || Math.abs(v) > limit);
  if (bad >= 0) return blame(bad, `mean[${bad}] is ${mean[bad]}, outside the clip range ±${config.clip}`);
  return { mean, totalWeight };
}

/**
 * Round 0 of a tabular run (../tabular/schema.ts), two exchanges. Phase 1: each hospital's shape
 * (column names and types, its locally frequent categories, the classes; no counts) in the clear,
 * merged into the run's layout (a column categorical anywhere is categorical). Phase 2: each
 * hospital's sums over that layout — in the clear and checked one by one, or with secure
 * aggregation held by the hospitals and summed by SecAgg+ in fixed point (the coordinator learns
 * only the total, checked against the survivors' bounds). The total makes the schema.
 */
async function tabularPreprocess(o: FederationOptions, guard: RunGuard, log: Logger, timeoutMs: number): Promise<TabularSchema> {
  const min = o.config.min_available_clients;
  const settings = o.config.tabular;
  if (!settings) throw new StageFailedError('preprocess', 0, 0, min, 'task tabular needs tabular.target');
  const task = { target: settings.target, min_category_count: settings.min_category_count };
  await waitForClients(o, 0);
  declareRecords(o, guard);
  const secure = o.config.secure_aggregation !== 'none';
  const base = { run_id: o.runId, round: 0 as const, stage: 'preprocess' as const, seq_len: o.config.seq_len };
  const deadline = guard.deadline ? { adaptiveDeadline: guard.deadline } : {};
  const request = async (targets: string[], instruction: () => Instruction, check: (h: string, r: Extract<StageResult, { stage: 'preprocess' }>) => Promise<ProtocolError | undefined>) => {
    o.events?.onStage?.({ runId: o.runId, round: 0, stage: 'preprocess', phase: 'start', targets, dropped: [] });
    const out = await o.grid.request<Extract<StageResult, { stage: 'preprocess' }>>({ runId: o.runId, round: 0, stage: 'preprocess', targets, instruction, check, timeoutMs, minResults: min, ...deadline }, o.signal);
    throwIfAborted(o.signal);
    o.events?.onStage?.({ runId: o.runId, round: 0, stage: 'preprocess', phase: 'end', targets, dropped: out.dropped.map((d) => d.hospitalId) });
    const refused = out.dropped.filter((d) => d.reason === 'rejected');
    for (const d of refused) await guard.audit(d.hospitalId, 'preprocess.refused', { round: 0, reason: d.detail ?? d.reason });
    if (out.results.size < min) {
      const who = [...out.dropped].map((d) => `${d.hospitalId} (${d.detail ?? d.reason})`).join('; ');
      throw new StageFailedError('preprocess', 0, out.results.size, min, `${out.results.size} hospital(s) answered, ${min} needed${who ? `; out: ${who}` : ''}`);
    }
    return out;
  };
  const shapes = await request(o.grid.available(), () => ({ ...base, tabular: { task } }), async (_h, r) =>
    r.tabular_shape ? undefined : new ProtocolError('INVALID_PAYLOAD', 'tabular_shape: missing (a tabular run)', 'tabular_shape'),
  );
  let layout;
  try {
    layout = mergeShapes([...shapes.results.values()].map((r) => r.tabular_shape as TabularShape), task);
  } catch (e) {
    throw new StageFailedError('preprocess', 0, shapes.results.size, min, `the hospitals' tables make no layout: ${(e as Error).message}`);
  }
  const length = summaryLength(layout);
  const lay = layout;
  const out = await request([...shapes.results.keys()].sort(), () => ({ ...base, tabular: { task, layout: lay }, ...(secure ? { secure_aggregation: 'secagg' as const } : {}) }), async (h, r) => {
    if (secure) return r.tabular_sums === undefined ? undefined : new ProtocolError('INVALID_PAYLOAD', 'tabular_sums: not accepted in the clear with secure aggregation (they go masked)', 'tabular_sums');
    if (!r.tabular_sums) return new ProtocolError('INVALID_PAYLOAD', 'tabular_sums: missing', 'tabular_sums');
    const refused = refuseSummary(lay, r.tabular_sums, guard.bounds.of(h));
    return refused ? new ProtocolError('OUT_OF_BOUNDS', `tabular_sums refused: ${refused}`, 'tabular_sums') : undefined;
  });
  let hospitals = [...out.results.keys()].sort();
  let sums: Float64Array;
  if (secure) {
    const sa = await secureAggregate(o, 0, { clients: hospitals, vectorLength: length, maxWeight: 1, fixedPoint: true, minSurvivors: min, guard }, timeoutMs, roundAccounting());
    hospitals = [...sa.survivors];
    sums = sa.sum;
    const refused = refuseSummary(layout, sums, hospitals.reduce((s, h) => s + guard.bounds.of(h), 0));
    if (refused) {
      await guard.audit(undefined, 'preprocess.refused', { round: 0, reason: refused, contributors: hospitals });
      throw new StageFailedError('unmask', 0, hospitals.length, min, `the securely aggregated table sums of ${hospitals.join(', ')} are implausible (${refused}); one of them sent sums that are not its rows`);
    }
  } else {
    sums = new Float64Array(length);
    for (const r of out.results.values()) (r.tabular_sums as number[]).forEach((v, i) => (sums[i]! += v));
  }
  const schema = finalizeSchema(layout, sums);
  log.info({ runId: o.runId, hospitals, records: schema.records, width: schema.width, secure }, 'tabular schema ready');
  return schema;
}
