/**
 * The weight wire format: every parameter's values concatenated in the model's fixed parameter
 * order into one Float32Array, serialised as little-endian float32 on every host, identified by
 * its SHA-256.
 */
import * as tf from '@tensorflow/tfjs-core';

import { sha256Hex } from '../util/bytes';
import { sizeOf } from './init';
import type { Param } from './params';

/** Where each parameter lives in the flat vector; for logs, checkpoints and humans. */
export interface WeightManifestEntry {
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset in floats (not bytes) into the flat vector. */
  readonly offset: number;
  readonly size: number;
}

export interface WeightManifest {
  readonly entries: readonly WeightManifestEntry[];
  /** Total number of floats. */
  readonly total: number;
}

export function weightManifest(params: readonly Pick<Param, 'name' | 'shape'>[]): WeightManifest {
  let offset = 0;
  const entries = params.map(({ name, shape }) => {
    const size = sizeOf(shape);
    const entry: WeightManifestEntry = { name, shape: [...shape], offset, size };
    offset += size;
    return entry;
  });
  return { entries, total: offset };
}

/**
 * All parameter values, concatenated in `params` order. Read asynchronously: a synchronous read
 * stalls a GPU backend (WebGL) or, on WebGPU, goes through a canvas that can take the GPU process
 * down with it.
 */
export async function flattenWeights(params: readonly Param[]): Promise<Float32Array> {
  const { total } = weightManifest(params);
  const flat = new Float32Array(total);
  const all = await Promise.all(params.map((p) => p.variable.data<'float32'>()));
  let offset = 0;
  for (const [i, p] of params.entries()) {
    const values = all[i]!;
    if (values.length !== sizeOf(p.shape)) {
      throw new Error(`flattenWeights: parameter "${p.name}" holds ${values.length} values, its shape [${p.shape.join(', ')}] says ${sizeOf(p.shape)}`);
    }
    flat.set(values, offset);
    offset += values.length;
  }
  return flat;
}

/** Assigns a flat vector (as made by `flattenWeights`) back to the parameters, in order. */
export function unflattenWeights(params: readonly Param[], flat: Float32Array): void {
  const { total } = weightManifest(params);
  if (flat.length !== total) {
    throw new Error(`unflattenWeights: expected ${total} floats for ${params.length} parameters, got ${flat.length}`);
  }
  let offset = 0;
  for (const p of params) {
    const size = sizeOf(p.shape);
    // Copy: the cpu backend would otherwise keep a view into the caller's buffer.
    const t = tf.tensor(flat.slice(offset, offset + size), [...p.shape], 'float32');
    p.variable.assign(t);
    t.dispose();
    offset += size;
  }
}

/** float32 → bytes, little-endian whatever the host's byte order. */
export function weightsToBytes(flat: Float32Array): Uint8Array {
  const bytes = new Uint8Array(flat.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < flat.length; i++) view.setFloat32(i * 4, flat[i]!, true);
  return bytes;
}

/** Little-endian float32 bytes → Float32Array. */
export function weightsFromBytes(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`weightsFromBytes: ${bytes.byteLength} bytes is not a whole number of float32 values`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flat = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < flat.length; i++) flat[i] = view.getFloat32(i * 4, true);
  return flat;
}

// Lower-case hex SHA-256 of the bytes, exported here too for the model's users.
export { sha256Hex };

/** SHA-256 of the wire bytes of the model's current weights. */
export async function weightsChecksum(params: readonly Param[]): Promise<string> {
  return sha256Hex(weightsToBytes(await flattenWeights(params)));
}
