import { describe, expect, it } from 'vitest';
import { finalizeFeatureStats } from '../data/features';
import { generateHospital } from '../data/generator';
import { createClassifier } from '../model/classifier';
import { flattenWeights, sha256Hex, weightsToBytes } from '../model/weights';
import { computeRdp, DEFAULT_ORDERS, DP_SGD_ORDERS, epsilonFor } from '../privacy/rdp';
import type { DpConfig, Instruction } from '../protocol/messages';
import { dpSchedule } from '../train/train';
import { HospitalClient } from './client';
import { memoryLedgerStore, PrivacyLedger } from './privacy-ledger';

const RUN = 'run-20260101000000-abcdef01';
const records = generateHospital('H1', { seed: 9, patients: 40 }).records;

async function trainInstruction(round: number, dp: DpConfig): Promise<Extract<Instruction, { stage: 'train' }>> {
  const model = createClassifier({}, 0);
  const bytes = weightsToBytes(await flattenWeights(model.params));
  model.dispose();
  return { run_id: RUN, round, stage: 'train', config: { local_epochs: 1, batch_size: 8, learning_rate: 1e-3, proximal_mu: 0, seq_len: 8, seed: 1, dp }, weights: bytes, weights_sha256: await sha256Hex(bytes) };
}

function client(store = memoryLedgerStore()) {
  const c = new HospitalClient('H1', records, { privacyLedger: store });
  c.setStats(RUN, finalizeFeatureStats(c.featureSums(8)), 8);
  return c;
}

describe('HospitalClient with differential privacy', () => {
  it('charges its ledger, persists it, and reports the ε the accountant gives; sends no training-set metrics', async () => {
    const store = memoryLedgerStore();
    const c = client(store);
    const dp = { noise_multiplier: 1.2, max_grad_norm: 1, target_epsilon: 50, delta: 1e-3 };
    const r1 = await c.fit(await trainInstruction(1, dp));
    const r2 = await c.fit(await trainInstruction(2, dp));
    const { sampleRate, steps } = dpSchedule(c.numTrainExamples, 8, 1);
    expect(r1.metrics.privacy_epsilon).toBeCloseTo(epsilonFor({ sampleRate, noiseMultiplier: 1.2, steps, delta: 1e-3, orders: DP_SGD_ORDERS }).epsilon, 10);
    expect(r2.metrics.privacy_epsilon).toBeCloseTo(epsilonFor({ sampleRate, noiseMultiplier: 1.2, steps: 2 * steps, delta: 1e-3, orders: DP_SGD_ORDERS }).epsilon, 10);
    expect(r1.metrics).not.toHaveProperty('train_loss');
    expect(r1.metrics).not.toHaveProperty('train_accuracy');
    // a new client (a restart) on the same store starts from what was spent
    const reopened = await PrivacyLedger.open('H1', store);
    expect(reopened.entries.map((e) => e.round)).toEqual([1, 2]);
    expect(reopened.spent(1e-3)).toBeCloseTo(r2.metrics.privacy_epsilon!, 10);
    c.dispose();
  });

  it('declines a round past its target ε, naming spent, after and target — and spends nothing', async () => {
    const store = memoryLedgerStore();
    const c = client(store);
    await expect(c.fit(await trainInstruction(1, { noise_multiplier: 0.5, max_grad_norm: 1, target_epsilon: 0.5, delta: 1e-3 }))).rejects.toThrow(
      /^PRIVACY_BUDGET: this round would take ε from 0\.000 to \d+\.\d{3}, past the target 0\.5$/,
    );
    expect(await store.load()).toBeUndefined();
    c.dispose();
  });

  it('refuses δ ≥ 1/n for its own n, and a ledger of another hospital', async () => {
    const c = client();
    await expect(c.fit(await trainInstruction(1, { noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 10, delta: 0.5 }))).rejects.toThrow(/delta 0\.5 must be < 1\/n = .* for this hospital's \d+ training examples/);
    c.dispose();
    const foreign = memoryLedgerStore();
    await foreign.save({ version: 1, hospital_id: 'H2', orders: [2], rdp: [0], entries: [] });
    await expect(PrivacyLedger.open('H1', foreign)).rejects.toThrow(/belongs to H2 .* refusing to reset a privacy budget silently/);
  });

  it('narrows a ledger kept at Opacus’s orders (before the discrete Gaussian) to the integer orders, keeping what was spent', async () => {
    const store = memoryLedgerStore();
    const old = computeRdp(0.05, 1.1, 400, DEFAULT_ORDERS);
    await store.save({ version: 1, hospital_id: 'H1', orders: [...DEFAULT_ORDERS], rdp: old, entries: [{ run_id: RUN, round: 1, sample_rate: 0.05, noise_multiplier: 1.1, steps: 400, at: '2026-01-01T00:00:00.000Z' }] });
    const ledger = await PrivacyLedger.open('H1', store);
    const spent = ledger.spent(1e-5);
    expect(spent).toBeCloseTo(epsilonFor({ sampleRate: 0.05, noiseMultiplier: 1.1, steps: 400, delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon, 10);
    expect(spent).toBeGreaterThanOrEqual(epsilonFor({ sampleRate: 0.05, noiseMultiplier: 1.1, steps: 400, delta: 1e-5 }).epsilon);
    // a ledger missing an integer order cannot be narrowed: refused, not reset
    await store.save({ version: 1, hospital_id: 'H1', orders: [1.5, 2.5], rdp: [0.1, 0.2], entries: [] });
    await expect(PrivacyLedger.open('H1', store)).rejects.toThrow(/lack some of DP-SGD's integer orders; refusing to reset/);
  });

  it('applies the hospital’s own ε cap below the run’s target, and refuses a non-private run when it has one', async () => {
    const c = new HospitalClient('H1', records, { maxEpsilon: 0.5 });
    c.setStats(RUN, finalizeFeatureStats(c.featureSums(8)), 8);
    await expect(c.fit(await trainInstruction(1, { noise_multiplier: 0.5, max_grad_norm: 1, target_epsilon: 1000, delta: 1e-3 }))).rejects.toThrow(/past the target 0\.5$/);
    const plain = await trainInstruction(1, { noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 1, delta: 1e-3 });
    delete plain.config.dp;
    await expect(c.fit(plain)).rejects.toThrow(/trains only with differential privacy \(its ε cap is 0\.5\)/);
    c.dispose();
  });
});
