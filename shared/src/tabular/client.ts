/**
 * A hospital whose data is a table (a CSV) rather than patient records: the same HospitalClient —
 * identity keys, pins, SecAgg+ and HE stages, privacy ledger — with the tabular task's
 * preprocessing (./schema.ts), the MLP (./mlp.ts) and its training loop (./train.ts). Only the
 * shape (column names and types, locally frequent categories, classes), the sums (masked with
 * secure aggregation), model weights and metrics leave; never a row.
 */
import { HospitalClient, type EvaluateReply, type HospitalClientOptions, type TrainReply } from '../fl/client';
import { PrivacyBudgetError } from '../fl/privacy-ledger';
import { countParams } from '../model/params';
import { sha256Hex, unflattenWeights, weightsFromBytes, weightsToBytes, flattenWeights } from '../model/weights';
import { ProtocolError } from '../protocol/errors';
import type { Instruction, TabularPreprocessWire } from '../protocol/messages';
import { dpSchedule } from '../privacy/schedule';
import { splitMetrics } from '../train/metrics';
import { hashUnit } from '../util/random';
import type { TabularTable } from './csv';
import { mlpConfigFor, TabularMlp, type MlpConfig } from './mlp';
import { describeTable, encodeTable, summarise, type TabularData, type TabularPreprocessReply, type TabularSchema } from './schema';
import { evaluateTabular, labelledRows, trainTabular } from './train';

/** Fractions of a hospital's rows held out: test 20 %, then validation 10 % of the rest (as the risk task's). */
export const TABULAR_TEST_FRACTION = 0.2;
export const TABULAR_VALIDATION_FRACTION = 0.1;

/** A row's split, from a hash of its cells: the same row lands in the same split whatever the file order. */
export function tabularSplitOf(row: readonly string[]): 'train' | 'val' | 'test' {
  const key = row.join('\u001f');
  if (hashUnit(`tabular/test/${key}`) < TABULAR_TEST_FRACTION) return 'test';
  return hashUnit(`tabular/val/${key}`) < TABULAR_VALIDATION_FRACTION ? 'val' : 'train';
}

export function splitTable(table: TabularTable): Record<'train' | 'val' | 'test', TabularTable> {
  const out = { train: [] as (readonly string[])[], val: [] as (readonly string[])[], test: [] as (readonly string[])[] };
  for (const r of table.rows) out[tabularSplitOf(r)].push(r);
  return { train: { columns: table.columns, rows: out.train }, val: { columns: table.columns, rows: out.val }, test: { columns: table.columns, rows: out.test } };
}


/** Risk-task metric names that mean nothing for a table's classes. */
const RISK_ONLY = ['accuracy_low_risk', 'accuracy_medium_risk', 'accuracy_high_risk'];

export class TabularHospitalClient extends HospitalClient {
  readonly table: Record<'train' | 'val' | 'test', TabularTable>;
  private schema: { runId: string; schema: TabularSchema } | undefined;
  private encodedTables: { train: TabularData; val: TabularData; test: TabularData } | undefined;
  private mlp: { key: string; model: TabularMlp } | undefined;

  constructor(hospitalId: string, table: TabularTable, options: HospitalClientOptions = {}) {
    super(hospitalId, [], options);
    this.table = splitTable(table);
  }

  override get numTrainExamples(): number {
    return this.table.train.rows.length;
  }

  /** Phase 1: the shape; phase 2: the sums over the layout (held for SecAgg+ when `secure`). On the training split only. */
  tabularPreprocess(runId: string, wire: TabularPreprocessWire, secure: boolean): TabularPreprocessReply {
    if (!wire.layout) return { tabular_shape: describeTable(this.table.train, wire.task) };
    const sums = summarise(this.table.train, wire.layout);
    if (!secure) return { tabular_sums: Array.from(sums) };
    this.held = { runId, round: 0, delta: sums, weight: 1 };
    return {};
  }

  /** Installs the run's schema (from `fl:stats`); the splits are encoded with it on first use. */
  setTabularSchema(runId: string, schema: TabularSchema): void {
    this.schema = { runId, schema };
    this.encodedTables = undefined;
  }

  override hasStatsFor(runId: string): boolean {
    return this.schema?.runId === runId;
  }

  override featureSums(): never {
    throw new ProtocolError('INVALID_PAYLOAD', 'this hospital holds a table, not patient records: it takes part in tabular runs only', 'stage');
  }

  override holdFeatureSums(): never {
    return this.featureSums();
  }

  override setStats(): void {
    // A risk run's statistics: this hospital will decline its stages (featureSums / fit say why).
  }

  private tabularData(runId: string) {
    const s = this.schema;
    if (!s || s.runId !== runId) throw new ProtocolError('WRONG_STAGE', `no tabular schema for run ${runId} yet`, 'run_id');
    this.encodedTables ??= { train: encodeTable(this.table.train, s.schema), val: encodeTable(this.table.val, s.schema), test: encodeTable(this.table.test, s.schema) };
    return { schema: s.schema, data: this.encodedTables };
  }

