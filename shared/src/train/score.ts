/**
 * Per-patient scores of a model on a hospital's own records: the three risk probabilities, the
 * predicted class, and which modality the model attended to most.
 *
 * Which modality "contributed most" is read from the fusion's self-attention (model/classifier.ts):
 * the softmax weight each of the five modality tokens receives, averaged over the heads and the
 * five query tokens (a row sums to 1). We chose attention over integrated gradients because it
 * costs nothing beyond the forward pass (integrated gradients needs ~50 backward passes per
 * patient, minutes in a tab) and because the fusion is exactly where modalities meet. It says
 * where the model looked, not a causal attribution (Jain & Wallace 2019, "Attention is not
 * Explanation"): the portal says so next to it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureBatch } from '../data/features';
import { RISK_LEVELS } from '../data/vocabulary';
import { MODALITY_TOKENS, type ModalityToken, type MultimodalRiskClassifier } from '../model/classifier';
import { disposeInputs, inputsFor } from './train';

export type RiskLevel = (typeof RISK_LEVELS)[number];

export interface PatientScore {
  patient_id: string;
  /** P(Low), P(Medium), P(High). */
  probabilities: [number, number, number];
  predicted: RiskLevel;
  /** Attention each modality token received, MODALITY_TOKENS order, summing to 1. */
  modality_attention: Record<ModalityToken, number>;
  /** The modality with the most attention. */
  top_modality: ModalityToken;
}

/**
 * Scores every record of `batch` (labelled or not), `batchSize` at a time, yielding between
 * batches; probabilities are softmax(logits / temperature) (1: uncalibrated).
 */
export async function scoreBatch(model: MultimodalRiskClassifier, batch: FeatureBatch, batchSize = 128, temperature = 1): Promise<PatientScore[]> {
  const out: PatientScore[] = [];
  for (let s = 0; s < batch.n; s += batchSize) {
    const rows = Array.from({ length: Math.min(batchSize, batch.n - s) }, (_, i) => s + i);
    const inputs = inputsFor(batch, rows);
    const { logits, attention } = model.predictWithAttention(inputs);
    const probs = tf.tidy(() => tf.softmax(temperature === 1 ? logits : tf.div(logits, temperature)));
    const [p, a] = await Promise.all([probs.data(), attention.data()]);
    tf.dispose([logits, attention, probs]);
    disposeInputs(inputs);
    rows.forEach((r, i) => {
      const probabilities: [number, number, number] = [p[i * 3] as number, p[i * 3 + 1] as number, p[i * 3 + 2] as number];
      const best = probabilities.indexOf(Math.max(...probabilities));
      const weights = MODALITY_TOKENS.map((_, k) => a[i * MODALITY_TOKENS.length + k] as number);
      const top = weights.indexOf(Math.max(...weights));
      out.push({
        patient_id: batch.patientIds[r] as string,
        probabilities,
        predicted: RISK_LEVELS[best] as RiskLevel,
        modality_attention: Object.fromEntries(MODALITY_TOKENS.map((m, k) => [m, weights[k] as number])) as Record<ModalityToken, number>,
        top_modality: MODALITY_TOKENS[top] as ModalityToken,
      });
    });
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
  return out;
}

const csvCell = (v: string | number) => {
  const t = typeof v === 'number' ? (Number.isFinite(v) ? v.toFixed(6) : '') : v;
  return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
};

/** The scores as CSV (RFC 4180): one row per patient, a header row first. */
export function scoresToCsv(scores: readonly PatientScore[], extra: Record<string, (s: PatientScore) => string | number> = {}): string {
  const header = ['patient_id', ...Object.keys(extra), 'predicted', 'p_low', 'p_medium', 'p_high', 'top_modality', ...MODALITY_TOKENS.map((m) => `attention_${m}`)];
  const rows = scores.map((s) => [s.patient_id, ...Object.values(extra).map((f) => f(s)), s.predicted, ...s.probabilities, s.top_modality, ...MODALITY_TOKENS.map((m) => s.modality_attention[m])].map(csvCell).join(','));
  return `${[header.join(','), ...rows].join('\r\n')}\r\n`;
}
