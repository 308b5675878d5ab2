/**
 * SecAgg+ as messages: the client and server state machines of secure aggregation (Bonawitz et al.
 * 2017, with Bell et al. 2020's sparse neighbour graph), exchanging plain, serialisable messages
 * (strings, numbers, Uint8Array / Uint32Array) so a round engine can carry each stage over any
 * transport. Five stages, each one request from the server and one reply per client; the server
 * decides who is in each stage (whoever replied in time), and a client that does not reply is
 * dropped from that stage on:
 *
 *   1. advertise-keys  S→C config;  C→S two fresh X25519 public keys (c: channel, s: masks),
 *                      signed with the client's long-lived identity key (Ed25519 / ECDSA P-256).
 *   2. share-keys      S→C the signed advertisements of its neighbours in a seeded graph over the
 *                      clients that advertised (graph.ts; a client lost in stage 1 is simply not
 *                      in the graph). C verifies every signature and pinned identity key, draws a
 *                      self-mask seed b, Shamir-splits b and its s private key t-of-(k + 1) among
 *                      its k neighbours and itself, signs each share with its identity key
 *                      (dealer, holder, kind, share: keys.ts signShare), and sends each neighbour
 *                      its two signed shares AES-GCM-sealed under HKDF(X25519(c_i, c_j)), AAD =
 *                      (run, round, from, to). The holder checks both signatures on opening.
 *   3. masked-input    S→C the sealed shares addressed to it (from the neighbours that completed
 *                      stage 2: exactly the neighbours it masks with). C sends
 *                      y = [q(w·clip(x)), w] + PRG(b) + Σ_j ±PRG(HKDF(X25519(s_i, s_j)))  mod 2^32.
 *   4. consistency-    S→C U3, every client whose y is in the sum; C checks it is in U3 and that
 *      check           ≥ t holders of its secrets survived, and signs (run, round, itself, U3) with
 *                      its identity key (Bonawitz et al.'s consistency check).
 *   5. unmask          S→C which of its neighbours survived (sent y) and which dropped after
 *                      stage 2. C reveals its share of b_j for each survivor (and its own), of
 *                      s_j for each dropped neighbour, never both for one client (it remembers
 *                      what it revealed in the round and refuses any other split), and only when
 *                      the split is the one its signed U3 implies and ≥ t of its share-holding
 *                      neighbourhood (itself included) signed that same U3. Each revealed share
 *                      carries its dealer's signature: S verifies it before using the share,
 *                      discards one that fails and names the client that revealed it (not the
 *                      dealer, whose signature proves what it dealt), and rebuilds each survivor's
 *                      b (removes its self mask) and each dropped client's s (recomputes and
 *                      removes the pairwise masks it shared with survivors) from the ≥ t valid
 *                      shares left.
 *
 * The server ends with Σ_{survivors} w_i·clip(x_i) (Float64Array, within n·Δ per coordinate) and
 * Σ w_i. It adds each masked vector into a running sum on receipt and never stores, or sees, an
 * individual unmasked vector.
 *
 * Weights. The client clips x to [−R, R], multiplies by its integer weight w ∈ [1, W] (num_samples;
 * W = `max_weight` in the config) in float64 and quantises w·clip(x) on the grid of [−W·R, W·R]
 * with b bits (quantize.ts: stochastic, unbiased). So Σ over n clients cannot wrap mod 2^32 as long
 * as n·(2^b − 1) < 2^32, the server checks this for the selected n, and the default b = 32 −
 * ⌈log2 n⌉ is the finest such grid. The error of the sum is < n·Δ with Δ = 2·W·R/(2^b − 1).
 * (Quantising x and multiplying the integer by w would need Σ w·(2^b − 1) < 2^32: 14 bits at
 * 30 × 5 000 samples, thousands of times coarser in the weighted mean.) The weight travels as one more word of the
 * masked vector, so the server learns Σ w_i but not any w_i (needs n·W < 2^32, checked).
 *
 * Thresholds and shares. A client's b and s are split t-of-(k + 1): one share to each of its k
 * neighbours, one kept (its own share of b is revealed by itself when it survives; its own share
 * of s never leaves it). Keeping one lets two dropouts at unmask be absorbed at n = 5, t = 3. The
 * client requires (k + 1)/2 < t ≤ k + 1 for its actual neighbour set (graph.ts explains why).
 *
 * Threat model.
 * - Honest-but-curious server (follows the protocol, reads everything it receives): it learns the
 *   sum over the survivors and Σ w, plus who survived each stage. Each masked vector is uniform
 *   in Z_2^32 to it (a one-time pad by PRG(b) and by pairwise masks it cannot compute); the shares
 *   it relays are AES-GCM ciphertexts under keys from X25519 exchanges it is not part of; in the
 *   unmask stage it obtains b_j or s_j of each client, never both. Colluding with fewer than t
 *   holders of a client's shares adds nothing (Shamir; Bonawitz et al.'s honest-but-curious
 *   theorem). In a sparse graph it would learn each connected component's sum separately, so the
 *   server aborts if the survivors' graph is disconnected (and every survivor keeps ≥ t − 1
 *   surviving neighbours, so no component is smaller than t).
 * - Active server substituting keys to sit in the middle of a channel or a mask: every
 *   advertisement is signed with the client's identity key; clients verify the signatures
 *   (KeySignatureError naming the client) and check the relayed identity keys against their pins
 *   (PinMismatchError naming the hospital).
 * - Active server asking for both secrets of one client j (telling some holders "j survived" and
 *   others "j dropped", or asking one holder twice): a holder reveals one kind per client per
 *   round and refuses a changed split, and t > (k + 1)/2, so from honest holders it cannot get t
 *   of each; it needs at least 2t − (k + 1) colluding holders (≈ k/3 with the default t: the
 *   neighbourhood form of Bonawitz et al.'s t > 2n/3 for active adversaries).
 * - The consistency check binds every honest client to one survivor set U3, which closes the
 *   attack of telling *different* clients different stories (the holders of s_v, for every
 *   neighbour v of j, that v dropped, and the holders of b_j that j survived, then stripping all
 *   of y_j's masks): a holder reveals only per the U3 it signed, and only with ≥ t signatures on
 *   that U3 from its own neighbourhood. In the complete graph (the default) that is Bonawitz et
 *   al.'s argument: t > n/2, so two different sets cannot both gather t honest signatures. In a
 *   sparse graph neighbourhoods differ, and a server that partitions the clients could still show
 *   two parts two sets (listed below).
 *
 * Not covered.
 * - First contact: with no pin for a hospital the relayed identity key is trusted on first use
 *   (`SecAggClient.firstSeen` lists such keys so the host can pin them; `requirePins` refuses —
 *   what a host with an out-of-band roster does, see identity.ts `parseRoster`).
 * - Sparse graphs under an active server that partitions the clients (above): Bell et al.'s full
 *   active-security analysis is not reproduced here.
 * - Malicious clients: a client can send any y (the sum's integrity is not protected), and inputs
 *   are not range-proved. Differential privacy is what bounds one update's influence. What a
 *   malicious client cannot do is corrupt the unmasking of others: the shares it reveals are signed
 *   by their dealers (Bell et al. 2020, SecAgg+, §3 "malicious clients": authenticated shares), so
 *   a wrong one is discarded and its sender named (`SecAggResult.rejected`); a dealer that signs
 *   inconsistent shares of its own secrets is named as the dealer when they do not interpolate.
 * - Side channels on the client host (Shamir's table lookups are not constant-time, shamir.ts).
 *
 * Use one SecAggClient and one SecAggServer per round. Replies and requests are validated
 * (zod shape, then lengths, ids in the expected sets, no duplicates) before any state changes; a
 * bad reply is rejected with SecAggProtocolError and its sender is treated as dropped; a stage
 * that leaves some secret with fewer than t share holders throws SecAggAbortError (the round must
 * abort). A client that meets an error aborts its round: every later call repeats the error.
 */
import { z } from 'zod';
import { cryptoRandom, type RandomSource } from '../util/csprng';
import { toHex } from '../util/bytes';
import { defaultThreshold, degreeRange, minimumThreshold, neighbourGraph, type NeighbourGraph } from './graph';
import {
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  KeySignatureError,
  PRIVATE_KEY_BYTES,
  PUBLIC_KEY_BYTES,
  SecAggCryptoError,
  agree,
  assertKeysSigned,
  channelKey,
  encodeFields,
  exportIdentityPublicKey,
  exportPrivateKey,
  exportPublicKey,
  generateRoundKeyPairs,
  importIdentityPublicKey,
  importPrivateKey,
  importPublicKey,
  open,
  pairwiseMaskSeed,
  seal,
  signKeys,
  signShare,
  signSurvivors,
  verifyShare,
  verifySurvivors,
  type AdvertisedKeys,
  type Key,
  type KeyPair,
  type RoundKeyPairs,
} from './keys';
import { addInto, applyMask, pairwiseSign } from './mask';
import { QuantizationError, dequantizeSum, quantizationFor, quantize, sumErrorBound, type QuantizationConfig } from './quantize';
import { decodeFixedPointSum, encodeFixedPoint, fixedPointErrorBound, fixedPointFor, type FixedPointConfig } from './fixed-point';
import { MAX_SHARES, ShamirError, combine, cryptoRandomBytes, decodeShare, encodeShare, split, type RandomBytes, type Share } from './shamir';

export const SECAGG_STAGES = ['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask'] as const;
export type SecAggStage = (typeof SECAGG_STAGES)[number];

