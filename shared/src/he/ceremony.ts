/**
 * The key ceremony of the HE mode: the hospitals, not the coordinator, hold the BFV secret key.
 *
 * 1. Every hospital advertises an X25519 public key signed with its identity key (the SecAgg
 *    advertise-keys message and `signKeys` / `assertKeysSigned` of ../secagg/keys.ts serve; the
 *    ceremony uses the channel key `c_pk`). Each side verifies the other's signature before use.
 * 2. One hospital, the key holder, calls `createKeyHolderKeys()`: SEAL secret and public keys.
 * 3. For each other hospital it calls `wrapSecretKeyFor(recipient's c_pk, its own c private key,
 *    keys, { runId, holder, recipient })`: the serialised secret key, AES-256-GCM-sealed
 *    (`seal` of keys.ts) under HKDF-SHA-256(X25519(holder, recipient)) with an info string of its
 *    own ('fedcare/he/v1', 'secret-key-wrap', run, the two ids in canonical order), so the key
 *    is never one SecAgg also derives. The associated data binds the run, holder → recipient
 *    direction, the parameters and the SHA-256 of the public key: a coordinator relaying the
 *    bundle ({ params, public_key } in the clear, `wrapped` per recipient) can neither read the
 *    secret key nor swap the public key or parameters unnoticed.
 * 4. Each recipient calls `unwrapSecretKey(...)`: it opens the envelope (a clear
 *    HeCeremonyError when it was sealed for someone else or altered) and checks that the secret
 *    key decrypts what the public key encrypts.
 *
 * The coordinator gets only `publicParameters(keys)` and builds a keyless `serverContext` from the
 * parameters (aggregate.ts). Every hospital then holds the secret key, so each encrypts with
 * seeded symmetric encryption (half the upload of public-key encryption); the public key serves
 * a client that has no secret key. Threat model: single-key HE hides updates from an
 * honest-but-curious coordinator, not from the other hospitals: a hospital that obtains another's
 * ciphertexts (e.g. by colluding with the coordinator) can decrypt them, and an active
 * coordinator could send a key holder one hospital's ciphertext as "the sum" at he-decrypt (the
 * holder cannot tell a sum from a single upload). SecAgg+ is the mode for an active coordinator. Secret-key bytes live in JS memory
 * and cannot be reliably zeroed; keep them in the training worker and drop them after the run.
 */
import { sha256Hex } from '../util/bytes';
import { type Key, SecAggCryptoError, agree, canonicalPair, encodeFields, hkdf, importAesGcmKey, open, seal } from '../secagg/keys';
import { DEFAULT_HE_PARAMETERS, HeError, type HeParameters, checkParameters, heContext, parametersFingerprint, sealMessage, withDisposal } from './seal';

/** The BFV keys of a run as a hospital holds them. The coordinator never holds `secret_key`. */
export interface HeKeys {
  readonly params: HeParameters;
  /** The serialised SEAL public key (seeded form, ~33 kB): anyone may encrypt under it. */
  readonly public_key: Uint8Array;
  /** The serialised SEAL secret key (~33 kB): decrypts, and encrypts symmetrically. */
  readonly secret_key?: Uint8Array;
}

/** What may travel in the clear: the parameters and the public key. */
export interface HePublicKeys {
  readonly params: HeParameters;
  readonly public_key: Uint8Array;
}

/** The ceremony step that failed: a wrapped key for someone else, tampering, mismatched keys. */
export class HeCeremonyError extends HeError {
  constructor(message: string) {
    super(message);
    this.name = 'HeCeremonyError';
  }
}

/** Who sends the secret key to whom, in which run. */
export interface CeremonyContext {
  readonly runId: string;
  /** The key holder's hospital id. */
  readonly holder: string;
  /** The recipient's hospital id. */
  readonly recipient: string;
}

/** The key holder's step: fresh SEAL keys for `params` (the default BFV parameters, seal.ts). */
export async function createKeyHolderKeys(params?: HeParameters): Promise<HeKeys & { readonly secret_key: Uint8Array }> {
  const p = params ?? DEFAULT_HE_PARAMETERS;
  const ctx = await heContext(p);
  const { seal: lib } = ctx;
  return withDisposal((owned) => {
    const keygen = lib.KeyGenerator(ctx.context);
    owned.push(keygen);
    const secret = keygen.secretKey();
    owned.push(secret);
    const publicKey = keygen.createPublicKeySerializable();
    owned.push(publicKey);
    const compression = lib.ComprModeType.zstd;
    return { params: p, public_key: publicKey.saveArray(compression), secret_key: secret.saveArray(compression) };
  });
}

/** The public half of `keys`, for the coordinator and for relaying with each wrapped key. */
export function publicParameters(keys: HeKeys): HePublicKeys {
  return { params: keys.params, public_key: keys.public_key };
}

