/**
 * Functional layers for the models (no tfjs-layers): dense with a wasm-friendly backward, dropout,
 * layer norm and multi-head self-attention. Every function is pure given its tensors; parameters
 * live in the caller's `Param` list.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradRecorder } from './recorder';

/** Inputs one AddN kernel takes here: WebGPU binds each input as a storage buffer, 8 per shader stage by default (one is the output). */
const ADD_N_GROUP = 7;

/**
 * Σ of same-shaped tensors, as `tf.addN` but in groups of at most 7: on WebGPU one AddN kernel
 * binds every input as a storage buffer, and a device allows 8 per shader stage unless it asks
 * for more (TF.js does not), so `tf.addN` of 21 tensors fails pipeline validation there.
 */
export function addMany<T extends tf.Tensor>(tensors: readonly T[]): T {
  if (tensors.length === 0) throw new Error('addMany: nothing to add');
  return tf.tidy(() => {
    let level: tf.Tensor[] = [...tensors];
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += ADD_N_GROUP) {
        const group = level.slice(i, i + ADD_N_GROUP);
        next.push(group.length === 1 ? group[0]! : tf.addN(group));
      }
      level = next;
    }
    // A lone input comes back as a new tensor, like tf.addN's result, so callers may dispose it.
    return (level[0] === tensors[0] ? tf.clone(level[0]!) : level[0]!) as T;
  });
}

/**
 * y = x W + b for x [N, I], W [I, O], b [O]. The backward uses explicit transposes instead of the
 * transposeA/transposeB matMul flags that autograd's MatMul gradient uses, which are 10–20× slower
 * on the wasm backend.
 *
 * With a `recorder`, the backward records x and dy per example (the N rows are B examples of
 * `positions` consecutive rows each) and returns zeros for W and b (see ./recorder.ts).
 */
export function linear(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D, recorder?: GradRecorder, positions = 1): tf.Tensor2D {
  if (x.rank !== 2 || x.shape[1] !== W.shape[0] || b.shape[0] !== W.shape[1]) {
    throw new Error(`linear: x [${x.shape.join(', ')}] · W [${W.shape.join(', ')}] + b [${b.shape.join(', ')}] do not fit`);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, Wi, bi] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    save([xi, Wi]);
    const value: tf.Tensor2D = tf.add(tf.matMul(xi, Wi), bi);
    const gradFunc = (dy: tf.Tensor2D, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, Ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dx = tf.matMul(dy, tf.transpose(Ws));
      if (recorder) {
        // Recorded: the per-example pieces go to the recorder; W and b get zeros here.
        recorder.record({ kind: 'linear', kernels: [W], bias: b, x: perExample(xs, positions), dy: perExample(dy, positions) });
        return [dx, tf.zerosLike(Ws), tf.zerosLike(bi)];
      }
      const n = xs.shape[0];
      return [
        dx,
        tf.matMul(tf.transpose(xs), dy),
        // Σ over rows as a GEMV: wasm's Sum over axis 0 is slow.
        tf.reshape(tf.matMul(tf.ones([1, n]), dy), [dy.shape[1]]),
      ];
    };
    return { value, gradFunc };
  });
  return op(x, W, b) as tf.Tensor2D;
}

/** [N, F] rows, `positions` consecutive rows per example → [N / positions, positions, F]. */
function perExample(t: tf.Tensor2D, positions: number): tf.Tensor3D {
  const [N, F] = t.shape;
  if (!(Number.isInteger(positions) && positions >= 1 && N % positions === 0)) {
    throw new Error(`recording: ${N} rows are not whole examples of ${positions} positions`);
  }
  return tf.reshape(t, [N / positions, positions, F]);
}

/**
 * x + p for x [B, ...s] and a parameter p [...s] broadcast over the batch. With a `recorder`, each
 * example's gradient of p (its slice of dy) is recorded and p's own gradient is zero.
 */
export function addParam<T extends tf.Tensor>(x: T, p: tf.Tensor, recorder?: GradRecorder): T {
  if (x.shape.slice(1).join() !== p.shape.join()) throw new Error(`addParam: x [${x.shape.join(', ')}] + p [${p.shape.join(', ')}] do not fit`);
  if (!recorder) return tf.add(x, p);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, pi] = args as [tf.Tensor, tf.Tensor];
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      recorder.record({ kind: 'direct', param: p, grads: dy });
      return [tf.clone(dy), tf.zerosLike(pi)];
    };
    return { value: tf.add(xi, pi), gradFunc };
  });
  return op(x, p) as T;
}

/**
 * Inverted-dropout mask of `shape`: 0 with probability `rate`, else 1/(1 − rate) (Srivastava et
 * al., JMLR 2014). Deterministic for a given seed.
 */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
  return tf.tidy(() => {
    const keep = tf.cast(tf.greaterEqual(tf.randomUniform(shape, 0, 1, 'float32', seed), rate), 'float32');
    return tf.mul(keep, 1 / (1 - rate));
  });
}

/** Source of dropout seeds for one forward pass; `null` when not training (dropout off). */
export type DropoutSeeds = (() => number) | null;

