/**
 * A hospital's long-lived signing identity, bound to its credential: the Ed25519 key whose 32-byte
 * seed is HKDF-SHA-256(token, "fedcare/identity/v1") (RFC 8032 private keys are 32-byte seeds).
 * The same token gives the same identity in every process, tab and restart, so peers that pinned
 * it keep accepting it; the coordinator stores only SHA-256(token), so it cannot derive the key
 * and sign for a hospital. A new token (a revoked credential) means a new identity.
 */
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
