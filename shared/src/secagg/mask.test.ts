import { describe, expect, it } from 'vitest';
import { CHI2_255_P001, chiSquareOfBytes } from '../testing/chi-square';
import { seededRandom } from '../util/csprng';
import { Rng } from '../util/random';
import { agree, exportPrivateKey, exportPublicKey, generateRoundKeyPairs, hkdf, importPrivateKey, pairwiseMaskSeed, randomSeed, type RoundKeyPairs } from './keys';
import { MaskError, addInto, applyMask, expandMask, maskInput, pairwiseSign, subInto, sumMod, type MaskTerm } from './mask';
import { dequantizeSum, quantizationFor, quantize, sumErrorBound } from './quantize';
import { combine, split } from './shamir';

const seedOf = (label: number) => Uint8Array.from({ length: 32 }, (_, i) => (i + label * 32) & 0xff);
const hexWords = (w: ArrayLike<number>) => Array.from(w, (x) => `0x${x.toString(16).padStart(8, '0')}`);

describe('expandMask', () => {
  it('matches AES-128-CTR keyed by HKDF-SHA-256(seed, "fedcare/secagg/v1 mask") as OpenSSL computes it', async () => {
    // openssl kdf -keylen 16 -kdfopt digest:SHA256 -kdfopt hexkey:000102…1f -kdfopt "info:fedcare/secagg/v1 mask" HKDF
    //   → 27edfab09a320338083cf02cc0b7fb61;  openssl enc -aes-128-ctr -K … -iv 0 on zeros, read as little-endian uint32.
    const mask = await expandMask(seedOf(0), 569_091);
    expect(hexWords(mask.subarray(0, 8))).toEqual(['0xa086a06a', '0x0845e96b', '0xab0bdd44', '0x0d610a6e', '0x0178e56c', '0x67739d15', '0xb6e078f2', '0x17ac5b0a']);
    // Across the 256 KiB (65 536-word) chunks the implementation encrypts separately, the counter continues.
    expect(hexWords([mask[65_535]!, mask[65_536]!])).toEqual(['0xd92bd7e2', '0x8cd54557']);
    expect(hexWords([mask[262_142]!, mask[262_143]!, mask[262_144]!, mask[262_145]!])).toEqual(['0x598b09cd', '0xe22989bc', '0xa741edbf', '0x0cd87260']);
    expect(hexWords([mask[524_287]!, mask[524_288]!, mask[569_090]!])).toEqual(['0x38eb3bc2', '0x277e9001', '0xb23cfff3']);
  });

  it('is deterministic per seed, a prefix of longer masks, and differs between seeds', async () => {
    const a = await expandMask(seedOf(1), 100_000);
    expect(await expandMask(seedOf(1), 100_000)).toEqual(a);
    expect(await expandMask(seedOf(1), 5)).toEqual(a.subarray(0, 5));
    const b = await expandMask(seedOf(2), 100_000);
    const equal = a.filter((w, i) => w === b[i]).length;
    expect(equal).toBeLessThan(3); // ≈ 100 000 / 2^32 coincidences expected
  });

  it('derives the AES key from the seed (not the seed itself)', async () => {
    const seed = seedOf(3);
    const key = await crypto.subtle.importKey('raw', (await hkdf(seed, new TextEncoder().encode('fedcare/secagg/v1 mask'), 16)) as Uint8Array<ArrayBuffer>, 'AES-CTR', false, ['encrypt']);
    const stream = await crypto.subtle.encrypt({ name: 'AES-CTR', counter: new Uint8Array(16), length: 128 }, key, new Uint8Array(64));
    expect(await expandMask(seed, 16)).toEqual(new Uint32Array(stream));
  });

  it.each([
    { name: 'a 16-byte seed', run: () => expandMask(new Uint8Array(16), 4), error: /mask seed must be 32 bytes, got 16/ },
    { name: 'a negative length', run: () => expandMask(seedOf(0), -1), error: /non-negative integer, got -1/ },
  ])('rejects $name', async ({ run, error }) => {
    await expect(run()).rejects.toThrow(MaskError);
    await expect(run()).rejects.toThrow(error);
  });

  it('length 0 is an empty mask', async () => {
    expect((await expandMask(seedOf(0), 0)).length).toBe(0);
  });

  it('reports AES-CTR expansion throughput for the model size (JSON, no assertion on time)', async () => {
    const words = 569_091;
    for (let i = 0; i < 3; i++) await expandMask(randomSeed(), words); // warm-up
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const start = performance.now();
      await expandMask(randomSeed(), words);
      times.push(performance.now() - start);
    }
    times.sort((x, y) => x - y);
    const median = times[Math.floor(times.length / 2)] as number;
    console.log(JSON.stringify({ bench: 'mask-expand', words, bytes: words * 4, median_ms: +median.toFixed(3), min_ms: +(times[0] as number).toFixed(3), mb_per_s: Math.round((words * 4) / 1e6 / (median / 1000)) }));
  });
});

