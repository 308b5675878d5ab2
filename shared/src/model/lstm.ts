/**
 * Keras-style LSTM (Hochreiter & Schmidhuber, Neural Computation 1997; forget gate: Gers et al.,
 * 2000): gates i, f, c (g), o; kernel W [I, 4H], recurrent kernel U [H, 4H], one bias b [4H]; the
 * gate blocks are laid out i | f | g | o along the 4H axis, exactly as tf.keras stores them.
 *
 *   z_t = x_t W + h_{t-1} U + b,   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)
 *   c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t),   h_{-1} = c_{-1} = 0
 *
 * Two implementations of the same maths:
 *  - `lstmAutograd` / `lstmStackAutograd`: plain TF.js ops, autograd does the backward (reference).
 *  - `lstm` / `lstmStack`: forward and backward (BPTT) written by hand inside `tf.customGrad`,
 *    shaped by what we measured on the wasm backend:
 *      · matMul with transposeA/transposeB is 10–20× slower than without (and autograd's MatMul
 *        gradient uses exactly those flags), so every transpose is an explicit `tf.transpose`;
 *      · Slice/Split/Unstack read back the *whole* source tensor on every call, so nothing is cut
 *        out of a big tensor per step;
 *      · each kernel dispatch costs ~5–10 µs, more than the element-wise work on [B, H], and
 *        Tanh is a scalar loop ~10× slower than the SIMD Sigmoid.
 *    On wasm and cpu (the default 'host' implementation) each step is a few dispatches: the
 *    input, recurrent and bias terms of all four gates are one fused GEMM + sigmoid on
 *    [x_t, h_{t−1}] (g's columns doubled: tanh(z) = 2σ(2z) − 1), and the cell update and its
 *    derivatives run in JS on host arrays. On GPU backends ('ops') everything stays TF.js ops.
 *    Weight gradients are one GEMM per layer over all T·B time-major rows after the loop.
 *    `lstmStack` runs several layers in one customGrad so layers hand sequences over directly.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradRecorder } from './recorder';

import { constantInit, glorotUniform, orthogonal, type RandomSource } from './init';

/** Weights of one LSTM layer: kernel W [I, 4H], recurrent kernel U [H, 4H], bias b [4H]. */
export interface LstmWeights {
  readonly W: tf.Tensor2D;
  readonly U: tf.Tensor2D;
  readonly b: tf.Tensor1D;
}

export interface LstmStackOptions {
  /** Return the top layer's whole sequence [B, T, H] instead of its last hidden state [B, H]. */
  readonly returnSequences?: boolean;
  /**
   * `interLayerMasks[l]` ([B, H_l], already scaled by 1/(1−p)) multiplies the output sequence of
   * layer l before it feeds layer l+1, the same mask at every time step (variational dropout, Gal &
   * Ghahramani, NeurIPS 2016). `null`/missing entries mean no dropout there.
   */
  readonly interLayerMasks?: readonly (tf.Tensor2D | null | undefined)[];
  /**
   * 'host': GEMMs in TF.js, the cell maths in JS on host arrays (needs cheap synchronous reads:
   * wasm, cpu). 'ops': everything as TF.js ops (GPU backends). 'auto' (default) picks by backend.
   */
  readonly implementation?: 'auto' | 'host' | 'ops';
  /**
   * Per-example gradient book-keeping (./recorder.ts): the backward records, per layer, the rows
   * [x_t, h_{t−1}] [B, T, I+H] and the gate gradients dL/dz_t [B, T, 4H] as one `linear` use of
   * (W, U, b), and returns zeros for W, U and b instead of computing them.
   */
  readonly recorder?: GradRecorder;
}

/** Initial values of one layer, Keras defaults: Glorot-uniform W, orthogonal U, zero b with forget bias 1. */
export function initLstmValues(
  rng: RandomSource,
  inputSize: number,
  units: number,
): { W: Float32Array; U: Float32Array; b: Float32Array } {
  const W = glorotUniform(rng, inputSize, 4 * units);
  const U = orthogonal(rng, units, 4 * units);
  const b = constantInit([4 * units], 0);
  b.fill(1, units, 2 * units); // unit_forget_bias (Jozefowicz et al., ICML 2015)
  return { W, U, b };
}

