export * from './vocabulary';
export * from './schema';
export * from './records';
export * from './profiles';
export {
  generateHospital,
  riskWeights,
  LATENT_STATE_NAMES,
  OBSERVATION_WINDOW_DAYS,
  RISK_CUTS,
  RISK_INTERCEPT,
  RISK_LABEL_NOISE_SD,
  type GenerateOptions,
  type GeneratedHospital,
} from './generator';
export * from './features';
export { FEATURE_RANGES, nonFiniteStat, refuseFeatureSums } from './feature-bounds';
export { symmetricEigen, type Eigen } from './linalg';
export { splitByHospital, type Split } from './split';
export * from './fhir';
export * from './fhir-bulk';
export { SNOMED_SYSTEM, SNOMED_COMORBIDITY, comorbidityForSnomed, icd10ForComorbidity } from './snomed';
