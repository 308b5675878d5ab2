/**
 * Classification metrics with the seed spec 6.1 names. Pure functions over plain arrays so the
 * server, the portal and the CLI compute them identically. Multi-class conventions follow
 * scikit-learn: macro averages over classes; AUC-ROC one-vs-rest (Mann–Whitney U with midranks for
 * ties); AUC-PR as average precision, AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ over distinct thresholds.
 */

export const CLASS_NAMES = ['Low', 'Medium', 'High'] as const;

export interface ClassificationMetrics {
  loss: number;
  accuracy: number;
  auc_roc: number;
  auc_pr: number;
  f1_score: number;
  precision: number;
  recall: number;
  accuracy_low_risk: number;
  accuracy_medium_risk: number;
  accuracy_high_risk: number;
  /** Number of labelled examples the figures are computed on. */
  num_examples: number;
}

/** Binary AUC-ROC of `scores` for `positive` labels; NaN when one class is absent. */
export function binaryAucRoc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let nPos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const midrank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (positive[idx[k] as number]) {
        nPos++;
        rankSumPos += midrank;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Average precision (area under the precision–recall curve, step-wise); NaN without positives. */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let totalPos = 0;
  for (let i = 0; i < n; i++) if (positive[i]) totalPos++;
  if (totalPos === 0) return Number.NaN;
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    for (let k = i; k <= j; k++) {
      if (positive[idx[k] as number]) tp++;
      else fp++;
    }
    const recall = tp / totalPos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
    i = j + 1;
  }
  return ap;
}

function meanDefined(values: number[]): number {
  const ok = values.filter((v) => !Number.isNaN(v));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
}

/**
 * Metrics of class probabilities `probs` (row-major n×k) against integer `labels` in [0, k).
 * Precision/recall/F1 are macro averages; a class never predicted has precision 0 (sklearn's
 * zero_division=0). AUCs skip classes absent from `labels`.
 */
export function classificationMetrics(probs: ArrayLike<number>, labels: ArrayLike<number>, k = 3): ClassificationMetrics {
  const n = labels.length;
  if (probs.length !== n * k) throw new Error(`probs has ${probs.length} values, expected ${n}×${k}`);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= k) throw new Error(`label ${i} is ${y}, expected 0…${k - 1}`);
    let best = 0;
    for (let c = 1; c < k; c++) if ((probs[i * k + c] as number) > (probs[i * k + best] as number)) best = c;
    (confusion[y] as number[])[best]! += 1;
    if (best === y) correct++;
    loss -= Math.log(Math.max(probs[i * k + y] as number, 1e-12));
  }
  const precisions: number[] = [];
  const recalls: number[] = [];
  const f1s: number[] = [];
  const aucs: number[] = [];
  const aps: number[] = [];
  for (let c = 0; c < k; c++) {
    const tp = (confusion[c] as number[])[c] as number;
    let predicted = 0;
    let actual = 0;
    for (let r = 0; r < k; r++) predicted += (confusion[r] as number[])[c] as number;
    for (let r = 0; r < k; r++) actual += (confusion[c] as number[])[r] as number;
    const p = predicted ? tp / predicted : 0;
    const rc = actual ? tp / actual : Number.NaN;
    precisions.push(actual ? p : Number.NaN);
    recalls.push(rc);
    f1s.push(actual ? (p + rc > 0 ? (2 * p * rc) / (p + rc) : 0) : Number.NaN);
    const scores = new Float64Array(n);
    const pos = new Array<boolean>(n);
    for (let i = 0; i < n; i++) {
      scores[i] = probs[i * k + c] as number;
      pos[i] = labels[i] === c;
    }
    aucs.push(binaryAucRoc(scores, pos));
    aps.push(averagePrecision(scores, pos));
  }
  return {
    loss: n ? loss / n : Number.NaN,
    accuracy: n ? correct / n : Number.NaN,
    auc_roc: meanDefined(aucs),
    auc_pr: meanDefined(aps),
    f1_score: meanDefined(f1s),
    precision: meanDefined(precisions),
    recall: meanDefined(recalls),
    accuracy_low_risk: recalls[0] ?? Number.NaN,
    accuracy_medium_risk: recalls[1] ?? Number.NaN,
    accuracy_high_risk: recalls[2] ?? Number.NaN,
    num_examples: n,
  };
}

/** Turns a single risk score into 3-class "probabilities" by soft thresholds (for oracle baselines). */
export function scoreToClassProbs(scores: ArrayLike<number>, cuts: readonly [number, number], temperature = 0.3): Float64Array {
  const out = new Float64Array(scores.length * 3);
  const sig = (x: number) => 1 / (1 + Math.exp(-x / temperature));
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    const pAboveLow = sig(s - cuts[0]);
    const pAboveHigh = sig(s - cuts[1]);
    out[i * 3] = 1 - pAboveLow;
    out[i * 3 + 1] = pAboveLow - pAboveHigh;
    out[i * 3 + 2] = pAboveHigh;
  }
  return out;
}

export type SplitName = 'train' | 'val' | 'test';

/** Metrics under the seed spec 6.1 names for one split: `test_loss`, `test_accuracy`, `auc_roc`, … */
export type SplitMetrics<S extends SplitName> = Omit<ClassificationMetrics, 'loss' | 'accuracy'> & {
  [K in `${S}_loss` | `${S}_accuracy`]: number;
};

export function splitMetrics<S extends SplitName>(split: S, m: ClassificationMetrics): SplitMetrics<S> {
  const { loss, accuracy, ...rest } = m;
  return { [`${split}_loss`]: loss, [`${split}_accuracy`]: accuracy, ...rest } as SplitMetrics<S>;
}