function checkLayers(x: tf.Tensor3D, layers: readonly LstmWeights[]): void {
  if (x.rank !== 3) throw new Error(`lstm: x must be [B, T, I], got shape [${x.shape.join(', ')}]`);
  if (layers.length === 0) throw new Error('lstm: at least one layer is required');
  if (x.shape[1] < 1) throw new Error('lstm: sequence length must be at least 1');
  let inSize = x.shape[2];
  layers.forEach(({ W, U, b }, l) => {
    const H = U.shape[0];
    const ok =
      W.rank === 2 && U.rank === 2 && b.rank === 1 &&
      W.shape[0] === inSize && W.shape[1] === 4 * H && U.shape[1] === 4 * H && b.shape[0] === 4 * H;
    if (!ok) {
      throw new Error(
        `lstm layer ${l}: expected W [${inSize}, 4H], U [H, 4H], b [4H]; got W [${W.shape.join(', ')}], ` +
          `U [${U.shape.join(', ')}], b [${b.shape.join(', ')}]`,
      );
    }
    inSize = H;
  });
}

// ---------------------------------------------------------------------------------------------
// Reference: autograd
// ---------------------------------------------------------------------------------------------

export function lstmAutograd(x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences: true): tf.Tensor3D;
export function lstmAutograd(x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences?: false): tf.Tensor2D;
export function lstmAutograd(
  x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences?: boolean,
): tf.Tensor2D | tf.Tensor3D;
/** One LSTM layer from plain ops; TF.js autograd differentiates it. x [B, T, I]. */
export function lstmAutograd(
  x: tf.Tensor3D,
  W: tf.Tensor2D,
  U: tf.Tensor2D,
  b: tf.Tensor1D,
  returnSequences = false,
): tf.Tensor2D | tf.Tensor3D {
  checkLayers(x, [{ W, U, b }]);
  return tf.tidy(() => {
    const [B, T] = x.shape;
    const H = U.shape[0];
    // (tf.unstack's gradient breaks when there is a single output, hence the reshape for T = 1.)
    const xs = T === 1 ? [tf.reshape(x, [B, x.shape[2]]) as tf.Tensor2D] : (tf.unstack(x, 1) as tf.Tensor2D[]);
    let h: tf.Tensor2D = tf.zeros([B, H]);
    let c: tf.Tensor2D = tf.zeros([B, H]);
    const hs: tf.Tensor2D[] = [];
    for (let t = 0; t < T; t++) {
      const z = tf.add(tf.add(tf.matMul(xs[t]!, W), tf.matMul(h, U)), b);
      const [zi, zf, zg, zo] = tf.split(z, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      c = tf.add(tf.mul(tf.sigmoid(zf), c), tf.mul(tf.sigmoid(zi), tf.tanh(zg)));
      h = tf.mul(tf.sigmoid(zo), tf.tanh(c));
      hs.push(h);
    }
    return returnSequences ? tf.stack(hs, 1) as tf.Tensor3D : h;
  });
}

export function lstmStackAutograd(x: tf.Tensor3D, layers: readonly LstmWeights[], opts: LstmStackOptions & { returnSequences: true }): tf.Tensor3D;
export function lstmStackAutograd(x: tf.Tensor3D, layers: readonly LstmWeights[], opts?: LstmStackOptions & { returnSequences?: false }): tf.Tensor2D;
export function lstmStackAutograd(x: tf.Tensor3D, layers: readonly LstmWeights[], opts?: LstmStackOptions): tf.Tensor2D | tf.Tensor3D;
/** Stacked layers of `lstmAutograd` with the same inter-layer masks as `lstmStack`. */
export function lstmStackAutograd(
  x: tf.Tensor3D,
  layers: readonly LstmWeights[],
  opts: LstmStackOptions = {},
): tf.Tensor2D | tf.Tensor3D {
  checkLayers(x, layers);
  if (opts.recorder) throw new Error('lstmStackAutograd: recording per-example gradients needs the hand-written LSTM (lstmStack)');
  return tf.tidy(() => {
    let seq = x;
    for (let l = 0; l < layers.length - 1; l++) {
      const { W, U, b } = layers[l]!;
      seq = lstmAutograd(seq, W, U, b, true);
      const mask = opts.interLayerMasks?.[l];
      if (mask) seq = tf.mul(seq, tf.expandDims(mask, 1));
    }
    const { W, U, b } = layers[layers.length - 1]!;
    return lstmAutograd(seq, W, U, b, opts.returnSequences ?? false);
  });
}

// ---------------------------------------------------------------------------------------------
// Fast: hand-written BPTT
// ---------------------------------------------------------------------------------------------

export function lstm(x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences: true): tf.Tensor3D;
export function lstm(x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences?: false): tf.Tensor2D;
export function lstm(
  x: tf.Tensor3D, W: tf.Tensor2D, U: tf.Tensor2D, b: tf.Tensor1D, returnSequences?: boolean,
): tf.Tensor2D | tf.Tensor3D;
/** One LSTM layer with a hand-written backward; same maths as `lstmAutograd`. x [B, T, I]. */
export function lstm(
  x: tf.Tensor3D,
  W: tf.Tensor2D,
  U: tf.Tensor2D,
  b: tf.Tensor1D,
  returnSequences = false,
): tf.Tensor2D | tf.Tensor3D {
  return lstmStack(x, [{ W, U, b }], { returnSequences });
}

export function lstmStack(x: tf.Tensor3D, layers: readonly LstmWeights[], opts: LstmStackOptions & { returnSequences: true }): tf.Tensor3D;
export function lstmStack(x: tf.Tensor3D, layers: readonly LstmWeights[], opts?: LstmStackOptions & { returnSequences?: false }): tf.Tensor2D;
export function lstmStack(x: tf.Tensor3D, layers: readonly LstmWeights[], opts?: LstmStackOptions): tf.Tensor2D | tf.Tensor3D;
/**
 * Stacked LSTM layers (the output sequence of layer l feeds layer l+1) in one customGrad with a
 * hand-written BPTT. Gradients flow to x and to every W, U, b; masks are constants.
 */
export function lstmStack(
  x: tf.Tensor3D,
  layers: readonly LstmWeights[],
  opts: LstmStackOptions = {},
): tf.Tensor2D | tf.Tensor3D {
  checkLayers(x, layers);
  const B = x.shape[0];
  const masks = layers.map((_, l) => (l === 0 ? null : (opts.interLayerMasks?.[l - 1] ?? null)));
  masks.forEach((m, l) => {
    const H = layers[l - 1]?.U.shape[0];
    if (m && (m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== H)) {
      throw new Error(`lstmStack: mask ${l - 1} must be [${B}, ${H}], got [${m.shape.join(', ')}]`);
    }
  });
  const impl = opts.implementation ?? 'auto';
  const host = impl === 'host' || (impl === 'auto' && HOST_BACKENDS.has(tf.getBackend()));
  const inputs: tf.Tensor[] = [x];
  for (const { W, U, b } of layers) inputs.push(W, U, b);
  const returnSequences = opts.returnSequences ?? false;
  const recorder = opts.recorder ?? null;
  const op = tf.customGrad(host ? hostStack(layers, masks, returnSequences, recorder) : opsStack(layers, masks, returnSequences, recorder));
  return op(...inputs) as tf.Tensor2D | tf.Tensor3D;
}

/** Backends whose tensor data a synchronous read returns cheaply (no GPU round trip). */
const HOST_BACKENDS = new Set(['wasm', 'cpu']);

type StackFn = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

// ---------------------------------------------------------------------------------------------
// Host implementation (wasm, cpu): GEMMs in TF.js, the element-wise cell maths in plain JS
// ---------------------------------------------------------------------------------------------

/** [B, T, F] batch-major → [T, B, F] time-major (or back, with B and T swapped). */
function swapLeadingAxes(src: ArrayLike<number>, d0: number, d1: number, F: number): Float32Array {
  const out = new Float32Array(d0 * d1 * F);
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      const from = (a * d1 + b) * F;
      const to = (b * d0 + a) * F;
      for (let k = 0; k < F; k++) out[to + k] = src[from + k]!;
    }
  }
  return out;
}

