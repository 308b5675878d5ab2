/**
 * MultimodalRiskClassifier (seed spec 2.1) in plain TF.js ops: per-modality encoders, attention
 * fusion over the modality embeddings, and the 3-class risk head.
 *
 * Deviations from the spec, on purpose:
 *  - The LSTM inputs carry the missingness masks too: vitals are 5 values + 5 masks (10 channels),
 *    labs 8 values + 8 masks (16), so the encoders can tell "normal" from "not measured".
 *  - Fusion. The spec concatenates the five embeddings into one 256-vector and runs
 *    MultiheadAttention(256, 8) over that single token; with one token the softmax is exactly 1,
 *    so the "attention" degenerates to two linear maps (V then the output projection). Instead the
 *    five modality embeddings are five tokens of width 256: token k holds embedding k at its own
 *    offset of the 256-d concatenation (clinical 0, lab 128, demographics 192, biology 208,
 *    omics 224; zeros elsewhere) plus a learned modality-type embedding; 8-head self-attention,
 *    residual, LayerNorm, then mean-pooling over the 5 tokens gives the fused 256-vector.
 *  - Dropout between the two LSTM layers uses one mask per sequence (variational dropout, Gal &
 *    Ghahramani, NeurIPS 2016) rather than a fresh mask per time step.
 */
import * as tf from '@tensorflow/tfjs-core';

import { Rng } from '../util/random';
import { constantInit, glorotUniform, normalInit } from './init';
import { initLstmValues, lstmStack, lstmStackAutograd, type LstmWeights } from './lstm';
import { addParam, dropout, dropoutMask, layerNorm, linear, multiHeadSelfAttention, type AttentionWeights, type DropoutSeeds } from './nn';
import { disposeParams, ParamCollector, type Param } from './params';
import type { GradRecorder } from './recorder';

export interface ClassifierConfig {
  /** Channels of `vitals`: 5 vital signs + 5 missingness masks. */
  vitalsChannels: number;
  /** Channels of `labs`: 8 lab values + 8 missingness masks. */
  labChannels: number;
  demographicsDim: number;
  biologyDim: number;
  omicsDim: number;
  clinicalHidden: number;
  labHidden: number;
  /** LSTM layers per sequence encoder. */
  lstmLayers: number;
  demographicsHidden: number;
  demographicsOut: number;
  biologyHidden: number;
  biologyOut: number;
  omicsHidden: number;
  omicsOut: number;
  attentionHeads: number;
  headHidden: readonly number[];
  numClasses: number;
  lstmDropout: number;
  demographicsDropout: number;
  omicsDropout: number;
  attentionDropout: number;
  headDropout: number;
  /** Hand-written BPTT LSTM (`lstmStack`) instead of the autograd reference (`lstmStackAutograd`). */
  fastLstm: boolean;
  /**
   * Multi-task heads (run config `task_weights`): a readmission logit and a days-to-readmission
   * output on the fused vector, after every other parameter, and these weights in `loss` (risk 1).
   * Absent: the single-task model, parameter for parameter.
   */
  taskWeights?: Readonly<TaskWeights> | undefined;
}

/** The seed's other supervised targets, trained as extra heads (run config `task_weights`). */
export const AUX_TASKS = ['readmission_30d', 'days_to_readmission'] as const;
export type AuxTask = (typeof AUX_TASKS)[number];
/** Loss weight of each extra head; the risk head's is 1. */
export type TaskWeights = Record<AuxTask, number>;

/** days_to_readmission is learnt as days / DAYS_SCALE (a target in (0, 1]); predictions are scaled back. */
export const DAYS_SCALE = 30;
/** The days head's initial bias: the middle of days_to_readmission's range 1–30, in DAYS_SCALE units. */
const DAYS_BIAS_INIT = 15.5 / DAYS_SCALE;

