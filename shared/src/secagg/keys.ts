/**
 * The key material of SecAgg+ (Bonawitz et al. 2017, §4; Bell et al. 2020), all from WebCrypto so
 * that a browser tab, a Web Worker and Node compute the same bytes:
 *
 * - Per round, each client makes two X25519 key pairs: `c` for the pairwise channel (the AES-GCM
 *   key that encrypts the Shamir shares one client sends another through the coordinator) and
 *   `s` for mask agreement (the seed of the pairwise mask two clients add and subtract). The
 *   private `s` key is extractable as 32 raw bytes because it is Shamir-shared: if its owner drops
 *   after the masks are fixed, the survivors' shares let the coordinator rebuild it and remove
 *   that client's pairwise masks.
 * - `agree` is X25519; every key used is then HKDF-SHA-256 of the shared secret with an `info`
 *   string that binds purpose, run, round and the two client ids in canonical (sorted) order, so
 *   a key never serves two purposes, two rounds or two pairs.
 * - `seal` / `open` are AES-256-GCM with a random 96-bit IV carried in front of the ciphertext.
 * - The public keys a client advertises are signed with its long-lived identity key (Ed25519 by
 *   default, ECDSA P-256 where a host lacks Ed25519), so a coordinator that substitutes keys to
 *   sit in the middle of a channel is detected by the clients.
 */

/** The host's WebCrypto key type (the DOM's and Node's `CryptoKey`). */
export type Key = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export interface KeyPair {
  readonly publicKey: Key;
  readonly privateKey: Key;
}

/** One client's key pairs for one round. */
export interface RoundKeyPairs {
  /** Channel encryption: agreement gives the AES-GCM key of the share messages. */
  readonly c: KeyPair;
  /** Mask agreement: agreement gives the pairwise mask seed; the private key is Shamir-shared. */
  readonly s: KeyPair;
}

/** A key, signature or ciphertext failed a check: a wrong length, bad encoding, tampering. */
export class SecAggCryptoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecAggCryptoError';
  }
}

const subtle = () => crypto.subtle;
/** WebCrypto's typings (DOM) take ArrayBuffer-backed views; ours never live in a SharedArrayBuffer. */
const buf = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;
const utf8 = new TextEncoder();

export const PUBLIC_KEY_BYTES = 32;
export const PRIVATE_KEY_BYTES = 32;
export const SHARED_SECRET_BYTES = 32;
const X25519 = { name: 'X25519' } as const;
/** RFC 8410 PKCS#8 wrapping of a raw X25519 private key: this prefix, then the 32 key bytes. */
const X25519_PKCS8_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);

function checkLength(what: string, bytes: Uint8Array, expected: number): void {
  if (bytes.length !== expected) throw new SecAggCryptoError(`${what} must be ${expected} bytes, got ${bytes.length}`);
}

async function generateX25519(extractable: boolean): Promise<KeyPair> {
  return (await subtle().generateKey(X25519, extractable, ['deriveBits'])) as KeyPair;
}

/** Fresh key pairs for one round. Only `s.privateKey` is extractable (to be Shamir-shared). */
export async function generateRoundKeyPairs(): Promise<RoundKeyPairs> {
  const [c, s] = await Promise.all([generateX25519(false), generateX25519(true)]);
  return { c, s };
}

/** The 32-byte raw (RFC 7748 u-coordinate) form of an X25519 public key. */
export async function exportPublicKey(key: Key): Promise<Uint8Array> {
  return new Uint8Array(await subtle().exportKey('raw', key));
}

export async function importPublicKey(raw: Uint8Array): Promise<Key> {
  checkLength('an X25519 public key', raw, PUBLIC_KEY_BYTES);
  return subtle().importKey('raw', buf(raw), X25519, true, []);
}

/** The 32 raw bytes of an extractable X25519 private key (what Shamir shares). */
export async function exportPrivateKey(key: Key): Promise<Uint8Array> {
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', key));
  const prefix = pkcs8.subarray(0, X25519_PKCS8_PREFIX.length);
  if (pkcs8.length !== X25519_PKCS8_PREFIX.length + PRIVATE_KEY_BYTES || prefix.some((b, i) => b !== X25519_PKCS8_PREFIX[i])) {
    throw new SecAggCryptoError(`unexpected PKCS#8 encoding of an X25519 private key (${pkcs8.length} bytes)`);
  }
  return pkcs8.slice(X25519_PKCS8_PREFIX.length);
}

/** An X25519 private key from its 32 raw bytes (e.g. reconstructed from Shamir shares). */
export async function importPrivateKey(raw: Uint8Array, extractable = false): Promise<Key> {
  checkLength('an X25519 private key', raw, PRIVATE_KEY_BYTES);
  const pkcs8 = new Uint8Array(X25519_PKCS8_PREFIX.length + PRIVATE_KEY_BYTES);
  pkcs8.set(X25519_PKCS8_PREFIX);
  pkcs8.set(raw, X25519_PKCS8_PREFIX.length);
  return subtle().importKey('pkcs8', buf(pkcs8), X25519, extractable, ['deriveBits']);
}

