import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fitAndEncode } from '../data/features';
import { generateHospital } from '../data/generator';
import { createClassifier, DEFAULT_CLASSIFIER_CONFIG, type ClassifierConfig } from '../model/classifier';
import { linear } from '../model/nn';
import { GradRecorder } from '../model/recorder';
import { clippedGradientSum, type ClippedSum } from './dp';
import { clippedGradientSumFast, clipRecorded, type RecordingModel } from './dp-fast';
import { disposeInputs, inputsFor, labelledIndices } from './train';

const NO_DROPOUT = { lstmDropout: 0, demographicsDropout: 0, omicsDropout: 0, attentionDropout: 0, headDropout: 0 };
// T = 8 runs both Gram paths: per-example 2D GEMMs for the clinical gate gradients (P²·F = 64·512),
// one batched matMul for the rest.
const { batch } = fitAndEncode(generateHospital('H1', { seed: 5, patients: 40 }).records, { seqLen: 8, windowDays: 30 });
const rows = labelledIndices(batch).slice(0, 6);

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] as number));
  return m;
}

/**
 * Worst over parameters of max |error| / max |expected entry|, and that parameter's index. The
 * scale is floored at 1e-3 of the largest entry overall: some gradients are zero in exact arithmetic
 * (the attention's key bias: a shift shared by all keys leaves the softmax unchanged) and hold only
 * rounding noise.
 */
function sumError(expected: readonly tf.Tensor[], actual: readonly tf.Tensor[]): { err: number; at: number } {
  const e = expected.map((t) => t.dataSync());
  const floor = 1e-3 * Math.max(...e.map(maxAbs));
  let worst = { err: 0, at: -1 };
  e.forEach((ev, i) => {
    expect(actual[i]!.shape).toEqual(expected[i]!.shape);
    const av = actual[i]!.dataSync();
    let diff = 0;
    for (let k = 0; k < ev.length; k++) diff = Math.max(diff, Math.abs((ev[k] as number) - (av[k] as number)));
    const err = diff / Math.max(maxAbs(ev), floor);
    if (!(err <= worst.err)) worst = { err, at: i };
  });
  return worst;
}

function normError(expected: readonly number[], actual: readonly number[]): number {
  expect(actual).toHaveLength(expected.length);
  return Math.max(...expected.map((n, i) => Math.abs(n - (actual[i] as number)) / n));
}

const configs: { name: string; config: Partial<ClassifierConfig> }[] = [
  { name: `default architecture (${DEFAULT_CLASSIFIER_CONFIG.lstmLayers} LSTM layers), no dropout`, config: NO_DROPOUT },
  { name: 'one LSTM layer, no dropout', config: { ...NO_DROPOUT, lstmLayers: 1 } },
];

