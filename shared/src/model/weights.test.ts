import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { createClassifier, type ClassifierInputs } from './classifier';
import { flattenWeights, sha256Hex, unflattenWeights, weightManifest, weightsChecksum, weightsFromBytes, weightsToBytes } from './weights';

function inputs(B: number, T: number): ClassifierInputs {
  return {
    vitals: tf.randomNormal([B, T, 10], 0, 1, 'float32', 1) as tf.Tensor3D,
    labs: tf.randomNormal([B, T, 16], 0, 1, 'float32', 2) as tf.Tensor3D,
    demographics: tf.randomNormal([B, 10], 0, 1, 'float32', 3) as tf.Tensor2D,
    biology: tf.randomNormal([B, 20], 0, 1, 'float32', 4) as tf.Tensor2D,
    omics: tf.randomNormal([B, 32], 0, 1, 'float32', 5) as tf.Tensor2D,
  };
}

describe('weights', () => {
  it('round-trips flatten → bytes → flatten → unflatten with identical predictions', async () => {
    const a = createClassifier({}, 1);
    const b = createClassifier({}, 2);
    try {
      const flat = await flattenWeights(a.params);
      tf.tidy(() => {
        const x = inputs(4, 6);
        expect(flat.length).toBe(569_091);
        const back = weightsFromBytes(weightsToBytes(flat));
        expect(back).toEqual(flat);
        const before = b.predictLogits(x, { training: false }).dataSync();
        unflattenWeights(b.params, back);
        const pa = a.predictLogits(x, { training: false }).dataSync();
        const pb = b.predictLogits(x, { training: false }).dataSync();
        expect(Array.from(pb)).toEqual(Array.from(pa));
        expect(Array.from(before)).not.toEqual(Array.from(pa));
      });
      expect(await flattenWeights(b.params)).toEqual(flat);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('checksum is stable for equal weights and changes when one float changes', async () => {
    const a = createClassifier({}, 7);
    const b = createClassifier({}, 7);
    try {
      const ca = await weightsChecksum(a.params);
      expect(ca).toMatch(/^[0-9a-f]{64}$/);
      expect(await weightsChecksum(b.params)).toBe(ca);
      const flat = await flattenWeights(b.params);
      flat[12345] = flat[12345]! + 1e-3;
      unflattenWeights(b.params, flat);
      expect(await weightsChecksum(b.params)).not.toBe(ca);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('hashes the standard SHA-256 test vectors', async () => {
    const enc = new TextEncoder();
    expect(await sha256Hex(enc.encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('serialises little-endian float32 regardless of host byte order', () => {
    expect(Array.from(weightsToBytes(Float32Array.of(1, -2)))).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect(Array.from(weightsFromBytes(Uint8Array.of(0, 0, 0x80, 0x3f)))).toEqual([1]);
    // A view into a larger buffer at an odd offset.
    const buf = new Uint8Array(9);
    buf.set([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], 1);
    expect(Array.from(weightsFromBytes(buf.subarray(1)))).toEqual([1, -2]);
    expect(() => weightsFromBytes(new Uint8Array(3))).toThrow(/whole number/);
  });

  it('rejects a vector of the wrong length, naming expected and actual', () => {
    const m = createClassifier({}, 1);
    try {
      expect(() => unflattenWeights(m.params, new Float32Array(10))).toThrow(/expected 569091 floats .* got 10/);
    } finally {
      m.dispose();
    }
  });

  it('describes the layout in a manifest', () => {
    const m = createClassifier({}, 1);
    try {
      const { entries, total } = weightManifest(m.params);
      expect(total).toBe(569_091);
      expect(entries[0]).toEqual({ name: 'clinical.lstm0.kernel', shape: [10, 512], offset: 0, size: 5120 });
      expect(entries[1]!.offset).toBe(5120);
      expect(entries.at(-1)).toMatchObject({ name: 'head.dense2.bias', shape: [3], offset: total - 3 });
      expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length);
    } finally {
      m.dispose();
    }
  });
});
