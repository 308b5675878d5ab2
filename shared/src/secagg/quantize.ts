/**
 * From floats to Z_2^32 and back, for secure aggregation: each client clips its (already weighted)
 * update to [−R, R] and maps it onto the integer grid {0, 1, …, 2^b − 1} with step
 * Δ = 2R / (2^b − 1), rounding stochastically: v at grid position y = (v + R)/Δ becomes ⌈y⌉ with
 * probability y − ⌊y⌋ and ⌊y⌋ otherwise, so E[q] = y exactly (unbiased) and |q − y| < 1.
 *
 * The server sees only the sum of n such vectors mod 2^32. Choosing b ≤ 32 − ⌈log2 n⌉ makes
 * n·(2^b − 1) < 2^32, so the sum never wraps and dequantising it is exact up to rounding:
 *
 *   Σ_i clip(x_i) = Δ·Σ_i q_i − n·R + e,   |e| < n·Δ   per coordinate
 *
 * (each client contributes less than one step; in expectation e = 0). Clipping itself is the
 * caller's choice of R: values beyond ±R are moved to ±R, which is biased, so R should bound the
 * weighted updates (DP's clipping does that for DP runs).
 */
import { cryptoRandom, type RandomSource } from '../util/csprng';
import { MODULUS_BITS } from './mask';

export interface QuantizationConfig {
  /** R: values are clipped to [−R, R]. */
  readonly clip: number;
  /** b: each value becomes an integer in [0, 2^b − 1]. */
  readonly bits: number;
}

export class QuantizationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuantizationError';
  }
}

/** Uniforms drawn per call of the random source (bounds the scratch buffer). */
const RANDOM_CHUNK = 65_536;

function checkClients(clients: number): void {
  if (!Number.isInteger(clients) || clients < 1 || clients > 2 ** 31) throw new QuantizationError(`number of clients must be an integer in [1, 2^31], got ${clients}`);
}

function checkConfig(cfg: QuantizationConfig): void {
  if (!Number.isFinite(cfg.clip) || cfg.clip <= 0) throw new QuantizationError(`clipping range R must be a finite number > 0, got ${cfg.clip}`);
  if (!Number.isInteger(cfg.bits) || cfg.bits < 1 || cfg.bits > MODULUS_BITS) throw new QuantizationError(`bits must be an integer in [1, ${MODULUS_BITS}], got ${cfg.bits}`);
}

/** The most bits per value for which the sum of `clients` quantised values cannot wrap mod 2^32: 32 − ⌈log2 n⌉. */
export function maxBits(clients: number): number {
  checkClients(clients);
  const ceilLog2 = 32 - Math.clz32(clients - 1); // exact ⌈log2 n⌉ for integers n ≥ 1
  return MODULUS_BITS - ceilLog2;
}

/** The config for clipping range `clip` and up to `clients` summands, with the finest grid that cannot wrap (or `bits`, checked). */
export function quantizationFor(clip: number, clients: number, bits: number = maxBits(clients)): QuantizationConfig {
  const cfg = { clip, bits };
  checkConfig(cfg);
  checkNoWrap(cfg, clients);
  return cfg;
}

function checkNoWrap(cfg: QuantizationConfig, clients: number): void {
  checkClients(clients);
  if (clients * (2 ** cfg.bits - 1) >= 2 ** MODULUS_BITS) {
    throw new QuantizationError(`a sum of ${clients} values of ${cfg.bits} bits can wrap mod 2^${MODULUS_BITS}: use at most ${maxBits(clients)} bits`);
  }
}

/** Δ = 2R / (2^b − 1), the distance between neighbouring grid values. */
export function quantizationStep(cfg: QuantizationConfig): number {
  checkConfig(cfg);
  return (2 * cfg.clip) / (2 ** cfg.bits - 1);
}

/** The per-coordinate bound on |dequantizeSum − Σ clip(x_i)| for `clients` summands: n·Δ (strict). */
export function sumErrorBound(cfg: QuantizationConfig, clients: number): number {
  checkClients(clients);
  return clients * quantizationStep(cfg);
}

/**
 * Clips `values` to [−R, R] and rounds each stochastically onto the grid (unbiased). Randomness
 * comes from `random` (the CSPRNG by default: the rounding must not be predictable to the server).
 * Non-finite values are an error.
 */
export function quantize(values: Float32Array | Float64Array, cfg: QuantizationConfig, random: RandomSource = cryptoRandom): Uint32Array {
  const step = quantizationStep(cfg);
  const top = 2 ** cfg.bits - 1;
  const out = new Uint32Array(values.length);
  const u = new Float64Array(Math.min(RANDOM_CHUNK, values.length));
  for (let start = 0; start < values.length; start += u.length) {
    const end = Math.min(values.length, start + u.length);
    random.uniforms(end - start === u.length ? u : u.subarray(0, end - start));
    for (let i = start; i < end; i++) {
      const v = values[i] as number;
      if (!Number.isFinite(v)) throw new QuantizationError(`value ${i} is ${v}: only finite values can be quantised`);
      const clipped = v > cfg.clip ? cfg.clip : v < -cfg.clip ? -cfg.clip : v;
      const y = (clipped + cfg.clip) / step;
      const floor = Math.floor(y);
      const q = floor + ((u[i - start] as number) < y - floor ? 1 : 0);
      out[i] = q < 0 ? 0 : q > top ? top : q; // clamps only float rounding at ±R
    }
  }
  return out;
}

/** One client's quantised vector back to floats (Δ·q − R): what `quantize` encodes, within one step. */
export function dequantize(quantized: Uint32Array, cfg: QuantizationConfig): Float64Array {
  return dequantizeSum(quantized, 1, cfg);
}

/**
 * The sum of `clients` quantised vectors (mod 2^32, as unmasking yields it) back to the sum of
 * their clipped values: Δ·s − n·R per coordinate, within n·Δ of the true clipped sum. Float64, so
 * dividing by the total weight afterwards loses nothing more.
 */
export function dequantizeSum(sum: Uint32Array, clients: number, cfg: QuantizationConfig): Float64Array {
  checkConfig(cfg);
  checkNoWrap(cfg, clients);
  const step = quantizationStep(cfg);
  const offset = clients * cfg.clip;
  const top = clients * (2 ** cfg.bits - 1);
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const s = sum[i] as number;
    if (s > top) throw new QuantizationError(`coordinate ${i} is ${s}, above ${clients} × (2^${cfg.bits} − 1): not a sum of ${clients} quantised vectors (a mask left in?)`);
    out[i] = s * step - offset;
  }
  return out;
}