/** A fresh X25519 pair for the ceremony, when the host does not reuse its SecAgg channel pair. */
export async function generateCeremonyKeyPair(): Promise<{ readonly publicKey: Key; readonly privateKey: Key }> {
  return (await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as { publicKey: Key; privateKey: Key };
}

function checkContext(ctx: CeremonyContext): void {
  for (const [name, v] of [['runId', ctx.runId], ['holder', ctx.holder], ['recipient', ctx.recipient]] as const) {
    if (typeof v !== 'string' || v.length === 0) throw new HeCeremonyError(`ceremony context: ${name} must be a non-empty string`);
  }
  if (ctx.holder === ctx.recipient) throw new HeCeremonyError(`ceremony context: the holder and the recipient must be different hospitals, got ${ctx.holder} twice`);
}


async function wrapKey(myPrivate: Key, theirPublic: Key | Uint8Array, ctx: CeremonyContext): Promise<Key> {
  const [lo, hi] = canonicalPair(ctx.holder, ctx.recipient);
  const secret = await agree(myPrivate, theirPublic);
  return importAesGcmKey(await hkdf(secret, encodeFields(['fedcare/he/v1', 'secret-key-wrap', ctx.runId, lo, hi])));
}

async function wrapAad(pub: HePublicKeys, ctx: CeremonyContext): Promise<Uint8Array> {
  return encodeFields(['fedcare/he/secret-key/v1', ctx.runId, ctx.holder, ctx.recipient, parametersFingerprint(pub.params), await sha256Hex(pub.public_key)]);
}

/**
 * The key holder's step for one recipient: the secret key sealed to the recipient's advertised
 * (and signature-checked) X25519 public key, with the holder's X25519 private key. The result is
 * 12 + |secret key| + 16 bytes; relay it with `publicParameters(keys)`.
 */
export async function wrapSecretKeyFor(recipientPublic: Key | Uint8Array, holderPrivate: Key, keys: HeKeys, ctx: CeremonyContext): Promise<Uint8Array> {
  checkContext(ctx);
  checkParameters(keys.params);
  if (!keys.secret_key) throw new HeCeremonyError('only the key holder, who has the secret key, can wrap it for others');
  const key = await wrapKey(holderPrivate, recipientPublic, ctx);
  return seal(key, keys.secret_key, await wrapAad(keys, ctx));
}

/**
 * A recipient's step: opens the secret key the holder wrapped for it (with its own X25519 private
 * key and the holder's advertised public key) and checks that it matches the relayed public key.
 * Throws HeCeremonyError when the envelope was sealed for another recipient or run, or when the
 * envelope, parameters or public key were altered in transit.
 */
export async function unwrapSecretKey(wrapped: Uint8Array, recipientPrivate: Key, holderPublic: Key | Uint8Array, pub: HePublicKeys, ctx: CeremonyContext): Promise<HeKeys & { readonly secret_key: Uint8Array }> {
  checkContext(ctx);
  checkParameters(pub.params);
  let secretKey: Uint8Array;
  try {
    const key = await wrapKey(recipientPrivate, holderPublic, ctx);
    secretKey = await open(key, wrapped, await wrapAad(pub, ctx));
  } catch (err) {
    if (!(err instanceof SecAggCryptoError)) throw err;
    throw new HeCeremonyError(
      `the HE secret key from ${ctx.holder} does not open for ${ctx.recipient} in run ${ctx.runId}: it was sealed for another hospital or run, ` +
        `or the envelope, parameters or public key were altered in transit (${err.message})`,
    );
  }
  const keys = { params: pub.params, public_key: pub.public_key, secret_key: secretKey };
  await assertKeysMatch(keys);
  return keys;
}

/** Encrypts a test vector under the public key and decrypts it with the secret key; throws unless they match. */
export async function assertKeysMatch(keys: HeKeys & { readonly secret_key: Uint8Array }): Promise<void> {
  const ctx = await heContext(keys.params);
  const lib = ctx.seal;
  withDisposal((owned) => {
    const publicKey = lib.PublicKey();
    owned.push(publicKey);
    const secretKey = lib.SecretKey();
    owned.push(secretKey);
    try {
      publicKey.loadArray(ctx.context, keys.public_key);
      secretKey.loadArray(ctx.context, keys.secret_key);
    } catch (err) {
      throw new HeCeremonyError(`the HE keys do not load for these parameters: ${sealMessage(lib, err)}`);
    }
    const probe = Uint32Array.from({ length: ctx.slots }, (_, i) => (i * 2_654_435_761) % ctx.params.plain_modulus);
    const plain = ctx.encoder.encode(probe);
    if (!plain) throw new HeError('BatchEncoder.encode returned nothing');
    owned.push(plain);
    const encryptor = lib.Encryptor(ctx.context, publicKey);
    owned.push(encryptor);
    const cipher = encryptor.encrypt(plain);
    if (!cipher) throw new HeError('Encryptor.encrypt returned nothing');
    owned.push(cipher);
    const decryptor = lib.Decryptor(ctx.context, secretKey);
    owned.push(decryptor);
    const ok = decryptor.invariantNoiseBudget(cipher) > 0 && (() => {
      const out = decryptor.decrypt(cipher);
      if (!out) return false;
      owned.push(out);
      const decoded = ctx.encoder.decode(out, false);
      return decoded.every((v, i) => v === probe[i]);
    })();
    if (!ok) throw new HeCeremonyError('the HE secret key does not decrypt what the public key encrypts: the public key was substituted, or the holder sent mismatched keys');
  });
}
