import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HE_PARAMETERS,
  HeError,
  type HeParameters,
  checkParameters,
  coeffModulusBits,
  heContext,
  heParameters,
  loadSeal,
  maxClientsFor,
  meetsSecurityLevel,
  securityLevelOf,
  setSealLoader,
} from './seal';

describe('loading node-seal', () => {
  it('loads SEAL 6.0.3 once per realm (the Node UMD build under vitest)', async () => {
    const [a, b] = await Promise.all([loadSeal(), loadSeal()]);
    expect(a).toBe(b);
    expect(a.Version).toBe('6.0.3');
  });

  it('refuses a new loader once loaded', async () => {
    await loadSeal();
    expect(() => setSealLoader(loadSeal)).toThrow(/already loaded/);
  });
});

describe('BFV parameters', () => {
  it('the defaults are what SEAL picks for N = 4096, one 60-bit prime and a 32-bit batching prime', async () => {
    expect(await heParameters(4096, [60], 32)).toEqual(DEFAULT_HE_PARAMETERS);
    expect(coeffModulusBits(DEFAULT_HE_PARAMETERS)).toBeCloseTo(60, 5);
    expect(DEFAULT_HE_PARAMETERS.plain_modulus % 8192).toBe(1);
  });

  it('the default context batches 4096 slots and passes SEAL’s 128-bit check', async () => {
    const ctx = await heContext(DEFAULT_HE_PARAMETERS);
    expect(ctx.slots).toBe(4096);
    expect(ctx.context.parametersSet()).toBe(true);
    expect(ctx.context.firstContextData.qualifiers.usingBatching).toBe(true);
    expect(await heContext(DEFAULT_HE_PARAMETERS)).toBe(ctx); // cached
  });

  // SEAL's tc128/tc192/tc256 limits on log2 q for N = 4096 are 109 / 75 / 58 bits (HE standard).
  it.each([
    { name: 'default: N = 4096, q 60 bits', make: async () => DEFAULT_HE_PARAMETERS, level: 192 },
    { name: 'N = 4096, q = BFVDefault-sized 109 bits', make: () => heParameters(4096, [36, 36, 37], 20), level: 128 },
    { name: 'N = 8192, q 2 × 60 bits', make: () => heParameters(8192, [60, 60], 20), level: 192 },
    { name: 'N = 2048, q 54 bits', make: () => heParameters(2048, [54], 20), level: 128 },
    { name: 'N = 4096, q 120 bits', make: () => heParameters(4096, [60, 60], 32), level: 0 },
  ])('security of $name: $level-bit', async ({ make, level }) => {
    const params = await make();
    expect(await securityLevelOf(params)).toBe(level);
    expect(await meetsSecurityLevel(params, 128)).toBe(level >= 128);
  });

  it('refuses a context below 128-bit security, with the limit in the message', async () => {
    const weak = await heParameters(4096, [60, 60], 32);
    await expect(heContext(weak)).rejects.toThrow(/128-bit security: log2 q = 120\.0 \(at most 109 for N = 4096\)/);
  });

  const bad = (patch: Partial<HeParameters>): HeParameters => ({ ...DEFAULT_HE_PARAMETERS, ...patch });
  it.each([
    { name: 'CKKS', params: bad({ scheme: 'ckks' as 'bfv' }), error: /only the BFV scheme/ },
    { name: 'N = 3000', params: bad({ poly_modulus_degree: 3000 }), error: /poly_modulus_degree must be one of/ },
    { name: 'no primes', params: bad({ coeff_modulus: [] }), error: /1 to 64 primes/ },
    { name: 'a hex prime', params: bad({ coeff_modulus: ['0x10'] }), error: /decimal integers/ },
    { name: 't ≥ 2^32', params: bad({ plain_modulus: 2 ** 32 + 1 }), error: /plain_modulus must be an integer in \[2, 2\^32\)/ },
    { name: 't ≢ 1 mod 2N', params: bad({ plain_modulus: 12_289 }), error: /not ≡ 1 mod 2N = 8192/ },
  ])('rejects $name', ({ params, error }) => {
    expect(() => checkParameters(params)).toThrow(HeError);
    expect(() => checkParameters(params)).toThrow(error);
  });

  it('rejects a coefficient "prime" that is not NTT-friendly', async () => {
    const run = () => heContext(bad({ coeff_modulus: ['1152921504606846975'] }));
    await expect(run()).rejects.toThrow(HeError);
    await expect(run()).rejects.toThrow(/SEAL rejected the HE parameters: .+/);
  });
});

describe('noise capacity', () => {
  it('the defaults sum up to 780 public-key ciphertexts in the worst case', () => {
    // n·((2N + 1)·21 + 1) < q / 2t
    const n = maxClientsFor(DEFAULT_HE_PARAMETERS);
    expect(n).toBe(780);
    const q = Number(DEFAULT_HE_PARAMETERS.coeff_modulus[0]);
    const perClient = (2 * 4096 + 1) * 21 + 1;
    expect(n * perClient).toBeLessThan(q / (2 * DEFAULT_HE_PARAMETERS.plain_modulus));
    expect((n + 1) * perClient).toBeGreaterThanOrEqual(q / (2 * DEFAULT_HE_PARAMETERS.plain_modulus));
  });
});
