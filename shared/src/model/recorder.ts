/**
 * What a model hands over, during one batched forward + backward pass, so that every example's
 * gradient can be measured and clipped without a backward pass per example: ghost clipping (Li,
 * Tramèr, Liang & Hashimoto, ICLR 2022, "Large Language Models Can Be Strong Differentially Private
 * Learners") with book-keeping (Bu, Wang, Zha & Karypis, 2022).
 *
 * Each use of a parameter records one `ParamUse`:
 *  - `linear`: y_{i,p} = x_{i,p} K + b at positions p = 1 … P of example i (time steps of an LSTM,
 *    tokens of the attention, one position for a plain dense layer). Example i's gradient is
 *    X_iᵀ D_i for the kernel K (its rows split into `kernels`: [W] for a dense layer, [W, U] for an
 *    LSTM layer whose rows are [x_t, h_{t−1}]) and Σ_p D_i[p] for the bias.
 *  - `direct`: example i's gradient of the parameter itself, [B, ...shape] (LayerNorm γ and β,
 *    additive embeddings), when that is no bigger than the layer's activations.
 *
 * D is the gradient of whatever loss the backward pass started from; for per-example gradients that
 * is the SUM of the per-example losses. While a recorder is attached the layers return zeros for the
 * weight gradients themselves (the recorded quantities replace them), so the batched pass computes
 * only the gradients that flow between layers.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface LinearUse {
  readonly kind: 'linear';
  /** Row blocks of the kernel, top to bottom (their row counts add up to x's width). */
  readonly kernels: readonly tf.Tensor[];
  readonly bias: tf.Tensor | null;
  /** [B, P, in]: the layer's input at each position, as the batched pass saw it (dropout applied). */
  readonly x: tf.Tensor3D;
  /** [B, P, out]: gradient of the loss w.r.t. the layer's output (pre-activation) at each position. */
  readonly dy: tf.Tensor3D;
}

export interface DirectUse {
  readonly kind: 'direct';
  readonly param: tf.Tensor;
  /** [B, ...param.shape]: each example's gradient of this use of `param`. */
  readonly grads: tf.Tensor;
}

export type ParamUse = LinearUse | DirectUse;

/**
 * Collects the `ParamUse`s of one backward pass. It holds its own references to the recorded
 * tensors (clones: no data is copied), so layers keep owning what they pass; `dispose` frees them.
 */
export class GradRecorder {
  private readonly list: ParamUse[] = [];

  get uses(): readonly ParamUse[] {
    return this.list;
  }

  /** Called by the layers' backward passes. */
  record(use: ParamUse): void {
    const own = <T extends tf.Tensor>(t: T): T => tf.keep(tf.clone(t));
    if (use.kind === 'linear') {
      const [B, P, I] = use.x.shape;
      const rows = use.kernels.reduce((n, k) => n + (k.shape[0] ?? 0), 0);
      const O = use.dy.shape[2];
      if (use.dy.shape[0] !== B || use.dy.shape[1] !== P || rows !== I || use.kernels.some((k) => k.shape[1] !== O) || (use.bias && use.bias.shape[0] !== O)) {
        throw new Error(
          `GradRecorder: linear use with x [${use.x.shape.join(', ')}], dy [${use.dy.shape.join(', ')}] ` +
            `and kernels ${use.kernels.map((k) => `[${k.shape.join(', ')}]`).join(' ')} do not fit`,
        );
      }
      this.list.push({ ...use, x: own(use.x), dy: own(use.dy) });
    } else {
      if (use.grads.shape.slice(1).join() !== use.param.shape.join()) {
        throw new Error(`GradRecorder: per-example gradients [${use.grads.shape.join(', ')}] for a parameter [${use.param.shape.join(', ')}]`);
      }
      this.list.push({ ...use, grads: own(use.grads) });
    }
  }

  /** Frees every recorded tensor and empties the list. */
  dispose(): void {
    for (const u of this.list) tf.dispose(u.kind === 'linear' ? [u.x, u.dy] : [u.grads]);
    this.list.length = 0;
  }
}
