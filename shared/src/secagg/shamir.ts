/**
 * Shamir t-of-n secret sharing of byte strings (SecAgg+ shares each client's self-mask seed and
 * mask secret key this way), byte-wise over GF(2^8) as SSS libraries do: each byte of the secret
 * is the constant term of its own polynomial of degree t − 1 whose other t − 1 coefficients are
 * fresh bytes from the CSPRNG; share x (1..n) holds every polynomial's value at x.
 *
 * - Any t distinct shares reconstruct the secret (Lagrange interpolation at 0).
 * - Fewer than t shares reveal nothing: for any t − 1 shares and any candidate secret there is
 *   exactly one polynomial through them, so every secret is equally likely. `combine` refuses them
 *   (the threshold travels in each share); forcing a lower threshold yields unrelated bytes.
 * - More than t shares are checked for consistency: a share that is not on the polynomial of the
 *   others (a corrupted or forged share) is an error, not a silently wrong secret.
 *
 * The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1; addition is XOR.
 * At most 255 shares (the non-zero field elements). Multiplication uses log/exp tables, so it is
 * not constant-time: fine against the coordinator (a remote party), not against code sharing the
 * CPU cache of the tab or process that splits.
 */

/** One share: the polynomials' values at `index` (1..255), for a secret split with `threshold`. */
export interface Share {
  readonly index: number;
  readonly threshold: number;
  readonly value: Uint8Array;
}

/** `random(k)` returns k uniformly random bytes; the default is WebCrypto's CSPRNG. */
export type RandomBytes = (bytes: number) => Uint8Array;

export class ShamirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShamirError';
  }
}

/** Shares are evaluations at the non-zero elements of GF(2^8). */
export const MAX_SHARES = 255;

/** getRandomValues fills at most 65 536 bytes per call. */
const RANDOM_CHUNK = 65_536;

/** k bytes from crypto.getRandomValues. */
export function cryptoRandomBytes(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += RANDOM_CHUNK) crypto.getRandomValues(out.subarray(i, Math.min(bytes, i + RANDOM_CHUNK)));
  return out;
}

// log/exp tables of GF(2^8) for the generator 3; EXP is doubled so EXP[LOG[a] + LOG[b]] needs no mod.
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0); // x · 3 = x · 2 ⊕ x, reduced
  }
}

function mul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : (EXP[(LOG[a] as number) + (LOG[b] as number)] as number);
}

function div(a: number, b: number): number {
  // b ≠ 0 always here: callers divide by differences of distinct indices.
  return a === 0 ? 0 : (EXP[(LOG[a] as number) + 255 - (LOG[b] as number)] as number);
}

function checkCount(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new ShamirError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
}

/**
 * Splits `secret` into `n` shares (indices 1..n), any `t` of which reconstruct it. t = 1 makes
 * every share a copy of the secret; t = n needs all of them.
 */
export function split(secret: Uint8Array, t: number, n: number, random: RandomBytes = cryptoRandomBytes): Share[] {
  checkCount('n (number of shares)', n, 1, MAX_SHARES);
  checkCount('t (threshold)', t, 1, MAX_SHARES);
  if (t > n) throw new ShamirError(`threshold t = ${t} exceeds the number of shares n = ${n}`);
  if (secret.length === 0) throw new ShamirError('secret is empty');
  const len = secret.length;
  // coefficients[k·len + j] is the coefficient of x^(k+1) in byte j's polynomial.
  const coefficients = random((t - 1) * len);
  if (coefficients.length !== (t - 1) * len) throw new ShamirError(`random(${(t - 1) * len}) returned ${coefficients.length} bytes`);
  const shares: Share[] = [];
  const timesX = new Uint8Array(256);
  for (let x = 1; x <= n; x++) {
    for (let b = 1; b < 256; b++) timesX[b] = mul(b, x);
    const y = new Uint8Array(len);
    // Horner from the highest coefficient down to the secret: y ← y·x ⊕ c_k.
    for (let k = t - 2; k >= 0; k--) {
      const base = k * len;
      for (let j = 0; j < len; j++) y[j] = (timesX[y[j] as number] as number) ^ (coefficients[base + j] as number);
    }
    for (let j = 0; j < len; j++) y[j] = (timesX[y[j] as number] as number) ^ (secret[j] as number);
    shares.push({ index: x, threshold: t, value: y });
  }
  return shares;
}

