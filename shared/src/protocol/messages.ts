/**
 * The wire protocol between hospitals, the coordinator and dashboards: one file of typed Socket.IO
 * event maps, each payload paired with a zod schema that is checked before use (types vanish on
 * the wire). Seed spec 7.1's operations map onto two events carrying a `stage` discriminator, so the
 * round engine can add stages (secure aggregation) without new plumbing:
 *
 *   GetParameters     server → hospital  `fl:instruction` { stage: 'train', config, weights }
 *   UpdateParameters  hospital → server  `fl:result`      { stage: 'train', weights, num_samples, metrics }
 *   EvaluateModel     server → hospital  `fl:instruction` { stage: 'evaluate', weights }
 *                     hospital → server  `fl:result`      { stage: 'evaluate', num_examples, metrics }
 *   GetStatus         hospital → server  `fl:status` (acknowledgement carries ServerStatus)
 *
 * Before round 1 a `preprocess` stage collects each hospital's feature sums and the server
 * broadcasts the global statistics (`fl:stats`). Weights travel as binary attachments: little-endian
 * float32 bytes with their SHA-256, never JSON number arrays.
 *
 * Each model travels to a connection once: the preprocess stage carries the run's initial model,
 * round r's evaluate the new global model, and the next train instruction names the same model by
 * its SHA-256 alone (`weights` absent) when the coordinator knows this connection acknowledged it. A hospital that does not hold the named
 * model declines with UNKNOWN_MODEL and gets the weights again next time (../fl/session.ts).
 */
import { z } from 'zod';
import { BIOLOGY_DIM, OMICS_DIM, OMICS_RAW_DIM, VITALS_CHANNELS, LAB_CHANNELS, type FeatureStats } from '../data/features';
import { hospitalIdSchema } from '../data/schema';
import { classifierParamCount, MODEL_NAMES, modelConfigFor, type ModelName } from '../model/classifier';
import type { ProtocolErrorPayload } from './errors';
import type { TabularLayout, TabularSchema } from '../tabular/schema';
import { tabularLayoutSchema, tabularSchemaSchema, tabularShapeSchema, tabularTaskSchema } from '../tabular/wire';
import {
  advertiseKeysReplySchema,
  advertiseKeysRequestSchema,
  consistencyCheckReplySchema,
  consistencyCheckRequestSchema,
  maskedInputReplySchema,
  maskedInputRequestSchema,
  SECAGG_STAGES,
  shareKeysReplySchema,
  shareKeysRequestSchema,
  unmaskReplySchema,
  unmaskRequestSchema,
  type SecAggReply,
  type SecAggRequest,
} from '../secagg/protocol';
import {
  HE_STAGES,
  heDecryptReplySchema,
  heDecryptRequestSchema,
  heInputReplySchema,
  heInputRequestSchema,
  heKeysReplySchema,
  heKeysRequestSchema,
  heSetupReplySchema,
  heSetupRequestSchema,
  type HeReply,
  type HeRequest,
} from '../he/messages';

/**
 * Hospitals and coordinator must speak the same version (checked at connect). 2: secure
 * aggregation gained the consistency-check stage (unmask requests carry signatures) and secure
 * preprocessing (a preprocess reply without sums); a version-1 hospital would fail those rounds.
 * 3: SecAgg+ shares are signed by their dealers (larger sealed shares, a signature per revealed share).
 */
export const PROTOCOL_VERSION = 3;
export const HOSPITAL_NAMESPACE = '/hospital';
export const DASHBOARD_NAMESPACE = '/dashboard';

/** Round stages; the four SecAgg+ stages run between train and evaluate when secure aggregation is on. */
export const STAGES = ['preprocess', 'train', 'evaluate', ...SECAGG_STAGES, ...HE_STAGES] as const;
export type StageName = (typeof STAGES)[number];

