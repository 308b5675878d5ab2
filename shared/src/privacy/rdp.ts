/**
 * The RDP accountant of DP-SGD: Rényi DP of the sampled Gaussian mechanism, per order, and its conversion to (ε, δ).
 *
 * Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism" (arXiv:1908.10530),
 * §3.3, computed in log space as Opacus (opacus/accountants/analysis/rdp.py) and TensorFlow Privacy
 * (rdp_accountant.py) do, so that the same schedule gives the same ε to ~1e-13.
 */

/** How RDP becomes (ε, δ): 'opacus' is Balle et al. 2020 (Opacus today), 'classic' is Mironov 2017 Prop. 3. */
export type Conversion = 'opacus' | 'classic';

export const CONVERSIONS: readonly Conversion[] = ['opacus', 'classic'];

/** Opacus's DEFAULT_ALPHAS (and TF Privacy's): 1.1, 1.2, …, 10.9, then 12, 13, …, 63 (151 orders). */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/**
 * The orders DP-SGD is accounted at: the integer ones of DEFAULT_ORDERS (2–10, 12–63). DP-SGD adds
 * discrete Gaussian noise (shared/src/train/dp.ts), and the sampled Gaussian's RDP bounds the
 * sampled discrete Gaussian's only at integer orders (its binomial expansion); fractional orders
 * use the continuous density. A subset of DEFAULT_ORDERS, so a ledger kept at those can be narrowed.
 */
export const DP_SGD_ORDERS: readonly number[] = Object.freeze(DEFAULT_ORDERS.filter((a) => Number.isInteger(a)));

/** A parameter outside its domain. `parameter` is the caller's name for it, `rule` what it must satisfy. */
export class PrivacyParameterError extends RangeError {
  constructor(
    readonly parameter: string,
    readonly rule: string,
    readonly value: unknown,
  ) {
    super(`${parameter} must ${rule} (got ${typeof value === 'string' ? JSON.stringify(value) : String(value)})`);
    this.name = 'PrivacyParameterError';
  }
}

// ---- validation, shared with calibrate.ts -------------------------------------------------------------

export function checkSampleRate(q: number, { allowZero = false } = {}): void {
  const ok = allowZero ? q >= 0 && q <= 1 : q > 0 && q <= 1;
  if (!ok) throw new PrivacyParameterError('sampleRate', allowZero ? 'be in [0, 1]' : 'be in (0, 1]', q);
}

export function checkNoiseMultiplier(sigma: number): void {
  if (!(sigma > 0 && sigma < Infinity)) throw new PrivacyParameterError('noiseMultiplier', 'be > 0 and finite', sigma);
}

export function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new PrivacyParameterError('delta', 'be in (0, 1)', delta);
}

export function checkSteps(steps: number, { allowZero = false } = {}): void {
  if (!Number.isSafeInteger(steps) || steps < (allowZero ? 0 : 1)) {
    throw new PrivacyParameterError('steps', allowZero ? 'be a non-negative integer' : 'be a positive integer', steps);
  }
}

export function checkTargetEpsilon(target: number): void {
  if (!(target > 0 && target < Infinity)) throw new PrivacyParameterError('targetEpsilon', 'be > 0 and finite', target);
}

export function checkConversion(conversion: string): asserts conversion is Conversion {
  if (!(CONVERSIONS as readonly string[]).includes(conversion)) {
    throw new PrivacyParameterError('conversion', `be one of ${CONVERSIONS.map((c) => `"${c}"`).join(', ')}`, conversion);
  }
}

/** NaN and ±∞ orders pass (they give NaN/∞ and are ignored by getPrivacySpent, as in Opacus); finite ones must be > 1. */
function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new PrivacyParameterError('orders', 'hold at least one order', '[]');
  orders.forEach((a, i) => {
    if (Number.isFinite(a) && a <= 1) throw new PrivacyParameterError(`orders[${i}]`, 'be > 1', a);
  });
}

// ---- log-space arithmetic (Opacus _log_add, _log_sub) -------------------------------------------------

