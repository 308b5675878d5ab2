// Multi-task heads (run config task_weights) end to end: a small federated run reports readmission
// AUC-ROC and days MAE / RMSE per hospital and pooled (exactly, from the hospitals' counts), in the
// round report, the store and the JSON lines; the larger model travels and exports (ONNX: risk head).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURE_CONFIG, fitAndEncode, generateHospital, toNdjson } from '@fedcare/shared/data';
import { classifierParamCount, createModel, modelConfigFor } from '@fedcare/shared/model';
import { disposeInputs, inputsFor, predictTasks } from '@fedcare/shared/train';
import { openSqliteStore } from '@fedcare/server';
import { classifierToOnnx } from '../onnx/onnx';
import { loadOnnxRuntime } from '../onnx/runtime';
import { fedcareRun } from '../testing-processes';
import { smallFinishedRun } from '../testing-runs';
import { roundLine } from './simulate';

const TASK_WEIGHTS = { readmission_30d: 1, days_to_readmission: 1 };
const NAMES = ['readmission_auc_roc', 'days_mae', 'days_rmse'] as const;

describe('multi-task heads in a federated run', () => {
  it('report readmission AUC-ROC and days MAE / RMSE per hospital and pooled, store them, and export', async () => {
    const { dir, db, runId, cohort, rounds, hospitals } = await smallFinishedRun({ prefix: 'fc-multitask-', seed: 6, patients: 60, rounds: 2, seqLen: 8, config: { model: 'compact', task_weights: TASK_WEIGHTS } });
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);
    for (const r of rounds) {
      for (const h of hospitals) {
        const m = r.perHospital[h]!;
        for (const name of NAMES) expect(m[name], `${h} ${name}`).toBeGreaterThanOrEqual(0);
        expect(m.readmission_auc_roc).toBeLessThanOrEqual(1);
        expect(m.days_rmse).toBeGreaterThanOrEqual(m.days_mae!);
        expect(m.days_count).toBeGreaterThan(0);
      }
      // Pooled exactly: MAE weighted by each hospital's readmitted test rows, RMSE from the summed squared errors.
      const per = hospitals.map((h) => r.perHospital[h]!);
      const n = per.reduce((a, m) => a + m.days_count!, 0);
      expect(r.metrics.days_count).toBe(n);
      expect(r.metrics.days_mae).toBeCloseTo(per.reduce((a, m) => a + m.days_count! * m.days_mae!, 0) / n, 9);
      expect(r.metrics.days_rmse).toBeCloseTo(Math.sqrt(per.reduce((a, m) => a + m.days_count! * m.days_rmse! ** 2, 0) / n), 9);
      expect(r.metrics.readmission_auc_roc).toBeGreaterThan(0);
      // The JSON line carries them, pooled and per hospital.
      const line = JSON.parse(JSON.stringify(roundLine(r))) as Record<string, unknown> & { per_hospital: Record<string, Record<string, number>> };
      for (const name of NAMES) expect(line[name], name).toBe(r.metrics[name]);
      expect(line.per_hospital.H1!.days_mae).toBe(r.perHospital.H1!.days_mae);
    }

    const store = openSqliteStore(db);
    const stored = await store.getRoundMetrics(runId);
    const model = (await store.getModel(runId, 'latest'))!;
    await store.close();
    for (const [i, r] of stored.entries()) {
      for (const name of NAMES) expect(r.metrics[name], name).toBe(rounds[i]!.metrics[name]);
      expect(r.perHospital.H2!.readmission_auc_roc).toBe(rounds[i]!.perHospital.H2!.readmission_auc_roc);
    }
    const expected = classifierParamCount(modelConfigFor('compact', { task_weights: TASK_WEIGHTS }));
    // Two 1-output heads on the compact model's 36-wide fused vector (12 + 12 + 4 + 4 + 4).
    expect(expected - classifierParamCount(modelConfigFor('compact'))).toBe(2 * (36 + 1));
    expect(model.bytes.byteLength).toBe(expected * 4);

    // Export keeps the heads' setting, so predict and the ONNX exporter rebuild the same parameters.
    const out = path.join(dir, 'model');
    const exported = await fedcareRun(['export', '--db', db, '--run', runId, '--format', 'onnx', '--out', out]);
    expect(exported.code, exported.out).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')) as { model_options: unknown; weights: { float32_count: number } };
    expect(manifest).toMatchObject({ model_options: { task_weights: TASK_WEIGHTS }, weights: { float32_count: expected } });
    expect(existsSync(path.join(out, 'model.onnx'))).toBe(true);
    expect(readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8')).toMatch(/readmission/i);
    const data = path.join(dir, 'H1.ndjson');
    writeFileSync(data, toNdjson(cohort[0]!));
    const csv = path.join(dir, 'scores.csv');
    const predicted = await fedcareRun(['predict', '--model', out, '--data', data, '--out', csv]);
    expect(predicted.code, predicted.out).toBe(0);
    expect(readFileSync(csv, 'utf8').trim().split('\r\n')).toHaveLength(1 + cohort[0]!.length);
  }, 120_000);

  it('ONNX: the heads are extra outputs that ONNX Runtime computes as TF.js does (within 1e-4)', async () => {
    const ort = loadOnnxRuntime();
    const model = createModel('compact', 5, { task_weights: TASK_WEIGHTS });
    try {
      model.params.forEach((p, i) => p.variable.assign(tf.randomNormal([...p.shape], 0, 0.4, 'float32', 2000 + i)));
      const { batch } = fitAndEncode(generateHospital('H2', { seed: 8, patients: 120 }).records, { ...DEFAULT_FEATURE_CONFIG, seqLen: 7 });
      const rows = [...Array(batch.n).keys()];
      const inputs = inputsFor(batch, rows);
      const feeds = Object.fromEntries((['vitals', 'labs', 'demographics', 'biology', 'omics'] as const).map((k) => [k, new ort.Tensor('float32', Float32Array.from(inputs[k].dataSync() as Float32Array), inputs[k].shape)] as const));
      disposeInputs(inputs);
      const tfjs = await predictTasks(model, batch, rows);
      const session = await ort.InferenceSession.create(classifierToOnnx(model, { seqLen: null, temperature: 1 }));
      const out = await session.run(feeds);
      await session.release();
      const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - (b[i] as number))));
      expect(out.readmission_probability!.dims).toEqual([batch.n, 1]);
      expect(diff(out.readmission_probability!.data, tfjs.readmission)).toBeLessThanOrEqual(1e-4);
      // days are ×30 the raw output: 1e-4 relative to the scale
      expect(diff(out.days_to_readmission!.data, tfjs.days)).toBeLessThanOrEqual(30e-4);
    } finally {
      model.dispose();
    }
  }, 60_000);
});
