import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { finalizeFeatureStats } from '../data/features';
import { generateHospital } from '../data/generator';
import { createModel } from '../model/classifier';
import { flattenWeights, sha256Hex, weightsFromBytes, weightsToBytes } from '../model/weights';
import type { DpConfig, Instruction } from '../protocol/messages';
import { clippedHeadSum, isPersonalParam, personalLayers } from '../train/personalise';
import { dpSchedule } from '../train/train';
import { HospitalClient } from './client';
import { memoryLedgerStore, PrivacyLedger } from './privacy-ledger';

const RUN = 'run-20260101000000-abcdef01';
const records = generateHospital('H2', { seed: 13, patients: 160 }).records;

/** A global model whose last head layer is zero: every patient gets (1/3, 1/3, 1/3), AUC-ROC 0.5. */
async function blankHeadGlobal(name: 'standard' | 'compact' = 'standard') {
  const model = createModel(name, 5);
  const last = model.params.filter((p) => p.name.startsWith('head.')).slice(-2);
  for (const p of last) p.variable.assign(tf.zerosLike(p.variable));
  const bytes = weightsToBytes(await flattenWeights(model.params));
  const names = model.params.map((p) => ({ name: p.name, size: p.variable.size }));
  model.dispose();
  return { bytes, sha: await sha256Hex(bytes), names };
}

function client(options: ConstructorParameters<typeof HospitalClient>[2] = {}) {
  const c = new HospitalClient('H2', records, options);
  c.setStats(RUN, finalizeFeatureStats(c.featureSums(8)), 8);
  return c;
}

