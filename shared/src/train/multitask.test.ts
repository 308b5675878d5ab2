// The multi-task heads' figures: each hospital's, and their federated pooling, which must equal the
// figures computed on all hospitals' rows at once (MAE, RMSE) — not an average of RMSEs.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURE_CONFIG, fitAndEncode } from '../data/features';
import { generateHospital } from '../data/generator';
import { createModel } from '../model/classifier';
import { flattenWeights } from '../model/weights';
import { Rng } from '../util/random';
import { multiTaskMetrics, poolMultiTaskMetrics, predictTasks } from './multitask';
import { trainLocal } from './train';

/** A hospital's evaluation rows: readmitted 1/0/−1, true days where readmitted, predictions. */
function hospital(seed: string, n: number, rate: number) {
  const rng = new Rng(seed);
  const readmitted = Int8Array.from({ length: n }, () => (rng.next() < 0.1 ? -1 : rng.next() < rate ? 1 : 0));
  const daysTrue = Float32Array.from(readmitted, (y) => (y === 1 ? 1 + Math.floor(29 * rng.next()) : Number.NaN));
  const daysPred = Float32Array.from({ length: n }, () => 1 + 29 * rng.next());
  const probs = Float32Array.from(readmitted, (y) => Math.min(1, Math.max(0, 0.3 * (y === 1 ? 1 : 0) + 0.7 * rng.next())));
  return { readmitted, daysTrue, daysPred, probs };
}

const concat = <T extends Float32Array | Int8Array>(parts: T[], make: (n: number) => T): T => {
  const out = make(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p as never, at);
    at += p.length;
  }
  return out;
};

describe('multiTaskMetrics', () => {
  it('AUC-ROC over known readmissions, MAE / RMSE in days over the readmitted rows only', () => {
    const m = multiTaskMetrics([0.9, 0.2, 0.6, 0.5, 0.1], [1, 0, 1, -1, 0], [12, 99, 20, 99, 99], [10, Number.NaN, 26, 3, Number.NaN]);
    expect(m.readmission_auc_roc).toBe(1);
    expect(m.readmission_count).toBe(4);
    expect(m.days_count).toBe(2);
    expect(m.days_mae).toBeCloseTo((2 + 6) / 2, 12);
    expect(m.days_rmse).toBeCloseTo(Math.sqrt((4 + 36) / 2), 12);
  });

  it('NaN where undefined: one readmission class, no readmitted row', () => {
    const m = multiTaskMetrics([0.3, 0.4], [0, 0], [5, 6], [Number.NaN, Number.NaN]);
    expect(m.readmission_auc_roc).toBeNaN();
    expect(m.days_mae).toBeNaN();
    expect(m.days_rmse).toBeNaN();
    expect(m.days_count).toBe(0);
  });
});

describe('poolMultiTaskMetrics', () => {
  const sites = [hospital('a', 400, 0.15), hospital('b', 90, 0.4), hospital('c', 250, 0.05)];
  const own = sites.map((s) => multiTaskMetrics(s.probs, s.readmitted, s.daysPred, s.daysTrue));

  it('pools MAE and RMSE exactly: equal to the figures on all hospitals’ rows together', () => {
    const all = multiTaskMetrics(
      concat(sites.map((s) => s.probs), (n) => new Float32Array(n)),
      concat(sites.map((s) => s.readmitted), (n) => new Int8Array(n)),
      concat(sites.map((s) => s.daysPred), (n) => new Float32Array(n)),
      concat(sites.map((s) => s.daysTrue), (n) => new Float32Array(n)),
    );
    const pooled = poolMultiTaskMetrics(own.map((metrics) => ({ metrics })));
    expect(pooled.days_count).toBe(all.days_count);
    expect(pooled.readmission_count).toBe(all.readmission_count);
    expect(pooled.days_mae).toBeCloseTo(all.days_mae, 9);
    expect(pooled.days_rmse).toBeCloseTo(all.days_rmse, 9);
    // Not the mean of the hospitals' RMSEs (their readmitted counts differ).
    const naive = own.reduce((a, m) => a + m.days_rmse, 0) / own.length;
    expect(Math.abs(naive - all.days_rmse)).toBeGreaterThan(1e-3);
  });

  it('weights readmission AUC-ROC by each hospital’s rows with a known readmission; skips a hospital whose AUC is undefined', () => {
    const pooled = poolMultiTaskMetrics([
      { metrics: { readmission_auc_roc: 0.8, readmission_count: 300, days_mae: 4, days_rmse: 5, days_count: 30 } },
      { metrics: { readmission_auc_roc: 0.6, readmission_count: 100, days_mae: 8, days_rmse: 10, days_count: 10 } },
      // AUC undefined (one class; deleted as non-finite by the client), no readmitted rows
      { metrics: { readmission_count: 50, days_count: 0 } },
    ]);
    expect(pooled.readmission_auc_roc).toBeCloseTo((300 * 0.8 + 100 * 0.6) / 400, 12);
    expect(pooled.readmission_count).toBe(450);
    expect(pooled.days_mae).toBeCloseTo((30 * 4 + 10 * 8) / 40, 12);
    expect(pooled.days_rmse).toBeCloseTo(Math.sqrt((30 * 25 + 10 * 100) / 40), 12);
  });

  it('is empty for a single-task round (no hospital reports the heads’ figures)', () => {
    expect(poolMultiTaskMetrics([{ metrics: { auc_roc: 0.8 } }, { metrics: {} }])).toEqual({});
  });
});

describe('trainLocal with the multi-task heads', () => {
  const { batch } = fitAndEncode(generateHospital('H1', { seed: 4, patients: 60 }).records, { ...DEFAULT_FEATURE_CONFIG, seqLen: 6 });

  it('trains the heads (their weights move), leaks no tensor, and the batch carries the targets', async () => {
    expect(Array.from(batch.readmission!).every((y) => y === 0 || y === 1)).toBe(true);
    expect(Array.from(batch.readmission!).some((y) => y === 1)).toBe(true);
    batch.readmission!.forEach((y, i) => expect(Number.isFinite(batch.daysToReadmission![i]!), `row ${i}`).toBe(y === 1));
    const model = createModel('compact', 1, { task_weights: { readmission_30d: 1, days_to_readmission: 1 } });
    try {
      const before = await flattenWeights(model.params);
      const tensors = tf.memory().numTensors;
      const r = await trainLocal(model, batch, { epochs: 1, batchSize: 16, seed: 1 });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(Number.isFinite(r.epochs[0]!.loss)).toBe(true);
      const after = await flattenWeights(model.params);
      // The last 2 × (36 + 1) values are the heads'.
      const heads = (w: Float32Array) => Array.from(w.subarray(w.length - 74));
      expect(heads(after)).not.toEqual(heads(before));
      const pred = await predictTasks(model, batch, [0, 1, 2]);
      expect(pred.readmission.every((p) => p > 0 && p < 1)).toBe(true);
      expect(pred.days.every(Number.isFinite)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('refuses DP-SGD: the heads\u2019 masked means are not per-example losses', async () => {
    const model = createModel('compact', 1, { task_weights: { readmission_30d: 1, days_to_readmission: 1 } });
    try {
      await expect(trainLocal(model, batch, { epochs: 1, batchSize: 16, dp: { noiseMultiplier: 1, maxGradNorm: 1 } })).rejects.toThrow(/task_weights\) cannot train under DP-SGD/);
    } finally {
      model.dispose();
    }
  });
});
