/**
 * Microsoft SEAL (node-seal 6.0.3, WebAssembly) for the homomorphic-encryption mode of secure
 * aggregation: loading it in any host, the BFV parameters, and one cached SEAL context per
 * parameter set.
 *
 * Loading. `import('node-seal')` resolves per host through node-seal's package.json (no
 * "exports" map): Node, and vitest (which leaves node_modules to Node), take `main`, the Node UMD
 * build `throws_wasm_node_umd.js`; Vite 8 takes the `browser` field, the web UMD build
 * `throws_wasm_web_umd.js`, for pages and ES-module workers alike (measured in Chromium; its
 * `require("url")` branch, which Vite reports as externalised, runs only where there is neither a
 * document nor a location). Aliasing 'node-seal' to 'node-seal/throws_wasm_web_es.js' in a Vite
 * config bundles the web ES build instead (also measured working, no warning). Every build embeds
 * the ~1.4 MB wasm binary as base64 (~420 kB gzip), so there is no .wasm asset to serve; the
 * import is dynamic, so the chunk loads on first use only. The "throws" builds refuse transparent
 * ciphertexts (ones that decrypt without the key). A host may register another build with
 * `setSealLoader` before the first use; node-seal 7 needs WasmGC, absent in Node 20.
 *
 * Scheme and parameters (DEFAULT_HE_PARAMETERS). BFV with batching: a plaintext is a vector of
 * N = 4096 integers mod t, added slot-wise by adding ciphertexts, so a quantised update of L
 * values fills ⌈L / N⌉ ciphertexts.
 *
 * - Coefficient modulus q: one 60-bit prime (the largest below 2^60 that is ≡ 1 mod 2N, which is
 *   what SEAL's `CoeffModulus.Create(4096, [60])` picks). Summation needs no multiplication, so no
 *   relinearisation and no special key-switching prime; every coefficient is stored as a 64-bit
 *   word, so a ciphertext costs 64 bits per slot and component whatever q ≤ 2^60 is, and the
 *   payload per slot is capped by t ≤ 2^60 (SEAL's limit): one 60-bit prime is the cheapest chain.
 * - Plain modulus t = 4 294 828 033: the largest prime below 2^32 that is ≡ 1 mod 2N
 *   (`PlainModulus.Batching(4096, 32)`), so slots fit the fast Uint32 batch encoder and a slot
 *   holds a sum of up to n·(2^b − 1) < t quantised values (aggregate.ts picks b from n_max).
 * - Security: log2 q = 60 against the HE standard's (Albrecht et al. 2018; SEAL's
 *   `CoeffModulus.MaxBitCount`) limits for N = 4096 of 109 bits at 128-bit, 75 at 192-bit and 58
 *   at 256-bit classical security: ≥ 192-bit. Contexts are created with SEAL's tc128 check.
 * - Noise: a fresh public-key encryption carries noise of at most (2N + 1)·B (B = 21, SEAL's
 *   centred-binomial bound), a symmetric one at most B; decryption of a sum of n ciphertexts is
 *   correct while the total stays below q / (2t) ≈ 1.3·10^8, so up to `maxClientsFor` = 780
 *   public-key encryptions (worst case, not in expectation) can be summed.
 */
import type sealFactory from 'node-seal';

/** The node-seal library object (what `await SEAL()` gives). */
export type SealLibrary = Awaited<ReturnType<typeof sealFactory>>;
export type SealContext = ReturnType<SealLibrary['Context']>;
export type SealCipherText = ReturnType<SealLibrary['CipherText']>;
export type SealBatchEncoder = ReturnType<SealLibrary['BatchEncoder']>;
export type SealEvaluator = ReturnType<SealLibrary['Evaluator']>;
/** Produces the library; the default imports 'node-seal' (the host's build, see above). */
export type SealLoader = () => Promise<SealLibrary>;

/** A homomorphic-encryption parameter, key, ciphertext or protocol check failed. */
export class HeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeError';
  }
}

/**
 * The message of an error SEAL threw: node-seal wraps most calls with `Exception.safe`, but a C++
 * exception escaping elsewhere (e.g. the Context constructor) arrives as a bare pointer number.
 */
export function sealMessage(seal: SealLibrary, err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return seal.Exception.safe(err as number).message;
  } catch {
    return String(err);
  }
}

