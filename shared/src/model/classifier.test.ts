import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { classifierParamCount, createClassifier, DEFAULT_CLASSIFIER_CONFIG, type MultimodalRiskClassifier } from './classifier';
import { countParams } from './params';
import { flattenWeights } from './weights';
import { randomInputs } from '../testing/classifier-inputs';

const inputs = randomInputs;

function withModel(f: (m: MultimodalRiskClassifier) => void, seed = 1, fastLstm = true): void {
  const m = createClassifier({ fastLstm }, seed);
  try {
    tf.tidy(() => f(m));
  } finally {
    m.dispose();
  }
}

/** max |a − b| / max(|b|∞, floor); the floor covers gradients that are exactly zero in theory. */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

describe('MultimodalRiskClassifier', () => {
  it('has the expected parameters (≈ 569k), in a stable order with unique names', () => {
    withModel((m) => {
      expect(countParams(m.params)).toBe(569_091);
      expect(classifierParamCount()).toBe(569_091);
      expect(m.fusionDim).toBe(256);
      const names = m.params.map((p) => p.name);
      expect(new Set(names).size).toBe(names.length);
      expect(names.slice(0, 3)).toEqual(['clinical.lstm0.kernel', 'clinical.lstm0.recurrent_kernel', 'clinical.lstm0.bias']);
      expect(names).toContain('fusion.attention.query.kernel');
      expect(names.at(-1)).toBe('head.dense2.bias');
      for (const p of m.params) expect(p.variable.shape).toEqual(p.shape);
    });
    expect(classifierParamCount({ clinicalHidden: 64, attentionHeads: 4 })).toBe(countParams(createClassifier({ clinicalHidden: 64, attentionHeads: 4 }).params));
  });

  it('produces logits [B, 3] and embeddings [B, 256]', () => {
    withModel((m) => {
      const x = inputs(5, 7);
      expect(m.predictLogits(x, { training: false }).shape).toEqual([5, 3]);
      expect(m.embed(x, { training: false }).shape).toEqual([5, 256]);
      // vitals and labs may have different lengths
      expect(m.predictLogits({ ...x, labs: tf.zeros([5, 3, 16]) as tf.Tensor3D }, { training: false }).shape).toEqual([5, 3]);
    });
  });

  it('initialises deterministically from the seed', async () => {
    const a = createClassifier({}, 42);
    const b = createClassifier({}, 42);
    const c = createClassifier({}, 43);
    try {
      const fa = await flattenWeights(a.params);
      expect(await flattenWeights(b.params)).toEqual(fa);
      expect(await flattenWeights(c.params)).not.toEqual(fa);
    } finally {
      [a, b, c].forEach((m) => m.dispose());
    }
  });

  it('is deterministic without dropout; dropout follows its seed', () => {
    withModel((m) => {
      const x = inputs(6, 5);
      const p1 = m.predictLogits(x, { training: false }).dataSync();
      const p2 = m.predictLogits(x, { training: false }).dataSync();
      expect(Array.from(p2)).toEqual(Array.from(p1));
      const d1 = m.predictLogits(x, { training: true, seed: 9 }).dataSync();
      const d2 = m.predictLogits(x, { training: true, seed: 9 }).dataSync();
      const d3 = m.predictLogits(x, { training: true, seed: 10 }).dataSync();
      expect(Array.from(d2)).toEqual(Array.from(d1));
      expect(Array.from(d3)).not.toEqual(Array.from(d1));
      expect(Array.from(d1)).not.toEqual(Array.from(p1));
    });
  });

  it('fast and autograd LSTMs give the same logits and gradients', () => {
    const fast = createClassifier({ fastLstm: true }, 3);
    const slow = createClassifier({ fastLstm: false }, 3);
    try {
      tf.tidy(() => {
        const x = inputs(4, 6);
        const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
        const lf = fast.predictLogits(x, { training: false }).dataSync();
        const ls = slow.predictLogits(x, { training: false }).dataSync();
        expect(maxRelDiff(lf, ls)).toBeLessThan(1e-5);
        // Same dropout seed → same masks in both models. (The key bias's gradient is 0 in exact
        // arithmetic — softmax ignores a shift shared by all keys — hence the absolute floor.)
        const gf = tf.variableGrads(() => fast.loss(x, labels, { training: true, seed: 5 }), fast.params.map((p) => p.variable));
        const gs = tf.variableGrads(() => slow.loss(x, labels, { training: true, seed: 5 }), slow.params.map((p) => p.variable));
        expect(Math.abs(gf.value.dataSync()[0]! - gs.value.dataSync()[0]!)).toBeLessThan(1e-5);
        fast.params.forEach((p, k) => {
          const a = gf.grads[p.variable.name]!;
          const b = gs.grads[slow.params[k]!.variable.name]!;
          expect(maxRelDiff(a.dataSync(), b.dataSync(), 1e-3), p.name).toBeLessThan(1e-4);
        });
      });
    } finally {
      fast.dispose();
      slow.dispose();
    }
  });

  it('accepts class ids or one-hot targets', () => {
    withModel((m) => {
      const x = inputs(3, 4);
      const a = m.loss(x, tf.tensor1d([2, 0, 1], 'int32'), { training: false }).dataSync()[0]!;
      const b = m.loss(x, tf.cast(tf.oneHot(tf.tensor1d([2, 0, 1], 'int32'), 3), 'float32') as tf.Tensor2D, { training: false }).dataSync()[0]!;
      expect(a).toBeCloseTo(b, 6);
      // and equals the cross-entropy computed by hand from the logits (wasm's float32 oneHot once returned int bits)
      const logits = m.predictLogits(x, { training: false }).arraySync() as number[][];
      const ce = [2, 0, 1].reduce((s, y, i) => {
        const row = logits[i]!;
        const lse = Math.log(row.reduce((t, v) => t + Math.exp(v), 0));
        return s + (lse - row[y]!);
      }, 0) / 3;
      expect(a).toBeCloseTo(ce, 5);
      expect(a).toBeGreaterThan(0.1);
      expect(() => m.loss(x, tf.tensor1d([0, 1], 'int32'), { training: false })).toThrow(/2 labels for a batch of 3/);
    });
  });

  it('learns: the loss of a fixed minibatch drops under Adam', () => {
    withModel((m) => {
      const x = inputs(12, 5, 21);
      const labels = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], 'int32');
      const opt = tf.train.adam(3e-3);
      const vars = m.params.map((p) => p.variable);
      const first = m.loss(x, labels, { training: false }).dataSync()[0]!;
      for (let s = 0; s < 25; s++) opt.minimize(() => m.loss(x, labels, { training: true }), true, vars)?.dispose();
      const last = m.loss(x, labels, { training: false }).dataSync()[0]!;
      opt.dispose();
      expect(last).toBeLessThan(first * 0.5);
    });
  });

  it('rejects inputs of the wrong shape with a clear message', () => {
    withModel((m) => {
      const x = inputs(2, 3);
      expect(() => m.predictLogits({ ...x, vitals: tf.zeros([2, 3, 5]) as tf.Tensor3D }, { training: false })).toThrow(/vitals: expected float32 rank 3 with last dimension 10/);
      expect(() => m.predictLogits({ ...x, omics: tf.zeros([3, 32]) as tf.Tensor2D }, { training: false })).toThrow(/omics.*batch 2/);
    });
    expect(() => createClassifier({ attentionHeads: 7 })).toThrow(/not divisible by 7/);
  });

  it('leaks no tensors across inference, loss and training steps', () => {
    const m = createClassifier({}, 1);
    const x = inputs(4, 5);
    const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
    const opt = tf.train.adam(1e-3);
    const vars = m.params.map((p) => p.variable);
    opt.minimize(() => m.loss(x, labels, { training: true }), true, vars)?.dispose(); // creates Adam's slots
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      tf.dispose(m.predictLogits(x, { training: false }));
      tf.dispose(m.predictLogits(x, { training: true }));
      opt.minimize(() => m.loss(x, labels, { training: true }), true, vars)?.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    m.dispose();
    tf.dispose([x.vitals, x.labs, x.demographics, x.biology, x.omics, labels]);
    expect(() => m.predictLogits(x, { training: false })).toThrow(/disposed/);
  });

  it('exposes its config', () => {
    withModel((m) => {
      expect(m.config).toEqual({ ...DEFAULT_CLASSIFIER_CONFIG, fastLstm: true });
    });
  });
});
