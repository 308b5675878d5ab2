/**
 * Per-example clipping for DP-SGD in ONE batched forward + backward pass, equal in exact arithmetic
 * to `clippedGradientSum` (./dp.ts), which runs a backward pass per example.
 *
 * The model records, for every use of a parameter, what determines each example's gradient of it
 * (../model/recorder.ts): for y_{i,p} = x_{i,p} K + b over positions p (LSTM time steps, attention
 * tokens, one position for a plain dense layer) the inputs X_i [P, in] and the output gradients D_i
 * [P, out]; for LayerNorm γ/β and the modality embedding the per-example gradients themselves.
 *
 * 1. Norms without per-example gradients (ghost clipping, Li et al., ICLR 2022):
 *      ‖X_iᵀ D_i‖²_F = Σ_{p,q} (X_i X_iᵀ)_{pq} (D_i D_iᵀ)_{pq}
 *    — the cross-position terms are there because K is shared across positions. Per use, whichever
 *    is cheaper: the P×P Gram form (P²·(in + out) per example) or materialising X_iᵀ D_i with a
 *    batched matMul (P·in·out); P = 1 reduces to ‖x_i‖²·‖d_i‖². Bias: ‖Σ_p D_i[p]‖².
 * 2. The clipped sum by book-keeping (Bu et al., 2022), no second backward pass: with
 *    c_i = min(1, C / ‖g_i‖), Σ_i c_i X_iᵀ D_i = Xᵀ (c ⊙ D) over all (i, p) rows — one matMul per
 *    kernel, like the weight gradient of a plain backward pass; biases and direct uses are cᵀ·rows.
 *
 * The backward pass starts from Σ_i loss_i (B × the model's mean loss), so the recorded D are the
 * per-example gradients' factors as they are. Dropout: the recorded X and D are those of the batched
 * pass, masks included, so norms and sum are those of the gradient this pass defines; without
 * dropout that is exactly the naive per-example computation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { addMany } from '../model/nn';
import type { FeatureBatch } from '../data/features';
import { GradRecorder, type LinearUse, type ParamUse } from '../model/recorder';
import type { ClippedSum } from './dp';
import { disposeInputs, inputsFor, type ModelInputs, type TrainableModel } from './train';

/** A model whose forward pass can record its parameter uses (MultimodalRiskClassifier can). */
export interface RecordingModel extends TrainableModel {
  loss(inputs: ModelInputs, labels: tf.Tensor1D, options: { training: boolean; recorder?: GradRecorder }): tf.Scalar;
}

/**
 * Per-example gradients of the data loss, each clipped to `maxGradNorm` over all parameters,
 * summed: the same `ClippedSum` as `clippedGradientSum`, from one batched pass.
 */
export async function clippedGradientSumFast(model: RecordingModel, batch: FeatureBatch, rows: readonly number[], maxGradNorm: number): Promise<ClippedSum> {
  const vars = model.params.map((p) => p.variable);
  const B = rows.length;
  if (B === 0) return { sum: vars.map((v) => tf.zerosLike(v)), norms: [], lossSum: 0 };

  const recorder = new GradRecorder();
  const inputs = inputsFor(batch, rows);
  const labels = tf.tensor1d(Int32Array.from(rows, (r) => batch.labels[r] as number), 'int32');
  try {
    // Σ_i loss_i = B × mean loss. The parameter gradients come back as zeros (the recorder has them).
    const { value, grads } = tf.variableGrads(() => tf.mul(model.loss(inputs, labels, { training: true, recorder }), B), vars);
    tf.dispose(Object.values(grads));
    try {
      const [{ sum, norms }, loss] = await Promise.all([clipRecorded(recorder.uses, vars, maxGradNorm), value.data()]);
      return { sum, norms, lossSum: loss[0] as number };
    } finally {
      value.dispose();
    }
  } finally {
    recorder.dispose();
    disposeInputs(inputs);
    labels.dispose();
  }
}

