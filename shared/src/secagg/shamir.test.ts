import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { MAX_SHARES, ShamirError, combine, decodeShare, encodeShare, split, type RandomBytes, type Share } from './shamir';

/** Reproducible "random" bytes for tests (production uses the CSPRNG). */
function seededBytes(label: string): RandomBytes {
  const rng = new Rng(`shamir-test/${label}`);
  return (n) => Uint8Array.from({ length: n }, () => rng.nextU32() & 0xff);
}

function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  return items.flatMap((item, i) => subsets(items.slice(i + 1), k - 1).map((rest) => [item, ...rest]));
}

const secret32 = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);

describe('split / combine', () => {
  it.each([
    { t: 3, n: 5, secret: secret32 },
    { t: 3, n: 10, secret: secret32 },
    { t: 1, n: 4, secret: secret32 },
    { t: 4, n: 4, secret: Uint8Array.of(0, 255, 1) },
    { t: 2, n: 3, secret: Uint8Array.of(0) },
    { t: 5, n: 7, secret: Uint8Array.from({ length: 100 }, (_, i) => 255 - i) },
  ])('any $t of a $t-of-$n split reconstruct (and any larger subset)', ({ t, n, secret }) => {
    const shares = split(secret, t, n);
    expect(shares.map((s) => s.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    for (const s of shares) expect(s.value.length).toBe(secret.length);
    for (let k = t; k <= n; k++) {
      for (const subset of subsets(shares, k)) expect(combine(subset), `indices ${subset.map((s) => s.index)}`).toEqual(secret);
    }
    // Order does not matter.
    expect(combine([...shares].reverse())).toEqual(secret);
  });

  it('t = 1 makes every share a copy of the secret', () => {
    for (const s of split(secret32, 1, 3)) expect(s.value).toEqual(secret32);
  });

  it('fresh randomness each split: the same secret gives different shares', () => {
    const a = split(secret32, 3, 5);
    const b = split(secret32, 3, 5);
    expect(a[0]?.value).not.toEqual(b[0]?.value);
  });

  it('uses GF(2^8) with the AES polynomial (FIPS-197: 0x57 · 0x83 = 0xc1)', () => {
    // t = 2 with coefficient 0x57 on x for byte 0: share x holds secret ⊕ 0x57·x.
    const shares = split(Uint8Array.of(0x00, 0x10), 2, 131, () => Uint8Array.of(0x57, 0x00));
    expect(shares[130]?.value).toEqual(Uint8Array.of(0xc1, 0x10));
    expect(shares[0]?.value).toEqual(Uint8Array.of(0x57, 0x10));
  });

  it('255 shares, any 200 of them', () => {
    const shares = split(secret32, 200, MAX_SHARES, seededBytes('255'));
    expect(combine(shares.slice(55))).toEqual(secret32);
    expect(combine(shares)).toEqual(secret32);
  });
});

describe('fewer than t shares reveal nothing', () => {
  it('combine refuses them', () => {
    const shares = split(secret32, 3, 5);
    expect(() => combine(shares.slice(0, 2))).toThrow(/too few shares: 2 given, threshold is 3/);
  });

  it('forcing a lower threshold gives unrelated bytes, not the secret', () => {
    const shares = split(secret32, 3, 5, seededBytes('forced'));
    const forged = shares.slice(0, 2).map((s) => ({ ...s, threshold: 2 }));
    const wrong = combine(forged);
    expect(wrong).not.toEqual(secret32);
    expect(wrong.filter((b, i) => b === secret32[i]).length).toBeLessThan(4); // ≈ 32/256 matches expected by chance
  });

  it('t − 1 shares are consistent with every possible secret (perfect secrecy, byte by byte)', () => {
    // Fix shares 1 and 2 of a 3-of-5 split; vary the third point's byte over all 256 values: the
    // reconstructed byte takes all 256 values, so shares 1 and 2 leave the secret undetermined.
    const [s1, s2, s3] = split(Uint8Array.of(42), 3, 5);
    const reconstructed = new Set<number>();
    for (let v = 0; v < 256; v++) reconstructed.add(combine([s1 as Share, s2 as Share, { ...(s3 as Share), value: Uint8Array.of(v) }])[0] as number);
    expect(reconstructed.size).toBe(256);
  });

  it('a single share of a t ≥ 2 split is uniform whatever the secret (chi-square, 256 bins)', () => {
    const counts = new Array<number>(256).fill(0);
    const random = seededBytes('uniform');
    const trials = 256 * 40;
    for (let i = 0; i < trials; i++) {
      const share = split(Uint8Array.of(0), 3, 5, random)[3] as Share;
      counts[share.value[0] as number]! += 1;
    }
    const expected = trials / 256;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(330.5); // χ²(255) at p = 0.001
  });
});

describe('errors', () => {
  const shares = split(secret32, 3, 5);
  const [a, b, c, d] = shares as [Share, Share, Share, Share];
  it.each([
    { name: 't < 1', run: () => split(secret32, 0, 5), error: /t \(threshold\) must be an integer in \[1, 255\], got 0/ },
    { name: 't > n', run: () => split(secret32, 6, 5), error: /threshold t = 6 exceeds the number of shares n = 5/ },
    { name: 'n > 255', run: () => split(secret32, 3, 256), error: /n \(number of shares\) must be an integer in \[1, 255\], got 256/ },
    { name: 'fractional t', run: () => split(secret32, 2.5, 5), error: /got 2.5/ },
    { name: 'empty secret', run: () => split(new Uint8Array(0), 2, 3), error: /secret is empty/ },
    { name: 'short random source', run: () => split(secret32, 2, 3, () => new Uint8Array(3)), error: /random\(32\) returned 3 bytes/ },
    { name: 'no shares', run: () => combine([]), error: /no shares/ },
    { name: 'duplicate indices', run: () => combine([a, b, { ...c, index: 1 }]), error: /duplicate share index 1/ },
    { name: 'inconsistent lengths', run: () => combine([a, b, { ...c, value: c.value.subarray(0, 31) }]), error: /share 3 has 31 bytes, share 1 has 32: inconsistent lengths/ },
    { name: 'mixed thresholds', run: () => combine([a, b, { ...c, threshold: 2 }]), error: /share 3 has threshold 2, share 1 has 3/ },
    { name: 'index 0', run: () => combine([{ ...a, index: 0 }, b, c]), error: /share index must be an integer in \[1, 255\], got 0/ },
    { name: 'too few', run: () => combine([a, b]), error: /too few shares/ },
    {
      name: 'a corrupted extra share',
      run: () => combine([a, b, c, { ...d, value: d.value.map((x, i) => (i === 7 ? x ^ 1 : x)) }]),
      error: /inconsistent shares: share 4 is not on the polynomial through shares 1, 2, 3/,
    },
  ])('$name', ({ run, error }) => {
    expect(run).toThrow(ShamirError);
    expect(run).toThrow(error);
  });
});

describe('wire form', () => {
  it('round-trips', () => {
    for (const s of split(secret32, 3, 5)) {
      const bytes = encodeShare(s);
      expect(bytes.length).toBe(34);
      expect(decodeShare(bytes)).toEqual({ index: s.index, threshold: 3, value: s.value });
    }
  });
  it.each([
    { name: 'too short', bytes: Uint8Array.of(1, 2), error: /at least 3 bytes/ },
    { name: 'index 0', bytes: Uint8Array.of(0, 2, 9), error: /share index/ },
    { name: 'threshold 0', bytes: Uint8Array.of(1, 0, 9), error: /threshold/ },
  ])('rejects $name', ({ bytes, error }) => {
    expect(() => decodeShare(bytes)).toThrow(error);
  });
});

describe('cost at 100 clients', () => {
  it('reports split and combine times (JSON, no assertion on time)', () => {
    // Full graph of 100 clients, t = ⌊2·99/3⌋ + 1 = 67: every client splits its self-mask seed and its
    // 32-byte mask key into 100 shares; the server rebuilds one secret per client from t shares.
    const clients = 100;
    const t = Math.floor((2 * (clients - 1)) / 3) + 1;
    const secrets = Array.from({ length: clients }, (_, i) => Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j) & 0xff));
    const splitAll = () => secrets.map((s) => [split(s, t, clients), split(s, t, clients)]);
    const combineAll = (all: Share[][][], take: number) => all.map(([shares]) => combine((shares as Share[]).slice(clients - take)));
    combineAll(splitAll(), clients); // warm-up (JIT)
    let start = performance.now();
    const all = splitAll();
    const splitMs = performance.now() - start;
    start = performance.now();
    const rebuilt = combineAll(all, t);
    const combineMs = performance.now() - start;
    start = performance.now();
    combineAll(all, clients); // all 100 shares: the 33 beyond t are checked for consistency
    const combineCheckedMs = performance.now() - start;
    expect(rebuilt).toEqual(secrets);
    console.log(
      JSON.stringify({
        bench: 'shamir',
        clients,
        threshold: t,
        secret_bytes: 32,
        split_all_clients_ms: +splitMs.toFixed(2), // 100 clients × 2 secrets × 100 shares
        split_per_client_ms: +(splitMs / clients).toFixed(3),
        combine_100_secrets_from_t_ms: +combineMs.toFixed(2),
        combine_100_secrets_from_all_100_checked_ms: +combineCheckedMs.toFixed(2),
      }),
    );
  });
});
