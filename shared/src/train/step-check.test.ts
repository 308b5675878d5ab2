import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareSteps, stepCheckBatch, STEP_CHECK_TOLERANCE, trainingStepNumbers, type StepNumbers } from './step-check';

// The reference pair a portal uses when WASM is the backend in use: WASM against CPU. (The
// browser pairs — WebGPU and WebGL against WASM — run in Chromium, e2e/portal.e2e.test.ts.)
describe('one training step as numbers, compared across backends', () => {
  const input = stepCheckBatch({ batchSize: 8, seqLen: 12 });
  let wasm: StepNumbers;
  let cpu: StepNumbers;
  beforeAll(async () => {
    expect(tf.getBackend()).toBe('wasm');
    wasm = await trainingStepNumbers(input);
    await tf.setBackend('cpu');
    cpu = await trainingStepNumbers(input);
  });
  afterAll(async () => {
    await tf.setBackend('wasm');
  });

  it('wasm and cpu agree within float32 rounding, for every parameter of the model', () => {
    expect(wasm.backend).toBe('wasm');
    expect(cpu.backend).toBe('cpu');
    expect(wasm.grads.map((g) => g.name)).toEqual(cpu.grads.map((g) => g.name));
    expect(wasm.grads.length).toBeGreaterThan(40);
    const c = compareSteps(wasm, cpu);
    expect(c.finite).toBe(true);
    expect(c.lossRelativeError).toBeLessThan(1e-5);
    expect(c.worstRelativeError).toBeLessThan(1e-5);
    expect(c.normRelativeError).toBeLessThan(1e-5);
    expect(c.agrees).toBe(true);
    // the DP pass clipped: some examples' gradients are longer than C = 1, and the clipped sum is not the plain one
    expect(wasm.norms).toHaveLength(8);
    expect(wasm.norms.some((n) => n > 1)).toBe(true);
    expect(wasm.clipped.map((g) => g.name)).toEqual(wasm.grads.map((g) => g.name));
  });

  it('leaves no tensor behind and gives the same numbers twice on one backend', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const again = await trainingStepNumbers(input);
    expect(tf.memory().numTensors).toBe(before);
    expect(again.loss).toBe(wasm.loss);
    const c = compareSteps(again, wasm);
    expect(c.worstRelativeError).toBe(0);
    expect(c.maxAbsError).toBe(0);
    expect(c.normRelativeError).toBe(0);
  });

  it('names the parameter whose gradient is wrong: one recurrent kernel scaled by 1.01, or one gate block zeroed', () => {
    const perturb = (name: string, f: (v: Float32Array) => void): StepNumbers => ({
      ...wasm,
      grads: wasm.grads.map((g) => {
        if (g.name !== name) return g;
        const v = g.values.slice();
        f(v);
        return { name: g.name, values: v };
      }),
    });
    const scaled = compareSteps(perturb('clinical.lstm0.recurrent_kernel', (v) => v.forEach((x, i) => (v[i] = x * 1.01))), cpu);
    expect(scaled.agrees).toBe(false);
    expect(scaled.worstParam).toBe('clinical.lstm0.recurrent_kernel');
    expect(scaled.worstRelativeError).toBeCloseTo(0.01, 3);
    // The forget gate's columns of a kernel [I, 4H] (blocks i | f | g | o) zeroed: a broken backward pass.
    const H = 64;
    const zeroed = compareSteps(perturb('lab.lstm1.kernel', (v) => { for (let r = 0; r < v.length / (4 * H); r++) v.fill(0, r * 4 * H + H, r * 4 * H + 2 * H); }), cpu);
    expect(zeroed.agrees).toBe(false);
    expect(zeroed.worstParam).toBe('lab.lstm1.kernel');
    expect(zeroed.worstRelativeError).toBeGreaterThan(100 * STEP_CHECK_TOLERANCE);
  });

  it('names a wrong clipped sum (the DP path) and a wrong per-example norm', () => {
    const clipped = compareSteps({ ...wasm, clipped: wasm.clipped.map((g, k) => (k === 5 ? { name: g.name, values: g.values.map((x) => x * 1.01) } : g)) }, cpu);
    expect(clipped.agrees).toBe(false);
    expect(clipped.worstParam).toBe(`dp: ${wasm.clipped[5]!.name}`);
    const norms = compareSteps({ ...wasm, norms: wasm.norms.map((n, i) => (i === 2 ? n * 1.01 : n)) }, cpu);
    expect(norms.agrees).toBe(false);
    expect(norms.normRelativeError).toBeCloseTo(0.01, 3);
  });

  it('fails on a non-finite gradient and on a different loss, and refuses a different model', () => {
    const nan = { ...wasm, grads: wasm.grads.map((g, k) => (k === 3 ? { name: g.name, values: g.values.map((x, i) => (i === 0 ? Number.NaN : x)) } : g)) };
    expect(compareSteps(nan, cpu)).toMatchObject({ finite: false, agrees: false });
    expect(compareSteps({ ...wasm, loss: wasm.loss * (1 + 10 * STEP_CHECK_TOLERANCE) }, cpu).agrees).toBe(false);
    expect(() => compareSteps({ ...wasm, grads: wasm.grads.slice(1) }, cpu)).toThrow(/gradients against/);
  });
});
