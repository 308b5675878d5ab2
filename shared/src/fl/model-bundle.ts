/**
 * The exported model ("fedcare" format, `fedcare export`): everything needed to go from records to
 * probabilities exactly as the portal does, with no coordinator and no TF.js knowledge of the run.
 *
 *   model.json    this manifest: the model definition and its parameters' names, shapes and
 *                 offsets into weights.bin; the run's global feature statistics (normalisation,
 *                 the omics PCA basis) with the sequence length and observation window; the
 *                 vocabularies the features are coded with; the temperature; SHA-256s
 *   weights.bin   the parameters, little-endian float32, concatenated in manifest order
 *   model.onnx    (`--format onnx` only) the same model as an ONNX graph; `onnx` in the manifest
 *                 names its SHA-256, opset, inputs and outputs (apps/cli/src/onnx/onnx.ts)
 *
 * Scoring a bundle (`scoreWithBundle`) is the portal's own code (../train/score.ts): the same
 * feature encoding, the same model, so the same probabilities on the same backend.
 */
import { z } from 'zod';
import { encodeRecords, type FeatureBatch, type FeatureStats } from '../data/features';
import { OBSERVATION_WINDOW_DAYS } from '../data/generator';
import type { PatientRecord } from '../data/schema';
import { COMORBIDITIES, ETHNICITIES, GENES, LAB_NAMES, MARKER_NAMES, METABOLITES, RISK_LEVELS, VITAL_NAMES } from '../data/vocabulary';
import { createModel, MODALITY_TOKENS, MODEL_NAMES, modelOptionsOf, type ModelName, type ModelOptions, type MultimodalRiskClassifier } from '../model/classifier';
import { sha256Hex, unflattenWeights, weightManifest, weightsFromBytes } from '../model/weights';
import { globalStatsSchema, taskWeightsSchema } from '../protocol/messages';
import { scoreBatch, type PatientScore } from '../train/score';
import { isTabularSchema } from '../tabular/schema';
import type { ModelSelector, RoundMetrics, RunRecord, Store } from './store';
import { TABULAR_BUNDLE_FORMAT, tabularModelBundle, type TabularModelBundle } from './tabular-bundle';

export const MODEL_BUNDLE_FORMAT = 'fedcare-model/1';
export const BUNDLE_WEIGHTS_FILE = 'weights.bin';
export const BUNDLE_ONNX_FILE = 'model.onnx';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
export const modelBundleSchema = z.object({
  format: z.literal(MODEL_BUNDLE_FORMAT),
  run_id: z.string().min(1),
  round: z.number().int().min(1),
  model: z.enum(MODEL_NAMES),
  /** The run's overrides of the model preset (run config hidden_dim / dropout / task_weights); absent: the preset. */
  model_options: z.strictObject({ hidden_dim: z.number().int().min(2).max(1024).optional(), dropout: z.number().min(0).max(0.9).optional(), task_weights: taskWeightsSchema.optional() }).optional(),
  /** Records in: the feature pipeline's settings and the run's global statistics. */
  features: z.object({ seq_len: z.number().int().min(2), window_days: z.number().positive(), stats: globalStatsSchema.shape.stats, stats_sha256: sha }),
  /** Probabilities out: softmax(logits / temperature); 1 when the run did not calibrate. */
  temperature: z.number().positive(),
  classes: z.array(z.string()).length(3),
  modalities: z.array(z.string()).length(5),
  vocabulary: z.record(z.string(), z.array(z.string())),
  weights: z.object({
    file: z.literal(BUNDLE_WEIGHTS_FILE),
    sha256: sha,
    float32_count: z.number().int().min(1),
    params: z.array(z.object({ name: z.string(), shape: z.array(z.number().int().min(1)), offset: z.number().int().min(0) })),
  }),
  /** An ONNX export's graph file (same weights, same temperature); absent in the fedcare format. */
  onnx: z
    .object({ file: z.literal(BUNDLE_ONNX_FILE), sha256: sha, opset: z.number().int().min(1), ir_version: z.number().int().min(1), inputs: z.array(z.string()), outputs: z.array(z.string()) })
    .optional(),
  created_at: z.string(),
});
export type ModelBundle = z.output<typeof modelBundleSchema>;

/** The temperature a round's calibration picked (../train/calibration.ts), 1 when it has none. */
export function temperatureOf(rounds: readonly { round: number; metrics: Readonly<Record<string, number>> }[], round: number): number {
  const t = rounds.find((r) => r.round === round)?.metrics.temperature;
  return t !== undefined && Number.isFinite(t) && t > 0 ? t : 1;
}

/** Stable JSON of the statistics, for their SHA-256. */
const statsJson = (stats: FeatureStats) => JSON.stringify(stats);

