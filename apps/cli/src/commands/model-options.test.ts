// Run settings hidden_dim and dropout (tuned by `fedcare tune`): a run with them trains the changed
// model (coordinator's initial weights, hospitals, the final pooled evaluation), and its export
// records them so `fedcare predict` and the ONNX exporter rebuild the same shape.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateHospital, toNdjson } from '@fedcare/shared/data';
import { classifierParamCount, modelConfigFor } from '@fedcare/shared/model';
import { openSqliteStore } from '@fedcare/server';
import { fedcareProcess } from '../testing-processes';
import { runSimulation } from './simulate';

async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = fedcareProcess(args);
  const code = await p.exited;
  return { code, out: p.output() };
}

describe('hidden_dim and dropout as run settings', () => {
  it('train the changed model, export it with its overrides, and predict and ONNX-export from it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-model-options-'));
    const db = path.join(dir, 'fedcare.db');
    const hospitals = ['H1', 'H2'];
    const cohort = hospitals.map((h) => generateHospital(h, { seed: 5, patients: 30 }).records);
    const res = await runSimulation({
      records: cohort.flat(),
      hospitals,
      config: { model: 'compact', hidden_dim: 20, dropout: 0.25, rounds: 1, local_epochs: 1, batch_size: 16, seq_len: 8, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2, early_stopping_patience: 0 } as never,
      clients: 'inprocess',
      store: { kind: 'sqlite', file: db },
    });
    expect(res.summary.status).toBe('completed');
    expect(res.summary.test).toBeDefined();
    // The hospitals report the validation AUC-ROC, aggregated like the other metrics.
    expect(res.rounds[0]!.metrics.val_auc_roc).toBeGreaterThanOrEqual(0);
    const runId = res.rounds[0]!.runId;
    const store = openSqliteStore(db);
    const stored = (await store.getModel(runId, 'latest'))!;
    await store.close();
    const expected = classifierParamCount(modelConfigFor('compact', { hidden_dim: 20, dropout: 0.25 }));
    expect(expected).toBeGreaterThan(classifierParamCount(modelConfigFor('compact')));
    expect(stored.bytes.byteLength).toBe(expected * 4);

    const out = path.join(dir, 'model');
    const exported = await cli(['export', '--db', db, '--run', runId, '--format', 'onnx', '--out', out]);
    expect(exported.code, exported.out).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')) as { model: string; model_options: unknown; weights: { float32_count: number } };
    expect(manifest).toMatchObject({ model: 'compact', model_options: { hidden_dim: 20, dropout: 0.25 }, weights: { float32_count: expected } });
    expect(existsSync(path.join(out, 'model.onnx'))).toBe(true);

    const data = path.join(dir, 'H2.ndjson');
    writeFileSync(data, toNdjson(cohort[1]!));
    const csv = path.join(dir, 'scores.csv');
    const predicted = await cli(['predict', '--model', out, '--data', data, '--out', csv]);
    expect(predicted.code, predicted.out).toBe(0);
    expect(readFileSync(csv, 'utf8').trim().split('\r\n')).toHaveLength(1 + cohort[1]!.length);
  }, 90_000);
});
