/**
 * @fedcare/shared/secagg: the cryptographic building blocks of SecAgg+ (Bonawitz et al. 2017;
 * Bell et al. 2020): Shamir sharing, per-round X25519 keys with HKDF-bound pairwise secrets,
 * AES-GCM channels, identity signatures over advertised keys, AES-CTR masks in Z_2^32 and
 * stochastic quantisation. The protocol stages that use them live with the round engine.
 */
export { MAX_SHARES, ShamirError, combine, cryptoRandomBytes, decodeShare, encodeShare, split, type RandomBytes, type Share } from './shamir';
export {
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  KeySignatureError,
  PRIVATE_KEY_BYTES,
  PUBLIC_KEY_BYTES,
  SHARED_SECRET_BYTES,
  SecAggCryptoError,
  advertisedKeysMessage,
  agree,
  assertKeysSigned,
  canonicalPair,
  channelKey,
  derivePairSecret,
  encodeFields,
  exportIdentityPublicKey,
  exportPrivateKey,
  exportPublicKey,
  generateIdentityKeyPair,
  generateRoundKeyPairs,
  hkdf,
  importAesGcmKey,
  importIdentityPublicKey,
  importPrivateKey,
  importPublicKey,
  open,
  pairInfo,
  pairwiseMaskSeed,
  randomSeed,
  seal,
  signKeys,
  verifyKeys,
  type AdvertisedKeys,
  type IdentityAlgorithm,
  type Key,
  type KeyPair,
  type PairContext,
  type PairPurpose,
  type RoundKeyPairs,
} from './keys';
export { MODULUS_BITS, MaskError, addInto, applyMask, expandMask, maskInput, pairwiseSign, subInto, sumMod, type MaskTerm } from './mask';
export {
  QuantizationError,
  dequantize,
  dequantizeSum,
  maxBits,
  quantizationFor,
  quantizationStep,
  quantize,
  sumErrorBound,
  type QuantizationConfig,
} from './quantize';