const defaultLoader: SealLoader = async () => {
  const mod = await import('node-seal');
  // Node's ESM view of the UMD build is { default: factory }; bundlers may add one more level.
  const factory = (mod.default as unknown as { default?: typeof mod.default }).default ?? mod.default;
  return factory();
};

let loader: SealLoader = defaultLoader;
let library: Promise<SealLibrary> | undefined;

/** Registers how to load node-seal (e.g. a deep import of another build); only before the first `loadSeal`. */
export function setSealLoader(next: SealLoader): void {
  if (library) throw new HeError('node-seal is already loaded: register a loader before the first use of the HE functions');
  loader = next;
}

/** The node-seal library, loaded (and the wasm instantiated) once per realm. */
export function loadSeal(): Promise<SealLibrary> {
  library ??= loader().catch((err: unknown) => {
    library = undefined;
    throw new HeError(`could not load node-seal (Microsoft SEAL, WebAssembly): ${(err as Error).message ?? String(err)}`);
  });
  return library;
}

// ---------------------------------------------------------------------------------------------
// Parameters.

/**
 * The public BFV parameters, as they travel (JSON-safe: the coefficient primes exceed 2^53, so
 * they are decimal strings). Every party builds the same SEAL context from them.
 */
export interface HeParameters {
  readonly scheme: 'bfv';
  /** N: ring dimension, and the number of slots per ciphertext. */
  readonly poly_modulus_degree: number;
  /** The primes of the coefficient modulus q, in decimal. */
  readonly coeff_modulus: readonly string[];
  /** t: a prime ≡ 1 mod 2N below 2^32 (batching with the Uint32 encoder). */
  readonly plain_modulus: number;
}

/** BFV, N = 4096, q = one 60-bit prime, t = a 32-bit batching prime: see the file comment. */
export const DEFAULT_HE_PARAMETERS: HeParameters = Object.freeze({
  scheme: 'bfv',
  poly_modulus_degree: 4096,
  coeff_modulus: Object.freeze(['1152921504606830593']),
  plain_modulus: 4_294_828_033,
});

/** SEAL's centred-binomial noise bound (σ = 3.2, 42 coin flips: |e| ≤ 21). */
export const NOISE_BOUND = 21;

const POLY_DEGREES = [1024, 2048, 4096, 8192, 16384, 32768];

/** Shape checks that need no SEAL; the context checks the rest (primality, NTT-friendliness, security). */
export function checkParameters(params: HeParameters): void {
  if (params.scheme !== 'bfv') throw new HeError(`HE parameters: only the BFV scheme is supported, got ${String(params.scheme)}`);
  const n = params.poly_modulus_degree;
  if (!POLY_DEGREES.includes(n)) throw new HeError(`HE parameters: poly_modulus_degree must be one of ${POLY_DEGREES.join(', ')}, got ${n}`);
  if (params.coeff_modulus.length < 1 || params.coeff_modulus.length > 64) throw new HeError(`HE parameters: coeff_modulus must list 1 to 64 primes, got ${params.coeff_modulus.length}`);
  for (const p of params.coeff_modulus) {
    if (!/^[1-9][0-9]{0,18}$/.test(p) || BigInt(p) >= 1n << 61n) throw new HeError(`HE parameters: coeff_modulus entries must be decimal integers below 2^61, got ${p}`);
  }
  const t = params.plain_modulus;
  if (!Number.isInteger(t) || t < 2 || t >= 2 ** 32) throw new HeError(`HE parameters: plain_modulus must be an integer in [2, 2^32), got ${t}`);
  if (t % (2 * n) !== 1) throw new HeError(`HE parameters: plain_modulus ${t} is not ≡ 1 mod 2N = ${2 * n}: batching needs it`);
}

/** log2 q: the bits of the coefficient modulus (what the security tables bound). */
export function coeffModulusBits(params: HeParameters): number {
  return params.coeff_modulus.reduce((bits, p) => bits + Math.log2(Number(p)), 0);
}

/** q as a float (for noise bounds; exact enough at 2^-52 relative error). */
function coeffModulusValue(params: HeParameters): number {
  return params.coeff_modulus.reduce((q, p) => q * Number(p), 1);
}