/**
 * The extra targets of one minibatch, float32 [B]: `readmission` 1, 0 or −1 (unknown, no loss);
 * `days` the days to readmission, used only where readmission is 1 and days is finite (NaN: unknown).
 */
export interface TaskTargets {
  readmission: tf.Tensor1D;
  days: tf.Tensor1D;
}

export const DEFAULT_CLASSIFIER_CONFIG: Readonly<ClassifierConfig> = Object.freeze({
  vitalsChannels: 10,
  labChannels: 16,
  demographicsDim: 10,
  biologyDim: 20,
  omicsDim: 32,
  clinicalHidden: 128,
  labHidden: 64,
  lstmLayers: 2,
  demographicsHidden: 32,
  demographicsOut: 16,
  biologyHidden: 32,
  biologyOut: 16,
  omicsHidden: 64,
  omicsOut: 32,
  attentionHeads: 8,
  headHidden: Object.freeze([128, 64]),
  numClasses: 3,
  lstmDropout: 0.3,
  demographicsDropout: 0.2,
  omicsDropout: 0.2,
  attentionDropout: 0.1,
  headDropout: 0.3,
  fastLstm: true,
});

/** The model definitions a run can choose (run config `model`); the same on every host. */
export const MODEL_NAMES = ['standard', 'compact'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/**
 * 'standard': the seed spec's model (569k parameters). 'compact': the DP recipe's model (9.3k
 * parameters: one 12-unit LSTM layer per sequence, 4-wide static embeddings, a 16-unit head, no
 * dropout). DP-SGD's noise grows with √(parameters) while the clipped signal does not (Tramèr &
 * Boneh 2021), so under DP the compact model learns where the standard one drowns; dropout, a
 * regulariser, only adds variance to gradients that DP's noise already regularises (measured:
 * +0.03–0.05 AUC-ROC at ε = 1 without it; README, "Differential privacy").
 */
export const MODEL_PRESETS: Readonly<Record<ModelName, Readonly<Partial<ClassifierConfig>>>> = Object.freeze({
  standard: Object.freeze({}),
  compact: Object.freeze({
    clinicalHidden: 12,
    labHidden: 12,
    lstmLayers: 1,
    demographicsHidden: 8,
    demographicsOut: 4,
    biologyHidden: 8,
    biologyOut: 4,
    omicsHidden: 8,
    omicsOut: 4,
    attentionHeads: 2,
    headHidden: Object.freeze([16]),
    lstmDropout: 0,
    demographicsDropout: 0,
    omicsDropout: 0,
    attentionDropout: 0,
    headDropout: 0,
  }),
});

/**
 * A run's overrides of its model preset (run config `hidden_dim`, `dropout`; tuned by `fedcare tune`).
 * `hidden_dim`: the units of the vitals (clinical) LSTM, the widest encoder and the one the seed
 * spec calls "hidden"; the fusion width (its sum with the other embeddings) must stay divisible by
 * the preset's attention heads (8 standard, 2 compact). `dropout`: every dropout rate of the model
 * (LSTM, demographics, omics, attention, head). Absent: the preset's, so existing runs are unchanged.
 */
export interface ModelOptions {
  hidden_dim?: number | undefined;
  dropout?: number | undefined;
  /** Multi-task heads and their loss weights (ClassifierConfig.taskWeights); absent: single task. */
  task_weights?: Readonly<TaskWeights> | undefined;
}

/** The classifier config of a run's `model` with its `hidden_dim` / `dropout` overrides. */
export function modelConfigFor(name: ModelName = 'standard', options: ModelOptions = {}): Partial<ClassifierConfig> {
  const preset = MODEL_PRESETS[name];
  if (!preset) throw new Error(`unknown model "${String(name)}" (${MODEL_NAMES.join(', ')})`);
  const cfg: Partial<ClassifierConfig> = { ...preset };
  if (options.hidden_dim !== undefined) cfg.clinicalHidden = options.hidden_dim;
  if (options.dropout !== undefined) {
    for (const k of ['lstmDropout', 'demographicsDropout', 'omicsDropout', 'attentionDropout', 'headDropout'] as const) cfg[k] = options.dropout;
  }
  if (options.task_weights !== undefined) cfg.taskWeights = { ...options.task_weights };
  return cfg;
}

/** Only the overrides that are set (for instructions and manifests: absent keys keep them identical to before). */
export function modelOptionsOf(c: ModelOptions): ModelOptions | undefined {
  const o: ModelOptions = {};
  if (c.hidden_dim !== undefined) o.hidden_dim = c.hidden_dim;
  if (c.dropout !== undefined) o.dropout = c.dropout;
  if (c.task_weights !== undefined) o.task_weights = { readmission_30d: c.task_weights.readmission_30d, days_to_readmission: c.task_weights.days_to_readmission };
  return Object.keys(o).length ? o : undefined;
}

/** The classifier of a run's `model` (the standard one when absent), with its overrides. */
export function createModel(name: ModelName = 'standard', seed = 0, options: ModelOptions = {}): MultimodalRiskClassifier {
  return createClassifier(modelConfigFor(name, options), seed);
}

/** One minibatch; all float32. T may differ between vitals and labs. */
export interface ClassifierInputs {
  /** [B, T, vitalsChannels] */
  vitals: tf.Tensor3D;
  /** [B, T, labChannels] */
  labs: tf.Tensor3D;
  /** [B, demographicsDim] */
  demographics: tf.Tensor2D;
  /** [B, biologyDim] */
  biology: tf.Tensor2D;
  /** [B, omicsDim] */
  omics: tf.Tensor2D;
}

/** The fusion's five tokens, in order: the two LSTM encoders (vitals, labs), then the three MLPs. */
export const MODALITY_TOKENS = ['vitals', 'labs', 'demographics', 'biology', 'omics'] as const;
export type ModalityToken = (typeof MODALITY_TOKENS)[number];

export interface ForwardOptions {
  /** Dropout on (true) or off (false: deterministic inference). */
  training: boolean;
  /** Dropout seed for this pass; by default each training pass draws the next seed of the model's stream. */
  seed?: number;
  /**
   * Per-example gradient book-keeping for DP-SGD (./recorder.ts): a backward pass through this
   * forward records every parameter use in `recorder` and yields zero parameter gradients.
   */
  recorder?: GradRecorder;
}

export interface MultimodalRiskClassifier {
  readonly config: Readonly<ClassifierConfig>;
  /** Trainable parameters in the fixed order that `flattenWeights` uses. */
  readonly params: readonly Param[];
  /** Width of the fused representation (sum of the embedding widths, 256 by default). */
  readonly fusionDim: number;
  /** True when `options.recorder` is supported (the fast LSTM): DP-SGD then clips in one batched pass. */
  readonly recordsParameterUses: boolean;
  /** The extra heads' loss weights when the model has them (multi-task), else null. */
  readonly taskWeights: Readonly<TaskWeights> | null;
  /** Class logits [B, numClasses]. */
  predictLogits(inputs: ClassifierInputs, options: ForwardOptions): tf.Tensor2D;
  /**
   * Every head from one forward pass (multi-task models only): class logits [B, numClasses], the
   * readmission logit [B] and days to readmission / DAYS_SCALE [B]. The caller disposes all three.
   */
  predictTasks(inputs: ClassifierInputs, options: ForwardOptions): { logits: tf.Tensor2D; readmission: tf.Tensor1D; days: tf.Tensor1D };
  /**
   * Inference (no dropout) with the fusion's attention: logits [B, numClasses] and, per example,
   * the attention each modality token receives [B, 5] (softmax weights averaged over heads and
   * query tokens; each row sums to 1), in MODALITY_TOKENS order. The caller disposes both.
   */
  predictWithAttention(inputs: ClassifierInputs): { logits: tf.Tensor2D; attention: tf.Tensor2D };
  /** The fused, mean-pooled representation [B, fusionDim] that feeds the head. */
  embed(inputs: ClassifierInputs, options: ForwardOptions): tf.Tensor2D;
  /**
   * Mean softmax cross-entropy over the batch. `labels`: class ids [B] (int32) or one-hot /
   * soft targets [B, numClasses] (float32). With `targets` on a multi-task model, plus
   * w_readmission · (mean BCE over rows whose readmission is known) + w_days · (mean squared error of
   * days / DAYS_SCALE over the readmitted rows).
   */
  loss(inputs: ClassifierInputs, labels: tf.Tensor1D | tf.Tensor2D, options: ForwardOptions, targets?: TaskTargets): tf.Scalar;
  dispose(): void;
}

interface Dense {
  W: tf.Variable<tf.Rank.R2>;
  b: tf.Variable<tf.Rank.R1>;
}

function addDense(pc: ParamCollector, rng: Rng, name: string, inDim: number, outDim: number): Dense {
  return {
    W: pc.add(`${name}.kernel`, [inDim, outDim], glorotUniform(rng, inDim, outDim)) as tf.Variable<tf.Rank.R2>,
    b: pc.add(`${name}.bias`, [outDim], constantInit([outDim], 0)) as tf.Variable<tf.Rank.R1>,
  };
}

function addLstm(pc: ParamCollector, rng: Rng, name: string, inDim: number, units: number, layers: number): LstmWeights[] {
  const out: LstmWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const v = initLstmValues(rng, l === 0 ? inDim : units, units);
    const I = l === 0 ? inDim : units;
    out.push({
      W: pc.add(`${name}.lstm${l}.kernel`, [I, 4 * units], v.W) as tf.Variable<tf.Rank.R2>,
      U: pc.add(`${name}.lstm${l}.recurrent_kernel`, [units, 4 * units], v.U) as tf.Variable<tf.Rank.R2>,
      b: pc.add(`${name}.lstm${l}.bias`, [4 * units], v.b) as tf.Variable<tf.Rank.R1>,
    });
  }
  return out;
}