/** Raw bytes as they arrive: a Node Buffer, a Uint8Array or an ArrayBuffer (browsers). */
export const binarySchema = z
  .custom<Uint8Array | ArrayBuffer>((v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v), { message: 'expected binary data' })
  .transform((v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)));

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { message: 'expected a lowercase hex SHA-256' });
const runId = z.string().min(1).max(64);
const round = z.number().int().min(0).max(100_000);
/** At most this many metrics per result: the seed spec's ~20, and an evaluation's calibration figures (../train/calibration.ts, 56). */
export const MAX_METRICS = 128;
const metricsSchema = z
  .record(z.string().min(1).max(64), z.number({ message: 'expected a finite number' }))
  .refine((m) => Object.keys(m).length <= MAX_METRICS, `at most ${MAX_METRICS} metrics`);

// ---------------------------------------------------------------------------------------------
// Run configuration (REST POST /api/v1/train/start, dashboard form, simulate).

export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'median', 'trimmed', 'krum'] as const;
/** Strategies whose aggregation is a num_samples-weighted sum of the updates (secure aggregation can wrap them). */
export const WEIGHTED_SUM_STRATEGIES: readonly (typeof STRATEGY_NAMES)[number][] = ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad'];
/** Strategies offered with HE: the hospitals' weighted mean is the new model. */
export const HE_STRATEGIES: readonly (typeof STRATEGY_NAMES)[number][] = ['fedavg', 'fedprox'];

export const dpConfigSchema = z.strictObject({
  /** σ: Gaussian noise standard deviation as a multiple of max_grad_norm. */
  noise_multiplier: z.number().gt(0, 'noise_multiplier must be > 0 (σ ≤ 0 is no privacy)').max(1000),
  /** C: per-example gradient L2 bound. */
  max_grad_norm: z.number().gt(0, 'max_grad_norm must be > 0').max(1e6),
  /** Each hospital's budget; training that would pass it is declined. */
  target_epsilon: z.number().gt(0, 'target_epsilon must be > 0').max(1e6),
  /** δ of (ε, δ)-DP; must also be < 1/n for each hospital's n (checked by the hospital). */
  delta: z.number().gt(0, 'delta must be > 0').lt(1, 'delta must be < 1'),
});
export type DpConfig = z.infer<typeof dpConfigSchema>;

/** Loss weights of the multi-task heads (run config `task_weights`; the risk head's weight is 1). */
export const taskWeightsSchema = z.strictObject({
  readmission_30d: z.number().min(0).max(100),
  days_to_readmission: z.number().min(0).max(100),
});

