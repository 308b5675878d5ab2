/**
 * The sum at half size: the first component c0 of the summed ciphertext plus the contributors'
 * seeds, instead of both components.
 *
 * Why it works. A hospital encrypts symmetrically (every hospital holds the secret key,
 * ceremony.ts): SEAL samples c1 = a uniformly from a 64-byte seed and sends c0 = −a·s + e + Δm and
 * the seed, not a (SEAL's "seeded" serialisation). The sum of n such ciphertexts is
 * (Σ c0_i, Σ a_i), and Σ a_i is public: whoever has the seeds can expand it. So the coordinator
 * sends the decrypting hospital Σ c0_i and the n seeds (81 bytes each) — 4096 × 8 bytes a
 * ciphertext instead of twice that — and the hospital rebuilds Σ a_i with SEAL's own expansion:
 * it loads a seeded ciphertext holding Σ c0_i with the first seed, then n − 1 holding zeros with
 * the others, and adds them. Nothing the coordinator did not already relay is revealed.
 *
 * The byte layout is SEAL 4.1's (node-seal 6.0.3; native/src/seal/ciphertext.cpp
 * `Ciphertext::save_members`, serialization.h `SEALHeader`), uncompressed (compr_mode none):
 *
 *   SEALHeader 16 B (magic 0xA15E, header size 16, version, compr_mode, size u64)
 *   parms_id 32 B · is_ntt_form 1 B · size u64 · poly_modulus_degree u64 · coeff_modulus_size u64 ·
 *   scale f64 · correction_factor u64                                     (73 B)
 *   DynArray: SEALHeader 16 B, count u64, count × u64 coefficients (both components, or c0 alone)
 *   seeded only: UniformRandomGeneratorInfo, SEALHeader 16 B + type 1 B + seed 64 B   (81 B)
 *
 * Every parse checks magic, compression, sizes and counts against the parameters, and a blob
 * that is not uncompressed and seeded (zlib-compressed, public-key encrypted) is simply not
 * compacted: the full sum goes instead (rounds.ts). SEAL validates whatever is rebuilt on load.
 */
import { HeError, type HeParameters } from './seal';

const MAGIC = 0xa15e;
const HEADER = 16;
const MEMBERS = 73;
const ARRAY_AT = HEADER + MEMBERS;
const DATA_AT = ARRAY_AT + HEADER + 8;
/** UniformRandomGeneratorInfo as saved: header, the PRNG type byte, the 512-bit seed. */
export const SEED_INFO_BYTES = HEADER + 1 + 64;

interface Layout {
  /** Coefficients of one component: N × (number of primes). */
  readonly coefficients: number;
  /** The array holds one component (seeded) or two. */
  readonly seeded: boolean;
}

function headerOk(view: DataView, at: number, size: number): boolean {
  return view.getUint16(at, true) === MAGIC && view.getUint8(at + 2) === HEADER && view.getUint8(at + 5) === 0 && Number(view.getBigUint64(at + 8, true)) === size;
}

/** The layout of an uncompressed, serialised two-component ciphertext for `params`; undefined when it is anything else. */
function layoutOf(bytes: Uint8Array, params: HeParameters): Layout | undefined {
  if (bytes.byteLength < DATA_AT) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!headerOk(view, 0, bytes.byteLength)) return undefined;
  const u64 = (at: number) => Number(view.getBigUint64(at, true));
  const coefficients = params.poly_modulus_degree * params.coeff_modulus.length;
  if (u64(HEADER + 33) !== 2 || u64(HEADER + 41) !== params.poly_modulus_degree || u64(HEADER + 49) !== params.coeff_modulus.length) return undefined;
  const count = u64(ARRAY_AT + HEADER);
  if (count !== coefficients && count !== 2 * coefficients) return undefined;
  const arrayBytes = HEADER + 8 + 8 * count;
  if (!headerOk(view, ARRAY_AT, arrayBytes)) return undefined;
  const seeded = count === coefficients;
  const end = ARRAY_AT + arrayBytes + (seeded ? SEED_INFO_BYTES : 0);
  if (end !== bytes.byteLength) return undefined;
  if (seeded && !headerOk(view, end - SEED_INFO_BYTES, SEED_INFO_BYTES)) return undefined;
  return { coefficients, seeded };
}