function validateConfig(c: ClassifierConfig): number {
  const dims = [c.clinicalHidden, c.labHidden, c.demographicsOut, c.biologyOut, c.omicsOut];
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) throw new Error(`classifier config: ${k} must be a non-negative number, got ${v}`);
  }
  if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new Error('classifier config: embedding widths must be positive integers');
  if (!Number.isInteger(c.lstmLayers) || c.lstmLayers < 1) throw new Error('classifier config: lstmLayers must be >= 1');
  const fusionDim = dims.reduce((a, b) => a + b, 0);
  if (fusionDim % c.attentionHeads !== 0) {
    throw new Error(`classifier config: fusion width ${fusionDim} is not divisible by ${c.attentionHeads} attention heads`);
  }
  for (const r of [c.lstmDropout, c.demographicsDropout, c.omicsDropout, c.attentionDropout, c.headDropout]) {
    if (!(r >= 0 && r < 1)) throw new Error(`classifier config: dropout rates must be in [0, 1), got ${r}`);
  }
  return fusionDim;
}

function checkTaskWeights(w: Readonly<TaskWeights>): TaskWeights {
  for (const k of AUX_TASKS) {
    const v = w[k];
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new Error(`classifier config: taskWeights.${k} must be a finite number >= 0, got ${String(v)}`);
  }
  return { readmission_30d: w.readmission_30d, days_to_readmission: w.days_to_readmission };
}