/**
 * Cell update of step t for all B rows, in place: A holds i, f, σ(2 z_g), o (row stride 4H); writes
 * c, tanh(c) and h. Small monomorphic functions so that V8 optimises the hot loops well.
 */
function cellForward(A: Float32Array, C: Float32Array, TC: Float32Array, Hs: Float32Array, t: number, B: number, H: number): void {
  const H4 = 4 * H;
  for (let bi = 0; bi < B; bi++) {
    const a = (t * B + bi) * H4;
    const r = (t * B + bi) * H;
    const p = r - B * H; // previous step's row
    for (let j = 0; j < H; j++) {
      const g = 2 * A[a + 2 * H + j]! - 1;
      const cPrev = t > 0 ? C[p + j]! : 0;
      const c = A[a + H + j]! * cPrev + A[a + j]! * g;
      const tc = 2 / (1 + Math.exp(-2 * c)) - 1; // tanh(c), overflow-safe
      C[r + j] = c;
      TC[r + j] = tc;
      Hs[r + j] = A[a + 3 * H + j]! * tc;
    }
  }
}

/**
 * BPTT through the cell at step t: from dL/dh_t (dOut + dhRec) and dL/dc_t (dcRec) to dL/dz_t
 * (written to dZ, gate blocks i | f | g | o, w.r.t. the unscaled pre-activations); leaves
 * dL/dc_{t−1} in dcRec.
 */
