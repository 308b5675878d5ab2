import { beforeAll, describe, expect, it } from 'vitest';
import { assertKeysSigned, exportPublicKey, generateIdentityKeyPair, generateRoundKeyPairs, signKeys, type AdvertisedKeys, type Key } from '../secagg/keys';
import { ciphertextCount, decryptSum, encryptUpdate, heConfig, serverContext } from './aggregate';
import {
  type CeremonyContext,
  HeCeremonyError,
  type HeKeys,
  assertKeysMatch,
  createKeyHolderKeys,
  generateCeremonyKeyPair,
  publicParameters,
  unwrapSecretKey,
  wrapSecretKeyFor,
} from './ceremony';

const flip = (b: Uint8Array, i: number) => b.map((x, j) => (j === i ? x ^ 0x01 : x));
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

type Pair = { publicKey: Key; privateKey: Key };
interface Hospital {
  id: string;
  pair: Pair;
  raw: Uint8Array;
}

describe('HE key ceremony', () => {
  const runId = 'run-he-1';
  let holder: Hospital;
  let h2: Hospital;
  let h3: Hospital;
  let keys: HeKeys & { secret_key: Uint8Array };
  const ctxFor = (recipient: string): CeremonyContext => ({ runId, holder: 'H1', recipient });

  beforeAll(async () => {
    const hospital = async (id: string): Promise<Hospital> => {
      const pair = await generateCeremonyKeyPair();
      return { id, pair, raw: await exportPublicKey(pair.publicKey) };
    };
    [holder, h2, h3] = await Promise.all([hospital('H1'), hospital('H2'), hospital('H3')]);
    keys = await createKeyHolderKeys();
  });

  it('the holder makes a secret and a (seeded) public key of ~33 kB each', () => {
    expect(keys.secret_key.length).toBeGreaterThan(30_000);
    expect(keys.secret_key.length).toBeLessThan(40_000);
    expect(keys.public_key.length).toBeLessThan(40_000);
    expect(publicParameters(keys)).not.toHaveProperty('secret_key');
  });

  it('each recipient opens its own envelope and gets the holder’s secret key, which decrypts the public key’s ciphertexts', async () => {
    const pub = publicParameters(keys);
    for (const r of [h2, h3]) {
      const wrapped = await wrapSecretKeyFor(r.raw, holder.pair.privateKey, keys, ctxFor(r.id));
      expect(wrapped.length).toBe(12 + keys.secret_key.length + 16);
      const opened = await unwrapSecretKey(wrapped, r.pair.privateKey, holder.raw, pub, ctxFor(r.id));
      expect(equal(opened.secret_key, keys.secret_key)).toBe(true);
      await expect(assertKeysMatch(opened)).resolves.toBeUndefined();
    }
  });

  it('a recipient that opened the key decrypts a sum the keyless server made', async () => {
    const cfg = heConfig({ vectorLength: 10, clip: 1, maxWeight: 1, maxClients: 3 });
    const wrapped = await wrapSecretKeyFor(h2.raw, holder.pair.privateKey, keys, ctxFor('H2'));
    const h2Keys = await unwrapSecretKey(wrapped, h2.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H2'));
    const x = Float32Array.from({ length: 10 }, (_, i) => i / 10 - 0.5);
    const uploads = [await encryptUpdate(x, 1, keys, cfg), await encryptUpdate(x, 1, h2Keys, cfg), await encryptUpdate(x, 1, publicParameters(keys), cfg)];
    const server = await serverContext(publicParameters(keys).params, { ciphertexts: ciphertextCount(cfg) });
    const { mean, errorBound } = await decryptSum(server.addCiphertexts(uploads), h2Keys, 3, cfg);
    for (let i = 0; i < 10; i++) expect(Math.abs((mean[i] as number) - (x[i] as number))).toBeLessThan(errorBound + 1e-7);
  });

  it('uses advertised, signed X25519 keys (SecAgg advertise-keys): the signature check comes first', async () => {
    const identity = await generateIdentityKeyPair();
    const round = await generateRoundKeyPairs();
    const advertised: AdvertisedKeys = { run_id: runId, round: 0, client_id: 'H2', c_pk: await exportPublicKey(round.c.publicKey), s_pk: await exportPublicKey(round.s.publicKey) };
    const signature = await signKeys(identity.privateKey, advertised);
    await assertKeysSigned(identity.publicKey, advertised, signature);
    const wrapped = await wrapSecretKeyFor(advertised.c_pk, holder.pair.privateKey, keys, ctxFor('H2'));
    const opened = await unwrapSecretKey(wrapped, round.c.privateKey, holder.raw, publicParameters(keys), ctxFor('H2'));
    expect(equal(opened.secret_key, keys.secret_key)).toBe(true);
  });

  describe('fails with a clear error', () => {
    let wrappedForH2: Uint8Array;
    beforeAll(async () => {
      wrappedForH2 = await wrapSecretKeyFor(h2.raw, holder.pair.privateKey, keys, ctxFor('H2'));
    });
    const other = async () => (await createKeyHolderKeys()).public_key;

    it.each([
      { name: 'another recipient’s private key (H3 opens H2’s envelope)', run: () => unwrapSecretKey(wrappedForH2, h3.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H3')) },
      { name: 'H3 claiming to be H2', run: () => unwrapSecretKey(wrappedForH2, h3.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H2')) },
      { name: 'a flipped ciphertext byte', run: () => unwrapSecretKey(flip(wrappedForH2, 100), h2.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H2')) },
      { name: 'a flipped IV byte', run: () => unwrapSecretKey(flip(wrappedForH2, 0), h2.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H2')) },
      { name: 'a truncated envelope', run: () => unwrapSecretKey(wrappedForH2.subarray(0, 20), h2.pair.privateKey, holder.raw, publicParameters(keys), ctxFor('H2')) },
      { name: 'a substituted public key', run: async () => unwrapSecretKey(wrappedForH2, h2.pair.privateKey, holder.raw, { params: keys.params, public_key: await other() }, ctxFor('H2')) },
      {
        name: 'substituted parameters',
        run: () => unwrapSecretKey(wrappedForH2, h2.pair.privateKey, holder.raw, { params: { ...keys.params, plain_modulus: 1_032_193 }, public_key: keys.public_key }, ctxFor('H2')),
      },
      { name: 'another run', run: () => unwrapSecretKey(wrappedForH2, h2.pair.privateKey, holder.raw, publicParameters(keys), { ...ctxFor('H2'), runId: 'run-he-2' }) },
      { name: 'another claimed holder', run: () => unwrapSecretKey(wrappedForH2, h2.pair.privateKey, h3.raw, publicParameters(keys), { ...ctxFor('H2'), holder: 'H3' }) },
    ])('$name', async ({ run }) => {
      await expect(run()).rejects.toThrow(HeCeremonyError);
      await expect(run()).rejects.toThrow(/does not open for H[23] in run run-he-[12]: it was sealed for another hospital or run, or the envelope, parameters or public key were altered/);
    });

    it('a holder that sends a secret key not matching the public key', async () => {
      const mismatched = { ...keys, public_key: await other() };
      const wrapped = await wrapSecretKeyFor(h2.raw, holder.pair.privateKey, mismatched, ctxFor('H2'));
      await expect(unwrapSecretKey(wrapped, h2.pair.privateKey, holder.raw, publicParameters(mismatched), ctxFor('H2'))).rejects.toThrow(
        /the HE secret key does not decrypt what the public key encrypts/,
      );
    });

    it('a wrap without the secret key, or to oneself', async () => {
      await expect(wrapSecretKeyFor(h2.raw, holder.pair.privateKey, publicParameters(keys), ctxFor('H2'))).rejects.toThrow(/only the key holder/);
      await expect(wrapSecretKeyFor(holder.raw, holder.pair.privateKey, keys, ctxFor('H1'))).rejects.toThrow(/must be different hospitals, got H1 twice/);
    });
  });
});
