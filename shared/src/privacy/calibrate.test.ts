import { describe, expect, it } from 'vitest';
import { MAX_NOISE_MULTIPLIER, noiseForEpsilon, stepsForBudget } from './calibrate';
import { epsilonFor, PrivacyParameterError, type Conversion } from './rdp';

describe('noiseForEpsilon', () => {
  // Opacus tests/accountants_test.py: get_noise_multiplier(ε 8, δ 1e-5, q 0.04, 90 epochs | 2000 steps).
  it.each([
    { steps: 2250, sigma: 1.416 },
    { steps: 2000, sigma: 1.3562 },
  ])('gives Opacus’s σ $sigma for ε 8, q 0.04, $steps steps', ({ steps, sigma }) => {
    expect(noiseForEpsilon({ targetEpsilon: 8, sampleRate: 0.04, steps, delta: 1e-5 })).toBeCloseTo(sigma, 4);
  });

  it.each([
    { targetEpsilon: 1, sampleRate: 0.01, steps: 1000, delta: 1e-5, conversion: 'opacus' },
    { targetEpsilon: 3, sampleRate: 256 / 60000, steps: 14062, delta: 1e-5, conversion: 'classic' },
    { targetEpsilon: 8, sampleRate: 0.04, steps: 2250, delta: 1e-5, conversion: 'opacus' },
    { targetEpsilon: 0.5, sampleRate: 0.001, steps: 10000, delta: 1e-6, conversion: 'opacus' },
    { targetEpsilon: 50, sampleRate: 0.1, steps: 100, delta: 1e-5, conversion: 'opacus' },
    { targetEpsilon: 2, sampleRate: 1, steps: 10, delta: 1e-5, conversion: 'classic' },
    { targetEpsilon: 0.2, sampleRate: 0.05, steps: 50, delta: 1e-5, conversion: 'opacus' }, // needs σ > 20
  ] as const)('round-trips: ε $targetEpsilon, q $sampleRate, $steps steps, $conversion', (args) => {
    const sigma = noiseForEpsilon(args);
    const { epsilon } = epsilonFor({ ...args, noiseMultiplier: sigma });
    expect(epsilon).toBeLessThanOrEqual(args.targetEpsilon);
    expect(args.targetEpsilon - epsilon).toBeLessThanOrEqual(0.01);
  });

  it('meets a finer precision when asked', () => {
    const args = { targetEpsilon: 1, sampleRate: 0.01, steps: 1000, delta: 1e-5 };
    const sigma = noiseForEpsilon({ ...args, precision: 1e-5 });
    const { epsilon } = epsilonFor({ ...args, noiseMultiplier: sigma });
    expect(epsilon).toBeLessThanOrEqual(1);
    expect(1 - epsilon).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a target that even σ = 1e4 cannot reach', () => {
    // With orders up to 63, ε ≥ (log(1/δ) − log 63)/62 − log(62/63) ≈ 0.1029 however large σ is.
    const call = () => noiseForEpsilon({ targetEpsilon: 0.05, sampleRate: 0.01, steps: 1000, delta: 1e-5 });
    expect(call).toThrow(PrivacyParameterError);
    expect(call).toThrow(`targetEpsilon must be reachable with a noise multiplier <= ${MAX_NOISE_MULTIPLIER} (which still gives ε = 0.1029 here)`);
    // … and larger orders can certify it.
    const orders = [2, 8, 32, 128, 256, 512];
    const sigma = noiseForEpsilon({ targetEpsilon: 0.05, sampleRate: 0.01, steps: 1000, delta: 1e-5, orders });
    expect(epsilonFor({ sampleRate: 0.01, noiseMultiplier: sigma, steps: 1000, delta: 1e-5, orders }).epsilon).toBeLessThanOrEqual(0.05);
  });

  const base = { targetEpsilon: 1, sampleRate: 0.01, steps: 100, delta: 1e-5 };
  it.each([
    { name: 'target ε 0', over: { targetEpsilon: 0 }, message: 'targetEpsilon must be > 0 and finite (got 0)' },
    { name: 'target ε < 0', over: { targetEpsilon: -1 }, message: 'targetEpsilon must be > 0 and finite (got -1)' },
    { name: 'target ε ∞', over: { targetEpsilon: Infinity }, message: 'targetEpsilon must be > 0 and finite (got Infinity)' },
    { name: 'q 0', over: { sampleRate: 0 }, message: 'sampleRate must be in (0, 1] (got 0)' },
    { name: 'q > 1', over: { sampleRate: 2 }, message: 'sampleRate must be in (0, 1] (got 2)' },
    { name: 'steps 0', over: { steps: 0 }, message: 'steps must be a positive integer (got 0)' },
    { name: 'steps 10.5', over: { steps: 10.5 }, message: 'steps must be a positive integer (got 10.5)' },
    { name: 'δ 0', over: { delta: 0 }, message: 'delta must be in (0, 1) (got 0)' },
    { name: 'δ 1', over: { delta: 1 }, message: 'delta must be in (0, 1) (got 1)' },
    { name: 'precision 0', over: { precision: 0 }, message: 'precision must be > 0 and finite (got 0)' },
    { name: 'conversion', over: { conversion: 'rdp' as Conversion }, message: 'conversion must be one of "opacus", "classic" (got "rdp")' },
  ])('rejects $name', ({ over, message }) => {
    const call = () => noiseForEpsilon({ ...base, ...over });
    expect(call).toThrow(PrivacyParameterError);
    expect(call).toThrow(message);
  });
});

