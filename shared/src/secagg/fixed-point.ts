/**
 * Exact sums of real values under masking: fixed point spread over several 32-bit words ("limbs").
 *
 * The update quantiser (quantize.ts) clips every coordinate to one range [−R, R] and keeps b bits:
 * right for model updates, wrong for preprocessing statistics, whose coordinates span many orders
 * of magnitude (a count of 30 000 observations beside Σx² of a lab value at 10^9) and must come
 * out almost exactly (normalisation subtracts n·mean² from Σx²). Here each value x becomes the
 * integer V = round(x·2^F) (F fraction bits; x·2^F is exact in float64), offset to
 * U = V + 2^(K·b − 1) ≥ 0 and cut into K limbs of b bits, least significant first. Masked
 * addition works word by word mod 2^32 without carries, so each limb must not wrap on its own:
 * n·(2^b − 1) < 2^32, the same condition as quantize.ts's, which fixes b = 32 − ⌈log2 n⌉. The
 * server recombines the carries in BigInt:
 *
 *   Σ_i V_i = Σ_k S_k·2^(k·b) − n·2^(K·b − 1),   S_k = Σ_i limb_k(U_i) ≤ n·(2^b − 1)
 *
 * which is exact; the only error is rounding each x to F fraction bits (≤ 2^−(F+1) per client) and
 * the final conversion of the exact integer sum to float64. |x| must be below 2^(K·b − 1 − F):
 * K is chosen so that this holds for every |x| < 2^INTEGER_BITS.
 */
import { MODULUS_BITS } from './mask';
import { QuantizationError, maxBits } from './quantize';

export interface FixedPointConfig {
  /** F: fraction bits kept of each value (resolution 2^−F). */
  readonly fraction_bits: number;
  /** b: bits per limb; n·(2^b − 1) < 2^32 for n summands. */
  readonly bits: number;
  /** K: limbs (32-bit words) per value. */
  readonly limbs: number;
}

/** Values up to 2^62 in magnitude (far beyond any sum of clinical statistics) are representable. */
export const INTEGER_BITS = 62;
/** Default resolution 2^−40 ≈ 9·10^−13 per client: sums of squares of small-scale channels (std ~10^−3) keep ~8 digits of their variance. */
export const DEFAULT_FRACTION_BITS = 40;

/** The fixed-point layout for up to `clients` summands: the widest limbs that cannot wrap, enough of them for |x| < 2^62. */
export function fixedPointFor(clients: number, fractionBits: number = DEFAULT_FRACTION_BITS): FixedPointConfig {
  if (!Number.isInteger(fractionBits) || fractionBits < 0 || fractionBits > 52) throw new QuantizationError(`fraction bits must be an integer in [0, 52], got ${fractionBits}`);
  const bits = maxBits(clients);
  const limbs = Math.ceil((fractionBits + INTEGER_BITS + 1) / bits);
  return { fraction_bits: fractionBits, bits, limbs };
}

function check(cfg: FixedPointConfig, clients: number): void {
  const int = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new QuantizationError(`fixed point: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int('fraction_bits', cfg.fraction_bits, 0, 52);
  int('bits', cfg.bits, 1, MODULUS_BITS);
  int('limbs', cfg.limbs, 1, 16);
  if (!Number.isInteger(clients) || clients < 1 || clients * (2 ** cfg.bits - 1) >= 2 ** MODULUS_BITS) {
    throw new QuantizationError(`fixed point: ${clients} summands of ${cfg.bits}-bit limbs can wrap mod 2^${MODULUS_BITS}`);
  }
}

/** The largest |x| the layout can carry (exclusive): 2^(K·b − 1 − F). */
export function fixedPointRange(cfg: FixedPointConfig): number {
  return 2 ** (cfg.limbs * cfg.bits - 1 - cfg.fraction_bits);
}

/** Per-coordinate bound on |decoded sum − Σ x_i| for n summands: n·2^−(F+1) of rounding, plus float64's last place. */
export function fixedPointErrorBound(cfg: FixedPointConfig, clients: number, magnitude = 0): number {
  return clients * 2 ** -(cfg.fraction_bits + 1) + Math.abs(magnitude) * Number.EPSILON;
}

/** values → K·L words (value i at words i·K … i·K + K − 1, least significant limb first). Throws on a non-finite or out-of-range value. */
export function encodeFixedPoint(values: Float32Array | Float64Array | readonly number[], cfg: FixedPointConfig): Uint32Array {
  check(cfg, 1);
  const { limbs, bits, fraction_bits: f } = cfg;
  const out = new Uint32Array(values.length * limbs);
  const range = fixedPointRange(cfg);
  const scale = 2 ** f;
  const offset = 1n << BigInt(limbs * bits - 1);
  const mask = (1n << BigInt(bits)) - 1n;
  const shift = BigInt(bits);
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    if (!Number.isFinite(x)) throw new QuantizationError(`value ${i} is ${x}: only finite values can be encoded`);
    if (Math.abs(x) >= range) throw new QuantizationError(`value ${i} is ${x}, beyond the fixed-point range ±2^${limbs * bits - 1 - f}`);
    let u = BigInt(Math.round(x * scale)) + offset;
    for (let k = 0; k < limbs; k++) {
      out[i * limbs + k] = Number(u & mask);
      u >>= shift;
    }
  }
  return out;
}

/** The word-wise sum (mod 2^32, unmasked) of `clients` encodings → Σ x_i per value, exact but for rounding. Throws if a limb sum is impossible (a mask left in). */
export function decodeFixedPointSum(sum: Uint32Array, clients: number, cfg: FixedPointConfig): Float64Array {
  check(cfg, clients);
  const { limbs, bits, fraction_bits: f } = cfg;
  if (sum.length % limbs !== 0) throw new QuantizationError(`fixed point: ${sum.length} words are not a whole number of ${limbs}-limb values`);
  const top = clients * (2 ** bits - 1);
  const offset = BigInt(clients) << BigInt(limbs * bits - 1);
  const out = new Float64Array(sum.length / limbs);
  for (let i = 0; i < out.length; i++) {
    let total = 0n;
    for (let k = limbs - 1; k >= 0; k--) {
      const s = sum[i * limbs + k] as number;
      if (s > top) throw new QuantizationError(`value ${i}, limb ${k} sums to ${s}, above ${clients} × (2^${bits} − 1): not a sum of ${clients} encodings (a mask left in?)`);
      total = (total << BigInt(bits)) + BigInt(s);
    }
    // Exact integer, then one rounding to float64 and an exact division by a power of two.
    out[i] = Number(total - offset) / 2 ** f;
  }
  return out;
}
