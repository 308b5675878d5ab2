import { describe, expect, it } from 'vitest';
import { weightedAverage } from './aggregate';
import { createStrategy, isStrategyName, STRATEGY_NAMES } from './strategies';
import type { StrategyParams } from './strategies';
import { AggregationError, DEFAULT_STRATEGY_OPTIONS } from './strategy';
import type { FitResult, StrategyName } from './strategy';

function expectClose(actual: ArrayLike<number>, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i], `index ${i}`).toBeCloseTo(e, digits));
}

const fit = (hospitalId: string, weights: number[], numSamples: number, metrics: Record<string, number> = {}): FitResult => ({
  hospitalId,
  weights: Float32Array.from(weights),
  numSamples,
  metrics,
});

// Round 1: 3 clients × 4 params around global G1. Weighted mean (1·A + 1·B + 2·C)/4 = [0.5, 1.25, -2, 0.5],
// so the pseudo-gradient Δ1 = mean − G1 = [0.5, 0.25, -1, 0] (the last coordinate never moves).
const G1 = Float32Array.from([0, 1, -1, 0.5]);
const ROUND1 = [
  fit('H1', [1, 1, -1, 0.5], 1, { train_loss: 1, train_accuracy: 0.5 }),
  fit('H2', [0, 2, -1, 0.5], 1, { train_loss: 2, train_accuracy: 0.7 }),
  fit('H3', [0.5, 1, -3, 0.5], 2, { train_loss: 0.5, train_accuracy: 0.9 }),
];
// Round 2: from G2 = 0, every client sends D2, so the mean is D2 and Δ2 = D2. Coordinate 3 flips sign
// and shrinks (Δ1 = −1, Δ2 = 0.05), coordinate 4 moves for the first time.
const G2 = new Float32Array(4);
const D2 = [0.5, 0.25, 0.05, 0.5];
const ROUND2 = [fit('H1', D2, 1), fit('H2', D2, 1), fit('H3', D2, 2)];

