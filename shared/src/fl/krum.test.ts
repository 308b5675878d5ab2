import { describe, expect, it } from 'vitest';
import { defaultByzantineCount } from './krum';
import type { Krum } from './krum';
import { createStrategy } from './strategies';
import type { FitResult } from './strategy';

const fit = (hospitalId: string, weights: number[], numSamples: number): FitResult => ({ hospitalId, weights: Float32Array.from(weights), numSamples, metrics: {} });

// Four honest hospitals near [1, 1, 1, 1] and an attacker far away claiming a huge dataset.
// Squared distances: H1–H2 .01, H1–H3 .01, H1–H4 .04, H2–H3 .02, H2–H4 .05, H3–H4 .05.
// n = 5 → f = ⌊(5 − 3)/2⌋ = 1 → 2 nearest: H1 .02, H2 .03, H3 .03, H4 .09, attacker ≈ 4·10⁴.
const GLOBAL = Float32Array.from([1, 1, 1, 1]);
const RESULTS = [
  fit('H1', [1, 1, 1, 1], 100),
  fit('H2', [1.1, 1, 1, 1], 100),
  fit('H3', [1, 0.9, 1, 1], 200),
  fit('H4', [1, 1, 1.2, 1], 100),
  fit('EVIL', [100, -100, 100, -100], 1_000_000),
];

describe('Krum rejects an outlier', () => {
  it.each([
    { params: {}, selected: ['H1'], expected: [1, 1, 1, 1] },
    // weighted by numSamples 100, 100, 200: (100 + 110 + 200)/400, (100 + 100 + 180)/400
    { params: { numClientsToKeep: 3 }, selected: ['H1', 'H2', 'H3'], expected: [1.025, 0.95, 1, 1] },
    { params: { numClientsToKeep: 4, numMaliciousClients: 1 }, selected: ['H1', 'H2', 'H3', 'H4'], expected: [(100 + 110 + 200 + 100) / 500, (100 + 100 + 180 + 100) / 500, (100 + 100 + 200 + 120) / 500, 1] },
  ])('$params keeps $selected', ({ params, selected, expected }) => {
    const s = createStrategy('krum', params) as Krum;
    const out = s.aggregateFit(1, GLOBAL, RESULTS).weights;
    expect(s.lastSelected).toEqual(selected);
    expected.forEach((e, i) => expect(out[i]).toBeCloseTo(e, 6));
  });

  it('where FedAvg is dragged away by it', () => {
    const out = createStrategy('fedavg').aggregateFit(1, GLOBAL, RESULTS).weights;
    expect(out[0]).toBeGreaterThan(99);
  });

  it.each([
    { n: 1, f: 0 },
    { n: 3, f: 0 },
    { n: 4, f: 0 },
    { n: 5, f: 1 },
    { n: 7, f: 2 },
    { n: 10, f: 3 },
  ])('default f for $n clients is $f', ({ n, f }) => {
    expect(defaultByzantineCount(n)).toBe(f);
  });
});
