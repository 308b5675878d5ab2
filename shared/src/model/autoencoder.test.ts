import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { createAutoencoder } from './autoencoder';
import { countParams } from './params';
import { flattenWeights } from './weights';

describe('FederatedAutoencoder', () => {
  it('has the spec 2.2 layers and shapes', () => {
    const m = createAutoencoder();
    try {
      const dense = (i: number, o: number) => i * o + o;
      expect(countParams(m.params)).toBe(
        dense(446, 256) + dense(256, 128) + dense(128, 32) + dense(32, 128) + dense(128, 256) + dense(256, 446),
      );
      expect(m.params.map((p) => p.name).slice(0, 2)).toEqual(['encoder.dense0.kernel', 'encoder.dense0.bias']);
      tf.tidy(() => {
        const x = tf.randomNormal([7, 446], 0, 1, 'float32', 1) as tf.Tensor2D;
        expect(m.encode(x, { training: false }).shape).toEqual([7, 32]);
        expect(m.reconstruct(x, { training: false }).shape).toEqual([7, 446]);
        expect(m.loss(x, { training: false }).shape).toEqual([]);
        expect(() => m.encode(tf.zeros([2, 445]) as tf.Tensor2D, { training: false })).toThrow(/\[N, 446\]/);
      });
    } finally {
      m.dispose();
    }
  });

  it('takes a configurable input width and is deterministic per seed', async () => {
    const a = createAutoencoder({ inputDim: 40, latentDim: 8 }, 3);
    const b = createAutoencoder({ inputDim: 40, latentDim: 8 }, 3);
    try {
      expect(await flattenWeights(a.params)).toEqual(await flattenWeights(b.params));
      tf.tidy(() => {
        const x = tf.randomNormal([5, 40], 0, 1, 'float32', 2) as tf.Tensor2D;
        expect(a.encode(x, { training: false }).shape).toEqual([5, 8]);
        expect(Array.from(a.reconstruct(x, { training: false }).dataSync())).toEqual(Array.from(b.reconstruct(x, { training: false }).dataSync()));
      });
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('learns: reconstruction error drops over a few Adam steps', () => {
    const m = createAutoencoder({ inputDim: 64 }, 1);
    const opt = tf.train.adam(3e-3);
    try {
      tf.tidy(() => {
        // Low-rank data, so a 32-d code can represent it.
        const x = tf.matMul(tf.randomNormal([64, 8], 0, 1, 'float32', 4), tf.randomNormal([8, 64], 0, 0.5, 'float32', 5)) as tf.Tensor2D;
        const vars = m.params.map((p) => p.variable);
        const first = m.loss(x, { training: false }).dataSync()[0]!;
        for (let s = 0; s < 40; s++) opt.minimize(() => m.loss(x, { training: true }), true, vars)?.dispose();
        const last = m.loss(x, { training: false }).dataSync()[0]!;
        expect(last).toBeLessThan(first * 0.6);
      });
    } finally {
      opt.dispose();
      m.dispose();
    }
  });
});