/** The seed (its 81-byte saved form) of an uncompressed seeded ciphertext; undefined for any other blob. */
export function seedOf(bytes: Uint8Array, params: HeParameters): Uint8Array | undefined {
  const layout = layoutOf(bytes, params);
  return layout?.seeded ? bytes.slice(bytes.byteLength - SEED_INFO_BYTES) : undefined;
}

/** A seeded ciphertext: the prefix of `template` (parms_id, sizes), c0 = `c0` (zeros when undefined), the given seed. */
function seeded(template: Uint8Array, coefficients: number, c0: Uint8Array | undefined, seed: Uint8Array): Uint8Array {
  const arrayBytes = HEADER + 8 + 8 * coefficients;
  const out = new Uint8Array(ARRAY_AT + arrayBytes + SEED_INFO_BYTES);
  out.set(template.subarray(0, DATA_AT));
  const view = new DataView(out.buffer);
  view.setBigUint64(8, BigInt(out.byteLength), true);
  view.setBigUint64(ARRAY_AT + 8, BigInt(arrayBytes), true);
  view.setBigUint64(ARRAY_AT + HEADER, BigInt(coefficients), true);
  if (c0) out.set(c0, DATA_AT);
  out.set(seed, ARRAY_AT + arrayBytes);
  return out;
}

function checkSeed(seed: Uint8Array, what: string): void {
  const ok = seed.byteLength === SEED_INFO_BYTES && headerOk(new DataView(seed.buffer, seed.byteOffset, seed.byteLength), 0, SEED_INFO_BYTES);
  if (!ok) throw new HeError(`${what} is not a saved SEAL seed (${SEED_INFO_BYTES} bytes with its header)`);
}

/**
 * The coordinator's side: the summed ciphertext (uncompressed, both components) and the seeds of
 * its n summands → c0 of the sum as a seeded ciphertext under the first seed, and the other n − 1
 * seeds concatenated. Undefined when the sum is not an uncompressed two-component ciphertext.
 */
export function compactSum(sum: Uint8Array, seeds: readonly Uint8Array[], params: HeParameters): { c0: Uint8Array; seeds: Uint8Array } | undefined {
  const layout = layoutOf(sum, params);
  if (!layout || layout.seeded || seeds.length === 0) return undefined;
  seeds.forEach((s, i) => checkSeed(s, `seed ${i}`));
  const c0 = seeded(sum, layout.coefficients, sum.subarray(DATA_AT, DATA_AT + 8 * layout.coefficients), seeds[0] as Uint8Array);
  const rest = new Uint8Array(SEED_INFO_BYTES * (seeds.length - 1));
  seeds.slice(1).forEach((s, i) => rest.set(s, i * SEED_INFO_BYTES));
  return { c0, seeds: rest };
}

/**
 * The decrypting hospital's side: what `compactSum` sent → the seeded ciphertexts whose sum is
 * the full sum (the first carries Σ c0 and seed 1; each other one zeros and its seed). Throws
 * HeError for a malformed part.
 */
export function expandCompactSum(c0: Uint8Array, seeds: Uint8Array, params: HeParameters, what: string): Uint8Array[] {
  const layout = layoutOf(c0, params);
  if (!layout?.seeded) throw new HeError(`${what}: not an uncompressed seeded ciphertext for these parameters`);
  if (seeds.byteLength % SEED_INFO_BYTES !== 0) throw new HeError(`${what}: the seeds are ${seeds.byteLength} bytes, not a multiple of ${SEED_INFO_BYTES}`);
  const out = [c0];
  for (let at = 0; at < seeds.byteLength; at += SEED_INFO_BYTES) {
    const seed = seeds.subarray(at, at + SEED_INFO_BYTES);
    checkSeed(seed, `${what}: seed ${at / SEED_INFO_BYTES + 1}`);
    out.push(seeded(c0, layout.coefficients, undefined, seed));
  }
  return out;
}
