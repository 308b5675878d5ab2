/**
 * Deterministic parameter initialisers. Randomness comes from the project's one seeded PRNG
 * (`util/random`), so a model's initial weights depend only on its numeric seed and are
 * bit-identical in a tab, a Web Worker and Node.
 */

/** What the initialisers need of a PRNG (`util/random`'s `Rng` provides it). */
export interface RandomSource {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Uniform(-limit, limit). */
export function uniformInit(rng: RandomSource, shape: readonly number[], limit: number): Float32Array {
  const out = new Float32Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * limit;
  return out;
}

/** Glorot/Xavier uniform for a [fanIn, fanOut] kernel (Glorot & Bengio, AISTATS 2010). */
export function glorotUniform(rng: RandomSource, fanIn: number, fanOut: number): Float32Array {
  return uniformInit(rng, [fanIn, fanOut], Math.sqrt(6 / (fanIn + fanOut)));
}

export function normalInit(rng: RandomSource, shape: readonly number[], std: number): Float32Array {
  const out = new Float32Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
  return out;
}

export function constantInit(shape: readonly number[], value: number): Float32Array {
  return new Float32Array(sizeOf(shape)).fill(value);
}

/**
 * Orthogonal init of a [rows, cols] matrix (Saxe et al., ICLR 2014), as Keras' `Orthogonal`:
 * the smaller dimension's vectors are orthonormal. Gram–Schmidt on Gaussian vectors (in float64)
 * gives the same Haar distribution as the sign-corrected QR that Keras uses.
 */
export function orthogonal(rng: RandomSource, rows: number, cols: number, gain = 1): Float32Array {
  const n = Math.min(rows, cols); // number of orthonormal vectors
  const len = Math.max(rows, cols); // their length
  const vecs: Float64Array[] = [];
  for (let k = 0; k < n; k++) {
    const v = new Float64Array(len);
    for (;;) {
      for (let j = 0; j < len; j++) v[j] = rng.normal();
      // Modified Gram–Schmidt, twice for numerical orthogonality.
      for (let pass = 0; pass < 2; pass++) {
        for (const u of vecs) {
          let dot = 0;
          for (let j = 0; j < len; j++) dot += v[j]! * u[j]!;
          for (let j = 0; j < len; j++) v[j] = v[j]! - dot * u[j]!;
        }
      }
      let norm = 0;
      for (let j = 0; j < len; j++) norm += v[j]! * v[j]!;
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let j = 0; j < len; j++) v[j] = v[j]! / norm;
        break;
      }
    }
    vecs.push(v);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      // rows <= cols: vector r is row r; otherwise vector c is column c.
      out[r * cols + c] = gain * (rows <= cols ? vecs[r]![c]! : vecs[c]![r]!);
    }
  }
  return out;
}