/** log(e^a + e^b), exact for −∞ (a zero) and without overflow. */
function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(e^a − e^b) for a ≥ b; Opacus's log(expm1(a − b)) + b, switched to a + log1p(−e^(b−a)) where expm1 would overflow. */
function logSub(a: number, b: number): number {
  if (a < b) throw new Error(`RDP accountant: log-space subtraction went negative (${a} − ${b}); please report the parameters`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = a - b;
  return d < 1 ? Math.log(Math.expm1(d)) + b : a + Math.log1p(-Math.exp(-d));
}

// ---- log erfc (W. J. Cody 1969, "Rational Chebyshev approximations for the error function", Math. Comp. 23) ----
// Cody's 20-digit coefficients, written as the float64 values they round to.

// |x| ≤ 0.46875: erf(x) = x·P1(x²)/Q1(x²).                                       (Cody 1969, table II)
const P1 = [3209.3775891384694, 377.485237685302, 113.86415415105016, 3.1611237438705655, 0.18577770618460315];
const Q1 = [2844.236833439171, 1282.6165260773723, 244.02463793444417, 23.601290952344122, 1];
// 0.46875 ≤ x ≤ 4: erfc(x) = e^(−x²)·P2(x)/Q2(x).                                 (table III)
const P2 = [
  1230.3393547979972, 2051.0783778260716, 1712.0476126340707, 881.952221241769, 298.6351381974001,
  66.11919063714163, 8.883149794388377, 0.5641884969886701, 2.1531153547440383e-8,
];
const Q2 = [
  1230.3393548037495, 3439.3676741437216, 4362.619090143247, 3290.7992357334597, 1621.3895745666903,
  537.1811018620099, 117.6939508913125, 15.744926110709835, 1,
];
// x ≥ 4: erfc(x) = e^(−x²)/x·(1/√π + z·P3(z)/Q3(z)), z = 1/x².                     (table IV)
const P3 = [-0.0006587491615298378, -0.016083785148742275, -0.12578172611122926, -0.36034489994980445, -0.30532663496123236, -0.016315387137302097];
const Q3 = [0.0023352049762686918, 0.06051834131244132, 0.5279051029514285, 1.8729528499234604, 2.568520192289822, 1];
const INV_SQRT_PI = 0.5641895835477563;

/** Σ c[k]·x^k by Horner, c[0] the constant term. */
function poly(c: readonly number[], x: number): number {
  let s = 0;
  for (let k = c.length - 1; k >= 0; k--) s = s * x + (c[k] as number);
  return s;
}

/** log erfc(x) for x ≥ 0.46875, where erfc(x) = e^(−x²)·R(x): kept in log space, so it never underflows. */
function logErfcTail(x: number): number {
  if (x < 4) return -x * x + Math.log(poly(P2, x) / poly(Q2, x));
  const z = 1 / (x * x);
  return -x * x - Math.log(x) + Math.log(INV_SQRT_PI + (z * poly(P3, z)) / poly(Q3, z));
}

/**
 * log erfc(x) to ~1e-16 relative for every x, also where erfc underflows (x > 26.5): Opacus's `_log_erfc`
 * (log 2 + scipy log_ndtr(−x√2), formerly log erfc with an asymptotic series once erfc underflowed).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax <= 0.46875) return Math.log1p(-(x * poly(P1, x * x)) / poly(Q1, x * x));
  if (x > 0) return logErfcTail(x);
  return Math.log(2 - Math.exp(logErfcTail(ax))); // erfc(x) = 2 − erfc(−x) ∈ (1, 2): no cancellation
}

// ---- A_α of the sampled Gaussian mechanism (Mironov et al. 2019, §3.3) -------------------------------------

/** log A_α for integer α by the binomial expansion (Opacus `_compute_log_a_for_int_alpha`). */
function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  let logBinom = 0; // log C(α, i), updated by C(α, i+1) = C(α, i)·(α − i)/(i + 1)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α by the two series split at z0 (Opacus `_compute_log_a_for_frac_alpha`). */
function logAFrac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5; // σ²·log(1/q − 1) + 1/2
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logAbsBinom = 0; // log |C(α, i)| for real α, and its sign
  let sign = 1;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const ratio = (alpha - i + 1) / i;
      logAbsBinom += Math.log(Math.abs(ratio));
      if (ratio < 0) sign = -sign;
    }
    const j = alpha - i;
    const logS0 = logAbsBinom + i * logQ + j * log1mQ + (i * i - i) / twoSigma2 + Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logS1 = logAbsBinom + j * logQ + i * log1mQ + (j * j - j) / twoSigma2 + Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    if (Number.isNaN(logS0) || Number.isNaN(logS1)) throw new Error(`RDP accountant: NaN in the series for α = ${alpha}, q = ${q}, σ = ${sigma}`);
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step at order α (Opacus `_compute_rdp`); clamped at 0, its true lower bound, against rounding. */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (Number.isNaN(alpha)) return Number.NaN;
  if (q === 0) return 0;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return Math.max(0, logA / (alpha - 1));
}

