/**
 * A tabular run's model (run config `task: tabular`) as the REST model route, MLflow and the run
 * report give it: the MLP's layout, the run's schema (what every hospital encodes its table with,
 * ../tabular/schema.ts) and the SHA-256s of both. Not the risk model's "fedcare" format: `fedcare
 * export` and `fedcare predict` refuse a tabular run (TabularRunError, ./run-stats.ts).
 *
 *   model.json    this manifest
 *   weights.bin   the MLP's parameters, little-endian float32: per dense layer its kernel
 *                 [inputs, outputs] row-major, then its bias, input layer first (../tabular/mlp.ts)
 */
import { sha256Hex } from '../model/weights';
import { mlpConfigFor, mlpParamCount, type MlpConfig } from '../tabular/mlp';
import type { TabularSchema } from '../tabular/schema';
import type { StoredBundle } from './model-bundle';
import { modelCard, type ModelCard } from './model-card';
import type { RoundMetrics, RunRecord } from './store';

export const TABULAR_BUNDLE_FORMAT = 'fedcare-tabular-model/1';

export interface TabularModelBundle {
  format: typeof TABULAR_BUNDLE_FORMAT;
  task: 'tabular';
  run_id: string;
  round: number;
  model: 'mlp';
  /** Inputs (the schema's width), hidden widths, classes (the schema's, in order) and dropout. */
  mlp: MlpConfig;
  schema: TabularSchema;
  schema_sha256: string;
  weights: { file: 'weights.bin'; sha256: string; float32_count: number };
  created_at: string;
}

/** The manifest of a tabular run's stored weights; throws when their size is not the MLP's. */
export async function tabularModelBundle(o: { run: RunRecord; round: number; schema: TabularSchema; weights: Uint8Array; createdAt?: string }): Promise<TabularModelBundle> {
  const cfg = o.run.config;
  const mlp = mlpConfigFor(o.schema, { hidden_dim: cfg.hidden_dim as number | undefined, dropout: cfg.dropout as number | undefined });
  const count = mlpParamCount(mlp);
  if (o.weights.byteLength !== count * 4) throw new Error(`run ${o.run.runId}: its tabular MLP has ${count} parameters; the stored weights hold ${o.weights.byteLength / 4}`);
  return {
    format: TABULAR_BUNDLE_FORMAT,
    task: 'tabular',
    run_id: o.run.runId,
    round: o.round,
    model: 'mlp',
    mlp,
    schema: o.schema,
    schema_sha256: await sha256Hex(new TextEncoder().encode(JSON.stringify(o.schema))),
    weights: { file: 'weights.bin', sha256: await sha256Hex(o.weights), float32_count: count },
    created_at: o.createdAt ?? new Date().toISOString(),
  };
}

/** A tabular run's model card: the model, the data it was fitted to (counts only), the exported round's pooled metrics. */
export interface TabularModelCard {
  format: 'fedcare-tabular-model-card/1';
  model: { run_id: string; round: number; definition: string; parameters: number; weights_sha256: string; schema_sha256: string; exported_at: string };
  data: { target: string; classes: string[]; class_counts: number[]; records: number; numeric_columns: string[]; categorical_columns: string[]; width: number };
  training: { rounds_completed: number; strategy: string; hospitals: string[] };
  metrics: { pooled: Record<string, number> };
  secure_aggregation: string;
}

export function tabularModelCard(run: RunRecord, rounds: readonly RoundMetrics[], bundle: TabularModelBundle): TabularModelCard {
  const exported = rounds.find((r) => r.round === bundle.round);
  if (!exported) throw new Error(`round ${bundle.round} of ${run.runId} has no metrics in the store`);
  const s = bundle.schema;
  return {
    format: 'fedcare-tabular-model-card/1',
    model: {
      run_id: run.runId,
      round: bundle.round,
      definition: `mlp ${[bundle.mlp.inputs, ...bundle.mlp.hidden, bundle.mlp.classes].join('→')}`,
      parameters: bundle.weights.float32_count,
      weights_sha256: bundle.weights.sha256,
      schema_sha256: bundle.schema_sha256,
      exported_at: bundle.created_at,
    },
    data: {
      target: s.target,
      classes: [...s.classes],
      class_counts: [...s.class_counts],
      records: s.records,
      numeric_columns: s.columns.filter((c) => c.kind === 'numeric').map((c) => c.name),
      categorical_columns: s.columns.filter((c) => c.kind === 'categorical').map((c) => c.name),
      width: s.width,
    },
    training: {
      rounds_completed: run.lastCompletedRound,
      strategy: String(run.config.strategy ?? 'fedavg'),
      hospitals: [...new Set(rounds.flatMap((r) => Object.keys(r.perHospital)))].sort(),
    },
    metrics: { pooled: Object.fromEntries(Object.entries(exported.metrics).filter(([, v]) => Number.isFinite(v))) },
    secure_aggregation: String(run.config.secure_aggregation ?? 'none'),
  };
}

/** The card as a hospital may read it (as modelCardFor): the pooled figures, and itself alone among the hospitals. */
export function tabularModelCardFor(card: TabularModelCard, hospitalId: string | undefined): TabularModelCard {
  if (hospitalId === undefined) return card;
  return { ...card, training: { ...card.training, hospitals: card.training.hospitals.filter((h) => h === hospitalId) } };
}

/** The card of a stored bundle of either kind (the run report), undefined when the store has no model. */
export function storedCard(run: RunRecord, rounds: readonly RoundMetrics[], stored: StoredBundle): ModelCard | TabularModelCard | undefined {
  if ('tabular' in stored) return tabularModelCard(run, rounds, stored.tabular);
  return 'bundle' in stored ? modelCard(run, rounds, stored.bundle) : undefined;
}
