import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../protocol/messages';
import { boundUpdateNorms, distance, median, refuseEvaluateMetrics, refuseSecureMean, WeightBounds } from './influence';
import { adaptiveDeadlineMs, stageStragglers, StragglerPolicy } from './stragglers';
import type { FitResult } from './strategy';

const fit = (hospitalId: string, weights: number[]): FitResult => ({ hospitalId, weights: Float32Array.from(weights), numSamples: 10, metrics: {} });

describe('WeightBounds: declared once at sign-in, frozen for the run, capped by the run', () => {
  it.each([
    { declared: [50], cap: 100, bound: 50 },
    { declared: [500], cap: 100, bound: 100 },
    { declared: [], cap: 100, bound: 100 },
    { declared: [50, 5000], cap: 100, bound: 50 }, // a reconnect declaring more is ignored
    { declared: [0, 40], cap: 100, bound: 40 }, // 0 is no declaration
  ])('declarations $declared with cap $cap → bound $bound', ({ declared, cap, bound }) => {
    const b = new WeightBounds(cap);
    for (const d of declared) b.declare('H1', d);
    expect(b.of('H1')).toBe(bound);
    expect(b.refuse('H1', 'num_samples', bound)).toBeUndefined();
    expect(b.refuse('H1', 'num_samples', bound + 1)).toMatch(new RegExp(`num_samples: ${bound + 1} is above H1's bound ${bound}`));
  });
});

describe('boundUpdateNorms', () => {
  const global = Float32Array.from([0, 0]);
  it('scales an update far above the median norm down to factor × median, keeps the others', () => {
    const { results, clipped } = boundUpdateNorms(global, [fit('H1', [1, 0]), fit('H2', [0, 2]), fit('H3', [3.4e38, -3.4e38])], 3);
    expect(clipped).toEqual([expect.objectContaining({ hospitalId: 'H3', bound: 6 })]);
    expect(distance(results[2]!.weights, global)).toBeCloseTo(6, 4);
    expect(results[0]!.weights).toEqual(Float32Array.from([1, 0]));
  });
  it.each([0, 3])('leaves fewer than three results (or factor %s = off) alone', (factor) => {
    const rs = factor === 0 ? [fit('H1', [1, 0]), fit('H2', [0, 1]), fit('H3', [100, 0])] : [fit('H1', [1, 0]), fit('H2', [100, 0])];
    expect(boundUpdateNorms(global, rs, factor).clipped).toEqual([]);
  });
  it('median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe('secure means and evaluation metrics', () => {
  it.each([
    { mean: [0.1, -0.5], ok: true },
    { mean: [0.1, Number.NaN], ok: false },
    { mean: [42, 0], ok: false },
    { mean: [0.5000001, 0], ok: true }, // within the quantisation tolerance
  ])('mean $mean within ±0.5 → $ok', ({ mean, ok }) => {
    expect(refuseSecureMean(mean, 0.5, 1e-6) === undefined).toBe(ok);
  });
  it.each<{ metrics: Record<string, number>; ok: boolean }>([
    { metrics: { auc_roc: 0.9, val_loss: 0.3 }, ok: true },
    { metrics: { auc_roc: 1.5 }, ok: false },
    { metrics: { test_accuracy: -0.1 }, ok: false },
    { metrics: { val_loss: -1 }, ok: false },
  ])('metrics $metrics → $ok', ({ metrics, ok }) => {
    expect(refuseEvaluateMetrics(metrics) === undefined).toBe(ok);
  });
});

describe('stragglers', () => {
  it('adaptive deadline: none before half answered, then max(min, factor × median)', () => {
    const rule = { factor: 4, minMs: 100 };
    expect(adaptiveDeadlineMs([10], 3, rule)).toBeUndefined();
    expect(adaptiveDeadlineMs([10, 20], 3, rule)).toBe(100);
    expect(adaptiveDeadlineMs([100, 200], 3, rule)).toBe(600);
    expect(adaptiveDeadlineMs([100, 200], 3, { factor: 0, minMs: 0 })).toBeUndefined();
  });
  it('a strike: a timeout, or last and slower than twice the median', () => {
    expect(stageStragglers({ dropped: [{ hospitalId: 'H3', reason: 'timeout' }] }, 0)).toEqual(['H3']);
    expect(stageStragglers({ dropped: [], elapsedMs: new Map([['H1', 10], ['H2', 12], ['H3', 50]]) }, 20)).toEqual(['H3']);
    expect(stageStragglers({ dropped: [], elapsedMs: new Map([['H1', 10], ['H2', 12], ['H3', 50]]) }, 100)).toEqual([]); // below the floor: noise
    expect(stageStragglers({ dropped: [], elapsedMs: new Map([['H1', 10], ['H2', 12], ['H3', 15]]) }, 0)).toEqual([]);
  });
  it('excludes after `strikes` consecutive rounds, never below the hospitals a run needs', () => {
    const p = new StragglerPolicy(2, true);
    const all = ['H1', 'H2', 'H3', 'H4'];
    expect(p.endRound(all, new Set(['H4']), all, 3)).toEqual([]);
    expect(p.endRound(all, new Set(), all, 3)).toEqual([]); // the streak resets
    expect(p.endRound(all, new Set(['H4']), all, 3)).toEqual([]);
    expect(p.endRound(all, new Set(['H4']), all, 3)).toEqual([{ hospitalId: 'H4', strikes: 2 }]);
    const q = new StragglerPolicy(1, true);
    expect(q.endRound(['H1', 'H2', 'H3'], new Set(['H3']), ['H1', 'H2', 'H3'], 3)).toEqual([]);
  });
});

describe('run config: robust aggregation settable, a trimmed mean that trims nothing refused', () => {
  it.each([
    { cfg: { strategy: 'trimmed', min_fit_clients: 3 }, error: /trims nothing .*trimmed_beta ≥ 0.334/ },
    { cfg: { strategy: 'trimmed', trimmed_beta: 0.34, min_fit_clients: 2, min_available_clients: 3 }, error: undefined },
    { cfg: { strategy: 'trimmed', trimmed_beta: 0.2, min_fit_clients: 4, min_available_clients: 4 }, error: /trims nothing/ },
    { cfg: { strategy: 'trimmed', trimmed_beta: 0.34, min_fit_clients: 3 }, error: undefined },
    { cfg: { strategy: 'trimmed', min_fit_clients: 5, min_available_clients: 5 }, error: undefined },
    { cfg: { strategy: 'krum', krum_f: 1, min_fit_clients: 4 }, error: /min_fit_clients ≥ 5/ },
    { cfg: { strategy: 'krum', krum_f: 1, min_fit_clients: 5 }, error: undefined },
  ])('$cfg', ({ cfg, error }) => {
    const res = runConfigSchema.safeParse(cfg);
    if (error) expect(res.error?.issues[0]?.message).toMatch(error);
    else expect(res.success, res.error?.message).toBe(true);
  });
});
