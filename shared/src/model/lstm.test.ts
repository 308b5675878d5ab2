import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { Rng } from '../util/random';
import { normalInit } from './init';
import { initLstmValues, lstm, lstmAutograd, lstmStack, lstmStackAutograd, type LstmWeights } from './lstm';

function randomTensor<R extends tf.Rank>(seed: number, shape: number[], std = 1): tf.Tensor<R> {
  const t: tf.Tensor = tf.tensor(normalInit(new Rng(seed), shape, std), shape, 'float32');
  return t as tf.Tensor<R>;
}

function makeLayer(seed: number, inputSize: number, units: number, noisyBias = true): LstmWeights {
  const v = initLstmValues(new Rng(seed), inputSize, units);
  if (noisyBias) {
    // Perturb the bias so every gate block gets a non-trivial gradient check.
    const noise = normalInit(new Rng(seed + 1000), [4 * units], 0.3);
    for (let i = 0; i < v.b.length; i++) v.b[i] = v.b[i]! + noise[i]!;
  }
  return {
    W: tf.tensor2d(v.W, [inputSize, 4 * units]),
    U: tf.tensor2d(v.U, [units, 4 * units]),
    b: tf.tensor1d(v.b),
  };
}

/** max |a − b| / max(|b|_∞, floor) */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const av = a.dataSync();
  const bv = b.dataSync();
  expect(av.length).toBe(bv.length);
  let diff = 0;
  let scale = 1e-3;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i]! - bv[i]!));
    scale = Math.max(scale, Math.abs(bv[i]!));
  }
  return diff / scale;
}

type Fwd = (x: tf.Tensor3D, layers: LstmWeights[], masks: (tf.Tensor2D | null)[]) => tf.Tensor;

/** Loss and gradients w.r.t. x and every layer's W, U, b. */
function lossAndGrads(fwd: Fwd, x: tf.Tensor3D, layers: LstmWeights[], masks: (tf.Tensor2D | null)[], probe: tf.Tensor) {
  const flat: tf.Tensor[] = [x, ...layers.flatMap((l) => [l.W, l.U, l.b])];
  const f = (...ts: tf.Tensor[]): tf.Scalar => {
    const ls: LstmWeights[] = layers.map((_, i) => ({
      W: ts[1 + 3 * i] as tf.Tensor2D,
      U: ts[2 + 3 * i] as tf.Tensor2D,
      b: ts[3 + 3 * i] as tf.Tensor1D,
    }));
    // A fixed random projection makes every output element matter differently.
    return tf.sum(tf.mul(fwd(ts[0] as tf.Tensor3D, ls, masks), probe));
  };
  const { value, grads } = tf.valueAndGrads(f)(flat);
  return { value, grads };
}

const fast: Fwd = (x, layers, masks) =>
  layers.length === 1 && impl.current === 'auto'
    ? lstm(x, layers[0]!.W, layers[0]!.U, layers[0]!.b, returnSeq.current)
    : lstmStack(x, layers, { returnSequences: returnSeq.current, interLayerMasks: masks, implementation: impl.current });
const reference: Fwd = (x, layers, masks) =>
  layers.length === 1
    ? lstmAutograd(x, layers[0]!.W, layers[0]!.U, layers[0]!.b, returnSeq.current)
    : lstmStackAutograd(x, layers, { returnSequences: returnSeq.current, interLayerMasks: masks });
const returnSeq = { current: false };
const impl: { current: 'auto' | 'host' | 'ops' } = { current: 'auto' };

