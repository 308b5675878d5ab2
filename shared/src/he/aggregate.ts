/**
 * Aggregation under homomorphic encryption (BFV, seal.ts): hospitals encrypt their weighted,
 * quantised updates, the coordinator adds ciphertexts without any key, hospitals decrypt the sum
 * and divide by the total weight.
 *
 *   client   encryptUpdate(x, w)   q = quantize(w·clip(x, R)) on [−W·R, W·R] with b bits, then the
 *                                  digits of w; packed N per plaintext, encrypted, serialised
 *   server   serverContext(params) → addCiphertexts(uploads) or a running accumulator: slot-wise
 *                                  Σ mod t, one ciphertext per position; needs no key
 *   client   decryptSum(sum, n)    Σ q → Σ w_i·clip(x_i) (within n·Δ), Σ w → the weighted mean
 *
 * Weights and quantisation follow SecAgg (../secagg/protocol.ts): the client clips x to [−R, R],
 * multiplies by its integer weight w ∈ [1, W] (num_samples) and quantises w·clip(x) stochastically
 * (../secagg/quantize.ts, unbiased) on the grid of [−W·R, W·R] with b bits, Δ = 2·W·R/(2^b − 1).
 * A slot of the sum holds Σ_i q_i ≤ n·(2^b − 1), which must stay below t so it cannot wrap: b is
 * the largest with n_max·(2^b − 1) < t (25 bits for n_max = 100 with the default t ≈ 2^32). The
 * mean is then within n·Δ / Σw of the mean of the clipped inputs per coordinate. The weight
 * travels encrypted too, as ⌈bitlength(W) / b⌉ base-2^b digits after the L values (each digit's
 * sum obeys the same bound), so the coordinator learns neither any w_i nor Σ w.
 *
 * Layout and sizes: L + weight digits slots, ⌈(L + d) / N⌉ ciphertexts, zero padding at the end
 * (the decryptor checks the padding is zero). With the default N = 4096 and one 60-bit prime a
 * ciphertext is 2 × 4096 64-bit words, or one polynomial plus a 64-byte seed when encrypted
 * symmetrically with the secret key (SEAL's seeded serialisation); for L = 569 091 that is 139
 * ciphertexts, ≈ 4.6 MB symmetric and ≈ 9.1 MB with the public key. The sum is never seeded
 * (≈ 9.1 MB), but when every summand was (uncompressed), its first component and the summands'
 * seeds suffice to decrypt it (compact.ts: ≈ 4.6 MB); and the decryption is shared out, each
 * hospital decrypting a slice of the ciphertexts (`decryptShare`, ../fl/rounds.ts).
 */
import { z } from 'zod';
import { cryptoRandom, type RandomSource } from '../util/csprng';
import { dequantizeSum, quantizationStep, quantize, type QuantizationConfig } from '../secagg/quantize';
import type { HeKeys } from './ceremony';
import {
  DEFAULT_HE_PARAMETERS,
  HE_COMPRESSIONS,
  HeError,
  type HeCompression,
  type HeContext,
  type HeParameters,
  type SealCipherText,
  type SealLibrary,
  checkParameters,
  comprMode,
  heContext,
  loadCipherText,
  maxClientsFor,
  sealMessage,
  withDisposal,
} from './seal';

/** Upper bound on L (as SecAgg's). */
export const MAX_HE_VECTOR_LENGTH = 1 << 26;

/** The per-run parameters of HE aggregation, known to every hospital and the coordinator. */
export interface HeConfig {
  readonly params: HeParameters;
  /** R: each coordinate of an update is clipped to [−R, R] before weighting. */
  readonly clip: number;
  /** W: the largest weight (num_samples) a client may bring; w·x is quantised on [−W·R, W·R]. */
  readonly max_weight: number;
  /** b: bits per quantised coordinate of w·x; n_max·(2^b − 1) < t. */
  readonly bits: number;
  /** n_max: the most clients one sum may hold (no wrap mod t; noise: at most `maxClientsFor`). */
  readonly max_clients: number;
  /** L: the length of every update. */
  readonly vector_length: number;
  /** SEAL's compression of the serialised ciphertexts. */
  readonly compression: HeCompression;
}

