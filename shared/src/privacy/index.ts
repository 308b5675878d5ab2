/** @fedcare/shared/privacy: the RDP accountant of DP-SGD (ε of a schedule), calibration (σ for ε, steps for ε), the planner. */
export {
  CONVERSIONS,
  DEFAULT_ORDERS,
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