/**
 * X25519: the 32-byte shared secret of my private key and their public key (a key or its raw
 * bytes). Symmetric: agree(a.private, b.public) = agree(b.private, a.public). An all-zero result
 * (their key is a low-order point, RFC 7748 §6.1) is refused.
 */
export async function agree(myPrivate: Key, theirPublic: Key | Uint8Array): Promise<Uint8Array> {
  const publicKey = theirPublic instanceof Uint8Array ? await importPublicKey(theirPublic) : theirPublic;
  let bits: ArrayBuffer;
  try {
    bits = await subtle().deriveBits({ name: 'X25519', public: publicKey }, myPrivate, SHARED_SECRET_BYTES * 8);
  } catch (err) {
    const e = err as Error;
    throw new SecAggCryptoError(`X25519 agreement failed (a malformed or low-order public key?): ${e.name}${e.message ? `: ${e.message}` : ''}`);
  }
  const secret = new Uint8Array(bits);
  if (secret.every((b) => b === 0)) throw new SecAggCryptoError('X25519 agreement gave the all-zero secret: the public key is a low-order point');
  return secret;
}

/** HKDF-SHA-256 (RFC 5869) of `ikm` with `info` (and `salt`, empty by default): `length` bytes. */
export async function hkdf(ikm: Uint8Array, info: Uint8Array, length = 32, salt: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new SecAggCryptoError(`HKDF-SHA-256 output length must be 1..8160 bytes, got ${length}`);
  const base = await subtle().importKey('raw', buf(ikm), 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: buf(salt), info: buf(info) }, base, length * 8));
}

/** Length-prefixed UTF-8 fields (4-byte big-endian lengths): an injective encoding of a string list. */
export function encodeFields(fields: readonly string[]): Uint8Array {
  const parts = fields.map((f) => utf8.encode(f));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function checkRound(round: number): void {
  if (!Number.isInteger(round) || round < 0 || round > 0xffff_ffff) throw new SecAggCryptoError(`round must be an integer in [0, 2^32), got ${round}`);
}

/** What a pairwise key is for; each purpose gets independent keys from the same shared secret. */
export type PairPurpose = 'channel' | 'pairwise-mask';

/** Where a pairwise key is used: the run, the round and the two clients (in either order). */
export interface PairContext {
  readonly runId: string;
  readonly round: number;
  readonly clients: readonly [string, string];
}

/** The two client ids in canonical order (by UTF-16 code units, as Array.prototype.sort does). */
export function canonicalPair(a: string, b: string): [string, string] {
  if (a === b) throw new SecAggCryptoError(`a pairwise key needs two different clients, got ${a} twice`);
  return a < b ? [a, b] : [b, a];
}

/** The HKDF `info` of a pairwise key; both clients compute the same bytes whatever their order. */
export function pairInfo(purpose: PairPurpose, ctx: PairContext): Uint8Array {
  checkRound(ctx.round);
  const [lo, hi] = canonicalPair(ctx.clients[0], ctx.clients[1]);
  return encodeFields(['fedcare/secagg/v1', purpose, ctx.runId, String(ctx.round), lo, hi]);
}

/** 32 bytes for `purpose` from an X25519 shared secret, bound to run, round and the pair. */
export async function derivePairSecret(sharedSecret: Uint8Array, purpose: PairPurpose, ctx: PairContext): Promise<Uint8Array> {
  checkLength('an X25519 shared secret', sharedSecret, SHARED_SECRET_BYTES);
  return hkdf(sharedSecret, pairInfo(purpose, ctx));
}

/** The AES-256-GCM key of the channel between two clients, from agree(c_sk, c_pk). */
export async function channelKey(sharedSecret: Uint8Array, ctx: PairContext): Promise<Key> {
  const raw = await derivePairSecret(sharedSecret, 'channel', ctx);
  return importAesGcmKey(raw);
}

/** The 32-byte seed of the pairwise mask between two clients, from agree(s_sk, s_pk); expand it with `expandMask`. */
export async function pairwiseMaskSeed(sharedSecret: Uint8Array, ctx: PairContext): Promise<Uint8Array> {
  return derivePairSecret(sharedSecret, 'pairwise-mask', ctx);
}

/** A fresh 32-byte seed from the CSPRNG (the self mask b_u). */
export function randomSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

export async function importAesGcmKey(raw: Uint8Array): Promise<Key> {
  if (raw.length !== 16 && raw.length !== 32) throw new SecAggCryptoError(`an AES-GCM key must be 16 or 32 bytes, got ${raw.length}`);
  return subtle().importKey('raw', buf(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
}

export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** AES-GCM: iv (12 random bytes) ‖ ciphertext ‖ tag (16 bytes). `aad` is authenticated, not sent. */
export async function seal(key: Key, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(GCM_IV_BYTES));
  const ct = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: buf(aad) }, key, buf(plaintext)));
  const out = new Uint8Array(GCM_IV_BYTES + ct.length);
  out.set(iv);
  out.set(ct, GCM_IV_BYTES);
  return out;
}