describe('lstm (hand-written BPTT) vs lstmAutograd', () => {
  const B = 3;
  const T = 5;
  const I = 4;
  const shapes = [
    { name: 'one layer, last state', sizes: [6], returnSequences: false, masked: false },
    { name: 'one layer, full sequence', sizes: [6], returnSequences: true, masked: false },
    { name: 'two layers, last state', sizes: [6, 5], returnSequences: false, masked: false },
    { name: 'two layers, full sequence', sizes: [6, 5], returnSequences: true, masked: false },
    { name: 'two layers with an inter-layer dropout mask', sizes: [6, 5], returnSequences: false, masked: true },
    { name: 'three layers, full sequence, masked', sizes: [6, 5, 3], returnSequences: true, masked: true },
  ];
  const cases = (['auto', 'host', 'ops'] as const).flatMap((implementation) => shapes.map((c) => ({ ...c, implementation })));

  it.each(cases)('$implementation, $name: same value and gradients', ({ sizes, returnSequences, masked, implementation }) => {
    tf.tidy(() => {
      returnSeq.current = returnSequences;
      impl.current = implementation;
      const x = randomTensor<tf.Rank.R3>(1, [B, T, I]);
      let inSize = I;
      const layers = sizes.map((H, l) => {
        const layer = makeLayer(10 + l, inSize, H);
        inSize = H;
        return layer;
      });
      const masks = sizes.slice(0, -1).map((H, l) =>
        masked ? tf.div(tf.cast(tf.greater(randomTensor(50 + l, [B, H]), -0.5), 'float32'), 0.7) as tf.Tensor2D : null,
      );
      const Hout = sizes[sizes.length - 1]!;
      const probe = randomTensor(99, returnSequences ? [B, T, Hout] : [B, Hout]);

      const a = lossAndGrads(fast, x, layers, masks, probe);
      const r = lossAndGrads(reference, x, layers, masks, probe);
      expect(Math.abs(a.value.dataSync()[0]! - r.value.dataSync()[0]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.value.dataSync()[0]!)));
      expect(a.grads.length).toBe(r.grads.length);
      a.grads.forEach((g, k) => {
        expect(g.shape).toEqual(r.grads[k]!.shape);
        expect(relErr(g, r.grads[k]!)).toBeLessThan(1e-5);
      });
    });
  });

  it('returns the same forward values with and without a gradient tape, and leaks no tensors', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = randomTensor<tf.Rank.R3>(2, [B, T, I]);
      const layers = [makeLayer(3, I, 6), makeLayer(4, 6, 6)];
      const y = lstmStack(x, layers, { returnSequences: true });
      const yr = lstmStackAutograd(x, layers, { returnSequences: true });
      expect(y.shape).toEqual([B, T, 6]);
      expect(relErr(y, yr)).toBeLessThan(1e-5);
      const last = lstm(x, layers[0]!.W, layers[0]!.U, layers[0]!.b);
      expect(last.shape).toEqual([B, 6]);
    });
    // Gradient run: saved tensors must be released after backprop.
    tf.tidy(() => {
      const x = randomTensor<tf.Rank.R3>(2, [B, T, I]);
      const layers = [makeLayer(3, I, 6), makeLayer(4, 6, 6)];
      const g = tf.grads((w: tf.Tensor) => tf.sum(lstmStack(x, [{ ...layers[0]!, W: w as tf.Tensor2D }, layers[1]!])))([layers[0]!.W]);
      expect(g[0]!.shape).toEqual([I, 24]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(['host', 'ops'] as const)('%s: handles T = 1', (implementation) => {
    tf.tidy(() => {
      returnSeq.current = true;
      impl.current = implementation;
      const x = randomTensor<tf.Rank.R3>(7, [2, 1, 3]);
      const layers = [makeLayer(8, 3, 4), makeLayer(9, 4, 2)];
      const probe = randomTensor(5, [2, 1, 2]);
      const a = lossAndGrads(fast, x, layers, [null], probe);
      const r = lossAndGrads(reference, x, layers, [null], probe);
      a.grads.forEach((g, k) => expect(relErr(g, r.grads[k]!)).toBeLessThan(1e-5));
    });
  });

  it('host and ops agree at the real encoder sizes (T = 30, B = 8, 10 → 128 → 128)', () => {
    tf.tidy(() => {
      returnSeq.current = false;
      const x = randomTensor<tf.Rank.R3>(21, [8, 30, 10]);
      const layers = [makeLayer(22, 10, 128, false), makeLayer(23, 128, 128, false)];
      const masks = [tf.div(tf.cast(tf.greater(randomTensor(24, [8, 128]), -0.5), 'float32'), 0.7) as tf.Tensor2D];
      const probe = randomTensor(25, [8, 128]);
      impl.current = 'host';
      const a = lossAndGrads(fast, x, layers, masks, probe);
      impl.current = 'ops';
      const o = lossAndGrads(fast, x, layers, masks, probe);
      const r = lossAndGrads(reference, x, layers, masks, probe);
      a.grads.forEach((g, k) => {
        expect(relErr(g, r.grads[k]!)).toBeLessThan(1e-4);
        expect(relErr(o.grads[k]!, r.grads[k]!)).toBeLessThan(1e-4);
      });
    });
  });

  it('rejects mismatched weight shapes with a clear message', () => {
    tf.tidy(() => {
      const x = tf.zeros([2, 3, 4]) as tf.Tensor3D;
      const bad = makeLayer(1, 5, 6);
      expect(() => lstm(x, bad.W, bad.U, bad.b)).toThrow(/expected W \[4, 4H\]/);
    });
  });

  it('initialises Keras-style: forget bias 1, orthonormal recurrent rows', () => {
    const { W, U, b } = initLstmValues(new Rng(3), 10, 8);
    expect(W.length).toBe(10 * 32);
    expect(Array.from(b.subarray(8, 16))).toEqual(new Array(8).fill(1));
    expect(Array.from(b.subarray(0, 8))).toEqual(new Array(8).fill(0));
    // U [8, 32]: rows orthonormal.
    for (let r = 0; r < 8; r++) {
      for (let s = 0; s < 8; s++) {
        let dot = 0;
        for (let c = 0; c < 32; c++) dot += U[r * 32 + c]! * U[s * 32 + c]!;
        expect(dot).toBeCloseTo(r === s ? 1 : 0, 5);
      }
    }
  });
});
