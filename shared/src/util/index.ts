export { Rng, hashUnit } from './random';
export { stringifyMetrics } from './json';
export { cryptoRandom, seededRandom, gaussians, type RandomSource } from './csprng';