describe('arithmetic mod 2^32', () => {
  it.each([
    { name: 'add wraps', op: addInto, a: [0xffff_ffff, 5, 0x8000_0000], b: [1, 7, 0x8000_0000], expected: [0, 12, 0] },
    { name: 'sub wraps', op: subInto, a: [0, 5, 3], b: [1, 7, 3], expected: [0xffff_ffff, 0xffff_fffe, 0] },
  ])('$name', ({ op, a, b, expected }) => {
    const acc = Uint32Array.from(a);
    expect(op(acc, Uint32Array.from(b))).toBe(acc);
    expect(Array.from(acc)).toEqual(expected);
  });

  it('sub undoes add, and sumMod sums', () => {
    const rng = new Rng('mod');
    const x = Uint32Array.from({ length: 100 }, () => rng.nextU32());
    const m = Uint32Array.from({ length: 100 }, () => rng.nextU32());
    expect(subInto(addInto(x.slice(), m), m)).toEqual(x);
    expect(sumMod([x, m])).toEqual(addInto(x.slice(), m));
    expect(() => sumMod([])).toThrow(/no vectors/);
  });

  it('rejects vectors of different lengths', () => {
    expect(() => addInto(new Uint32Array(3), new Uint32Array(4))).toThrow(/differ in length: 3 and 4/);
  });

  it('pairwiseSign is antisymmetric', () => {
    expect(pairwiseSign('H1', 'H2')).toBe(1);
    expect(pairwiseSign('H2', 'H1')).toBe(-1);
    expect(() => pairwiseSign('H1', 'H1')).toThrow(/with itself/);
  });
});

