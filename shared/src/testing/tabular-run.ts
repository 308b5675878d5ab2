/**
 * A finished one-round tabular run (run config `task: tabular`, target `readmitted`) written into
 * any Store through its interface: the schema of a generated table in the stats slot and seeded
 * MLP weights as round 1. For the readers that must handle a tabular run, or refuse it by name
 * (export, predict, the REST model route, the report), without federating one.
 */
import { encodeStrategyState } from '../fl/state-codec';
import type { Store } from '../fl/store';
import { sha256Hex } from '../model/weights';
import { runConfigSchema } from '../protocol/messages';
import { mlpConfigFor, mlpInitialWeights } from '../tabular/mlp';
import { describeTable, finalizeSchema, mergeShapes, summarise, type TabularSchema } from '../tabular/schema';
import { generateTabularTable } from './tabular';

export async function storeTabularRun(store: Store, runId: string, hospitals: readonly string[] = ['H1', 'H2']): Promise<{ schema: TabularSchema; weights: Uint8Array }> {
  const task = { target: 'readmitted', min_category_count: 5 };
  const table = generateTabularTable(300, 7);
  const layout = mergeShapes([describeTable(table, task)], task);
  const schema = finalizeSchema(layout, summarise(table, layout));
  const config = runConfigSchema.parse({ task: 'tabular', tabular: task, rounds: 1 });
  const weights = new Uint8Array(mlpInitialWeights(mlpConfigFor(schema, config), config.seed).buffer);
  await store.createRun(runId, config as unknown as Record<string, unknown>, 1);
  await store.saveFeatureStats(runId, schema);
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  await store.commitRound({
    runId,
    round: 1,
    startedAt: at(0),
    completedAt: at(30),
    metrics: { test_accuracy: 0.75, auc_roc: 0.8, test_loss: 0.5, val_loss: 0.52, train_loss: 0.48, num_participating_clients: hospitals.length },
    perHospital: Object.fromEntries(hospitals.map((h, i) => [h, { test_accuracy: 0.7 + i / 100, test_loss: 0.5, num_samples: 100, num_examples: 25 }])),
    participation: hospitals.map((h) => ({ hospitalId: h, stage: 'train' as const, status: 'ok' as const, bytesUp: weights.byteLength, bytesDown: weights.byteLength })),
    model: { bytes: weights, sha256: await sha256Hex(weights) },
    strategyState: encodeStrategyState({}), // FedAvg keeps no state
    checkpoint: true,
    best: true,
  });
  await store.setRunStatus(runId, 'completed');
  return { schema, weights };
}
