/** Seeded random classifier inputs (the standard model's channel widths) for the classifier's tests. */
import * as tf from '@tensorflow/tfjs-core';
import type { ClassifierInputs } from '../model/classifier';

export function randomInputs(B: number, T: number, seed = 1): ClassifierInputs {
  return {
    vitals: tf.randomNormal([B, T, 10], 0, 1, 'float32', seed) as tf.Tensor3D,
    labs: tf.randomNormal([B, T, 16], 0, 1, 'float32', seed + 1) as tf.Tensor3D,
    demographics: tf.randomNormal([B, 10], 0, 1, 'float32', seed + 2) as tf.Tensor2D,
    biology: tf.randomNormal([B, 20], 0, 1, 'float32', seed + 3) as tf.Tensor2D,
    omics: tf.randomNormal([B, 32], 0, 1, 'float32', seed + 4) as tf.Tensor2D,
  };
}
