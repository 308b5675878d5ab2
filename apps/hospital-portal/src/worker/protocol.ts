/**
 * Messages between the portal page and its training worker. The page holds the socket; the worker
 * holds the records (read from IndexedDB itself) and the model. Only what the protocol sends ever
 * crosses back: feature sums, weights, metrics, progress.
 */
import type { FeatureStats, FeatureSums } from '@fedcare/shared/data';
import type { ClientProgress, EvaluateReply, TrainReply } from '@fedcare/shared/fl';
import type { Instruction } from '@fedcare/shared/protocol';
import type { SecAggReply, SecAggRequest } from '@fedcare/shared/secagg';
import type { HeReply, HeRequest } from '@fedcare/shared/he';

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

export interface BackendReport {
  backend: BackendName;
  attempts: BackendAttempt[];
  /** Human detail: float precision for WebGL, SIMD for WASM. */
  detail: string;
}

export interface LoadReport {
  records: number;
  train: number;
  val: number;
  test: number;
  /** Labelled training examples (what num_samples will be). */
  numTrainExamples: number;
}

export type WorkerRequest =
  | { id: number; op: 'init'; backend: BackendChoice }
  /** maxEpsilon: the hospital's own ε cap (it then trains only in DP runs); absent = the run's target. */
  | { id: number; op: 'load'; hospitalId: string; maxEpsilon?: number; credential?: string; roster?: Record<string, string> }
  | { id: number; op: 'featureSums'; seqLen: number }
  | { id: number; op: 'holdFeatureSums'; runId: string; seqLen: number }
  | { id: number; op: 'setStats'; runId: string; stats: FeatureStats; seqLen: number }
  | { id: number; op: 'fit'; instr: Extract<Instruction, { stage: 'train' }> }
  | { id: number; op: 'evaluate'; instr: Extract<Instruction, { stage: 'evaluate' }> }
  | { id: number; op: 'secagg'; req: SecAggRequest }
  | { id: number; op: 'he'; req: HeRequest }
  /** Not answered: stops the training in progress at its next minibatch. */
  | { id: number; op: 'stop' };

export interface WorkerReplies {
  init: BackendReport;
  load: LoadReport;
  featureSums: FeatureSums;
  holdFeatureSums: null;
  setStats: null;
  fit: TrainReply;
  evaluate: EvaluateReply;
  secagg: SecAggReply;
  he: HeReply;
}

export type WorkerMessage =
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string }
  | { kind: 'progress'; progress: ClientProgress };
