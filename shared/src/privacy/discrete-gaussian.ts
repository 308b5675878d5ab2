/**
 * The exact discrete Gaussian N_Z(0, σ²) (P[x] ∝ exp(−x²/2σ²) on the integers), sampled with
 * integer arithmetic only, after Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential
 * Privacy", NeurIPS 2020 (Algorithms 1–3); reference implementation: IBM's `discretegauss.py`,
 * github.com/IBM/discrete-gaussian-differential-privacy (Python, by the same authors).
 *
 * Why: a floating-point Gaussian (Box–Muller) has gaps and rounding artefacts that leak the value it
 * was added to (Mironov 2012; Jin et al. 2022). Here every decision is a comparison of exact
 * integers, and the only randomness is uniform integers in [0, m), drawn by rejection from uniform
 * 32-bit words of crypto.getRandomValues — so the output distribution is exactly N_Z(0, σ²), with
 * σ² = num/den a rational.
 *
 * The three steps (γ, scales and σ² all rationals of integers):
 *  1. Bernoulli(exp(−γ)). For γ ∈ [0, 1]: draw A_k ~ Bernoulli(γ/k) for k = 1, 2, … until the first
 *     A_k = 0; answer 1 iff that k is odd (P[k > K] = γ^K/K!, so P[odd] = Σ (−γ)^j/j! = e^−γ). For
 *     γ > 1: ⌊γ⌋ independent Bernoulli(e^−1) and one Bernoulli(e^−(γ−⌊γ⌋)), all of which must be 1.
 *     Bernoulli(a/b) is "a uniform integer in [0, b) is < a".
 *  2. Discrete Laplace, P[x] ∝ exp(−|x|/t) for an integer t ≥ 1: U uniform in [0, t), keep it with
 *     probability e^(−U/t); V ~ Geometric(1 − e^−1) (count Bernoulli(e^−1) successes); X = U + tV is
 *     then Geometric(1 − e^(−1/t)); a fair sign, rejecting "−0" so that 0 is not counted twice.
 *  3. Discrete Gaussian: t = ⌊σ⌋ + 1; Y ~ discrete Laplace(t); accept Y with probability
 *     exp(−(|Y| − σ²/t)² / 2σ²) = exp(−(|Y|·t·den − num)² / (2·t²·num·den)), else repeat. (CKS 2020
 *     Algorithm 3: the ratio of the two densities is bounded by a constant, and t ≈ σ keeps the
 *     expected number of tries below ~2 for every σ.)
 *
 * Speed: the hot path uses plain Number integers where every operand is provably < 2^53 (checked
 * per operation, not assumed), and falls back to BigInt for that one decision otherwise; both paths
 * consume the same random words in the same order, so they give identical samples (tested).
 * The Number path needs 2·t²·num·den < 2^53 (σ up to ≈ 8 000 for an integer σ²); past it every
 * decision is BigInt (about 15× slower).
 * Outputs are Int32Array: σ² is capped at 2^50 (σ ≤ 2^25), where |x| ≥ 2^31 is 64σ out, probability
 * below e^−2048; such a sample would throw rather than be clamped (never observed, never expected).
 */
import { Rng } from '../util/random';
import { PrivacyParameterError } from './rdp';

/** A supply of independent uniform 32-bit words. */
export interface WordSource {
  /** Fills `out` with independent uniform words in [0, 2^32). */
  fill(out: Uint32Array<ArrayBuffer>): void;
}

/** getRandomValues fills at most 65 536 bytes per call. */
const CHUNK_WORDS = 16_384;

/** The CSPRNG: crypto.getRandomValues (browsers, workers and Node alike). */
export const cryptoWords: WordSource = {
  fill(out) {
    for (let i = 0; i < out.length; i += CHUNK_WORDS) crypto.getRandomValues(out.subarray(i, Math.min(out.length, i + CHUNK_WORDS)));
  },
};

/** A reproducible word source for tests (the repo's seeded sfc32 `Rng`); never for privacy. */
export function seededWords(seed: string | number): WordSource {
  const rng = new Rng(`discrete-gaussian/${seed}`);
  return {
    fill(out) {
      for (let i = 0; i < out.length; i++) out[i] = rng.nextU32();
    },
  };
}

const TWO_32 = 4_294_967_296;
const TWO_21 = 2_097_152;
const TWO_53 = 9_007_199_254_740_992;
const TWO_53N = 9_007_199_254_740_992n;

/**
 * Exact uniform integers in [0, m) from a word source, by rejection: m ≤ 2^32 from one word,
 * m ≤ 2^53 from 21 + 32 bits, larger (BigInt) m from ⌈log2 m⌉ masked bits. Words are buffered.
 */
