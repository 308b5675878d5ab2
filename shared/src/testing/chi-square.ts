/** Pearson's χ² of a byte histogram of 32-bit words against uniform (tests of masked vectors). */
export function chiSquareOfBytes(words: Uint32Array, byte: (w: number) => number): number {
  const counts = new Float64Array(256);
  for (const w of words) counts[byte(w)]! += 1;
  const expected = words.length / 256;
  let chi2 = 0;
  for (const c of counts) chi2 += (c - expected) ** 2 / expected;
  return chi2;
}

/** χ² with 255 degrees of freedom exceeds this with probability 0.001. */
export const CHI2_255_P001 = 330.52;
