import { describe, expect, it } from 'vitest';
import { computeRdp, DEFAULT_ORDERS, epsilonFor, getPrivacySpent, logErfc, PrivacyParameterError, type Conversion } from './rdp';

const relErr = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);

describe('DEFAULT_ORDERS', () => {
  it('are Opacus’s: 1.1 … 10.9 by 0.1, then 12 … 63', () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 52);
    expect(DEFAULT_ORDERS.slice(0, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(DEFAULT_ORDERS[9]).toBe(2); // integer: takes the binomial expansion
    expect(DEFAULT_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_ORDERS.slice(99, 101)).toEqual([12, 13]);
    expect(DEFAULT_ORDERS.at(-1)).toBe(63);
    expect(Object.isFrozen(DEFAULT_ORDERS)).toBe(true);
  });
});

describe('epsilonFor reproduces published values', () => {
  it.each([
    // Opacus tests/accountants_test.py test_rdp_accountant: 90 epochs at q = 0.04.
    { name: 'Opacus accountant test', q: 0.04, sigma: 1.5, steps: 2250, delta: 1e-5, epsilon: 7.32911117143, alpha: 3.9 },
    { name: 'q 0.0025, σ 1.3, 6000 steps', q: 0.0025, sigma: 1.3, steps: 6000, delta: 1e-5, epsilon: 0.7242234026109595, alpha: 19 },
    { name: 'q 0.001, σ 1.0, 30000 steps, δ 1e-7', q: 0.001, sigma: 1.0, steps: 30000, delta: 1e-7, epsilon: 1.4154988495444842, alpha: 13 },
  ])('$name → ε $epsilon at α $alpha (1e-6 relative)', ({ q, sigma, steps, delta, epsilon, alpha }) => {
    const r = epsilonFor({ sampleRate: q, noiseMultiplier: sigma, steps, delta });
    expect(relErr(r.epsilon, epsilon)).toBeLessThan(1e-6);
    expect(r.alpha).toBe(alpha);
  });

  it('classic conversion: MNIST DP-SGD, batch 256 of 60000, σ 1.1, 60 epochs → ε 3.008 at α 8.8', () => {
    const r = epsilonFor({ sampleRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14062, delta: 1e-5, conversion: 'classic' });
    expect(r.epsilon.toFixed(3)).toBe('3.008');
    // Opacus's rdp.py functions with ε = rdp − log δ/(α − 1), in float64 (scipy log_ndtr).
    expect(relErr(r.epsilon, 3.008272082524604)).toBeLessThan(1e-6);
    expect(r.alpha).toBe(8.8);
    // TF Privacy's compute_dp_sgd_privacy counts ceil(60·60000/256) = 14063 steps and reports "3.01".
    expect(epsilonFor({ sampleRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14063, delta: 1e-5, conversion: 'classic' }).epsilon.toFixed(2)).toBe('3.01');
  });

  it('the Opacus conversion is tighter than the classic one', () => {
    const args = { sampleRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14062, delta: 1e-5 };
    expect(epsilonFor(args).epsilon).toBeLessThan(epsilonFor({ ...args, conversion: 'classic' }).epsilon);
  });
});

