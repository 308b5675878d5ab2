import * as tf from '@tensorflow/tfjs-core';
import { computeFeatureSums, finalizeFeatureStats, generateHospital, OBSERVATION_WINDOW_DAYS, splitByHospital } from '@fedcare/shared/data';
import { createModel, flattenWeights, sha256Hex, weightsToBytes } from '@fedcare/shared/model';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { describe, expect, it } from 'vitest';
import { personaliseHospitals } from './personalisation';

describe('fedcare simulate --personalise: local-only, global and personalised AUC-ROC per hospital', () => {
  it('computes every hospital\'s row on its own test split; a blank-headed global model is beaten by its personalised copy', async () => {
    const records = ['H1', 'H2'].flatMap((h, i) => generateHospital(h, { seed: 3 + i, patients: 120 }).records);
    const config = runConfigSchema.parse({ model: 'standard', rounds: 2, local_epochs: 1, seq_len: 8, batch_size: 16, learning_rate: 0.001, seed: 1 });
    const stats = finalizeFeatureStats(computeFeatureSums(splitByHospital(records, 0.2, 0).train, { seqLen: 8, windowDays: OBSERVATION_WINDOW_DAYS }));
    const model = createModel('standard', 0);
    for (const p of model.params.filter((x) => x.name.startsWith('head.')).slice(-2)) p.variable.assign(tf.zerosLike(p.variable));
    const weights = weightsToBytes(await flattenWeights(model.params));
    model.dispose();
    const info: string[] = [];
    const rows = await personaliseHospitals({ records, hospitals: ['H1', 'H2'], runId: 'run-20260101000000-abcdef01', round: 2, stats, weights, sha256: await sha256Hex(weights), config, onInfo: (m) => info.push(m) });
    console.log(rows);
    expect(rows.map((r) => r.hospital)).toEqual(['H1', 'H2']);
    for (const r of rows) {
      expect(r.n).toBe(records.filter((x) => x.hospital_id === r.hospital).length * 0.2);
      expect(r.global).toBeCloseTo(0.5, 6); // a blank head ranks nobody
      expect(r.personalised).toBeGreaterThan(0.6);
      expect(r.local_only).toBeGreaterThan(0.5);
      expect(r.margin).toBeCloseTo(r.personalised - Math.max(r.local_only, r.global), 12);
      expect(r.best_epoch).toBeGreaterThan(0);
    }
    expect(info.join('\n')).toMatch(/H2: personalised .*local-only model for 2 epochs/);
    // A wrong checksum is refused before anything is trained.
    await expect(personaliseHospitals({ records, hospitals: ['H1'], runId: 'run-20260101000000-abcdef01', round: 2, stats, weights, sha256: '0'.repeat(64), config })).rejects.toThrow(/SHA-256/);
  }, 120_000);
});
