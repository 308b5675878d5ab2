/**
 * Randomness for privacy: WebCrypto's getRandomValues (a CSPRNG in browsers, workers and Node
 * alike), never Math.random and never the seeded Rng. DP noise and Poisson sampling draw from a
 * `RandomSource`; tests may pass a seeded one to reproduce a run, production uses `cryptoRandom`.
 */
import { Rng } from './random';

export interface RandomSource {
  /** Fills `out` with independent uniforms in (0, 1). */
  uniforms(out: Float64Array): void;
}

/** getRandomValues fills at most 65 536 bytes per call. */
const CHUNK_WORDS = 16_384;

/** The CSPRNG: 53-bit uniforms in (0, 1) from pairs of crypto.getRandomValues words. */
export const cryptoRandom: RandomSource = {
  uniforms(out) {
    const words = new Uint32Array(Math.min(CHUNK_WORDS, out.length * 2));
    let filled = 0;
    while (filled < out.length) {
      const take = Math.min(out.length - filled, words.length / 2);
      crypto.getRandomValues(words.subarray(0, take * 2));
      for (let i = 0; i < take; i++) {
        // 27 + 26 bits → [0, 2^53); +0.5 moves it into the open interval (0, 1).
        const hi = (words[2 * i] as number) >>> 5;
        const lo = (words[2 * i + 1] as number) >>> 6;
        out[filled + i] = (hi * 67_108_864 + lo + 0.5) / 9_007_199_254_740_992;
      }
      filled += take;
    }
  },
};

/** A reproducible source for tests and for the "same seed" equivalence checks; not for privacy. */
export function seededRandom(seed: string | number): RandomSource {
  const rng = new Rng(`csprng-test/${seed}`);
  return {
    uniforms(out) {
      for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(rng.next(), Number.MIN_VALUE), 1 - Number.EPSILON);
    },
  };
}