function cellBackward(
  A: Float32Array, C: Float32Array, TC: Float32Array, dOut: Float32Array,
  dhRec: Float32Array, dcRec: Float32Array, dZ: Float32Array, t: number, B: number, H: number,
): void {
  const H4 = 4 * H;
  for (let bi = 0; bi < B; bi++) {
    const a = (t * B + bi) * H4;
    const r = (t * B + bi) * H;
    const p = r - B * H;
    const s = bi * H;
    for (let j = 0; j < H; j++) {
      const i = A[a + j]!;
      const f = A[a + H + j]!;
      const g = 2 * A[a + 2 * H + j]! - 1;
      const o = A[a + 3 * H + j]!;
      const tc = TC[r + j]!;
      const cPrev = t > 0 ? C[p + j]! : 0;
      const dh = dOut[r + j]! + dhRec[s + j]!;
      const dc = dcRec[s + j]! + dh * o * (1 - tc * tc);
      dZ[a + j] = dc * g * i * (1 - i);
      dZ[a + H + j] = dc * cPrev * f * (1 - f);
      dZ[a + 2 * H + j] = dc * i * (1 - g * g);
      dZ[a + 3 * H + j] = dh * tc * o * (1 - o);
      dcRec[s + j] = dc * f;
    }
  }
}

/**
 * A float32 tensor's values on the host, to be read at once and never kept: on wasm a view of its
 * heap (valid until the next TF.js call allocates), elsewhere `dataSync()` (cpu: its own array).
 * Measured in Chromium 156: `dataSync()` of 16 k floats takes 180 µs there (the backend copies
 * with `HEAPU8.slice`, slow on a WebAssembly memory), a view and a `set` 1 µs; in Node both are
 * cheap. The per-step reads of the host LSTM were most of the portal's WASM step.
 */
function hostView(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (info: tf.TensorInfo) => Float32Array };
  if (t.dtype === 'float32' && typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  return t.dataSync() as Float32Array;
}

/** rows [B, R] = dZ_t · [W; U]ᵀ (or · Uᵀ): the last H columns are dL/dh_{t−1}, the first I (if any) dL/dx_t. */
function splitBackRows(
  rows: Float32Array, dIn: Float32Array | null, mask: Float32Array | null, dhRec: Float32Array,
  t: number, B: number, I: number, H: number, R: number,
): void {
  for (let bi = 0; bi < B; bi++) {
    const o = bi * R;
    if (dIn) {
      const d = (t * B + bi) * I;
      const m = bi * I;
      for (let k = 0; k < I; k++) dIn[d + k] = mask ? rows[o + k]! * mask[m + k]! : rows[o + k]!;
    }
    dhRec.set(rows.subarray(o + R - H, o + R), bi * H);
  }
}

interface HostLayer {
  readonly I: number;
  readonly H: number;
  /** [T·B, I+H] time-major rows [x_t, h_{t−1}] (x already masked). */
  readonly XH: Float32Array;
  /** [T·B, 4H] gate activations i, f, σ(2 z_g), o. */
  readonly A: Float32Array;
  /** [T·B, H] cell states and tanh(c). */
  readonly C: Float32Array;
  readonly TC: Float32Array;
  /** [B, I] mask applied to this layer's inputs, if any. */
  readonly mask: Float32Array | null;
}

/**
 * Per time step: one tensor write [x_t, h_{t−1}], one fused GEMM + bias + sigmoid over all four
 * gates (the g columns pre-scaled by 2 so that tanh(z) = 2σ(2z) − 1) and one read back; the cell
 * update runs in JS on host arrays. Backward: per step one write of dZ_t, one GEMM dZ_t·[W; U]ᵀ
 * and one read back; weight gradients are one GEMM per layer over all T·B rows. So a step costs a
 * handful of kernel dispatches instead of dozens, and no per-step tensor has to be sliced out.
 *
 * Host arrays handed to tf.tensor are never written afterwards: the cpu backend keeps a reference.
 */