export interface HeConfigOptions {
  readonly vectorLength: number;
  readonly clip: number;
  readonly maxWeight: number;
  /** Default 100. */
  readonly maxClients?: number;
  /** Default the finest grid that cannot wrap mod t for maxClients summands. */
  readonly bits?: number;
  /** Default DEFAULT_HE_PARAMETERS. */
  readonly params?: HeParameters;
  /**
   * Default 'none': zlib saves ~1% (seal.ts), and only uncompressed seeded uploads let the
   * coordinator send the sum at half size (compact.ts).
   */
  readonly compression?: HeCompression;
}

/** The largest b ≤ 32 with n·(2^b − 1) < t, or 0 when even one bit can wrap. */
export function maxBitsFor(plainModulus: number, clients: number): number {
  let b = 0;
  while (b < 32 && clients * (2 ** (b + 1) - 1) < plainModulus) b++;
  return b;
}

/** A checked config with defaults filled in (see HeConfigOptions). */
export function heConfig(opts: HeConfigOptions): HeConfig {
  const params = opts.params ?? DEFAULT_HE_PARAMETERS;
  checkParameters(params);
  const maxClients = opts.maxClients ?? 100;
  const cfg: HeConfig = {
    params,
    clip: opts.clip,
    max_weight: opts.maxWeight,
    bits: opts.bits ?? maxBitsFor(params.plain_modulus, maxClients),
    max_clients: maxClients,
    vector_length: opts.vectorLength,
    compression: opts.compression ?? 'none',
  };
  checkHeConfig(cfg);
  return cfg;
}

