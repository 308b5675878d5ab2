import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { Rng } from '../util/random';
import { normalInit } from './init';
import { initLstmValues, lstmStack, lstmStackAutograd, type LstmWeights } from './lstm';
import { addParam, layerNorm } from './nn';
import { GradRecorder, type DirectUse, type LinearUse } from './recorder';

function randomTensor<R extends tf.Rank>(seed: number, shape: number[], std = 1): tf.Tensor<R> {
  const t: tf.Tensor = tf.tensor(normalInit(new Rng(seed), shape, std), shape, 'float32');
  return t as tf.Tensor<R>;
}

function makeLayer(seed: number, inputSize: number, units: number): LstmWeights {
  const v = initLstmValues(new Rng(seed), inputSize, units);
  const noise = normalInit(new Rng(seed + 1000), [4 * units], 0.3);
  return {
    W: tf.tensor2d(v.W, [inputSize, 4 * units]),
    U: tf.tensor2d(v.U, [units, 4 * units]),
    b: tf.tensor1d(v.b.map((b, i) => b + noise[i]!)),
  };
}

/** max |a − b| / max(|b|_∞, 1e-3) */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const av = a.dataSync();
  const bv = b.dataSync();
  let diff = 0;
  let scale = 1e-3;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i]! - bv[i]!));
    scale = Math.max(scale, Math.abs(bv[i]!));
  }
  return diff / scale;
}

/** Example i of a [B, …] tensor, keeping the batch axis. */
const example = <T extends tf.Tensor>(t: T, i: number): T => tf.slice(t, i, 1);

