/** @fedcare/shared/model: the models, their layers and the weight wire format. Named exports only. */
export {
  createAutoencoder,
  DEFAULT_AUTOENCODER_CONFIG,
  type AutoencoderConfig,
  type AutoencoderForwardOptions,
  type FederatedAutoencoder,
} from './autoencoder';
export {
  classifierParamCount,
  createClassifier,
  createModel,
  DEFAULT_CLASSIFIER_CONFIG,
  MODALITY_TOKENS,
  MODEL_NAMES,
  MODEL_PRESETS,
  modelConfigFor,
  modelOptionsOf,
  AUX_TASKS,
  DAYS_SCALE,
  taskLosses,
  type AuxTask,
  type TaskTargets,
  type TaskWeights,
  type ModelOptions,
  type ModalityToken,
  type ModelName,
  type ClassifierConfig,
  type ClassifierInputs,
  type ForwardOptions,
  type MultimodalRiskClassifier,
} from './classifier';
export { constantInit, glorotUniform, normalInit, orthogonal, uniformInit, type RandomSource } from './init';
export {
  initLstmValues,
  lstm,
  lstmAutograd,
  lstmStack,
  lstmStackAutograd,
  type LstmStackOptions,
  type LstmWeights,
} from './lstm';
export { addMany, addParam, dropout, dropoutMask, layerNorm, linear, multiHeadSelfAttention, type AttentionWeights, type DropoutSeeds } from './nn';
export { countParams, disposeParams, type Param } from './params';
export { GradRecorder, type DirectUse, type LinearUse, type ParamUse } from './recorder';
export {
  flattenWeights,
  sha256Hex,
  unflattenWeights,
  weightManifest,
  weightsChecksum,
  weightsFromBytes,
  weightsToBytes,
  type WeightManifest,
  type WeightManifestEntry,
} from './weights';
