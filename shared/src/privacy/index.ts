/** @fedcare/shared/privacy: the RDP accountant of DP-SGD (ε of a schedule), calibration (σ for ε, steps for ε), the planner, the exact discrete Gaussian sampler. */
export {
  CONVERSIONS,
  DEFAULT_ORDERS,
  DP_SGD_ORDERS,
  PrivacyParameterError,
  computeRdp,
  epsilonFor,
  getPrivacySpent,
  logErfc,
  type Conversion,
  type EpsilonForArgs,
  type PrivacySpent,
} from './rdp';
export { MAX_NOISE_MULTIPLIER, noiseForEpsilon, stepsForBudget, type NoiseForEpsilonArgs, type StepsForBudgetArgs } from './calibrate';
export * from './schedule';
export * from './plan';
export {
  MAX_SIGMA2,
  UniformIntegers,
  bernoulliExp,
  cryptoIntegers,
  cryptoWords,
  discreteGaussianPmf,
  discreteGaussianVariance,
  discreteGaussians,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianBig,
  sampleDiscreteLaplace,
  seededIntegers,
  seededWords,
  type Rational,
  type WordSource,
} from './discrete-gaussian';
export { binomialTail, epsilonLowerBound, guessMembership, type AuditGuesses } from './audit';