describe('GradRecorder: what the layers record is each example’s gradient', () => {
  const B = 3;
  const T = 5;
  const I = 4;
  const sizes = [6, 5];
  const cases = (['host', 'ops'] as const).flatMap((implementation) =>
    [false, true].map((returnSequences) => ({ implementation, returnSequences })),
  );

  it.each(cases)('lstmStack ($implementation, returnSequences $returnSequences): X_iᵀ D_i and Σ_t D_i are example i’s W, U, b gradients', ({ implementation, returnSequences }) => {
    tf.tidy(() => {
      const x = randomTensor<tf.Rank.R3>(1, [B, T, I]);
      const layers = sizes.map((H, l) => makeLayer(10 + l, l === 0 ? I : sizes[l - 1]!, H));
      const masks = [tf.div(tf.cast(tf.greater(randomTensor(50, [B, sizes[0]!]), -0.5), 'float32'), 0.7) as tf.Tensor2D];
      const probe = randomTensor(99, returnSequences ? [B, T, sizes[1]!] : [B, sizes[1]!]);
      const weights = layers.flatMap((l) => [l.W, l.U, l.b]);

      // Batched pass with a recorder: the weights' own gradients are zeros, x's is the real one.
      const recorder = new GradRecorder();
      const recorded = tf.grads((xx: tf.Tensor, ..._weights: tf.Tensor[]) =>
        tf.sum(tf.mul(lstmStack(xx as tf.Tensor3D, layers, { returnSequences, interLayerMasks: masks, implementation, recorder }), probe)),
      )([x, ...weights]);
      recorded.slice(1).forEach((g) => expect(tf.max(tf.abs(g)).dataSync()[0]).toBe(0));
      const reference = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(lstmStackAutograd(xx as tf.Tensor3D, layers, { returnSequences, interLayerMasks: masks }), probe)))([x]);
      expect(relErr(recorded[0]!, reference[0]!)).toBeLessThan(1e-5);

      expect(recorder.uses).toHaveLength(layers.length);
      layers.forEach((layer, l) => {
        const use = recorder.uses.find((u): u is LinearUse => u.kind === 'linear' && u.kernels[0] === layer.W);
        expect(use?.kernels).toEqual([layer.W, layer.U]);
        expect(use?.bias).toBe(layer.b);
        for (let i = 0; i < B; i++) {
          const perExample = tf.grads((...ws: tf.Tensor[]) => {
            const ls = layers.map((_, k) => ({ W: ws[3 * k] as tf.Tensor2D, U: ws[3 * k + 1] as tf.Tensor2D, b: ws[3 * k + 2] as tf.Tensor1D }));
            const out = lstmStackAutograd(example(x, i), ls, { returnSequences, interLayerMasks: [example(masks[0]!, i)] });
            return tf.sum(tf.mul(out, example(probe, i)));
          })(weights);
          const [, steps, width] = use!.x.shape;
          const Xi: tf.Tensor2D = tf.reshape(example(use!.x, i), [steps, width]);
          const Di: tf.Tensor2D = tf.reshape(example(use!.dy, i), [steps, use!.dy.shape[2]]);
          const G = tf.matMul(tf.transpose(Xi), Di);
          const rowsW = layer.W.shape[0];
          expect(relErr(tf.slice(G, [0, 0], [rowsW, -1]), perExample[3 * l]!)).toBeLessThan(1e-4);
          expect(relErr(tf.slice(G, [rowsW, 0], [-1, -1]), perExample[3 * l + 1]!)).toBeLessThan(1e-4);
          expect(relErr(tf.sum(Di, 0), perExample[3 * l + 2]!)).toBeLessThan(1e-4);
        }
      });
      recorder.dispose();
    });
  });

  it('layerNorm and addParam record each example’s γ, β and parameter gradients', () => {
    tf.tidy(() => {
      const P = 4;
      const D = 6;
      const x = randomTensor<tf.Rank.R3>(2, [B, P, D]);
      const E = randomTensor<tf.Rank.R2>(3, [P, D], 0.1);
      const gamma = randomTensor<tf.Rank.R1>(4, [D], 0.5);
      const beta = randomTensor<tf.Rank.R1>(5, [D], 0.5);
      const probe = randomTensor(6, [B * P, D]);
      const f = (xx: tf.Tensor3D, e: tf.Tensor, g: tf.Tensor, b: tf.Tensor, recorder?: GradRecorder): tf.Scalar => {
        const tokens = addParam(xx, e, recorder);
        const y = layerNorm(tf.reshape(tokens, [xx.shape[0] * P, D]), g as tf.Tensor1D, b as tf.Tensor1D, 1e-5, recorder, P);
        return tf.sum(tf.mul(tf.square(y), tf.slice(probe, 0, xx.shape[0] * P)));
      };
      const recorder = new GradRecorder();
      const zeros = tf.grads((e: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(x, e, g, b, recorder))([E, gamma, beta]);
      zeros.forEach((z) => expect(tf.max(tf.abs(z)).dataSync()[0]).toBe(0));
      const direct = (param: tf.Tensor): DirectUse => recorder.uses.find((u): u is DirectUse => u.kind === 'direct' && u.param === param)!;
      for (let i = 0; i < B; i++) {
        const probeI = tf.slice(probe, i * P, P);
        const perExample = tf.grads((e: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const y = layerNorm(tf.reshape(tf.add(example(x, i), e), [P, D]), g as tf.Tensor1D, b as tf.Tensor1D);
          return tf.sum(tf.mul(tf.square(y), probeI));
        })([E, gamma, beta]);
        [E, gamma, beta].forEach((param, k) => {
          const grads = direct(param).grads;
          expect(relErr(tf.reshape(example(grads, i), param.shape), perExample[k]!)).toBeLessThan(1e-5);
        });
      }
      recorder.dispose();
    });
  });

  it('releases what it recorded', () => {
    const before = tf.memory().numTensors;
    const recorder = new GradRecorder();
    tf.tidy(() => {
      const x = randomTensor<tf.Rank.R3>(1, [2, 3, 4]);
      const layer = makeLayer(7, 4, 3);
      tf.grads((w: tf.Tensor) => tf.sum(lstmStack(x, [{ ...layer, W: w as tf.Tensor2D }], { recorder })))([layer.W]);
    });
    expect(recorder.uses).toHaveLength(1);
    expect(tf.memory().numTensors).toBe(before + 2);
    recorder.dispose();
    expect(recorder.uses).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
