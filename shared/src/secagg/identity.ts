/**
 * A hospital's long-lived signing identity, bound to its credential: the Ed25519 key whose 32-byte
 * seed is HKDF-SHA-256(token, "fedcare/identity/v1") (RFC 8032 private keys are 32-byte seeds).
 * The same token gives the same identity in every process, tab and restart, so peers that pinned
 * it keep accepting it; the coordinator stores only SHA-256(token), so it cannot derive the key
 * and sign for a hospital. A new token (a revoked credential) means a new identity.
 */
import { toHex } from '../util/bytes';
import { hkdf, importIdentityPublicKey, type KeyPair } from './keys';

/** PKCS#8 header of an Ed25519 private key (RFC 8410): the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

function base64UrlDecode(s: string): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const ch of s.replace(/=+$/, '')) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`invalid base64url character "${ch}"`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

/** The Ed25519 identity of a credential (non-extractable private key). */
export async function identityFromCredential(token: string, purpose = 'fedcare/identity/v1'): Promise<KeyPair> {
  if (token.length < 16) throw new Error('an identity needs a credential of at least 16 characters');
  const enc = new TextEncoder();
  const seed = await hkdf(enc.encode(token), enc.encode(purpose), 32);
  const pkcs8 = new Uint8Array(ED25519_PKCS8_PREFIX.length + 32);
  pkcs8.set(ED25519_PKCS8_PREFIX);
  pkcs8.set(seed, ED25519_PKCS8_PREFIX.length);
  // Import once extractable only to read the public point (JWK "x"), then keep a non-extractable copy.
  const extractable = await crypto.subtle.importKey('pkcs8', pkcs8 as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', extractable);
  if (!jwk.x) throw new Error('Ed25519 key export gave no public point');
  const publicKey = await importIdentityPublicKey(base64UrlDecode(jwk.x), 'Ed25519');
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8 as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['sign']);
  return { publicKey, privateKey } as KeyPair;
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