export const runConfigSchema = z.strictObject({
  /** The model definition (shared/src/model/classifier.ts MODEL_PRESETS): 'compact' is the DP recipe's. */
  model: z.enum(MODEL_NAMES).default('standard'),
  /** Units of the model's vitals LSTM (its preset's when absent; shared/src/model/classifier.ts modelConfigFor). */
  hidden_dim: z.number().int().min(2).max(1024).optional(),
  /** Every dropout rate of the model (its preset's when absent). */
  dropout: z.number().min(0).max(0.9).optional(),
  /**
   * 'risk': the multimodal risk model on patient records. 'tabular': any table with a target column
   * (shared/src/tabular: an MLP, hidden_dim wide; `tabular` names the target).
   */
  task: z.enum(['risk', 'tabular']).default('risk'),
  tabular: tabularTaskSchema.optional(),
  /**
   * Multi-task heads (readmission_30d, days_to_readmission) on the fused representation and their
   * loss weights beside the risk head's 1 (shared/src/model/classifier.ts). Absent: single task.
   */
  task_weights: taskWeightsSchema.optional(),
  strategy: z.enum(STRATEGY_NAMES).default('fedavg'),
  rounds: z.number().int().min(1).max(1000).default(50),
  local_epochs: z.number().int().min(1).max(100).default(5),
  batch_size: z.number().int().min(1).max(4096).default(32),
  learning_rate: z.number().positive().max(10).default(1e-3),
  proximal_mu: z.number().min(0).max(100).default(0.01),
  fraction_fit: z.number().gt(0).max(1).default(1),
  fraction_evaluate: z.number().gt(0).max(1).default(1),
  min_fit_clients: z.number().int().min(1).default(3),
  min_evaluate_clients: z.number().int().min(1).default(3),
  min_available_clients: z.number().int().min(1).default(3),
  seq_len: z.number().int().min(2).max(365).default(30),
  seed: z.number().int().default(1),
  /** Seconds a stage waits for results before dropping the clients that have not answered. */
  stage_timeout_s: z.number().positive().max(86_400).default(600),
  /** Seconds to wait for min_available_clients to connect before a round. */
  wait_for_clients_s: z.number().positive().max(86_400).default(300),
  /** Before sampling a round, seconds to wait for hospitals that took part earlier and are reconnecting. */
  rejoin_grace_s: z.number().min(0).max(3600).default(10),
  round_failure_policy: z.enum(['retry', 'stop']).default('retry'),
  max_round_retries: z.number().int().min(0).max(100).default(2),
  early_stopping_patience: z.number().int().min(0).max(1000).default(10),
  checkpoint_every: z.number().int().min(1).max(1000).default(5),
  /**
   * 'secagg': SecAgg+ (Bonawitz et al. 2017, Bell et al. 2020) — the coordinator learns only the
   * weighted sum of the updates. Needs a strategy whose aggregation is a weighted sum.
   */
  secure_aggregation: z.enum(['none', 'secagg', 'he']).default('none'),
  /** Neighbours per hospital in the SecAgg+ graph; absent: all (plain SecAgg). */
  secagg_neighbours: z.number().int().min(1).max(254).optional(),
  /** Shares needed to recover a hospital's secrets; absent: the seed spec's 3 / ⌊2k/3⌋+1 (secagg graph.ts). */
  secagg_threshold: z.number().int().min(2).max(255).optional(),
  /** Each coordinate of an update (local − global weights) is clipped to ±R before masking. */
  secagg_clip: z.number().positive().max(1e4).default(0.5),
  /**
   * Client-side differential privacy (DP-SGD with an RDP accountant per hospital). Absent: not
   * private (ε = ∞). Each hospital declines training that would take its ε past target_epsilon.
   */
  dp: dpConfigSchema.optional(),
  // --- Bounded influence per hospital (issue 13; README "Federation" and shared/src/fl/influence.ts). ---
  /**
   * Run-level cap on any hospital's weight (num_samples in training, num_examples in evaluation,
   * records in preprocessing). A hospital's bound is min(this cap, the num_records it declared at
   * its first sign-in of the run, frozen for the run); a reply above its bound is refused by name.
   */
  max_samples_per_hospital: z.number().int().min(1).max(10_000_000).default(1_000_000),
  /**
   * Plain mode: an update (local − global) whose L2 norm exceeds this multiple of the round's median
   * update norm is scaled down to it before aggregation (audited by hospital). 0 turns the bound off.
   */
  update_norm_bound: z.number().min(0).max(1e6).default(3),
  /** Trimmed mean: fraction trimmed at each end (default 0.2). Must trim at least one of the hospitals a round expects (max(min_fit_clients, ⌈fraction_fit × min_available_clients⌉)). */
  trimmed_beta: z.number().gt(0).lt(0.5).optional(),
  /** Krum: Byzantine hospitals to tolerate (default ⌊(n − 3)/2⌋); needs min_fit_clients ≥ 2f + 3. */
  krum_f: z.number().int().min(0).max(100).optional(),
  /**
   * How the validation loss that picks the best model and drives early stopping combines the
   * hospitals' figures: 'median' (one hospital cannot move it) or 'weighted' (num_examples-weighted).
   */
  selection_aggregate: z.enum(['median', 'weighted']).default('median'),
  /**
   * Adaptive stage deadline: once half the targets have answered, the stage waits at most
   * max(straggler_min_s, straggler_factor × the median answer time so far), never past stage_timeout_s.
   * straggler_factor 0 turns it off (the fixed stage_timeout_s only).
   */
  straggler_factor: z.number().min(0).max(1000).default(4),
  straggler_min_s: z.number().min(0).max(86_400).default(120),
  /** A hospital that is cut by a deadline, or answers last and slower than twice the median, in this many consecutive rounds is excluded for the rest of the run ('exclude'). */
  straggler_policy: z.enum(['none', 'exclude']).default('exclude'),
  straggler_strikes: z.number().int().min(1).max(1000).default(3),
}).superRefine((c, ctx) => {
  if (c.task === 'tabular' && !c.tabular) ctx.addIssue({ code: 'custom', path: ['tabular'], message: 'task tabular needs tabular.target (the column to predict)' });
  // hidden_dim / dropout must give a model that can be built (the fusion width divisible by the preset's heads).
  if (c.task === 'risk' && (c.hidden_dim !== undefined || c.dropout !== undefined)) {
    try {
      classifierParamCount(modelConfigFor(c.model, c));
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: [c.hidden_dim !== undefined ? 'hidden_dim' : 'dropout'], message: `the ${c.model} model cannot take it: ${(e as Error).message}` });
    }
  }
  // The heads' losses are masked means over a minibatch, not per-example losses DP-SGD can clip.
  if (c.task_weights !== undefined && c.dp !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['task_weights'], message: 'task_weights (multi-task heads) cannot be combined with dp (DP-SGD clips per-example losses; the heads\' masked means are not): remove task_weights or dp' });
  }
  if (c.task_weights !== undefined && c.task === 'tabular') {
    ctx.addIssue({ code: 'custom', path: ['task_weights'], message: 'task_weights adds heads to the risk model (task risk); a tabular run has one target (tabular.target)' });
  }
  if (c.strategy === 'trimmed') {
    // The hospitals a round is expected to have: at least min_fit_clients, and fraction_fit of the hospitals the run waits for.
    const beta = c.trimmed_beta ?? 0.2;
    const n = Math.max(c.min_fit_clients, Math.ceil(c.fraction_fit * c.min_available_clients - 1e-9));
    if (Math.floor(beta * n + 1e-9) < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['trimmed_beta'],
        message: `a trimmed mean with trimmed_beta ${beta} over the ${n} hospitals a round expects (min_fit_clients, fraction_fit × min_available_clients) trims nothing (⌊β·n⌋ = 0): use trimmed_beta ≥ ${Math.ceil(1000 / n) / 1000} or more hospitals`,
      });
    }
  }
  if (c.strategy === 'krum' && c.krum_f !== undefined && c.min_fit_clients < 2 * c.krum_f + 3) {
    ctx.addIssue({ code: 'custom', path: ['krum_f'], message: `Krum tolerates krum_f ${c.krum_f} Byzantine hospitals only with min_fit_clients ≥ ${2 * c.krum_f + 3} (n ≥ 2f + 3)` });
  }
  // Robust aggregators look at every update; secure aggregation shows the server only the sum.
  if (c.secure_aggregation === 'he' && !HE_STRATEGIES.includes(c.strategy)) {
    ctx.addIssue({
      code: 'custom',
      path: ['secure_aggregation'],
      message: `strategy ${c.strategy} is not offered with HE: only ${HE_STRATEGIES.join(', ')} (server optimisers and robust aggregators need the plaintext sum or the updates on the server)`,
    });
  } else if (c.secure_aggregation !== 'none' && !WEIGHTED_SUM_STRATEGIES.includes(c.strategy)) {
    ctx.addIssue({
      code: 'custom',
      path: ['secure_aggregation'],
      message: `strategy ${c.strategy} needs every update in the clear; secure aggregation wraps only weighted-sum strategies (${WEIGHTED_SUM_STRATEGIES.join(', ')})`,
    });
  }
});
export type RunConfig = z.infer<typeof runConfigSchema>;
export type RunConfigInput = z.input<typeof runConfigSchema>;