/**
 * The most fresh encryptions whose sum still decrypts correctly in the worst case, assuming all
 * are public-key encryptions (noise ≤ (2N + 1)·B + 1 each, the +1 from rounding q·m/t): the
 * largest n with n·((2N + 1)·B + 1) < q / (2t). Symmetric encryptions add only B + 1 each.
 */
export function maxClientsFor(params: HeParameters): number {
  checkParameters(params);
  const perClient = (2 * params.poly_modulus_degree + 1) * NOISE_BOUND + 1;
  const limit = coeffModulusValue(params) / (2 * params.plain_modulus);
  return Math.max(0, Math.ceil(limit / perClient) - 1);
}

/**
 * Parameters from bit sizes, as SEAL picks the primes: `CoeffModulus.Create(N, coeffBits)` (the
 * largest primes of those sizes ≡ 1 mod 2N) and `PlainModulus.Batching(N, plainBits)`.
 */
export async function heParameters(polyModulusDegree: number, coeffBits: readonly number[], plainBits: number): Promise<HeParameters> {
  const seal = await loadSeal();
  let coeff: ReturnType<SealLibrary['CoeffModulus']['Create']> | undefined;
  let plain: ReturnType<SealLibrary['PlainModulus']['Batching']> | undefined;
  try {
    coeff = seal.CoeffModulus.Create(polyModulusDegree, Int32Array.from(coeffBits));
    plain = seal.PlainModulus.Batching(polyModulusDegree, plainBits);
    const primes = Array.from(coeff.toArray() as BigUint64Array, (p) => p.toString());
    const params: HeParameters = { scheme: 'bfv', poly_modulus_degree: polyModulusDegree, coeff_modulus: primes, plain_modulus: Number(plain.value) };
    checkParameters(params);
    return params;
  } catch (err) {
    if (err instanceof HeError) throw err;
    throw new HeError(`SEAL cannot make BFV parameters for N = ${polyModulusDegree}, coefficient bits [${coeffBits.join(', ')}], plain bits ${plainBits}: ${sealMessage(seal, err)}`);
  } finally {
    coeff?.delete();
    plain?.delete();
  }
}

/** The security levels SEAL knows, in bits (classical, HE standard tables). */
export type SecurityBits = 128 | 192 | 256;

type SealSecurityLevel = SealLibrary['SecurityLevel']['tc128'];

function levelOf(seal: SealLibrary, bits: SecurityBits): SealSecurityLevel {
  return bits === 128 ? seal.SecurityLevel.tc128 : bits === 192 ? seal.SecurityLevel.tc192 : seal.SecurityLevel.tc256;
}

function encryptionParameters(seal: SealLibrary, params: HeParameters): ReturnType<SealLibrary['EncryptionParameters']> {
  checkParameters(params);
  const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
  const primes = seal.Vector();
  const moduli = params.coeff_modulus.map((p) => seal.Modulus(BigInt(p)));
  const plain = seal.Modulus(BigInt(params.plain_modulus));
  try {
    parms.setPolyModulusDegree(params.poly_modulus_degree);
    // node-seal builds a vector<Modulus> from an array of Modulus instances (its typings say a typed array).
    primes.from(moduli.map((m) => m.instance) as unknown as BigUint64Array, 'Modulus');
    parms.setCoeffModulus(primes);
    parms.setPlainModulus(plain);
    return parms;
  } catch (err) {
    parms.delete();
    throw new HeError(`SEAL rejected the HE parameters: ${sealMessage(seal, err)}`);
  } finally {
    primes.delete();
    for (const m of moduli) m.delete();
    plain.delete();
  }
}

function newContext(seal: SealLibrary, parms: ReturnType<SealLibrary['EncryptionParameters']>, level: SealSecurityLevel): SealContext {
  try {
    return seal.Context(parms, true, level);
  } catch (err) {
    throw new HeError(`SEAL rejected the HE parameters: ${sealMessage(seal, err)}`);
  }
}

/** Whether SEAL accepts `params` at the given security level (its HE-standard check). */
export async function meetsSecurityLevel(params: HeParameters, bits: SecurityBits): Promise<boolean> {
  const seal = await loadSeal();
  const parms = encryptionParameters(seal, params);
  const context = newContext(seal, parms, levelOf(seal, bits));
  try {
    return context.parametersSet();
  } finally {
    context.delete();
    parms.delete();
  }
}