describe('stepsForBudget', () => {
  it.each([
    { targetEpsilon: 1, sampleRate: 0.01, noiseMultiplier: 1, delta: 1e-5, conversion: 'opacus' },
    { targetEpsilon: 3, sampleRate: 256 / 60000, noiseMultiplier: 1.1, delta: 1e-5, conversion: 'classic' },
    { targetEpsilon: 8, sampleRate: 0.04, noiseMultiplier: 1.5, delta: 1e-5, conversion: 'opacus' },
    { targetEpsilon: 2, sampleRate: 0.001, noiseMultiplier: 0.8, delta: 1e-7, conversion: 'opacus' },
    { targetEpsilon: 5, sampleRate: 1, noiseMultiplier: 2, delta: 1e-5, conversion: 'opacus' },
  ] as const)('ε $targetEpsilon, q $sampleRate, σ $noiseMultiplier: steps fit, steps + 1 do not', (args) => {
    const steps = stepsForBudget(args);
    expect(steps).toBeGreaterThan(0);
    expect(epsilonFor({ ...args, steps }).epsilon).toBeLessThanOrEqual(args.targetEpsilon);
    expect(epsilonFor({ ...args, steps: steps + 1 }).epsilon).toBeGreaterThan(args.targetEpsilon);
  });

  it('agrees with the published schedule: 2250 steps at q 0.04, σ 1.5 cost ε 7.329', () => {
    expect(stepsForBudget({ targetEpsilon: 7.32911117143 + 1e-9, sampleRate: 0.04, noiseMultiplier: 1.5, delta: 1e-5 })).toBe(2250);
  });

  it('is 0 when one step already exceeds the budget', () => {
    const args = { targetEpsilon: 0.5, sampleRate: 0.5, noiseMultiplier: 0.5, delta: 1e-5 };
    expect(epsilonFor({ ...args, steps: 1 }).epsilon).toBeGreaterThan(0.5);
    expect(stepsForBudget(args)).toBe(0);
  });

  it('is 1 when exactly one step fits', () => {
    const { epsilon } = epsilonFor({ sampleRate: 0.5, noiseMultiplier: 2, steps: 1, delta: 1e-5 });
    expect(stepsForBudget({ targetEpsilon: epsilon, sampleRate: 0.5, noiseMultiplier: 2, delta: 1e-5 })).toBe(1);
  });

  const base = { targetEpsilon: 1, sampleRate: 0.01, noiseMultiplier: 1, delta: 1e-5 };
  it.each([
    { name: 'target ε 0', over: { targetEpsilon: 0 }, message: 'targetEpsilon must be > 0 and finite (got 0)' },
    { name: 'q 0', over: { sampleRate: 0 }, message: 'sampleRate must be in (0, 1] (got 0)' },
    { name: 'q NaN', over: { sampleRate: Number.NaN }, message: 'sampleRate must be in (0, 1] (got NaN)' },
    { name: 'σ 0', over: { noiseMultiplier: 0 }, message: 'noiseMultiplier must be > 0 and finite (got 0)' },
    { name: 'σ < 0', over: { noiseMultiplier: -2 }, message: 'noiseMultiplier must be > 0 and finite (got -2)' },
    { name: 'δ 1', over: { delta: 1 }, message: 'delta must be in (0, 1) (got 1)' },
    { name: 'δ 0', over: { delta: 0 }, message: 'delta must be in (0, 1) (got 0)' },
    { name: 'conversion', over: { conversion: 'x' as Conversion }, message: 'conversion must be one of "opacus", "classic" (got "x")' },
  ])('rejects $name', ({ over, message }) => {
    const call = () => stepsForBudget({ ...base, ...over });
    expect(call).toThrow(PrivacyParameterError);
    expect(call).toThrow(message);
  });
});