// ---------------------------------------------------------------------------------------------
// Handshake.

export const helloSchema = z.strictObject({
  token: z.string().min(16).max(512),
  hospital_id: hospitalIdSchema,
  client_version: z.number().int(),
  /** Labelled examples the hospital holds (for the dashboard; weighting uses each round's num_samples). */
  num_records: z.number().int().min(0).optional(),
  /** 'browser' or 'node', and the TF.js backend in use. */
  host: z.string().max(64).optional(),
});
export type Hello = z.infer<typeof helloSchema>;

// ---------------------------------------------------------------------------------------------
// Server → hospital.

export interface ModelOptionsWire {
  hidden_dim?: number | undefined;
  dropout?: number | undefined;
  task_weights?: { readmission_30d: number; days_to_readmission: number } | undefined;
}

export interface FitConfigWire {
  local_epochs: number;
  batch_size: number;
  learning_rate: number;
  proximal_mu: number;
  seq_len: number;
  seed: number;
  /** The run's model definition; absent: 'standard'. */
  model?: ModelName;
  /** The run's hidden_dim / dropout overrides of the model; absent: the preset's. */
  model_options?: ModelOptionsWire;
  dp?: DpConfig;
  /** 'secagg' / 'he': keep the update and send it only masked / encrypted, in the stages that follow (no weights in the train reply). */
  secure_aggregation?: 'secagg' | 'he';
}

