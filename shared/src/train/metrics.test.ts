import { describe, expect, it } from 'vitest';
import { averagePrecision, binaryAucRoc, classificationMetrics, splitMetrics } from './metrics';

describe('binary ranking metrics (values from scikit-learn documentation examples)', () => {
  it.each([
    // roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
    { scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1], auc: 0.75, ap: 0.8333333333 },
    // perfect ranking
    { scores: [0.1, 0.2, 0.8, 0.9], labels: [0, 0, 1, 1], auc: 1, ap: 1 },
    // all tied: AUC one half, AP equals the prevalence
    { scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 0], auc: 0.5, ap: 0.25 },
    // inverted ranking
    { scores: [0.9, 0.8, 0.2, 0.1], labels: [0, 0, 1, 1], auc: 0, ap: 0.5 * (1 / 3) + 0.5 * 0.5 },
  ])('auc $auc ap $ap', ({ scores, labels, auc, ap }) => {
    const pos = labels.map((l) => l === 1);
    expect(binaryAucRoc(scores, pos)).toBeCloseTo(auc, 9);
    expect(averagePrecision(scores, pos)).toBeCloseTo(ap, 9);
  });

  it('is NaN when a class is absent', () => {
    expect(binaryAucRoc([0.1, 0.2], [false, false])).toBeNaN();
    expect(averagePrecision([0.1, 0.2], [false, false])).toBeNaN();
  });
});

describe('classificationMetrics', () => {
  // 6 examples, 3 classes. Predictions (argmax): 0,0,1,2,2,1 for labels 0,1,1,2,2,0.
  const probs = [
    0.7, 0.2, 0.1, //  y0 → 0 ✓
    0.5, 0.3, 0.2, //  y1 → 0 ✗
    0.1, 0.8, 0.1, //  y1 → 1 ✓
    0.1, 0.2, 0.7, //  y2 → 2 ✓
    0.2, 0.2, 0.6, //  y2 → 2 ✓
    0.3, 0.4, 0.3, //  y0 → 1 ✗
  ];
  const labels = [0, 1, 1, 2, 2, 0];
  const m = classificationMetrics(probs, labels);

  it('computes accuracy, per-class accuracy and macro precision/recall/F1 by hand', () => {
    expect(m.accuracy).toBeCloseTo(4 / 6, 12);
    // per-class recall: class0 1/2, class1 1/2, class2 2/2
    expect(m.accuracy_low_risk).toBeCloseTo(0.5, 12);
    expect(m.accuracy_medium_risk).toBeCloseTo(0.5, 12);
    expect(m.accuracy_high_risk).toBeCloseTo(1, 12);
    // precision: class0 1/2 (pred 0 for rows 0,1), class1 1/2 (rows 2,5), class2 2/2
    expect(m.precision).toBeCloseTo((0.5 + 0.5 + 1) / 3, 12);
    expect(m.recall).toBeCloseTo((0.5 + 0.5 + 1) / 3, 12);
    expect(m.f1_score).toBeCloseTo((0.5 + 0.5 + 1) / 3, 12);
    expect(m.num_examples).toBe(6);
  });

  it('computes the mean cross-entropy', () => {
    const expected = -(Math.log(0.7) + Math.log(0.3) + Math.log(0.8) + Math.log(0.7) + Math.log(0.6) + Math.log(0.3)) / 6;
    expect(m.loss).toBeCloseTo(expected, 12);
  });

  it('averages one-vs-rest AUCs over classes', () => {
    // class 0 scores [.7,.5,.1,.1,.2,.3], positives rows 0,5 → pairs (pos>neg): .7 beats all 4; .3 beats .1,.1,.2 = 3 → 7/8
    // class 1 scores [.2,.3,.8,.2,.2,.4], positives rows 1,2 → .3 beats .2,.2,.2 (3 of 4); .8 beats all 4 → 7/8
    // class 2 scores [.1,.2,.1,.7,.6,.3], positives rows 3,4 → both beat all 4 → 1
    expect(m.auc_roc).toBeCloseTo((7 / 8 + 7 / 8 + 1) / 3, 12);
  });

  it('rejects labels out of range and mismatched shapes', () => {
    expect(() => classificationMetrics([0.5, 0.5, 0], [3])).toThrow(/label 0 is 3/);
    expect(() => classificationMetrics([0.5, 0.5], [0])).toThrow(/expected 1×3/);
  });
});

describe('splitMetrics', () => {
  it('renames loss and accuracy for the split and keeps the rest', () => {
    const m = classificationMetrics([0.9, 0.05, 0.05, 0.1, 0.8, 0.1], [0, 1]);
    const t = splitMetrics('test', m);
    expect(t.test_loss).toBe(m.loss);
    expect(t.test_accuracy).toBe(1);
    expect(t.auc_roc).toBe(m.auc_roc);
    expect('loss' in t).toBe(false);
  });
});