/** The manifest for a run's model: `weights` its float32 bytes, `stats` the run's global statistics. */
export async function modelBundle(o: { runId: string; round: number; model: ModelName; modelOptions?: ModelOptions | undefined; seqLen: number; stats: FeatureStats; weights: Uint8Array; temperature?: number; createdAt?: string }): Promise<ModelBundle> {
  const options = modelOptionsOf(o.modelOptions ?? {});
  const probe = createModel(o.model, 0, options);
  const manifest = weightManifest(probe.params);
  probe.dispose();
  if (o.weights.byteLength !== manifest.total * 4) throw new Error(`the ${o.model} model has ${manifest.total} parameters; the stored weights hold ${o.weights.byteLength / 4}`);
  const bundle: ModelBundle = {
    format: MODEL_BUNDLE_FORMAT,
    run_id: o.runId,
    round: o.round,
    model: o.model,
    ...(options ? { model_options: options } : {}),
    features: { seq_len: o.seqLen, window_days: OBSERVATION_WINDOW_DAYS, stats: o.stats, stats_sha256: await sha256Hex(new TextEncoder().encode(statsJson(o.stats))) },
    temperature: o.temperature ?? 1,
    classes: [...RISK_LEVELS],
    modalities: [...MODALITY_TOKENS],
    vocabulary: {
      vitals: [...VITAL_NAMES],
      labs: [...LAB_NAMES],
      markers: [...MARKER_NAMES],
      genes: [...GENES],
      metabolites: [...METABOLITES],
      comorbidities: [...COMORBIDITIES],
      ethnicities: [...ETHNICITIES],
    },
    weights: { file: BUNDLE_WEIGHTS_FILE, sha256: await sha256Hex(o.weights), float32_count: manifest.total, params: manifest.entries.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset })) },
    created_at: o.createdAt ?? new Date().toISOString(),
  };
  return modelBundleSchema.parse(bundle);
}

/**
 * A run's stored model as an export; a tabular run's (`tabular`: its MLP and schema, never read as
 * the risk model); or what the store lacks for one.
 */
export type StoredBundle = { bundle: ModelBundle; weights: Uint8Array } | { tabular: TabularModelBundle; weights: Uint8Array } | { missing: 'model' | 'stats' };

/**
 * The export of a run's stored model `which` (`fedcare export`, `fedcare report`, the REST model
 * route): its manifest with the run's statistics and the temperature of its round. The TF.js backend
 * must be ready (the layout is read off a built model).
 */
export async function storedBundle(store: Pick<Store, 'getModel' | 'getFeatureStats'>, run: RunRecord, rounds: readonly RoundMetrics[], which: ModelSelector): Promise<StoredBundle> {
  const stored = await store.getModel(run.runId, which);
  if (!stored) return { missing: 'model' };
  const stats = await store.getFeatureStats(run.runId);
  if (!stats) return { missing: 'stats' };
  if (isTabularSchema(stats)) return { tabular: await tabularModelBundle({ run, round: stored.round, schema: stats, weights: stored.bytes }), weights: stored.bytes };
  const bundle = await modelBundle({
    runId: run.runId,
    round: stored.round,
    model: (run.config.model ?? 'standard') as ModelName,
    modelOptions: { hidden_dim: run.config.hidden_dim as number | undefined, dropout: run.config.dropout as number | undefined, task_weights: run.config.task_weights as ModelOptions['task_weights'] },
    seqLen: Number(run.config.seq_len),
    stats,
    weights: stored.bytes,
    temperature: temperatureOf(rounds, stored.round),
  });
  return { bundle, weights: stored.bytes };
}

/** A bundle's model with its weights in, after checking every SHA-256 and shape; the caller disposes it. */
export async function loadBundle(manifestJson: unknown, weights: Uint8Array): Promise<{ bundle: ModelBundle; model: MultimodalRiskClassifier }> {
  const format = (manifestJson as { format?: unknown } | null)?.format;
  if (format === TABULAR_BUNDLE_FORMAT) throw new Error(`model.json is the model of tabular run ${String((manifestJson as { run_id?: unknown }).run_id)} (${TABULAR_BUNDLE_FORMAT}): only the risk model's ${MODEL_BUNDLE_FORMAT} bundles load here`);
  const parsed = modelBundleSchema.safeParse(manifestJson);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`model.json: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const bundle = parsed.data;
  if ((await sha256Hex(weights)) !== bundle.weights.sha256) throw new Error(`${BUNDLE_WEIGHTS_FILE}: its SHA-256 is not the one model.json names`);
  if ((await sha256Hex(new TextEncoder().encode(statsJson(bundle.features.stats as FeatureStats)))) !== bundle.features.stats_sha256) throw new Error('model.json: features.stats do not match features.stats_sha256');
  const model = createModel(bundle.model, 0, bundle.model_options ?? {});
  try {
    const manifest = weightManifest(model.params);
    const same = manifest.entries.length === bundle.weights.params.length && manifest.entries.every((e, i) => {
      const p = bundle.weights.params[i];
      return p !== undefined && p.name === e.name && p.offset === e.offset && p.shape.join() === e.shape.join();
    });
    if (!same || manifest.total !== bundle.weights.float32_count) throw new Error(`model.json: the parameters are not those of the ${bundle.model} model this fedcare builds`);
    if (weights.byteLength !== manifest.total * 4) throw new Error(`${BUNDLE_WEIGHTS_FILE}: ${weights.byteLength} bytes, expected ${manifest.total * 4}`);
    unflattenWeights(model.params, weightsFromBytes(weights));
    return { bundle, model };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Records → the model's input arrays, with the bundle's statistics, sequence length and window. */
export function bundleFeatures(bundle: ModelBundle, records: readonly PatientRecord[]): FeatureBatch {
  return encodeRecords(records, bundle.features.stats as FeatureStats, { seqLen: bundle.features.seq_len, windowDays: bundle.features.window_days });
}

/** Records in, probabilities out, as the portal computes them. */
export async function scoreWithBundle(bundle: ModelBundle, model: MultimodalRiskClassifier, records: readonly PatientRecord[]): Promise<PatientScore[]> {
  return scoreBatch(model, bundleFeatures(bundle, records), 128, bundle.temperature);
}
