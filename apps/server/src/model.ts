/**
 * The coordinator's only TF.js use: building the initial global model (deterministic from the run
 * seed), and a model's parameter layout for an export, on the pure-JS cpu backend. Aggregation
 * itself works on flat Float32Arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { modelBundle, type ModelBundle } from '@fedcare/shared/fl';
import { createModel, flattenWeights, type ModelName } from '@fedcare/shared/model';

let ready: Promise<void> | undefined;

function backend(): Promise<void> {
  ready ??= (async () => {
    // In its own process the coordinator uses the cpu backend; sharing a process with hospitals
    // (tests, in-process simulations) it keeps whatever backend they chose.
    if (!tf.engine().backendName) {
      tf.enableProdMode();
      await tf.setBackend('cpu');
    }
    await tf.ready();
  })();
  return ready;
}

/** The export of a stored model (`GET /api/v1/runs/{run_id}/models/{version}`): the manifest, built on the cpu backend. */
export async function storedModelBundle(o: Parameters<typeof modelBundle>[0]): Promise<ModelBundle> {
  await backend();
  return modelBundle(o);
}

export async function initialWeights(seed: number, model: ModelName = 'standard'): Promise<Float32Array> {
  await backend();
  const m = createModel(model, seed);
  try {
    return await flattenWeights(m.params);
  } finally {
    m.dispose();
  }
}
