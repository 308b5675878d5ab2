/**
 * The multi-task heads' data and figures (run config `task_weights`; ../model/classifier.ts): the
 * heads' predictions over a FeatureBatch, each hospital's metrics and
 * their exact federated pooling (the minibatch targets are ./train.ts `taskTargetsFor`).
 *
 * Metric names (per hospital and pooled): `readmission_auc_roc` (binary AUC-ROC of readmission_30d,
 * over the rows where it is known), `days_mae` and `days_rmse` (days_to_readmission, in days, over
 * the readmitted rows), and the counts that pool them: `readmission_count`, `days_count`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureBatch } from '../data/features';
import { DAYS_SCALE } from '../model/classifier';
import { binaryAucRoc } from './metrics';
import { disposeInputs, inputsFor, type ModelInputs } from './train';

export const MULTI_TASK_METRIC_NAMES = ['readmission_auc_roc', 'days_mae', 'days_rmse', 'readmission_count', 'days_count'] as const;
export type MultiTaskMetricName = (typeof MULTI_TASK_METRIC_NAMES)[number];
export type MultiTaskMetrics = Record<MultiTaskMetricName, number>;

/** What the heads' figures need of a model (MultimodalRiskClassifier with task_weights). */
export interface MultiTaskModel {
  predictTasks(inputs: ModelInputs, options: { training: boolean }): { logits: tf.Tensor2D; readmission: tf.Tensor1D; days: tf.Tensor1D };
}

/** P(readmission_30d) and predicted days to readmission (in days) for `rows`, in inference mode. */
export async function predictTasks(model: MultiTaskModel, batch: FeatureBatch, rows: readonly number[], batchSize = 128): Promise<{ readmission: Float32Array; days: Float32Array }> {
  const readmission = new Float32Array(rows.length);
  const days = new Float32Array(rows.length);
  for (let s = 0; s < rows.length; s += batchSize) {
    const inputs = inputsFor(batch, rows.slice(s, s + batchSize));
    try {
      const [p, d] = tf.tidy(() => {
        const out = model.predictTasks(inputs, { training: false });
        return [tf.sigmoid(out.readmission), tf.mul(out.days, DAYS_SCALE)];
      });
      readmission.set(await p.data(), s);
      days.set(await d.data(), s);
      tf.dispose([p, d]);
    } finally {
      disposeInputs(inputs);
    }
  }
  return { readmission, days };
}

/**
 * One hospital's figures: `probs` P(readmission) and `daysPred` per row, against `readmitted`
 * (1, 0, −1 unknown) and `daysTrue` (finite where readmitted). AUC-ROC is NaN when one class is
 * absent; MAE and RMSE are NaN without a readmitted row.
 */
export function multiTaskMetrics(probs: ArrayLike<number>, readmitted: ArrayLike<number>, daysPred: ArrayLike<number>, daysTrue: ArrayLike<number>): MultiTaskMetrics {
  const scores: number[] = [];
  const positive: boolean[] = [];
  let n = 0;
  let abs = 0;
  let sq = 0;
  for (let i = 0; i < readmitted.length; i++) {
    const y = readmitted[i] as number;
    if (y !== 0 && y !== 1) continue;
    scores.push(probs[i] as number);
    positive.push(y === 1);
    const t = daysTrue[i] as number;
    if (y === 1 && Number.isFinite(t)) {
      const e = (daysPred[i] as number) - t;
      n++;
      abs += Math.abs(e);
      sq += e * e;
    }
  }
  return {
    readmission_auc_roc: binaryAucRoc(scores, positive),
    readmission_count: scores.length,
    days_mae: n ? abs / n : Number.NaN,
    days_rmse: n ? Math.sqrt(sq / n) : Number.NaN,
    days_count: n,
  };
}

/**
 * The federation's figures from the hospitals' own: MAE and RMSE exactly as on the pooled rows —
 * Σ n_h·MAE_h / Σ n_h and √(Σ n_h·RMSE_h² / Σ n_h) (n_h·RMSE_h² is hospital h's sum of squared
 * errors), n_h its readmitted evaluation rows; AUC-ROC weighted by each hospital's rows with a known
 * readmission (a rank statistic does not pool from per-hospital AUCs; this is how `auc_roc` is pooled
 * too). Empty when no hospital reported them (a single-task run).
 */
export function poolMultiTaskMetrics(results: readonly { metrics: Readonly<Record<string, number>> }[]): Partial<MultiTaskMetrics> {
  let aucW = 0;
  let aucSum = 0;
  let readmissionCount = 0;
  let n = 0;
  let abs = 0;
  let sq = 0;
  let any = false;
  for (const { metrics: m } of results) {
    const rc = m.readmission_count;
    if (rc === undefined) continue;
    any = true;
    readmissionCount += rc;
    const auc = m.readmission_auc_roc;
    if (auc !== undefined && Number.isFinite(auc) && rc > 0) {
      aucW += rc;
      aucSum += rc * auc;
    }
    const dc = m.days_count ?? 0;
    const mae = m.days_mae;
    const rmse = m.days_rmse;
    if (dc > 0 && mae !== undefined && rmse !== undefined && Number.isFinite(mae) && Number.isFinite(rmse)) {
      n += dc;
      abs += dc * mae;
      sq += dc * rmse * rmse;
    }
  }
  if (!any) return {};
  return {
    readmission_auc_roc: aucW ? aucSum / aucW : Number.NaN,
    readmission_count: readmissionCount,
    days_mae: n ? abs / n : Number.NaN,
    days_rmse: n ? Math.sqrt(sq / n) : Number.NaN,
    days_count: n,
  };
}