// ---------------------------------------------------------------------------------------------
// Errors.

/** A message failed validation, or came at the wrong time or from the wrong party. */
export class SecAggProtocolError extends Error {
  constructor(
    message: string,
    /** The client the error is about, where there is one. */
    readonly clientId: string | undefined = undefined,
  ) {
    super(message);
    this.name = 'SecAggProtocolError';
  }
}

/** The round cannot complete securely (some secret has fewer than t share holders left, …): abort it. */
export class SecAggAbortError extends SecAggProtocolError {
  constructor(message: string, clientId: string | undefined = undefined) {
    super(message, clientId);
    this.name = 'SecAggAbortError';
  }
}

/** A client refuses to reveal what would unmask one client's input (both shares of it, or a changed split). */
export class RevealRefusedError extends SecAggProtocolError {
  constructor(message: string, clientId: string) {
    super(message, clientId);
    this.name = 'RevealRefusedError';
  }
}

/** The identity key relayed for a hospital differs from the one pinned for it (or none is pinned and pins are required). */
export class PinMismatchError extends SecAggCryptoError {
  constructor(
    readonly clientId: string,
    message: string,
  ) {
    super(message);
    this.name = 'PinMismatchError';
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/** The per-round parameters, sent to every client in advertise-keys. */
export interface SecAggConfig {
  /** t: shares needed to rebuild a client's self-mask seed or mask key. */
  readonly threshold: number;
  /** k: neighbours per client; k ≥ n − 1 is the complete graph (plain SecAgg). */
  readonly neighbours: number;
  /** R: each coordinate of an update is clipped to [−R, R] before weighting. */
  readonly clip: number;
  /** b: bits per quantised coordinate of w·x; the server checks n·(2^b − 1) < 2^32. */
  readonly bits: number;
  /** W: the largest weight (num_samples) a client may bring; w·x is quantised on [−W·R, W·R]. */
  readonly max_weight: number;
  /** L: the length of every update. The masked vector has L + 1 words (the last is the weight). */
  readonly vector_length: number;
  /**
   * Exact sums instead of the clipped quantiser (fixed-point.ts): w·x unclipped, K limbs of b bits
   * per value (then L·K + 1 words); for statistics whose coordinates differ by orders of magnitude.
   */
  readonly fixed_point?: FixedPointConfig;
}

/** Words of a masked vector: L (or L·K with fixed point) values, then the weight. */
export function inputWords(cfg: SecAggConfig): number {
  return cfg.vector_length * (cfg.fixed_point?.limbs ?? 1) + 1;
}

/** Upper bound on L (a masked vector is 4·(L + 1) bytes). */
export const MAX_VECTOR_LENGTH = 1 << 26;

export interface SecAggConfigOptions {
  /** n: the number of clients selected for the round. */
  readonly clients: number;
  readonly vectorLength: number;
  readonly clip: number;
  readonly maxWeight: number;
  /** Default n − 1: the complete graph. */
  readonly neighbours?: number;
  /** Default `defaultThreshold` of the smallest degree (graph.ts). */
  readonly threshold?: number;
  /** Default the finest grid that cannot wrap: 32 − ⌈log2 n⌉. */
  readonly bits?: number;
  /** Exact sums in fixed point with this many fraction bits (fixed-point.ts) instead of clip-and-quantise. */
  readonly fixedPointFractionBits?: number;
}

/** A checked config with defaults filled in (see SecAggConfigOptions). */
export function secAggConfig(opts: SecAggConfigOptions): SecAggConfig {
  const n = opts.clients;
  if (!Number.isInteger(n) || n < 2) throw new SecAggProtocolError(`secure aggregation needs at least 2 clients, got ${n}`);
  const neighbours = opts.neighbours ?? n - 1;
  const [lo, hi] = degreeRange(n, neighbours);
  const threshold = opts.threshold ?? Math.max(defaultThreshold(lo), minimumThreshold(hi));
  let fixedPoint: FixedPointConfig | undefined;
  if (opts.fixedPointFractionBits !== undefined) {
    try {
      fixedPoint = fixedPointFor(n, opts.fixedPointFractionBits);
    } catch (err) {
      if (err instanceof QuantizationError) throw new SecAggProtocolError(`config: ${err.message}`);
      throw err;
    }
  }
  const bits = opts.bits ?? fixedPoint?.bits ?? quantizationFor(opts.clip * opts.maxWeight, n).bits;
  const cfg: SecAggConfig = {
    threshold,
    neighbours,
    clip: opts.clip,
    bits,
    max_weight: opts.maxWeight,
    vector_length: opts.vectorLength,
    ...(fixedPoint ? { fixed_point: fixedPoint } : {}),
  };
  checkConfig(cfg, n);
  return cfg;
}

/** The quantiser of w·clip(x): range W·R, b bits. */
export function quantizationOf(cfg: SecAggConfig): QuantizationConfig {
  return { clip: cfg.clip * cfg.max_weight, bits: cfg.bits };
}

function checkConfigShape(cfg: SecAggConfig): void {
  const int = (name: string, v: number, lo: number, hi: number) => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new SecAggProtocolError(`config: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int('threshold', cfg.threshold, 2, MAX_SHARES);
  int('neighbours', cfg.neighbours, 1, 1 << 30);
  int('bits', cfg.bits, 1, 32);
  int('max_weight', cfg.max_weight, 1, 0xffff_ffff);
  int('vector_length', cfg.vector_length, 1, MAX_VECTOR_LENGTH);
  if (!Number.isFinite(cfg.clip) || cfg.clip <= 0) throw new SecAggProtocolError(`config: clip R must be a finite number > 0, got ${cfg.clip}`);
  if (!Number.isFinite(cfg.clip * cfg.max_weight)) throw new SecAggProtocolError(`config: the quantisation range W·R = ${cfg.max_weight}·${cfg.clip} is not finite`);
}

/** Checks a config for n selected clients: shapes, no wrap mod 2^32, and t against the graph's degrees. */
export function checkConfig(cfg: SecAggConfig, clients: number): void {
  checkConfigShape(cfg);
  const n = clients;
  if (!Number.isInteger(n) || n < 2) throw new SecAggProtocolError(`secure aggregation needs at least 2 clients, got ${n}`);
  try {
    quantizationFor(cfg.clip * cfg.max_weight, n, cfg.bits);
  } catch (err) {
    if (err instanceof QuantizationError) throw new SecAggProtocolError(`config: ${err.message}`);
    throw err;
  }
  if (n * cfg.max_weight >= 2 ** 32) throw new SecAggProtocolError(`config: ${n} clients × max_weight ${cfg.max_weight} ≥ 2^32: the sum of weights could wrap`);
  const fp = cfg.fixed_point;
  if (fp) {
    if (fp.bits !== cfg.bits) throw new SecAggProtocolError(`config: fixed-point limbs of ${fp.bits} bits, but bits is ${cfg.bits}`);
    if (inputWords(cfg) - 1 > MAX_VECTOR_LENGTH) throw new SecAggProtocolError(`config: ${cfg.vector_length} values × ${fp.limbs} limbs exceed ${MAX_VECTOR_LENGTH} words`);
  }
  const [lo, hi] = degreeRange(n, cfg.neighbours);
  if (hi + 1 > MAX_SHARES) throw new SecAggProtocolError(`config: a client would have ${hi} neighbours; Shamir over GF(2^8) allows at most ${MAX_SHARES - 1}`);
  if (cfg.threshold > lo + 1) throw new SecAggProtocolError(`config: threshold ${cfg.threshold} exceeds the ${lo + 1} share holders (${lo} neighbours + itself) of a client with ${n} clients and k = ${cfg.neighbours}`);
  if (cfg.threshold < minimumThreshold(hi)) {
    throw new SecAggProtocolError(
      `config: threshold ${cfg.threshold} is not a majority of the ${hi + 1} share holders of a client (needs ≥ ${minimumThreshold(hi)}): a server could collect both shares of one client from honest holders`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Messages: types, runtime schemas, wire helpers.

/** A client's signed advertisement, as it sends it and as the server relays it to neighbours. */
export interface Advertisement {
  readonly client_id: string;
  /** X25519 public key of the channel pair (32 bytes). */
  readonly c_pk: Uint8Array;
  /** X25519 public key of the mask pair (32 bytes). */
  readonly s_pk: Uint8Array;
  /** The client's long-lived identity public key (raw Ed25519 32 bytes or P-256 65 bytes). */
  readonly identity_pk: Uint8Array;
  /** signKeys over advertisedKeysMessage(run, round, client, c_pk, s_pk): 64 bytes. */
  readonly signature: Uint8Array;
}

interface Header<S extends SecAggStage> {
  readonly stage: S;
  readonly run_id: string;
  readonly round: number;
}

export interface AdvertiseKeysRequest extends Header<'advertise-keys'> {
  readonly config: SecAggConfig;
}
export interface AdvertiseKeysReply extends Header<'advertise-keys'>, Advertisement {}

export interface ShareKeysRequest extends Header<'share-keys'> {
  /** The advertisements of the recipient's neighbours (not its own). */
  readonly neighbours: readonly Advertisement[];
}
export interface ShareKeysReply extends Header<'share-keys'> {
  readonly client_id: string;
  /** One sealed pair of shares (b, s) per neighbour: SEALED_SHARES_BYTES each. */
  readonly shares: readonly { readonly to: string; readonly ciphertext: Uint8Array }[];
}

export interface MaskedInputRequest extends Header<'masked-input'> {
  /** The sealed shares addressed to the recipient, one per neighbour that completed share-keys. */
  readonly shares: readonly { readonly from: string; readonly ciphertext: Uint8Array }[];
}
export interface MaskedInputReply extends Header<'masked-input'> {
  readonly client_id: string;
  /** L + 1 words mod 2^32 (little-endian on the wire): masked quantised w·x, then the masked weight. */
  readonly masked: Uint32Array;
}

export interface ConsistencyCheckRequest extends Header<'consistency-check'> {
  /** U3: every client whose masked input is in the sum (the recipient among them). */
  readonly survivors: readonly string[];
}
export interface ConsistencyCheckReply extends Header<'consistency-check'> {
  readonly client_id: string;
  /** signSurvivors over (run, round, client_id, U3) with the identity key: 64 bytes. */
  readonly signature: Uint8Array;
}

export interface UnmaskRequest extends Header<'unmask'> {
  /** The recipient and those of its neighbours (whose shares it holds) that sent a masked input. */
  readonly survivors: readonly string[];
  /** Those of its neighbours (whose shares it holds) that did not. */
  readonly dropped: readonly string[];
  /** The consistency-check signatures of the recipient and of its surviving neighbours, over the U3 each was sent. */
  readonly signatures: readonly { readonly client_id: string; readonly signature: Uint8Array }[];
}
export interface UnmaskReply extends Header<'unmask'> {
  readonly client_id: string;
  /** The share of b_j, for each survivor j, as j dealt and signed it. */
  readonly b_shares: readonly RevealedShare[];
  /** The share of s_j's private key, for each dropped j, as j dealt and signed it. */
  readonly s_shares: readonly RevealedShare[];
}

/**
 * A share revealed at unmask: whose secret (the dealer), and encodeShare(share) ‖ the dealer's
 * signature over it (keys.ts signShare; SIGNED_SHARE_BYTES). One binary field per share: Socket.IO's
 * parser refuses a packet with more than 10 binary attachments.
 */
export interface RevealedShare {
  readonly client_id: string;
  readonly share: Uint8Array;
}

export type SecAggRequest = AdvertiseKeysRequest | ShareKeysRequest | MaskedInputRequest | ConsistencyCheckRequest | UnmaskRequest;
export type SecAggReply = AdvertiseKeysReply | ShareKeysReply | MaskedInputReply | ConsistencyCheckReply | UnmaskReply;

const SEED_BYTES = 32;
/** An encoded share of a 32-byte secret: [index, threshold, 32 bytes]. */
export const ENCODED_SHARE_BYTES = 2 + SEED_BYTES;
const SIGNATURE_BYTES = 64;
/** A share as dealt: its encoding, then the dealer's identity signature over it (keys.ts signShare). */
export const SIGNED_SHARE_BYTES = ENCODED_SHARE_BYTES + SIGNATURE_BYTES;
/** The sealed (b, s) share pair one client sends a neighbour: IV ‖ 2 signed encoded shares ‖ tag. */
export const SEALED_SHARES_BYTES = GCM_IV_BYTES + 2 * SIGNED_SHARE_BYTES + GCM_TAG_BYTES;

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const isBinary = (v: unknown): v is ArrayBuffer | ArrayBufferView => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
const toBytes = (v: ArrayBuffer | ArrayBufferView) => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength));

/** Raw bytes as they arrive (Node Buffer, Uint8Array, ArrayBuffer), as a Uint8Array view. */
const bytesSchema = z.custom<ArrayBuffer | ArrayBufferView>(isBinary, { message: 'expected binary data' }).transform(toBytes);
/** Upper bound on the clients of one round (the survivor list of consistency-check). */
const MAX_ROUND_CLIENTS = 1 << 16;
const fixedBytes = (length: number) => bytesSchema.refine((b) => b.length === length, { message: `expected ${length} bytes` });

/** Little-endian uint32 words from bytes; a Uint32Array passes as it is (in-process transports). */
export function bytesToWords(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw new SecAggProtocolError(`${bytes.length} bytes are not a whole number of 32-bit words`);
  const out = new Uint32Array(bytes.length / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getUint32(4 * i, true);
  }
  return out;
}

/** The little-endian bytes of words (a view on little-endian hosts, a copy otherwise). */
export function wordsToBytes(words: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Uint8Array(words.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i] as number, true);
  return out;
}

const wordsSchema = z
  .custom<ArrayBuffer | ArrayBufferView>(isBinary, { message: 'expected binary data (little-endian uint32 words)' })
  .transform((v, ctx) => {
    if (v instanceof Uint32Array) return v;
    const bytes = toBytes(v);
    if (bytes.length % 4 !== 0) {
      ctx.addIssue({ code: 'custom', message: `${bytes.length} bytes are not a whole number of 32-bit words` });
      return z.NEVER;
    }
    return bytesToWords(bytes);
  });

const idSchema = z.string().min(1).max(64);
const runIdSchema = z.string().min(1).max(64);
const roundSchema = z.number().int().min(0).max(0xffff_ffff);
const header = <S extends SecAggStage>(stage: S) => ({ stage: z.literal(stage), run_id: runIdSchema, round: roundSchema });

export const secAggConfigSchema = z.object({
  threshold: z.number().int().min(2).max(MAX_SHARES),
  neighbours: z.number().int().min(1),
  clip: z.number().positive(),
  bits: z.number().int().min(1).max(32),
  max_weight: z.number().int().min(1).max(0xffff_ffff),
  vector_length: z.number().int().min(1).max(MAX_VECTOR_LENGTH),
  fixed_point: z
    .object({ fraction_bits: z.number().int().min(0).max(52), bits: z.number().int().min(1).max(32), limbs: z.number().int().min(1).max(16) })
    .optional(),
});

const advertisementFields = {
  client_id: idSchema,
  c_pk: fixedBytes(PUBLIC_KEY_BYTES),
  s_pk: fixedBytes(PUBLIC_KEY_BYTES),
  identity_pk: bytesSchema.refine((b) => b.length === 32 || b.length === 65, { message: 'expected a 32-byte Ed25519 or 65-byte P-256 public key' }),
  signature: fixedBytes(64),
};

export const advertiseKeysRequestSchema = z.object({ ...header('advertise-keys'), config: secAggConfigSchema });
export const advertiseKeysReplySchema = z.object({ ...header('advertise-keys'), ...advertisementFields });
export const shareKeysRequestSchema = z.object({ ...header('share-keys'), neighbours: z.array(z.object(advertisementFields)).max(MAX_SHARES) });
export const shareKeysReplySchema = z.object({
  ...header('share-keys'),
  client_id: idSchema,
  shares: z.array(z.object({ to: idSchema, ciphertext: fixedBytes(SEALED_SHARES_BYTES) })).max(MAX_SHARES),
});
export const maskedInputRequestSchema = z.object({
  ...header('masked-input'),
  shares: z.array(z.object({ from: idSchema, ciphertext: fixedBytes(SEALED_SHARES_BYTES) })).max(MAX_SHARES),
});
export const maskedInputReplySchema = z.object({ ...header('masked-input'), client_id: idSchema, masked: wordsSchema });
export const consistencyCheckRequestSchema = z.object({ ...header('consistency-check'), survivors: z.array(idSchema).max(MAX_ROUND_CLIENTS) });
export const consistencyCheckReplySchema = z.object({ ...header('consistency-check'), client_id: idSchema, signature: fixedBytes(64) });
export const unmaskRequestSchema = z.object({
  ...header('unmask'),
  survivors: z.array(idSchema).max(MAX_SHARES),
  dropped: z.array(idSchema).max(MAX_SHARES),
  signatures: z.array(z.object({ client_id: idSchema, signature: fixedBytes(64) })).max(MAX_SHARES),
});
const revealedShares = z.array(z.object({ client_id: idSchema, share: fixedBytes(SIGNED_SHARE_BYTES) })).max(MAX_SHARES);
export const unmaskReplySchema = z.object({ ...header('unmask'), client_id: idSchema, b_shares: revealedShares, s_shares: revealedShares });

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string, clientId?: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new SecAggProtocolError(`invalid ${what}: ${z.prettifyError(parsed.error)}`, clientId);
  return parsed.data;
}

function checkHeader(msg: Header<SecAggStage>, runId: string, round: number, what: string, clientId?: string): void {
  if (msg.run_id !== runId || msg.round !== round) {
    throw new SecAggProtocolError(`${what} is for run ${msg.run_id} round ${msg.round}, expected run ${runId} round ${round}`, clientId);
  }
}

/** Throws on a repeated id; returns the ids as a set. */
function distinct(ids: readonly string[], what: string, clientId?: string): Set<string> {
  const set = new Set<string>();
  for (const id of ids) {
    if (set.has(id)) throw new SecAggProtocolError(`${what} lists client ${id} twice`, clientId);
    set.add(id);
  }
  return set;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

const shareAad = (runId: string, round: number, from: string, to: string) => encodeFields(['fedcare/secagg/share-keys/v1', runId, String(round), from, to]);
const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const hexPrefix = (b: Uint8Array) => `${toHex(b.subarray(0, 6))}…`;
/** The X25519 base point u = 9: agree(sk, BASE_POINT) is sk's public key. */
const BASE_POINT = Uint8Array.from({ length: PUBLIC_KEY_BYTES }, (_, i) => (i === 0 ? 9 : 0));

/**
 * A client's input as it enters the sum, before masking: quantize(w·clip(x, R)) on the grid of
 * [−W·R, W·R], then w as the last word. Length L + 1.
 */
export function encodeInput(update: Float32Array | Float64Array, weight: number, cfg: SecAggConfig, random: RandomSource = cryptoRandom): Uint32Array {
  if (update.length !== cfg.vector_length) throw new SecAggProtocolError(`the update has ${update.length} values, the round expects ${cfg.vector_length}`);
  if (!Number.isInteger(weight) || weight < 1 || weight > cfg.max_weight) throw new SecAggProtocolError(`the weight must be an integer in [1, max_weight = ${cfg.max_weight}], got ${weight}`);
  if (cfg.fixed_point) {
    // Exact sums: w·x in fixed point, no clipping (a value beyond the range is an error, never moved).
    const out = new Uint32Array(inputWords(cfg));
    try {
      out.set(encodeFixedPoint(weight === 1 ? update : Float64Array.from(update, (v) => v * weight), cfg.fixed_point));
    } catch (err) {
      if (err instanceof QuantizationError) throw new SecAggProtocolError(`the input cannot be encoded: ${err.message}`);
      throw err;
    }
    out[out.length - 1] = weight;
    return out;
  }
  const r = cfg.clip;
  const weighted = new Float64Array(update.length);
  for (let i = 0; i < update.length; i++) {
    const v = update[i] as number;
    weighted[i] = weight * (v > r ? r : v < -r ? -r : v); // NaN passes through; quantize rejects it
  }
  const out = new Uint32Array(update.length + 1);
  out.set(quantize(weighted, quantizationOf(cfg), random));
  out[update.length] = weight;
  return out;
}

/**
 * A relayed identity key against the host's pins: PinMismatchError for a key other than the pinned
 * one, or for an unpinned hospital when pins are required (a roster). True when it was pinned;
 * false when it is new (trust on first use: the caller may pin it).
 */
export function checkPinnedIdentity(pins: ReadonlyMap<string, Uint8Array>, clientId: string, identityPk: Uint8Array, requirePins: boolean): boolean {
  const pinned = pins.get(clientId);
  if (pinned !== undefined) {
    if (!equalBytes(pinned, identityPk)) {
      throw new PinMismatchError(
        clientId,
        `the identity key relayed for hospital ${clientId} (${hexPrefix(identityPk)}) differs from the one pinned for it (${hexPrefix(pinned)}): the coordinator substituted it, or the hospital changed its key; abort the round`,
      );
    }
    return true;
  }
  if (requirePins) throw new PinMismatchError(clientId, `no identity key is pinned for hospital ${clientId} and pins are required: refusing to trust the key the coordinator relayed`);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Client.

export type Pins = ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;

export interface SecAggClientOptions {
  readonly clientId: string;
  /** The long-lived identity key pair (Ed25519 or ECDSA P-256) whose public key the others pin. */
  readonly identity: KeyPair;
  /** Hospital id → identity public key (raw bytes), as the host trusts them (TOFU or provisioned). */
  readonly pins?: Pins;
  /** Refuse a neighbour whose identity key is not pinned (instead of trusting it on first use). */
  readonly requirePins?: boolean;
  /** Bytes for the self-mask seed and Shamir coefficients; the CSPRNG by default (tests: seeded). */
  readonly random?: RandomBytes;
  /** Uniforms for stochastic rounding; the CSPRNG by default. */
  readonly quantizeRandom?: RandomSource;
  /** Round key generation; `generateRoundKeyPairs` by default (tests: deterministic keys). */
  readonly generateKeys?: () => Promise<RoundKeyPairs>;
}

type ClientPhase = 'new' | 'advertised' | 'shared' | 'masked' | 'checked' | 'unmasked';

/** A share as its holder keeps it: the share and its dealer's signature over it (keys.ts signShare). */
interface SignedShare {
  readonly share: Share;
  readonly signature: Uint8Array;
}

function reveal(dealer: string, s: SignedShare): RevealedShare {
  const share = new Uint8Array(SIGNED_SHARE_BYTES);
  share.set(encodeShare(s.share));
  share.set(s.signature, ENCODED_SHARE_BYTES);
  return { client_id: dealer, share };
}

interface Neighbour {
  readonly sPk: Uint8Array;
  readonly channel: Key;
  /** Its identity public key, as verified in share-keys (checks its consistency-check signature). */
  readonly identity: Key;
}

/**
 * One client's side of one round. Call advertise, shareKeys, maskedInput, unmask in order with
 * the server's requests (unknown payloads are validated here); each returns the reply to send.
 * Between stages it keeps: its round key pairs, its self-mask seed b and its own share of b, a
 * channel key per neighbour, the shares its neighbours sent it, and the unmask split it answered.
 */
export class SecAggClient {
  readonly clientId: string;
  private readonly identity: KeyPair;
  private readonly pins: ReadonlyMap<string, Uint8Array>;
  private readonly requirePins: boolean;
  private readonly random: RandomBytes;
  private readonly quantizeRandom: RandomSource;
  private readonly generateKeys: () => Promise<RoundKeyPairs>;
  private readonly seen = new Map<string, Uint8Array>();

  private phase: ClientPhase = 'new';
  private failure: unknown = undefined;
  private runId = '';
  private round = 0;
  private config: SecAggConfig | undefined;
  private keys: RoundKeyPairs | undefined;
  private neighbours = new Map<string, Neighbour>();
  private selfSeed: Uint8Array | undefined;
  /** Its own share of b, signed by itself as dealer (revealed when it survives). */
  private ownShare: SignedShare | undefined;
  /** Neighbours that completed share-keys (whose shares it holds; it masks with exactly these), each share with its dealer's signature. */
  private held = new Map<string, { readonly b: SignedShare; readonly s: SignedShare }>();
  private revealed: { readonly survivors: ReadonlySet<string>; readonly dropped: ReadonlySet<string>; readonly reply: UnmaskReply } | undefined;
  /** U3 as it signed it in consistency-check: unmask must agree with it. */
  private signedSurvivors: ReadonlySet<string> | undefined;

  constructor(opts: SecAggClientOptions) {
    this.clientId = parse(idSchema, opts.clientId, 'client id');
    this.identity = opts.identity;
    const pins = opts.pins ?? new Map<string, Uint8Array>();
    this.pins = pins instanceof Map ? pins : new Map(Object.entries(pins as Readonly<Record<string, Uint8Array>>));
    this.requirePins = opts.requirePins ?? false;
    this.random = opts.random ?? cryptoRandomBytes;
    this.quantizeRandom = opts.quantizeRandom ?? cryptoRandom;
    this.generateKeys = opts.generateKeys ?? generateRoundKeyPairs;
  }

  /** Identity keys of hospitals that had no pin, accepted on first use this round: the host may pin them. */
  get firstSeen(): ReadonlyMap<string, Uint8Array> {
    return this.seen;
  }

  /** Stage 1: fresh round keys, signed with the identity key. */
  advertise(request: unknown): Promise<AdvertiseKeysReply> {
    return this.step('new', 'advertise-keys', async () => {
      const req = parse(advertiseKeysRequestSchema, request, 'advertise-keys request');
      checkConfigShape(req.config);
      this.runId = req.run_id;
      this.round = req.round;
      this.config = req.config;
      this.keys = await this.generateKeys();
      const keys: AdvertisedKeys = {
        run_id: req.run_id,
        round: req.round,
        client_id: this.clientId,
        c_pk: await exportPublicKey(this.keys.c.publicKey),
        s_pk: await exportPublicKey(this.keys.s.publicKey),
      };
      const signature = await signKeys(this.identity.privateKey, keys);
      const identity_pk = await exportIdentityPublicKey(this.identity.publicKey);
      this.phase = 'advertised';
      return { stage: 'advertise-keys', run_id: keys.run_id, round: keys.round, client_id: this.clientId, c_pk: keys.c_pk, s_pk: keys.s_pk, identity_pk, signature };
    });
  }

  /** Stage 2: verify the neighbours' advertisements, split b and s_sk among them and itself, seal each neighbour's pair. */
  shareKeys(request: unknown): Promise<ShareKeysReply> {
    return this.step('advertised', 'share-keys', async () => {
      const req = parse(shareKeysRequestSchema, request, 'share-keys request');
      checkHeader(req, this.runId, this.round, 'share-keys request');
      const cfg = this.config as SecAggConfig;
      const keys = this.keys as RoundKeyPairs;
      const ids = distinct(
        req.neighbours.map((a) => a.client_id),
        'share-keys request',
      );
      if (ids.has(this.clientId)) throw new SecAggProtocolError(`share-keys request lists ${this.clientId} as its own neighbour`, this.clientId);
      const k = ids.size;
      if (k === 0) throw new SecAggAbortError(`client ${this.clientId} was given no neighbours: nothing can mask its input`, this.clientId);
      if (cfg.threshold > k + 1) {
        throw new SecAggAbortError(`client ${this.clientId} has ${k} neighbours: ${k + 1} share holders, fewer than the threshold ${cfg.threshold}`, this.clientId);
      }
      if (2 * cfg.threshold <= k + 1) {
        throw new SecAggAbortError(`client ${this.clientId} was given ${k} neighbours: threshold ${cfg.threshold} is not a majority of the ${k + 1} share holders`, this.clientId);
      }
      const identities = new Map<string, Key>();
      for (const ad of req.neighbours) identities.set(ad.client_id, await this.verify(ad));

      this.selfSeed = this.random(SEED_BYTES);
      if (this.selfSeed.length !== SEED_BYTES) throw new SecAggProtocolError(`random(${SEED_BYTES}) returned ${this.selfSeed.length} bytes`);
      const sk = await exportPrivateKey(keys.s.privateKey);
      const holders = [...ids, this.clientId].sort();
      const bShares = split(this.selfSeed, cfg.threshold, holders.length, this.random);
      const sShares = split(sk, cfg.threshold, holders.length, this.random);
      sk.fill(0);
      // Every share is signed as dealt (dealer, holder, kind): a holder that alters one at unmask is caught and named.
      const deal = async (holder: string, kind: 'b' | 's', share: Share): Promise<Uint8Array> => {
        const encoded = encodeShare(share);
        const signature = await signShare(this.identity.privateKey, { run_id: this.runId, round: this.round, dealer: this.clientId, holder, kind, share: encoded });
        const out = new Uint8Array(SIGNED_SHARE_BYTES);
        out.set(encoded);
        out.set(signature, ENCODED_SHARE_BYTES);
        encoded.fill(0);
        return out;
      };
      const own = bShares[holders.indexOf(this.clientId)] as Share;
      this.ownShare = { share: own, signature: (await deal(this.clientId, 'b', own)).slice(ENCODED_SHARE_BYTES) };
      const shares: { to: string; ciphertext: Uint8Array }[] = [];
      for (const ad of req.neighbours) {
        const channel = await channelKey(await agree(keys.c.privateKey, ad.c_pk), { runId: this.runId, round: this.round, clients: [this.clientId, ad.client_id] });
        this.neighbours.set(ad.client_id, { sPk: ad.s_pk, channel, identity: identities.get(ad.client_id) as Key });
        const at = holders.indexOf(ad.client_id);
        const plaintext = new Uint8Array(2 * SIGNED_SHARE_BYTES);
        plaintext.set(await deal(ad.client_id, 'b', bShares[at] as Share));
        plaintext.set(await deal(ad.client_id, 's', sShares[at] as Share), SIGNED_SHARE_BYTES);
        shares.push({ to: ad.client_id, ciphertext: await seal(channel, plaintext, shareAad(this.runId, this.round, this.clientId, ad.client_id)) });
        plaintext.fill(0);
      }
      this.phase = 'shared';
      return { stage: 'share-keys', run_id: this.runId, round: this.round, client_id: this.clientId, shares };
    });
  }

  /** Stage 3: open the shares addressed to it, then send [q(w·clip(x)), w] + self mask ± pairwise masks. */
  maskedInput(request: unknown, update: Float32Array | Float64Array, weight: number): Promise<MaskedInputReply> {
    return this.step('shared', 'masked-input', async () => {
      const req = parse(maskedInputRequestSchema, request, 'masked-input request');
      checkHeader(req, this.runId, this.round, 'masked-input request');
      const cfg = this.config as SecAggConfig;
      const keys = this.keys as RoundKeyPairs;
      distinct(
        req.shares.map((s) => s.from),
        'masked-input request',
      );
      for (const { from } of req.shares) {
        if (!this.neighbours.has(from)) throw new SecAggProtocolError(`masked-input request carries shares from ${from}, not a neighbour of ${this.clientId}`, this.clientId);
      }
      if (req.shares.length + 1 < cfg.threshold) {
        throw new SecAggAbortError(
          `client ${this.clientId}: only ${req.shares.length} neighbours completed share-keys, ${req.shares.length + 1} share holders of its secrets, threshold ${cfg.threshold}`,
          this.clientId,
        );
      }
      const input = encodeInput(update, weight, cfg, this.quantizeRandom); // checks length and weight first
      for (const { from, ciphertext } of req.shares) {
        const neighbour = this.neighbours.get(from) as Neighbour;
        let plaintext: Uint8Array;
        try {
          plaintext = await open(neighbour.channel, ciphertext, shareAad(this.runId, this.round, from, this.clientId));
        } catch (err) {
          throw new SecAggCryptoError(`the shares from ${from} to ${this.clientId} fail authentication (${(err as Error).message})`);
        }
        if (plaintext.length !== 2 * SIGNED_SHARE_BYTES) throw new SecAggProtocolError(`the shares from ${from} are ${plaintext.length} bytes, expected ${2 * SIGNED_SHARE_BYTES}`, from);
        const signed = async (at: number, kind: 'b' | 's'): Promise<SignedShare> => {
          const encoded = plaintext.slice(at, at + ENCODED_SHARE_BYTES);
          const signature = plaintext.slice(at + ENCODED_SHARE_BYTES, at + SIGNED_SHARE_BYTES);
          // The dealer's signature is checked now, so this client never reveals a share it could be blamed for.
          const dealt = { run_id: this.runId, round: this.round, dealer: from, holder: this.clientId, kind, share: encoded };
          if (!(await verifyShare(neighbour.identity, dealt, signature))) {
            throw new SecAggProtocolError(`the ${kind === 'b' ? 'self-mask' : 'mask-key'} share from ${from} to ${this.clientId} does not carry ${from}'s identity signature`, from);
          }
          const share = decodeShare(encoded);
          encoded.fill(0);
          return { share, signature };
        };
        let b: SignedShare;
        let s: SignedShare;
        try {
          b = await signed(0, 'b');
          s = await signed(SIGNED_SHARE_BYTES, 's');
        } finally {
          plaintext.fill(0);
        }
        if (b.share.index !== s.share.index || b.share.threshold !== cfg.threshold || s.share.threshold !== cfg.threshold) {
          throw new SecAggProtocolError(
            `the shares from ${from} are malformed (index ${b.share.index}/${s.share.index}, threshold ${b.share.threshold}/${s.share.threshold}, expected ${cfg.threshold})`,
            from,
          );
        }
        this.held.set(from, { b, s });
      }
      const masked = input;
      await applyMask(masked, this.selfSeed as Uint8Array, 1);
      for (const from of [...this.held.keys()].sort()) {
        const neighbour = this.neighbours.get(from) as Neighbour;
        const seed = await pairwiseMaskSeed(await agree(keys.s.privateKey, neighbour.sPk), { runId: this.runId, round: this.round, clients: [this.clientId, from] });
        await applyMask(masked, seed, pairwiseSign(this.clientId, from));
      }
      this.phase = 'masked';
      return { stage: 'masked-input', run_id: this.runId, round: this.round, client_id: this.clientId, masked };
    });
  }

  /**
   * Stage 4: confirm the survivor set U3 by signing it with the identity key, after checking that
   * it includes itself and leaves at least t holders of its own secrets. It remembers the set:
   * unmask must agree with it.
   */
  consistencyCheck(request: unknown): Promise<ConsistencyCheckReply> {
    return this.step('masked', 'consistency-check', async () => {
      const req = parse(consistencyCheckRequestSchema, request, 'consistency-check request');
      checkHeader(req, this.runId, this.round, 'consistency-check request');
      const survivors = distinct(req.survivors, 'consistency-check request (survivors)', this.clientId);
      if (!survivors.has(this.clientId)) throw new SecAggProtocolError(`consistency-check request does not list ${this.clientId} itself among the survivors, yet asks it to confirm them`, this.clientId);
      const t = (this.config as SecAggConfig).threshold;
      const holders = [...this.held.keys()].filter((j) => survivors.has(j)).length + 1;
      if (holders < t) {
        throw new SecAggAbortError(`client ${this.clientId}: only ${holders} holders of its self-mask shares survived (itself and ${holders - 1} neighbours), threshold ${t}`, this.clientId);
      }
      const signature = await signSurvivors(this.identity.privateKey, { run_id: this.runId, round: this.round, client_id: this.clientId, survivors: [...survivors] });
      this.signedSurvivors = survivors;
      this.phase = 'checked';
      return { stage: 'consistency-check', run_id: this.runId, round: this.round, client_id: this.clientId, signature };
    });
  }

  /**
   * Stage 5: reveal its share of b_j for each survivor j (itself included) and of s_j for each
   * dropped j. Refuses a client in both lists, and any split other than the first it answered
   * (the same request again gets the same reply). The split must be the one the survivor set it
   * signed in consistency-check implies, and
   * at least t of its share-holding neighbourhood (itself included) must have signed that same set
   * (Bonawitz et al. 2017's consistency check): a server that told different clients different
   * survivor sets cannot gather the signatures to ask for both shares of one client.
   */
  unmask(request: unknown): Promise<UnmaskReply> {
    return this.step(this.phase === 'unmasked' ? 'unmasked' : 'checked', 'unmask', async () => {
      const req = parse(unmaskRequestSchema, request, 'unmask request');
      checkHeader(req, this.runId, this.round, 'unmask request');
      const survivors = distinct(req.survivors, 'unmask request (survivors)', this.clientId);
      const dropped = distinct(req.dropped, 'unmask request (dropped)', this.clientId);
      for (const j of survivors) {
        if (dropped.has(j)) {
          throw new RevealRefusedError(
            `${this.clientId} refuses to unmask: the server lists ${j} as both survivor and dropped, asking for both its self-mask share and its mask-key share (together they unmask its input)`,
            j,
          );
        }
      }
      if (this.revealed !== undefined) {
        if (sameSet(survivors, this.revealed.survivors) && sameSet(dropped, this.revealed.dropped)) return this.revealed.reply;
        const flipped = [...this.revealed.survivors].filter((j) => dropped.has(j)).concat([...this.revealed.dropped].filter((j) => survivors.has(j)));
        throw new RevealRefusedError(
          `${this.clientId} refuses to unmask again with a different split${flipped.length > 0 ? `: ${flipped.join(', ')} changed between survivor and dropped, which would reveal both shares` : ''}`,
          flipped[0] ?? this.clientId,
        );
      }
      if (!survivors.has(this.clientId)) throw new SecAggProtocolError(`unmask request does not list ${this.clientId} itself among the survivors, yet asks it to unmask`, this.clientId);
      for (const j of [...survivors, ...dropped]) {
        if (j !== this.clientId && !this.held.has(j)) throw new SecAggProtocolError(`unmask request names ${j}, whose shares ${this.clientId} does not hold`, j);
      }
      for (const j of this.held.keys()) {
        if (!survivors.has(j) && !dropped.has(j)) throw new SecAggProtocolError(`unmask request does not say whether neighbour ${j} survived`, j);
      }
      const signed = this.signedSurvivors as ReadonlySet<string>;
      for (const j of this.held.keys()) {
        if (survivors.has(j) !== signed.has(j)) {
          throw new RevealRefusedError(
            `${this.clientId} refuses to unmask: the server calls ${j} ${survivors.has(j) ? 'a survivor' : 'dropped'}, but the survivor set it confirmed in consistency-check says otherwise`,
            j,
          );
        }
      }
      const signers = distinct(
        req.signatures.map((x) => x.client_id),
        'unmask request (signatures)',
        this.clientId,
      );
      let valid = 0;
      for (const { client_id: j, signature } of req.signatures) {
        if (!signed.has(j) || (j !== this.clientId && !this.held.has(j))) {
          throw new SecAggProtocolError(`unmask request carries a consistency signature of ${j}, not a surviving neighbour of ${this.clientId}`, j);
        }
        const key = j === this.clientId ? this.identity.publicKey : (this.neighbours.get(j) as Neighbour).identity;
        if (!(await verifySurvivors(key, { run_id: this.runId, round: this.round, client_id: j, survivors: [...signed] }, signature))) {
          throw new SecAggAbortError(
            `client ${this.clientId}: the consistency signature of ${j} is not over the survivor set ${this.clientId} confirmed: the server showed clients different survivor sets`,
            j,
          );
        }
        valid++;
      }
      const t = (this.config as SecAggConfig).threshold;
      if (valid < t) {
        throw new SecAggAbortError(`client ${this.clientId}: ${valid} consistency signatures (${[...signers].sort().join(', ') || 'none'}) on the survivor set, threshold ${t}`, this.clientId);
      }
      const reply: UnmaskReply = {
        stage: 'unmask',
        run_id: this.runId,
        round: this.round,
        client_id: this.clientId,
        b_shares: [...survivors].sort().map((j) => reveal(j, j === this.clientId ? (this.ownShare as SignedShare) : (this.held.get(j) as { b: SignedShare }).b)),
        s_shares: [...dropped].sort().map((j) => reveal(j, (this.held.get(j) as { s: SignedShare }).s)),
      };
      this.revealed = { survivors, dropped, reply };
      this.phase = 'unmasked';
      return reply;
    });
  }

  /** Pins, then the signature: a substituted identity key is named as such before its signature is even checked. */
  private async verify(ad: Advertisement): Promise<Key> {
    if (!checkPinnedIdentity(this.pins, ad.client_id, ad.identity_pk, this.requirePins)) this.seen.set(ad.client_id, ad.identity_pk.slice());
    let identity: Key;
    try {
      identity = await importIdentityPublicKey(ad.identity_pk);
    } catch {
      throw new KeySignatureError(ad.client_id);
    }
    await assertKeysSigned(identity, { run_id: this.runId, round: this.round, client_id: ad.client_id, c_pk: ad.c_pk, s_pk: ad.s_pk }, ad.signature);
    return identity;
  }

  /** Runs one stage if the client is in `expected` phase; any error aborts the client's round for good. */
  private async step<T>(expected: ClientPhase, stage: SecAggStage, body: () => Promise<T>): Promise<T> {
    if (this.failure !== undefined) throw this.failure;
    if (this.phase !== expected) throw new SecAggProtocolError(`client ${this.clientId} got a ${stage} request in phase ${this.phase}`, this.clientId);
    try {
      return await body();
    } catch (err) {
      this.failure = err;
      this.neighbours.clear();
      this.held.clear();
      this.selfSeed?.fill(0);
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server.

export interface SecAggServerOptions {
  readonly runId: string;
  readonly round: number;
  readonly config: SecAggConfig;
  /** The clients selected for the round (the transport-authenticated ids replies come from). */
  readonly clients: readonly string[];
  /** Seed of the round's neighbour graph (combined with run and round). */
  readonly seed: string | number;
  /** Optional registry of identity keys: an advertisement with another identity key is rejected. */
  readonly identities?: ReadonlyMap<string, Uint8Array>;
}

export interface SecAggResult {
  /** Σ over survivors of w_i·clip(x_i, R) (with fixed point: of w_i·x_i, unclipped), within `errorBound` per coordinate. */
  readonly sum: Float64Array;
  /** Σ over survivors of w_i. */
  readonly totalWeight: number;
  /** Clients whose inputs are in the sum (sent a masked input), sorted. */
  readonly survivors: readonly string[];
  /** Every selected client that failed to answer a stage, with the first stage it missed (one lost at unmask is still a survivor). */
  readonly dropped: readonly { readonly client_id: string; readonly stage: SecAggStage }[];
  /** Clients lost after share-keys whose pairwise masks were removed with their rebuilt mask keys. */
  readonly recovered: readonly string[];
  /** Clients that revealed a share without its dealer's valid signature at unmask (the share was discarded; the client's own input stays in the sum). */
  readonly rejected: readonly { readonly client_id: string; readonly stage: SecAggStage; readonly reason: string }[];
  /** |sum − Σ w_i·clip(x_i)| < errorBound per coordinate: |survivors|·Δ, Δ = 2·W·R/(2^b − 1); with fixed point |survivors|·2^−(F+1) (plus float64's last place of the sum). */
  readonly errorBound: number;
}

type ServerPhase = SecAggStage | 'done' | 'aborted';

/**
 * The server's side of one round. For each stage: send the requests (`advertiseRequest`,
 * `shareKeysRequests`, …, one per client), feed each reply that arrives in time to the matching
 * `receive…` (it validates and throws SecAggProtocolError on a bad one: treat that client as
 * dropped), then call the next stage's request method, which closes the stage. `result()` closes
 * unmask and rebuilds the sum. Stage closers throw SecAggAbortError when the round cannot complete.
 */
export class SecAggServer {
  readonly runId: string;
  readonly round: number;
  readonly config: SecAggConfig;
  private readonly selected: readonly string[];
  private readonly seed: string | number;
  private readonly identities: ReadonlyMap<string, Uint8Array> | undefined;
  private phase: ServerPhase = 'advertise-keys';
  private readonly lost: { client_id: string; stage: SecAggStage }[] = [];

  private readonly ads = new Map<string, Advertisement>();
  /** The identity keys of the advertisements, imported (they verify the dealers' signatures on revealed shares). */
  private readonly identityKeys = new Map<string, Key>();
  /** Clients whose replies carried forged or altered shares, and what was wrong. */
  private readonly rejected: { client_id: string; stage: SecAggStage; reason: string }[] = [];
  private graph: NeighbourGraph = new Map();
  /** from → to → sealed shares. Keys: the clients that completed share-keys (U2). */
  private readonly sealed = new Map<string, ReadonlyMap<string, Uint8Array>>();
  private u2 = new Set<string>();
  private sum: Uint32Array | undefined;
  private readonly u3 = new Set<string>();
  private dropped = new Set<string>();
  private readonly asked = new Map<string, { readonly survivors: ReadonlySet<string>; readonly dropped: ReadonlySet<string> }>();
  private readonly bShares = new Map<string, Share[]>();
  private readonly sShares = new Map<string, Share[]>();
  private readonly answered = new Set<string>();
  /** Survivors' consistency-check signatures over U3 (U4: those who signed). */
  private readonly signatures = new Map<string, Uint8Array>();

  constructor(opts: SecAggServerOptions) {
    this.runId = parse(runIdSchema, opts.runId, 'run id');
    this.round = parse(roundSchema, opts.round, 'round');
    this.config = parse(secAggConfigSchema, opts.config, 'config');
    this.selected = [...distinct(parse(z.array(idSchema), opts.clients, 'client list'), 'the selected clients')].sort();
    checkConfig(this.config, this.selected.length);
    this.seed = opts.seed;
    this.identities = opts.identities;
  }

  /** The current stage, or 'done' / 'aborted'. */
  get stage(): ServerPhase {
    return this.phase;
  }

  /** Stage 1's request (the same for every selected client). */
  advertiseRequest(): AdvertiseKeysRequest {
    this.expect('advertise-keys', 'advertiseRequest');
    return { stage: 'advertise-keys', run_id: this.runId, round: this.round, config: this.config };
  }

  async receiveAdvertise(clientId: string, reply: unknown): Promise<void> {
    this.expectReply('advertise-keys', clientId, this.selected.includes(clientId), this.ads.has(clientId));
    const msg = parse(advertiseKeysReplySchema, reply, `advertise-keys reply from ${clientId}`, clientId);
    this.checkReply(msg, clientId);
    const registered = this.identities?.get(clientId);
    if (registered !== undefined && !equalBytes(registered, msg.identity_pk)) {
      throw new SecAggProtocolError(`client ${clientId} advertised with identity key ${hexPrefix(msg.identity_pk)}, not its registered ${hexPrefix(registered)}`, clientId);
    }
    let identity: Key;
    try {
      identity = await importIdentityPublicKey(msg.identity_pk);
    } catch {
      throw new KeySignatureError(clientId);
    }
    await assertKeysSigned(identity, { run_id: this.runId, round: this.round, client_id: clientId, c_pk: msg.c_pk, s_pk: msg.s_pk }, msg.signature);
    if (this.phase !== 'advertise-keys' || this.ads.has(clientId)) throw new SecAggProtocolError(`advertise-keys reply from ${clientId} came twice or late`, clientId);
    this.ads.set(clientId, { client_id: clientId, c_pk: msg.c_pk, s_pk: msg.s_pk, identity_pk: msg.identity_pk, signature: msg.signature });
    this.identityKeys.set(clientId, identity);
  }

  /** Closes advertise-keys: builds the graph over the clients that advertised; one request per client. */
  shareKeysRequests(): Map<string, ShareKeysRequest> {
    this.expect('advertise-keys', 'shareKeysRequests');
    const u1 = [...this.ads.keys()].sort();
    this.markLost(this.selected, new Set(u1), 'advertise-keys');
    const t = this.config.threshold;
    if (u1.length < 2) this.abort(`only ${u1.length} of ${this.selected.length} clients advertised keys: secure aggregation needs at least 2 (threshold ${t})`);
    this.graph = neighbourGraph(u1, this.config.neighbours, `${this.seed}/${this.runId}/${this.round}`);
    for (const [i, ns] of this.graph) {
      const holders = ns.length + 1;
      if (holders < t) this.abort(`client ${i} has ${ns.length} neighbours after ${this.lost.length} dropped at advertise-keys: ${holders} share holders, threshold ${t}`, i);
      if (2 * t <= holders) this.abort(`client ${i} has ${ns.length} neighbours: threshold ${t} is not a majority of its ${holders} share holders`, i);
    }
    this.phase = 'share-keys';
    return new Map(
      u1.map((i) => [i, { stage: 'share-keys', run_id: this.runId, round: this.round, neighbours: (this.graph.get(i) ?? []).map((j) => this.ads.get(j) as Advertisement) }]),
    );
  }

  async receiveShareKeys(clientId: string, reply: unknown): Promise<void> {
    this.expectReply('share-keys', clientId, this.ads.has(clientId), this.sealed.has(clientId));
    const msg = parse(shareKeysReplySchema, reply, `share-keys reply from ${clientId}`, clientId);
    this.checkReply(msg, clientId);
    const to = distinct(
      msg.shares.map((s) => s.to),
      `share-keys reply from ${clientId}`,
      clientId,
    );
    const expected = new Set(this.graph.get(clientId) ?? []);
    if (!sameSet(to, expected)) {
      throw new SecAggProtocolError(`share-keys reply from ${clientId} addresses [${[...to].sort().join(', ')}], its neighbours are [${[...expected].join(', ')}]`, clientId);
    }
    this.sealed.set(clientId, new Map(msg.shares.map((s) => [s.to, s.ciphertext])));
  }

  /** Closes share-keys: each client that completed it gets the sealed shares addressed to it. */
  maskedInputRequests(): Map<string, MaskedInputRequest> {
    this.expect('share-keys', 'maskedInputRequests');
    this.u2 = new Set(this.sealed.keys());
    this.markLost([...this.ads.keys()], this.u2, 'share-keys');
    const t = this.config.threshold;
    for (const j of [...this.u2].sort()) {
      const alive = this.aliveNeighbours(j, this.u2);
      if (alive.length + 1 < t) {
        this.abort(`client ${j} has ${alive.length} neighbours left after share-keys (${alive.join(', ') || 'none'}): ${alive.length + 1} share holders of its secrets, threshold ${t}`, j);
      }
    }
    this.sum = new Uint32Array(inputWords(this.config));
    this.phase = 'masked-input';
    return new Map(
      [...this.u2].sort().map((i) => [
        i,
        {
          stage: 'masked-input',
          run_id: this.runId,
          round: this.round,
          shares: this.aliveNeighbours(i, this.u2).map((j) => ({ from: j, ciphertext: this.sealed.get(j)?.get(i) as Uint8Array })),
        },
      ]),
    );
  }

  /** Adds the masked vector into the running sum; the server never keeps it on its own. */
  async receiveMaskedInput(clientId: string, reply: unknown): Promise<void> {
    this.expectReply('masked-input', clientId, this.u2.has(clientId), this.u3.has(clientId));
    const msg = parse(maskedInputReplySchema, reply, `masked-input reply from ${clientId}`, clientId);
    this.checkReply(msg, clientId);
    const sum = this.sum as Uint32Array;
    if (msg.masked.length !== sum.length) throw new SecAggProtocolError(`masked-input reply from ${clientId} has ${msg.masked.length} words, expected ${sum.length} (${this.config.fixed_point ? 'L·K' : 'L'} + 1)`, clientId);
    addInto(sum, msg.masked);
    this.u3.add(clientId);
  }

  /** Closes masked-input: survivors U3 and dropped D = U2 \ U3; each survivor is asked to sign U3. */
  consistencyCheckRequests(): Map<string, ConsistencyCheckRequest> {
    this.expect('masked-input', 'consistencyCheckRequests');
    this.dropped = new Set([...this.u2].filter((j) => !this.u3.has(j)));
    this.markLost([...this.u2], this.u3, 'masked-input');
    const t = this.config.threshold;
    for (const j of [...this.u3].sort()) {
      const alive = this.aliveNeighbours(j, this.u3);
      if (alive.length + 1 < t) this.abort(`survivor ${j} has ${alive.length} surviving neighbours: ${alive.length + 1} holders of its self-mask shares, threshold ${t}`, j);
    }
    for (const d of [...this.dropped].sort()) {
      const alive = this.aliveNeighbours(d, this.u3);
      if (alive.length < t) this.abort(`dropped client ${d} has ${alive.length} surviving neighbours (${alive.join(', ') || 'none'}) to rebuild its mask key, threshold ${t}`, d);
    }
    this.checkConnected();
    this.phase = 'consistency-check';
    const survivors = [...this.u3].sort();
    return new Map(survivors.map((i) => [i, { stage: 'consistency-check', run_id: this.runId, round: this.round, survivors }]));
  }

  /** Checks a survivor's signature over U3 with the identity key it advertised. */
  async receiveConsistencyCheck(clientId: string, reply: unknown): Promise<void> {
    this.expectReply('consistency-check', clientId, this.u3.has(clientId), this.signatures.has(clientId));
    const msg = parse(consistencyCheckReplySchema, reply, `consistency-check reply from ${clientId}`, clientId);
    this.checkReply(msg, clientId);
    let ok = false;
    try {
      const key = await importIdentityPublicKey((this.ads.get(clientId) as Advertisement).identity_pk);
      ok = await verifySurvivors(key, { run_id: this.runId, round: this.round, client_id: clientId, survivors: [...this.u3] }, msg.signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new SecAggProtocolError(`the consistency signature of ${clientId} does not verify over the survivor set`, clientId);
    this.signatures.set(clientId, msg.signature);
  }

  /** Closes consistency-check: each survivor that signed is told its neighbours' status, with the signatures of its surviving neighbourhood. */
  unmaskRequests(): Map<string, UnmaskRequest> {
    this.expect('consistency-check', 'unmaskRequests');
    this.markLost([...this.u3], new Set(this.signatures.keys()), 'consistency-check');
    this.phase = 'unmask';
    const requests = new Map<string, UnmaskRequest>();
    for (const i of [...this.signatures.keys()].sort()) {
      const held = this.aliveNeighbours(i, this.u2);
      const survivors = [i, ...held.filter((j) => this.u3.has(j))].sort();
      const dropped = held.filter((j) => this.dropped.has(j));
      const signatures = survivors.filter((j) => this.signatures.has(j)).map((j) => ({ client_id: j, signature: this.signatures.get(j) as Uint8Array }));
      this.asked.set(i, { survivors: new Set(survivors), dropped: new Set(dropped) });
      requests.set(i, { stage: 'unmask', run_id: this.runId, round: this.round, survivors, dropped, signatures });
    }
    return requests;
  }

  async receiveUnmask(clientId: string, reply: unknown): Promise<void> {
    this.expectReply('unmask', clientId, this.asked.has(clientId), this.answered.has(clientId));
    const msg = parse(unmaskReplySchema, reply, `unmask reply from ${clientId}`, clientId);
    this.checkReply(msg, clientId);
    const asked = this.asked.get(clientId) as { survivors: ReadonlySet<string>; dropped: ReadonlySet<string> };
    const decode = (entries: readonly RevealedShare[], expected: ReadonlySet<string>, what: string) => {
      const ids = distinct(
        entries.map((e) => e.client_id),
        `unmask reply from ${clientId} (${what})`,
        clientId,
      );
      if (!sameSet(ids, expected)) {
        throw new SecAggProtocolError(`unmask reply from ${clientId} reveals ${what} of [${[...ids].sort().join(', ')}], it was asked for [${[...expected].sort().join(', ')}]`, clientId);
      }
      return entries.map((e) => {
        const encoded = e.share.subarray(0, ENCODED_SHARE_BYTES);
        let share: Share;
        try {
          share = decodeShare(encoded);
        } catch (err) {
          throw new SecAggProtocolError(`unmask reply from ${clientId}: bad share of ${e.client_id}: ${(err as Error).message}`, clientId);
        }
        if (share.threshold !== this.config.threshold) throw new SecAggProtocolError(`unmask reply from ${clientId}: share of ${e.client_id} has threshold ${share.threshold}, not ${this.config.threshold}`, clientId);
        return { dealer: e.client_id, share, encoded, signature: e.share.subarray(ENCODED_SHARE_BYTES) };
      });
    };
    const b = decode(msg.b_shares, asked.survivors, 'self-mask shares');
    const s = decode(msg.s_shares, asked.dropped, 'mask-key shares');
    // Each share must carry its dealer's signature over (dealer, this holder, kind, share): one that
    // does not was altered by the holder that revealed it (the dealer's key is not its to use). It is
    // discarded, the holder named; its valid shares are kept, and the secrets rebuild from the rest.
    const forged: string[] = [];
    const valid = async (entries: ReturnType<typeof decode>, kind: 'b' | 's'): Promise<{ dealer: string; share: Share }[]> => {
      const out: { dealer: string; share: Share }[] = [];
      for (const e of entries) {
        const key = this.identityKeys.get(e.dealer);
        const dealt = { run_id: this.runId, round: this.round, dealer: e.dealer, holder: clientId, kind, share: e.encoded };
        const ok = key !== undefined && (await verifyShare(key, dealt, e.signature).catch(() => false));
        if (ok) out.push({ dealer: e.dealer, share: e.share });
        else forged.push(`${kind === 'b' ? 'self-mask' : 'mask-key'} share of ${e.dealer}`);
      }
      return out;
    };
    const bValid = await valid(b, 'b');
    const sValid = await valid(s, 's');
    if (this.phase !== 'unmask' || this.answered.has(clientId)) throw new SecAggProtocolError(`unmask reply from ${clientId} came twice or late`, clientId);
    for (const { dealer, share } of bValid) this.bShares.set(dealer, [...(this.bShares.get(dealer) ?? []), share]);
    for (const { dealer, share } of sValid) this.sShares.set(dealer, [...(this.sShares.get(dealer) ?? []), share]);
    this.answered.add(clientId);
    if (forged.length > 0) {
      const reason = `its ${forged.join(', ')} ${forged.length === 1 ? 'does' : 'do'} not carry the dealer's signature: altered by ${clientId}, discarded`;
      this.rejected.push({ client_id: clientId, stage: 'unmask', reason });
      throw new SecAggProtocolError(`unmask reply from ${clientId}: ${reason}`, clientId);
    }
  }

  /** Closes unmask: rebuilds every survivor's b and every dropped client's s, removes their masks, dequantises. */
  async result(): Promise<SecAggResult> {
    this.expect('unmask', 'result');
    this.markLost([...this.asked.keys()], this.answered, 'unmask');
    const t = this.config.threshold;
    const L = this.config.vector_length;
    for (const j of [...this.u3].sort()) {
      const got = this.bShares.get(j)?.length ?? 0;
      if (got < t) {
        const holders = [j, ...this.aliveNeighbours(j, this.u3)].length;
        this.abort(`cannot rebuild the self mask of survivor ${j}: ${got} of its ${holders} share holders answered unmask${this.rejectedNote()}, threshold ${t}`, this.rejected[0]?.client_id ?? j);
      }
    }
    for (const d of [...this.dropped].sort()) {
      const got = this.sShares.get(d)?.length ?? 0;
      if (got < t) {
        this.abort(`cannot rebuild the mask key of dropped client ${d}: ${got} of its ${this.aliveNeighbours(d, this.u3).length} surviving neighbours answered unmask${this.rejectedNote()}, threshold ${t}`, this.rejected[0]?.client_id ?? d);
      }
    }
    const sum = this.sum as Uint32Array;
    try {
      for (const j of [...this.u3].sort()) await applyMask(sum, this.rebuild(this.bShares.get(j) as Share[], j, 'self-mask seed'), -1);
      for (const d of [...this.dropped].sort()) {
        const sk = await importPrivateKey(this.rebuild(this.sShares.get(d) as Share[], d, 'mask key'));
        const advertised = (this.ads.get(d) as Advertisement).s_pk;
        if (!equalBytes(await agree(sk, BASE_POINT), advertised)) this.abort(`the mask key rebuilt for ${d} does not match the public key it advertised: ${d} signed shares of another key`, d);
        const publicKeys = await Promise.all(this.aliveNeighbours(d, this.u3).map(async (v) => [v, await importPublicKey((this.ads.get(v) as Advertisement).s_pk)] as const));
        for (const [v, pk] of publicKeys) {
          const seed = await pairwiseMaskSeed(await agree(sk, pk), { runId: this.runId, round: this.round, clients: [v, d] });
          await applyMask(sum, seed, pairwiseSign(v, d) === 1 ? -1 : 1); // v added sign(v, d)·m_vd
        }
      }
    } catch (err) {
      if (err instanceof SecAggAbortError) throw err;
      this.abort(`unmasking failed: ${(err as Error).message}`);
    }
    const survivors = [...this.u3].sort();
    const fp = this.config.fixed_point;
    const valueWords = inputWords(this.config) - 1;
    const totalWeight = sum[valueWords] as number;
    if (totalWeight < survivors.length || totalWeight > survivors.length * this.config.max_weight) {
      this.abort(`the unmasked total weight ${totalWeight} is outside [${survivors.length}, ${survivors.length} × ${this.config.max_weight}]: a mask was left in (an inconsistent client or share)`);
    }
    let floats: Float64Array;
    try {
      floats = fp ? decodeFixedPointSum(sum.subarray(0, valueWords), survivors.length, fp) : dequantizeSum(sum.subarray(0, L), survivors.length, quantizationOf(this.config));
    } catch (err) {
      this.abort(`the unmasked sum is not a sum of ${survivors.length} quantised inputs (${(err as Error).message})`);
    }
    this.sum = undefined;
    this.phase = 'done';
    return {
      sum: floats,
      totalWeight,
      survivors,
      dropped: this.lost.slice(),
      recovered: [...this.dropped].sort(),
      rejected: this.rejected.map((r) => ({ ...r })),
      errorBound: fp ? fixedPointErrorBound(fp, survivors.length) : sumErrorBound(quantizationOf(this.config), survivors.length),
    };
  }

  private rebuild(shares: readonly Share[], clientId: string, what: string): Uint8Array {
    let secret: Uint8Array;
    try {
      secret = combine(shares);
    } catch (err) {
      // Every share used carries its dealer's signature: shares that do not interpolate were dealt so by clientId itself.
      if (err instanceof ShamirError) this.abort(`cannot rebuild the ${what} of ${clientId}: ${err.message} (all signed by ${clientId} as dealt)`, clientId);
      throw err;
    }
    if (secret.length !== PRIVATE_KEY_BYTES) this.abort(`the ${what} rebuilt for ${clientId} has ${secret.length} bytes, not ${PRIVATE_KEY_BYTES}`, clientId);
    return secret;
  }

  /** Neighbours of `i` (in the round's graph) that are in `alive`, sorted. */
  private aliveNeighbours(i: string, alive: ReadonlySet<string>): string[] {
    return (this.graph.get(i) ?? []).filter((j) => alive.has(j));
  }

  /** In a sparse graph, a split survivors' graph would reveal each component's sum: abort instead. */
  private checkConnected(): void {
    const [start] = [...this.u3].sort();
    if (start === undefined) this.abort('no client sent a masked input');
    const seen = new Set([start]);
    const queue = [start];
    while (queue.length > 0) {
      for (const v of this.aliveNeighbours(queue.pop() as string, this.u3)) {
        if (!seen.has(v)) {
          seen.add(v);
          queue.push(v);
        }
      }
    }
    if (seen.size !== this.u3.size) {
      const rest = [...this.u3].filter((v) => !seen.has(v)).sort();
      this.abort(`the survivors' neighbour graph is split ([${[...seen].sort().join(', ')}] | [${rest.join(', ')}]): unmasking would reveal each part's sum`);
    }
  }

  /** " with a valid share (discarded: H3's forged shares)" when some client revealed forged shares, for the abort messages (which then name that client). */
  private rejectedNote(): string {
    return this.rejected.length === 0 ? '' : ` with a valid share (discarded: ${this.rejected.map((r) => `${r.client_id}'s forged shares`).join(', ')})`;
  }

  private markLost(before: readonly string[], after: ReadonlySet<string>, stage: SecAggStage): void {
    for (const id of [...before].sort()) if (!after.has(id)) this.lost.push({ client_id: id, stage });
  }

  private abort(message: string, clientId?: string): never {
    this.phase = 'aborted';
    this.sum = undefined;
    throw new SecAggAbortError(`round ${this.round} of run ${this.runId} aborted: ${message}`, clientId);
  }

  private expect(stage: SecAggStage, call: string): void {
    if (this.phase !== stage) throw new SecAggProtocolError(`${call}() called in stage ${this.phase}, expected ${stage}`);
  }

  private expectReply(stage: SecAggStage, clientId: string, expected: boolean, duplicate: boolean): void {
    if (this.phase !== stage) throw new SecAggProtocolError(`a ${stage} reply from ${clientId} came in stage ${this.phase} (late or early): ignored`, clientId);
    if (!expected) throw new SecAggProtocolError(`a ${stage} reply from ${clientId}, which is not in this stage`, clientId);
    if (duplicate) throw new SecAggProtocolError(`a second ${stage} reply from ${clientId}`, clientId);
  }

  private checkReply(msg: Header<SecAggStage> & { readonly client_id: string }, clientId: string): void {
    checkHeader(msg, this.runId, this.round, `${msg.stage} reply from ${clientId}`, clientId);
    if (msg.client_id !== clientId) throw new SecAggProtocolError(`a ${msg.stage} reply from ${clientId} claims to come from ${msg.client_id}`, clientId);
  }
}
