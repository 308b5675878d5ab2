import { beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { seededRandom } from '../util/csprng';
import { Rng } from '../util/random';
import {
  type HeConfig,
  type HeEncryption,
  type HeServer,
  type ServerOptions,
  ciphertextCount,
  decodeSum,
  decryptSum,
  encodeUpdate,
  encryptUpdate,
  heConfig,
  heConfigSchema,
  maxBitsFor,
  serverContext,
  weightDigits,
} from './aggregate';
import { type HeKeys, createKeyHolderKeys, publicParameters } from './ceremony';
import { DEFAULT_HE_PARAMETERS, HeError, type HeParameters } from './seal';

/** The full model of the seed spec: 569 091 parameters. */
const FULL_MODEL = 569_091;
const MB = 1_000_000;
const t = DEFAULT_HE_PARAMETERS.plain_modulus;

function randomUpdate(length: number, seed: string, spread = 0.15): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length }, () => rng.uniform(-spread, spread));
}

/** Σ w_i·clip(x_i, R) / Σ w_i in float64: what the HE mean must match. */
function plainWeightedMean(updates: readonly Float32Array[], weights: readonly number[], clip: number): Float64Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(updates[0]?.length ?? 0);
  updates.forEach((u, c) => {
    for (let i = 0; i < u.length; i++) out[i] = (out[i] as number) + (weights[c] as number) * Math.min(clip, Math.max(-clip, u[i] as number));
  });
  return out.map((v) => v / total);
}

const bytesOf = (cts: readonly Uint8Array[]) => cts.reduce((n, c) => n + c.length, 0);

