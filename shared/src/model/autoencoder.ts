/**
 * FederatedAutoencoder (seed spec 2.2): a dense autoencoder for representation learning; after
 * federated training its latent codes are clustered (K-Means / GMM) by the caller.
 *
 *   encoder: input → 256 ReLU → dropout 0.2 → 128 ReLU → latent (32)
 *   decoder: latent → 128 ReLU → 256 ReLU → dropout 0.2 → input
 */
import * as tf from '@tensorflow/tfjs-core';

import { Rng } from '../util/random';
import { constantInit, glorotUniform } from './init';
import { dropout, linear, type DropoutSeeds } from './nn';
import { disposeParams, ParamCollector, type Param } from './params';

export interface AutoencoderConfig {
  /** Width of the input feature vector (spec 1.3: 446). */
  inputDim: number;
  latentDim: number;
  /** Encoder hidden widths; the decoder mirrors them. */
  hidden: readonly number[];
  dropout: number;
}

export const DEFAULT_AUTOENCODER_CONFIG: Readonly<AutoencoderConfig> = Object.freeze({
  inputDim: 446,
  latentDim: 32,
  hidden: Object.freeze([256, 128]),
  dropout: 0.2,
});

export interface AutoencoderForwardOptions {
  /** Dropout on (true) or off (false: deterministic). */
  training: boolean;
  /** Dropout seed for this pass; by default the model's own stream. */
  seed?: number;
}

export interface FederatedAutoencoder {
  readonly config: Readonly<AutoencoderConfig>;
  /** Trainable parameters in the fixed order that `flattenWeights` uses. */
  readonly params: readonly Param[];
  /** Latent codes [N, latentDim]. */
  encode(x: tf.Tensor2D, options: AutoencoderForwardOptions): tf.Tensor2D;
  /** Reconstruction [N, inputDim]. */
  reconstruct(x: tf.Tensor2D, options: AutoencoderForwardOptions): tf.Tensor2D;
  /** Mean squared reconstruction error over all elements. */
  loss(x: tf.Tensor2D, options: AutoencoderForwardOptions): tf.Scalar;
  dispose(): void;
}

interface Dense {
  W: tf.Tensor2D;
  b: tf.Tensor1D;
}

/** Builds an autoencoder whose initial weights depend only on `seed`. */
export function createAutoencoder(config: Partial<AutoencoderConfig> = {}, seed = 0): FederatedAutoencoder {
  const cfg: AutoencoderConfig = { ...DEFAULT_AUTOENCODER_CONFIG, ...config };
  const widths = [cfg.inputDim, ...cfg.hidden, cfg.latentDim];
  if (widths.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`autoencoder: widths must be positive integers, got [${widths.join(', ')}]`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`autoencoder: dropout must be in [0, 1), got ${cfg.dropout}`);
  const rng = new Rng(`model/autoencoder/${seed}`);
  const dropoutStream = new Rng(`model/autoencoder/${seed}/dropout`);
  const pc = new ParamCollector();
  const dense = (name: string, i: number, o: number): Dense => ({
    W: pc.add(`${name}.kernel`, [i, o], glorotUniform(rng, i, o)) as tf.Variable<tf.Rank.R2>,
    b: pc.add(`${name}.bias`, [o], constantInit([o], 0)) as tf.Variable<tf.Rank.R1>,
  });
  const encoder = widths.slice(1).map((o, k) => dense(`encoder.dense${k}`, widths[k]!, o));
  const rev = [...widths].reverse();
  const decoder = rev.slice(1).map((o, k) => dense(`decoder.dense${k}`, rev[k]!, o));
  const params: readonly Param[] = Object.freeze([...pc.params]);

  const seedsFor = (options: AutoencoderForwardOptions): DropoutSeeds => {
    if (!options.training) return null;
    const stream = options.seed === undefined ? dropoutStream : new Rng(`model/autoencoder/dropout/${options.seed}`);
    return () => stream.nextU32();
  };
  const check = (x: tf.Tensor2D): void => {
    if (x.rank !== 2 || x.shape[1] !== cfg.inputDim || x.dtype !== 'float32') {
      throw new Error(`autoencoder input: expected float32 [N, ${cfg.inputDim}], got ${x.dtype} [${x.shape.join(', ')}]`);
    }
  };
  // Dropout after the first encoder layer and before the last decoder layer, as in the spec.
  const encodeRaw = (x: tf.Tensor2D, seeds: DropoutSeeds): tf.Tensor2D => {
    let h = x;
    encoder.forEach((l, k) => {
      h = linear(h, l.W, l.b);
      if (k < encoder.length - 1) h = tf.relu(h);
      if (k === 0) h = dropout(h, cfg.dropout, seeds);
    });
    return h;
  };
  const decodeRaw = (z: tf.Tensor2D, seeds: DropoutSeeds): tf.Tensor2D => {
    let h = z;
    decoder.forEach((l, k) => {
      h = linear(h, l.W, l.b);
      if (k < decoder.length - 1) h = tf.relu(h);
      if (k === decoder.length - 2) h = dropout(h, cfg.dropout, seeds);
    });
    return h;
  };

  let disposed = false;
  const live = (x: tf.Tensor2D): void => {
    if (disposed) throw new Error('autoencoder has been disposed');
    check(x);
  };
  return {
    config: Object.freeze({ ...cfg }),
    params,
    encode(x, options) {
      live(x);
      return tf.tidy(() => encodeRaw(x, seedsFor(options)));
    },
    reconstruct(x, options) {
      live(x);
      return tf.tidy(() => {
        const seeds = seedsFor(options);
        return decodeRaw(encodeRaw(x, seeds), seeds);
      });
    },
    loss(x, options) {
      live(x);
      return tf.tidy(() => {
        const seeds = seedsFor(options);
        return tf.mean(tf.squaredDifference(decodeRaw(encodeRaw(x, seeds), seeds), x));
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      disposeParams(params);
    },
  };
}
