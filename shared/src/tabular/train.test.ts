import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { flattenWeights } from '../model/weights';
import { GradRecorder } from '../model/recorder';
import { clipRecorded } from '../train/dp-fast';
import { generateTabularTable } from '../testing/tabular';
import { seededRandom } from '../util/csprng';
import { splitTable } from './client';
import { mlpConfigFor, mlpInitialWeights, mlpParamCount, TabularMlp } from './mlp';
import { describeTable, encodeTable, finalizeSchema, mergeShapes, summarise } from './schema';
import { evaluateTabular, trainTabular } from './train';

const task = { target: 'readmitted', min_category_count: 5 };
const all = splitTable(generateTabularTable(1500, 11));
const layout = mergeShapes([describeTable(all.train, task)], task);
const schema = finalizeSchema(layout, summarise(all.train, layout));
const train = encodeTable(all.train, schema);
const test = encodeTable(all.test, schema);

describe('the tabular MLP', () => {
  it('has deterministic Glorot initial weights that round-trip through the flat wire format', async () => {
    const cfg = mlpConfigFor(schema, { hidden_dim: 16 });
    expect(cfg.hidden).toEqual([16, 8]);
    const w = mlpInitialWeights(cfg, 3);
    expect(w.length).toBe(mlpParamCount(cfg));
    expect(w.length).toBe(schema.width * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2);
    expect(mlpInitialWeights(cfg, 3)).toEqual(w);
    expect(mlpInitialWeights(cfg, 4)).not.toEqual(w);
    const m = new TabularMlp(cfg, w);
    expect(await flattenWeights(m.params)).toEqual(w);
    m.dispose();
  });

  it('records every parameter use: one-pass clipped per-example gradients equal the naive per-example sum', async () => {
    const m = new TabularMlp({ ...mlpConfigFor(schema, { hidden_dim: 8 }), dropout: 0 }, mlpInitialWeights(mlpConfigFor(schema, { hidden_dim: 8 }), 1));
    const vars = m.params.map((p) => p.variable);
    const rows = [0, 1, 2, 3, 4, 5, 6, 7];
    const C = 0.05;
    const xOf = (rs: number[]) => tf.tensor2d(Float32Array.from(rs.flatMap((r) => Array.from(train.x.subarray(r * train.width, (r + 1) * train.width)))), [rs.length, train.width]);
    const yOf = (rs: number[]) => tf.tensor1d(Int32Array.from(rs, (r) => train.y[r] as number), 'int32');
    // One recorded batched pass.
    const recorder = new GradRecorder();
    const x = xOf(rows);
    const y = yOf(rows);
    const { value, grads } = tf.variableGrads(() => tf.mul(m.loss(x, y, { training: true, recorder }), rows.length), vars);
    tf.dispose([value, ...Object.values(grads)]);
    const fast = await clipRecorded(recorder.uses, vars, C);
    recorder.dispose();
    // The reference: a backward pass per example.
    const naive = vars.map((v) => new Float64Array(v.size));
    for (const r of rows) {
      const xi = xOf([r]);
      const yi = yOf([r]);
      const g = tf.variableGrads(() => m.loss(xi, yi, { training: true }), vars);
      const parts = (await Promise.all(vars.map((v) => (g.grads[v.name] as tf.Tensor).data()))) as Float32Array[];
      const norm = Math.sqrt(parts.reduce((s, p) => s + p.reduce((a, b) => a + b * b, 0), 0));
      const scale = Math.min(1, C / (norm + 1e-12));
      parts.forEach((p, i) => p.forEach((v, j) => (naive[i]![j]! += v * scale)));
      tf.dispose([xi, yi, g.value, ...Object.values(g.grads)]);
    }
    for (const [i, t] of fast.sum.entries()) {
      const got = await t.data();
      for (let j = 0; j < got.length; j++) expect(got[j]).toBeCloseTo(naive[i]![j]!, 5);
    }
    tf.dispose([x, y, ...fast.sum]);
    m.dispose();
  });

  it.each([
    { name: 'Adam', dp: undefined, epochs: 2, floor: 0.85 },
    { name: 'DP-SGD (σ 0.6, C 1, seeded lots)', dp: { noiseMultiplier: 0.6, maxGradNorm: 1, random: seededRandom('tabular/dp/lots') }, epochs: 8, floor: 0.8 },
  ])('learns the generated table with $name (held-out AUC-ROC above $floor)', async ({ dp, epochs, floor }) => {
    const cfg = mlpConfigFor(schema, {});
    const m = new TabularMlp(cfg, mlpInitialWeights(cfg, 1));
    const before = await evaluateTabular(m, test);
    await trainTabular(m, train, { epochs, batchSize: 32, learningRate: 0.01, seed: 1, proximalMu: 0, ...(dp ? { dp } : {}) });
    const after = await evaluateTabular(m, test);
    expect(after.auc_roc).toBeGreaterThan(floor);
    expect(after.loss).toBeLessThan(before.loss);
    m.dispose();
  }, 60_000);
});
