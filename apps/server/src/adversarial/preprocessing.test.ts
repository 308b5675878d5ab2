// Adversarial suite, preprocessing (issue 13): one hospital's feature sums must not set everyone's
// normalisation nor put NaN in the PCA basis. Refused sums are named in the audit log; the run
// goes on without them when enough hospitals remain, and otherwise fails cleanly, naming them.
import { afterEach, describe, expect, it } from 'vitest';
import { computeFeatureSums, finalizeFeatureStats, mergeFeatureSums, OBSERVATION_WINDOW_DAYS, type FeatureStats, type FeatureSums } from '@fedcare/shared/data';
import { riskStatsOf } from '@fedcare/shared/fl';
import type { Behaviour } from '../testing/fake-hospital';
import { auditNaming, baseConfig, cohort, records, runTo, type Cohort } from './harness';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const sumsOf = (h: string): FeatureSums => computeFeatureSums(records(h), { seqLen: 12, windowDays: OBSERVATION_WINDOW_DAYS });

/** The hostile preprocess reply: its real sums, edited. */
function tampered(edit: (s: FeatureSums) => void): Behaviour {
  return async (instr, f) => {
    if (instr.stage !== 'preprocess') return;
    const sums = structuredClone(sumsOf(f.hospitalId));
    edit(sums);
    await f.send('fl:result', { run_id: instr.run_id, round: 0, stage: 'preprocess', sums });
  };
}

const ATTACKS = [
  // A mean age of 5.6e297 for everyone.
  { attack: 'mean age 5.6e297', edit: (s: FeatureSums) => (s.demographics.sum[0] = 5.6e297 * (s.demographics.count[0] as number)) },
  // Cross products that overflow the correlation matrix: NaN in the PCA basis.
  { attack: 'omics cross products of 1e308 (NaN PCA basis)', edit: (s: FeatureSums) => s.omicsCross.fill(1e308) },
];

function expectStatsOf(stats: FeatureStats, hospitals: string[]): void {
  const want = finalizeFeatureStats(hospitals.map(sumsOf).reduce((a, b) => mergeFeatureSums(a, b)));
  expect(stats.records).toBe(want.records);
  stats.demographics.mean.forEach((v, j) => expect(v).toBeCloseTo(want.demographics.mean[j] as number, 9));
  expect(stats.pcaBasis.every(Number.isFinite)).toBe(true);
}

describe.each([3, 5])('preprocessing, one hostile hospital among %i', (n) => {
  it.each(ATTACKS)('$attack: refused by name; the statistics are the honest hospitals’ and the run completes', async ({ edit }) => {
    current = await cohort(n, { preprocess: tampered(edit) });
    const { summary } = await runTo(current, { ...baseConfig(n), rounds: 1 });
    expect(summary?.status, summary?.reason).toBe('completed');
    expectStatsOf(riskStatsOf(summary!.runId, summary!.stats ?? expect.fail('no statistics'), 'these checks'), current.honest.map((f) => f.hospitalId));
    const named = await auditNaming(current, `H${n}`);
    expect(named.map((e) => e.action)).toContain('preprocess.refused');
  });
});

it('when every hospital is needed, refused sums fail the run cleanly, naming the hospital (not an internal error)', async () => {
  current = await cohort(3, { preprocess: tampered(ATTACKS[0]!.edit) });
  const { summary, run } = await runTo(current, { ...baseConfig(3), min_available_clients: 3, rounds: 1 });
  expect(summary?.status).toBe('failed');
  expect(run?.reason).toMatch(/^preprocessing failed: .*refused: H3 \(OUT_OF_BOUNDS: sums refused: demographics\[0\]: sum .* outside the plausible range/);
});