/**
 * RDP of `steps` compositions of the sampled Gaussian mechanism (sampling rate q, noise multiplier σ) at each order.
 * q = 0 gives 0 and q = 1 gives α·steps/(2σ²); a NaN order gives NaN, an infinite one ∞.
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkSampleRate(q, { allowZero: true });
  checkNoiseMultiplier(noiseMultiplier);
  checkSteps(steps, { allowZero: true });
  checkOrders(orders);
  return orders.map((alpha) => rdpOneStep(q, noiseMultiplier, alpha) * steps);
}

export interface PrivacySpent {
  epsilon: number;
  /** The order that gave the smallest ε; NaN when no order gave a number. */
  bestAlpha: number;
}

/**
 * (ε, δ) from RDP values at several orders: the smallest ε over the orders. 'opacus' (default) is Balle et al. 2020,
 * "Hypothesis testing interpretations and Rényi DP", Prop. 12 as Opacus `get_privacy_spent` applies it:
 * ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α); 'classic' is ε = rdp − log δ/(α − 1).
 * Orders whose ε is NaN (a NaN or infinite order, a NaN RDP) are ignored, as Opacus's nanargmin does; when none is
 * left ε is ∞. ε is floored at 0, as TF Privacy does (a negative bound only means (0, δ)-DP).
 */
export function getPrivacySpent(args: { orders: readonly number[]; rdp: readonly number[]; delta: number; conversion?: Conversion }): PrivacySpent {
  const { orders, rdp, delta, conversion = 'opacus' } = args;
  checkOrders(orders);
  if (rdp.length !== orders.length) throw new PrivacyParameterError('rdp', `hold one value per order (${orders.length})`, `${rdp.length} values`);
  checkDelta(delta);
  checkConversion(conversion);
  const logDelta = Math.log(delta);
  let best = Infinity;
  let bestAlpha = Number.NaN;
  let anyNumber = false;
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i] as number;
    const r = rdp[i] as number;
    if (r < 0) throw new PrivacyParameterError(`rdp[${i}]`, 'be >= 0', r);
    const eps =
      conversion === 'opacus' ? r - (logDelta + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha) : r - logDelta / (alpha - 1);
    if (Number.isNaN(eps) || !Number.isFinite(alpha)) continue; // Opacus: NaN; classic would give rdp − 0 at α = ∞
    if (!anyNumber || eps < best) {
      best = eps;
      bestAlpha = alpha;
      anyNumber = true;
    }
  }
  return anyNumber ? { epsilon: Math.max(0, best), bestAlpha } : { epsilon: Infinity, bestAlpha: Number.NaN };
}

export interface EpsilonForArgs {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  conversion?: Conversion;
  orders?: readonly number[];
}

/** ε of a DP-SGD schedule: `steps` steps at sampling rate q with noise multiplier σ, for δ. */
export function epsilonFor(args: EpsilonForArgs): { epsilon: number; alpha: number } {
  const { sampleRate, noiseMultiplier, steps, delta, conversion = 'opacus', orders = DEFAULT_ORDERS } = args;
  checkSampleRate(sampleRate);
  checkNoiseMultiplier(noiseMultiplier);
  checkSteps(steps);
  checkDelta(delta);
  checkConversion(conversion);
  const rdp = computeRdp(sampleRate, noiseMultiplier, steps, orders);
  const { epsilon, bestAlpha } = getPrivacySpent({ orders, rdp, delta, conversion });
  return { epsilon, alpha: bestAlpha };
}