/** Checks shapes, that n_max sums cannot wrap mod t, and that their noise stays decryptable. */
export function checkHeConfig(cfg: HeConfig): void {
  checkParameters(cfg.params);
  const int = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new HeError(`HE config: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int('bits', cfg.bits, 1, 32);
  int('max_weight', cfg.max_weight, 1, 0xffff_ffff);
  int('vector_length', cfg.vector_length, 1, MAX_HE_VECTOR_LENGTH);
  const noiseLimit = maxClientsFor(cfg.params);
  int('max_clients', cfg.max_clients, 1, 2 ** 31);
  if (cfg.max_clients > noiseLimit) {
    throw new HeError(`HE config: a sum of ${cfg.max_clients} public-key ciphertexts may not decrypt (noise); these parameters allow at most ${noiseLimit} clients`);
  }
  if (!Number.isFinite(cfg.clip) || cfg.clip <= 0) throw new HeError(`HE config: clip R must be a finite number > 0, got ${cfg.clip}`);
  if (!Number.isFinite(cfg.clip * cfg.max_weight)) throw new HeError(`HE config: the quantisation range W·R = ${cfg.max_weight}·${cfg.clip} is not finite`);
  if (cfg.max_clients * (2 ** cfg.bits - 1) >= cfg.params.plain_modulus) {
    throw new HeError(
      `HE config: a sum of ${cfg.max_clients} values of ${cfg.bits} bits can wrap mod t = ${cfg.params.plain_modulus}: use at most ${maxBitsFor(cfg.params.plain_modulus, cfg.max_clients)} bits`,
    );
  }
  if (!HE_COMPRESSIONS.includes(cfg.compression)) throw new HeError(`HE config: compression must be one of ${HE_COMPRESSIONS.join(', ')}, got ${String(cfg.compression)}`);
}

const primeString = z.string().regex(/^[1-9][0-9]{0,18}$/);
export const heParametersSchema = z.object({
  scheme: z.literal('bfv'),
  poly_modulus_degree: z.number().int(),
  coeff_modulus: z.array(primeString).min(1).max(64),
  plain_modulus: z.number().int().min(2).max(0xffff_ffff),
});
export const heConfigSchema = z.object({
  params: heParametersSchema,
  clip: z.number().positive(),
  max_weight: z.number().int().min(1).max(0xffff_ffff),
  bits: z.number().int().min(1).max(32),
  max_clients: z.number().int().min(1),
  vector_length: z.number().int().min(1).max(MAX_HE_VECTOR_LENGTH),
  compression: z.enum(['none', 'zlib', 'zstd']),
});

/** The quantiser of w·clip(x): range W·R, b bits. */
export function heQuantization(cfg: HeConfig): QuantizationConfig {
  return { clip: cfg.clip * cfg.max_weight, bits: cfg.bits };
}

/** d: base-2^b digits that carry a weight up to W. */
export function weightDigits(cfg: HeConfig): number {
  const weightBits = 32 - Math.clz32(cfg.max_weight); // bit length of W (W < 2^32)
  return Math.ceil(weightBits / cfg.bits);
}

/** ⌈(L + d) / N⌉: ciphertexts per upload (and in the sum). */
export function ciphertextCount(cfg: HeConfig): number {
  return Math.ceil((cfg.vector_length + weightDigits(cfg)) / cfg.params.poly_modulus_degree);
}

/** The per-coordinate bound on |mean − Σ w_i·clip(x_i) / Σ w_i| for n clients of total weight Σw: n·Δ / Σw. */
export function meanErrorBound(cfg: HeConfig, clients: number, totalWeight: number): number {
  return (clients * quantizationStep(heQuantization(cfg))) / totalWeight;
}

// ---------------------------------------------------------------------------------------------
// Client: encrypt.

/** How a client encrypts: 'auto' is symmetric when it holds the secret key, else public-key. */
export type HeEncryption = 'auto' | 'symmetric' | 'public-key';

export interface EncryptOptions {
  /** Randomness of the stochastic rounding (the CSPRNG by default). */
  readonly random?: RandomSource;
  readonly encryption?: HeEncryption;
}

function checkClients(clients: number, cfg: HeConfig): void {
  if (!Number.isInteger(clients) || clients < 1 || clients > cfg.max_clients) {
    throw new HeError(`the number of clients in a sum must be an integer in [1, max_clients = ${cfg.max_clients}], got ${clients}`);
  }
}

/** The slots a client contributes: quantize(w·clip(x, R)), then w in base-2^b digits, then zeros. */
export function encodeUpdate(update: Float32Array | Float64Array, weight: number, cfg: HeConfig, random: RandomSource = cryptoRandom): Uint32Array {
  checkHeConfig(cfg);
  if (update.length !== cfg.vector_length) throw new HeError(`the update has ${update.length} values, the config says vector_length = ${cfg.vector_length}`);
  if (!Number.isInteger(weight) || weight < 1 || weight > cfg.max_weight) throw new HeError(`the weight must be an integer in [1, max_weight = ${cfg.max_weight}], got ${weight}`);
  const r = cfg.clip;
  const weighted = new Float64Array(update.length);
  for (let i = 0; i < update.length; i++) {
    const v = update[i] as number;
    weighted[i] = weight * (v > r ? r : v < -r ? -r : v); // NaN passes through; quantize rejects it
  }
  const out = new Uint32Array(ciphertextCount(cfg) * cfg.params.poly_modulus_degree);
  out.set(quantize(weighted, heQuantization(cfg), random));
  const base = 2 ** cfg.bits;
  for (let j = 0, w = weight; j < weightDigits(cfg); j++, w = Math.floor(w / base)) out[cfg.vector_length + j] = w % base;
  return out;
}

/**
 * A client's upload: its update x (length L) with weight w (num_samples), clipped, weighted,
 * quantised, packed and encrypted, one serialised ciphertext per N slots. Encrypts symmetrically
 * (seeded: half the bytes) when `keys` has the secret key, with the public key otherwise.
 */
export async function encryptUpdate(update: Float32Array | Float64Array, weight: number, keys: HeKeys, cfg: HeConfig, opts: EncryptOptions = {}): Promise<Uint8Array[]> {
  checkKeysMatchConfig(keys, cfg);
  const slots = encodeUpdate(update, weight, cfg, opts.random);
  const mode = opts.encryption ?? 'auto';
  const symmetric = mode === 'symmetric' || (mode === 'auto' && keys.secret_key !== undefined);
  if (symmetric && !keys.secret_key) throw new HeError('symmetric encryption needs the secret key; this client has only the public key');
  const ctx = await heContext(cfg.params);
  const lib = ctx.seal;
  const compression = comprMode(lib, cfg.compression);
  return withDisposal((owned) => {
    const publicKey = lib.PublicKey();
    owned.push(publicKey);
    loadKey(lib, () => publicKey.loadArray(ctx.context, keys.public_key), 'public');
    let encryptor;
    if (symmetric) {
      const secretKey = lib.SecretKey();
      owned.push(secretKey);
      loadKey(lib, () => secretKey.loadArray(ctx.context, keys.secret_key as Uint8Array), 'secret');
      encryptor = lib.Encryptor(ctx.context, publicKey, secretKey);
    } else {
      encryptor = lib.Encryptor(ctx.context, publicKey);
    }
    owned.push(encryptor);
    const n = ctx.slots;
    const out: Uint8Array[] = [];
    for (let k = 0; k < slots.length / n; k++) {
      const plain = ctx.encoder.encode(slots.subarray(k * n, (k + 1) * n));
      if (!plain) throw new HeError('BatchEncoder.encode returned nothing');
      try {
        if (symmetric) {
          const seeded = encryptor.encryptSymmetricSerializable(plain);
          try {
            out.push(seeded.saveArray(compression));
          } finally {
            seeded.delete();
          }
        } else {
          const cipher = encryptor.encrypt(plain);
          if (!cipher) throw new HeError('Encryptor.encrypt returned nothing');
          try {
            out.push(cipher.saveArray(compression));
          } finally {
            cipher.delete();
          }
        }
      } finally {
        plain.delete();
      }
    }
    return out;
  });
}

function loadKey(lib: SealLibrary, load: () => void, which: 'public' | 'secret'): void {
  try {
    load();
  } catch (err) {
    throw new HeError(`the HE ${which} key does not load for these parameters: ${sealMessage(lib, err)}`);
  }
}

function checkKeysMatchConfig(keys: HeKeys, cfg: HeConfig): void {
  const a = keys.params;
  const b = cfg.params;
  const same = a.scheme === b.scheme && a.poly_modulus_degree === b.poly_modulus_degree && a.plain_modulus === b.plain_modulus && a.coeff_modulus.join() === b.coeff_modulus.join();
  if (!same) throw new HeError('the HE keys were made for other parameters than the config names');
}

// ---------------------------------------------------------------------------------------------
// Server: add, keyless.

/** A running slot-wise sum of uploads. Holds one set of ciphertexts in wasm memory; dispose it. */
export interface HeAccumulator {
  /** How many uploads were added. */
  readonly count: number;
  /** Adds one client's upload; all-or-nothing (an invalid ciphertext leaves the sum unchanged). */
  add(upload: readonly Uint8Array[]): void;
  /** The serialised sum, one ciphertext per position. */
  result(): Uint8Array[];
  dispose(): void;
}

/** The coordinator's side: it can add ciphertexts, and holds no key (none is ever passed to it). */
export interface HeServer {
  readonly params: HeParameters;
  /** The slot-wise sum of the clients' uploads (each a list of serialised ciphertexts). */
  addCiphertexts(uploads: readonly (readonly Uint8Array[])[]): Uint8Array[];
  /** A running sum, to add uploads as they arrive instead of holding them all. */
  accumulator(): HeAccumulator;
  /** Why one upload cannot be added (wrong count, a ciphertext SEAL refuses); undefined when it can. */
  refuseUpload(upload: readonly Uint8Array[]): string | undefined;
}

export interface ServerOptions {
  /** Expected ciphertexts per upload (`ciphertextCount(cfg)`); default: whatever the first upload has. */
  readonly ciphertexts?: number;
  /** Compression of the returned sum; default 'zlib'. */
  readonly compression?: HeCompression;
}

/** The keyless server context: the public parameters are all it needs to deserialise and add. */
export async function serverContext(params: HeParameters, opts: ServerOptions = {}): Promise<HeServer> {
  const ctx = await heContext(params);
  const compression = opts.compression ?? 'zlib';
  if (opts.ciphertexts !== undefined && (!Number.isInteger(opts.ciphertexts) || opts.ciphertexts < 1)) throw new HeError(`ciphertexts per upload must be an integer ≥ 1, got ${opts.ciphertexts}`);
  const accumulator = () => new Accumulator(ctx, compression, opts.ciphertexts);
  return {
    params,
    accumulator,
    refuseUpload(upload) {
      if (opts.ciphertexts !== undefined && upload.length !== opts.ciphertexts) return `${upload.length} ciphertexts, expected ${opts.ciphertexts}`;
      for (const [k, bytes] of upload.entries()) {
        try {
          loadCipherText(ctx, bytes, `ciphertext ${k}`).delete();
        } catch (err) {
          return (err as Error).message;
        }
      }
      return undefined;
    },
    addCiphertexts(uploads) {
      if (uploads.length === 0) throw new HeError('nothing to add: no uploads');
      const acc = accumulator();
      try {
        for (const upload of uploads) acc.add(upload);
        return acc.result();
      } finally {
        acc.dispose();
      }
    },
  };
}

class Accumulator implements HeAccumulator {
  private sum: SealCipherText[] | undefined;
  private added = 0;
  private disposed = false;

  constructor(
    private readonly ctx: HeContext,
    private readonly compression: HeCompression,
    private expected: number | undefined,
  ) {}

  get count(): number {
    return this.added;
  }

  add(upload: readonly Uint8Array[]): void {
    this.checkLive();
    const index = this.added;
    if (this.expected !== undefined && upload.length !== this.expected) {
      throw new HeError(`upload ${index} has ${upload.length} ciphertexts, expected ${this.expected}`);
    }
    if (upload.length === 0) throw new HeError(`upload ${index} has no ciphertexts`);
    const loaded: SealCipherText[] = [];
    try {
      for (const [k, bytes] of upload.entries()) loaded.push(loadCipherText(this.ctx, bytes, `ciphertext ${k} of upload ${index}`));
    } catch (err) {
      for (const ct of loaded) ct.delete();
      throw err;
    }
    if (!this.sum) {
      this.sum = loaded;
      this.expected = upload.length;
    } else {
      const sum = this.sum;
      try {
        for (const [k, ct] of loaded.entries()) this.ctx.evaluator.add(sum[k] as SealCipherText, ct, sum[k]);
      } finally {
        for (const ct of loaded) ct.delete();
      }
    }
    this.added++;
  }

  result(): Uint8Array[] {
    this.checkLive();
    if (!this.sum) throw new HeError('nothing to add: no uploads');
    const mode = comprMode(this.ctx.seal, this.compression);
    return this.sum.map((ct) => ct.saveArray(mode));
  }

  dispose(): void {
    for (const ct of this.sum ?? []) ct.delete();
    this.sum = undefined;
    this.disposed = true;
  }

  private checkLive(): void {
    if (this.disposed) throw new HeError('the accumulator was disposed');
  }
}

// ---------------------------------------------------------------------------------------------
// Client: decrypt.

/** What a hospital recovers from the sum. */
export interface HeSum {
  /** Σ w_i·clip(x_i) / Σ w_i: the weighted mean (float32, as models hold weights). */
  readonly mean: Float32Array;
  /** Σ w_i·clip(x_i), within n·Δ per coordinate. */
  readonly sum: Float64Array;
  /** Σ w_i, exact. */
  readonly totalWeight: number;
  readonly clients: number;
  /** |mean − true weighted mean of the clipped updates| < errorBound per coordinate (n·Δ / Σw). */
  readonly errorBound: number;
}

/**
 * Decrypts the sum of `clients` uploads with the secret key and turns it into the weighted mean.
 * Throws HeError when a ciphertext does not decrypt (another secret key, more summands than the
 * noise allows, corruption) or decrypts to something no sum of `clients` uploads can be.
 */
export async function decryptSum(sum: readonly Uint8Array[], keys: HeKeys, clients: number, cfg: HeConfig): Promise<HeSum> {
  checkClients(clients, cfg);
  const expected = ciphertextCount(cfg);
  if (sum.length !== expected) throw new HeError(`the sum has ${sum.length} ciphertexts, expected ${expected} for vector_length ${cfg.vector_length}`);
  return decodeSum(await decryptShare(sum.map((c) => [c]), 0, keys, cfg), clients, cfg);
}

/**
 * A hospital's share of the decryption: ciphertexts `first` … `first + parts.length − 1` of the
 * sum, each given as the serialised ciphertexts that add up to it (the sum itself, or the compact
 * form of compact.ts: Σ c0 under one seed plus zeros under each other seed) → their slots
 * (N per ciphertext), still quantised. Throws HeError as decryptSum does.
 */
export async function decryptShare(parts: readonly (readonly Uint8Array[])[], first: number, keys: HeKeys, cfg: HeConfig): Promise<Uint32Array> {
  checkHeConfig(cfg);
  checkKeysMatchConfig(keys, cfg);
  const secret = keys.secret_key;
  if (!secret) throw new HeError('decrypting the sum needs the HE secret key (the key ceremony gives it to every hospital)');
  const total = ciphertextCount(cfg);
  if (!Number.isInteger(first) || first < 0 || parts.length < 1 || first + parts.length > total) {
    throw new HeError(`ciphertexts ${first}…${first + parts.length - 1} are not within the sum's ${total} for vector_length ${cfg.vector_length}`);
  }
  const ctx = await heContext(cfg.params);
  const lib = ctx.seal;
  const n = ctx.slots;
  const slots = new Uint32Array(parts.length * n);
  withDisposal((owned) => {
    const secretKey = lib.SecretKey();
    owned.push(secretKey);
    loadKey(lib, () => secretKey.loadArray(ctx.context, secret), 'secret');
    const decryptor = lib.Decryptor(ctx.context, secretKey);
    owned.push(decryptor);
    for (const [j, blobs] of parts.entries()) {
      const k = first + j;
      if (blobs.length === 0) throw new HeError(`ciphertext ${k} of the sum: no parts`);
      const ct = loadCipherText(ctx, blobs[0] as Uint8Array, `ciphertext ${k} of the sum`);
      try {
        for (const [i, blob] of blobs.entries()) {
          if (i === 0) continue;
          const part = loadCipherText(ctx, blob, `part ${i} of ciphertext ${k} of the sum`);
          try {
            ctx.evaluator.add(ct, part, ct);
          } finally {
            part.delete();
          }
        }
        if (decryptor.invariantNoiseBudget(ct) <= 0) {
          throw new HeError(`ciphertext ${k} of the sum does not decrypt (no noise budget left): it was encrypted under another key, sums more than the noise allows, or was corrupted`);
        }
        const plain = decryptor.decrypt(ct);
        if (!plain) throw new HeError('Decryptor.decrypt returned nothing');
        try {
          slots.set(ctx.encoder.decode(plain, false), j * n);
        } finally {
          plain.delete();
        }
      } finally {
        ct.delete();
      }
    }
  });
  return slots;
}

