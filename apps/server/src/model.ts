/**
 * The coordinator's only TF.js use: building the initial global model (deterministic from the run
 * seed), and a model's parameter layout for an export, on the pure-JS cpu backend. Aggregation
 * itself works on flat Float32Arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createModel, flattenWeights, type ModelName, type ModelOptions } from '@fedcare/shared/model';

let ready: Promise<void> | undefined;

/** The TF.js backend the coordinator builds models on (an export's layout too, `GET /api/v1/runs/{run_id}/models/{version}`). */
export function modelBackendReady(): Promise<void> {
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

export async function initialWeights(seed: number, model: ModelName = 'standard', options: ModelOptions = {}): Promise<Float32Array> {
  await modelBackendReady();
  const m = createModel(model, seed, options);
  try {
    return await flattenWeights(m.params);
  } finally {
    m.dispose();
  }
}
