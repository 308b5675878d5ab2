import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Rng } from '../util/random';
import { normalInit } from './init';
import { initLstmValues, lstmStack, lstmStackAutograd, type LstmWeights } from './lstm';

// The 'host' implementation hands host arrays to tf.tensor; the cpu backend keeps references to
// them instead of copying (wasm copies), so check it there too.
describe('lstmStack on the cpu backend', () => {
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    await tf.setBackend('cpu');
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  it.each(['host', 'ops'] as const)('%s: matches autograd (two layers, mask, full sequence)', (implementation) => {
    expect(tf.getBackend()).toBe('cpu');
    tf.tidy(() => {
      const t = (seed: number, shape: number[]): tf.Tensor => tf.tensor(normalInit(new Rng(seed), shape, 1), shape);
      const layer = (seed: number, I: number, H: number): LstmWeights => {
        const v = initLstmValues(new Rng(seed), I, H);
        return { W: tf.tensor2d(v.W, [I, 4 * H]), U: tf.tensor2d(v.U, [H, 4 * H]), b: tf.tensor1d(v.b) };
      };
      const x = t(1, [3, 6, 4]) as tf.Tensor3D;
      const layers = [layer(2, 4, 5), layer(3, 5, 3)];
      const masks = [tf.div(tf.cast(tf.greater(t(4, [3, 5]), -0.5), 'float32'), 0.7) as tf.Tensor2D];
      const probe = t(5, [3, 6, 3]);
      const run = (fast: boolean) =>
        tf.grads((...ts: tf.Tensor[]) => {
          const ls = [0, 1].map((l) => ({ W: ts[1 + 3 * l] as tf.Tensor2D, U: ts[2 + 3 * l] as tf.Tensor2D, b: ts[3 + 3 * l] as tf.Tensor1D }));
          const opts = { returnSequences: true as const, interLayerMasks: masks };
          const y = fast ? lstmStack(ts[0] as tf.Tensor3D, ls, { ...opts, implementation }) : lstmStackAutograd(ts[0] as tf.Tensor3D, ls, opts);
          return tf.sum(tf.mul(y, probe));
        })([x, ...layers.flatMap((l) => [l.W, l.U, l.b])]);
      const a = run(true);
      const r = run(false);
      a.forEach((g, k) => expect(tf.max(tf.abs(tf.sub(g, r[k]!))).dataSync()[0]).toBeLessThan(1e-5));
    });
  });
});