/**
 * From the uses a backward pass recorded: each example's gradient norm over `params` (‖g_i‖, the
 * sum over all uses), and Σ_i min(1, C/‖g_i‖)·g_i, one tensor per parameter in `params` order
 * (caller disposes). Throws if a parameter has no recorded use.
 */
export async function clipRecorded(uses: readonly ParamUse[], params: readonly tf.Tensor[], maxGradNorm: number): Promise<{ sum: tf.Tensor[]; norms: number[] }> {
  checkCoverage(params, uses);
  const parts: UseSquares[] = [];
  tf.tidy(() => {
    for (const u of uses) {
      const part = perExampleSquares(u);
      tf.keep(part.squares);
      if (part.biasRows) tf.keep(part.biasRows);
      parts.push(part);
    }
  });
  try {
    const sq = tf.tidy(() => addMany(parts.map((p) => p.squares)));
    const sqData = await sq.data();
    sq.dispose();
    const norms = Array.from(sqData, (s) => Math.sqrt(Math.max(0, s)));
    const scales = Float32Array.from(norms, (n) => Math.min(1, maxGradNorm / (n + 1e-12)));
    const index = new Map<tf.Tensor, number>(params.map((v, i) => [v, i]));
    const sums: (tf.Tensor | undefined)[] = new Array<tf.Tensor | undefined>(params.length);
    tf.tidy(() => {
      const c = tf.tensor1d(scales, 'float32');
      const add = (param: tf.Tensor, g: tf.Tensor): void => {
        const i = index.get(param) as number;
        const prev = sums[i];
        sums[i] = tf.keep(prev ? tf.add(prev, g) : g);
        if (prev) prev.dispose();
      };
      uses.forEach((u, k) => clippedSumOf(u, parts[k]!, c, add));
    });
    return { sum: sums as tf.Tensor[], norms };
  } finally {
    tf.dispose(parts.flatMap((p) => (p.biasRows ? [p.squares, p.biasRows] : [p.squares])));
  }
}

/** Every parameter must have been recorded at least once, else its gradient would be missing from the norms. */
function checkCoverage(vars: readonly tf.Tensor[], uses: readonly ParamUse[]): void {
  const seen = new Set<tf.Tensor>();
  for (const u of uses) {
    if (u.kind === 'linear') {
      u.kernels.forEach((k) => seen.add(k));
      if (u.bias) seen.add(u.bias);
    } else {
      seen.add(u.param);
    }
  }
  const missing = vars.filter((v) => !seen.has(v));
  if (missing.length) {
    throw new Error(`per-example clipping: the model recorded no use of ${missing.length} parameter(s) (${missing.map((v) => `[${v.shape.join(', ')}]`).join(' ')})`);
  }
}

interface UseSquares {
  /** [B]: Σ of squared entries of each example's gradient over this use's parameters. */
  squares: tf.Tensor1D;
  /** [B, out]: Σ_p D_i[p] per example (the bias's per-example gradient), for linear uses with a bias. */
  biasRows: tf.Tensor2D | null;
}

function perExampleSquares(u: ParamUse): UseSquares {
  if (u.kind === 'direct') {
    const B = u.grads.shape[0] as number;
    return { squares: rowSquares(tf.reshape(u.grads, [B, -1])), biasRows: null };
  }
  const { x, dy } = u;
  const [B, P, I] = x.shape;
  const O = dy.shape[2];
  let squares: tf.Tensor1D;
  if (P === 1) {
    squares = tf.mul(rowSquares(tf.reshape(x, [B, I])), rowSquares(tf.reshape(dy, [B, O])));
  } else if (P * (I + O) <= I * O) {
    // Ghost norm: Σ_{p,q} (X Xᵀ)_{pq} (D Dᵀ)_{pq}.
    squares = rowSquaresOfProduct(grams(x), grams(dy));
  } else {
    squares = rowSquares(tf.reshape(tf.matMul(tf.transpose(x, [0, 2, 1]), dy), [B, I * O]));
  }
  let biasRows: tf.Tensor2D | null = null;
  if (u.bias) {
    biasRows = P === 1 ? tf.reshape(dy, [B, O]) : tf.sum(dy, 1);
    squares = tf.add(squares, rowSquares(biasRows));
  }
  return { squares, biasRows };
}

