import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../util/csprng';
import { type HeConfig, ciphertextCount, decryptShare, encryptUpdate, heConfig, refuseSlots, serverContext } from './aggregate';
import { type HeKeys, createKeyHolderKeys, publicParameters } from './ceremony';
import { SEED_INFO_BYTES, compactSum, expandCompactSum, seedOf } from './compact';
import { HeError } from './seal';

const L = 3 * 4096 - 5; // three ciphertexts, the weight digit in the last
const updates = [0.1, -0.05, 0.02].map((v, c) => Float32Array.from({ length: L }, (_, i) => v * Math.sin(i + c)));
const weights = [30, 40, 50];

describe('the compact sum (Σ c0 and the summands’ seeds)', () => {
  let keys: HeKeys;
  let cfg: HeConfig;
  let uploads: Uint8Array[][];
  let full: Uint8Array[];
  beforeAll(async () => {
    keys = await createKeyHolderKeys();
    cfg = heConfig({ vectorLength: L, clip: 0.1, maxWeight: 50, maxClients: 3 });
    uploads = [];
    for (const [c, u] of updates.entries()) uploads.push(await encryptUpdate(u, weights[c] as number, keys, cfg, { random: seededRandom(`c/${c}`) }));
    full = (await serverContext(keys.params, { compression: 'none' })).addCiphertexts(uploads);
  });

  it('decrypts to exactly the slots of the full sum, in half the bytes', async () => {
    const want = await decryptShare(full.map((c) => [c]), 0, keys, cfg);
    const parts = full.map((c, k) => {
      const seeds = uploads.map((u) => seedOf(u[k] as Uint8Array, keys.params));
      const compact = compactSum(c, seeds as Uint8Array[], keys.params);
      if (!compact) throw new Error('not compacted');
      expect(compact.seeds.byteLength).toBe(2 * SEED_INFO_BYTES);
      expect(compact.c0.byteLength + compact.seeds.byteLength).toBeLessThan(0.51 * c.byteLength);
      return expandCompactSum(compact.c0, compact.seeds, keys.params, `ciphertext ${k}`);
    });
    const got = await decryptShare(parts, 0, keys, cfg);
    expect(got).toEqual(want);
    expect(refuseSlots(got, 0, 3, cfg)).toBeUndefined();
    // total weight in the slot after the values
    expect(got[L]).toBe(120);
  });

  it('a share of the sum: the last ciphertext alone decrypts to the tail of the whole', async () => {
    const whole = await decryptShare(full.map((c) => [c]), 0, keys, cfg);
    const last = await decryptShare([[full[2] as Uint8Array]], 2, keys, cfg);
    expect(last).toEqual(whole.subarray(2 * 4096));
    await expect(decryptShare([[full[2] as Uint8Array]], 3, keys, cfg)).rejects.toThrow(/ciphertexts 3…3 are not within the sum's 3/);
    expect(ciphertextCount(cfg)).toBe(3);
  });

  it('a wrong seed gives a sum that does not decrypt', async () => {
    const seeds = uploads.map((u) => seedOf(u[0] as Uint8Array, keys.params) as Uint8Array);
    const swapped = compactSum(full[0] as Uint8Array, [seeds[1], seeds[0], seeds[1]] as Uint8Array[], keys.params)!;
    await expect(decryptShare([expandCompactSum(swapped.c0, swapped.seeds, keys.params, 'x')], 0, keys, cfg)).rejects.toThrow(/does not decrypt|not a sum/);
  });

  it('only uncompressed seeded uploads have a seed; other blobs are left whole or refused by name', async () => {
    expect(seedOf(uploads[0]![0] as Uint8Array, keys.params)?.byteLength).toBe(SEED_INFO_BYTES);
    const zlib = await encryptUpdate(updates[0] as Float32Array, 30, keys, { ...cfg, compression: 'zlib' });
    const pub = await encryptUpdate(updates[0] as Float32Array, 30, publicParameters(keys), cfg);
    expect(seedOf(zlib[0] as Uint8Array, keys.params)).toBeUndefined();
    expect(seedOf(pub[0] as Uint8Array, keys.params)).toBeUndefined();
    expect(seedOf((uploads[0]![0] as Uint8Array).subarray(0, 1000), keys.params)).toBeUndefined();
    expect(seedOf(full[0] as Uint8Array, keys.params)).toBeUndefined(); // a sum has both components
    // A seeded (not summed) blob is not a sum to compact.
    expect(compactSum(uploads[0]![0] as Uint8Array, [seedOf(uploads[0]![0] as Uint8Array, keys.params) as Uint8Array], keys.params)).toBeUndefined();
    const c = compactSum(full[0] as Uint8Array, uploads.map((u) => seedOf(u[0] as Uint8Array, keys.params) as Uint8Array), keys.params)!;
    expect(() => expandCompactSum(c.c0, c.seeds.subarray(1), keys.params, 'ciphertext 0')).toThrow(/ciphertext 0: the seeds are 161 bytes, not a multiple of 81/);
    const badSeed = c.seeds.slice();
    badSeed[0] = 0;
    expect(() => expandCompactSum(c.c0, badSeed, keys.params, 'ciphertext 0')).toThrow(HeError);
    expect(() => expandCompactSum(full[0] as Uint8Array, c.seeds, keys.params, 'ciphertext 0')).toThrow(/ciphertext 0: not an uncompressed seeded ciphertext/);
  });

  it('the server refuses an upload it cannot add, by name, before adding anything', async () => {
    const server = await serverContext(keys.params, { ciphertexts: 3 });
    expect(server.refuseUpload(uploads[0] as Uint8Array[])).toBeUndefined();
    expect(server.refuseUpload((uploads[0] as Uint8Array[]).slice(1))).toBe('2 ciphertexts, expected 3');
    const junk = (uploads[0] as Uint8Array[]).map((c) => c.slice());
    (junk[1] as Uint8Array).fill(0xff, 200, 300); // coefficients ≥ q
    expect(server.refuseUpload(junk)).toMatch(/^ciphertext 1 is not a valid BFV ciphertext/);
  });

  it('refuseSlots names a slot above n·(2^b − 1) and non-zero padding', () => {
    const top = 3 * (2 ** cfg.bits - 1);
    const slots = new Uint32Array(2 * 4096);
    expect(refuseSlots(slots, 4096, 3, cfg)).toBeUndefined();
    slots[10] = top + 1;
    expect(refuseSlots(slots, 4096, 3, cfg)).toBe(`slot 4106 holds ${top + 1}, above 3 × (2^${cfg.bits} − 1)`);
    slots[10] = 0;
    slots[2 * 4096 - 1] = 1; // slot 12287 is padding (L + 1 digit = 12288 − 4 used)
    expect(refuseSlots(slots, 4096, 3, cfg)).toBe('padding slot 12287 is 1, not 0');
  });
});