export class UniformIntegers {
  private readonly buf = new Uint32Array(4096);
  private pos = 4096;

  constructor(private readonly words: WordSource = cryptoWords) {}

  /** One uniform word in [0, 2^32). */
  word(): number {
    if (this.pos === this.buf.length) {
      this.words.fill(this.buf);
      this.pos = 0;
    }
    return this.buf[this.pos++] as number;
  }

  /** Uniform integer in [0, m), m an integer in [1, 2^53]. */
  below(m: number): number {
    if (!Number.isSafeInteger(m) && m !== TWO_53) throw new PrivacyParameterError('m', 'be an integer in [1, 2^53]', m);
    if (m < 1) throw new PrivacyParameterError('m', 'be an integer in [1, 2^53]', m);
    if (m <= TWO_32) {
      // Accept w < 2^32 − (2^32 mod m), a multiple of m; every operand is an exact integer.
      const limit = TWO_32 - (TWO_32 % m);
      for (;;) {
        const w = this.word();
        if (w < limit) return w % m;
      }
    }
    const limit = TWO_53 - (TWO_53 % m);
    for (;;) {
      const x = (this.word() % TWO_21) * TWO_32 + this.word(); // < 2^53: exact
      if (x < limit) return x % m;
    }
  }

  /** Uniform bigint in [0, m), m ≥ 1; for m ≤ 2^53 it draws exactly what `below` draws. */
  belowBig(m: bigint): bigint {
    if (m < 1n) throw new PrivacyParameterError('m', 'be a positive integer', m);
    if (m <= TWO_53N) return BigInt(this.below(Number(m)));
    const bits = (m - 1n).toString(2).length;
    const words = Math.ceil(bits / 32);
    const mask = (1n << BigInt(bits)) - 1n;
    for (;;) {
      let x = 0n;
      for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(this.word());
      x &= mask;
      if (x < m) return x;
    }
  }
}

/** Uniform integers from crypto.getRandomValues: what privacy uses. */
export function cryptoIntegers(): UniformIntegers {
  return new UniformIntegers(cryptoWords);
}

/** Uniform integers from a seeded generator: tests and reproducibility only, never privacy. */
export function seededIntegers(seed: string | number): UniformIntegers {
  return new UniformIntegers(seededWords(seed));
}

let sharedCrypto: UniformIntegers | undefined;
function defaultSource(): UniformIntegers {
  sharedCrypto ??= cryptoIntegers();
  return sharedCrypto;
}

/** A non-negative rational num/den of integers (a plain number must be a safe integer). */
export interface Rational {
  num: bigint | number;
  den: bigint | number;
}

