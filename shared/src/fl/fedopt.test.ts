import { describe, expect, it } from 'vitest';
import { FedAdagrad } from './fedadagrad';
import { FedAdam } from './fedadam';
import { FEDOPT_DEFAULTS } from './fedopt';
import { FedYogi } from './fedyogi';
import { createStrategy, STRATEGY_NAMES } from './strategies';
import type { FitResult, StrategyState } from './strategy';

const fit = (hospitalId: string, weights: number[], numSamples: number): FitResult => ({ hospitalId, weights: Float32Array.from(weights), numSamples, metrics: {} });

const G1 = Float32Array.from([0, 1, -1, 0.5]);
const ROUND1 = [fit('H1', [1, 1, -1, 0.5], 1), fit('H2', [0, 2, -1, 0.5], 1), fit('H3', [0.5, 1, -3, 0.5], 2)];
const ROUND2 = [fit('H1', [0.3, 0.9, -0.7, 0.1], 5), fit('H2', [-0.2, 1.4, -1.1, 0.6], 3), fit('H3', [0.1, 1.0, -2.0, 0.4], 7)];
const ROUND3 = [fit('H1', [0.2, 1.1, -0.9, 0.2], 2), fit('H2', [0.0, 1.2, -1.2, 0.5], 2), fit('H3', [0.4, 0.8, -1.5, 0.3], 1)];

const OPT_NAMES = ['fedadam', 'fedyogi', 'fedadagrad'] as const;

describe('FedOpt state export / import', () => {
  it.each(OPT_NAMES)('%s: a restart from the checkpoint resumes identically', (name) => {
    const live = createStrategy(name);
    const g2 = live.aggregateFit(1, G1, ROUND1).weights;
    const checkpoint = structuredClone(live.exportState()); // what a Store would persist
    expect(checkpoint.step).toBe(1);
    expect(checkpoint.m).toBeInstanceOf(Float32Array);
    expect(checkpoint.v).toBeInstanceOf(Float32Array);

    const restarted = createStrategy(name);
    restarted.importState(checkpoint);
    const a = live.aggregateFit(2, g2, ROUND2).weights;
    const b = restarted.aggregateFit(2, g2, ROUND2).weights;
    expect(b).toEqual(a);
    expect(restarted.aggregateFit(3, b, ROUND3).weights).toEqual(live.aggregateFit(3, a, ROUND3).weights);

    // and without the state the second round differs (the test can fail)
    const fresh = createStrategy(name);
    expect(fresh.aggregateFit(2, g2, ROUND2).weights).not.toEqual(a);
  });

  it.each(OPT_NAMES)('%s: exported state is a copy', (name) => {
    const s = createStrategy(name);
    s.aggregateFit(1, G1, ROUND1);
    const state = s.exportState();
    const expected = s.exportState();
    (state.m as Float32Array).fill(123);
    (state.v as Float32Array).fill(456);
    expect(s.exportState()).toEqual(expected);
  });

  it.each(OPT_NAMES)('%s: imported state is copied in', (name) => {
    const source = createStrategy(name);
    source.aggregateFit(1, G1, ROUND1);
    const state = source.exportState();
    const s = createStrategy(name);
    s.importState(state);
    (state.m as Float32Array).fill(0);
    expect(s.exportState()).toEqual(source.exportState());
  });

  it.each(OPT_NAMES)('%s: state before the first round is { step: 0 } and round-trips', (name) => {
    const s = createStrategy(name);
    expect(s.exportState()).toEqual({ step: 0 });
    const t = createStrategy(name);
    t.importState({ step: 0 });
    expect(t.aggregateFit(1, G1, ROUND1).weights).toEqual(s.aggregateFit(1, G1, ROUND1).weights);
  });

  const m4 = new Float32Array(4);
  it.each<{ state: StrategyState; error: RegExp }>([
    { state: { step: 1 }, error: /step is 1 but m and v are missing/ },
    { state: { step: -1 }, error: /step must be an integer >= 0/ },
    { state: { step: 1.5, m: m4, v: m4 }, error: /step must be an integer >= 0/ },
    { state: { m: m4, v: m4 }, error: /step must be an integer >= 0/ },
    { state: { step: 1, m: m4 }, error: /m and v must be Float32Arrays of equal length/ },
    { state: { step: 1, m: m4, v: new Float32Array(3) }, error: /m and v must be Float32Arrays of equal length/ },
    { state: { step: 1, m: 3, v: m4 }, error: /m and v must be Float32Arrays/ },
    { state: { step: 0, extra: 1 }, error: /unknown key\(s\) extra/ },
  ])('fedadam rejects state $state', ({ state, error }) => {
    expect(() => createStrategy('fedadam').importState(state)).toThrow(error);
  });

  it('rejects a model of another size after a restart', () => {
    const s = createStrategy('fedyogi');
    s.importState({ step: 3, m: new Float32Array(10), v: new Float32Array(10) });
    expect(() => s.aggregateFit(4, G1, ROUND1)).toThrow(/optimizer state has 10 values, the global model has 4/);
  });

  it.each(STRATEGY_NAMES.filter((n) => !(OPT_NAMES as readonly string[]).includes(n)))('%s is stateless', (name) => {
    const s = createStrategy(name);
    s.aggregateFit(1, G1, ROUND1);
    expect(s.exportState()).toEqual({});
    s.importState({});
    expect(() => s.importState({ step: 1, m: new Float32Array(4), v: new Float32Array(4) })).toThrow(/keeps no server state.*step, m, v/);
  });
});

describe('FedOpt defaults and config', () => {
  it.each([
    { s: new FedAdam(), eta: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
    { s: new FedYogi(), eta: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
    { s: new FedAdagrad(), eta: 1e-2, beta1: 0, beta2: 0.99, tau: 1e-3 },
  ])('$s.name: η $eta β1 $beta1 β2 $beta2 τ $tau', ({ s, eta, beta1, beta2, tau }) => {
    expect([s.eta, s.beta1, s.beta2, s.tau, s.etaL]).toEqual([eta, beta1, beta2, tau, undefined]);
  });

  it('FEDOPT_DEFAULTS are documented values', () => {
    expect(FEDOPT_DEFAULTS).toEqual({ eta: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  });

  const base = { local_epochs: 5, batch_size: 32, learning_rate: 1e-3, proximal_mu: 0 };
  it.each([
    { params: {}, learningRate: 1e-3 },
    { params: { etaL: 0.0316 }, learningRate: 0.0316 },
  ])('etaL $params.etaL → learning_rate $learningRate', ({ params, learningRate }) => {
    for (const name of OPT_NAMES) expect(createStrategy(name, params).configureFit(1, base)).toEqual({ ...base, learning_rate: learningRate });
  });

  it('FedAdam with defaults: the first step is ≈ η·sign(Δ) per coordinate, damped by τ where Δ is tiny', () => {
    // m = 0.1Δ, v = 0.01Δ², bias-corrected η_1 = η: step = 0.01·0.1Δ/(0.1|Δ| + 0.001)
    const s = new FedAdam();
    const out = s.aggregateFit(1, new Float32Array(3), [fit('H1', [1, -0.5, 1e-4], 1)]).weights;
    expect(out[0]).toBeCloseTo((0.01 * 0.1) / (0.1 + 0.001), 7);
    expect(out[1]).toBeCloseTo((0.01 * -0.05) / (0.05 + 0.001), 7);
    expect(out[2]).toBeCloseTo((0.01 * 1e-5) / (1e-5 + 0.001), 7); // ≈ Δ, not η
  });
});
