/**
 * Messages between the portal page and its training worker. The page holds the socket; the worker
 * holds the records (read from IndexedDB itself) and the model. Only what the protocol sends ever
 * crosses back: feature sums, weights, metrics, progress.
 */
import type { FeatureStats, FeatureSums } from '@fedcare/shared/data';
import type { ClientProgress, EvaluateReply, PatientScores, PersonalisationReport, TrainReply } from '@fedcare/shared/fl';
import type { Instruction } from '@fedcare/shared/protocol';
import type { SecAggReply, SecAggRequest } from '@fedcare/shared/secagg';
import type { HeReply, HeRequest } from '@fedcare/shared/he';
import type { StepComparison } from '@fedcare/shared/train';
import type { TabularPreprocessReply, TabularSchema } from '@fedcare/shared/tabular';
import type { TabularPreprocessWire } from '@fedcare/shared/protocol';

/** TF.js backends in the order feature detection tries them. */
export const BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];
export type BackendChoice = 'auto' | BackendName;

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  /** Why it was not used (no adapter, no WebGL 2, init failed …). */
  reason?: string;
}

/** A backend that failed while in use (device lost, GPU error, context lost) and was given up. */
export interface BackendFailure {
  backend: BackendName;
  reason: string;
  /** The stage it failed in ("round 2 train"), when it failed in one. */
  during?: string;
  /** ISO-8601. */
  at: string;
}

export interface BackendReport {
  backend: BackendName;
  /** How it was chosen: the backends tried before it and why they were not used. */
  attempts: BackendAttempt[];
  /** Human detail: float precision for WebGL, SIMD for WASM, the adapter for WebGPU. */
  detail: string;
  /** A software WebGPU adapter (SwiftShader, WARP, llvmpipe): correct, not fast. */
  software?: boolean;
  /** WASM: the threads it computes on (1 unless the page is cross-origin isolated). */
  threads?: number;
  /** Backends this worker gave up while using them, oldest first. */
  failures: BackendFailure[];
}

/** One training step on this backend against a reference backend (shared/src/train/step-check.ts). */
export type { StepComparison } from '@fedcare/shared/train';

export interface LoadReport {
  records: number;
  train: number;
  val: number;
  test: number;
  /** Labelled training examples (what num_samples will be). */
  numTrainExamples: number;
  /** Set when the hospital's data is a table (an imported CSV, for tabular runs): its columns. */
  table?: { name: string; columns: string[] };
}

export type WorkerRequest =
  /** threads: WASM's thread count (default: one per physical core where the page is cross-origin isolated). */
  | { id: number; op: 'init'; backend: BackendChoice; threads?: number }
  /** maxEpsilon: the hospital's own ε cap (it then trains only in DP runs); absent = the run's target. */
  | { id: number; op: 'load'; hospitalId: string; maxEpsilon?: number; roster?: Record<string, string> }
  | { id: number; op: 'featureSums'; seqLen: number }
  | { id: number; op: 'holdFeatureSums'; runId: string; seqLen: number }
  | { id: number; op: 'setStats'; runId: string; stats: FeatureStats; seqLen: number }
  /** A tabular run's preprocessing and schema (@fedcare/shared/tabular), for a hospital whose data is a CSV. */
  | { id: number; op: 'tabularPreprocess'; runId: string; wire: TabularPreprocessWire; secure: boolean }
  | { id: number; op: 'setTabularSchema'; runId: string; schema: TabularSchema }
  /** deadline: when the coordinator stops waiting for this stage (Date.now() clock), if it said. */
  | { id: number; op: 'fit'; instr: Extract<Instruction, { stage: 'train' }>; deadline?: number }
  | { id: number; op: 'evaluate'; instr: Extract<Instruction, { stage: 'evaluate' }>; deadline?: number }
  /** Runs one training step of the model on synthetic data here and on a reference backend, and compares. */
  | { id: number; op: 'checkBackend' }
  | { id: number; op: 'secagg'; req: SecAggRequest }
  | { id: number; op: 'he'; req: HeRequest }
  /** Scores every imported patient with the last global model evaluated here; the scores stay in the tab. */
  | { id: number; op: 'score'; temperature: number; which: 'global' | 'personalised' }
  /** Fine-tunes a local copy of the newest global model's head on this hospital's data (shared/src/train/personalise.ts); it never leaves the worker. */
  | { id: number; op: 'personalise' }
  /** Not answered: stops the training in progress at its next minibatch. */
  | { id: number; op: 'stop' };

export interface WorkerReplies {
  init: BackendReport;
  load: LoadReport;
  featureSums: FeatureSums;
  holdFeatureSums: null;
  setStats: null;
  tabularPreprocess: TabularPreprocessReply;
  setTabularSchema: null;
  fit: TrainReply;
  evaluate: EvaluateReply;
  checkBackend: StepComparison;
  secagg: SecAggReply;
  he: HeReply;
  score: PatientScores;
  personalise: PersonalisationReport;
}

export type WorkerMessage =
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'progress'; progress: ClientProgress }
  /** The backend failed (failure set) or changed (report set: the one now in use). */
  | { kind: 'backend'; failure?: BackendFailure; report?: BackendReport; message: string };