function hostStack(
  layers: readonly LstmWeights[],
  masks: readonly (tf.Tensor2D | null)[],
  returnSequences: boolean,
  recorder: GradRecorder | null,
): StackFn {
  const L = layers.length;
  return (...args) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xIn = args[0] as tf.Tensor3D;
    const [B, T, I0] = xIn.shape;
    const weights: { W: tf.Tensor2D; U: tf.Tensor2D; b: tf.Tensor1D }[] = [];
    for (let l = 0; l < L; l++) {
      weights.push({ W: args[1 + 3 * l] as tf.Tensor2D, U: args[2 + 3 * l] as tf.Tensor2D, b: args[3 + 3 * l] as tf.Tensor1D });
    }

    const cache: HostLayer[] = [];
    let seq = swapLeadingAxes(hostView(xIn), B, T, I0); // [T, B, I] time-major
    for (let l = 0; l < L; l++) {
      const { W, U, b } = weights[l]!;
      const I = W.shape[0];
      const H = U.shape[0];
      const K = I + H;
      const H4 = 4 * H;
      const maskT = masks[l];
      const mask = maskT ? (maskT.dataSync() as Float32Array) : null;
      if (mask) {
        const masked = new Float32Array(seq.length);
        for (let r = 0; r < T * B; r++) {
          const mrow = (r % B) * I;
          for (let k = 0; k < I; k++) masked[r * I + k] = seq[r * I + k]! * mask[mrow + k]!;
        }
        seq = masked;
      }
      const [Wk, bk] = tf.tidy(() => {
        const scale = gateScale(H);
        return [tf.reshape(tf.mul(tf.concat([W, U], 0), scale), [1, K, H4]), tf.mul(b, scale)] as [tf.Tensor3D, tf.Tensor1D];
      });
      const XH = new Float32Array(T * B * K);
      const A = new Float32Array(T * B * H4);
      const C = new Float32Array(T * B * H);
      const TC = new Float32Array(T * B * H);
      const Hs = new Float32Array(T * B * H);
      for (let t = 0; t < T; t++) {
        for (let r = t * B; r < (t + 1) * B; r++) {
          XH.set(seq.subarray(r * I, (r + 1) * I), r * K);
          if (t > 0) XH.set(Hs.subarray((r - B) * H, (r - B + 1) * H), r * K + I);
        }
        const xh = tf.tensor3d(XH.subarray(t * B * K, (t + 1) * B * K), [1, B, K]);
        const z = tf.engine().runKernel<tf.Tensor>(
          tf._FusedMatMul,
          { a: xh, b: Wk, bias: bk },
          { transposeA: false, transposeB: false, activation: 'sigmoid', leakyreluAlpha: 0 },
        );
        A.set(hostView(z), t * B * H4);
        tf.dispose([xh, z]);
        cellForward(A, C, TC, Hs, t, B, H);
      }
      tf.dispose([Wk, bk]);
      cache.push({ I, H, XH, A, C, TC, mask });
      seq = Hs;
    }
    save(weights.flatMap(({ W, U }) => [W, U]));
    const Htop = layers[L - 1]!.U.shape[0];
    const value = returnSequences
      ? tf.tensor3d(swapLeadingAxes(seq, T, B, Htop), [B, T, Htop])
      : tf.tensor2d(seq.subarray((T - 1) * B * Htop), [B, Htop]);

    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const grads: tf.Tensor[] = new Array<tf.Tensor>(1 + 3 * L);
      // Gradient w.r.t. the current layer's outputs h_t, time-major [T, B, H].
      let dOut: Float32Array;
      if (returnSequences) {
        dOut = swapLeadingAxes(hostView(dy), B, T, Htop);
      } else {
        dOut = new Float32Array(T * B * Htop);
        dOut.set(hostView(dy), (T - 1) * B * Htop);
      }
      for (let l = L - 1; l >= 0; l--) {
        const { I, H, XH, A, C, TC, mask } = cache[l]!;
        const K = I + H;
        const H4 = 4 * H;
        const W = saved[2 * l] as tf.Tensor2D;
        const U = saved[2 * l + 1] as tf.Tensor2D;
        const needDx = l > 0; // per step only where a layer below consumes it
        // [W; U]ᵀ [4H, I+H] (or Uᵀ [4H, H]), transposed once: transposeB matMuls are slow on wasm.
        const RT = tf.tidy(() => tf.transpose(needDx ? tf.concat([W, U], 0) : U));
        const R = needDx ? K : H;
        const dZ = new Float32Array(T * B * H4);
        const dIn = needDx ? new Float32Array(T * B * I) : null;
        const dhRec = new Float32Array(B * H);
        const dcRec = new Float32Array(B * H);
        for (let t = T - 1; t >= 0; t--) {
          cellBackward(A, C, TC, dOut, dhRec, dcRec, dZ, t, B, H);
          if (t === 0 && !needDx) break;
          const dz = tf.tensor2d(dZ.subarray(t * B * H4, (t + 1) * B * H4), [B, H4]);
          const back = tf.matMul(dz, RT);
          splitBackRows(hostView(back), dIn, mask, dhRec, t, B, I, H, R);
          tf.dispose([dz, back]);
        }
        RT.dispose();
        // Weight gradients as one GEMM over all T·B rows: [dW; dU]ᵀ = dZᵀ · [x, h] ([4H, I+H]).
        // wasm packs a matMul's right operand afresh for every new tensor, so the smaller one
        // ([T·B, I+H] rather than [T·B, 4H]) goes on the right. The engine's gradient scope owns the
        // results (no tf.keep) and frees those nobody asked for. A recorder takes the rows and gate
        // gradients instead, batch-major, and the weight gradients are zeros.
        const [dW, dU, db, dX] = tf.tidy(() => {
          const dZt = tf.tensor2d(dZ, [T * B, H4]);
          const dXl = l === 0 ? tf.transpose(tf.reshape(tf.matMul(dZt, tf.transpose(W)), [T, B, I]), [1, 0, 2]) : undefined;
          if (recorder) {
            const { W: Wl, U: Ul, b: bl } = layers[l]!;
            recorder.record({
              kind: 'linear',
              kernels: [Wl, Ul],
              bias: bl,
              x: tf.tensor3d(swapLeadingAxes(XH, T, B, K), [B, T, K]),
              dy: tf.tensor3d(swapLeadingAxes(dZ, T, B, H4), [B, T, H4]),
            });
            return [tf.zerosLike(W), tf.zerosLike(U), tf.zeros([H4]), dXl];
          }
          const dZT = tf.transpose(dZt); // [4H, T·B]
          const dWU = tf.transpose(tf.matMul(dZT, tf.tensor2d(XH, [T * B, K]))); // [I+H, 4H]
          return [
            tf.slice(dWU, [0, 0], [I, H4]),
            tf.slice(dWU, [I, 0], [H, H4]),
            tf.reshape(tf.matMul(dZT, tf.ones([T * B, 1])), [H4]), // Σ over rows as a GEMV
            dXl,
          ];
        });
        grads[1 + 3 * l] = dW!;
        grads[2 + 3 * l] = dU!;
        grads[3 + 3 * l] = db!;
        if (dX) grads[0] = dX;
        if (dIn) dOut = dIn;
      }
      return grads;
    };
    return { value, gradFunc };
  };
}

