// Acceptance of the foundation: central training learns the generator's latent risk, and a small
// hospital alone learns worse than the pooled data. Deterministic (fixed seeds, single-threaded
// wasm), so these are measurements, not flaky thresholds; they take ~3 minutes on 2 cores.
import { KNOWN_HOSPITALS, generateHospital, type PatientRecord } from '@fedcare/shared/data';
import { describe, expect, it } from 'vitest';
import { trainCentral, type TrainReport } from './train';

const records: PatientRecord[] = KNOWN_HOSPITALS.flatMap((h) => generateHospital(h, { seed: 42 }).records);
const base = { records, epochs: 10, seed: 1, seqLen: 30, batchSize: 32, learningRate: 1e-3, progress: false };

describe('central training (seed 42 hospitals, 10 epochs, T = 30)', () => {
  let pooled: TrainReport;

  it('pooled training reaches test macro AUC-ROC ≥ 0.80', async () => {
    pooled = await trainCentral(base);
    console.log(`pooled test: auc_roc ${pooled.test.auc_roc.toFixed(3)}, per hospital ${Object.entries(pooled.per_hospital).map(([h, m]) => `${h} ${m.auc_roc.toFixed(3)}`).join(', ')}`);
    expect(pooled.test.auc_roc).toBeGreaterThanOrEqual(0.8);
    expect(pooled.params).toBeGreaterThan(560_000);
    expect(pooled.params).toBeLessThan(590_000);
    expect(pooled.train_examples).toBe(2400);
    expect(pooled.test.num_examples).toBe(600);
    // training loss goes down
    expect(pooled.epochs.at(-1)!.loss).toBeLessThan(pooled.epochs[0]!.loss);
  }, 600_000);

  it('H2 alone scores lower on its own test split than the pooled model', async () => {
    const alone = await trainCentral({ ...base, hospital: 'H2' });
    console.log(`H2 test split: alone ${alone.per_hospital.H2!.auc_roc.toFixed(3)} vs pooled ${pooled.per_hospital.H2!.auc_roc.toFixed(3)}`);
    expect(alone.trained_on).toEqual(['H2']);
    expect(alone.train_examples).toBe(640);
    expect(alone.per_hospital.H2!.auc_roc).toBeLessThan(pooled.per_hospital.H2!.auc_roc);
  }, 600_000);
});