describe('clippedGradientSumFast (ghost clipping + book-keeping)', () => {
  it.each(configs)('$name: equals the naive per-example clipping for C large, small and in between', async ({ config }) => {
    const model = createClassifier(config, 11);
    const reference = await clippedGradientSum(model, batch, rows, 1e9);
    const sorted = [...reference.norms].sort((a, b) => a - b);
    const bounds = [
      { C: 1e9, clipped: 0 },
      { C: sorted[0]! / 2, clipped: rows.length },
      { C: Math.sqrt(sorted[2]! * sorted[3]!), clipped: 3 },
    ];
    const before = tf.memory().numTensors;
    for (const { C, clipped } of bounds) {
      const naive: ClippedSum = C === 1e9 ? reference : await clippedGradientSum(model, batch, rows, C);
      const fast = await clippedGradientSumFast(model, batch, rows, C);
      expect(normError(naive.norms, fast.norms)).toBeLessThan(1e-4);
      expect(fast.norms.filter((n) => n > C)).toHaveLength(clipped);
      const { err, at } = sumError(naive.sum, fast.sum);
      expect(err, `C = ${C}: worst parameter ${model.params[at]?.name}`).toBeLessThan(1e-4);
      expect(Math.abs(fast.lossSum - naive.lossSum) / naive.lossSum).toBeLessThan(1e-5);
      tf.dispose(fast.sum);
      if (naive !== reference) tf.dispose(naive.sum);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(reference.sum);
    model.dispose();
  });

  it('with dropout on, uses the batched pass’s masks: unclipped, the sum is B × that pass’s mean-loss gradient', async () => {
    // Two identical models draw the same dropout seeds for their first training pass.
    const a = createClassifier({}, 12);
    const b = createClassifier({}, 12);
    expect(a.config.lstmDropout).toBeGreaterThan(0);
    const fast = await clippedGradientSumFast(a, batch, rows, 1e9);
    const inputs = inputsFor(batch, rows);
    const labels = tf.tensor1d(Int32Array.from(rows, (r) => batch.labels[r] as number), 'int32');
    const vars = b.params.map((p) => p.variable);
    const { value, grads } = tf.variableGrads(() => b.loss(inputs, labels, { training: true }), vars);
    const batched = vars.map((v) => tf.mul(grads[v.name] as tf.Tensor, rows.length));
    expect(sumError(batched, fast.sum).err).toBeLessThan(1e-4);
    expect(Math.abs(fast.lossSum - rows.length * value.dataSync()[0]!)).toBeLessThan(1e-4 * fast.lossSum);
    tf.dispose([...fast.sum, ...batched, value, labels, ...Object.values(grads)]);
    disposeInputs(inputs);
    a.dispose();
    b.dispose();
  });

  it('returns zeros and no norms for an empty lot', async () => {
    const model = createClassifier(NO_DROPOUT, 13);
    const { sum, norms, lossSum } = await clippedGradientSumFast(model, batch, [], 1);
    expect(norms).toEqual([]);
    expect(lossSum).toBe(0);
    expect(sum.every((t, i) => t.shape.join() === model.params[i]!.shape.join() && t.dataSync().every((x) => x === 0))).toBe(true);
    tf.dispose(sum);
    model.dispose();
  });

  it('refuses a model that does not record every parameter, and the autograd LSTM', async () => {
    const model = createClassifier(NO_DROPOUT, 14);
    const silent: RecordingModel = {
      params: model.params,
      loss: (inputs, labels, options) => model.loss(inputs, labels, { training: options.training }),
      predictLogits: (inputs, options) => model.predictLogits(inputs, options),
    };
    await expect(clippedGradientSumFast(silent, batch, rows, 1)).rejects.toThrow(new RegExp(`recorded no use of ${model.params.length} parameter`));
    const autograd = createClassifier({ ...NO_DROPOUT, fastLstm: false }, 14);
    await expect(clippedGradientSumFast(autograd, batch, rows, 1)).rejects.toThrow(/needs the hand-written LSTM/);
    model.dispose();
    autograd.dispose();
  });
});

describe('clipRecorded on one dense layer over P positions', () => {
  // y_{i,p} = x_{i,p} W + b, loss_i = Σ_p Σ_o tanh(y)²: P = 1 (dense), Gram form, materialised X_iᵀ D_i.
  const cases = [
    { name: 'P = 1', P: 1, I: 7, O: 5 },
    { name: 'P = 4, Gram form (P·(I+O) ≤ I·O)', P: 4, I: 16, O: 16 },
    { name: 'P = 12, materialised (P·(I+O) > I·O)', P: 12, I: 3, O: 4 },
  ];
  it.each(cases)('$name: norms and clipped sum equal per-example autograd', async ({ P, I, O }) => {
    const B = 5;
    const x = tf.randomNormal([B * P, I], 0, 1, 'float32', 1) as tf.Tensor2D;
    const W = tf.variable(tf.randomNormal([I, O], 0, 0.5, 'float32', 2) as tf.Tensor2D);
    const b = tf.variable(tf.randomNormal([O], 0, 0.5, 'float32', 3) as tf.Tensor1D);
    const lossOf = (rowsX: tf.Tensor2D, recorder?: GradRecorder): tf.Scalar => tf.sum(tf.square(tf.tanh(linear(rowsX, W, b, recorder, P))));

    const perExample = Array.from({ length: B }, (_, i) => {
      const xi = tf.slice(x, [i * P, 0], [P, I]);
      const { grads, value } = tf.variableGrads(() => lossOf(xi), [W, b]);
      const g = [grads[W.name]!, grads[b.name]!];
      const norm = Math.sqrt(g.reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0]!, 0));
      tf.dispose([xi, value]);
      return { g, norm };
    });
    const norms = perExample.map((e) => e.norm);
    const C = [...norms].sort((p, q) => p - q)[2]!;
    const expected = [W, b].map((_, k) =>
      tf.addN(perExample.map(({ g, norm }) => tf.mul(g[k]!, Math.min(1, C / (norm + 1e-12))))),
    );

    const recorder = new GradRecorder();
    const { value, grads } = tf.variableGrads(() => lossOf(x, recorder), [W, b]);
    expect(tf.sum(tf.abs(grads[W.name]!)).dataSync()[0]).toBe(0); // the layer handed its gradients to the recorder
    const fast = await clipRecorded(recorder.uses, [W, b], C);
    expect(normError(norms, fast.norms)).toBeLessThan(1e-5);
    expect(sumError(expected, fast.sum).err).toBeLessThan(1e-5);

    recorder.dispose();
    tf.dispose([x, W, b, value, ...Object.values(grads), ...expected, ...fast.sum, ...perExample.flatMap((e) => e.g)]);
  });
});
