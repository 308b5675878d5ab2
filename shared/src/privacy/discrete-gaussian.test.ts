import { describe, expect, it } from 'vitest';
import { seededRandom, type RandomSource } from '../util/csprng';

/** n standard normal draws by Box–Muller: the floating-point Gaussian DP-SGD used before, kept here only as a control. */
function gaussians(n: number, source: RandomSource): Float32Array {
  const out = new Float32Array(n);
  const u = new Float64Array(2 * Math.ceil(n / 2));
  source.uniforms(u);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u[i] as number));
    out[i] = r * Math.cos(2 * Math.PI * (u[i + 1] as number));
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * (u[i + 1] as number));
  }
  return out;
}
import {
  MAX_SIGMA2,
  UniformIntegers,
  bernoulliExp,
  cryptoIntegers,
  discreteGaussianPmf,
  discreteGaussianVariance,
  discreteGaussians,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianBig,
  sampleDiscreteLaplace,
  seededIntegers,
  type Rational,
} from './discrete-gaussian';
import { PrivacyParameterError } from './rdp';

// ---- χ² machinery (floating point is fine here: it judges the sampler, it does not sample) -------

/** ln Γ(z), Lanczos (g = 7, 9 terms), z > 0. */
function logGamma(z: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularised upper incomplete gamma Q(a, x): series below a + 1, Lentz's continued fraction above. */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return 1 - sum * Math.exp(lead);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}

/** P[χ²_dof ≥ stat]. */
const chi2Sf = (stat: number, dof: number) => gammaQ(dof / 2, stat / 2);

/**
 * Pearson's χ² of integer samples against a symmetric pmf: one bin per x in (−L, L), where L is the
 * smallest |x| whose expected count falls below 5; the tails x ≤ −L and x ≥ L are the edge bins.
 */
function chiSquare(samples: Int32Array, pmf: (x: number) => number): { stat: number; dof: number; p: number } {
  const n = samples.length;
  let L = 1;
  while (n * pmf(L) >= 5) L++;
  let tail = 0;
  for (let x = L; ; x++) {
    const px = pmf(x);
    tail += px;
    if (px < 1e-18 * tail || px === 0) break;
  }
  const counts = new Float64Array(2 * L + 1); // index x + L for x ∈ [−L, L]
  for (const s of samples) counts[Math.max(-L, Math.min(L, s)) + L]! += 1;
  let stat = 0;
  for (let x = -L; x <= L; x++) {
    const expected = n * (Math.abs(x) === L ? tail : pmf(x));
    stat += (counts[x + L]! - expected) ** 2 / expected;
  }
  const dof = 2 * L; // 2L + 1 bins, nothing estimated
  return { stat, dof, p: chi2Sf(stat, dof) };
}

/** The χ² threshold: a correct sampler passes with probability 0.999 (for this fixed seed: passes). */
const P_MIN = 1e-3;
const N = 100_000;

const SIGMA2: { name: string; sigma2: Rational; wrong: Rational }[] = [
  // `wrong` is σ·1.05 (σ² · 441/400): the negative control.
  { name: 'σ² = 1/2', sigma2: { num: 1, den: 2 }, wrong: { num: 441, den: 800 } },
  { name: 'σ² = 4', sigma2: { num: 4, den: 1 }, wrong: { num: 441, den: 100 } },
  { name: 'σ² = 100', sigma2: { num: 100n, den: 1n }, wrong: { num: 441, den: 4 } },
];

const cache = new Map<string, Int32Array>();
function samplesFor(sigma2: Rational, seed: string): Int32Array {
  const key = `${sigma2.num}/${sigma2.den}/${seed}`;
  let s = cache.get(key);
  if (!s) {
    s = discreteGaussians(N, sigma2, seededIntegers(seed));
    cache.set(key, s);
  }
  return s;
}

describe('the χ² tail used here', () => {
  it('matches published critical values (p = 0.001 at 8, 18 and 255 dof; p = 0.05 at 74 dof)', () => {
    expect(chi2Sf(26.124, 8)).toBeCloseTo(0.001, 5);
    expect(chi2Sf(42.312, 18)).toBeCloseTo(0.001, 5);
    expect(chi2Sf(330.52, 255)).toBeCloseTo(0.001, 5);
    expect(chi2Sf(95.081, 74)).toBeCloseTo(0.05, 4);
    expect(chi2Sf(2, 2)).toBeCloseTo(Math.exp(-1), 14); // 2 dof: the tail is e^(−x/2)
  });
});

describe('discreteGaussianPmf', () => {
  it('sums to 1, is symmetric, and has P[0]/P[1] = e^(1/2σ²)', () => {
    for (const { sigma2 } of SIGMA2) {
      let total = 0;
      for (let x = -2000; x <= 2000; x++) total += discreteGaussianPmf(x, sigma2);
      expect(Math.abs(total - 1)).toBeLessThan(1e-12);
      expect(discreteGaussianPmf(3, sigma2)).toBe(discreteGaussianPmf(-3, sigma2));
      const s2 = Number(sigma2.num) / Number(sigma2.den);
      expect(discreteGaussianPmf(0, sigma2) / discreteGaussianPmf(1, sigma2)).toBeCloseTo(Math.exp(1 / (2 * s2)), 10);
    }
  });

  it('σ² = 1/2 by hand: P[0] = 1/(1 + 2e^−1 + 2e^−4 + 2e^−9 + …)', () => {
    let z = 1;
    for (let x = 1; x < 20; x++) z += 2 * Math.exp(-x * x);
    expect(discreteGaussianPmf(0, { num: 1, den: 2 })).toBeCloseTo(1 / z, 14);
  });
});

describe('χ² goodness of fit against the exact pmf (100 000 samples, seed "chi2")', () => {
  it.each(SIGMA2)('$name: p > 0.001; σ·1.05 (negative control) is rejected far beyond it', ({ name, sigma2, wrong }) => {
    const fit = chiSquare(samplesFor(sigma2, 'chi2'), (x) => discreteGaussianPmf(x, sigma2));
    // The control: samples of a deliberately wrong σ, judged against the right pmf.
    const control = chiSquare(discreteGaussians(N, wrong, seededIntegers('chi2-control')), (x) => discreteGaussianPmf(x, sigma2));
    console.log(JSON.stringify({ test: 'discrete-gaussian-chi2', sigma2: name, n: N, stat: +fit.stat.toFixed(2), dof: fit.dof, p: +fit.p.toPrecision(3), control_wrong_sigma_x1_05: { stat: +control.stat.toFixed(1), dof: control.dof, p: control.p } }));
    expect(fit.p).toBeGreaterThan(P_MIN);
    expect(control.p).toBeLessThan(1e-12);
  });

  it('σ² = 1/2: a rounded floating-point Gaussian (round(σ·N(0,1))) is not the discrete Gaussian', () => {
    const z = gaussians(N, seededRandom('rounded'));
    const rounded = Int32Array.from(z, (v) => Math.round(v * Math.SQRT1_2));
    const fit = chiSquare(rounded, (x) => discreteGaussianPmf(x, { num: 1, den: 2 }));
    console.log(JSON.stringify({ test: 'rounded-continuous-gaussian-chi2', sigma2: '1/2', stat: +fit.stat.toFixed(1), dof: fit.dof, p: fit.p }));
    expect(fit.p).toBeLessThan(1e-12);
  });

  it('discrete Laplace (t = 3): P[x] ∝ e^(−|x|/3), p > 0.001', () => {
    const src = seededIntegers('laplace');
    const s = new Int32Array(N);
    for (let i = 0; i < N; i++) s[i] = sampleDiscreteLaplace(3, src);
    const r = Math.exp(-1 / 3);
    const pmf = (x: number) => ((1 - r) / (1 + r)) * r ** Math.abs(x);
    const fit = chiSquare(s, pmf);
    expect(fit.p).toBeGreaterThan(P_MIN);
  });
});

describe('moments', () => {
  it.each(SIGMA2)('$name: mean ≈ 0 and variance ≈ the exact Var[N_Z(0, σ²)] < σ² (within 4 standard errors)', ({ sigma2 }) => {
    const s = samplesFor(sigma2, 'chi2');
    const s2 = Number(sigma2.num) / Number(sigma2.den);
    const variance = discreteGaussianVariance(sigma2);
    // CKS 2020: Var < σ²; the gap shrinks like e^(−2π²σ²), so past σ² ≈ 4 it is below double precision.
    expect(variance).toBeLessThanOrEqual(s2 * (1 + 1e-12));
    let m4 = 0;
    for (let x = -2000; x <= 2000; x++) m4 += x ** 4 * discreteGaussianPmf(x, sigma2);
    let sum = 0;
    let sumSq = 0;
    for (const x of s) {
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / s.length;
    const meanSq = sumSq / s.length; // E[X²] with the known mean 0
    expect(Math.abs(mean)).toBeLessThan(4 * Math.sqrt(variance / s.length));
    expect(Math.abs(meanSq - variance)).toBeLessThan(4 * Math.sqrt((m4 - variance ** 2) / s.length));
  });

  it('σ² = 1/2: the exact variance is below σ² (0.49898…, not 0.5)', () => {
    let z = 1;
    let m2 = 0;
    for (let x = 1; x < 20; x++) {
      z += 2 * Math.exp(-x * x);
      m2 += 2 * x * x * Math.exp(-x * x);
    }
    expect(discreteGaussianVariance({ num: 1, den: 2 })).toBeCloseTo(m2 / z, 14);
    expect(m2 / z).toBeLessThan(0.499);
    expect(m2 / z).toBeGreaterThan(0.4989);
  });

  it('large σ (σ² = 10^10, the BigInt path): mean and variance', () => {
    const sigma2 = { num: 10_000_000_000, den: 1 };
    const s = discreteGaussians(5000, sigma2, seededIntegers('big'));
    let sum = 0;
    let sumSq = 0;
    for (const x of s) {
      sum += x;
      sumSq += x * x;
    }
    const v = discreteGaussianVariance(sigma2);
    expect(Math.abs(sum / s.length)).toBeLessThan(4 * Math.sqrt(v / s.length));
    expect(Math.abs(sumSq / s.length - v)).toBeLessThan(4 * v * Math.sqrt(2 / s.length));
  });
});

describe('bernoulliExp: Bernoulli(exp(−γ)) for rational γ', () => {
  it.each([
    { num: 0, den: 1 },
    { num: 1, den: 3 },
    { num: 1, den: 2 },
    { num: 1, den: 1 },
    { num: 3, den: 2 },
    { num: 7, den: 3 },
    { num: 5, den: 1 },
    { num: 13, den: 7 },
  ])('γ = $num/$den: the rate is e^−γ within 4.5 standard errors (200 000 draws)', ({ num, den }) => {
    const src = seededIntegers(`bern/${num}/${den}`);
    const n = 200_000;
    let ones = 0;
    for (let i = 0; i < n; i++) if (bernoulliExp({ num, den }, src)) ones++;
    const p = Math.exp(-num / den);
    if (num === 0) expect(ones).toBe(n);
    else expect(Math.abs(ones / n - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / n));
  });

  it('γ with denominators past 2^53 (the BigInt path): (3·2^70 + 1)/2^71 ≈ 3/2 and (2^60 + 1)/2^60 ≈ 1', () => {
    for (const [gamma, p] of [
      [{ num: 3n * 2n ** 70n + 1n, den: 2n ** 71n }, Math.exp(-1.5)],
      [{ num: 2n ** 60n + 1n, den: 2n ** 60n }, Math.exp(-1)],
    ] as const) {
      const src = seededIntegers(`bern-big/${gamma.num}`);
      const n = 50_000;
      let ones = 0;
      for (let i = 0; i < n; i++) if (bernoulliExp(gamma, src)) ones++;
      expect(Math.abs(ones / n - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / n));
    }
  });
});

describe('uniform integers', () => {
  it('below(m) stays in [0, m) and is uniform (m = 7, χ² with 6 dof)', () => {
    const src = seededIntegers('uniform');
    const counts = new Float64Array(7);
    for (let i = 0; i < 70_000; i++) counts[src.below(7)]! += 1;
    let stat = 0;
    for (const c of counts) stat += (c - 10_000) ** 2 / 10_000;
    expect(chi2Sf(stat, 6)).toBeGreaterThan(P_MIN);
    for (const m of [1, 2, 2 ** 32, 2 ** 32 + 1, 3 * 2 ** 40 + 7, 2 ** 53]) {
      for (let i = 0; i < 200; i++) {
        const x = src.below(m);
        expect(Number.isInteger(x) && x >= 0 && x < m).toBe(true);
      }
    }
    const big = 10n ** 30n + 7n;
    for (let i = 0; i < 200; i++) {
      const x = src.belowBig(big);
      expect(x >= 0n && x < big).toBe(true);
    }
  });
});

describe('determinism', () => {
  it('the same seed gives the same samples; another seed, others', () => {
    const a = discreteGaussians(10_000, { num: 4, den: 1 }, seededIntegers(7));
    const b = discreteGaussians(10_000, { num: 4, den: 1 }, seededIntegers(7));
    const c = discreteGaussians(10_000, { num: 4, den: 1 }, seededIntegers(8));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const one = seededIntegers(7);
    expect(sampleDiscreteGaussian({ num: 4, den: 1 }, one)).toBe(a[0]);
    expect(sampleDiscreteGaussian({ num: 4, den: 1 }, one)).toBe(a[1]);
  });

  it.each([
    { num: 1, den: 2 },
    { num: 100, den: 1 },
    { num: 490_000, den: 1 },
    { num: 12_345, den: 678 },
  ])('the Number fast path and the all-BigInt reference give identical samples from one seed (σ² = $num/$den)', (sigma2) => {
    const fast = discreteGaussians(3000, sigma2, seededIntegers('paths'));
    const src = seededIntegers('paths');
    const ref = Int32Array.from({ length: 3000 }, () => Number(sampleDiscreteGaussianBig(sigma2, src)));
    expect(fast).toEqual(ref);
  });

  it('the default source is the CSPRNG: two batches differ', () => {
    const a = discreteGaussians(1000, { num: 100, den: 1 });
    const b = discreteGaussians(1000, { num: 100, den: 1 }, cryptoIntegers());
    expect(a).not.toEqual(b);
    expect(new UniformIntegers().word()).toBeGreaterThanOrEqual(0);
  });
});

describe('bad input names the argument', () => {
  const expectParam = (f: () => unknown, parameter: string) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(PrivacyParameterError);
      expect((e as PrivacyParameterError).parameter).toBe(parameter);
      expect((e as Error).message).toContain(parameter);
      return;
    }
    throw new Error(`expected a PrivacyParameterError naming ${parameter}`);
  };

  it('σ² ≤ 0, zero or negative denominators, non-integers, oversized σ²', () => {
    expectParam(() => sampleDiscreteGaussian({ num: 0, den: 1 }), 'sigma2.num');
    expectParam(() => sampleDiscreteGaussian({ num: -4, den: 1 }), 'sigma2.num');
    expectParam(() => sampleDiscreteGaussian({ num: 1, den: 0 }), 'sigma2.den');
    expectParam(() => sampleDiscreteGaussian({ num: 1, den: -2 }), 'sigma2.den');
    expectParam(() => sampleDiscreteGaussian({ num: 0.5, den: 1 }), 'sigma2.num');
    expectParam(() => sampleDiscreteGaussian({ num: 1, den: 2.5 }), 'sigma2.den');
    expectParam(() => sampleDiscreteGaussian({ num: Number.NaN, den: 1 }), 'sigma2.num');
    expectParam(() => sampleDiscreteGaussian({ num: 2 ** 60, den: 1 }), 'sigma2.num'); // not a safe integer
    expectParam(() => sampleDiscreteGaussian(null as unknown as Rational), 'sigma2');
    expectParam(() => sampleDiscreteGaussian({ num: BigInt(MAX_SIGMA2) + 1n, den: 1n }), 'sigma2');
    expectParam(() => discreteGaussians(-1, { num: 1, den: 1 }), 'n');
    expectParam(() => discreteGaussians(1.5, { num: 1, den: 1 }), 'n');
    expectParam(() => bernoulliExp({ num: -1, den: 2 }), 'gamma.num');
    expectParam(() => bernoulliExp({ num: 1, den: 0 }), 'gamma.den');
    expectParam(() => sampleDiscreteLaplace(0), 'scale');
    expectParam(() => sampleDiscreteLaplace(1.5), 'scale');
    expectParam(() => new UniformIntegers().below(0), 'm');
    expectParam(() => new UniformIntegers().below(2.5), 'm');
  });

  it('σ² beyond the Int32 cap still samples through the BigInt reference', () => {
    const x = sampleDiscreteGaussianBig({ num: 10n ** 40n, den: 3n }, seededIntegers('huge'));
    expect(typeof x).toBe('bigint');
  });
});

describe('speed', () => {
  it('σ = 700 (σ² = 490 000): samples per second, CSPRNG and seeded', () => {
    const sigma2 = { num: 490_000, den: 1 };
    discreteGaussians(20_000, sigma2, cryptoIntegers()); // warm-up
    const n = 500_000;
    const rate = (source: UniformIntegers) => {
      const t0 = performance.now();
      const s = discreteGaussians(n, sigma2, source);
      const seconds = (performance.now() - t0) / 1000;
      expect(s).toHaveLength(n);
      return Math.round(n / seconds);
    };
    const crypto = rate(cryptoIntegers());
    const seeded = rate(seededIntegers('speed'));
    const t0 = performance.now();
    const bigN = 5000;
    const src = seededIntegers('speed-big');
    for (let i = 0; i < bigN; i++) sampleDiscreteGaussianBig(sigma2, src);
    const bigRate = Math.round(bigN / ((performance.now() - t0) / 1000));
    console.log(JSON.stringify({ test: 'discrete-gaussian-speed', sigma: 700, samples_per_s_crypto: crypto, samples_per_s_seeded: seeded, samples_per_s_all_bigint: bigRate }));
    expect(crypto).toBeGreaterThan(10_000);
  });
});