/**
 * The extra heads' losses, each a masked mean (a scalar; 0 when no row counts). Readmission: sigmoid
 * binary cross-entropy over the rows whose readmission is known. Days: squared error of
 * days / DAYS_SCALE over the readmitted rows only — the target is bounded (1–30 days), so Huber's
 * robustness to outliers buys nothing, and the mean squared error is what RMSE measures.
 */
export function taskLosses(readmissionLogits: tf.Tensor1D, daysOut: tf.Tensor1D, targets: TaskTargets): { readmission: tf.Scalar; days: tf.Scalar } {
  return tf.tidy(() => {
    const B = readmissionLogits.shape[0];
    if (targets.readmission.shape[0] !== B || targets.days.shape[0] !== B) throw new Error(`loss: task targets [${targets.readmission.shape[0]}], [${targets.days.shape[0]}] for a batch of ${B}`);
    const y = tf.cast(targets.readmission, 'float32');
    const known = tf.cast(tf.greaterEqual(y, 0), 'float32');
    const l = readmissionLogits;
    // max(l, 0) − l·y + log(1 + e^−|l|): the stable form of −y·log σ(l) − (1 − y)·log(1 − σ(l)).
    const bce = tf.add(tf.sub(tf.relu(l), tf.mul(l, y)), tf.log1p(tf.exp(tf.neg(tf.abs(l)))));
    const readmission = tf.div(tf.sum(tf.mul(bce, known)), tf.maximum(tf.sum(known), 1)) as tf.Scalar;
    const readmitted = tf.logicalAnd(tf.equal(y, 1), tf.isFinite(targets.days));
    // Rows not readmitted: error 0 and no gradient (Select passes dy only where chosen), whatever their days hold, NaN included.
    const err = tf.where(readmitted, tf.sub(daysOut, tf.div(tf.cast(targets.days, 'float32'), DAYS_SCALE)), tf.zerosLike(daysOut));
    const days = tf.div(tf.sum(tf.square(err)), tf.maximum(tf.sum(tf.cast(readmitted, 'float32')), 1)) as tf.Scalar;
    return { readmission, days };
  });
}

