import { describe, expect, it } from 'vitest';
import { identityFromCredential } from './identity';
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