describe('personalisation (FedPer/FedRep: the head and the fusion norm, on the hospital\'s own training split)', () => {
  it('learns a head on the frozen representation, keeps the best validation epoch, changes only the personal layers, and scores with them', async () => {
    const c = client();
    const g = await blankHeadGlobal();
    await expect(c.personalise()).rejects.toThrow(/no global model here yet/);
    await c.evaluate({ run_id: RUN, round: 3, stage: 'evaluate', weights: g.bytes, weights_sha256: g.sha, model: 'standard' });
    await expect(c.scorePatients(1, 'personalised')).rejects.toThrow(/no personalised copy of the round 3 model yet/);

    const seen: number[] = [];
    const tensorsBefore = tf.memory().numTensors;
    const report = await c.personalise({ epochs: 25, learningRate: 3e-3, patience: 25 }, (p) => seen.push(p.epoch));
    expect(tf.memory().numTensors).toBe(tensorsBefore); // nothing left behind (the portal's worker checks this too)
    console.log(`personalised: val loss ${report.global.val_loss.toFixed(3)} → ${report.personalised.val_loss.toFixed(3)}, test AUC-ROC ${report.global.test.auc_roc.toFixed(3)} → ${report.personalised.test.auc_roc.toFixed(3)} (best epoch ${report.best_epoch}, T ${report.temperature})`);
    expect(seen).toEqual(report.history.map((h) => h.epoch));
    expect(report).toMatchObject({ run_id: RUN, round: 3 });
    expect(report.params).toEqual(g.names.filter((n) => isPersonalParam(n.name)).map((n) => n.name));
    expect(report.params).toContain('fusion.norm.gamma');
    expect(report.trainable).toBe(g.names.filter((n) => isPersonalParam(n.name)).reduce((s, n) => s + n.size, 0));
    expect(report).not.toHaveProperty('weights');
    // A blank head predicts 1/3 each: loss ln 3, AUC 0.5. The fine-tuned head must do clearly better.
    expect(report.global.val_loss).toBeCloseTo(Math.log(3), 5);
    expect(report.global.test.auc_roc).toBeCloseTo(0.5, 5);
    expect(report.personalised.val_loss).toBeLessThan(report.global.val_loss - 0.1);
    expect(report.personalised.test.auc_roc).toBeGreaterThan(0.65);
    // The epoch kept is the one with the lowest validation loss (ties: the earliest).
    const losses = [report.global.val_loss, ...report.history.map((h) => h.val_loss)];
    expect(report.best_epoch).toBe(losses.indexOf(Math.min(...losses)));
    expect(report.personalised.val_loss).toBeCloseTo(losses[report.best_epoch]!, 6);
    expect(c.personalisation).toEqual(report);

    // Scoring with the personalised copy: other probabilities, the same patients, at its own temperature.
    const global = await c.scorePatients(1, 'global');
    const personal = await c.scorePatients(1, 'personalised');
    expect(personal.model).toBe('personalised');
    expect(global.model).toBe('global');
    expect(personal.temperature).toBe(report.temperature);
    expect(personal.scores.map((s) => s.patient_id)).toEqual(global.scores.map((s) => s.patient_id));
    expect(global.scores.every((s) => s.probabilities.every((p) => Math.abs(p - 1 / 3) < 1e-6))).toBe(true);
    expect(personal.scores.some((s) => Math.abs((s.probabilities[2] as number) - 1 / 3) > 0.05)).toBe(true);
    // The attention is the representation's: untouched by personalisation.
    for (let i = 0; i < global.scores.length; i++) expect(personal.scores[i]!.modality_attention.vitals).toBeCloseTo(global.scores[i]!.modality_attention.vitals, 6);
    c.dispose();
  });

  it('touches no representation parameter and keeps the global head when no epoch improves validation (0 epochs)', async () => {
    const c = client();
    const g = await blankHeadGlobal();
    await c.evaluate({ run_id: RUN, round: 1, stage: 'evaluate', weights: g.bytes, weights_sha256: g.sha, model: 'standard' });
    const report = await c.personalise({ epochs: 0 });
    expect(report.best_epoch).toBe(0);
    expect(report.personalised.val_loss).toBe(report.global.val_loss);
    const before = weightsFromBytes(g.bytes);
    const after = weightsFromBytes((c as unknown as { personal: { weights: Uint8Array } }).personal.weights);
    expect(after).toEqual(before);

    const trained = await c.personalise({ epochs: 3, learningRate: 3e-3, patience: 3 });
    expect(trained.best_epoch).toBeGreaterThan(0);
    const w = weightsFromBytes((c as unknown as { personal: { weights: Uint8Array } }).personal.weights);
    let offset = 0;
    const changed: string[] = [];
    for (const p of g.names) {
      if (w.subarray(offset, offset + p.size).some((v, i) => v !== before[offset + i])) changed.push(p.name);
      offset += p.size;
    }
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((n) => !isPersonalParam(n))).toEqual([]);
    expect(changed).toContain('head.dense2.kernel');
    c.dispose();
  });

  it('ghost clipping of the personal layers equals clipping each example\'s own gradient (tf.grads per example)', async () => {
    const model = createModel('compact', 3);
    const h = personalLayers(model.params.filter((p) => isPersonalParam(p.name)));
    const vars = [h.gamma, h.beta, ...h.layers.flatMap((l) => [l.W, l.b])];
    const n = 6;
    const P = tf.randomNormal([n, model.fusionDim], 0, 1, 'float32', 7) as tf.Tensor2D;
    const labels = Int32Array.from([0, 2, 1, 2, 0, 1]);
    const C = 0.5;
    const { sum, norms } = await clippedHeadSum(h, P, labels, C);
    const ref: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
    for (let i = 0; i < n; i++) {
      const { grads } = tf.variableGrads(() => tf.tidy(() => {
        let x = tf.add(tf.mul(tf.slice(P, [i, 0], [1, -1]), h.gamma), h.beta) as tf.Tensor2D;
        h.layers.forEach((l, k) => {
          x = tf.add(tf.matMul(x, l.W as tf.Tensor2D), l.b);
          if (k < h.layers.length - 1) x = tf.relu(x);
        });
        return tf.neg(tf.sum(tf.mul(tf.logSoftmax(x), tf.cast(tf.oneHot([labels[i]!], 3), 'float32')))) as tf.Scalar;
      }), vars);
      const g = vars.map((v) => grads[v.name]!);
      const norm = Math.sqrt(g.reduce((s, t) => s + (tf.sum(tf.square(t)).dataSync()[0] as number), 0));
      expect(norms[i]).toBeCloseTo(norm, 4);
      const scale = Math.min(1, C / norm);
      g.forEach((t, j) => {
        const next = tf.add(ref[j]!, tf.mul(t, scale));
        ref[j]!.dispose();
        ref[j] = next;
      });
      tf.dispose(Object.values(grads));
    }
    expect(norms.some((x) => x > C)).toBe(true); // the check clips for real
    sum.forEach((t, j) => expect(tf.max(tf.abs(tf.sub(t, ref[j]!))).dataSync()[0]).toBeLessThan(1e-5));
    tf.dispose([...sum, ...ref, P]);
    model.dispose();
  });

  it('under the run\'s DP: DP-SGD with its σ and C, the planned steps charged to the hospital\'s ledger; refused past the target ε', async () => {
    const store = memoryLedgerStore();
    const c = client({ privacyLedger: store });
    const g = await blankHeadGlobal('compact');
    const dp: DpConfig = { noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 40, delta: 1e-3 };
    const train: Extract<Instruction, { stage: 'train' }> = { run_id: RUN, round: 1, stage: 'train', config: { local_epochs: 1, batch_size: 16, learning_rate: 1e-3, proximal_mu: 0, seq_len: 8, seed: 1, dp, model: 'compact' }, weights: g.bytes, weights_sha256: g.sha };
    const fit = await c.fit(train);
    await c.evaluate({ run_id: RUN, round: 1, stage: 'evaluate', weights: g.bytes, weights_sha256: g.sha, model: 'compact' });
    const tensorsBefore = tf.memory().numTensors;
    const report = await c.personalise({ epochs: 4 });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const { sampleRate, steps } = dpSchedule(c.numTrainExamples, 16, 4);
    expect(report.dp).toEqual({ steps: report.history.length * (steps / 4), sample_rate: sampleRate, noise_multiplier: 1.1 });
    const ledger = await PrivacyLedger.open('H2', store);
    expect(ledger.entries.map((e) => e.steps)).toEqual([fit.metrics.dp_steps, steps]);
    expect(report.privacy_epsilon).toBeCloseTo(ledger.spent(1e-3), 10);
    expect(report.privacy_epsilon!).toBeGreaterThan(fit.metrics.privacy_epsilon!);
    // Another personalisation of 400 epochs would pass the target: refused, nothing spent.
    await expect(c.personalise({ epochs: 400 })).rejects.toThrow(/past the target 40/);
    expect((await PrivacyLedger.open('H2', store)).entries).toHaveLength(2);
    c.dispose();
  });
});