/** den_i = Π_{j≠i} (x_i ⊕ x_j): the Lagrange denominators, shared by every evaluation point. */
function lagrangeDenominators(xs: readonly number[]): number[] {
  return xs.map((xi, i) => xs.reduce((den, xj, j) => (j === i ? den : mul(den, xi ^ xj)), 1));
}

/**
 * Weights w_i with P(at) = Σ w_i·y_i for the polynomial through (x_i, y_i), `at` not among the x_i:
 * w_i = Π_{j≠i} (at ⊕ x_j) / den_i = Π_j (at ⊕ x_j) / ((at ⊕ x_i)·den_i).
 */
function lagrangeWeights(xs: readonly number[], dens: readonly number[], at: number): number[] {
  const all = xs.reduce((p, xj) => mul(p, at ^ xj), 1);
  return xs.map((xi, i) => div(all, mul(at ^ xi, dens[i] as number)));
}

function interpolate(points: readonly Share[], dens: readonly number[], at: number, len: number): Uint8Array {
  const weights = lagrangeWeights(
    points.map((s) => s.index),
    dens,
    at,
  );
  const out = new Uint8Array(len);
  points.forEach((share, i) => {
    const logW = LOG[weights[i] as number] as number; // weights are non-zero: `at` is not among the x_i
    const v = share.value;
    for (let j = 0; j < len; j++) {
      const b = v[j] as number;
      if (b !== 0) out[j] = (out[j] as number) ^ (EXP[(LOG[b] as number) + logW] as number);
    }
  });
  return out;
}

/**
 * Reconstructs the secret from at least `threshold` distinct shares of one split. Extra shares
 * beyond the threshold must lie on the same polynomials, else the shares are inconsistent (one was
 * corrupted or forged) and this throws rather than return a wrong secret.
 */
export function combine(shares: readonly Share[]): Uint8Array {
  const first = shares[0];
  if (first === undefined) throw new ShamirError('no shares to combine');
  const t = first.threshold;
  const len = first.value.length;
  checkCount('threshold', t, 1, MAX_SHARES);
  const seen = new Set<number>();
  for (const s of shares) {
    checkCount('share index', s.index, 1, MAX_SHARES);
    if (seen.has(s.index)) throw new ShamirError(`duplicate share index ${s.index}`);
    seen.add(s.index);
    if (s.threshold !== t) throw new ShamirError(`share ${s.index} has threshold ${s.threshold}, share ${first.index} has ${t}: not from one split`);
    if (s.value.length !== len) throw new ShamirError(`share ${s.index} has ${s.value.length} bytes, share ${first.index} has ${len}: inconsistent lengths`);
  }
  if (shares.length < t) throw new ShamirError(`too few shares: ${shares.length} given, threshold is ${t}`);
  const basis = shares.slice(0, t);
  const dens = lagrangeDenominators(basis.map((s) => s.index));
  for (const extra of shares.slice(t)) {
    const expected = interpolate(basis, dens, extra.index, len);
    if (expected.some((b, j) => b !== extra.value[j])) {
      throw new ShamirError(`inconsistent shares: share ${extra.index} is not on the polynomial through shares ${basis.map((s) => s.index).join(', ')}`);
    }
  }
  return interpolate(basis, dens, 0, len);
}

/** Wire form of a share: [index, threshold, ...value]. */
export function encodeShare(share: Share): Uint8Array {
  checkCount('share index', share.index, 1, MAX_SHARES);
  checkCount('threshold', share.threshold, 1, MAX_SHARES);
  const out = new Uint8Array(2 + share.value.length);
  out[0] = share.index;
  out[1] = share.threshold;
  out.set(share.value, 2);
  return out;
}

export function decodeShare(bytes: Uint8Array): Share {
  if (bytes.length < 3) throw new ShamirError(`an encoded share needs at least 3 bytes, got ${bytes.length}`);
  const share = { index: bytes[0] as number, threshold: bytes[1] as number, value: bytes.slice(2) };
  checkCount('share index', share.index, 1, MAX_SHARES);
  checkCount('threshold', share.threshold, 1, MAX_SHARES);
  return share;
}
