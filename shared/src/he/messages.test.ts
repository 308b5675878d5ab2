import { describe, expect, it } from 'vitest';
import { packChunks, unpackChunks } from './messages';

describe('packChunks / unpackChunks', () => {
  it('round-trips many byte strings as one (Socket.IO takes at most 10 attachments)', () => {
    const chunks = Array.from({ length: 139 }, (_, i) => Uint8Array.from({ length: 5 + i }, (_, j) => (i * 31 + j) & 0xff));
    const packed = packChunks(chunks);
    expect(packed.byteLength).toBe(4 + 4 * 139 + chunks.reduce((s, c) => s + c.length, 0));
    expect(unpackChunks(packed)).toEqual(chunks);
  });

  it('refuses truncated, overlong and trailing data with a clear error', () => {
    const packed = packChunks([Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
    expect(() => unpackChunks(packed.subarray(0, packed.length - 1))).toThrow(/runs past the end/);
    expect(() => unpackChunks(Uint8Array.of(...packed, 9))).toThrow(/trailing bytes/);
    expect(() => unpackChunks(Uint8Array.of(1, 2))).toThrow(/shorter than their header/);
    expect(() => unpackChunks(Uint8Array.of(0, 0, 0, 0))).toThrow(/0 chunks/);
  });
});
