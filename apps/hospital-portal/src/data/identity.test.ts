// The portal's identity storage without a browser: the same code over a Map that stores values as
// IndexedDB does (structured clone, which keeps a CryptoKey and its non-extractability).
import { describe, expect, it } from 'vitest';
import { exportIdentityPublicKey, keyHex, loadOrCreateIdentity, signKeys, verifyKeys } from '@fedcare/shared/secagg';
import { identityKey, indexedDbIdentity, type IdentityKv } from './identity';

function cloningKv(): IdentityKv & { map: Map<string, unknown> } {
  const map = new Map<string, unknown>();
  return {
    map,
    get: async (k) => (map.has(k) ? structuredClone(map.get(k)) : undefined),
    add: async (k, v) => {
      if (map.has(k)) return false;
      map.set(k, structuredClone(v));
      return true;
    },
  };
}

const KEYS = { run_id: 'r', round: 1, client_id: 'H1', c_pk: new Uint8Array(32).fill(3), s_pk: new Uint8Array(32).fill(4) };

describe('portal identity in IndexedDB', () => {
  it('is generated on first use (non-extractable private key, stored as a CryptoKey), and the same key is loaded after (another tab, a reload)', async () => {
    const kv = cloningKv();
    const a = await loadOrCreateIdentity(indexedDbIdentity('H1', kv));
    const stored = kv.map.get(identityKey('H1')) as { privateKey: CryptoKey };
    expect(stored.privateKey).toBeInstanceOf(CryptoKey);
    expect(stored.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('pkcs8', stored.privateKey)).rejects.toThrow();
    const b = await loadOrCreateIdentity(indexedDbIdentity('H1', kv)); // a reload: a fresh store object on the same database
    expect(keyHex(await exportIdentityPublicKey(b.publicKey))).toBe(keyHex(await exportIdentityPublicKey(a.publicKey)));
    // What the reloaded key signs, the first public key verifies: it is the same pair.
    expect(await verifyKeys(a.publicKey, KEYS, await signKeys(b.privateKey, KEYS))).toBe(true);
    // Another hospital in the same profile has its own key.
    const other = await loadOrCreateIdentity(indexedDbIdentity('H2', kv));
    expect(keyHex(await exportIdentityPublicKey(other.publicKey))).not.toBe(keyHex(await exportIdentityPublicKey(a.publicKey)));
  });

  it('the main thread and the worker creating it at once end with one key', async () => {
    const kv = cloningKv();
    const [a, b] = await Promise.all([loadOrCreateIdentity(indexedDbIdentity('H1', kv)), loadOrCreateIdentity(indexedDbIdentity('H1', kv))]);
    expect(keyHex(await exportIdentityPublicKey(a.publicKey))).toBe(keyHex(await exportIdentityPublicKey(b.publicKey)));
  });

  it('refuses a value that is not a key pair', async () => {
    const kv = cloningKv();
    await kv.add(identityKey('H1'), { privateKey: 'x' });
    await expect(loadOrCreateIdentity(indexedDbIdentity('H1', kv))).rejects.toThrow(/does not hold an identity key pair/);
  });
});
