/**
 * HE aggregation as round stages (between train and evaluate, when secure_aggregation is 'he'):
 *
 *   he-keys     S→C the round's key holder;  C→S a fresh X25519 key, signed with its identity key
 *               (the SecAgg+ advertisement format, c_pk = s_pk).
 *   he-setup    S→holder the others' advertisements; the holder verifies them (signatures, pins),
 *               generates the BFV keys and seals the secret key to each (ceremony.ts) → S relays.
 *   he-input    S→C the public parameters, the holder's advertisement and, for the others, the
 *               sealed secret key; C encrypts its held, weighted, quantised update (aggregate.ts).
 *   he-decrypt  S adds the ciphertexts without any key and shares the decryption out: each
 *               hospital gets a contiguous slice of the summed ciphertexts (`first`, `sum`; with
 *               `seeds`, in the compact form of compact.ts: Σ c0 and the summands' seeds, half the
 *               bytes) and returns its slots, still quantised; S checks every slice (each slot a
 *               possible sum of n uploads, padding zero) and decodes the weighted mean of the
 *               updates (what it would learn from SecAgg+ too). A slice that is lost or refused
 *               goes to another hospital. Nobody sees an individual update.
 */
import { z } from 'zod';
import { heConfigSchema } from './aggregate';

export const HE_STAGES = ['he-keys', 'he-setup', 'he-input', 'he-decrypt'] as const;
export type HeStage = (typeof HE_STAGES)[number];

const isBinary = (v: unknown): v is ArrayBuffer | ArrayBufferView => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
const toBytes = (v: ArrayBuffer | ArrayBufferView) => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
const bytes = z.custom<ArrayBuffer | ArrayBufferView>(isBinary, { message: 'expected binary data' }).transform(toBytes);
const id = z.string().min(1).max(64);
const header = <S extends HeStage>(stage: S) => ({ stage: z.literal(stage), run_id: z.string().min(1).max(64), round: z.number().int().min(0) });
const advertisement = z.object({ client_id: id, c_pk: bytes, s_pk: bytes, identity_pk: bytes, signature: bytes });
const MAX_CIPHERTEXTS = 4096;

/**
 * Many byte strings as one: [count u32][length u32]… then the bytes (little-endian). Socket.IO's
 * parser refuses more than 10 binary attachments per message, and an update is ~139 ciphertexts.
 */
export function packChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((s, c) => s + c.byteLength, 0);
  const out = new Uint8Array(4 + 4 * chunks.length + total);
  const view = new DataView(out.buffer);
  view.setUint32(0, chunks.length, true);
  let at = 4 + 4 * chunks.length;
  chunks.forEach((c, i) => {
    view.setUint32(4 + 4 * i, c.byteLength, true);
    out.set(c, at);
    at += c.byteLength;
  });
  return out;
}

export function unpackChunks(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new Error('packed ciphertexts: shorter than their header');
  const n = view.getUint32(0, true);
  if (n < 1 || n > MAX_CIPHERTEXTS || 4 + 4 * n > bytes.byteLength) throw new Error(`packed ciphertexts: ${n} chunks do not fit ${bytes.byteLength} bytes`);
  const out: Uint8Array[] = [];
  let at = 4 + 4 * n;
  for (let i = 0; i < n; i++) {
    const len = view.getUint32(4 + 4 * i, true);
    if (at + len > bytes.byteLength) throw new Error(`packed ciphertexts: chunk ${i} runs past the end`);
    out.push(bytes.subarray(at, at + len));
    at += len;
  }
  if (at !== bytes.byteLength) throw new Error('packed ciphertexts: trailing bytes');
  return out;
}

export const heKeysRequestSchema = z.object({ ...header('he-keys'), holder: id });
export const heKeysReplySchema = z.object({ ...header('he-keys'), ...advertisement.shape });
export const heSetupRequestSchema = z.object({ ...header('he-setup'), config: heConfigSchema, peers: z.array(advertisement).max(1000) });
export const heSetupReplySchema = z.object({ ...header('he-setup'), client_id: id, public_key: bytes, wrapped: z.array(z.object({ to: id, ciphertext: bytes })).max(1000) });
export const heInputRequestSchema = z.object({ ...header('he-input'), config: heConfigSchema, holder: advertisement, public_key: bytes, wrapped: bytes.optional() });
/** `ciphertexts` / `sum`: packChunks of the serialised ciphertexts (one binary attachment, not ~139). */
export const heInputReplySchema = z.object({ ...header('he-input'), client_id: id, ciphertexts: bytes });
/**
 * `first`: the index of the slice's first ciphertext in the sum; `sum`: packChunks of the slice's
 * ciphertexts, or with `seeds` of their compact c0 parts, and `seeds` packChunks of each
 * ciphertext's other seeds (compact.ts).
 */
export const heDecryptRequestSchema = z.object({
  ...header('he-decrypt'),
  config: heConfigSchema,
  clients: z.number().int().min(1),
  first: z.number().int().min(0).max(MAX_CIPHERTEXTS - 1),
  sum: bytes,
  seeds: bytes.optional(),
});
/** `slots`: the slice's decrypted slots, N per ciphertext, little-endian uint32 (still quantised). */
export const heDecryptReplySchema = z.object({ ...header('he-decrypt'), client_id: id, first: z.number().int().min(0).max(MAX_CIPHERTEXTS - 1), slots: bytes });

export type HeKeysRequest = z.output<typeof heKeysRequestSchema>;
export type HeSetupRequest = z.output<typeof heSetupRequestSchema>;
export type HeInputRequest = z.output<typeof heInputRequestSchema>;
export type HeDecryptRequest = z.output<typeof heDecryptRequestSchema>;
export type HeRequest = HeKeysRequest | HeSetupRequest | HeInputRequest | HeDecryptRequest;
export type HeKeysReply = z.output<typeof heKeysReplySchema>;
export type HeSetupReply = z.output<typeof heSetupReplySchema>;
export type HeInputReply = z.output<typeof heInputReplySchema>;
export type HeDecryptReply = z.output<typeof heDecryptReplySchema>;
export type HeReply = HeKeysReply | HeSetupReply | HeInputReply | HeDecryptReply;