function checkInput(name: string, t: tf.Tensor, rank: number, lastDim: number, batch?: number): void {
  const ok = t.rank === rank && t.shape[rank - 1] === lastDim && (batch === undefined || t.shape[0] === batch) && t.dtype === 'float32';
  if (!ok) {
    throw new Error(
      `classifier input ${name}: expected float32 rank ${rank} with last dimension ${lastDim}` +
        `${batch === undefined ? '' : ` and batch ${batch}`}, got ${t.dtype} [${t.shape.join(', ')}]`,
    );
  }
}

/**
 * Builds a classifier with deterministic initial weights: the same `seed` gives bit-identical
 * parameters on every host.
 */
export function createClassifier(config: Partial<ClassifierConfig> = {}, seed = 0): MultimodalRiskClassifier {
  const cfg: ClassifierConfig = { ...DEFAULT_CLASSIFIER_CONFIG, ...config };
  const fusionDim = validateConfig(cfg);
  const rng = new Rng(`model/classifier/${seed}`);
  const dropoutStream = new Rng(`model/classifier/${seed}/dropout`);
  const pc = new ParamCollector();

  const clinical = addLstm(pc, rng, 'clinical', cfg.vitalsChannels, cfg.clinicalHidden, cfg.lstmLayers);
  const lab = addLstm(pc, rng, 'lab', cfg.labChannels, cfg.labHidden, cfg.lstmLayers);
  const demo = [
    addDense(pc, rng, 'demographics.dense0', cfg.demographicsDim, cfg.demographicsHidden),
    addDense(pc, rng, 'demographics.dense1', cfg.demographicsHidden, cfg.demographicsOut),
  ];
  const bio = [
    addDense(pc, rng, 'biology.dense0', cfg.biologyDim, cfg.biologyHidden),
    addDense(pc, rng, 'biology.dense1', cfg.biologyHidden, cfg.biologyOut),
  ];
  const omics = [
    addDense(pc, rng, 'omics.dense0', cfg.omicsDim, cfg.omicsHidden),
    addDense(pc, rng, 'omics.dense1', cfg.omicsHidden, cfg.omicsOut),
  ];
  const modalityEmbedding = pc.add('fusion.modality_embedding', [5, fusionDim], normalInit(rng, [5, fusionDim], 0.02)) as tf.Variable<tf.Rank.R2>;
  const attnDense = ['query', 'key', 'value', 'output'].map((n) => addDense(pc, rng, `fusion.attention.${n}`, fusionDim, fusionDim));
  const attention: AttentionWeights = {
    Wq: attnDense[0]!.W, bq: attnDense[0]!.b,
    Wk: attnDense[1]!.W, bk: attnDense[1]!.b,
    Wv: attnDense[2]!.W, bv: attnDense[2]!.b,
    Wo: attnDense[3]!.W, bo: attnDense[3]!.b,
  };
  const normGamma = pc.add('fusion.norm.gamma', [fusionDim], constantInit([fusionDim], 1)) as tf.Variable<tf.Rank.R1>;
  const normBeta = pc.add('fusion.norm.beta', [fusionDim], constantInit([fusionDim], 0)) as tf.Variable<tf.Rank.R1>;
  const headSizes = [fusionDim, ...cfg.headHidden, cfg.numClasses];
  const head = headSizes.slice(1).map((out, k) => addDense(pc, rng, `head.dense${k}`, headSizes[k]!, out));
  // Drawn after everything else: the single-task parameters (and their initial values) are a prefix.
  const taskWeights = cfg.taskWeights ? Object.freeze(checkTaskWeights(cfg.taskWeights)) : null;
  const aux = taskWeights
    ? {
        readmission: addDense(pc, rng, 'aux.readmission', fusionDim, 1),
        days: {
          // Starts as the constant 15.5 days (the middle of the target's range, a prior that needs no data):
          // Glorot's kernel on the 256-wide fused vector would start with a spread of ±40 days instead.
          W: pc.add('aux.days.kernel', [fusionDim, 1], constantInit([fusionDim, 1], 0)) as tf.Variable<tf.Rank.R2>,
          b: pc.add('aux.days.bias', [1], constantInit([1], DAYS_BIAS_INIT)) as tf.Variable<tf.Rank.R1>,
        },
      }
    : null;
  const params: readonly Param[] = Object.freeze([...pc.params]);

  // Offsets of each embedding inside the fusion width: clinical, lab, demographics, biology, omics.
  const widths = [cfg.clinicalHidden, cfg.labHidden, cfg.demographicsOut, cfg.biologyOut, cfg.omicsOut];
  const offsets = widths.map((_, k) => widths.slice(0, k).reduce((a, b) => a + b, 0));
  const blockMask = new Float32Array(5 * fusionDim);
  widths.forEach((w, k) => blockMask.fill(1, k * fusionDim + offsets[k]!, k * fusionDim + offsets[k]! + w));
  const tokenMask = tf.tensor2d(blockMask, [5, fusionDim]); // constant, disposed with the model

  const seedsFor = (options: ForwardOptions): DropoutSeeds => {
    if (!options.training) return null;
    const stream = options.seed === undefined ? dropoutStream : new Rng(`model/classifier/dropout/${options.seed}`);
    return () => stream.nextU32();
  };

  const encodeSequence = (x: tf.Tensor3D, layers: LstmWeights[], units: number, seeds: DropoutSeeds, recorder?: GradRecorder): tf.Tensor2D => {
    const B = x.shape[0];
    const masks = layers.slice(1).map(() =>
      seeds && cfg.lstmDropout > 0 ? (dropoutMask([B, units], cfg.lstmDropout, seeds()) as tf.Tensor2D) : null,
    );
    const opts = recorder ? { interLayerMasks: masks, recorder } : { interLayerMasks: masks };
    return cfg.fastLstm ? lstmStack(x, layers, opts) : lstmStackAutograd(x, layers, opts);
  };

  const mlp = (x: tf.Tensor2D, layers: Dense[], rate: number, seeds: DropoutSeeds, recorder?: GradRecorder): tf.Tensor2D => {
    const [l0, l1] = layers as [Dense, Dense];
    return linear(dropout(tf.relu(linear(x, l0.W, l0.b, recorder)), rate, seeds), l1.W, l1.b, recorder);
  };

  const embedRaw = (inputs: ClassifierInputs, seeds: DropoutSeeds, recorder?: GradRecorder, onAttention?: (probs: tf.Tensor4D) => void): tf.Tensor2D => {
    const B = inputs.demographics.shape[0];
    checkInput('vitals', inputs.vitals, 3, cfg.vitalsChannels, B);
    checkInput('labs', inputs.labs, 3, cfg.labChannels, B);
    checkInput('demographics', inputs.demographics, 2, cfg.demographicsDim, B);
    checkInput('biology', inputs.biology, 2, cfg.biologyDim, B);
    checkInput('omics', inputs.omics, 2, cfg.omicsDim, B);
    const embeddings = [
      encodeSequence(inputs.vitals, clinical, cfg.clinicalHidden, seeds, recorder),
      encodeSequence(inputs.labs, lab, cfg.labHidden, seeds, recorder),
      mlp(inputs.demographics, demo, cfg.demographicsDropout, seeds, recorder),
      mlp(inputs.biology, bio, 0, seeds, recorder),
      mlp(inputs.omics, omics, cfg.omicsDropout, seeds, recorder),
    ];
    // Token k = embedding k at its offset of the fusion width (zeros elsewhere) + type embedding k:
    // the concatenation broadcast over 5 tokens times a 0/1 block mask (wasm's Pad is very slow).
    const tokens = addParam(
      tf.mul(tf.expandDims(tf.concat(embeddings, 1), 1), tokenMask) as tf.Tensor3D,
      modalityEmbedding,
      recorder,
    ); // [B, 5, fusionDim]
    const attended = multiHeadSelfAttention(tokens, attention, cfg.attentionHeads, cfg.attentionDropout, seeds, recorder, onAttention);
    const normed = layerNorm(tf.reshape(tf.add(tokens, attended), [B * 5, fusionDim]), normGamma, normBeta, 1e-5, recorder, 5);
    return tf.mean(tf.reshape(normed, [B, 5, fusionDim]), 1);
  };

  const forwardRaw = (inputs: ClassifierInputs, seeds: DropoutSeeds, recorder?: GradRecorder, onAttention?: (probs: tf.Tensor4D) => void) => {
    const fused = embedRaw(inputs, seeds, recorder, onAttention);
    let x = fused;
    head.forEach((layer, k) => {
      x = linear(x, layer.W, layer.b, recorder);
      if (k < head.length - 1) x = dropout(tf.relu(x), k === 0 ? cfg.headDropout : 0, seeds);
    });
    return { fused, logits: x };
  };
  const logitsRaw = (inputs: ClassifierInputs, seeds: DropoutSeeds, recorder?: GradRecorder, onAttention?: (probs: tf.Tensor4D) => void): tf.Tensor2D =>
    forwardRaw(inputs, seeds, recorder, onAttention).logits;
  const auxRaw = (fused: tf.Tensor2D, recorder?: GradRecorder) => {
    if (!aux) throw new Error('this classifier has no multi-task heads (run config task_weights)');
    const B = fused.shape[0];
    return {
      readmission: tf.reshape(linear(fused, aux.readmission.W, aux.readmission.b, recorder), [B]) as tf.Tensor1D,
      days: tf.reshape(linear(fused, aux.days.W, aux.days.b, recorder), [B]) as tf.Tensor1D,
    };
  };

  let disposed = false;
  const live = (): void => {
    if (disposed) throw new Error('classifier has been disposed');
  };

  return {
    config: Object.freeze({ ...cfg }),
    params,
    fusionDim,
    recordsParameterUses: cfg.fastLstm,
    taskWeights,
    predictTasks(inputs, options) {
      live();
      return tf.tidy(() => {
        const { fused, logits } = forwardRaw(inputs, seedsFor(options), options.recorder);
        return { logits, ...auxRaw(fused, options.recorder) };
      });
    },
    predictLogits(inputs, options) {
      live();
      return tf.tidy(() => logitsRaw(inputs, seedsFor(options), options.recorder));
    },
    predictWithAttention(inputs) {
      live();
      let attention: tf.Tensor2D | undefined;
      const logits = tf.tidy(() => logitsRaw(inputs, null, undefined, (probs) => (attention = tf.keep(tf.mean(probs, [1, 2]) as tf.Tensor2D))));
      return { logits, attention: attention as tf.Tensor2D };
    },
    embed(inputs, options) {
      live();
      return tf.tidy(() => embedRaw(inputs, seedsFor(options), options.recorder));
    },
    loss(inputs, labels, options, tasks) {
      live();
      return tf.tidy(() => {
        const { fused, logits } = forwardRaw(inputs, seedsFor(options), options.recorder);
        const B = logits.shape[0];
        let targets: tf.Tensor2D;
        if (labels.rank === 1) {
          if (labels.shape[0] !== B) throw new Error(`loss: ${labels.shape[0]} labels for a batch of ${B}`);
          // int32 one-hot, then cast: wasm's OneHot writes int bits into a float32 output.
          targets = tf.cast(tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, cfg.numClasses), 'float32') as tf.Tensor2D;
        } else {
          if (labels.shape[0] !== B || labels.shape[1] !== cfg.numClasses) {
            throw new Error(`loss: targets [${labels.shape.join(', ')}] for logits [${B}, ${cfg.numClasses}]`);
          }
          targets = tf.cast(labels as tf.Tensor2D, 'float32');
        }
        const risk = tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1))) as tf.Scalar;
        if (!tasks || !taskWeights) return risk;
        const out = auxRaw(fused, options.recorder);
        const { readmission, days } = taskLosses(out.readmission, out.days, tasks);
        return tf.addN([risk, tf.mul(readmission, taskWeights.readmission_30d), tf.mul(days, taskWeights.days_to_readmission)]) as tf.Scalar;
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      disposeParams(params);
      tokenMask.dispose();
    },
  };
}

