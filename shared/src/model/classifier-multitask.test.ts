// The multi-task heads (run config task_weights): their shapes and parameters, the single-task model
// as an exact prefix, and the masked losses (days only where readmitted, readmission only where known).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { classifierParamCount, createClassifier, createModel, DAYS_SCALE, modelConfigFor, modelOptionsOf, taskLosses, type ClassifierInputs, type MultimodalRiskClassifier, type TaskTargets } from './classifier';
import { countParams } from './params';
import { flattenWeights } from './weights';
import { randomInputs } from '../testing/classifier-inputs';

const WEIGHTS = { readmission_30d: 0.5, days_to_readmission: 2 };

const inputs = randomInputs;

function targets(readmission: number[], days: number[]): TaskTargets {
  return { readmission: tf.tensor1d(readmission), days: tf.tensor1d(days) };
}

/** Gradients of the model's loss with respect to every parameter, by name. */
function grads(m: MultimodalRiskClassifier, x: ClassifierInputs, labels: tf.Tensor1D, t: TaskTargets): Map<string, Float32Array> {
  const vars = m.params.map((p) => p.variable);
  const { value, grads: g } = tf.variableGrads(() => m.loss(x, labels, { training: false }, t), vars);
  value.dispose();
  const out = new Map(m.params.map((p) => [p.name, g[p.variable.name]!.dataSync() as Float32Array]));
  tf.dispose(Object.values(g));
  return out;
}

