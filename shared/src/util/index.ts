export { Rng, hashUnit } from './random';
