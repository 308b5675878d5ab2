import { describe, expect, it } from 'vitest';
import { binomialTail, epsilonLowerBound, guessMembership } from './audit';

describe('one-run audit statistics (Steinke, Nasr & Jagielski 2023)', () => {
  it('binomial tails match exact values', () => {
    // P[Bin(10, ½) ≥ 8] = (45 + 10 + 1) / 1024
    expect(binomialTail(10, 0.5, 8)).toBeCloseTo(56 / 1024, 14);
    // P[Bin(3, 0.2) ≥ 2] = 3·0.04·0.8 + 0.008
    expect(binomialTail(3, 0.2, 2)).toBeCloseTo(0.104, 14);
    expect(binomialTail(200, 0.5, 0)).toBe(1);
    expect(binomialTail(200, 0.5, 201)).toBe(0);
    // a far tail without underflow to garbage: P[Bin(1000, ½) ≥ 1000] = 2^-1000
    expect(Math.log2(binomialTail(1000, 0.5, 1000))).toBeCloseTo(-1000, 6);
    expect(() => binomialTail(10, 1.5, 3)).toThrow(/p must be in \[0, 1\]/);
  });

  it('the lower bound for r guesses all correct is log(p/(1−p)) with p^r = 0.05 (closed form)', () => {
    for (const r of [20, 100, 500]) {
      const p = 0.05 ** (1 / r);
      expect(epsilonLowerBound(r, r)).toBeCloseTo(Math.log(p / (1 - p)), 8);
    }
  });

  it('is 0 when chance explains the guesses, grows with the correct ones, and its tail sits at 5 %', () => {
    expect(epsilonLowerBound(200, 100)).toBe(0);
    expect(epsilonLowerBound(200, 110)).toBe(0); // P[Bin(200, ½) ≥ 110] ≈ 0.09 > 0.05
    const a = epsilonLowerBound(200, 130);
    const b = epsilonLowerBound(200, 150);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a);
    expect(binomialTail(200, 1 / (1 + Math.exp(-a)), 130)).toBeCloseTo(0.05, 6);
    expect(epsilonLowerBound(0, 0)).toBe(0);
  });

  it('guesses the top k in and the bottom k out', () => {
    const scores = [0.9, 0.1, 0.8, 0.2, 0.5, 0.4];
    const inc = [true, false, false, false, true, true];
    // top 2: 0.9 (in ✓), 0.8 (out ✗); bottom 2: 0.1 (out ✓), 0.2 (out ✓)
    expect(guessMembership(scores, inc, 2)).toEqual({ guesses: 4, correct: 3 });
    expect(() => guessMembership(scores, inc, 4)).toThrow(/k must be an integer in \[0, m\/2\]/);
    expect(() => guessMembership(scores, [true], 1)).toThrow(/differ in length/);
  });
});