describe('multi-task heads', () => {
  it.each([
    { name: 'standard' as const, single: 569_091 },
    { name: 'compact' as const, single: classifierParamCount(modelConfigFor('compact')) },
  ])('$name: two 1-output dense heads on the fused vector, after every single-task parameter, same initial values', async ({ name, single }) => {
    const one = createModel(name, 3);
    const multi = createModel(name, 3, { task_weights: WEIGHTS });
    try {
      const fusion = multi.fusionDim;
      expect(countParams(one.params)).toBe(single);
      expect(classifierParamCount(modelConfigFor(name))).toBe(single);
      expect(countParams(multi.params)).toBe(single + 2 * (fusion + 1));
      expect(classifierParamCount(modelConfigFor(name, { task_weights: WEIGHTS }))).toBe(single + 2 * (fusion + 1));
      expect(multi.params.slice(-4).map((p) => [p.name, p.shape])).toEqual([
        ['aux.readmission.kernel', [fusion, 1]],
        ['aux.readmission.bias', [1]],
        ['aux.days.kernel', [fusion, 1]],
        ['aux.days.bias', [1]],
      ]);
      expect(multi.params.slice(0, -4).map((p) => p.name)).toEqual(one.params.map((p) => p.name));
      // The days head starts as the constant 15.5 days (the middle of 1–30): zero kernel, bias 15.5/30.
      expect(multi.params.at(-1)!.variable.dataSync()[0]).toBeCloseTo(15.5 / DAYS_SCALE, 6);
      expect(Array.from(multi.params.at(-2)!.variable.dataSync()).every((v) => v === 0)).toBe(true);
      expect(multi.params.at(-3)!.variable.dataSync()[0]).toBe(0);
      const a = await flattenWeights(one.params);
      const b = await flattenWeights(multi.params);
      expect(b.subarray(0, a.length)).toEqual(a);
      expect(one.taskWeights).toBeNull();
      expect(multi.taskWeights).toEqual(WEIGHTS);
      expect(modelOptionsOf({ task_weights: WEIGHTS })).toEqual({ task_weights: WEIGHTS });
      expect(modelOptionsOf({})).toBeUndefined();
    } finally {
      one.dispose();
      multi.dispose();
    }
  });

  it('predictTasks: logits [B, 3] equal predictLogits, readmission [B], days [B]; a single-task model has no such heads', () => {
    const m = createClassifier({ ...modelConfigFor('compact'), taskWeights: WEIGHTS }, 1);
    const one = createClassifier(modelConfigFor('compact'), 1);
    try {
      tf.tidy(() => {
        const x = inputs(5, 6);
        const out = m.predictTasks(x, { training: false });
        expect(out.logits.shape).toEqual([5, 3]);
        expect(out.readmission.shape).toEqual([5]);
        expect(out.days.shape).toEqual([5]);
        expect(out.logits.dataSync()).toEqual(m.predictLogits(x, { training: false }).dataSync());
        // The risk logits are those of the single-task model with the same seed (its weights are a prefix).
        expect(out.logits.dataSync()).toEqual(one.predictLogits(x, { training: false }).dataSync());
        expect(() => one.predictTasks(x, { training: false })).toThrow(/no multi-task heads \(run config task_weights\)/);
      });
    } finally {
      m.dispose();
      one.dispose();
    }
  });

  it('loss = risk CE + w_r · BCE over known readmissions + w_d · squared error of days/30 over the readmitted rows', () => {
    const m = createClassifier({ ...modelConfigFor('compact'), taskWeights: WEIGHTS }, 2);
    try {
      tf.tidy(() => {
        const x = inputs(4, 5, 7);
        const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
        const t = targets([1, 0, 1, -1], [10, Number.NaN, 25, 7]);
        const out = m.predictTasks(x, { training: false });
        const l = Array.from(out.readmission.dataSync());
        const d = Array.from(out.days.dataSync());
        const bce = (z: number, y: number) => -(y * Math.log(1 / (1 + Math.exp(-z))) + (1 - y) * Math.log(1 - 1 / (1 + Math.exp(-z))));
        const readmission = (bce(l[0]!, 1) + bce(l[1]!, 0) + bce(l[2]!, 1)) / 3;
        const days = ((d[0]! - 10 / DAYS_SCALE) ** 2 + (d[2]! - 25 / DAYS_SCALE) ** 2) / 2;
        const risk = m.loss(x, labels, { training: false }).dataSync()[0]!;
        const total = m.loss(x, labels, { training: false }, t).dataSync()[0]!;
        expect(total).toBeCloseTo(risk + 0.5 * readmission + 2 * days, 5);
        const parts = taskLosses(out.readmission, out.days, t);
        expect(parts.readmission.dataSync()[0]).toBeCloseTo(readmission, 5);
        expect(parts.days.dataSync()[0]).toBeCloseTo(days, 5);
      });
    } finally {
      m.dispose();
    }
  });

  it('the days loss ignores rows not readmitted: their days (NaN, 1000, anything) change no gradient; a readmitted row’s do', () => {
    const m = createClassifier({ ...modelConfigFor('compact'), taskWeights: { readmission_30d: 0, days_to_readmission: 1 } }, 4);
    try {
      tf.tidy(() => {
        const x = inputs(4, 5, 11);
        const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
        const base = grads(m, x, labels, targets([1, 0, 1, -1], [10, Number.NaN, 25, 7]));
        const other = grads(m, x, labels, targets([1, 0, 1, -1], [10, 1000, 25, -3]));
        for (const [name, g] of base) {
          expect(g.every(Number.isFinite), name).toBe(true);
          expect(other.get(name), name).toEqual(g);
        }
        const moved = grads(m, x, labels, targets([1, 0, 1, -1], [20, Number.NaN, 25, 7]));
        expect(moved.get('aux.days.bias')![0]).not.toBeCloseTo(base.get('aux.days.bias')![0]!, 6);
        // d/db of mean (d_i − y_i/30)² over the readmitted rows 0 and 2: mean of 2(d_i − y_i/30).
        const d = Array.from(m.predictTasks(x, { training: false }).days.dataSync());
        expect(base.get('aux.days.bias')![0]).toBeCloseTo((2 * (d[0]! - 10 / 30) + 2 * (d[2]! - 25 / 30)) / 2, 5);
        // No readmission weight: its head gets no gradient.
        expect(base.get('aux.readmission.bias')![0]).toBe(0);
      });
    } finally {
      m.dispose();
    }
  });

  it('refuses negative or missing task weights, naming the key', () => {
    expect(() => createClassifier({ taskWeights: { readmission_30d: -1, days_to_readmission: 1 } })).toThrow(/taskWeights\.readmission_30d must be a finite number >= 0/);
    expect(() => createClassifier({ taskWeights: { readmission_30d: 1 } as never })).toThrow(/taskWeights\.days_to_readmission/);
  });
});
