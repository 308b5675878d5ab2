export { Rng, hashUnit } from './random';
export { stringifyMetrics } from './json';
export { csvCell } from './csv';
export { sha256Hex, toHex } from './bytes';
export { cryptoRandom, seededRandom, type RandomSource } from './csprng';
export { withoutEval } from './csp';