function toBigInt(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new PrivacyParameterError(name, 'be an integer (a bigint, or a number that is a safe integer)', value);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Checks and reduces a rational; `positive` demands > 0, else ≥ 0. */
function rational(value: unknown, name: string, positive: boolean): { num: bigint; den: bigint } {
  if (typeof value !== 'object' || value === null) throw new PrivacyParameterError(name, 'be a rational {num, den} of integers', value);
  const v = value as Partial<Rational>;
  const num = toBigInt(v.num, `${name}.num`);
  const den = toBigInt(v.den, `${name}.den`);
  if (den <= 0n) throw new PrivacyParameterError(`${name}.den`, 'be a positive integer', den);
  if (positive ? num <= 0n : num < 0n) throw new PrivacyParameterError(`${name}.num`, positive ? `be a positive integer (${name} > 0)` : `be a non-negative integer (${name} ≥ 0)`, num);
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

/** ⌊√n⌋ for a bigint n ≥ 0 (Newton's method on integers). */
function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((n.toString(2).length >> 1) + 1); // 2^(⌊bits/2⌋+1) > √n: Newton from above
  for (;;) {
    const y = (x + n / x) / 2n;
    if (y >= x) return x;
    x = y;
  }
}

const isSafe = (x: number) => x <= Number.MAX_SAFE_INTEGER;

// ---- Bernoulli(exp(−γ)), γ = n/d ----------------------------------------------------------------

/** Bernoulli(e^−γ) for γ = n/d ∈ [0, 1] (Number path; falls back to BigInt if d·k leaves 2^53). */
function bernExpFracNum(n: number, d: number, src: UniformIntegers): boolean {
  let k = 1;
  for (;;) {
    const m = d * k;
    if (!isSafe(m)) return bernExpFracBigFrom(BigInt(n), BigInt(d), k, src);
    if (src.below(m) >= n) return k % 2 === 1; // A_k = 0 ends it
    k++;
  }
}

function bernExpFracBigFrom(n: bigint, d: bigint, k: number, src: UniformIntegers): boolean {
  for (let kb = BigInt(k); ; kb++, k++) {
    if (src.belowBig(d * kb) >= n) return k % 2 === 1;
  }
}

/** Bernoulli(e^−1): the γ = 1 case, A_k ~ Bernoulli(1/k), i.e. a uniform in [0, k) being 0. */
function bernExp1(src: UniformIntegers): boolean {
  let k = 1;
  while (src.below(k) === 0) k++;
  return k % 2 === 1;
}

/** Bernoulli(e^−n/d) for safe-integer n ≥ 0, d ≥ 1. */
function bernExpNum(n: number, d: number, src: UniformIntegers): boolean {
  const r = n % d; // exact on integers
  for (let whole = (n - r) / d; whole > 0; whole--) if (!bernExp1(src)) return false;
  return bernExpFracNum(r, d, src);
}

/** Bernoulli(e^−n/d) for bigint n ≥ 0, d ≥ 1 (the reference path; same draws as the Number one). */
function bernExpBig(n: bigint, d: bigint, src: UniformIntegers): boolean {
  for (let whole = n / d; whole > 0n; whole--) if (!bernExp1(src)) return false;
  return bernExpFracBigFrom(n % d, d, 1, src);
}

/**
 * One Bernoulli(exp(−γ)) draw, γ = num/den ≥ 0 a rational of integers (CKS 2020 Algorithm 1).
 * Exact: integer comparisons only.
 */
export function bernoulliExp(gamma: Rational, source: UniformIntegers = defaultSource()): boolean {
  const { num, den } = rational(gamma, 'gamma', false);
  if (num <= BigInt(Number.MAX_SAFE_INTEGER) && den <= BigInt(Number.MAX_SAFE_INTEGER)) return bernExpNum(Number(num), Number(den), source);
  return bernExpBig(num, den, source);
}

// ---- Discrete Laplace and discrete Gaussian -----------------------------------------------------

/** Discrete Laplace with integer scale t (P[x] ∝ e^−|x|/t), Number path (t ≤ 2^26). */
function laplaceNum(t: number, src: UniformIntegers): number {
  for (;;) {
    const u = src.below(t);
    if (!bernExpFracNum(u, t, src)) continue;
    let v = 0;
    while (bernExp1(src)) v++;
    const x = u + t * v; // v is tiny (Geometric(1 − 1/e)); t·v < 2^53 for any v < 2^27
    const negative = (src.word() & 1) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

function laplaceBig(t: bigint, src: UniformIntegers): bigint {
  for (;;) {
    const u = src.belowBig(t);
    if (!bernExpFracBigFrom(u, t, 1, src)) continue;
    let v = 0n;
    while (bernExp1(src)) v++;
    const x = u + t * v;
    const negative = (src.word() & 1) === 1;
    if (negative && x === 0n) continue;
    return negative ? -x : x;
  }
}

/** Everything one σ² needs, computed once per call or batch. */
interface Plan {
  p: bigint;
  q: bigint;
  t: bigint;
  /** The denominator 2·t²·p·q of the acceptance exponent, as a bigint. */
  dBig: bigint;
  /** Number copies when safe (the fast path), else undefined. */
  fast: { p: number; q: number; t: number; tq: number; d: number } | undefined;
}

/** σ² at most 2^50 (σ ≤ 2^25) for the Number-returning samplers. */
export const MAX_SIGMA2 = 2 ** 50;

function plan(sigma2: Rational, capped: boolean): Plan {
  const { num: p, den: q } = rational(sigma2, 'sigma2', true);
  if (capped && p > BigInt(MAX_SIGMA2) * q) throw new PrivacyParameterError('sigma2', 'be at most 2^50 (σ ≤ 2^25) for Int32 samples; use sampleDiscreteGaussianBig beyond', `${p}/${q}`);
  const t = isqrt(p / q) + 1n; // ⌊√(p/q)⌋ = ⌊√⌊p/q⌋⌋
  const dBig = 2n * t * t * p * q;
  const safe = (x: bigint) => x <= BigInt(Number.MAX_SAFE_INTEGER);
  const fast = safe(dBig) && safe(t * q) && safe(p) ? { p: Number(p), q: Number(q), t: Number(t), tq: Number(t * q), d: Number(dBig) } : undefined;
  return { p, q, t, dBig, fast };
}

/** One discrete Gaussian draw (CKS 2020 Algorithm 3), Number path with per-decision BigInt fallback. */
function gaussianNum(pl: Plan, src: UniformIntegers): number {
  const f = pl.fast;
  if (f === undefined) return Number(gaussianBig(pl, src));
  for (;;) {
    const y = laplaceNum(f.t, src);
    const ay = y < 0 ? -y : y;
    const a = ay * f.tq - f.p; // |a| ≤ max(|y|·t·q, p): checked below
    const absA = a < 0 ? -a : a;
    let accept: boolean;
    if (ay * f.tq <= Number.MAX_SAFE_INTEGER && absA <= 94_906_265 /* ⌊√(2^53 − 1)⌋ */) accept = bernExpNum(absA * absA, f.d, src);
    else {
      const ab = BigInt(ay) * (pl.t * pl.q) - pl.p;
      accept = bernExpBig(ab * ab, pl.dBig, src);
    }
    if (accept) return y;
  }
}

function gaussianBig(pl: Plan, src: UniformIntegers): bigint {
  for (;;) {
    const y = laplaceBig(pl.t, src);
    const ay = y < 0n ? -y : y;
    const a = ay * pl.t * pl.q - pl.p;
    if (bernExpBig(a * a, pl.dBig, src)) return y;
  }
}

/**
 * One exact discrete Gaussian sample N_Z(0, σ²), σ² = num/den > 0 (≤ 2^50), from `source`
 * (default: crypto.getRandomValues).
 */
export function sampleDiscreteGaussian(sigma2: Rational, source: UniformIntegers = defaultSource()): number {
  return checkedInt32(gaussianNum(plan(sigma2, true), source));
}

/** n exact discrete Gaussian samples N_Z(0, σ²), σ² = num/den > 0 (≤ 2^50). */
export function discreteGaussians(n: number, sigma2: Rational, source: UniformIntegers = defaultSource()): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new PrivacyParameterError('n', 'be a non-negative integer', n);
  const pl = plan(sigma2, true);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = checkedInt32(gaussianNum(pl, source));
  return out;
}

/**
 * The all-BigInt reference sampler (no σ² cap, bigint result). Draws the same words as the Number
 * path, so for σ² ≤ 2^50 it returns the same samples from the same seed.
 */
export function sampleDiscreteGaussianBig(sigma2: Rational, source: UniformIntegers = defaultSource()): bigint {
  return gaussianBig(plan(sigma2, false), source);
}

/** Discrete Laplace sample with integer scale t ≥ 1: P[x] ∝ exp(−|x|/t) (CKS 2020 Algorithm 2, s = 1). */
export function sampleDiscreteLaplace(scale: bigint | number, source: UniformIntegers = defaultSource()): number {
  const t = toBigInt(scale, 'scale');
  if (t < 1n || t > 2n ** 26n) throw new PrivacyParameterError('scale', 'be an integer in [1, 2^26]', t);
  return laplaceNum(Number(t), source);
}

function checkedInt32(x: number): number {
  if (x > 2_147_483_647 || x < -2_147_483_648) throw new RangeError(`discrete Gaussian sample ${x} is outside Int32 (σ too large for the Int32 samplers)`);
  return x;
}

// ---- The pmf (floating point: for tests and analysis, never for sampling) -----------------------

/**
 * P[X = x] for X ~ N_Z(0, σ²), normalising constant Σ_z exp(−z²/2σ²) summed to convergence
 * (double precision). For tests and analysis only — the samplers above use no floating point.
 */
export function discreteGaussianPmf(x: number, sigma2: Rational): number {
  const s2 = sigmaSquared(sigma2);
  return Math.exp(-(x * x) / (2 * s2)) / normaliser(s2);
}

/** The exact variance Σ x² P[x] of N_Z(0, σ²) (< σ², CKS 2020), to double precision. */
export function discreteGaussianVariance(sigma2: Rational): number {
  const s2 = sigmaSquared(sigma2);
  let m2 = 0;
  for (let x = 1; ; x++) {
    const term = 2 * x * x * Math.exp(-(x * x) / (2 * s2));
    m2 += term;
    if (term < 1e-18 * m2 && x * x > s2) break;
  }
  return m2 / normaliser(s2);
}

function sigmaSquared(sigma2: Rational): number {
  const { num, den } = rational(sigma2, 'sigma2', true);
  return Number(num) / Number(den);
}

function normaliser(s2: number): number {
  let z = 1;
  for (let x = 1; ; x++) {
    const term = 2 * Math.exp(-(x * x) / (2 * s2));
    z += term;
    if (term < 1e-18 * z) return z;
  }
}