describe('masking five clients', () => {
  const ids = ['H1', 'H2', 'H3', 'H4', 'H5'];
  const runId = 'run-7';
  const round = 2;
  const length = 20_000;
  const cfg = quantizationFor(4, ids.length);

  // Each client's update (some values beyond ±R, to exercise clipping) and its quantised form.
  const updates = ids.map((id) => {
    const rng = new Rng(`update/${id}`);
    return Float32Array.from({ length }, () => (rng.next() - 0.5) * 10);
  });
  const quantized = updates.map((u, i) => quantize(u, cfg, seededRandom(`q/${i}`)));

  async function pairSeeds(keys: readonly RoundKeyPairs[]): Promise<Map<string, Uint8Array>> {
    const seeds = new Map<string, Uint8Array>();
    for (const [i, u] of ids.entries()) {
      for (const [j, v] of ids.entries()) {
        if (i === j) continue;
        const secret = await agree(keys[i]!.s.privateKey, await exportPublicKey(keys[j]!.s.publicKey));
        seeds.set(`${u}|${v}`, await pairwiseMaskSeed(secret, { runId, round, clients: [u, v] }));
      }
    }
    return seeds;
  }

  it('pairwise masks cancel: Σ_i (x_i + Σ_{j>i} m_ij − Σ_{j<i} m_ji) ≡ Σ_i x_i mod 2^32', async () => {
    const keys = await Promise.all(ids.map(() => generateRoundKeyPairs()));
    const seeds = await pairSeeds(keys);
    // Each side derives the same seed on its own.
    expect(seeds.get('H1|H4')).toEqual(seeds.get('H4|H1'));
    const masked = await Promise.all(
      ids.map((u, i) => maskInput(quantized[i]!, ids.filter((v) => v !== u).map((v): MaskTerm => ({ seed: seeds.get(`${u}|${v}`)!, sign: pairwiseSign(u, v) })))),
    );
    expect(masked[0]).not.toEqual(quantized[0]);
    expect(sumMod(masked)).toEqual(sumMod(quantized));
  });

  it('with self masks and one client dropped before masked input, the server recovers the survivors’ sum', async () => {
    const keys = await Promise.all(ids.map(() => generateRoundKeyPairs()));
    const seeds = await pairSeeds(keys);
    const t = 3;
    const selfSeeds = ids.map(() => randomSeed());
    // Share keys: every client splits b_u and s_sk_u among the five (delivery is the stage's job).
    const selfShares = selfSeeds.map((b) => split(b, t, ids.length));
    const keyShares = await Promise.all(keys.map(async (k) => split(await exportPrivateKey(k.s.privateKey), t, ids.length)));

    const dropped = 2; // H3 sends no masked input
    const survivors = ids.flatMap((_, i) => (i === dropped ? [] : [i]));
    const masked = await Promise.all(
      survivors.map((i) => {
        const u = ids[i]!;
        const pairwise = ids.filter((v) => v !== u).map((v): MaskTerm => ({ seed: seeds.get(`${u}|${v}`)!, sign: pairwiseSign(u, v) }));
        return maskInput(quantized[i]!, [{ seed: selfSeeds[i]!, sign: 1 }, ...pairwise]);
      }),
    );
    for (const y of masked) expect(chiSquareOfBytes(y, (w) => w >>> 24)).toBeLessThan(10 * CHI2_255_P001); // nowhere near structured

    // Unmask: survivors' b_u from any t shares; the dropped client's s_sk from t shares, then the
    // pairwise masks it shared with each survivor are removed (each survivor added sign·m).
    const sum = sumMod(masked);
    for (const i of survivors) await applyMask(sum, combine(selfShares[i]!.slice(0, t)), -1);
    const droppedKey = await importPrivateKey(combine(keyShares[dropped]!.slice(1, 1 + t)));
    for (const i of survivors) {
      const v = ids[i]!;
      const seed = await pairwiseMaskSeed(await agree(droppedKey, await exportPublicKey(keys[i]!.s.publicKey)), { runId, round, clients: [v, ids[dropped]!] });
      expect(seed).toEqual(seeds.get(`${v}|${ids[dropped]}`));
      await applyMask(sum, seed, pairwiseSign(v, ids[dropped]!) === 1 ? -1 : 1);
    }
    expect(sum).toEqual(sumMod(survivors.map((i) => quantized[i]!)));

    // And back to floats: within n·Δ of the sum of the survivors' clipped updates.
    const floats = dequantizeSum(sum, survivors.length, cfg);
    const bound = sumErrorBound(cfg, survivors.length);
    let worst = 0;
    for (let k = 0; k < length; k++) {
      const exact = survivors.reduce((acc, i) => acc + Math.min(cfg.clip, Math.max(-cfg.clip, updates[i]![k]!)), 0);
      worst = Math.max(worst, Math.abs(floats[k]! - exact));
    }
    expect(worst).toBeLessThan(bound);
  });

  it('a masked vector is indistinguishable from uniform (χ² of top and bottom bytes, p > 0.001); the unmasked one is not', async () => {
    // Fixed seeds keep the test deterministic; the input is a constant update, as structured as it gets.
    const words = 569_091;
    const x = quantize(new Float32Array(words).fill(0.25), quantizationFor(1, 5), seededRandom('chi'));
    const y = await maskInput(x, [
      { seed: seedOf(10), sign: 1 },
      { seed: seedOf(11), sign: 1 },
      { seed: seedOf(12), sign: -1 },
    ]);
    const top = chiSquareOfBytes(y, (w) => w >>> 24);
    const bottom = chiSquareOfBytes(y, (w) => w & 0xff);
    console.log(JSON.stringify({ test: 'masked-vector-chi-square', words, df: 255, chi2_top_byte: +top.toFixed(1), chi2_bottom_byte: +bottom.toFixed(1), critical_p001: CHI2_255_P001 }));
    expect(top).toBeLessThan(CHI2_255_P001);
    expect(bottom).toBeLessThan(CHI2_255_P001);
    expect(chiSquareOfBytes(x, (w) => w >>> 24)).toBeGreaterThan(1e5);
  });
});
