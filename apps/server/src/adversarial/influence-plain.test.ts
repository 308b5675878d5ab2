// Adversarial suite, plain mode (issue 13): one hostile hospital among three and among five, real
// coordinator, real protocol. The global model after each round must stay within the configured
// bound of the honest-only model, the run must complete, and the audit log must name the hospital.
import { afterEach, describe, expect, it } from 'vitest';
import { createStrategy, type FitResult } from '@fedcare/shared/fl';
import { weightsFromBytes } from '@fedcare/shared/model';
import type { RunConfigInput } from '@fedcare/shared/protocol';
import type { FakeHospital, TrainInstruction } from '../testing/fake-hospital';
import { auditNaming, baseConfig, cohort, evaluated, l2, runTo, trainedFrom, type Cohort } from './harness';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const STRATEGIES: { strategy: 'fedavg' | 'fedprox' | 'trimmed'; extra: (n: number) => RunConfigInput }[] = [
  { strategy: 'fedavg', extra: () => ({}) },
  { strategy: 'fedprox', extra: () => ({}) },
  // β must trim one of the n hospitals a round expects (the run config now carries it; the default 0.2 trimmed nothing below five).
  { strategy: 'trimmed', extra: (n) => ({ min_available_clients: n, ...(n === 3 ? { trimmed_beta: 0.34 } : {}) }) },
];

/** The honest hospitals' train results of a round, as the coordinator received them. */
function honestResults(honest: FakeHospital[], round: number): FitResult[] {
  return honest.map((f) => {
    const r = f.trainSent.get(round);
    if (!r?.weights) throw new Error(`${f.hospitalId} sent no weights in round ${round}`);
    return { hospitalId: f.hospitalId, weights: weightsFromBytes(r.weights), numSamples: r.num_samples, metrics: {} };
  });
}

/** The model the honest hospitals alone would have produced from the same global weights. */
function honestOnly(strategy: string, cfg: RunConfigInput, honest: FakeHospital[], round: number): Float32Array {
  const s = createStrategy(strategy, { minFitClients: 1, minAvailableClients: 1, minEvaluateClients: 1, ...(cfg.trimmed_beta ? { beta: cfg.trimmed_beta } : {}) });
  return s.aggregateFit(round, trainedFrom(honest[0] as FakeHospital, round), honestResults(honest, round)).weights;
}

/**
 * The configured bound on ‖global − honest-only‖₂: the hostile update is at most k × the round's
 * median update norm m (update_norm_bound k), so with weight share s ≤ 1 the global moves at most
 * s·(k·m + m_max) ≤ (k + 1)·m_max, m_max the largest honest update norm.
 */
function influenceBound(k: number, honest: FakeHospital[], round: number): number {
  const g = trainedFrom(honest[0] as FakeHospital, round);
  const norms = honestResults(honest, round).map((r) => l2(r.weights, g));
  return (k + 1) * Math.max(...norms);
}

async function expectBounded(c: Cohort, strategy: string, cfg: RunConfigInput, bound: (round: number) => number) {
  for (const round of [1, 2]) {
    const got = evaluated(c.honest[0] as FakeHospital, round);
    const want = honestOnly(strategy, cfg, c.honest, round);
    expect(l2(got, want), `round ${round}: distance to the honest-only model`).toBeLessThanOrEqual(bound(round) + 1e-5);
  }
}

describe.each([3, 5])('plain mode, one hostile hospital among %i', (n) => {
  it.each(STRATEGIES)('$strategy: num_samples 2^53 is refused by name and the global model is the honest one', async ({ strategy, extra }) => {
    current = await cohort(n, {
      train: async (instr, f) => {
        // The attacker's model, declared as trained on 2^53 − 1 examples: before, every global model was exactly this.
        const r = await f.trainResult(instr as TrainInstruction, (w) => w.map((x) => x + 0.5));
        await f.send('fl:result', { ...r, num_samples: Number.MAX_SAFE_INTEGER });
      },
    });
    const cfg = { ...baseConfig(n), strategy, ...extra(n) };
    const { summary, rounds } = await runTo(current, cfg);
    expect(summary?.status, summary?.reason).toBe('completed');
    expect(rounds).toHaveLength(2);
    await expectBounded(current, strategy, cfg, () => 0);
    const named = await auditNaming(current, `H${n}`);
    expect(named.map((e) => e.detail?.code)).toContain('OUT_OF_BOUNDS');
    expect(JSON.stringify(named)).toMatch(/num_samples: 9007199254740991 is above H\d's bound/);
  });

  it.each(STRATEGIES)('$strategy: a ±3.4e38 update is scaled to the norm bound and moves the model no more than it allows', async ({ strategy, extra }) => {
    current = await cohort(n, {
      train: async (instr, f) => {
        const r = await f.trainResult(instr as TrainInstruction, (w) => w.map((_, i) => (i % 2 ? 3.4e38 : -3.4e38)));
        await f.send('fl:result', r);
      },
    });
    const cfg = { ...baseConfig(n), strategy, ...extra(n) };
    const { summary, rounds } = await runTo(current, cfg);
    expect(summary?.status, summary?.reason).toBe('completed');
    expect(rounds).toHaveLength(2);
    // update_norm_bound: the default 3.
    await expectBounded(current, strategy, cfg, (round) => influenceBound(3, current!.honest, round));
    const named = await auditNaming(current, `H${n}`);
    expect(named.filter((e) => e.action === 'update.bounded')).toHaveLength(2);
  });
});