describe('HE config', () => {
  it.each([
    { clients: 1, bits: 31 },
    { clients: 2, bits: 30 },
    { clients: 3, bits: 30 },
    { clients: 100, bits: 25 },
    { clients: 780, bits: 22 },
  ])('$clients clients → $bits bits, the most for which n·(2^b − 1) < t', ({ clients, bits }) => {
    expect(maxBitsFor(t, clients)).toBe(bits);
    expect(clients * (2 ** bits - 1)).toBeLessThan(t);
    expect(clients * (2 ** (bits + 1) - 1)).toBeGreaterThanOrEqual(t);
  });

  it('defaults: 100 clients, 25 bits, no compression (so the sum can go compact), the default parameters; the wire schema accepts it', () => {
    const cfg = heConfig({ vectorLength: FULL_MODEL, clip: 0.1, maxWeight: 5000 });
    expect(cfg).toMatchObject({ bits: 25, max_clients: 100, compression: 'none', params: DEFAULT_HE_PARAMETERS });
    expect(weightDigits(cfg)).toBe(1);
    expect(ciphertextCount(cfg)).toBe(139);
    expect(heConfigSchema.parse(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });

  it.each([
    { name: 'bits that can wrap mod t', opts: { bits: 26 }, error: /a sum of 100 values of 26 bits can wrap mod t = 4294828033: use at most 25 bits/ },
    { name: 'more clients than the noise allows', opts: { maxClients: 781 }, error: /a sum of 781 public-key ciphertexts may not decrypt \(noise\); these parameters allow at most 780 clients/ },
    { name: 'R = 0', opts: { clip: 0 }, error: /clip R must be a finite number > 0/ },
    { name: 'W = 0', opts: { maxWeight: 0 }, error: /max_weight must be an integer/ },
    { name: 'L = 0', opts: { vectorLength: 0 }, error: /vector_length must be an integer/ },
    { name: 'an unknown compression', opts: { compression: 'brotli' as 'zlib' }, error: /compression must be one of none, zlib, zstd/ },
  ])('rejects $name', ({ opts, error }) => {
    const run = () => heConfig({ vectorLength: 10, clip: 1, maxWeight: 10, ...opts });
    expect(run).toThrow(HeError);
    expect(run).toThrow(error);
  });
});

describe('encodeUpdate', () => {
  const cfg = heConfig({ vectorLength: 5, clip: 1, maxWeight: 2 ** 32 - 1, maxClients: 3 }); // 30 bits: W takes 2 digits

  it('lays out q(w·clip(x)), then w in base-2^b digits, then zero padding', () => {
    expect(weightDigits(cfg)).toBe(2);
    const w = cfg.max_weight; // w·clip(±2) = ±W: the ends of the grid
    const slots = encodeUpdate(Float32Array.of(-2, -1, 0, 1, 2), w, cfg, seededRandom(1));
    expect(slots.length).toBe(4096);
    const top = 2 ** 30 - 1;
    expect([slots[0], slots[1], slots[3], slots[4]]).toEqual([0, 0, top, top]);
    expect(Math.abs((slots[2] as number) - top / 2)).toBeLessThanOrEqual(1);
    expect([slots[5], slots[6]]).toEqual([w % 2 ** 30, Math.floor(w / 2 ** 30)]);
    expect(slots.subarray(7).every((v) => v === 0)).toBe(true);
  });

  it.each([
    { name: 'a wrong length', run: () => encodeUpdate(new Float32Array(4), 1, cfg), error: /the update has 4 values, the config says vector_length = 5/ },
    { name: 'weight 0', run: () => encodeUpdate(new Float32Array(5), 0, cfg), error: /the weight must be an integer in \[1, max_weight/ },
    { name: 'a fractional weight', run: () => encodeUpdate(new Float32Array(5), 1.5, cfg), error: /the weight must be an integer/ },
    { name: 'NaN', run: () => encodeUpdate(Float32Array.of(0, NaN, 0, 0, 0), 1, cfg), error: /only finite values can be quantised/ },
  ])('rejects $name', ({ run, error }) => {
    expect(run).toThrow(error);
  });
});

describe('HE aggregation', () => {
  let keys: HeKeys & { secret_key: Uint8Array };
  beforeAll(async () => {
    keys = await createKeyHolderKeys();
  });

  it('the server API takes no key: only the public parameters and ciphertext bytes', async () => {
    expectTypeOf(serverContext).parameters.toEqualTypeOf<[HeParameters, ServerOptions?]>();
    expectTypeOf<Parameters<HeServer['addCiphertexts']>>().toEqualTypeOf<[readonly (readonly Uint8Array[])[]]>();
    expectTypeOf<Parameters<ReturnType<HeServer['accumulator']>['add']>>().toEqualTypeOf<[readonly Uint8Array[]]>();
    const server = await serverContext(publicParameters(keys).params);
    expect(Object.keys(server).sort()).toEqual(['accumulator', 'addCiphertexts', 'params', 'refuseUpload']);
  });

  // Three hospitals, the full 569 091-parameter model, weights 120 / 3 000 / 7; R = 0.1 clips some values.
  const weights = [120, 3000, 7];
  const modes: { name: string; encryption: HeEncryption[]; maxBytes: number; compression: 'none' | 'zlib' }[] = [
    { name: 'all hold the secret key (seeded symmetric, uncompressed)', encryption: ['auto', 'auto', 'auto'], maxBytes: 4.6 * MB, compression: 'none' },
    { name: 'all public-key (zlib)', encryption: ['public-key', 'public-key', 'public-key'], maxBytes: 9.1 * MB, compression: 'zlib' },
    { name: 'mixed (zlib)', encryption: ['symmetric', 'public-key', 'auto'], maxBytes: 9.1 * MB, compression: 'zlib' },
  ];
  it.each(modes)('3 clients × 569 091 values, $name: the decrypted mean is the weighted mean within n·Δ/Σw; uploads ≤ 10 MB', async ({ encryption, maxBytes, compression }) => {
    const cfg = heConfig({ vectorLength: FULL_MODEL, clip: 0.1, maxWeight: 5000, compression });
    const updates = weights.map((_, c) => randomUpdate(FULL_MODEL, `he/${c}`));
    const uploads: Uint8Array[][] = [];
    for (const [c, update] of updates.entries()) {
      const mine = encryption[c] === 'public-key' ? publicParameters(keys) : keys; // a public-key client has no secret key
      uploads.push(await encryptUpdate(update, weights[c] as number, mine, cfg, { encryption: encryption[c] as HeEncryption, random: seededRandom(`q/${c}`) }));
    }
    for (const upload of uploads) {
      expect(upload.length).toBe(139);
      expect(bytesOf(upload)).toBeLessThanOrEqual(Math.min(maxBytes, 10 * MB));
    }

    const server = await serverContext(keys.params, { ciphertexts: ciphertextCount(cfg) }); // the server gets no key
    const sum = server.addCiphertexts(uploads);
    expect(sum.length).toBe(139);

    const result = await decryptSum(sum, keys, 3, cfg);
    expect(result.totalWeight).toBe(3127);
    expect(result.errorBound).toBeCloseTo((3 * (2 * 0.1 * 5000)) / (2 ** 25 - 1) / 3127, 15);
    const expected = plainWeightedMean(updates, weights, 0.1);
    let worst = 0;
    for (let i = 0; i < FULL_MODEL; i++) {
      const err = Math.abs((result.mean[i] as number) - (expected[i] as number));
      worst = Math.max(worst, err - Math.abs(expected[i] as number) * 2 ** -24); // float32 rounding of the mean
    }
    expect(worst).toBeLessThan(result.errorBound);
  });

  it('a sum of max_clients = 780 public-key uploads (the worst-case noise bound) still decrypts exactly', async () => {
    const cfg = heConfig({ vectorLength: 64, clip: 1, maxWeight: 1, maxClients: 780 });
    const server = await serverContext(keys.params);
    const acc = server.accumulator();
    const pub = publicParameters(keys);
    const x = randomUpdate(64, 'he/noise', 1);
    try {
      for (let c = 0; c < 780; c++) acc.add(await encryptUpdate(x, 1, pub, cfg, { random: seededRandom(c) }));
      expect(acc.count).toBe(780);
      const { mean, totalWeight, errorBound } = await decryptSum(acc.result(), keys, 780, cfg);
      expect(totalWeight).toBe(780);
      for (let i = 0; i < 64; i++) expect(Math.abs((mean[i] as number) - (x[i] as number))).toBeLessThan(errorBound + 1e-7);
    } finally {
      acc.dispose();
    }
  });

  describe('server accumulator and checks', () => {
    let cfg: HeConfig;
    let uploads: Uint8Array[][];
    const L = 5000; // 2 ciphertexts
    beforeAll(async () => {
      cfg = heConfig({ vectorLength: L, clip: 1, maxWeight: 100, maxClients: 10 });
      uploads = [];
      for (let c = 0; c < 3; c++) uploads.push(await encryptUpdate(randomUpdate(L, `acc/${c}`), 10 * (c + 1), keys, cfg));
    });

    it('adding as uploads arrive equals adding them at once; a bad upload leaves the running sum unchanged', async () => {
      const server = await serverContext(keys.params, { ciphertexts: 2 });
      const acc = server.accumulator();
      try {
        acc.add(uploads[0] as Uint8Array[]);
        const corrupt = [(uploads[1] as Uint8Array[])[0] as Uint8Array, ((uploads[1] as Uint8Array[])[1] as Uint8Array).subarray(0, 1000)];
        expect(() => acc.add(corrupt)).toThrow(/ciphertext 1 of upload 1 is not a valid BFV ciphertext for these parameters/);
        expect(() => acc.add([(uploads[1] as Uint8Array[])[0] as Uint8Array])).toThrow(/upload 1 has 1 ciphertexts, expected 2/);
        acc.add(uploads[1] as Uint8Array[]);
        acc.add(uploads[2] as Uint8Array[]);
        const streamed = await decryptSum(acc.result(), keys, 3, cfg);
        const batched = await decryptSum(server.addCiphertexts(uploads), keys, 3, cfg);
        expect(streamed.totalWeight).toBe(60);
        expect(Array.from(streamed.sum)).toEqual(Array.from(batched.sum));
      } finally {
        acc.dispose();
      }
      expect(() => acc.result()).toThrow(/disposed/);
    });

    it('refuses ciphertexts of other parameters', async () => {
      const other = await serverContext({ ...DEFAULT_HE_PARAMETERS, plain_modulus: 1_032_193 });
      expect(() => other.addCiphertexts(uploads)).toThrow(/ciphertext 0 of upload 0 is not a valid BFV ciphertext/);
    });

    it.each([
      { name: 'another key', run: async () => decryptSum(await sumOf(), await createKeyHolderKeys(), 3, cfg), error: /ciphertext 0 of the sum does not decrypt \(no noise budget left\)/ },
      { name: 'a client count below the summands', run: async () => decryptSum(await sumOf(), keys, 1, cfg), error: /the decrypted sum is not a sum of 1 uploads/ },
      { name: 'a missing ciphertext', run: async () => decryptSum((await sumOf()).slice(1), keys, 3, cfg), error: /the sum has 1 ciphertexts, expected 2/ },
      { name: 'no secret key', run: async () => decryptSum(await sumOf(), publicParameters(keys), 3, cfg), error: /decrypting the sum needs the HE secret key/ },
      { name: 'more clients than max_clients', run: async () => decryptSum(await sumOf(), keys, 11, cfg), error: /integer in \[1, max_clients = 10\], got 11/ },
    ])('decryption refuses $name', async ({ run, error }) => {
      await expect(run()).rejects.toThrow(HeError);
      await expect(run()).rejects.toThrow(error);
    });
    const sumOf = async () => (await serverContext(keys.params)).addCiphertexts(uploads);

    it('decodeSum refuses non-zero padding', () => {
      const slots = new Uint32Array(2 * 4096);
      slots[L] = 3; // weight digit: Σw = 3 for 3 clients
      slots[L + 7] = 1;
      expect(() => decodeSum(slots, 3, cfg)).toThrow(/padding slot 5007 is 1, not 0/);
    });

    it('encryption with keys of other parameters is refused', async () => {
      const other = heConfig({ vectorLength: L, clip: 1, maxWeight: 100, params: { ...DEFAULT_HE_PARAMETERS, plain_modulus: 1_032_193 } });
      await expect(encryptUpdate(new Float32Array(L), 1, keys, other)).rejects.toThrow(/made for other parameters/);
      await expect(encryptUpdate(new Float32Array(L), 1, publicParameters(keys), cfg, { encryption: 'symmetric' })).rejects.toThrow(/symmetric encryption needs the secret key/);
    });
  });
});