/**
 * A train or evaluate instruction as it arrives: `weights` may be absent when `weights_sha256`
 * names a model this connection already received (the session fills it in before compute sees it).
 */
export type WireInstruction =
  | Exclude<Instruction, { stage: 'train' | 'evaluate' }>
  | (Omit<Extract<Instruction, { stage: 'train' }>, 'weights'> & { weights?: Uint8Array })
  | (Omit<Extract<Instruction, { stage: 'evaluate' }>, 'weights'> & { weights?: Uint8Array });

export type Instruction =
  /** secure_aggregation 'secagg': keep the sums and send them only masked (SecAgg+ stages of round 0, fixed point), not in the reply. */
  /** weights: the run's initial model, so that round 1's train instruction can name it alone (each model goes once). */
  | { run_id: string; round: 0; stage: 'preprocess'; seq_len: number; secure_aggregation?: 'secagg'; weights?: Uint8Array; weights_sha256?: string; tabular?: TabularPreprocessWire }
  /** timeout_s: how long the coordinator waits for the result, from when it sends the instruction. */
  | { run_id: string; round: number; stage: 'train'; config: FitConfigWire; weights: Uint8Array; weights_sha256: string; timeout_s?: number }
  | { run_id: string; round: number; stage: 'evaluate'; weights: Uint8Array; weights_sha256: string; timeout_s?: number; model?: ModelName; model_options?: ModelOptionsWire }
  | SecAggRequest
  | HeRequest;

/** A run's hidden_dim / dropout overrides of its model preset, sent with the model's name. */
const modelOptionsSchema = z.strictObject({ hidden_dim: z.number().int().min(2).max(1024).optional(), dropout: z.number().min(0).max(0.9).optional(), task_weights: taskWeightsSchema.optional() });

const fitConfigSchema = z.object({
  local_epochs: z.number().int().min(1),
  batch_size: z.number().int().min(1),
  learning_rate: z.number().positive(),
  proximal_mu: z.number().min(0),
  seq_len: z.number().int().min(2),
  seed: z.number().int(),
  model: z.enum(MODEL_NAMES).optional(),
  model_options: modelOptionsSchema.optional(),
  dp: dpConfigSchema.optional(),
  secure_aggregation: z.enum(['secagg', 'he']).optional(),
});

/** A tabular run's preprocess instruction block (TabularPreprocessWire). */
const tabularPreprocessSchema = z.strictObject({ task: tabularTaskSchema, layout: tabularLayoutSchema.optional() });

export const instructionSchema = z.discriminatedUnion('stage', [
  z.object({
    run_id: runId,
    round: z.literal(0),
    stage: z.literal('preprocess'),
    seq_len: z.number().int().min(2),
    secure_aggregation: z.literal('secagg').optional(),
    weights: binarySchema.optional(),
    weights_sha256: sha256Hex.optional(),
    tabular: tabularPreprocessSchema.optional(),
  }),
  z.object({ run_id: runId, round, stage: z.literal('train'), config: fitConfigSchema, weights: binarySchema.optional(), weights_sha256: sha256Hex, timeout_s: z.number().positive().optional() }),
  z.object({ run_id: runId, round, stage: z.literal('evaluate'), weights: binarySchema.optional(), weights_sha256: sha256Hex, timeout_s: z.number().positive().optional(), model: z.enum(MODEL_NAMES).optional(), model_options: modelOptionsSchema.optional() }),
  advertiseKeysRequestSchema,
  shareKeysRequestSchema,
  maskedInputRequestSchema,
  consistencyCheckRequestSchema,
  unmaskRequestSchema,
  heKeysRequestSchema,
  heSetupRequestSchema,
  heInputRequestSchema,
  heDecryptRequestSchema,
]);

