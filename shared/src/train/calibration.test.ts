import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { atTemperature, calibrationMetricNames, calibrationMetrics, expectedCalibrationError, nllSum, pickTemperature, TEMPERATURE_GRID } from './calibration';

describe('expected calibration error (Guo et al. 2017, eq. 3)', () => {
  it('a worked example: 4 predictions in two bins', () => {
    // top-label confidences 0.9, 0.95 (bin 9; one right) and 0.55, 0.58 (bin 5; both right)
    const probs = [0.9, 0.05, 0.05, 0.95, 0.03, 0.02, 0.55, 0.45, 0, 0.42, 0.58, 0];
    const labels = [0, 1, 0, 1];
    const { ece, bins } = expectedCalibrationError(probs, labels);
    // bin 9: |0.5 − 0.925| · 2/4; bin 5: |1 − 0.565| · 2/4
    expect(ece).toBeCloseTo(0.5 * 0.425 + 0.5 * 0.435, 12);
    expect(bins[9]).toEqual({ count: 2, confidence: 0.925, accuracy: 0.5 });
    expect(bins[5]!.count).toBe(2);
    expect(bins[5]!.confidence).toBeCloseTo(0.565, 12);
    expect(bins.filter((b) => b.count === 0).every((b) => Number.isNaN(b.confidence))).toBe(true);
  });

  it('perfectly calibrated predictions have ECE near 0; 1.0 confidence always wrong has ECE 1', () => {
    const rng = new Rng('calib');
    const n = 20_000;
    const probs: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = 0.34 + 0.66 * rng.next();
      probs.push(p, (1 - p) / 2, (1 - p) / 2);
      labels.push(rng.next() < p ? 0 : 1 + Math.floor(rng.next() * 2));
    }
    expect(expectedCalibrationError(probs, labels).ece).toBeLessThan(0.02);
    expect(expectedCalibrationError([1, 0, 0, 1, 0, 0], [2, 1]).ece).toBe(1);
  });
});

describe('temperature scaling', () => {
  it('p at T is softmax(log p / T): T = 1 is the identity, large T flattens, small T sharpens', () => {
    const p = [0.7, 0.2, 0.1];
    expect([...atTemperature(p, 3, 1)].map((v) => Number(v.toFixed(12)))).toEqual(p);
    const flat = atTemperature(p, 3, 100);
    expect(Math.max(...flat) - Math.min(...flat)).toBeLessThan(0.02);
    const z = p.map((v) => Math.log(v) / 0.5);
    const e = z.map((v) => Math.exp(v));
    const want = e.map((v) => v / e.reduce((a, b) => a + b, 0));
    [...atTemperature(p, 3, 0.5)].forEach((v, i) => expect(v).toBeCloseTo(want[i] as number, 12));
  });

  it('an overconfident model: the pooled validation NLL picks T > 1, which lowers the test ECE', () => {
    const rng = new Rng('overconfident');
    const hospital = (n: number) => {
      // true probability of the top class 0.6, but the model says ~0.95
      const probs: number[] = [];
      const labels: number[] = [];
      for (let i = 0; i < n; i++) {
        const top = Math.floor(rng.next() * 3);
        const row = [0.025, 0.025, 0.025];
        row[top] = 0.95;
        probs.push(...row);
        labels.push(rng.next() < 0.6 ? top : (top + 1 + Math.floor(rng.next() * 2)) % 3);
      }
      return { probs, labels };
    };
    const hospitals = [hospital(600), hospital(900)].map((set) => {
      const val = hospital(400);
      return { metrics: calibrationMetrics(set, val), numExamples: set.labels.length, set, val };
    });
    const picked = pickTemperature(hospitals)!;
    expect(picked.temperature).toBeGreaterThan(1);
    expect(picked.eceCalibrated).toBeLessThan(picked.ece / 2);
    // The choice is the argmin of the summed NLL over the grid.
    const j = TEMPERATURE_GRID.indexOf(picked.temperature as (typeof TEMPERATURE_GRID)[number]);
    const pooled = (k: number) => hospitals.reduce((s, h) => s + nllSum(atTemperature(h.val.probs, 3, TEMPERATURE_GRID[k] as number), h.val.labels), 0);
    for (let k = 0; k < TEMPERATURE_GRID.length; k++) expect(pooled(j)).toBeLessThanOrEqual(pooled(k));
    // Every reported metric is finite; empty bins report 0.
    for (const h of hospitals) for (const [name, v] of Object.entries(h.metrics)) expect(Number.isFinite(v), name).toBe(true);
    expect(hospitals[0]!.metrics[calibrationMetricNames.bin(0, 'count')]).toBe(0);
    expect(pickTemperature([{ metrics: { ece: 0.1 }, numExamples: 3 }])).toBeUndefined();
  });
});
