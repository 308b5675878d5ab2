/** The DP-SGD schedule of one local training (no TF.js here: the planner runs in the dashboard too). */

/**
 * A local training on n labelled examples with lot size B and E epochs: Poisson lots at sampling
 * rate q = B / n, round(n / B) steps per epoch (one expected pass over the data), E times that.
 */
export function dpSchedule(n: number, batchSize: number, epochs: number): { sampleRate: number; steps: number; stepsPerEpoch: number } {
  if (!(n > 0)) throw new Error('no labelled records to train on');
  const sampleRate = Math.min(1, batchSize / n);
  const stepsPerEpoch = Math.max(1, Math.round(n / batchSize));
  return { sampleRate, steps: stepsPerEpoch * epochs, stepsPerEpoch };
}