/** Inverse of `seal`; throws SecAggCryptoError if the ciphertext, IV, tag, key or `aad` differ. */
export async function open(key: Key, sealed: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  if (sealed.length < GCM_IV_BYTES + GCM_TAG_BYTES) throw new SecAggCryptoError(`sealed message of ${sealed.length} bytes is shorter than IV + tag (${GCM_IV_BYTES + GCM_TAG_BYTES})`);
  try {
    const iv = sealed.slice(0, GCM_IV_BYTES);
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv, additionalData: buf(aad) }, key, sealed.subarray(GCM_IV_BYTES) as Uint8Array<ArrayBuffer>));
  } catch {
    throw new SecAggCryptoError('AES-GCM authentication failed: the message was tampered with, or the key or associated data differ');
  }
}

// ---------------------------------------------------------------------------------------------
// Identity signatures over the advertised keys.

export type IdentityAlgorithm = 'Ed25519' | 'ECDSA-P256';

const SIGN_PARAMS: Record<IdentityAlgorithm, { generate: WebCryptoParams; sign: WebCryptoParams; publicKeyBytes: number }> = {
  Ed25519: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, publicKeyBytes: 32 },
  // Raw P-256 public keys are uncompressed points (0x04 ‖ x ‖ y); signatures are r ‖ s (64 bytes).
  'ECDSA-P256': { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' }, publicKeyBytes: 65 },
};
type WebCryptoParams = { name: string; namedCurve?: string; hash?: string };

function identityAlgorithmOf(key: Key): IdentityAlgorithm {
  const name = key.algorithm.name;
  if (name === 'Ed25519') return 'Ed25519';
  if (name === 'ECDSA' && (key.algorithm as { namedCurve?: string }).namedCurve === 'P-256') return 'ECDSA-P256';
  throw new SecAggCryptoError(`identity keys are Ed25519 or ECDSA P-256, not ${name}`);
}

/**
 * A long-lived identity key pair (the hospital registers the public key with its credentials).
 * Ed25519 works in Node ≥ 20, Chromium ≥ 137, Firefox ≥ 129 and Safari ≥ 17; ECDSA P-256 everywhere.
 */
export async function generateIdentityKeyPair(algorithm: IdentityAlgorithm = 'Ed25519', extractable = false): Promise<KeyPair> {
  return (await subtle().generateKey(SIGN_PARAMS[algorithm].generate, extractable, ['sign', 'verify'])) as KeyPair;
}

/** Raw identity public key: 32 bytes (Ed25519) or a 65-byte uncompressed point (P-256). */
export async function exportIdentityPublicKey(key: Key): Promise<Uint8Array> {
  identityAlgorithmOf(key);
  return new Uint8Array(await subtle().exportKey('raw', key));
}

/** Imports a raw identity public key; the algorithm follows from its length unless given. */
export async function importIdentityPublicKey(raw: Uint8Array, algorithm?: IdentityAlgorithm): Promise<Key> {
  const alg = algorithm ?? (raw.length === 32 ? 'Ed25519' : 'ECDSA-P256');
  checkLength(`an ${alg} identity public key`, raw, SIGN_PARAMS[alg].publicKeyBytes);
  try {
    return await subtle().importKey('raw', buf(raw), SIGN_PARAMS[alg].generate, true, ['verify']);
  } catch (err) {
    throw new SecAggCryptoError(`invalid ${alg} identity public key: ${(err as Error).message}`);
  }
}

/** What a client advertises in the advertise-keys stage (raw X25519 public keys), and signs. */
export interface AdvertisedKeys {
  readonly run_id: string;
  readonly round: number;
  readonly client_id: string;
  readonly c_pk: Uint8Array;
  readonly s_pk: Uint8Array;
}

/** The exact bytes signed: a domain tag, then run, round, client and both keys, length-prefixed. */
export function advertisedKeysMessage(keys: AdvertisedKeys): Uint8Array {
  checkRound(keys.round);
  checkLength('c_pk', keys.c_pk, PUBLIC_KEY_BYTES);
  checkLength('s_pk', keys.s_pk, PUBLIC_KEY_BYTES);
  const head = encodeFields(['fedcare/secagg/advertise-keys/v1', keys.run_id, String(keys.round), keys.client_id]);
  const out = new Uint8Array(head.length + 2 * PUBLIC_KEY_BYTES);
  out.set(head);
  out.set(keys.c_pk, head.length);
  out.set(keys.s_pk, head.length + PUBLIC_KEY_BYTES);
  return out;
}