/** The highest level SEAL accepts `params` at, or 0 when not even 128-bit. */
export async function securityLevelOf(params: HeParameters): Promise<SecurityBits | 0> {
  let best: SecurityBits | 0 = 0;
  for (const bits of [128, 192, 256] as const) if (await meetsSecurityLevel(params, bits)) best = bits;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Contexts.

/** A SEAL context with what the HE functions share: batch encoder and evaluator. Keyless. */
export interface HeContext {
  readonly seal: SealLibrary;
  readonly params: HeParameters;
  readonly context: SealContext;
  readonly encoder: SealBatchEncoder;
  readonly evaluator: SealEvaluator;
  /** N: values per ciphertext. */
  readonly slots: number;
}

const contexts = new Map<string, Promise<HeContext>>();

/** The canonical JSON of the parameters: the cache key and the bytes the ceremony binds. */
export function parametersFingerprint(params: HeParameters): string {
  return JSON.stringify([params.scheme, params.poly_modulus_degree, [...params.coeff_modulus], params.plain_modulus]);
}

async function createContext(params: HeParameters): Promise<HeContext> {
  const seal = await loadSeal();
  const parms = encryptionParameters(seal, params);
  try {
    const context = newContext(seal, parms, seal.SecurityLevel.tc128);
    if (!context.parametersSet()) {
      const bits = coeffModulusBits(params);
      const max = seal.CoeffModulus.MaxBitCount(params.poly_modulus_degree, seal.SecurityLevel.tc128);
      context.delete();
      throw new HeError(
        `SEAL rejects the HE parameters at 128-bit security: log2 q = ${bits.toFixed(1)} (at most ${max} for N = ${params.poly_modulus_degree}), and every prime must be ≡ 1 mod 2N`,
      );
    }
    if (!context.firstContextData.qualifiers.usingBatching) {
      context.delete();
      throw new HeError(`plain_modulus ${params.plain_modulus} does not allow batching for N = ${params.poly_modulus_degree} (it must be a prime ≡ 1 mod 2N)`);
    }
    const encoder = seal.BatchEncoder(context);
    const evaluator = seal.Evaluator(context);
    return { seal, params, context, encoder, evaluator, slots: encoder.slotCount };
  } finally {
    parms.delete();
  }
}

/**
 * The context for `params`, created once per realm (SEAL contexts hold no key, are small, and are
 * shared by every encryption, sum and decryption with those parameters; they are never freed).
 */
export function heContext(params: HeParameters): Promise<HeContext> {
  const key = parametersFingerprint(params);
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = createContext(params);
    contexts.set(key, ctx);
    ctx.catch(() => contexts.delete(key));
  }
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// Serialisation.

/**
 * SEAL's compression of serialised objects. Ciphertext coefficients are uniform mod q, so for a
 * 60-bit q neither compresses them by more than ~1% (measured: zlib −0.9%, zstd +0.03%); zlib is
 * the default as the cheap 1%.
 */
export type HeCompression = 'none' | 'zlib' | 'zstd';
export const HE_COMPRESSIONS: readonly HeCompression[] = ['none', 'zlib', 'zstd'];

export function comprMode(seal: SealLibrary, compression: HeCompression): SealLibrary['ComprModeType']['zlib'] {
  return seal.ComprModeType[compression];
}

/** Runs `fn` with the objects it allocates in `owned`, then deletes them (wasm memory is not garbage collected). */
export function withDisposal<T>(fn: (owned: { delete(): void }[]) => T): T {
  const owned: { delete(): void }[] = [];
  try {
    return fn(owned);
  } finally {
    for (const o of owned.reverse()) o.delete();
  }
}

/** Deserialises a ciphertext, as any untrusted input: SEAL checks it is valid for the context. */
export function loadCipherText(ctx: HeContext, bytes: Uint8Array, what: string): SealCipherText {
  const ct = ctx.seal.CipherText();
  try {
    ct.loadArray(ctx.context, bytes);
  } catch (err) {
    ct.delete();
    throw new HeError(`${what} is not a valid BFV ciphertext for these parameters: ${sealMessage(ctx.seal, err)}`);
  }
  if (ct.size !== 2) {
    ct.delete();
    throw new HeError(`${what} has ${ct.size} polynomials, expected a fresh or summed ciphertext of 2`);
  }
  return ct;
}
