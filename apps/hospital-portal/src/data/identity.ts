/**
 * The hospital's identity key in this browser profile's IndexedDB (the portal's `kv` store, key
 * `identity/<hospital>`): a random Ed25519 pair generated here on first use, its private key a
 * non-extractable CryptoKey — IndexedDB stores the key object itself (structured clone), so no page
 * script, extension API or export can read its bytes, and the token (which the coordinator issues
 * and receives) has no part in it. The main thread (to show the fingerprint) and the training
 * worker (to sign) share it; the first to create it wins (`add`, not `put`), so two first uses at
 * once end with one key. Clearing the site's data loses it: see the README (key rotation and loss).
 */
import type { IdentityStore, KeyPair } from '@fedcare/shared/secagg';
import { openPortalDb } from './db';

/** The two kv operations this needs (IndexedDB in the portal; a Map in unit tests). */
export interface IdentityKv {
  get(key: string): Promise<unknown>;
  /** Stores `value` unless `key` exists; false when it did. */
  add(key: string, value: unknown): Promise<boolean>;
}

const portalKv: IdentityKv = {
  get: async (key) => (await openPortalDb()).get('kv', key),
  add: async (key, value) => {
    const db = await openPortalDb();
    try {
      await db.add('kv', value, key);
      return true;
    } catch (e) {
      if ((e as DOMException).name === 'ConstraintError') return false;
      throw e;
    }
  },
};

export const identityKey = (hospitalId: string) => `identity/${hospitalId}`;

function asKeyPair(v: unknown, key: string): KeyPair | undefined {
  if (v === undefined) return undefined;
  const p = v as Partial<KeyPair>;
  if (!(p.privateKey instanceof CryptoKey) || !(p.publicKey instanceof CryptoKey)) throw new Error(`IndexedDB ${key} does not hold an identity key pair`);
  return { privateKey: p.privateKey, publicKey: p.publicKey };
}

/** The hospital's identity store in IndexedDB (or `kv`), for `loadOrCreateIdentity`. */
export function indexedDbIdentity(hospitalId: string, kv: IdentityKv = portalKv): IdentityStore {
  const key = identityKey(hospitalId);
  return {
    load: async () => asKeyPair(await kv.get(key), key),
    add: async (identity) => {
      if (await kv.add(key, { privateKey: identity.privateKey, publicKey: identity.publicKey })) return identity;
      return asKeyPair(await kv.get(key), key) as KeyPair;
    },
  };
}
