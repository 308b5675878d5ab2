// Run settings hidden_dim and dropout (tuned by `fedcare tune`): a run with them trains the changed
// model (coordinator's initial weights, hospitals, the final pooled evaluation), and its export
// records them so `fedcare predict` and the ONNX exporter rebuild the same shape.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toNdjson } from '@fedcare/shared/data';
import { classifierParamCount, modelConfigFor } from '@fedcare/shared/model';
import { openSqliteStore } from '@fedcare/server';
import { fedcareRun } from '../testing-processes';
import { smallFinishedRun } from '../testing-runs';

describe('hidden_dim and dropout as run settings', () => {
  it('train the changed model, export it with its overrides, and predict and ONNX-export from it', async () => {
    const { dir, db, runId, cohort, rounds, summary } = await smallFinishedRun({ prefix: 'fc-model-options-', seed: 5, patients: 30, rounds: 1, seqLen: 8, config: { model: 'compact', hidden_dim: 20, dropout: 0.25 } });
    expect(summary.test).toBeDefined();
    // The hospitals report the validation AUC-ROC, aggregated like the other metrics.
    expect(rounds[0]!.metrics.val_auc_roc).toBeGreaterThanOrEqual(0);
    const store = openSqliteStore(db);
    const stored = (await store.getModel(runId, 'latest'))!;
    await store.close();
    const expected = classifierParamCount(modelConfigFor('compact', { hidden_dim: 20, dropout: 0.25 }));
    expect(expected).toBeGreaterThan(classifierParamCount(modelConfigFor('compact')));
    expect(stored.bytes.byteLength).toBe(expected * 4);

    const out = path.join(dir, 'model');
    const exported = await fedcareRun(['export', '--db', db, '--run', runId, '--format', 'onnx', '--out', out]);
    expect(exported.code, exported.out).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')) as { model: string; model_options: unknown; weights: { float32_count: number } };
    expect(manifest).toMatchObject({ model: 'compact', model_options: { hidden_dim: 20, dropout: 0.25 }, weights: { float32_count: expected } });
    expect(existsSync(path.join(out, 'model.onnx'))).toBe(true);

    const data = path.join(dir, 'H2.ndjson');
    writeFileSync(data, toNdjson(cohort[1]!));
    const csv = path.join(dir, 'scores.csv');
    const predicted = await fedcareRun(['predict', '--model', out, '--data', data, '--out', csv]);
    expect(predicted.code, predicted.out).toBe(0);
    expect(readFileSync(csv, 'utf8').trim().split('\r\n')).toHaveLength(1 + cohort[1]!.length);
  }, 90_000);
});