describe('computeRdp', () => {
  // TF Privacy rdp_accountant_test.py test_compute_rdp_scalar / _sequence (5 decimal places).
  it('TF Privacy test values', () => {
    expect(computeRdp(0.1, 2, 10, [5])[0]).toBeCloseTo(0.07737, 5);
    const rdp = computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Infinity]);
    [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307].forEach((v, i) => expect(rdp[i], `order ${i}`).toBeCloseTo(v, 5));
    expect(rdp[5]).toBe(Infinity);
  });

  // log A_α = (α − 1)·RDP of one step against mpmath at 80 digits: the exact binomial sum for integer α, quadrature of
  // ∫ N(z; 0, σ²)·((1 − q) + q·e^((2z − 1)/2σ²))^α dz for fractional α. Parameters from TF Privacy's test_compare_with_mp.
  it.each([
    { q: 1e-7, sigma: 0.1, alpha: 1.01, logA: 4.003412322526399e-8 },
    { q: 1e-6, sigma: 0.1, alpha: 256, logA: 3260463.2292971606 },
    { q: 1e-5, sigma: 0.1, alpha: 256.1, logA: 3263607.0397884212 },
    { q: 1e-6, sigma: 1, alpha: 27, logA: 8.769511304848498e-10 },
    { q: 1e-4, sigma: 1, alpha: 1.5, logA: 6.4426869538366495e-9 },
    { q: 1e-3, sigma: 1, alpha: 2, logA: 0.0000017182803522145153 },
    { q: 0.01, sigma: 10, alpha: 20, logA: 0.00019129699912842963 },
    { q: 0.1, sigma: 100, alpha: 20.5, logA: 0.00019991818458068295 },
    { q: 0.99, sigma: 0.1, alpha: 256, logA: 3263997.427114021 },
    { q: 0.999, sigma: 100, alpha: 256.1, logA: 3.260108037973113 },
    { q: 0.04, sigma: 1.5, alpha: 3.9, logA: 0.0053162863787931895 },
    { q: 0.0025, sigma: 1.3, alpha: 19, logA: 0.0009067907906753185 },
  ])('log A_α matches multi-precision: q $q, σ $sigma, α $alpha', ({ q, sigma, alpha, logA }) => {
    const got = (computeRdp(q, sigma, 1, [alpha])[0] as number) * (alpha - 1);
    expect(Math.abs(got - logA)).toBeLessThanOrEqual(1e-14 + 1e-6 * Math.abs(logA)); // TF Privacy's tolerance
  });

  it.each([0.5, 1, 1.1, 4])('q = 1 is the Gaussian mechanism: α·steps/(2σ²) (σ %s)', (sigma) => {
    const orders = [1.5, 2, 3.7, 32, 63, 256.5];
    expect(computeRdp(1, sigma, 7, orders)).toEqual(orders.map((a) => (a / (2 * sigma * sigma)) * 7));
  });

  it('q = 0 spends nothing; 0 steps spend nothing', () => {
    expect(computeRdp(0, 1, 100, DEFAULT_ORDERS).every((r) => r === 0)).toBe(true);
    expect(computeRdp(0.01, 1, 0, DEFAULT_ORDERS).every((r) => r === 0)).toBe(true);
  });

  it('composes linearly in steps', () => {
    const one = computeRdp(0.02, 0.9, 1);
    expect(computeRdp(0.02, 0.9, 1234)).toEqual(one.map((r) => r * 1234));
  });

  it.each([
    { q: 0.001, sigma: 0.8 },
    { q: 0.04, sigma: 1.5 },
    { q: 0.3, sigma: 3 },
  ])('is non-decreasing in α, and in q, and falls with σ (q $q, σ $sigma)', ({ q, sigma }) => {
    const rdp = computeRdp(q, sigma, 1);
    for (let i = 1; i < rdp.length; i++) expect(rdp[i] as number, `α ${DEFAULT_ORDERS[i]}`).toBeGreaterThanOrEqual((rdp[i - 1] as number) * (1 - 1e-9));
    const moreQ = computeRdp(Math.min(1, q * 1.5), sigma, 1);
    const moreSigma = computeRdp(q, sigma * 1.5, 1);
    rdp.forEach((r, i) => {
      expect(moreQ[i] as number).toBeGreaterThan(r);
      expect(moreSigma[i] as number).toBeLessThan(r);
    });
  });

  it('a NaN order gives NaN, an infinite order ∞', () => {
    const [nan, inf] = computeRdp(0.01, 1, 10, [Number.NaN, Infinity]);
    expect(nan).toBeNaN();
    expect(inf).toBe(Infinity);
  });

  it.each([
    { name: 'q < 0', call: () => computeRdp(-0.1, 1, 1, [2]), message: 'sampleRate must be in [0, 1] (got -0.1)' },
    { name: 'q > 1', call: () => computeRdp(1.5, 1, 1, [2]), message: 'sampleRate must be in [0, 1] (got 1.5)' },
    { name: 'q NaN', call: () => computeRdp(Number.NaN, 1, 1, [2]), message: 'sampleRate must be in [0, 1] (got NaN)' },
    { name: 'σ = 0', call: () => computeRdp(0.1, 0, 1, [2]), message: 'noiseMultiplier must be > 0 and finite (got 0)' },
    { name: 'σ < 0', call: () => computeRdp(0.1, -1, 1, [2]), message: 'noiseMultiplier must be > 0 and finite (got -1)' },
    { name: 'σ = ∞', call: () => computeRdp(0.1, Infinity, 1, [2]), message: 'noiseMultiplier must be > 0 and finite (got Infinity)' },
    { name: 'fractional steps', call: () => computeRdp(0.1, 1, 2.5, [2]), message: 'steps must be a non-negative integer (got 2.5)' },
    { name: 'negative steps', call: () => computeRdp(0.1, 1, -1, [2]), message: 'steps must be a non-negative integer (got -1)' },
    { name: 'no orders', call: () => computeRdp(0.1, 1, 1, []), message: 'orders must hold at least one order (got "[]")' },
    { name: 'order 1', call: () => computeRdp(0.1, 1, 1, [2, 1]), message: 'orders[1] must be > 1 (got 1)' },
    { name: 'order 0.5', call: () => computeRdp(0.1, 1, 1, [0.5]), message: 'orders[0] must be > 1 (got 0.5)' },
  ])('rejects $name', ({ call, message }) => {
    expect(call).toThrow(PrivacyParameterError);
    expect(call).toThrow(message);
  });
});

