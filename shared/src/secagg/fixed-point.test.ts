import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { DEFAULT_FRACTION_BITS, INTEGER_BITS, decodeFixedPointSum, encodeFixedPoint, fixedPointErrorBound, fixedPointFor, fixedPointRange } from './fixed-point';
import { addInto } from './mask';
import { QuantizationError } from './quantize';

/** Word-wise sum mod 2^32 of the encodings, as unmasking yields it. */
function sumOf(encodings: readonly Uint32Array[]): Uint32Array {
  const sum = new Uint32Array((encodings[0] as Uint32Array).length);
  for (const e of encodings) addInto(sum, e);
  return sum;
}

describe('fixedPointFor', () => {
  it.each([2, 3, 5, 100, 1000])('%d clients: limbs cannot wrap, and cover |x| < 2^62 at the default resolution', (clients) => {
    const cfg = fixedPointFor(clients);
    expect(clients * (2 ** cfg.bits - 1)).toBeLessThan(2 ** 32);
    expect(cfg.fraction_bits).toBe(DEFAULT_FRACTION_BITS);
    expect(fixedPointRange(cfg)).toBeGreaterThanOrEqual(2 ** INTEGER_BITS);
    expect(cfg.limbs * cfg.bits - 1 - cfg.fraction_bits - (cfg.bits - 1)).toBeLessThanOrEqual(INTEGER_BITS); // no limb more than needed
  });

  it('rejects fraction bits outside [0, 52]', () => {
    expect(() => fixedPointFor(3, 53)).toThrow(/fraction bits must be an integer in \[0, 52\], got 53/);
    expect(() => fixedPointFor(3, -1)).toThrow(QuantizationError);
  });
});

describe('encodeFixedPoint / decodeFixedPointSum', () => {
  it('sums values spanning 18 orders of magnitude, of both signs, exactly up to the rounding bound', () => {
    const rng = new Rng('fixed-point/sum');
    const clients = 5;
    const cfg = fixedPointFor(clients);
    const length = 400;
    const inputs = Array.from({ length: clients }, () =>
      Float64Array.from({ length }, (_, i) => (rng.next() - 0.5) * 10 ** ((i % 19) - 6)), // 1e-6 … 1e12
    );
    const decoded = decodeFixedPointSum(sumOf(inputs.map((x) => encodeFixedPoint(x, cfg))), clients, cfg);
    for (let i = 0; i < length; i++) {
      let exact = 0;
      let magnitude = 0;
      for (const x of inputs) {
        exact += x[i] as number;
        magnitude += Math.abs(x[i] as number);
      }
      // The float64 reference sum is itself off by up to n·ε·Σ|x|; the decoded sum is exact but for the bound.
      expect(Math.abs((decoded[i] as number) - exact)).toBeLessThanOrEqual(fixedPointErrorBound(cfg, clients, exact) + clients * Number.EPSILON * magnitude);
    }
  });

  it('is exact for integers and dyadic fractions (counts, records)', () => {
    const cfg = fixedPointFor(3);
    const a = [0, 1, 30_000, -7, 2 ** 40, 0.5, 123.25];
    const b = [5, 0, 12_345, 7, 2 ** 40, 0.25, -0.125];
    const c = [1, 1, 1, 1, 1, 1, 1];
    const decoded = decodeFixedPointSum(sumOf([a, b, c].map((x) => encodeFixedPoint(x, cfg))), 3, cfg);
    expect(Array.from(decoded)).toEqual(a.map((v, i) => v + (b[i] as number) + (c[i] as number)));
  });

  it('carries the largest representable magnitudes of every client without a limb wrapping', () => {
    const clients = 4;
    const cfg = fixedPointFor(clients);
    const big = fixedPointRange(cfg) * (1 - 2 ** -40); // just inside the range (exact in float64)
    const inputs = [[big, -big], [big, -big], [big, -big], [big, -big]];
    const decoded = decodeFixedPointSum(sumOf(inputs.map((x) => encodeFixedPoint(x, cfg))), clients, cfg);
    expect(Array.from(decoded)).toEqual([4 * big, -4 * big]);
  });

  it('names a non-finite or out-of-range value', () => {
    const cfg = fixedPointFor(3);
    expect(() => encodeFixedPoint([1, Number.NaN], cfg)).toThrow(/value 1 is NaN: only finite values can be encoded/);
    expect(() => encodeFixedPoint([fixedPointRange(cfg)], cfg)).toThrow(/value 0 is .* beyond the fixed-point range/);
  });

  it('refuses a sum with a mask left in, and a layout that can wrap', () => {
    const cfg = fixedPointFor(3);
    const sum = sumOf([encodeFixedPoint([1, 2], cfg), encodeFixedPoint([3, 4], cfg)]);
    sum[1] = 0xffff_ffff;
    expect(() => decodeFixedPointSum(sum, 2, cfg)).toThrow(/value 0, limb 1 sums to 4294967295, above 2 × \(2\^30 − 1\)/);
    expect(() => decodeFixedPointSum(new Uint32Array(cfg.limbs), 5, cfg)).toThrow(/5 summands of 30-bit limbs can wrap/);
    expect(() => decodeFixedPointSum(new Uint32Array(cfg.limbs + 1), 2, cfg)).toThrow(`not a whole number of ${cfg.limbs}-limb values`);
  });
});
