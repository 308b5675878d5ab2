/**
 * A hospital's long-lived signing identity: an Ed25519 key pair the hospital generates itself
 * (WebCrypto, random), independent of every credential. The coordinator never sees the private key
 * and cannot derive it: nothing it issues, receives or stores (the token, its SHA-256, the hospital
 * id, the handshake) is an input to it. Only the public key and its fingerprint travel (in
 * advertisements, rosters and pins). Each host keeps the pair in its own store — the portal in
 * IndexedDB (a non-extractable CryptoKey), the headless client in a 0600 key file beside its data —
 * so peers that pinned it keep accepting it across restarts. A lost key means a new identity: the
 * other hospitals' pins then refuse it by name until their operators re-pin it (README).
 */
import { toHex } from '../util/bytes';
import { generateIdentityKeyPair, type KeyPair } from './keys';

/** Where a host keeps its hospital's identity. */
export interface IdentityStore {
  /** The stored identity, or undefined when none was created yet. */
  load(): Promise<KeyPair | undefined>;
  /**
   * Stores `identity` unless one was stored meanwhile (another tab or process), and returns the one
   * that is stored: two concurrent first uses end with one identity.
   */
  add(identity: KeyPair): Promise<KeyPair>;
}

/**
 * The hospital's identity from its store, created on first use: a fresh random Ed25519 pair whose
 * private key is not extractable (hosts that must write it to a file generate it themselves).
 */
export async function loadOrCreateIdentity(store: IdentityStore): Promise<KeyPair> {
  const existing = await store.load();
  if (existing) return existing;
  return store.add(await generateIdentityKeyPair('Ed25519', false));
}

// ---------------------------------------------------------------------------------------------
// Out-of-band rosters: the federation's identity keys, exchanged between operators (not through
// the coordinator), so that even a hospital's first round trusts no relayed key.

/** A digest of an identity public key short enough to read out: SHA-256, first 80 bits, hex in groups of four. */
export async function identityFingerprint(publicKey: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', publicKey as Uint8Array<ArrayBuffer>));
  return toHex(digest.subarray(0, 10)).match(/.{4}/g)!.join(' ');
}

export class RosterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RosterError';
  }
}

const HOSPITAL_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A roster as JSON: `{ "H1": "<hex identity public key>", … }` (64 hex digits for Ed25519, 130 for
 * P-256 — what `fedcare identity` prints and the pin files hold). Every entry is checked, and the
 * first bad one is named.
 */
export function parseRoster(value: unknown): Record<string, Uint8Array> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RosterError('a roster is a JSON object: hospital id → hex identity public key');
  const out: Record<string, Uint8Array> = {};
  for (const [id, hex] of Object.entries(value as Record<string, unknown>)) {
    if (!HOSPITAL_ID.test(id)) throw new RosterError(`roster: "${id}" is not a hospital id`);
    if (typeof hex !== 'string' || !/^([0-9a-fA-F]{64}|[0-9a-fA-F]{130})$/.test(hex)) {
      throw new RosterError(`roster: ${id}: expected a 32-byte Ed25519 (64 hex digits) or 65-byte P-256 (130 hex digits) public key`);
    }
    out[id] = Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
  }
  if (Object.keys(out).length === 0) throw new RosterError('roster: no hospitals in it');
  return out;
}

/** The hex form of a raw public key (a roster or pin entry). */
export const keyHex: (publicKey: Uint8Array) => string = toHex;
