export { Rng, hashUnit } from './random';
export { stringifyMetrics } from './json';