// FedOpt rows use η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-3 so the numbers stay readable.
const OPT = { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
// FedAdam's bias-corrected rates: t=1: 0.1·√(1−0.99)/(1−0.9) = 0.1; t=2: 0.1·√(1−0.9801)/(1−0.81).
const ADAM_ETA2 = (0.1 * Math.sqrt(0.0199)) / 0.19;

interface Row {
  name: StrategyName;
  params: StrategyParams;
  round1: number[];
  round2: number[];
}

const TABLE: Row[] = [
  { name: 'fedavg', params: {}, round1: [0.5, 1.25, -2, 0.5], round2: D2 },
  { name: 'fedprox', params: {}, round1: [0.5, 1.25, -2, 0.5], round2: D2 },
  {
    name: 'fedadam',
    params: OPT,
    // t=1: m = 0.1Δ, v = 0.01Δ², w = G1 + 0.1·m/(√v + 0.001)
    round1: [0 + (0.1 * 0.05) / (0.05 + 0.001), 1 + (0.1 * 0.025) / (0.025 + 0.001), -1 + (0.1 * -0.1) / (0.1 + 0.001), 0.5],
    // t=2: m = 0.9m + 0.1Δ2, v = 0.99v + 0.01Δ2²
    //   c1: m = .045 + .05 = .095,      v = .002475 + .0025 = .004975
    //   c2: m = .0225 + .025 = .0475,   v = .00061875 + .000625 = .00124375
    //   c3: m = −.09 + .005 = −.085,    v = .0099 + .000025 = .009925
    //   c4: m = 0 + .05 = .05,          v = 0 + .0025 = .0025
    round2: [
      (ADAM_ETA2 * 0.095) / (Math.sqrt(0.004975) + 0.001),
      (ADAM_ETA2 * 0.0475) / (Math.sqrt(0.00124375) + 0.001),
      (ADAM_ETA2 * -0.085) / (Math.sqrt(0.009925) + 0.001),
      (ADAM_ETA2 * 0.05) / (0.05 + 0.001),
    ],
  },
  {
    name: 'fedyogi',
    params: OPT,
    // from v = 0: v = 0 − 0.01Δ²·sign(0 − Δ²) = 0.01Δ², the same first step as Adam's
    round1: [0 + (0.1 * 0.05) / (0.05 + 0.001), 1 + (0.1 * 0.025) / (0.025 + 0.001), -1 + (0.1 * -0.1) / (0.1 + 0.001), 0.5],
    // v ← v − 0.01Δ2²·sign(v − Δ2²), no bias correction (η = 0.1); m as FedAdam's
    //   c1: v = .0025 + .0025 = .005          (v < Δ2² = .25)
    //   c2: v = .000625 + .000625 = .00125    (v < Δ2² = .0625)
    //   c3: v = .01 − .000025 = .009975       (v > Δ2² = .0025: v shrinks)
    //   c4: v = 0 + .0025 = .0025
    round2: [
      (0.1 * 0.095) / (Math.sqrt(0.005) + 0.001),
      (0.1 * 0.0475) / (Math.sqrt(0.00125) + 0.001),
      (0.1 * -0.085) / (Math.sqrt(0.009975) + 0.001),
      (0.1 * 0.05) / (0.05 + 0.001),
    ],
  },
  {
    name: 'fedadagrad',
    params: { eta: 0.1, tau: 1e-3 },
    // β1 = 0: m = Δ; v = Δ²
    round1: [0 + (0.1 * 0.5) / (0.5 + 0.001), 1 + (0.1 * 0.25) / (0.25 + 0.001), -1 + (0.1 * -1) / (1 + 0.001), 0.5],
    // m = Δ2; v = Δ1² + Δ2²: .25 + .25, .0625 + .0625, 1 + .0025, 0 + .25
    round2: [
      (0.1 * 0.5) / (Math.sqrt(0.5) + 0.001),
      (0.1 * 0.25) / (Math.sqrt(0.125) + 0.001),
      (0.1 * 0.05) / (Math.sqrt(1.0025) + 0.001),
      (0.1 * 0.5) / (0.5 + 0.001),
    ],
  },
  // Unweighted per-coordinate medians of {1, 0, .5}, {1, 2, 1}, {−1, −1, −3}, {.5, .5, .5}.
  { name: 'median', params: {}, round1: [0.5, 1, -1, 0.5], round2: D2 },
  // Default beta 0.2 trims ⌊0.6⌋ = 0 of 3: the unweighted mean (1.5/3, 4/3, −5/3, .5).
  { name: 'trimmed', params: {}, round1: [0.5, 4 / 3, -5 / 3, 0.5], round2: D2 },
  // beta 0.4 trims ⌊1.2⌋ = 1 at each end of 3: the median.
  { name: 'trimmed', params: { beta: 0.4 }, round1: [0.5, 1, -1, 0.5], round2: D2 },
  // Squared distances H1–H2 2, H1–H3 4.25, H2–H3 5.25; f = 0 → 1 nearest: scores 2, 2, 4.25; tie → H1.
  { name: 'krum', params: {}, round1: [1, 1, -1, 0.5], round2: D2 },
  // Multi-Krum m = 2 keeps H1, H2 (numSamples 1, 1) and averages them.
  { name: 'krum', params: { numClientsToKeep: 2 }, round1: [0.5, 1.5, -1, 0.5], round2: D2 },
];

describe('every strategy, two rounds by hand', () => {
  it.each(TABLE)('$name $params', ({ name, params, round1, round2 }) => {
    const s = createStrategy(name, params);
    const r1 = s.aggregateFit(1, G1, ROUND1);
    expect(r1.weights).toBeInstanceOf(Float32Array);
    expectClose(r1.weights, round1);
    // (1·1 + 1·2 + 2·0.5)/4 = 1; (0.5 + 0.7 + 1.8)/4 = 0.75
    expect(r1.metrics.train_loss).toBeCloseTo(1, 12);
    expect(r1.metrics.train_accuracy).toBeCloseTo(0.75, 12);
    expect(r1.metrics.num_examples).toBe(4);
    expectClose(s.aggregateFit(2, G2, ROUND2).weights, round2);
  });

  it.each(STRATEGY_NAMES)('%s does not modify its inputs', (name) => {
    const results = ROUND1.map((r) => ({ ...r, weights: Float32Array.from(r.weights) }));
    const global = Float32Array.from(G1);
    const out = createStrategy(name).aggregateFit(1, global, results);
    expect(Array.from(global)).toEqual(Array.from(G1));
    results.forEach((r, i) => expect(Array.from(r.weights)).toEqual(Array.from((ROUND1[i] as FitResult).weights)));
    for (const r of results) expect(out.weights).not.toBe(r.weights);
  });
});

describe('weighted-sum strategies can aggregate a mean computed elsewhere', () => {
  it.each(TABLE.filter((r) => createStrategy(r.name).weightedSum))('$name: aggregateFromMean matches aggregateFit', ({ name, params }) => {
    const viaFit = createStrategy(name, params);
    const viaMean = createStrategy(name, params);
    const mean = weightedAverage(
      ROUND1.map((r) => r.weights),
      ROUND1.map((r) => r.numSamples),
    );
    const fromMean = viaMean.aggregateFromMean?.(1, G1, mean);
    expect(fromMean).toBeDefined();
    expect(fromMean).toEqual(viaFit.aggregateFit(1, G1, ROUND1).weights);
    expect(fromMean).not.toBe(mean);
  });

  it.each(['median', 'trimmed', 'krum'] as const)('%s is not a weighted sum and has no aggregateFromMean', (name) => {
    const s = createStrategy(name);
    expect(s.weightedSum).toBe(false);
    expect(s.aggregateFromMean).toBeUndefined();
  });

  it('aggregateFromMean rejects a mean of the wrong length or with NaN', () => {
    const s = createStrategy('fedavg');
    expect(() => s.aggregateFromMean?.(1, G1, Float32Array.from([1, 2]))).toThrow(/aggregated mean has 2 values, the global model has 4/);
    expect(() => s.aggregateFromMean?.(1, G1, Float32Array.from([1, NaN, 0, 0]))).toThrow(/aggregated mean\[1\] is NaN/);
  });
});

describe('aggregateFit validation', () => {
  const cases: { name: string; results: FitResult[]; hospital: string | undefined; message: RegExp }[] = [
    { name: 'NaN', results: [ROUND1[0] as FitResult, fit('H2', [0, NaN, 0, 0], 1), ROUND1[2] as FitResult], hospital: 'H2', message: /H2: weights\[1\] is NaN/ },
    { name: 'Infinity', results: [fit('H1', [0, 0, 0, Infinity], 1), ROUND1[1] as FitResult], hospital: 'H1', message: /H1: weights\[3\] is Infinity/ },
    { name: '-Infinity', results: [ROUND1[0] as FitResult, fit('H3', [-Infinity, 0, 0, 0], 2)], hospital: 'H3', message: /H3: weights\[0\] is -Infinity/ },
    { name: 'wrong length', results: [ROUND1[0] as FitResult, fit('H2', [0, 0, 0], 1)], hospital: 'H2', message: /H2: weights has 3 values, the global model has 4/ },
    { name: 'numSamples 0', results: [ROUND1[0] as FitResult, fit('H3', [0, 0, 0, 0], 0)], hospital: 'H3', message: /H3: numSamples is 0/ },
    { name: 'negative numSamples', results: [fit('H2', [0, 0, 0, 0], -3)], hospital: 'H2', message: /H2: numSamples is -3/ },
    { name: 'NaN numSamples', results: [fit('H1', [0, 0, 0, 0], NaN)], hospital: 'H1', message: /H1: numSamples is NaN/ },
    { name: 'two results from one hospital', results: [ROUND1[0] as FitResult, ROUND1[0] as FitResult], hospital: 'H1', message: /H1: sent more than one fit result/ },
    {
      name: 'weights not a Float32Array',
      results: [{ hospitalId: 'H2', weights: Float64Array.from([0, 0, 0, 0]) as unknown as Float32Array, numSamples: 1, metrics: {} }],
      hospital: 'H2',
      message: /H2: weights is not a Float32Array/,
    },
    { name: 'no results', results: [], hospital: undefined, message: /no fit results/ },
  ];
  const table = STRATEGY_NAMES.flatMap((strategy) => cases.map((c) => ({ strategy, ...c })));

  it.each(table)('$strategy rejects $name', ({ strategy, results, hospital, message }) => {
    const s = createStrategy(strategy);
    let error: unknown;
    try {
      s.aggregateFit(1, G1, results);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AggregationError);
    expect((error as AggregationError).hospitalId).toBe(hospital);
    expect((error as AggregationError).message).toMatch(message);
  });

  it('a rejected round leaves FedOpt state untouched', () => {
    const s = createStrategy('fedadam');
    s.aggregateFit(1, G1, ROUND1);
    const before = s.exportState();
    expect(() => s.aggregateFit(2, G2, [fit('H1', [NaN, 0, 0, 0], 1)])).toThrow(AggregationError);
    expect(s.exportState()).toEqual(before);
  });
});

describe('aggregateEvaluate', () => {
  const results = [
    { hospitalId: 'H1', numExamples: 100, metrics: { accuracy: 0.8, loss: 0.5 } },
    { hospitalId: 'H2', numExamples: 300, metrics: { accuracy: 0.6, loss: 1.0 } },
    { hospitalId: 'H3', numExamples: 100, metrics: { accuracy: 0.9, loss: 0.25 } },
  ];
  it.each(STRATEGY_NAMES)('%s: weighted averages and fairness by hand', (name) => {
    const out = createStrategy(name).aggregateEvaluate(1, results);
    expect(out.accuracy).toBeCloseTo(0.7, 12); // (80 + 180 + 90)/500
    expect(out.loss).toBeCloseTo(0.75, 12); // (50 + 300 + 25)/500
    expect(out.performance_variance).toBeCloseTo(14 / 900, 12); // deviations 1/30, −5/30, 4/30
    expect(out.min_hospital_accuracy).toBe(0.6);
    expect(out.max_hospital_accuracy).toBe(0.9);
    expect(out.num_examples).toBe(500);
  });
});

describe('registry', () => {
  it('lists every strategy', () => {
    expect([...STRATEGY_NAMES]).toEqual(['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'median', 'trimmed', 'krum']);
  });

  it.each(STRATEGY_NAMES.map((name) => ({ name, weightedSum: !['median', 'trimmed', 'krum'].includes(name) })))(
    '$name: seed spec 3.1 defaults, weightedSum $weightedSum',
    ({ name, weightedSum }) => {
      const s = createStrategy(name);
      expect(s.name).toBe(name);
      expect(s.weightedSum).toBe(weightedSum);
      expect(s.options).toEqual({ fractionFit: 1, fractionEvaluate: 1, minFitClients: 3, minEvaluateClients: 3, minAvailableClients: 3 });
      expect(s.options).toEqual(DEFAULT_STRATEGY_OPTIONS);
    },
  );

  it('overlays options', () => {
    const s = createStrategy('fedadam', { fractionFit: 0.5, minAvailableClients: 2, eta: 0.05 });
    expect(s.options).toEqual({ ...DEFAULT_STRATEGY_OPTIONS, fractionFit: 0.5, minAvailableClients: 2 });
  });

  it('returns independent instances (fresh optimizer state)', () => {
    const a = createStrategy('fedyogi');
    a.aggregateFit(1, G1, ROUND1);
    expect(createStrategy('fedyogi').exportState()).toEqual({ step: 0 });
  });

  it('names the known strategies for an unknown one', () => {
    expect(() => createStrategy('FedAvgM')).toThrow('unknown strategy "FedAvgM"; known strategies: fedavg, fedprox, fedadam, fedyogi, fedadagrad, median, trimmed, krum');
    expect(() => createStrategy('toString')).toThrow(/unknown strategy/);
  });

  it.each([
    { name: 'fedavg', params: { fractionFit: 0 }, error: /fractionFit must be in \(0, 1\]/ },
    { name: 'fedavg', params: { fractionEvaluate: 1.5 }, error: /fractionEvaluate must be in \[0, 1\]/ },
    { name: 'fedavg', params: { minFitClients: 2.5 }, error: /minFitClients must be an integer >= 0/ },
    { name: 'fedavg', params: { minAvailableClients: -1 }, error: /minAvailableClients/ },
    { name: 'fedprox', params: { proximalMu: -1 }, error: /proximalMu/ },
    { name: 'fedadam', params: { eta: 0 }, error: /eta must be in \(0/ },
    { name: 'fedyogi', params: { beta2: 1 }, error: /beta2 must be in \[0, 1\)/ },
    { name: 'fedadagrad', params: { tau: 0 }, error: /tau must be in \(0/ },
    { name: 'fedadam', params: { etaL: -1e-3 }, error: /etaL/ },
    { name: 'trimmed', params: { beta: 0.5 }, error: /beta must be in \[0, 0.5\)/ },
    { name: 'krum', params: { numClientsToKeep: 0 }, error: /numClientsToKeep/ },
    { name: 'krum', params: { numMaliciousClients: -1 }, error: /numMaliciousClients/ },
  ])('$name rejects $params', ({ name, params, error }) => {
    expect(() => createStrategy(name, params)).toThrow(error);
  });

  it('isStrategyName', () => {
    expect(isStrategyName('krum')).toBe(true);
    expect(isStrategyName('FedAvg')).toBe(false);
    expect(isStrategyName('constructor')).toBe(false);
  });
});
