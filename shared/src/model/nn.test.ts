import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { addMany, dropoutMask, layerNorm, linear, multiHeadSelfAttention, type AttentionWeights } from './nn';

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('nn', () => {
  it('linear: value and gradients match autograd', () => {
    tf.tidy(() => {
      const x = rand([6, 5], 1) as tf.Tensor2D;
      const W = rand([5, 4], 2) as tf.Tensor2D;
      const b = rand([4], 3) as tf.Tensor1D;
      const probe = rand([6, 4], 4);
      const f = (lin: (x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor) =>
        tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(lin(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D), probe)))([x, W, b]);
      const fast = f(linear);
      const ref = f((xx, ww, bb) => tf.add(tf.matMul(xx, ww), bb));
      fast.forEach((g, k) => expect(maxAbsDiff(g, ref[k]!)).toBeLessThan(1e-5));
      expect(maxAbsDiff(linear(x, W, b), tf.add(tf.matMul(x, W), b))).toBeLessThan(1e-6);
    });
  });

  it('dropoutMask: deterministic per seed, zero or 1/(1−p), about the right rate', () => {
    tf.tidy(() => {
      const a = dropoutMask([100, 100], 0.3, 7).dataSync();
      const b = dropoutMask([100, 100], 0.3, 7).dataSync();
      expect(Array.from(a)).toEqual(Array.from(b));
      let zeros = 0;
      for (const v of a) {
        if (v === 0) zeros++;
        else expect(v).toBeCloseTo(1 / 0.7, 6);
      }
      expect(zeros / a.length).toBeGreaterThan(0.27);
      expect(zeros / a.length).toBeLessThan(0.33);
    });
  });

  it('layerNorm normalises the last axis', () => {
    tf.tidy(() => {
      const y = layerNorm(tf.add(tf.mul(rand([4, 64], 1), 3), 5) as tf.Tensor2D, tf.ones([64]) as tf.Tensor1D, tf.zeros([64]) as tf.Tensor1D);
      const { mean, variance } = tf.moments(y, -1);
      expect(maxAbsDiff(mean, tf.zeros([4]))).toBeLessThan(1e-5);
      expect(maxAbsDiff(variance, tf.ones([4]))).toBeLessThan(1e-3);
    });
  });

  it('attention: shape, and permuting tokens permutes the output', () => {
    tf.tidy(() => {
      const D = 16;
      const w = Object.fromEntries(
        ['q', 'k', 'v', 'o'].flatMap((n, i) => [[`W${n}`, tf.mul(rand([D, D], 10 + i), 0.3)], [`b${n}`, rand([D], 20 + i)]]),
      ) as unknown as AttentionWeights;
      const x = rand([2, 5, D], 1) as tf.Tensor3D;
      const y = multiHeadSelfAttention(x, w, 4);
      expect(y.shape).toEqual([2, 5, D]);
      const perm = tf.tensor1d([3, 1, 4, 0, 2], 'int32');
      const yp = multiHeadSelfAttention(tf.gather(x, perm, 1) as tf.Tensor3D, w, 4);
      expect(maxAbsDiff(yp, tf.gather(y, perm, 1))).toBeLessThan(1e-5);
      expect(() => multiHeadSelfAttention(x, w, 3)).toThrow(/not divisible/);
    });
  });
});

describe('addMany', () => {
  it.each([1, 2, 7, 8, 21, 50])('adds %i tensors exactly as tf.addN, in groups a WebGPU kernel can bind', async (n) => {
    const ts = Array.from({ length: n }, (_, i) => tf.tensor1d([i + 1, -2 * i, 0.5 * i]));
    const want = tf.addN(ts);
    let got!: tf.Tensor;
    const profile = await tf.profile(() => {
      got = tf.keep(addMany(ts));
    });
    const adds = profile.kernels.filter((k) => k.name === 'AddN');
    if (n > 1) expect(adds.length).toBeGreaterThan(0);
    for (const k of adds) expect(k.inputShapes.length).toBeLessThanOrEqual(7);
    const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0); // −0 and 0 alike
    expect(plain(await got.data())).toEqual(plain(await want.data()));
    // a new tensor even for one input: disposing it leaves the input alive
    got.dispose();
    expect(ts[0]!.isDisposed).toBe(false);
    tf.dispose([want, ...ts]);
  });

  it('refuses an empty list', () => {
    expect(() => addMany([])).toThrow(/nothing to add/);
  });
});
