/**
 * Strategy state ⇄ bytes for checkpoints: a JSON header (names, kinds, lengths) followed by the
 * float32 arrays little-endian. Exact: a resumed run continues bit-identically.
 */
import type { StrategyState } from './strategy';
export type { StrategyState };

export function encodeStrategyState(state: StrategyState): Uint8Array {
  const entries = Object.entries(state).sort(([a], [b]) => (a < b ? -1 : 1));
  const header = entries.map(([name, v]) => (typeof v === 'number' ? { name, number: v } : { name, length: v.length }));
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const floats = entries.reduce((n, [, v]) => n + (typeof v === 'number' ? 0 : v.length), 0);
  const out = new Uint8Array(4 + headerBytes.length + 4 * floats);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes.length, true);
  out.set(headerBytes, 4);
  let at = 4 + headerBytes.length;
  for (const [, v] of entries) {
    if (typeof v === 'number') continue;
    for (let i = 0; i < v.length; i++, at += 4) view.setFloat32(at, v[i] as number, true);
  }
  return out;
}

export function decodeStrategyState(bytes: Uint8Array): StrategyState {
  if (bytes.length === 0) return {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as ({ name: string; number: number } | { name: string; length: number })[];
  const state: StrategyState = {};
  let at = 4 + headerLength;
  for (const h of header) {
    if ('number' in h) {
      state[h.name] = h.number;
      continue;
    }
    const arr = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++, at += 4) arr[i] = view.getFloat32(at, true);
    state[h.name] = arr;
  }
  if (at !== bytes.length) throw new Error(`strategy state: ${bytes.length - at} trailing bytes`);
  return state;
}