export type GlobalStatsMessage =
  | {
      run_id: string;
      /** Sequence length the statistics and every stage of the run use. */
      seq_len: number;
      stats: FeatureStats;
    }
  /** A tabular run's schema (shared/src/tabular/schema.ts) instead of the risk model's statistics. */
  | { run_id: string; seq_len: number; tabular: TabularSchema };

/**
 * A tabular run's preprocessing (shared/src/tabular/schema.ts): without `layout`, phase 1 (reply with
 * `tabular_shape`); with it, phase 2 (reply with `tabular_sums` over it, or hold them for SecAgg+).
 */
export interface TabularPreprocessWire {
  task: { target: string; min_category_count: number };
  layout?: TabularLayout;
}

/** A tabular run's `fl:stats`, checked by hospitals before use. */
export const tabularStatsSchema = z.object({ run_id: runId, seq_len: z.number().int().min(2), tabular: tabularSchemaSchema });

const channelStats = (d: number) => z.object({ mean: z.array(z.number()).length(d), std: z.array(z.number().positive()).length(d) });
/** Checked by hospitals before use, like every inbound payload. */
export const globalStatsSchema = z.object({
  run_id: runId,
  seq_len: z.number().int().min(2),
  stats: z.object({
    demographics: channelStats(5),
    vitals: channelStats(VITALS_CHANNELS),
    labs: channelStats(LAB_CHANNELS),
    biology: channelStats(BIOLOGY_DIM),
    omics: channelStats(OMICS_RAW_DIM),
    pcaBasis: z.array(z.number()).length(OMICS_DIM * OMICS_RAW_DIM),
    pcaExplained: z.array(z.number()).length(OMICS_DIM),
    records: z.number().int().min(0),
  }),
});

export const runEventSchema = z.object({
  run_id: runId,
  status: z.enum(['running', 'completed', 'stopped', 'failed']),
  round: z.number().int().min(0),
  total_rounds: z.number().int().min(0),
  reason: z.string().optional(),
});

export interface RunEvent {
  run_id: string;
  status: 'running' | 'completed' | 'stopped' | 'failed';
  round: number;
  total_rounds: number;
  reason?: string;
}

// ---------------------------------------------------------------------------------------------
// Hospital → server.

const moments = (d: number) =>
  z.object({ count: z.array(z.number().min(0)).length(d), sum: z.array(z.number()).length(d), sumSq: z.array(z.number().min(0)).length(d) });

/** The additive statistics of `computeFeatureSums` (data/features.ts), checked dimension by dimension. */
export const featureSumsSchema = z.object({
  records: z.number().int().min(0),
  demographics: moments(5),
  vitals: moments(VITALS_CHANNELS),
  labs: moments(LAB_CHANNELS),
  biology: moments(BIOLOGY_DIM),
  omics: moments(OMICS_RAW_DIM),
  omicsCross: z.array(z.number()).length(OMICS_RAW_DIM * OMICS_RAW_DIM),
  omicsRows: z.number().int().min(0),
});

