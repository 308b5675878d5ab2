/**
 * The portal's state (zustand, vanilla so it is testable under Node) and the pure reducers that
 * turn session activity and worker progress into what the page shows. Side effects (socket, worker,
 * IndexedDB) live in portal.ts.
 */
import { createStore } from 'zustand/vanilla';
import type { ClientProgress, PatientScores, PersonalisationReport, SessionActivity } from '@fedcare/shared/fl';
import type { RunEvent, ServerStatus, StageName } from '@fedcare/shared/protocol';
import type { CohortSummary } from './data/cohort';
import type { ImportOutcome } from './data/importFiles';
import type { BackendChoice, BackendReport, LoadReport, StepComparison } from './worker/protocol';

export type Connection = 'offline' | 'connecting' | 'joined' | 'reconnecting' | 'refused';

/** One round as this hospital saw it: its training figures and the global model's figures on its test split. */
export interface LocalRound {
  run_id: string;
  round: number;
  train_loss?: number;
  train_accuracy?: number;
  num_samples?: number;
  train_seconds?: number;
  test_loss?: number;
  test_accuracy?: number;
  auc_roc?: number;
  f1?: number;
  /** ε this hospital had spent after this round's training (DP runs). */
  epsilon?: number;
  delta?: number;
}

export interface StageView {
  stage: StageName;
  run_id: string;
  round: number;
  state: 'working' | 'sent' | 'declined';
  reason?: string;
}

export interface PortalState {
  token: string | undefined;
  hospitalId: string | undefined;
  signInError: string | undefined;
  status: ServerStatus | undefined;
  statusError: string | undefined;
  backendChoice: BackendChoice;
  /** The hospital's own ε cap (stored in IndexedDB); undefined: follow each run's target. */
  maxEpsilon: number | undefined;
  /** This hospital's signing identity (derived from its token), to publish to the other operators. */
  identity: { key: string; fingerprint: string } | undefined;
  /** The federation roster loaded here (hospital id → hex identity key); undefined: trust on first use. */
  roster: Record<string, string> | undefined;
  backend: BackendReport | undefined;
  backendError: string | undefined;
  /** The last backend check (one training step here and on a reference backend), while running, or its error. */
  backendCheck: StepComparison | 'running' | { error: string } | undefined;
  loaded: LoadReport | undefined;
  summary: CohortSummary | undefined;
  importedAt: string | undefined;
  importOutcome: ImportOutcome | undefined;
  importing: boolean;
  importError: string | undefined;
  connection: Connection;
  connectionError: string | undefined;
  run: RunEvent | undefined;
  stage: StageView | undefined;
  progress: ClientProgress | undefined;
  rounds: LocalRound[];
  /** The newest global model this tab evaluated (it can score patients with it). */
  model: { run_id: string; round: number } | undefined;
  /** The Patients view: scores of every imported patient, computed in the worker, kept in this tab. */
  patients: { state: 'scoring' } | { state: 'ready'; scores: PatientScores } | { state: 'error'; error: string } | undefined;
  /** This hospital's personalised copy of the newest global model (fine-tuned and kept in the worker). */
  personalisation: { state: 'running' } | { state: 'ready'; report: PersonalisationReport } | { state: 'error'; error: string } | undefined;
  log: { at: string; message: string }[];
}

export const initialPortalState: PortalState = {
  token: undefined,
  hospitalId: undefined,
  signInError: undefined,
  status: undefined,
  statusError: undefined,
  backendChoice: 'auto',
  maxEpsilon: undefined,
  identity: undefined,
  roster: undefined,
  backend: undefined,
  backendError: undefined,
  backendCheck: undefined,
  loaded: undefined,
  summary: undefined,
  importedAt: undefined,
  importOutcome: undefined,
  importing: false,
  importError: undefined,
  connection: 'offline',
  connectionError: undefined,
  run: undefined,
  stage: undefined,
  progress: undefined,
  rounds: [],
  model: undefined,
  patients: undefined,
  personalisation: undefined,
  log: [],
};

export const createPortalStore = () => createStore<PortalState>(() => ({ ...initialPortalState }));
export type PortalStore = ReturnType<typeof createPortalStore>;

const LOG_LIMIT = 200;

export function appendLog(state: PortalState, message: string, at = new Date()): Pick<PortalState, 'log'> {
  return { log: [...state.log, { at: at.toISOString(), message }].slice(-LOG_LIMIT) };
}

function upsertRound(rounds: readonly LocalRound[], run_id: string, round: number, patch: Partial<LocalRound>): LocalRound[] {
  const i = rounds.findIndex((r) => r.run_id === run_id && r.round === round);
  if (i < 0) return [...rounds, { run_id, round, ...patch }].sort((a, b) => (a.run_id === b.run_id ? a.round - b.round : a.run_id < b.run_id ? -1 : 1));
  const out = [...rounds];
  out[i] = { ...(out[i] as LocalRound), ...patch };
  return out;
}

function finite(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What a session activity changes: the stage view and, for sent results, the local metrics per round. */
export function reduceActivity(state: PortalState, a: SessionActivity): Partial<PortalState> {
  if (a.kind === 'idle') return { stage: undefined, progress: undefined };
  const base = { stage: a.stage, run_id: a.run_id, round: a.round };
  if (a.kind === 'stage') return { stage: { ...base, state: 'working' }, progress: undefined };
  if (a.kind === 'declined') return { stage: { ...base, state: 'declined', reason: a.reason }, progress: undefined };
  const r = a.result;
  let rounds = state.rounds;
  if (r.stage === 'train') {
    rounds = upsertRound(rounds, r.run_id, r.round, defined({
      train_loss: finite(r.metrics.train_loss),
      train_accuracy: finite(r.metrics.train_accuracy),
      train_seconds: finite(r.metrics.train_seconds),
      num_samples: r.num_samples,
      epsilon: finite(r.metrics.privacy_epsilon),
      delta: finite(r.metrics.privacy_delta),
    }));
  } else if (r.stage === 'evaluate') {
    rounds = upsertRound(rounds, r.run_id, r.round, defined({
      test_loss: finite(r.metrics.test_loss),
      test_accuracy: finite(r.metrics.test_accuracy),
      auc_roc: finite(r.metrics.auc_roc),
      f1: finite(r.metrics.f1_score),
    }));
    // The worker evaluated this round's global model: it can now score patients with it.
    return { stage: { ...base, state: 'sent' }, rounds, model: { run_id: r.run_id, round: r.round } };
  }
  return { stage: { ...base, state: 'sent' }, rounds };
}

/** Fraction of the local training done (epochs × batches), or undefined outside training. */
export function trainingFraction(p: ClientProgress | undefined): number | undefined {
  if (!p?.train) return undefined;
  const { epoch, epochs, batch, batches } = p.train;
  return ((epoch - 1) * batches + batch) / (epochs * batches);
}