/** Parameter count of a classifier with this config, without building it. */
export function classifierParamCount(config: Partial<ClassifierConfig> = {}): number {
  const c: ClassifierConfig = { ...DEFAULT_CLASSIFIER_CONFIG, ...config };
  const fusionDim = validateConfig(c);
  const dense = (i: number, o: number) => i * o + o;
  const lstmParams = (inDim: number, h: number) => {
    let n = 0;
    for (let l = 0; l < c.lstmLayers; l++) n += (l === 0 ? inDim : h) * 4 * h + h * 4 * h + 4 * h;
    return n;
  };
  const headSizes = [fusionDim, ...c.headHidden, c.numClasses];
  return (
    (c.taskWeights ? 2 * dense(fusionDim, 1) : 0) +
    lstmParams(c.vitalsChannels, c.clinicalHidden) +
    lstmParams(c.labChannels, c.labHidden) +
    dense(c.demographicsDim, c.demographicsHidden) + dense(c.demographicsHidden, c.demographicsOut) +
    dense(c.biologyDim, c.biologyHidden) + dense(c.biologyHidden, c.biologyOut) +
    dense(c.omicsDim, c.omicsHidden) + dense(c.omicsHidden, c.omicsOut) +
    5 * fusionDim + 4 * dense(fusionDim, fusionDim) + 2 * fusionDim +
    headSizes.slice(1).reduce((n, o, k) => n + dense(headSizes[k]!, o), 0)
  );
}

