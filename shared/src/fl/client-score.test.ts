import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { finalizeFeatureStats } from '../data/features';
import { generateHospital, OBSERVATION_WINDOW_DAYS } from '../data/generator';
import { createModel, MODALITY_TOKENS } from '../model/classifier';
import { flattenWeights, sha256Hex, weightsToBytes } from '../model/weights';
import { scoresToCsv } from '../train/score';
import { inputsFor, disposeInputs } from '../train/train';
import { encodeRecords } from '../data/features';
import { resultSchema, validate } from '../protocol/messages';
import { HospitalClient } from './client';

const RUN = 'run-20260101000000-abcdef01';
const records = generateHospital('H2', { seed: 11, patients: 45 }).records;

describe('HospitalClient.scorePatients: every patient scored with the last global model, locally', () => {
  it('scores all records (every split) with the evaluated model: probabilities as predictLogits gives them, attention rows summing to 1', async () => {
    const c = new HospitalClient('H2', records);
    const stats = finalizeFeatureStats(c.featureSums(8));
    c.setStats(RUN, stats, 8);
    await expect(c.scorePatients()).rejects.toThrow(/no global model here yet/);
    const model = createModel('standard', 5); // not the client's own seed: scores must come from the sent weights
    const bytes = weightsToBytes(await flattenWeights(model.params));
    const sha = await sha256Hex(bytes);
    const reply = await c.evaluate({ run_id: RUN, round: 2, stage: 'evaluate', weights: bytes, weights_sha256: sha });
    // The evaluation carries its calibration figures and still passes the coordinator's result schema.
    expect(reply.metrics).toHaveProperty('ece');
    expect(reply.metrics).toHaveProperty('calibration_val_nll_sum_t05');
    expect(validate(resultSchema, { run_id: RUN, round: 2, stage: 'evaluate', ...reply }).ok).toBe(true);
    expect(c.canScore).toEqual({ run_id: RUN, round: 2 });
    const out = await c.scorePatients();
    expect(out).toMatchObject({ run_id: RUN, round: 2, model_sha256: sha });
    expect(out.scores.map((s) => s.patient_id).sort()).toEqual(records.map((r) => r.patient_id).sort());
    expect(new Set(out.scores.map((s) => s.split))).toEqual(new Set(['train', 'val', 'test']));

    // The same probabilities as the model's own inference on the same features.
    const batch = encodeRecords(records, stats, { seqLen: 8, windowDays: OBSERVATION_WINDOW_DAYS });
    const byId = new Map(out.scores.map((s) => [s.patient_id, s]));
    const inputs = inputsFor(batch, Array.from({ length: batch.n }, (_, i) => i));
    const ref = tf.tidy(() => tf.softmax(model.predictLogits(inputs, { training: false }))).dataSync();
    disposeInputs(inputs);
    let worst = 0;
    batch.patientIds.forEach((id, i) => {
      const s = byId.get(id)!;
      for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs((s.probabilities[k] as number) - (ref[i * 3 + k] as number)));
      expect(s.predicted).toBe(['Low', 'Medium', 'High'][s.probabilities.indexOf(Math.max(...s.probabilities))]);
      const att = MODALITY_TOKENS.map((m) => s.modality_attention[m]);
      expect(att.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(att.every((v) => v > 0 && v < 1)).toBe(true);
      expect(s.top_modality).toBe(MODALITY_TOKENS[att.indexOf(Math.max(...att))]);
    });
    expect(worst).toBeLessThan(1e-5);
    model.dispose();
    c.dispose();
  });

  it('CSV: a header and one RFC 4180 row per patient, quoting what needs it', () => {
    const s = { patient_id: 'p,"1"', probabilities: [0.2, 0.3, 0.5] as [number, number, number], predicted: 'High' as const, modality_attention: { vitals: 0.4, labs: 0.2, demographics: 0.2, biology: 0.1, omics: 0.1 }, top_modality: 'vitals' as const };
    const csv = scoresToCsv([s], { split: () => 'test' });
    expect(csv).toBe(
      'patient_id,split,predicted,p_low,p_medium,p_high,top_modality,attention_vitals,attention_labs,attention_demographics,attention_biology,attention_omics\r\n' +
        '"p,""1""",test,High,0.200000,0.300000,0.500000,vitals,0.400000,0.200000,0.200000,0.100000,0.100000\r\n',
    );
  });
});