/** [4H] multiplier: 2 on the g-gate block (tanh(z) = 2σ(2z) − 1), 1 elsewhere. */
function gateScale(H: number): tf.Tensor1D {
  const s = new Float32Array(4 * H).fill(1);
  s.fill(2, 2 * H, 3 * H);
  return tf.tensor1d(s, 'float32');
}

// ---------------------------------------------------------------------------------------------
// TF.js-ops implementation (GPU backends, where reading data back every step would stall)
// ---------------------------------------------------------------------------------------------

const GATES = 4; // i, f, g, o

/**
 * σ(xh · M + b) as one fused kernel. `tf.fused.matMul` refuses to fuse a sigmoid while a gradient
 * tape is recording (it could not differentiate it), but inside customGrad's forward nothing is
 * recorded, so the kernel is invoked directly. M is [1, K, H] (the kernel works on rank-3).
 */
function sigmoidGate(xh: tf.Tensor2D, M: tf.Tensor3D, bias: tf.Tensor1D, B: number, H: number): tf.Tensor2D {
  const a = tf.reshape(xh, [1, B, xh.shape[1]]);
  const out = tf.engine().runKernel<tf.Tensor>(
    tf._FusedMatMul,
    { a, b: M, bias },
    { transposeA: false, transposeB: false, activation: 'sigmoid', leakyreluAlpha: 0 },
  );
  return tf.reshape(out, [B, H]);
}

interface SavedLayout {
  readonly W: number;
  readonly U: number;
  /** [T·B, I+H]: the rows [x_t, h_{t−1}] for all t, time-major. */
  readonly xh: number;
  /** First of T consecutive groups of STEP_SAVED tensors, each [B, H]: i, f, g, o, c, tanh(c). */
  readonly steps: number;
  /** The mask applied to this layer's input, or −1. */
  readonly mask: number;
}
const STEP_SAVED = 6;

/**
 * Per step: [x_t, h_{t−1}] concatenated, one fused GEMM + bias + sigmoid per gate (no per-step
 * slicing of a wide tensor), the cell update as TF.js ops, each step in its own tidy.
 */
