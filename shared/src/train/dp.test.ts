import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fitAndEncode } from '../data/features';
import { generateHospital } from '../data/generator';
import { createClassifier } from '../model/classifier';
import { seededRandom } from '../util/csprng';
import { seededIntegers } from '../privacy/discrete-gaussian';
import { computeRdp, DP_SGD_ORDERS } from '../privacy/rdp';
import { clippedGradientSum, discreteMechanism, discreteNoisySum, dpSgdStep, GRID_RESOLUTION, poissonSample } from './dp';
import { disposeInputs, inputsFor, labelledIndices, trainLocal } from './train';

const NO_DROPOUT = { lstmDropout: 0, demographicsDropout: 0, omicsDropout: 0, attentionDropout: 0, headDropout: 0 };
const { batch } = fitAndEncode(generateHospital('H1', { seed: 5, patients: 40 }).records, { seqLen: 8, windowDays: 30 });
const rows = labelledIndices(batch).slice(0, 6);

function flat(ts: readonly tf.Tensor[]): Float32Array {
  const parts = ts.map((t) => t.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function l2(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

describe('DP-SGD building blocks', () => {
  it('unclipped per-example gradients sum to the batch gradient (B × the mean-loss gradient)', async () => {
    const model = createClassifier(NO_DROPOUT, 1);
    const vars = model.params.map((p) => p.variable);
    const { sum, norms } = await clippedGradientSum(model, batch, rows, 1e9);
    expect(norms.every((n) => n > 0 && Number.isFinite(n))).toBe(true);
    const inputs = inputsFor(batch, rows);
    const labels = tf.tensor1d(Int32Array.from(rows, (r) => batch.labels[r] as number), 'int32');
    const { grads, value } = tf.variableGrads(() => model.loss(inputs, labels, { training: true }), vars);
    const batchGrad = flat(vars.map((v) => grads[v.name] as tf.Tensor));
    const perExample = flat(sum);
    let maxErr = 0;
    let maxAbs = 0;
    for (let i = 0; i < batchGrad.length; i++) {
      maxErr = Math.max(maxErr, Math.abs((perExample[i] as number) - rows.length * (batchGrad[i] as number)));
      maxAbs = Math.max(maxAbs, Math.abs(perExample[i] as number));
    }
    expect(maxAbs).toBeGreaterThan(1e-3);
    expect(maxErr / maxAbs).toBeLessThan(1e-4);
    tf.dispose([...sum, value, labels, ...Object.values(grads)]);
    disposeInputs(inputs);
    model.dispose();
  });

  it('clips every example to the bound, and leaves an example under the bound untouched', async () => {
    const model = createClassifier(NO_DROPOUT, 2);
    const one = await clippedGradientSum(model, batch, rows, 1e9);
    const C = Math.min(...one.norms) / 2; // every example is clipped
    for (const r of rows) {
      const { sum, norms } = await clippedGradientSum(model, batch, [r], C);
      const n = l2(flat(sum));
      expect(norms[0]).toBeGreaterThan(C);
      expect(Math.abs(n - C) / C).toBeLessThan(1e-4);
      tf.dispose(sum);
    }
    // an example under the bound keeps its gradient exactly
    const big = Math.max(...one.norms) * 2;
    const a = await clippedGradientSum(model, batch, [rows[0] as number], big);
    const b = await clippedGradientSum(model, batch, [rows[0] as number], 1e9);
    expect(flat(a.sum)).toEqual(flat(b.sum));
    tf.dispose([...one.sum, ...a.sum, ...b.sum]);
    model.dispose();
  });

  it('adds discrete Gaussian noise on the grid γ = C/2^16 with standard deviation σ·Δ·γ = σ(C + ⌈√d⌉γ) (zero sum, 569k draws)', async () => {
    const sigma = 1.1;
    const C = 0.7;
    const d = 569_091;
    const mech = discreteMechanism(d, sigma, C);
    expect(mech.resolution).toBe(GRID_RESOLUTION);
    expect(mech.gamma).toBe(C / 2 ** 16);
    expect(mech.sensitivity).toBe(2 ** 16 + Math.ceil(Math.sqrt(d)));
    // σ_Z² is (σΔ)² rounded up, by less than one part in 10^9
    const s2 = Number(mech.sigma2.num) / Number(mech.sigma2.den);
    expect(s2).toBeGreaterThanOrEqual((sigma * mech.sensitivity) ** 2);
    expect(s2 / (sigma * mech.sensitivity) ** 2 - 1).toBeLessThan(1e-9);
    const zeros = [tf.zeros([d])];
    const [noise] = await discreteNoisySum(zeros, sigma, C);
    const v = noise!.dataSync();
    const sd = sigma * mech.sensitivity * mech.gamma;
    // ~1.2 % above σC: the rounding's share of the sensitivity
    expect(sd / (sigma * C)).toBeCloseTo(1 + Math.ceil(Math.sqrt(d)) / 2 ** 16, 12);
    let s = 0;
    let s2n = 0;
    let beyond2 = 0;
    let offGrid = 0;
    for (const x of v) {
      s += x;
      s2n += x * x;
      if (Math.abs(x) > 2 * sd) beyond2++;
      const k = x / mech.gamma;
      if (Math.abs(k - Math.round(k)) > 1e-6 * Math.max(1, Math.abs(k))) offGrid++;
    }
    const n = v.length;
    const mean = s / n;
    const std = Math.sqrt(s2n / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan((5 * sd) / Math.sqrt(n));
    expect(Math.abs(std - sd)).toBeLessThan((5 * sd) / Math.sqrt(2 * n));
    expect(Math.abs(beyond2 / n - 0.0455)).toBeLessThan(5 * Math.sqrt((0.0455 * 0.9545) / n));
    // every released value is an integer multiple of γ (up to float32's representation of k·γ)
    expect(offGrid).toBe(0);
    tf.dispose([...zeros, noise!]);
  });

  it('the accountant charges at least the discrete Gaussian’s published RDP: at q = 1, α/(2s²) for s = σ_Z/Δ ≥ σ (CKS20: ½(Δ/σ_Z)²-concentrated DP)', () => {
    for (const [d, sigma] of [
      [9_347, 10.3125],
      [569_091, 1.1],
      [1_000, 0.5],
    ] as const) {
      const mech = discreteMechanism(d, sigma, 1);
      const sZ = Math.sqrt(Number(mech.sigma2.num) / Number(mech.sigma2.den));
      // the noise actually added, per unit of integer sensitivity, is at least the σ the accountant is given
      expect(sZ / mech.sensitivity).toBeGreaterThanOrEqual(sigma);
      const rdp = computeRdp(1, sigma, 1, DP_SGD_ORDERS);
      DP_SGD_ORDERS.forEach((alpha, i) => {
        // without subsampling the sampled Gaussian's RDP is the Gaussian's α/(2σ²) — the discrete Gaussian's too
        expect(rdp[i]).toBeCloseTo(alpha / (2 * sigma * sigma), 12);
        // and it bounds the discrete mechanism's true RDP α/(2(σ_Z/Δ)²)
        expect(rdp[i]! + 1e-15).toBeGreaterThanOrEqual(alpha / (2 * (sZ / mech.sensitivity) ** 2));
      });
    }
  });

  it('releases nothing of a sum below the grid: sums that round to the same grid point give bit-identical outputs for the same draws', async () => {
    const C = 1;
    const gamma = C / GRID_RESOLUTION;
    const base = Float32Array.from({ length: 4096 }, (_, i) => (i - 2048) * gamma * 3.5);
    // perturbations well inside ±γ/2 of each grid point: a floating-point sampler would carry them into the output's low bits
    const a = [tf.tensor1d(base.map((x) => Math.round(x / gamma) * gamma + 0.3 * gamma))];
    const b = [tf.tensor1d(base.map((x) => Math.round(x / gamma) * gamma - 0.2 * gamma))];
    const [na] = await discreteNoisySum(a, 2, C, seededIntegers('grid'));
    const [nb] = await discreteNoisySum(b, 2, C, seededIntegers('grid'));
    expect(Array.from(na!.dataSync())).toEqual(Array.from(nb!.dataSync()));
    // and the noise is there: outputs differ from the rounded input
    const [nc] = await discreteNoisySum(a, 2, C, seededIntegers('other'));
    expect(Array.from(nc!.dataSync())).not.toEqual(Array.from(na!.dataSync()));
    tf.dispose([...a, ...b, na!, nb!, nc!]);
  });

  it('draws noise from the CSPRNG by default: two draws differ; bad parameters are named', async () => {
    const z = [tf.zeros([1000])];
    const [a] = await discreteNoisySum(z, 1, 1);
    const [b] = await discreteNoisySum(z, 1, 1);
    expect(Array.from(a!.dataSync())).not.toEqual(Array.from(b!.dataSync()));
    tf.dispose([...z, a!, b!]);
    expect(() => discreteMechanism(10, 0, 1)).toThrow(/noise_multiplier > 0/);
    expect(() => discreteMechanism(10, 1, -1)).toThrow(/max_grad_norm must be a finite number > 0/);
    expect(() => discreteMechanism(0, 1, 1)).toThrow(/dims must be a positive integer/);
    // a very large σ gets a coarser grid so σ_Z stays within the sampler's range; Δ shrinks with it
    const big = discreteMechanism(569_091, 900, 1);
    expect(big.resolution).toBeLessThan(GRID_RESOLUTION);
    expect(900 * big.sensitivity).toBeLessThanOrEqual(2 ** 24);
  });

  it('samples each row with probability q (Poisson), independently', () => {
    const all = Array.from({ length: 20_000 }, (_, i) => i);
    const lot = poissonSample(all, 0.05);
    // binomial(20000, 0.05): mean 1000, sd 30.8
    expect(Math.abs(lot.length - 1000)).toBeLessThan(5 * 30.8);
    expect(() => poissonSample(all, 0)).toThrow(/sample rate/);
  });

  it('one step with σ = 0 moves the weights by the clipped mean gradient (SGD), FedProx added after the noise', async () => {
    const model = createClassifier(NO_DROPOUT, 3);
    const vars = model.params.map((p) => p.variable);
    const before = flat(vars);
    const random = seededRandom(7);
    const lr = 0.1;
    const C = 0.5;
    const q = 0.5;
    // Replay the step's Poisson lot with the same seeded source to know which rows it used.
    const lot = poissonSample(rows, q, seededRandom(7));
    const { sum } = await clippedGradientSum(model, batch, lot, C);
    // FedProx towards anchors at 0: its gradient is μ·w, added to the privatised data gradient.
    const mu = 0.3;
    const anchors = vars.map((v) => tf.zerosLike(v));
    const expected = flat(sum).map((g, i) => (before[i] as number) - lr * (g / (q * rows.length) + mu * (before[i] as number)));
    const result = await dpSgdStep(model, tf.train.sgd(lr), batch, rows, q, { noiseMultiplier: 0, maxGradNorm: C, random }, { mu, anchors });
    tf.dispose(anchors);
    expect(result.lotSize).toBe(lot.length);
    const after = flat(vars);
    let maxErr = 0;
    for (let i = 0; i < after.length; i++) maxErr = Math.max(maxErr, Math.abs((after[i] as number) - (expected[i] as number)));
    expect(maxErr).toBeLessThan(1e-5);
    tf.dispose(sum);
    model.dispose();
  });

  it('the fast DP step (one recorded pass) equals the naive one (a pass per example): same seed, noise off and on', async () => {
    for (const sigma of [0, 1.3]) {
      const a = createClassifier(NO_DROPOUT, 5);
      const b = createClassifier(NO_DROPOUT, 5);
      const C = 0.05; // small: most examples are clipped
      const all = labelledIndices(batch);
      const ra = await dpSgdStep(a, tf.train.sgd(0.05), batch, all, 0.3, { noiseMultiplier: sigma, maxGradNorm: C, random: seededRandom(11), noise: seededIntegers(11), perExample: 'naive' });
      const rb = await dpSgdStep(b, tf.train.sgd(0.05), batch, all, 0.3, { noiseMultiplier: sigma, maxGradNorm: C, random: seededRandom(11), noise: seededIntegers(11), perExample: 'fast' });
      expect(rb.lotSize).toBe(ra.lotSize);
      expect(rb.clipped).toBe(ra.clipped);
      expect(ra.clipped).toBeGreaterThan(0);
      const wa = flat(a.params.map((p) => p.variable));
      const wb = flat(b.params.map((p) => p.variable));
      let maxErr = 0;
      for (let i = 0; i < wa.length; i++) maxErr = Math.max(maxErr, Math.abs((wa[i] as number) - (wb[i] as number)));
      expect(maxErr, `σ ${sigma}`).toBeLessThan(1e-5);
      a.dispose();
      b.dispose();
    }
  });

  it('trainLocal with dp runs round(n / B) Poisson steps per epoch and rejects invalid settings', async () => {
    const model = createClassifier({}, 4);
    const seen: number[] = [];
    const n = labelledIndices(batch).length;
    await trainLocal(model, batch, { epochs: 1, batchSize: 8, dp: { noiseMultiplier: 1, maxGradNorm: 1 } }, (p) => seen.push(p.batch));
    expect(seen.at(-1)).toBe(Math.round(n / 8));
    await expect(trainLocal(model, batch, { epochs: 1, batchSize: 8, dp: { noiseMultiplier: -1, maxGradNorm: 1 } })).rejects.toThrow(/noise_multiplier must be/);
    await expect(trainLocal(model, batch, { epochs: 1, batchSize: 8, dp: { noiseMultiplier: 1, maxGradNorm: 0 } })).rejects.toThrow(/max_grad_norm must be/);
    model.dispose();
  });
});
