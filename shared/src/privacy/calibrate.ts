/**
 * Calibration with the RDP accountant: the noise multiplier σ for a target ε (as Opacus `get_noise_multiplier`),
 * and the number of steps a budget affords. Both rely on ε falling in σ and rising in steps.
 */
import {
  checkConversion,
  checkDelta,
  checkNoiseMultiplier,
  checkSampleRate,
  checkSteps,
  checkTargetEpsilon,
  computeRdp,
  DEFAULT_ORDERS,
  epsilonFor,
  getPrivacySpent,
  PrivacyParameterError,
  type Conversion,
} from './rdp';

/** The largest σ calibration tries; a target that needs more is refused as out of reach. */
export const MAX_NOISE_MULTIPLIER = 1e4;

export interface NoiseForEpsilonArgs {
  targetEpsilon: number;
  sampleRate: number;
  steps: number;
  delta: number;
  conversion?: Conversion;
  /** How far below the target ε(σ) may end up; default 0.01. */
  precision?: number;
  orders?: readonly number[];
}

/**
 * The noise multiplier σ for which `steps` steps at sampling rate q spend less than `targetEpsilon` (for δ), and at
 * least targetEpsilon − precision. The search is Opacus `get_noise_multiplier`'s, so the same inputs give the same σ;
 * only the ceiling differs (σ ≤ 1e4 here).
 */
export function noiseForEpsilon(args: NoiseForEpsilonArgs): number {
  const { targetEpsilon, sampleRate, steps, delta, conversion = 'opacus', precision = 0.01, orders = DEFAULT_ORDERS } = args;
  checkTargetEpsilon(targetEpsilon);
  checkSampleRate(sampleRate);
  checkSteps(steps);
  checkDelta(delta);
  checkConversion(conversion);
  if (!(precision > 0 && precision < Infinity)) throw new PrivacyParameterError('precision', 'be > 0 and finite', precision);
  const eps = (sigma: number) => epsilonFor({ sampleRate, noiseMultiplier: sigma, steps, delta, conversion, orders }).epsilon;

  // Opacus's search: double σ from 20 until ε falls to the target, then bisect [0, σ] (so the same σ as Opacus).
  let lo = 0;
  let hi = 10;
  let epsHi = Infinity;
  while (epsHi > targetEpsilon) {
    if (hi >= MAX_NOISE_MULTIPLIER) {
      throw new PrivacyParameterError(
        'targetEpsilon',
        `be reachable with a noise multiplier <= ${MAX_NOISE_MULTIPLIER} (which still gives ε = ${epsHi.toPrecision(4)} here)`,
        targetEpsilon,
      );
    }
    hi = Math.min(2 * hi, MAX_NOISE_MULTIPLIER);
    epsHi = eps(hi);
  }
  // Bisect until ε(hi) is within `precision` below the target (or the bracket cannot shrink further).
  while (targetEpsilon - epsHi > precision && hi - lo > 1e-12 * hi) {
    const mid = (lo + hi) / 2;
    const e = eps(mid);
    if (e < targetEpsilon) {
      hi = mid;
      epsHi = e;
    } else {
      lo = mid;
    }
  }
  return hi;
}

export interface StepsForBudgetArgs {
  targetEpsilon: number;
  sampleRate: number;
  noiseMultiplier: number;
  delta: number;
  conversion?: Conversion;
  orders?: readonly number[];
}

/**
 * The largest number of steps whose ε stays ≤ `targetEpsilon` (0 when one step already exceeds it). RDP is linear in
 * steps, so one step's RDP is computed once and the step count found by doubling, then binary search.
 */
export function stepsForBudget(args: StepsForBudgetArgs): number {
  const { targetEpsilon, sampleRate, noiseMultiplier, delta, conversion = 'opacus', orders = DEFAULT_ORDERS } = args;
  checkTargetEpsilon(targetEpsilon);
  checkSampleRate(sampleRate);
  checkNoiseMultiplier(noiseMultiplier);
  checkDelta(delta);
  checkConversion(conversion);
  const perStep = computeRdp(sampleRate, noiseMultiplier, 1, orders);
  // The same products computeRdp(q, σ, T) forms, so epsAt(T) equals epsilonFor(…, steps: T) exactly.
  const epsAt = (steps: number) => getPrivacySpent({ orders, rdp: perStep.map((r) => r * steps), delta, conversion }).epsilon;
  if (epsAt(1) > targetEpsilon) return 0;
  let lo = 1; // ε(lo) ≤ target
  let hi = 2; // ε(hi) > target once the doubling stops
  while (epsAt(hi) <= targetEpsilon) {
    lo = hi;
    if (hi === Number.MAX_SAFE_INTEGER) {
      throw new PrivacyParameterError('targetEpsilon', `leave a finite number of steps (${Number.MAX_SAFE_INTEGER} steps still fit)`, targetEpsilon);
    }
    hi = Math.min(2 * hi, Number.MAX_SAFE_INTEGER);
  }
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (epsAt(mid) <= targetEpsilon) lo = mid;
    else hi = mid;
  }
  return lo;
}
