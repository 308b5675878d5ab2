import { describe, expect, it } from 'vitest';
import { RosterError, identityFingerprint, identityFromCredential, keyHex, parseRoster } from './identity';
import { exportIdentityPublicKey, signKeys, verifyKeys } from './keys';

const KEYS = { run_id: 'run-1', round: 2, client_id: 'H1', c_pk: new Uint8Array(32).fill(1), s_pk: new Uint8Array(32).fill(2) };

describe('identityFromCredential', () => {
  it('is the same Ed25519 identity for the same token (a restart keeps its pins valid) and another for another token', async () => {
    const a = await identityFromCredential('fct_token_of_h1_0123456789');
    const b = await identityFromCredential('fct_token_of_h1_0123456789');
    const c = await identityFromCredential('fct_token_of_h2_0123456789');
    const pa = await exportIdentityPublicKey(a.publicKey);
    expect(pa).toHaveLength(32);
    expect(await exportIdentityPublicKey(b.publicKey)).toEqual(pa);
    expect(await exportIdentityPublicKey(c.publicKey)).not.toEqual(pa);
  });

  it('signs what its public key verifies (and the other identity does not); the private key is not extractable', async () => {
    const a = await identityFromCredential('fct_token_of_h1_0123456789');
    const c = await identityFromCredential('fct_token_of_h2_0123456789');
    const sig = await signKeys(a.privateKey, KEYS);
    expect(await verifyKeys(a.publicKey, KEYS, sig)).toBe(true);
    expect(await verifyKeys(c.publicKey, KEYS, sig)).toBe(false);
    expect((a.privateKey as { extractable?: boolean }).extractable).toBe(false);
    await expect(identityFromCredential('short')).rejects.toThrow(/at least 16 characters/);
  });
});

describe('rosters and fingerprints', () => {
  it('a fingerprint is 80 bits of SHA-256 in groups of four, the same for the same key', async () => {
    const a = await exportIdentityPublicKey((await identityFromCredential('fct_token_of_h1_0123456789')).publicKey);
    const f = await identityFingerprint(a);
    expect(f).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', a));
    expect(f.replaceAll(' ', '')).toBe(keyHex(digest.subarray(0, 10)));
    expect(await identityFingerprint(a)).toBe(f);
  });

  it('parses what keyHex writes, and names the first bad entry', async () => {
    const a = await exportIdentityPublicKey((await identityFromCredential('fct_token_of_h1_0123456789')).publicKey);
    expect(parseRoster(JSON.parse(JSON.stringify({ H1: keyHex(a) })))).toEqual({ H1: a });
    expect(() => parseRoster([])).toThrow(RosterError);
    expect(() => parseRoster({})).toThrow('roster: no hospitals in it');
    expect(() => parseRoster({ 'H 1': keyHex(a) })).toThrow('roster: "H 1" is not a hospital id');
    expect(() => parseRoster({ H1: keyHex(a), H2: 'abcd' })).toThrow(/roster: H2: expected a 32-byte Ed25519/);
    expect(() => parseRoster({ H2: 42 })).toThrow(/roster: H2: expected/);
  });
});
