import { describe, expect, it } from 'vitest';
import { Rng } from '../util';
import { createStrategy } from './strategies';
import { NotEnoughClientsError, resolveStrategyOptions, sampleClients, sampleSize } from './strategy';

const HOSPITALS = ['H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'H7', 'H8', 'H9', 'H10'];

/** A random() that replays `values` (then fails the test if asked for more). */
function replay(...values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('random() called more often than expected');
    return values[i++] as number;
  };
}

describe('sampleSize = min(n, max(minimum, ⌈fraction·n⌉))', () => {
  it.each([
    { n: 10, fraction: 1, minimum: 3, size: 10 },
    { n: 10, fraction: 0.5, minimum: 3, size: 5 },
    { n: 10, fraction: 0.1, minimum: 3, size: 3 },
    { n: 10, fraction: 0.25, minimum: 0, size: 3 }, // ⌈2.5⌉
    { n: 10, fraction: 0.7, minimum: 0, size: 7 },
    { n: 100, fraction: 0.55, minimum: 0, size: 55 }, // 0.55·100 = 55.00000000000001 in doubles
    { n: 10, fraction: 0.05, minimum: 1, size: 1 },
    { n: 3, fraction: 1, minimum: 3, size: 3 },
    { n: 2, fraction: 0.5, minimum: 3, size: 2 },
  ])('n $n fraction $fraction minimum $minimum → $size', ({ n, fraction, minimum, size }) => {
    expect(sampleSize(n, fraction, minimum)).toBe(size);
  });
});

describe('sampleClients (partial Fisher–Yates over the sorted ids)', () => {
  it.each([
    // pool H1..H5; i=0: j = ⌊0.5·5⌋ = 2 → [H3,H2,H1,H4,H5]; i=1: j = 1 + ⌊0·4⌋ = 1 → {H3, H2}
    { randoms: [0.5, 0], count: 2, expected: ['H2', 'H3'] },
    // i=0: j = ⌊0.99·5⌋ = 4 → [H5,H2,H3,H4,H1]; i=1: j = 1 + ⌊0.99·4⌋ = 4 → [H5,H1,…] → {H5, H1}
    { randoms: [0.99, 0.99], count: 2, expected: ['H1', 'H5'] },
    // i=0: j=0 (H1); i=1: j=1 (H2); i=2: j = 2 + ⌊0.5·3⌋ = 3 (H4)
    { randoms: [0, 0, 0.5], count: 3, expected: ['H1', 'H2', 'H4'] },
    { randoms: [], count: 5, expected: ['H1', 'H2', 'H3', 'H4', 'H5'] }, // all: random() not called
  ])('randoms $randoms, count $count → $expected', ({ randoms, count, expected }) => {
    expect(sampleClients(['H5', 'H3', 'H1', 'H4', 'H2'], count, replay(...randoms))).toEqual(expected);
  });

  it('depends on the set of ids, not their order or repeats', () => {
    const rngA = new Rng('sample');
    const a = sampleClients(HOSPITALS, 4, () => rngA.next());
    const rngB = new Rng('sample');
    const b = sampleClients([...HOSPITALS].reverse().concat(['H1', 'H1']), 4, () => rngB.next());
    expect(a).toEqual(b);
    expect(a).toHaveLength(4);
    expect(new Set(a).size).toBe(4);
  });

  it('is roughly uniform', () => {
    const rng = new Rng('uniform');
    const counts = new Map<string, number>();
    for (let t = 0; t < 4000; t++) for (const h of sampleClients(['A', 'B', 'C', 'D'], 1, () => rng.next())) counts.set(h, (counts.get(h) ?? 0) + 1);
    for (const h of ['A', 'B', 'C', 'D']) expect(counts.get(h)).toBeGreaterThan(900); // expect 1000 each, sd ≈ 27
  });

  it.each([1, -0.1, NaN])('rejects random() returning %s', (r) => {
    expect(() => sampleClients(['A', 'B'], 1, () => r)).toThrow(/random\(\) must return a number in \[0, 1\)/);
  });
});

describe('Strategy.sampleFit / sampleEvaluate', () => {
  it.each([
    { options: {}, available: 3, fit: 3, evaluate: 3 },
    { options: {}, available: 10, fit: 10, evaluate: 10 },
    { options: { fractionFit: 0.5, fractionEvaluate: 0.2 }, available: 10, fit: 5, evaluate: 3 },
    { options: { fractionFit: 0.1, minFitClients: 2, minAvailableClients: 2, fractionEvaluate: 0.1, minEvaluateClients: 1 }, available: 10, fit: 2, evaluate: 1 },
    { options: { fractionEvaluate: 0 }, available: 4, fit: 4, evaluate: 0 }, // evaluation off, as Flower
  ])('$options with $available available → fit $fit, evaluate $evaluate', ({ options, available, fit, evaluate }) => {
    const s = createStrategy('fedavg', options);
    const ids = HOSPITALS.slice(0, available);
    const rng = new Rng('stage');
    const chosen = s.sampleFit(ids, () => rng.next());
    expect(chosen).toHaveLength(fit);
    expect(chosen.every((h) => ids.includes(h))).toBe(true);
    expect(s.sampleEvaluate(ids, () => rng.next())).toHaveLength(evaluate);
  });

  it('is deterministic given the random function', () => {
    const s = createStrategy('fedadam', { fractionFit: 0.3 });
    const r1 = new Rng(42);
    const r2 = new Rng(42);
    const first = s.sampleFit(HOSPITALS, () => r1.next());
    expect(s.sampleFit([...HOSPITALS].reverse(), () => r2.next())).toEqual(first);
    expect(first).toHaveLength(3);
  });

  it.each([
    { options: {}, available: ['H1', 'H2'], stage: 'fit' as const, message: 'fedavg: 2 client(s) available for fit, minAvailableClients is 3', required: 3 },
    { options: {}, available: ['H1', 'H1', 'H2'], stage: 'fit' as const, message: 'fedavg: 2 client(s) available for fit, minAvailableClients is 3', required: 3 },
    { options: { minFitClients: 4 }, available: ['H1', 'H2', 'H3'], stage: 'fit' as const, message: 'fedavg: 3 client(s) available for fit, minFitClients is 4', required: 4 },
    { options: { minEvaluateClients: 5 }, available: ['H1', 'H2', 'H3'], stage: 'evaluate' as const, message: 'fedavg: 3 client(s) available for evaluate, minEvaluateClients is 5', required: 5 },
    { options: {}, available: [], stage: 'evaluate' as const, message: 'fedavg: 0 client(s) available for evaluate, minAvailableClients is 3', required: 3 },
  ])('throws NotEnoughClientsError: $message', ({ options, available, stage, message, required }) => {
    const s = createStrategy('fedavg', options);
    const call = () => (stage === 'fit' ? s.sampleFit(available, Math.random) : s.sampleEvaluate(available, Math.random));
    expect(call).toThrow(NotEnoughClientsError);
    expect(call).toThrow(message);
    try {
      call();
    } catch (e) {
      expect((e as NotEnoughClientsError).required).toBe(required);
      expect((e as NotEnoughClientsError).available).toBe(new Set(available).size);
    }
  });
});

describe('resolveStrategyOptions', () => {
  it('fills the seed spec 3.1 defaults and freezes', () => {
    const o = resolveStrategyOptions({ minFitClients: 2 });
    expect(o).toEqual({ fractionFit: 1, fractionEvaluate: 1, minFitClients: 2, minEvaluateClients: 3, minAvailableClients: 3 });
    expect(Object.isFrozen(o)).toBe(true);
  });
});