export const resultSchema = z.discriminatedUnion('stage', [
  /** sums are absent when the instruction asked for secure aggregation. */
  z.object({
    run_id: runId,
    round: z.literal(0),
    stage: z.literal('preprocess'),
    sums: featureSumsSchema.optional(),
    /** Tabular phase 1: column names, types, locally frequent categories, classes (no counts). */
    tabular_shape: tabularShapeSchema.optional(),
    /** Tabular phase 2: the sums over the run's layout (absent with secure aggregation: they go masked). */
    tabular_sums: z.array(z.number()).max(1_000_000).optional(),
  }),
  z.object({
    run_id: runId,
    round,
    stage: z.literal('train'),
    /** Absent with secure aggregation: the update then leaves the hospital only masked. */
    weights: binarySchema.optional(),
    weights_sha256: sha256Hex.optional(),
    num_samples: z.number().int().min(1),
    metrics: metricsSchema,
  }),
  z.object({ run_id: runId, round, stage: z.literal('evaluate'), num_examples: z.number().int().min(1), metrics: metricsSchema }),
  advertiseKeysReplySchema,
  shareKeysReplySchema,
  maskedInputReplySchema,
  consistencyCheckReplySchema,
  unmaskReplySchema,
  heKeysReplySchema,
  heSetupReplySchema,
  heInputReplySchema,
  heDecryptReplySchema,
]);
export type StageResult = z.output<typeof resultSchema>;
export type { SecAggReply, HeReply };

/** A hospital saying it will not take part in a stage, and why (no statistics yet, privacy budget spent, …). */
export const declineSchema = z.strictObject({ run_id: runId, round, stage: z.enum(STAGES), reason: z.string().min(1).max(500) });
export type Decline = z.infer<typeof declineSchema>;

/** What `fl:status`, `dash:status` and REST GET /api/v1/status carry (one schema: the OpenAPI document is generated from it). */
export const serverStatusSchema = z
  .object({
    protocol_version: z.number().int(),
    run_id: z.string().nullable(),
    status: z.enum(['idle', 'running', 'completed', 'stopped', 'failed']),
    current_round: z.number().int(),
    total_rounds: z.number().int(),
    stage: z.enum(STAGES).nullable(),
    active_clients: z.array(z.string()),
    global_accuracy: z.number().nullable(),
    privacy_budget: z.number().nullable(),
  })
  .meta({ id: 'Status' });
export type ServerStatus = z.infer<typeof serverStatusSchema>;

// ---------------------------------------------------------------------------------------------
// Event maps (socket.io generics). Acknowledgements are the last parameter.

export type Ack<T> = (response: { ok: true; value: T } | { ok: false; error: ProtocolErrorPayload }) => void;

export interface HospitalServerToClient {
  'fl:instruction': (msg: WireInstruction) => void;
  'fl:stats': (msg: GlobalStatsMessage) => void;
  'fl:run': (msg: RunEvent) => void;
  'fl:error': (err: ProtocolErrorPayload) => void;
}

export interface HospitalClientToServer {
  'fl:result': (msg: StageResult, ack: Ack<{ accepted: true }>) => void;
  'fl:decline': (msg: Decline, ack: Ack<{ recorded: true }>) => void;
  'fl:status': (ack: Ack<ServerStatus>) => void;
}

/** What the dashboard sees live (issue: portal and dashboard). */
export interface DashboardServerToClient {
  'dash:status': (s: ServerStatus) => void;
  'dash:stage': (msg: { run_id: string; round: number; stage: StageName; done: number; total: number; dropped: string[] }) => void;
  /** `completed_at`: the server's time the round was committed; `participation`: every hospital's part in each stage (dropouts, declines). */
  'dash:round': (msg: {
    run_id: string;
    round: number;
    metrics: Record<string, number>;
    per_hospital: Record<string, Record<string, number>>;
    participation: { hospitalId: string; stage: string; status: string; reason?: string }[];
    completed_at: string;
  }) => void;
  'dash:clients': (msg: { hospitals: { hospital_id: string; state: string; host?: string; num_records?: number }[] }) => void;
  'dash:run': (msg: RunEvent) => void;
}
export type DashboardClientToServer = Record<string, never>;

/** Validates with a schema and turns the first zod issue into a named field + message. */
export function validate<T extends z.ZodType>(schema: T, value: unknown): { ok: true; value: z.output<T> } | { ok: false; field: string; message: string } {
  const res = schema.safeParse(value);
  if (res.success) return { ok: true, value: res.data };
  const issue = res.error.issues[0];
  const field = issue ? issue.path.map(String).join('.') || '(payload)' : '(payload)';
  return { ok: false, field, message: `${field}: ${issue?.message ?? 'invalid'}` };
}
