import { describe, expect, it } from 'vitest';
import {
  KeySignatureError,
  SecAggCryptoError,
  agree,
  assertKeysSigned,
  canonicalPair,
  channelKey,
  derivePairSecret,
  exportIdentityPublicKey,
  exportPrivateKey,
  exportPublicKey,
  generateIdentityKeyPair,
  generateRoundKeyPairs,
  hkdf,
  importAesGcmKey,
  importIdentityPublicKey,
  importPrivateKey,
  importPublicKey,
  open,
  pairInfo,
  pairwiseMaskSeed,
  seal,
  signKeys,
  verifyKeys,
  type AdvertisedKeys,
  type IdentityAlgorithm,
  type PairContext,
  type PairPurpose,
} from './keys';
import { combine, split } from './shamir';

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const flip = (b: Uint8Array, i: number) => b.map((x, j) => (j === i ? x ^ 0x01 : x));

describe('X25519 round keys', () => {
  it('agreement is symmetric, and different pairs get different secrets', async () => {
    const [a, b, c] = await Promise.all([generateRoundKeyPairs(), generateRoundKeyPairs(), generateRoundKeyPairs()]);
    const ab = await agree(a.s.privateKey, b.s.publicKey);
    expect(ab.length).toBe(32);
    expect(await agree(b.s.privateKey, a.s.publicKey)).toEqual(ab);
    expect(await agree(a.s.privateKey, c.s.publicKey)).not.toEqual(ab);
    // c and s are independent pairs.
    expect(await agree(a.c.privateKey, b.c.publicKey)).not.toEqual(ab);
    // Raw public keys (as they travel) give the same secret.
    const raw = await exportPublicKey(b.s.publicKey);
    expect(raw.length).toBe(32);
    expect(await agree(a.s.privateKey, raw)).toEqual(ab);
    expect(await agree(a.s.privateKey, await importPublicKey(raw))).toEqual(ab);
  });

  it('matches RFC 7748 §6.1 (Alice and Bob)', async () => {
    const alice = await importPrivateKey(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(toHex(await agree(alice, bobPublic))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('only the mask key s is extractable, and its 32 raw bytes survive Shamir sharing', async () => {
    const [a, b] = await Promise.all([generateRoundKeyPairs(), generateRoundKeyPairs()]);
    expect(a.c.privateKey.extractable).toBe(false);
    expect(a.s.privateKey.extractable).toBe(true);
    await expect(exportPrivateKey(a.c.privateKey)).rejects.toThrow();
    const raw = await exportPrivateKey(a.s.privateKey);
    expect(raw.length).toBe(32);
    // What the server does for a client that dropped before masked input: rebuild s_sk, agree with a survivor.
    const rebuilt = await importPrivateKey(combine(split(raw, 3, 5).slice(2)));
    expect(await agree(rebuilt, b.s.publicKey)).toEqual(await agree(b.s.privateKey, a.s.publicKey));
  });

  it.each([
    { name: 'a short public key', run: () => importPublicKey(new Uint8Array(31)), error: /X25519 public key must be 32 bytes, got 31/ },
    { name: 'a long private key', run: () => importPrivateKey(new Uint8Array(33)), error: /X25519 private key must be 32 bytes, got 33/ },
  ])('rejects $name', async ({ run, error }) => {
    await expect(run()).rejects.toThrow(error);
  });

  it('refuses a low-order public key (all-zero shared secret)', async () => {
    const a = await generateRoundKeyPairs();
    await expect(agree(a.s.privateKey, new Uint8Array(32))).rejects.toThrow(SecAggCryptoError);
  });
});

describe('HKDF and context binding', () => {
  it('matches RFC 5869 test case 1', async () => {
    const okm = await hkdf(hex('0b'.repeat(22)), hex('f0f1f2f3f4f5f6f7f8f9'), 42, hex('000102030405060708090a0b0c'));
    expect(toHex(okm)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  const secret = new Uint8Array(32).fill(7);
  const base: PairContext = { runId: 'run-1', round: 3, clients: ['H1', 'H2'] };

  it('both clients derive the same key whatever the order of ids', async () => {
    expect(canonicalPair('H2', 'H1')).toEqual(['H1', 'H2']);
    expect(await derivePairSecret(secret, 'pairwise-mask', { ...base, clients: ['H2', 'H1'] })).toEqual(await derivePairSecret(secret, 'pairwise-mask', base));
  });

  it.each<{ name: string; purpose?: PairPurpose; ctx: PairContext }>([
    { name: 'another round', ctx: { ...base, round: 4 } },
    { name: 'another run', ctx: { ...base, runId: 'run-2' } },
    { name: 'another pair', ctx: { ...base, clients: ['H1', 'H3'] } },
    { name: 'another purpose', purpose: 'channel', ctx: base },
  ])('$name gives another key', async ({ purpose, ctx }) => {
    const k0 = await derivePairSecret(secret, 'pairwise-mask', base);
    expect(await derivePairSecret(secret, purpose ?? 'pairwise-mask', ctx)).not.toEqual(k0);
  });

  it('the info encoding is injective (ids cannot run into each other)', () => {
    const a = pairInfo('channel', { runId: 'r', round: 1, clients: ['a', 'bc'] });
    const b = pairInfo('channel', { runId: 'r', round: 1, clients: ['ab', 'c'] });
    expect(a).not.toEqual(b);
  });

  it.each([
    { name: 'one client twice', ctx: { ...base, clients: ['H1', 'H1'] as const }, error: /two different clients/ },
    { name: 'a negative round', ctx: { ...base, round: -1 }, error: /round must be an integer/ },
  ])('rejects $name', async ({ ctx, error }) => {
    await expect(pairwiseMaskSeed(secret, ctx)).rejects.toThrow(error);
  });
});

describe('AES-GCM channel', () => {
  const aad = new TextEncoder().encode('share H1→H2 round 3');
  const plaintext = Uint8Array.from({ length: 70 }, (_, i) => i);

  it('two clients seal and open with keys each derives on its own side', async () => {
    const [a, b] = await Promise.all([generateRoundKeyPairs(), generateRoundKeyPairs()]);
    const ctx: PairContext = { runId: 'r', round: 1, clients: ['H1', 'H2'] };
    const ka = await channelKey(await agree(a.c.privateKey, b.c.publicKey), ctx);
    const kb = await channelKey(await agree(b.c.privateKey, a.c.publicKey), { ...ctx, clients: ['H2', 'H1'] });
    const sealed = await seal(ka, plaintext, aad);
    expect(sealed.length).toBe(12 + plaintext.length + 16);
    expect(await open(kb, sealed, aad)).toEqual(plaintext);
    // A fresh IV each time.
    expect(await seal(ka, plaintext, aad)).not.toEqual(sealed);
  });

  it('detects tampering', async () => {
    const key = await importAesGcmKey(new Uint8Array(32).fill(1));
    const other = await importAesGcmKey(new Uint8Array(32).fill(2));
    const sealed = await seal(key, plaintext, aad);
    const cases: [string, () => Promise<Uint8Array>][] = [
      ['IV', () => open(key, flip(sealed, 0), aad)],
      ['ciphertext', () => open(key, flip(sealed, 20), aad)],
      ['tag', () => open(key, flip(sealed, sealed.length - 1), aad)],
      ['associated data', () => open(key, sealed, flip(aad, 0))],
      ['missing associated data', () => open(key, sealed)],
      ['key', () => open(other, sealed, aad)],
      ['truncation', () => open(key, sealed.subarray(0, sealed.length - 1), aad)],
    ];
    // Thunks, awaited one at a time: an eagerly created rejected promise can count as unhandled.
    for (const [what, attempt] of cases) await expect(attempt(), what).rejects.toThrow(/AES-GCM authentication failed/);
    await expect(open(key, sealed.subarray(0, 27))).rejects.toThrow(/shorter than IV \+ tag/);
    expect(await open(key, sealed, aad)).toEqual(plaintext);
  });
});

describe.each<IdentityAlgorithm>(['Ed25519', 'ECDSA-P256'])('signed advertised keys (%s)', (algorithm) => {
  async function setup() {
    const identity = await generateIdentityKeyPair(algorithm);
    const round = await generateRoundKeyPairs();
    const keys: AdvertisedKeys = { run_id: 'run-1', round: 3, client_id: 'H2', c_pk: await exportPublicKey(round.c.publicKey), s_pk: await exportPublicKey(round.s.publicKey) };
    return { identity, keys, signature: await signKeys(identity.privateKey, keys) };
  }

  it('verifies with the identity public key, also after export and import', async () => {
    const { identity, keys, signature } = await setup();
    expect(signature.length).toBe(64);
    expect(await verifyKeys(identity.publicKey, keys, signature)).toBe(true);
    const raw = await exportIdentityPublicKey(identity.publicKey);
    expect(raw.length).toBe(algorithm === 'Ed25519' ? 32 : 65);
    expect(await verifyKeys(await importIdentityPublicKey(raw), keys, signature)).toBe(true);
    await expect(assertKeysSigned(identity.publicKey, keys, signature)).resolves.toBeUndefined();
  });

  it('fails for substituted keys, another context, another signer or a mangled signature', async () => {
    const { identity, keys, signature } = await setup();
    const substitute = await exportPublicKey((await generateRoundKeyPairs()).s.publicKey);
    const other = await generateIdentityKeyPair(algorithm);
    const cases: [string, () => Promise<boolean>][] = [
      ['substituted s_pk', () => verifyKeys(identity.publicKey, { ...keys, s_pk: substitute }, signature)],
      ['substituted c_pk', () => verifyKeys(identity.publicKey, { ...keys, c_pk: substitute }, signature)],
      ['c_pk and s_pk swapped', () => verifyKeys(identity.publicKey, { ...keys, c_pk: keys.s_pk, s_pk: keys.c_pk }, signature)],
      ['another round', () => verifyKeys(identity.publicKey, { ...keys, round: 4 }, signature)],
      ['another run', () => verifyKeys(identity.publicKey, { ...keys, run_id: 'run-2' }, signature)],
      ['another client', () => verifyKeys(identity.publicKey, { ...keys, client_id: 'H3' }, signature)],
      ['another identity key', () => verifyKeys(other.publicKey, keys, signature)],
      ['a flipped signature bit', () => verifyKeys(identity.publicKey, keys, flip(signature, 5))],
      ['a short signature', () => verifyKeys(identity.publicKey, keys, signature.subarray(0, 63))],
    ];
    for (const [what, verdict] of cases) expect(await verdict(), what).toBe(false);
    const error = await assertKeysSigned(identity.publicKey, { ...keys, s_pk: substitute }, signature).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeySignatureError);
    expect((error as KeySignatureError).clientId).toBe('H2');
    expect((error as Error).message).toMatch(/advertised keys of client H2 do not carry its identity signature/);
  });
});

describe('identity keys', () => {
  it.each([
    { name: 'a 33-byte key', raw: new Uint8Array(33), error: /ECDSA-P256 identity public key must be 65 bytes, got 33/ },
    { name: 'a point not on P-256', raw: Uint8Array.from({ length: 65 }, (_, i) => (i === 0 ? 4 : 1)), error: /invalid ECDSA-P256 identity public key/ },
  ])('rejects $name', async ({ raw, error }) => {
    await expect(importIdentityPublicKey(raw)).rejects.toThrow(error);
  });

  it('refuses to sign with a key of another algorithm', async () => {
    const round = await generateRoundKeyPairs();
    const keys: AdvertisedKeys = { run_id: 'r', round: 1, client_id: 'H1', c_pk: new Uint8Array(32), s_pk: new Uint8Array(32) };
    await expect(signKeys(round.s.privateKey, keys)).rejects.toThrow(/identity keys are Ed25519 or ECDSA P-256, not X25519/);
  });
});