describe('getPrivacySpent', () => {
  it('applies the Opacus (Balle et al. 2020) and the classic conversion at each order, and takes the smallest', () => {
    const orders = [2, 4, 8];
    const rdp = [0.5, 1, 3];
    const delta = 1e-5;
    const opacus = orders.map((a, i) => (rdp[i] as number) - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a));
    const classic = orders.map((a, i) => (rdp[i] as number) - Math.log(delta) / (a - 1));
    for (const [conversion, eps] of [['opacus', opacus], ['classic', classic]] as const) {
      const min = Math.min(...eps);
      expect(getPrivacySpent({ orders, rdp, delta, conversion })).toEqual({ epsilon: min, bestAlpha: orders[eps.indexOf(min)] });
    }
    expect(getPrivacySpent({ orders, rdp, delta })).toEqual(getPrivacySpent({ orders, rdp, delta, conversion: 'opacus' }));
  });

  it('ignores NaN values and non-finite orders, as Opacus’s nanargmin does', () => {
    const delta = 1e-5;
    const clean = getPrivacySpent({ orders: [4, 8], rdp: [1, 3], delta });
    expect(getPrivacySpent({ orders: [Number.NaN, 4, 8, Infinity, -Infinity], rdp: [0, 1, 3, 0, 0], delta })).toEqual(clean);
    expect(getPrivacySpent({ orders: [2, 4, 8], rdp: [Number.NaN, 1, 3], delta })).toEqual(clean);
    expect(getPrivacySpent({ orders: [4, 8, Infinity], rdp: [1, 3, 0], delta, conversion: 'classic' })).toEqual(
      getPrivacySpent({ orders: [4, 8], rdp: [1, 3], delta, conversion: 'classic' }),
    );
  });

  it('gives ε = ∞ and α NaN when no order gives a number; ∞ RDP gives ∞', () => {
    expect(getPrivacySpent({ orders: [Number.NaN], rdp: [1], delta: 1e-5 })).toEqual({ epsilon: Infinity, bestAlpha: Number.NaN });
    expect(getPrivacySpent({ orders: [2, 3], rdp: [Infinity, Infinity], delta: 1e-5 })).toEqual({ epsilon: Infinity, bestAlpha: 2 });
  });

  it('floors ε at 0', () => {
    // 0 − (log 0.9 + log 2)/1 + log(1/2) = −1.28: only (0, δ)-DP, reported as ε = 0.
    expect(getPrivacySpent({ orders: [2], rdp: [0], delta: 0.9 })).toEqual({ epsilon: 0, bestAlpha: 2 });
  });

  it.each([
    { name: 'length mismatch', args: { orders: [2, 3], rdp: [1], delta: 1e-5 }, message: 'rdp must hold one value per order (2) (got "1 values")' },
    { name: 'no orders', args: { orders: [], rdp: [], delta: 1e-5 }, message: 'orders must hold at least one order' },
    { name: 'order ≤ 1', args: { orders: [0.9], rdp: [1], delta: 1e-5 }, message: 'orders[0] must be > 1 (got 0.9)' },
    { name: 'δ = 0', args: { orders: [2], rdp: [1], delta: 0 }, message: 'delta must be in (0, 1) (got 0)' },
    { name: 'δ = 1', args: { orders: [2], rdp: [1], delta: 1 }, message: 'delta must be in (0, 1) (got 1)' },
    { name: 'δ NaN', args: { orders: [2], rdp: [1], delta: Number.NaN }, message: 'delta must be in (0, 1) (got NaN)' },
    { name: 'negative RDP', args: { orders: [2, 3], rdp: [1, -0.5], delta: 1e-5 }, message: 'rdp[1] must be >= 0 (got -0.5)' },
    {
      name: 'unknown conversion',
      args: { orders: [2], rdp: [1], delta: 1e-5, conversion: 'balle' as Conversion },
      message: 'conversion must be one of "opacus", "classic" (got "balle")',
    },
  ])('rejects $name', ({ args, message }) => {
    expect(() => getPrivacySpent(args)).toThrow(PrivacyParameterError);
    expect(() => getPrivacySpent(args)).toThrow(message);
  });
});

