/**
 * The coordinator's only TF.js use: building the initial global model (deterministic from the run
 * seed) on the pure-JS cpu backend. Aggregation itself works on flat Float32Arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModel, flattenWeights, type ModelName } from '@fedcare/shared/model';

let ready: Promise<void> | undefined;

export async function initialWeights(seed: number, model: ModelName = 'standard'): Promise<Float32Array> {
  ready ??= (async () => {
    // In its own process the coordinator uses the cpu backend; sharing a process with hospitals
    // (tests, in-process simulations) it keeps whatever backend they chose.
    if (!tf.engine().backendName) {
      tf.enableProdMode();
      await tf.setBackend('cpu');
    }
    await tf.ready();
  })();
  await ready;
  const m = createModel(model, seed);
  try {
    return await flattenWeights(m.params);
  } finally {
    m.dispose();
  }
}
