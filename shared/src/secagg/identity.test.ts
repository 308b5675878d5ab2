import { describe, expect, it } from 'vitest';
import { RosterError, identityFingerprint, keyHex, loadOrCreateIdentity, parseRoster, type IdentityStore } from './identity';
import { exportIdentityPublicKey, generateIdentityKeyPair, signKeys, verifyKeys, type KeyPair } from './keys';

const KEYS = { run_id: 'run-1', round: 2, client_id: 'H1', c_pk: new Uint8Array(32).fill(1), s_pk: new Uint8Array(32).fill(2) };

/** An in-memory store, with a hook to let another "tab" store its identity between load and add. */
function memoryStore(race?: () => Promise<KeyPair>): IdentityStore & { value: KeyPair | undefined; adds: number } {
  const store = {
    value: undefined as KeyPair | undefined,
    adds: 0,
    load: async () => store.value,
    add: async (k: KeyPair) => {
      store.adds++;
      if (race) store.value ??= await race();
      store.value ??= k;
      return store.value;
    },
  };
  return store;
}

describe('loadOrCreateIdentity', () => {
  it('creates a random Ed25519 identity on first use (private key not extractable), then loads the same one', async () => {
    const store = memoryStore();
    const a = await loadOrCreateIdentity(store);
    expect(a.privateKey.extractable).toBe(false);
    expect(a.privateKey.algorithm.name).toBe('Ed25519');
    expect(await loadOrCreateIdentity(store)).toBe(a);
    expect(store.adds).toBe(1);
    const sig = await signKeys(a.privateKey, KEYS);
    expect(await verifyKeys(a.publicKey, KEYS, sig)).toBe(true);
    // Another store (another hospital, or a lost key) gets another identity.
    const b = await loadOrCreateIdentity(memoryStore());
    expect(keyHex(await exportIdentityPublicKey(b.publicKey))).not.toBe(keyHex(await exportIdentityPublicKey(a.publicKey)));
  });

  it('two first uses at once end with the identity that was stored first', async () => {
    const first = await generateIdentityKeyPair();
    const store = memoryStore(async () => first);
    expect(await loadOrCreateIdentity(store)).toBe(first);
    expect(await loadOrCreateIdentity(store)).toBe(first);
  });
});

describe('rosters and fingerprints', () => {
  it('a fingerprint is 80 bits of SHA-256 in groups of four, the same for the same key', async () => {
    const a = await exportIdentityPublicKey((await generateIdentityKeyPair()).publicKey);
    const f = await identityFingerprint(a);
    expect(f).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', a));
    expect(f.replaceAll(' ', '')).toBe(keyHex(digest.subarray(0, 10)));
    expect(await identityFingerprint(a)).toBe(f);
  });

  it('parses what keyHex writes, and names the first bad entry', async () => {
    const a = await exportIdentityPublicKey((await generateIdentityKeyPair()).publicKey);
    expect(parseRoster(JSON.parse(JSON.stringify({ H1: keyHex(a) })))).toEqual({ H1: a });
    expect(() => parseRoster([])).toThrow(RosterError);
    expect(() => parseRoster({})).toThrow('roster: no hospitals in it');
    expect(() => parseRoster({ 'H 1': keyHex(a) })).toThrow('roster: "H 1" is not a hospital id');
    expect(() => parseRoster({ H1: keyHex(a), H2: 'abcd' })).toThrow(/roster: H2: expected a 32-byte Ed25519/);
    expect(() => parseRoster({ H2: 42 })).toThrow(/roster: H2: expected/);
  });
});