export function dropout<T extends tf.Tensor>(x: T, rate: number, seeds: DropoutSeeds): T {
  if (!seeds || rate === 0) return x;
  return tf.mul(x, dropoutMask(x.shape, rate, seeds()));
}

/**
 * Layer norm over the last axis (Ba, Kiros & Hinton, 2016). x [N, D], gamma/beta [D]. With a
 * `recorder` (rows: B examples of `positions` rows each), each example's gradients of γ (Σ x̂ ⊙ dy)
 * and β (Σ dy) are recorded and their own gradients are zero.
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon = 1e-5, recorder?: GradRecorder, positions = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed: tf.Tensor2D = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
    if (recorder) return recordedScaleShift(normed, gamma, beta, recorder, positions);
    return tf.add(tf.mul(normed, gamma), beta);
  });
}

/** x̂ ⊙ γ + β, recording each example's gradients of γ and β. */
function recordedScaleShift(normed: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, recorder: GradRecorder, positions: number): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gi, bi] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    save([xi, gi]);
    const gradFunc = (dy: tf.Tensor2D, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, gs] = saved as [tf.Tensor2D, tf.Tensor1D];
      recorder.record({ kind: 'direct', param: gamma, grads: tf.sum(perExample(tf.mul<tf.Tensor2D>(xs, dy), positions), 1) });
      recorder.record({ kind: 'direct', param: beta, grads: tf.sum(perExample(dy, positions), 1) });
      return [tf.mul(dy, gs), tf.zerosLike(gs), tf.zerosLike(bi)];
    };
    const value: tf.Tensor2D = tf.add(tf.mul(xi, gi), bi);
    return { value, gradFunc };
  });
  return op(normed, gamma, beta) as tf.Tensor2D;
}

export interface AttentionWeights {
  readonly Wq: tf.Tensor2D;
  readonly bq: tf.Tensor1D;
  readonly Wk: tf.Tensor2D;
  readonly bk: tf.Tensor1D;
  readonly Wv: tf.Tensor2D;
  readonly bv: tf.Tensor1D;
  readonly Wo: tf.Tensor2D;
  readonly bo: tf.Tensor1D;
}

/**
 * Multi-head scaled dot-product self-attention (Vaswani et al., NeurIPS 2017) over x [B, N, D]
 * with `heads` heads of width D/heads; returns [B, N, D] (after the output projection).
 * `attentionDropout` drops attention weights when training, as torch.nn.MultiheadAttention does.
 */
export function multiHeadSelfAttention(
  x: tf.Tensor3D,
  w: AttentionWeights,
  heads: number,
  attentionDropout = 0,
  seeds: DropoutSeeds = null,
  recorder?: GradRecorder,
  onAttention?: (probs: tf.Tensor4D) => void,
): tf.Tensor3D {
  const [B, N, D] = x.shape;
  checkHeads(D, heads);
  return tf.tidy(() => {
    const x2: tf.Tensor2D = tf.reshape(x, [B * N, D]);
    const q = tf.reshape(linear(x2, w.Wq, w.bq, recorder, N), [B, N, D]) as tf.Tensor3D;
    const k = tf.reshape(linear(x2, w.Wk, w.bk, recorder, N), [B, N, D]) as tf.Tensor3D;
    const v = tf.reshape(linear(x2, w.Wv, w.bv, recorder, N), [B, N, D]) as tf.Tensor3D;
    return attendAndProject(q, k, v, w, heads, attentionDropout, seeds, recorder, onAttention);
  });
}

function checkHeads(D: number, heads: number): void {
  if (!Number.isInteger(heads) || heads < 1 || D % heads !== 0) throw new Error(`attention: width ${D} is not divisible by ${heads} heads`);
}

/** softmax(q kᵀ / √dh) v per head, heads merged, output projection. q, k, v [B, N, D]. */
function attendAndProject(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  w: AttentionWeights,
  heads: number,
  attentionDropout: number,
  seeds: DropoutSeeds,
  recorder: GradRecorder | undefined,
  onAttention?: (probs: tf.Tensor4D) => void,
): tf.Tensor3D {
  const [B, N, D] = q.shape;
  const dh = D / heads;
  // [B, N, D] → [B, heads, N, dh] (or [B, heads, dh, N] for kᵀ: no transposed matMul flags).
  const split = (t: tf.Tensor3D, perm: number[]): tf.Tensor4D => tf.transpose(tf.reshape(t, [B, N, heads, dh]), perm);
  const scores = tf.mul(tf.matMul(split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])), 1 / Math.sqrt(dh)); // [B, heads, N, N]
  const probs = tf.softmax(scores, -1) as tf.Tensor4D;
  onAttention?.(probs); // [B, heads, query, key], before dropout
  const attn = dropout(probs, attentionDropout, seeds);
  const ctx = tf.matMul(attn, split(v, [0, 2, 1, 3])); // [B, heads, N, dh]
  const merged: tf.Tensor2D = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * N, D]);
  return tf.reshape(linear(merged, w.Wo, w.bo, recorder, N), [B, N, D]);
}
