/**
 * @fedcare/shared/he: the homomorphic-encryption mode of secure aggregation (node-seal 6, BFV):
 * loading SEAL in any host and the parameters (seal.ts), the key ceremony that leaves the secret
 * key with the hospitals (ceremony.ts), and encrypt / add / decrypt of weighted, quantised
 * updates (aggregate.ts). The round engine carries the bytes.
 */
export {
  DEFAULT_HE_PARAMETERS,
  HE_COMPRESSIONS,
  HeError,
  NOISE_BOUND,
  checkParameters,
  coeffModulusBits,
  heContext,
  heParameters,
  loadSeal,
  maxClientsFor,
  meetsSecurityLevel,
  parametersFingerprint,
  sealMessage,
  securityLevelOf,
  setSealLoader,
  type HeCompression,
  type HeContext,
  type HeParameters,
  type SealLibrary,
  type SealLoader,
  type SecurityBits,
} from './seal';
export {
  HeCeremonyError,
  assertKeysMatch,
  createKeyHolderKeys,
  generateCeremonyKeyPair,
  publicParameters,
  unwrapSecretKey,
  wrapSecretKeyFor,
  type CeremonyContext,
  type HeKeys,
  type HePublicKeys,
} from './ceremony';
export {
  MAX_HE_VECTOR_LENGTH,
  checkHeConfig,
  ciphertextCount,
  decodeSum,
  decryptShare,
  decryptSum,
  encodeUpdate,
  encryptUpdate,
  heConfig,
  heConfigSchema,
  heParametersSchema,
  heQuantization,
  maxBitsFor,
  meanErrorBound,
  refuseSlots,
  serverContext,
  weightDigits,
  type EncryptOptions,
  type HeAccumulator,
  type HeConfig,
  type HeConfigOptions,
  type HeEncryption,
  type HeServer,
  type HeSum,
  type ServerOptions,
} from './aggregate';
export { SEED_INFO_BYTES, compactSum, expandCompactSum, seedOf } from './compact';
export * from './messages';