describe('epsilonFor', () => {
  const base = { sampleRate: 0.01, noiseMultiplier: 1, steps: 1000, delta: 1e-5 };

  it('rises with steps and q, falls with σ and δ', () => {
    const e = epsilonFor(base).epsilon;
    expect(epsilonFor({ ...base, steps: 2000 }).epsilon).toBeGreaterThan(e);
    expect(epsilonFor({ ...base, sampleRate: 0.02 }).epsilon).toBeGreaterThan(e);
    expect(epsilonFor({ ...base, noiseMultiplier: 1.2 }).epsilon).toBeLessThan(e);
    expect(epsilonFor({ ...base, delta: 1e-3 }).epsilon).toBeLessThan(e);
  });

  it('takes custom orders', () => {
    const r = epsilonFor({ ...base, orders: [2, 4, 8, 16, 32] });
    expect([2, 4, 8, 16, 32]).toContain(r.alpha);
    expect(r.epsilon).toBeGreaterThanOrEqual(epsilonFor(base).epsilon); // the default grid includes these orders
  });

  it.each([
    { name: 'q = 0', over: { sampleRate: 0 }, message: 'sampleRate must be in (0, 1] (got 0)' },
    { name: 'q > 1', over: { sampleRate: 1.01 }, message: 'sampleRate must be in (0, 1] (got 1.01)' },
    { name: 'σ ≤ 0', over: { noiseMultiplier: 0 }, message: 'noiseMultiplier must be > 0 and finite (got 0)' },
    { name: 'steps 0', over: { steps: 0 }, message: 'steps must be a positive integer (got 0)' },
    { name: 'steps 1.5', over: { steps: 1.5 }, message: 'steps must be a positive integer (got 1.5)' },
    { name: 'δ ≥ 1', over: { delta: 2 }, message: 'delta must be in (0, 1) (got 2)' },
    { name: 'δ < 0', over: { delta: -1e-5 }, message: 'delta must be in (0, 1) (got -0.00001)' },
    { name: 'unknown conversion', over: { conversion: 'x' as Conversion }, message: 'conversion must be one of "opacus", "classic" (got "x")' },
  ])('rejects $name', ({ over, message }) => {
    expect(() => epsilonFor({ ...base, ...over })).toThrow(message);
  });
});

describe('logErfc', () => {
  // log erfc(x) by mpmath at 50 digits. Beyond x ≈ 26.5 erfc underflows in float64; the log must not.
  it.each([
    [-30, 0.6931471805599453],
    [-2, 0.6908055736465877],
    [-1, 0.6112323176780705],
    [-0.46875, 0.40052859235130783],
    [-0.3, 0.28414589714140825],
    [1e-8, -1.1283791734617103e-8],
    [0.1, -0.11930497373739561],
    [0.46875, -0.6784821856143961],
    [0.5, -0.7350111298370844],
    [1, -1.8496055099332482],
    [3.9, -17.1738712164354],
    [4, -17.987778312103007],
    [6, -38.37756117322339],
    [27, -732.8688865078974],
    [50, -2504.484587848451],
    [1000, -1000007.4801207219],
    [1e5, -10000000012.08529],
  ])('log erfc(%s) = %s to 1e-15', (x, want) => {
    expect(relErr(logErfc(x), want)).toBeLessThan(1e-15);
  });

  it('is exact at 0 and the limits', () => {
    expect(Math.abs(logErfc(0))).toBe(0);
    expect(logErfc(Infinity)).toBe(-Infinity);
    expect(logErfc(-Infinity)).toBe(Math.LN2);
    expect(logErfc(Number.NaN)).toBeNaN();
  });

  it('matches the asymptotic series where erfc underflows', () => {
    // log erfc(x) ≈ −x² − log x − ½log π + log(Σ (−1)ⁿ(2n − 1)!!/(2x²)ⁿ), n ≤ 5: truncation below 1e-18 here
    for (const x of [30, 40, 80]) {
      const y = 1 / (2 * x * x);
      const series = -x * x - Math.log(x) - 0.5 * Math.log(Math.PI) + Math.log1p(-y + 3 * y ** 2 - 15 * y ** 3 + 105 * y ** 4 - 945 * y ** 5);
      expect(relErr(logErfc(x), series)).toBeLessThan(1e-15);
    }
  });
});