function opsStack(
  layers: readonly LstmWeights[],
  masks: readonly (tf.Tensor2D | null)[],
  returnSequences: boolean,
  recorder: GradRecorder | null,
): StackFn {
  const L = layers.length;
  return (...args) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xIn = args[0] as tf.Tensor3D;
    const [B, T] = xIn.shape;
    const weightsAt = (l: number): LstmWeights => ({
      W: args[1 + 3 * l] as tf.Tensor2D,
      U: args[2 + 3 * l] as tf.Tensor2D,
      b: args[3 + 3 * l] as tf.Tensor1D,
    });

    const one = tf.scalar(1);
    const two = tf.scalar(2);
    const toSave: tf.Tensor[] = [];
    const layout: SavedLayout[] = [];

    let stepIn = tf.unstack(xIn, 1) as tf.Tensor2D[];
    let hs: tf.Tensor2D[] = [];
    for (let l = 0; l < L; l++) {
      const { W, U, b } = weightsAt(l);
      const [I] = W.shape;
      const H = U.shape[0];
      const mask = masks[l];
      if (mask) stepIn = stepIn.map((s) => tf.mul(s, mask));
      // Per-gate weights [W_k; U_k] [I+H, H] and biases, the g gate's doubled (tanh(z) = 2σ(2z) − 1),
      // so that each gate is one fused matMul + bias + sigmoid and nothing is sliced per step.
      const WU = tf.concat([W, U], 0);
      const Mk: tf.Tensor2D[] = [];
      const bk: tf.Tensor1D[] = [];
      for (let k = 0; k < GATES; k++) {
        const m = tf.slice(WU, [0, k * H], [I + H, H]);
        const bb = tf.slice(b, [k * H], [H]);
        Mk.push(k === 2 ? tf.mul(m, two) : m);
        bk.push(k === 2 ? tf.mul(bb, two) : bb);
      }
      const Mk3 = Mk.map((m): tf.Tensor3D => tf.reshape(m, [1, I + H, H]));
      const gate = (xh: tf.Tensor2D, k: number): tf.Tensor2D => sigmoidGate(xh, Mk3[k]!, bk[k]!, B, H);
      let h: tf.Tensor2D = tf.zeros([B, H]);
      let c: tf.Tensor2D | null = null;
      const xhs: tf.Tensor2D[] = [];
      const perStep: tf.Tensor2D[] = [];
      hs = [];
      for (let t = 0; t < T; t++) {
        // One tidy per step frees the temporaries at once, which keeps the wasm heap hot.
        const prevC = c;
        const prevH = h;
        const [xh, i, f, g, o, cNew, tc, hNew] = tf.tidy(() => {
          const xhT: tf.Tensor2D = tf.concat([stepIn[t]!, prevH], 1);
          const iT = gate(xhT, 0);
          const fT = gate(xhT, 1);
          const gT: tf.Tensor2D = tf.sub(tf.mul(gate(xhT, 2), two), one); // tanh(z_g)
          const oT = gate(xhT, 3);
          const ig: tf.Tensor2D = tf.mul(iT, gT);
          const cT: tf.Tensor2D = prevC ? tf.add(tf.mul(fT, prevC), ig) : ig;
          const tcT: tf.Tensor2D = tf.sub(tf.mul(tf.sigmoid(tf.mul(cT, two)), two), one); // tanh(c)
          return [xhT, iT, fT, gT, oT, cT, tcT, tf.mul(oT, tcT) as tf.Tensor2D];
        }) as tf.Tensor2D[] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        c = cNew;
        h = hNew;
        xhs.push(xh);
        perStep.push(i, f, g, o, cNew, tc);
        hs.push(hNew);
      }
      const base = toSave.length;
      layout.push({ W: base, U: base + 1, xh: base + 2, steps: base + 3, mask: mask ? base + 3 + STEP_SAVED * T : -1 });
      toSave.push(W, U, T === 1 ? xhs[0]! : tf.concat(xhs, 0), ...perStep);
      if (mask) toSave.push(mask);
      stepIn = hs;
    }
    save(toSave);
    const value = returnSequences ? (tf.stack(hs, 1) as tf.Tensor3D) : hs[T - 1]!;

    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const get = <R extends tf.Rank>(k: number): tf.Tensor<R> => saved[k] as tf.Tensor<R>;
      const gOne = tf.scalar(1);
      const grads: tf.Tensor[] = new Array<tf.Tensor>(1 + 3 * L);
      // Upstream gradient per step of the current layer's output h_t (null: none).
      let dOut: (tf.Tensor2D | null)[] = returnSequences
        ? (tf.unstack(dy, 1) as tf.Tensor2D[])
        : Array.from({ length: T }, (_, t) => (t === T - 1 ? (dy as tf.Tensor2D) : null));
      for (let l = L - 1; l >= 0; l--) {
        const lay = layout[l]!;
        const W = get<tf.Rank.R2>(lay.W);
        const U = get<tf.Rank.R2>(lay.U);
        const [I, H4] = W.shape;
        const H = U.shape[0];
        const UT = tf.transpose(U); // [4H, H]: explicit, since transposeB matMuls are slow on wasm
        const WT = tf.transpose(W); // [4H, I]
        const mask = lay.mask >= 0 ? get<tf.Rank.R2>(lay.mask) : null;
        const dZs: tf.Tensor2D[] = new Array<tf.Tensor2D>(T);
        const dIn: tf.Tensor2D[] = new Array<tf.Tensor2D>(T);
        let dhRec: tf.Tensor2D | null = null;
        let dcRec: tf.Tensor2D | null = null;
        for (let t = T - 1; t >= 0; t--) {
          const at = (j: number): tf.Tensor2D => get<tf.Rank.R2>(lay.steps + STEP_SAVED * t + j);
          const up = dOut[t] ?? null;
          const dhIn = dhRec;
          const dcIn = dcRec;
          // One tidy per step: returns [dZ, dc_{t−1} part, dh_{t−1} part, dx_t] (null where not needed).
          const out = tf.tidy(() => {
            const [i, f, g, o, tc] = [at(0), at(1), at(2), at(3), at(5)];
            const dh: tf.Tensor2D | null = up && dhIn ? tf.add(up, dhIn) : (up ?? dhIn);
            let dZ: tf.Tensor2D;
            let dcNext: tf.Tensor2D | null = null;
            if (dh) {
              // h = o ⊙ tanh(c);  c = f ⊙ c_{t−1} + i ⊙ g
              const dcH: tf.Tensor2D = tf.mul(tf.mul(dh, o), tf.sub(gOne, tf.square(tc)));
              const dc: tf.Tensor2D = dcIn ? tf.add(dcIn, dcH) : dcH;
              const dzi = tf.mul(tf.mul(dc, g), tf.mul(i, tf.sub(gOne, i)));
              const dzf = t > 0 ? tf.mul(tf.mul(dc, at(4 - STEP_SAVED)), tf.mul(f, tf.sub(gOne, f))) : tf.zerosLike(f);
              const dzg = tf.mul(tf.mul(dc, i), tf.sub(gOne, tf.square(g)));
              const dzo = tf.mul(tf.mul(dh, tc), tf.mul(o, tf.sub(gOne, o)));
              dZ = tf.concat([dzi, dzf, dzg, dzo], 1) as tf.Tensor2D;
              if (t > 0) dcNext = tf.mul(dc, f);
            } else {
              dZ = tf.zeros([B, H4]);
            }
            const dhNext: tf.Tensor2D | null = t > 0 ? tf.matMul(dZ, UT) : null;
            let dx: tf.Tensor2D | null = null;
            if (l > 0) {
              dx = tf.matMul(dZ, WT);
              if (mask) dx = tf.mul<tf.Tensor2D>(dx, mask);
            }
            return [dZ, dcNext, dhNext, dx].map((v) => v ?? undefined);
          }) as (tf.Tensor2D | undefined)[];
          // dy belongs to the caller; everything else here is ours to free once consumed.
          if (up && up !== dy) up.dispose();
          dhIn?.dispose();
          dcIn?.dispose();
          dZs[t] = out[0]!;
          dcRec = out[1] ?? null;
          dhRec = out[2] ?? null;
          if (out[3]) dIn[t] = out[3];
        }
        const dZall = T === 1 ? dZs[0]! : tf.concat(dZs, 0); // [T·B, 4H], time-major
        if (recorder) {
          const { W: Wl, U: Ul, b: bl } = layers[l]!;
          const batchMajor = (rows: tf.Tensor2D): tf.Tensor3D => tf.transpose(tf.reshape(rows, [T, B, rows.shape[1]]), [1, 0, 2]);
          recorder.record({ kind: 'linear', kernels: [Wl, Ul], bias: bl, x: batchMajor(get<tf.Rank.R2>(lay.xh)), dy: batchMajor(dZall) });
          grads[1 + 3 * l] = tf.zerosLike(W);
          grads[2 + 3 * l] = tf.zerosLike(U);
          grads[3 + 3 * l] = tf.zeros([H4]);
        } else {
          const dWU = tf.matMul(tf.transpose(get<tf.Rank.R2>(lay.xh)), dZall); // [I+H, 4H]
          grads[1 + 3 * l] = tf.slice(dWU, [0, 0], [I, H4]);
          grads[2 + 3 * l] = tf.slice(dWU, [I, 0], [H, H4]);
          // Σ over rows as a GEMV: wasm's Sum over axis 0 is far slower.
          grads[3 + 3 * l] = tf.reshape(tf.matMul(tf.ones([1, T * B]), dZall), [H4]);
        }
        if (l === 0) {
          const dX = tf.reshape(tf.matMul(dZall, WT), [T, B, I]);
          grads[0] = tf.transpose(dX, [1, 0, 2]); // layer 0 never has an input mask
        } else {
          dOut = dIn;
        }
      }
      return grads;
    };
    return { value, gradFunc };
  };
}
