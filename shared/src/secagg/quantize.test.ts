import { describe, expect, it } from 'vitest';
import { seededRandom } from '../util/csprng';
import { Rng } from '../util/random';
import { addInto } from './mask';
import { QuantizationError, dequantize, dequantizeSum, maxBits, quantizationFor, quantizationStep, quantize, sumErrorBound, type QuantizationConfig } from './quantize';

const clip = (v: number, r: number) => Math.min(r, Math.max(-r, v));

describe('maxBits', () => {
  it.each([
    { clients: 1, bits: 32 },
    { clients: 2, bits: 31 },
    { clients: 3, bits: 30 },
    { clients: 4, bits: 30 },
    { clients: 5, bits: 29 },
    { clients: 100, bits: 25 },
    { clients: 128, bits: 25 },
    { clients: 129, bits: 24 },
    { clients: 2 ** 31, bits: 1 },
  ])('$clients clients → $bits bits, and n·(2^b − 1) < 2^32', ({ clients, bits }) => {
    expect(maxBits(clients)).toBe(bits);
    expect(clients * (2 ** bits - 1)).toBeLessThan(2 ** 32);
    if (bits < 32) expect(clients * (2 ** (bits + 1) - 1)).toBeGreaterThanOrEqual(2 ** 32); // and it is the most
  });

  it.each([0, 1.5, 2 ** 31 + 1])('rejects %d clients', (clients) => {
    expect(() => maxBits(clients)).toThrow(/number of clients must be an integer/);
  });
});

describe('quantizationFor', () => {
  it.each([
    { name: 'too many bits for the clients', run: () => quantizationFor(1, 5, 30), error: /a sum of 5 values of 30 bits can wrap mod 2\^32: use at most 29 bits/ },
    { name: 'R = 0', run: () => quantizationFor(0, 5), error: /clipping range R must be a finite number > 0, got 0/ },
    { name: 'R = ∞', run: () => quantizationFor(Infinity, 5), error: /clipping range R/ },
    { name: '0 bits', run: () => quantizationFor(1, 5, 0), error: /bits must be an integer in \[1, 32\], got 0/ },
  ])('rejects $name', ({ run, error }) => {
    expect(run).toThrow(QuantizationError);
    expect(run).toThrow(error);
  });
});

describe('quantize', () => {
  it('maps −R, 0-ish and R to the ends and middle of the grid, exactly on grid points', () => {
    const cfg: QuantizationConfig = { clip: 2, bits: 3 }; // Δ = 4/7
    const step = quantizationStep(cfg);
    expect(step).toBeCloseTo(4 / 7, 15);
    const grid = Float64Array.from({ length: 8 }, (_, k) => -2 + k * step);
    expect(Array.from(quantize(grid, cfg))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(quantize(Float32Array.of(-100, 100, -2, 2), cfg))).toEqual([0, 7, 0, 7]); // clipped
  });

  it.each([NaN, Infinity, -Infinity])('rejects %d', (bad) => {
    expect(() => quantize(Float32Array.of(0, bad), { clip: 1, bits: 8 })).toThrow(/value 1 is .*: only finite values can be quantised/);
  });

  it.each([
    { bits: 2, clip: 1 },
    { bits: 8, clip: 0.5 },
    { bits: 29, clip: 3 },
    { bits: 32, clip: 1e4 },
  ])('one client: |dequantize(q) − clip(x)| < Δ (bits $bits, R $clip)', ({ bits, clip: r }) => {
    const cfg = { clip: r, bits };
    const rng = new Rng(`one/${bits}`);
    const x = Float32Array.from({ length: 10_000 }, () => (rng.next() - 0.5) * 3 * r);
    const back = dequantize(quantize(x, cfg, seededRandom(bits)), cfg);
    const step = quantizationStep(cfg);
    for (let i = 0; i < x.length; i++) expect(Math.abs(back[i]! - clip(x[i]!, r))).toBeLessThan(step);
  });

  it.each([
    { clients: 5, bits: 4 },
    { clients: 5, bits: 29 },
    { clients: 30, bits: 10 },
    { clients: 100, bits: 25 },
  ])('sum of $clients clients ($bits bits): |dequantizeSum − Σ clip(x_i)| < n·Δ, and the sum never wraps', ({ clients, bits }) => {
    const cfg = quantizationFor(1.5, clients, bits);
    const length = 2_000;
    const rng = new Rng(`sum/${clients}/${bits}`);
    const sum = new Uint32Array(length);
    const exact = new Float64Array(length);
    for (let c = 0; c < clients; c++) {
      // Half the coordinates sit at the clipping edge, where the grid is fullest: the worst case for wrapping.
      const x = Float32Array.from({ length }, (_, i) => (i % 2 === 0 ? 5 : (rng.next() - 0.5) * 4));
      addInto(sum, quantize(x, cfg, seededRandom(`${clients}/${bits}/${c}`)));
      for (let i = 0; i < length; i++) exact[i]! += clip(x[i]!, cfg.clip);
    }
    const back = dequantizeSum(sum, clients, cfg);
    const bound = sumErrorBound(cfg, clients);
    expect(bound).toBeCloseTo(clients * quantizationStep(cfg), 12);
    let worst = 0;
    for (let i = 0; i < length; i++) worst = Math.max(worst, Math.abs(back[i]! - exact[i]!));
    expect(worst).toBeLessThan(bound);
    expect(back[0]).toBeCloseTo(clients * cfg.clip, 6); // n·R exactly recovered at the edge (no wrap)
  });

  it.each([
    { name: 'the CSPRNG', random: undefined },
    { name: 'a seeded source', random: seededRandom('unbiased') },
  ])('is unbiased: the mean of many stochastic roundings ≈ the value ($name)', ({ random }) => {
    const cfg: QuantizationConfig = { clip: 1, bits: 4 }; // coarse grid: Δ = 2/15, rounding error is visible
    const step = quantizationStep(cfg);
    const n = 200_000;
    for (const v of [0.3 * step - 1, 0.123, -0.777, 0.4 * step]) {
      const q = quantize(new Float32Array(n).fill(v), cfg, random);
      const back = dequantize(q, cfg);
      const mean = back.reduce((a, b) => a + b, 0) / n;
      // A rounding is one of two neighbours Δ apart: σ ≤ Δ/2, so the mean is within 5σ/√n of the value.
      const v32 = Math.fround(v);
      expect(Math.abs(mean - v32), `value ${v}`).toBeLessThan((5 * step) / 2 / Math.sqrt(n));
      // Deterministic rounding (to nearest) would be biased by up to Δ/2; here both neighbours occur.
      expect(new Set(q).size).toBe(2);
    }
  });

  it('dequantizeSum refuses a client count whose sum could have wrapped, and a value no sum can reach', () => {
    expect(() => dequantizeSum(new Uint32Array(1), 5, { clip: 1, bits: 30 })).toThrow(/can wrap/);
    expect(() => dequantizeSum(Uint32Array.of(0, 0xffff_ffff), 2, { clip: 1, bits: 8 })).toThrow(/coordinate 1 is 4294967295, above 2 × \(2\^8 − 1\)/);
  });
});
