// Identity keys the coordinator never sees (issue 13, build item 1): a hospital's Ed25519 identity
// is generated, not derived — from nothing the coordinator issues, receives or stores can anyone
// compute it. The test takes every credential the coordinator holds for a hospital (the token it
// issued and receives at each handshake, the SHA-256 it stores, the token id, the hospital id, the
// admin token), derives an Ed25519 key from each in every way the code ever did or plausibly could
// (HKDF-SHA-256 with fedcare's old info string and with none, SHA-256, the bytes themselves), and
// compares with the identity the hospital generated. A control shows the comparison finds a key
// that was derived the old way (HKDF(token), the scheme before this issue).
import { createHash, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportIdentityPublicKey, keyHex, loadOrCreateIdentity, type IdentityStore, type KeyPair } from '@fedcare/shared/secagg';
import { openSqliteStore, type SqliteStore } from '../store/sqlite';
import { hashToken } from '../store/tokens';

/** Ed25519 public key (raw, hex) of a 32-byte seed. */
function ed25519PublicOf(seed: Uint8Array): string {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32).toString('hex');
}

/** Every derivation of a 32-byte seed from a credential that this test tries. */
function derivations(material: Uint8Array): Uint8Array[] {
  const hkdf = (info: string, salt = '') => new Uint8Array(hkdfSync('sha256', material, salt, info, 32));
  const padded = new Uint8Array(32);
  padded.set(material.subarray(0, 32));
  return [
    hkdf('fedcare/identity/v1'), // the scheme before issue 13
    hkdf(''),
    hkdf('fedcare/identity/v1', 'fedcare'),
    new Uint8Array(createHash('sha256').update(material).digest()),
    padded,
  ];
}

function memoryIdentityStore(): IdentityStore {
  let stored: KeyPair | undefined;
  return { load: async () => stored, add: async (k) => (stored ??= k) };
}

let dir: string;
let store: SqliteStore;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fc-identity-adv-'));
  store = openSqliteStore(path.join(dir, 'fedcare.db'));
});
afterAll(async () => {
  await store.close();
});

describe('no hospital identity key can be derived from anything the coordinator holds', () => {
  it('from the token, its stored SHA-256, the token id, the hospital id or the admin token: none gives the generated key', async () => {
    const h1 = await store.createToken({ role: 'hospital', hospitalId: 'H1' });
    const admin = await store.createToken({ role: 'admin' });
    const [listed] = (await store.listTokens()).filter((t) => t.tokenId === h1.tokenId);
    expect(listed?.hospitalId).toBe('H1');
    const credentials: [string, Uint8Array][] = [
      ['token', new TextEncoder().encode(h1.token)],
      ['stored SHA-256 (hex)', new TextEncoder().encode(hashToken(h1.token))],
      ['stored SHA-256 (bytes)', Uint8Array.from(Buffer.from(hashToken(h1.token), 'hex'))],
      ['token id', new TextEncoder().encode(h1.tokenId)],
      ['hospital id', new TextEncoder().encode('H1')],
      ['admin token', new TextEncoder().encode(admin.token)],
    ];
    // The identity as both hosts create it (portal: IndexedDB; CLI: a key file): loadOrCreateIdentity on first use.
    const identity = await loadOrCreateIdentity(memoryIdentityStore());
    expect(identity.privateKey.extractable).toBe(false);
    const generated = keyHex(await exportIdentityPublicKey(identity.publicKey));
    const tried: string[] = [];
    for (const [name, material] of credentials) {
      for (const [i, seed] of derivations(material).entries()) {
        const candidate = ed25519PublicOf(seed);
        tried.push(candidate);
        expect(candidate, `${name}, derivation ${i}`).not.toBe(generated);
      }
    }
    // Every derivation gave a real key (SHA-256 of the token and the stored digest's bytes padded are the same seed: 29 distinct).
    expect(tried).toHaveLength(credentials.length * 5);
    expect(new Set(tried).size).toBe(credentials.length * 5 - 1);
  });

  it('control: a key derived the old way (HKDF(token)) is found by the same comparison', async () => {
    const h2 = await store.createToken({ role: 'hospital', hospitalId: 'H2' });
    const seed = derivations(new TextEncoder().encode(h2.token))[0] as Uint8Array;
    // The old portal's key, as WebCrypto imported it from that seed.
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]);
    const jwk = await crypto.subtle.exportKey('jwk', await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']));
    const oldKey = Buffer.from(jwk.x as string, 'base64url').toString('hex');
    expect(derivations(new TextEncoder().encode(h2.token)).map(ed25519PublicOf)).toContain(oldKey);
  });
});