  private async load(schema: TabularSchema, weights: Uint8Array, sha: string, options: { hidden_dim?: number | undefined; dropout?: number | undefined } = {}): Promise<TabularMlp> {
    if ((await sha256Hex(weights)) !== sha) throw new ProtocolError('CHECKSUM_MISMATCH', 'global weights do not match their SHA-256', 'weights_sha256');
    const cfg: MlpConfig = mlpConfigFor(schema, options);
    const key = JSON.stringify(cfg);
    if (this.mlp && this.mlp.key !== key) {
      this.mlp.model.dispose();
      this.mlp = undefined;
    }
    const flat = weightsFromBytes(weights);
    const model = this.mlp?.model ?? new TabularMlp(cfg, undefined, this.options.modelSeed ?? 0);
    this.mlp = { key, model };
    const expected = countParams(model.params);
    if (flat.length !== expected) throw new ProtocolError('INVALID_PAYLOAD', `global weights hold ${flat.length} values; the tabular MLP has ${expected}`, 'weights');
    unflattenWeights(model.params, flat);
    return model;
  }

  override async fit(instr: Extract<Instruction, { stage: 'train' }>): Promise<TrainReply> {
    const { schema, data } = this.tabularData(instr.run_id);
    const model = await this.load(schema, instr.weights, instr.weights_sha256, instr.config.model_options);
    const rows = labelledRows(data.train);
    if (rows.length === 0) throw new Error('no labelled rows to train on');
    const dp = instr.config.dp;
    const cap = this.options.maxEpsilon;
    if (cap !== undefined && !dp) throw new Error(`this hospital trains only with differential privacy (its ε cap is ${cap}); the run has none`);
    let privacy: { sampleRate: number; steps: number; epsilon: number } | undefined;
    const ledger = dp ? await this.privacyLedger() : undefined;
    if (dp && ledger) {
      if (dp.delta >= 1 / rows.length) throw new Error(`delta ${dp.delta} must be < 1/n = ${(1 / rows.length).toExponential(2)} for this hospital's ${rows.length} training rows`);
      const { sampleRate, steps } = dpSchedule(rows.length, instr.config.batch_size, instr.config.local_epochs);
      const epsilon = ledger.preview(sampleRate, dp.noise_multiplier, steps, dp.delta);
      const target = Math.min(dp.target_epsilon, cap ?? Number.POSITIVE_INFINITY);
      if (epsilon > target) throw new PrivacyBudgetError(ledger.spent(dp.delta), epsilon, target);
      privacy = { sampleRate, steps, epsilon };
    }
    const result = await trainTabular(
      model,
      data.train,
      {
        epochs: instr.config.local_epochs,
        batchSize: instr.config.batch_size,
        learningRate: instr.config.learning_rate,
        seed: instr.config.seed,
        proximalMu: instr.config.proximal_mu,
        ...(dp ? { dp: { noiseMultiplier: dp.noise_multiplier, maxGradNorm: dp.max_grad_norm } } : {}),
      },
      () => this.options.onProgress?.({ stage: 'train', round: instr.round }),
    );
    const local = await flattenWeights(model.params);
    const bytes = weightsToBytes(local);
    const secure = instr.config.secure_aggregation !== undefined;
    if (secure) {
      const global = weightsFromBytes(instr.weights);
      const delta = new Float32Array(local.length);
      for (let i = 0; i < delta.length; i++) delta[i] = (local[i] as number) - (global[i] as number);
      this.held = { runId: instr.run_id, round: instr.round, delta, weight: result.samples };
    }
    const weightsOut = secure ? {} : { weights: bytes, weights_sha256: await sha256Hex(bytes) };
    if (privacy && dp && ledger) {
      await ledger.charge({ run_id: instr.run_id, round: instr.round, sample_rate: privacy.sampleRate, noise_multiplier: dp.noise_multiplier, steps: privacy.steps });
      // Only the noised weights leave: nothing measured on the training rows.
      return { ...weightsOut, num_samples: result.samples, metrics: { train_seconds: result.seconds, privacy_epsilon: privacy.epsilon, privacy_delta: dp.delta, noise_multiplier: dp.noise_multiplier, dp_sample_rate: privacy.sampleRate, dp_steps: privacy.steps } };
    }
    const trainEval = await evaluateTabular(model, data.train, rows);
    return { ...weightsOut, num_samples: result.samples, metrics: { train_loss: trainEval.loss, train_accuracy: trainEval.accuracy, local_epoch_loss: result.lastLoss, train_seconds: result.seconds } };
  }

  override async evaluate(instr: Extract<Instruction, { stage: 'evaluate' }>): Promise<EvaluateReply> {
    const { schema, data } = this.tabularData(instr.run_id);
    const model = await this.load(schema, instr.weights, instr.weights_sha256, instr.model_options);
    this.options.onProgress?.({ stage: 'evaluate', round: instr.round });
    const testRows = labelledRows(data.test);
    if (testRows.length === 0) throw new Error('no labelled rows in this hospital\'s test split');
    const test = await evaluateTabular(model, data.test, testRows);
    const metrics: Record<string, number> = { ...splitMetrics('test', test) };
    for (const k of RISK_ONLY) delete metrics[k];
    const valRows = labelledRows(data.val);
    if (valRows.length > 0) {
      const val = await evaluateTabular(model, data.val, valRows);
      metrics.val_loss = val.loss;
      metrics.val_accuracy = val.accuracy;
      metrics.val_auc_roc = val.auc_roc;
    }
    metrics.accuracy = test.accuracy;
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) delete metrics[k];
    return { num_examples: test.num_examples, metrics };
  }

  override dispose(): void {
    this.mlp?.model.dispose();
    this.mlp = undefined;
    super.dispose();
  }
}