/** An identity key's signature of `message`: 64 bytes (Ed25519 or ECDSA r ‖ s). */
async function identitySign(identityPrivate: Key, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().sign(SIGN_PARAMS[identityAlgorithmOf(identityPrivate)].sign, identityPrivate, buf(message)));
}

async function identityVerify(identityPublic: Key, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const params = SIGN_PARAMS[identityAlgorithmOf(identityPublic)].sign;
  if (signature.length !== 64) return false;
  return subtle().verify(params, identityPublic, buf(signature), buf(message));
}

/** Signs the advertised keys with the identity private key: 64 bytes (Ed25519 or ECDSA r ‖ s). */
export async function signKeys(identityPrivate: Key, keys: AdvertisedKeys): Promise<Uint8Array> {
  return identitySign(identityPrivate, advertisedKeysMessage(keys));
}

/** True iff `signature` is the identity key's signature of exactly these advertised keys. */
export async function verifyKeys(identityPublic: Key, keys: AdvertisedKeys, signature: Uint8Array): Promise<boolean> {
  return identityVerify(identityPublic, advertisedKeysMessage(keys), signature);
}

/** A client's advertised keys are not signed by its identity key: the coordinator may have substituted them. */
export class KeySignatureError extends SecAggCryptoError {
  constructor(readonly clientId: string) {
    super(`the advertised keys of client ${clientId} do not carry its identity signature: they were substituted or corrupted in transit; abort the round`);
    this.name = 'KeySignatureError';
  }
}

/** `verifyKeys`, throwing KeySignatureError (naming the client) when it fails. */
export async function assertKeysSigned(identityPublic: Key, keys: AdvertisedKeys, signature: Uint8Array): Promise<void> {
  if (!(await verifyKeys(identityPublic, keys, signature))) throw new KeySignatureError(keys.client_id);
}

/** What a client signs in SecAgg+'s consistency check (Bonawitz et al. 2017, §4, round 4): the survivor set it was told. */
export interface SurvivorSet {
  readonly run_id: string;
  readonly round: number;
  /** The signer. */
  readonly client_id: string;
  /** Every client whose masked input is in the sum (U3), in any order: signed sorted. */
  readonly survivors: readonly string[];
}

/** Domain tag, run, round, signer, then the survivors sorted, length-prefixed. */
export function survivorSetMessage(set: SurvivorSet): Uint8Array {
  checkRound(set.round);
  return encodeFields(['fedcare/secagg/consistency-check/v1', set.run_id, String(set.round), set.client_id, ...[...set.survivors].sort()]);
}

export async function signSurvivors(identityPrivate: Key, set: SurvivorSet): Promise<Uint8Array> {
  return identitySign(identityPrivate, survivorSetMessage(set));
}

/** True iff `signature` is the identity key's signature of exactly this survivor set by this signer. */
export async function verifySurvivors(identityPublic: Key, set: SurvivorSet, signature: Uint8Array): Promise<boolean> {
  return identityVerify(identityPublic, survivorSetMessage(set), signature);
}

/**
 * A Shamir share as its dealer signed it in share-keys (Bell et al. 2020, SecAgg+, §3 active
 * security: shares are authenticated so a holder cannot alter one): who dealt it, to whom, of
 * which secret (b: self-mask seed, s: mask key), and the encoded share itself. At unmask the
 * server checks the dealer's signature, so a corrupted share names the holder that revealed it.
 */
export interface DealtShare {
  readonly run_id: string;
  readonly round: number;
  readonly dealer: string;
  readonly holder: string;
  readonly kind: 'b' | 's';
  /** encodeShare(share): [index, threshold, value]. */
  readonly share: Uint8Array;
}

/** Domain tag, run, round, dealer, holder and kind, length-prefixed, then the encoded share (last, so the encoding stays injective). */
export function dealtShareMessage(d: DealtShare): Uint8Array {
  checkRound(d.round);
  const head = encodeFields(['fedcare/secagg/share/v1', d.run_id, String(d.round), d.dealer, d.holder, d.kind]);
  const out = new Uint8Array(head.length + d.share.length);
  out.set(head);
  out.set(d.share, head.length);
  return out;
}

export async function signShare(identityPrivate: Key, d: DealtShare): Promise<Uint8Array> {
  return identitySign(identityPrivate, dealtShareMessage(d));
}

/** True iff `signature` is the dealer's identity signature of exactly this share, dealt to this holder. */
export async function verifyShare(identityPublic: Key, d: DealtShare, signature: Uint8Array): Promise<boolean> {
  return identityVerify(identityPublic, dealtShareMessage(d), signature);
}