/**
 * Per-example Gram matrices t_i t_iᵀ of t [B, P, F], flattened to [B, P·P]. Explicit transposes:
 * transposed matMuls are slow on wasm. There, batched (rank-3) matMul is also a generic loop ~10×
 * slower than B separate 2D GEMMs, and slicing copies its whole source, so big ones are cut into
 * examples on the host and run as one 2D GEMM each.
 */
function grams(t: tf.Tensor3D): tf.Tensor2D {
  const [B, P, F] = t.shape;
  const tT = tf.transpose(t, [0, 2, 1]);
  if (tf.getBackend() !== 'wasm' || P * P * F < PER_EXAMPLE_GEMM_WORK) return tf.reshape(tf.matMul(t, tT), [B, P * P]);
  const rows = t.dataSync() as Float32Array;
  const cols = tT.dataSync() as Float32Array;
  const n = P * F;
  const out: tf.Tensor2D[] = [];
  for (let i = 0; i < B; i++) {
    const a = tf.tensor2d(rows.subarray(i * n, (i + 1) * n), [P, F]);
    const b = tf.tensor2d(cols.subarray(i * n, (i + 1) * n), [F, P]);
    out.push(tf.reshape(tf.matMul(a, b), [1, P * P]));
  }
  return tf.concat(out, 0);
}

/** P²·F from which per-example 2D GEMMs beat one batched matMul on wasm (measured: P = 5, F = 256 is below; P = 30, F ≥ 80 above). */
const PER_EXAMPLE_GEMM_WORK = 32_768;

function rowSquares(t: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.square(t), 1);
}

function rowSquaresOfProduct(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(a, b), 1);
}

/** Adds use u's share of Σ_i c_i g_i to each of its parameters. */
function clippedSumOf(u: ParamUse, part: UseSquares, c: tf.Tensor1D, add: (param: tf.Tensor, g: tf.Tensor) => void): void {
  const B = c.shape[0];
  const cRow = tf.reshape(c, [1, B]);
  if (u.kind === 'direct') {
    add(u.param, tf.reshape(tf.matMul(cRow, tf.reshape(u.grads, [B, -1])), u.param.shape));
    return;
  }
  const kernel = clippedKernel(u, c);
  let row = 0;
  for (const k of u.kernels) {
    const rows = k.shape[0] as number;
    add(k, u.kernels.length === 1 ? kernel : tf.slice(kernel, [row, 0], [rows, -1]));
    row += rows;
  }
  if (u.bias && part.biasRows) add(u.bias, tf.reshape(tf.matMul(cRow, part.biasRows), u.bias.shape));
}

/**
 * Σ_i c_i X_iᵀ D_i = Xᵀ (c ⊙ D) over all B·P rows, [in, out]. c scales the narrower of X and D, and
 * the narrower one goes on the right of the matMul (wasm packs the right operand afresh each time).
 */
function clippedKernel(u: LinearUse, c: tf.Tensor1D): tf.Tensor2D {
  const [B, P, I] = u.x.shape;
  const O = u.dy.shape[2];
  const c3 = tf.reshape(c, [B, 1, 1]);
  const scaleX = I <= O;
  const X = tf.reshape(scaleX ? tf.mul(u.x, c3) : u.x, [B * P, I]);
  const D = tf.reshape(scaleX ? u.dy : tf.mul(u.dy, c3), [B * P, O]);
  return I <= O ? tf.transpose(tf.matMul(tf.transpose(D), X)) : tf.matMul(tf.transpose(X), D);
}