/**
 * Why decrypted slots starting at slot `offset` of the sum cannot belong to a sum of `clients`
 * uploads: a value slot above n·(2^b − 1), or a padding slot that is not zero. Undefined when fine.
 */
export function refuseSlots(slots: Uint32Array, offset: number, clients: number, cfg: HeConfig): string | undefined {
  const used = cfg.vector_length + weightDigits(cfg);
  const top = clients * (2 ** cfg.bits - 1);
  for (let j = 0; j < slots.length; j++) {
    const i = offset + j;
    const v = slots[j] as number;
    if (i < used && v > top) return `slot ${i} holds ${v}, above ${clients} × (2^${cfg.bits} − 1)`;
    if (i >= used && v !== 0) return `padding slot ${i} is ${v}, not 0`;
  }
  return undefined;
}

/** The decrypted slots of a sum of `clients` uploads → the weighted mean (see HeSum). */
export function decodeSum(slots: Uint32Array, clients: number, cfg: HeConfig): HeSum {
  checkClients(clients, cfg);
  const L = cfg.vector_length;
  const d = weightDigits(cfg);
  const notASum = (what: string) => new HeError(`the decrypted sum is not a sum of ${clients} uploads: ${what} (a wrong client count, a wrong key, or tampering)`);
  const refused = refuseSlots(slots, 0, clients, cfg);
  if (refused) throw notASum(refused);
  let totalWeight = 0;
  for (let j = d - 1; j >= 0; j--) totalWeight = totalWeight * 2 ** cfg.bits + (slots[L + j] as number);
  if (totalWeight < clients || totalWeight > clients * cfg.max_weight) throw notASum(`the total weight ${totalWeight} is outside [${clients}, ${clients} × ${cfg.max_weight}]`);
  const sum = dequantizeSum(slots.subarray(0, L), clients, heQuantization(cfg));
  const mean = new Float32Array(L);
  for (let i = 0; i < L; i++) mean[i] = (sum[i] as number) / totalWeight;
  return { mean, sum, totalWeight, clients, errorBound: meanErrorBound(cfg, clients, totalWeight) };
}
