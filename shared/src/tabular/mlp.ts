/**
 * The tabular model: an MLP (dense → ReLU → dropout, twice, then a dense layer to the class
 * logits) built from the same `Param` machinery as the risk model, so its weights are one flat
 * Float32Array on the same wire (SHA-256, SecAgg+, HE) and every dense layer records its uses for
 * one-pass per-example clipping (DP-SGD, ../train/dp-fast.ts). The initial weights are a pure
 * function of the layout and the seed (`mlpInitialWeights`: Glorot-uniform kernels, zero biases),
 * so the coordinator makes them without building a model.
 */
import * as tf from '@tensorflow/tfjs-core';
import { glorotUniform } from '../model/init';
import { dropout, linear, type DropoutSeeds } from '../model/nn';
import { countParams, disposeParams, ParamCollector, type Param } from '../model/params';
import { unflattenWeights } from '../model/weights';
import type { GradRecorder } from '../model/recorder';
import { Rng } from '../util/random';
import type { TabularSchema } from './schema';

export interface MlpConfig {
  inputs: number;
  /** Hidden layer widths. */
  hidden: number[];
  classes: number;
  dropout: number;
}

/** Default width of the first hidden layer (the second is half of it). */
export const DEFAULT_TABULAR_HIDDEN = 32;
export const DEFAULT_TABULAR_DROPOUT = 0.1;

/** The MLP for a schema: hidden [h, ⌈h/2⌉] with h = the run's hidden_dim (32 when absent), its dropout (0.1). */
export function mlpConfigFor(schema: Pick<TabularSchema, 'width' | 'classes'>, options: { hidden_dim?: number | undefined; dropout?: number | undefined } = {}): MlpConfig {
  const h = options.hidden_dim ?? DEFAULT_TABULAR_HIDDEN;
  return { inputs: schema.width, hidden: [h, Math.max(2, Math.ceil(h / 2))], classes: schema.classes.length, dropout: options.dropout ?? DEFAULT_TABULAR_DROPOUT };
}

function shapes(cfg: MlpConfig): { name: string; shape: number[] }[] {
  const widths = [cfg.inputs, ...cfg.hidden, cfg.classes];
  const out: { name: string; shape: number[] }[] = [];
  for (let k = 0; k + 1 < widths.length; k++) {
    out.push({ name: `mlp.dense${k}.kernel`, shape: [widths[k] as number, widths[k + 1] as number] });
    out.push({ name: `mlp.dense${k}.bias`, shape: [widths[k + 1] as number] });
  }
  return out;
}

export function mlpParamCount(cfg: MlpConfig): number {
  return countParams(shapes(cfg));
}

/** Glorot-uniform kernels and zero biases, in parameter order, from the seed alone. */
export function mlpInitialWeights(cfg: MlpConfig, seed: number): Float32Array {
  if (!(cfg.inputs >= 1 && cfg.classes >= 2)) throw new Error(`an MLP needs ≥ 1 input and ≥ 2 classes, got ${cfg.inputs} and ${cfg.classes}`);
  const rng = new Rng(`tabular/mlp/${seed}`);
  const out = new Float32Array(mlpParamCount(cfg));
  let o = 0;
  for (const p of shapes(cfg)) {
    const values = p.shape.length === 2 ? glorotUniform(rng, p.shape[0] as number, p.shape[1] as number) : new Float32Array(p.shape[0] as number);
    out.set(values, o);
    o += values.length;
  }
  return out;
}

export class TabularMlp {
  readonly params: Param[];
  /** dp.ts: this model records its parameter uses (every layer is `linear`), so DP-SGD clips in one pass. */
  readonly recordsParameterUses = true;
  private readonly layers: { W: tf.Variable; b: tf.Variable }[] = [];
  private readonly dropoutStream: Rng;

  constructor(
    readonly config: MlpConfig,
    weights: Float32Array = mlpInitialWeights(config, 0),
    seed = 0,
  ) {
    const collector = new ParamCollector();
    const zeros = (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1));
    const list = shapes(config);
    for (let k = 0; k < list.length; k += 2) {
      const w = list[k] as { name: string; shape: number[] };
      const b = list[k + 1] as { name: string; shape: number[] };
      this.layers.push({ W: collector.add(w.name, w.shape, zeros(w.shape)), b: collector.add(b.name, b.shape, zeros(b.shape)) });
    }
    this.params = collector.params;
    unflattenWeights(this.params, weights);
    this.dropoutStream = new Rng(`tabular/mlp/dropout/${seed}`);
  }

  /** Logits [B, classes]. */
  logits(x: tf.Tensor2D, options: { training: boolean; recorder?: GradRecorder }): tf.Tensor2D {
    const seeds: DropoutSeeds = options.training ? () => this.dropoutStream.nextU32() : null;
    return tf.tidy(() => {
      let h: tf.Tensor2D = x;
      this.layers.forEach((l, k) => {
        h = linear(h, l.W as tf.Tensor as tf.Tensor2D, l.b as tf.Tensor as tf.Tensor1D, options.recorder);
        if (k < this.layers.length - 1) h = dropout(tf.relu(h), this.config.dropout, seeds);
      });
      return h;
    });
  }

  /** Mean softmax cross-entropy over the batch. */
  loss(x: tf.Tensor2D, labels: tf.Tensor1D, options: { training: boolean; recorder?: GradRecorder }): tf.Scalar {
    return tf.tidy(() => {
      const logits = this.logits(x, options);
      const targets = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, this.config.classes);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.cast(targets, 'float32'), tf.logSoftmax(logits)), 1))) as tf.Scalar;
    });
  }

  dispose(): void {
    disposeParams(this.params);
  }
}
