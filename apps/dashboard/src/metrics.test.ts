import { describe, expect, it } from 'vitest';
import { applyRound, chartRows, comparisonRows, epsilonRows, runLabel, formatBytes, latestRound, metricValue, privacyLabel, reliabilityRows, type RoundRow, type RunSeries } from './metrics';

const empty: RunSeries = { run_id: null, rounds: [] };

describe('applyRound', () => {
  it('keeps rounds sorted and replaces a repeated round', () => {
    let s = applyRound(empty, { run_id: 'r1', round: 2, metrics: { test_accuracy: 0.7 } });
    s = applyRound(s, { run_id: 'r1', round: 1, metrics: { test_accuracy: 0.6 } });
    s = applyRound(s, { run_id: 'r1', round: 2, metrics: { test_accuracy: 0.8 } });
    expect(s.rounds.map((r) => [r.round, r.metrics.test_accuracy])).toEqual([
      [1, 0.6],
      [2, 0.8],
    ]);
    expect(latestRound(s)?.round).toBe(2);
  });

  it('starts a fresh series for another run and does not mutate its input', () => {
    const a = applyRound(empty, { run_id: 'r1', round: 1, metrics: {} });
    const b = applyRound(a, { run_id: 'r2', round: 1, metrics: { x: 1 } });
    expect(b.run_id).toBe('r2');
    expect(b.rounds).toHaveLength(1);
    expect(a.rounds[0]?.metrics).toEqual({});
  });

  it('turns null, NaN and ±Infinity (not measured / not private) into null', () => {
    const s = applyRound(empty, {
      run_id: 'r',
      round: 1,
      metrics: { auc_roc: null, f1_score: Number.NaN, privacy_epsilon: Number.POSITIVE_INFINITY, test_loss: 0.5 } as Record<string, unknown>,
      per_hospital: { H1: { privacy_epsilon: null, accuracy: 0.9 } as Record<string, unknown> },
    });
    const r = s.rounds[0]!;
    expect(r.metrics).toEqual({ auc_roc: null, f1_score: null, privacy_epsilon: null, test_loss: 0.5 });
    expect(r.per_hospital.H1).toEqual({ privacy_epsilon: null, accuracy: 0.9 });
  });
});

describe('chartRows', () => {
  it('gives one row per round with null gaps for missing values', () => {
    let s = applyRound(empty, { run_id: 'r', round: 1, metrics: { auc_roc: 0.7, auc_pr: null } as Record<string, unknown> });
    s = applyRound(s, { run_id: 'r', round: 2, metrics: { auc_pr: 0.4 } });
    expect(chartRows(s.rounds, ['auc_roc', 'auc_pr'])).toEqual([
      { round: 1, auc_roc: 0.7, auc_pr: null },
      { round: 2, auc_roc: null, auc_pr: 0.4 },
    ]);
  });
});

describe('formatting', () => {
  it.each([
    [null, '—'],
    [512, '512 B'],
    [2048, '2.0 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
  ])('formatBytes(%s) = %s', (v, want) => expect(formatBytes(v)).toBe(want));

  it('privacy is "not private" while ε is null', () => {
    expect(privacyLabel({ privacy_epsilon: null }, { privacy_epsilon: null })).toBe('not private');
    expect(privacyLabel({}, { privacy_epsilon: 1.5 })).toBe('ε = 1.50');
    expect(privacyLabel({ privacy_epsilon: 3 }, { privacy_epsilon: 1 })).toBe('ε = 3.00');
  });

  it('metricValue keeps finite numbers only', () => {
    expect([metricValue(1), metricValue('1'), metricValue(undefined), metricValue(Number.NEGATIVE_INFINITY)]).toEqual([1, null, null, null]);
  });

  it('epsilonRows: one column per hospital that reported ε, null where it did not', () => {
    const rounds: RoundRow[] = [
      { round: 1, metrics: {}, per_hospital: { H1: { privacy_epsilon: 0.2 }, H2: { privacy_epsilon: 0.3 }, H3: { accuracy: 0.5 } }, issues: [] },
      { round: 2, metrics: {}, per_hospital: { H1: { privacy_epsilon: 0.4 } }, issues: [] },
    ];
    expect(epsilonRows(rounds)).toEqual({
      hospitals: ['H1', 'H2'],
      rows: [
        { round: 1, H1: 0.2, H2: 0.3 },
        { round: 2, H1: 0.4, H2: null },
      ],
    });
    expect(epsilonRows([{ round: 1, metrics: {}, per_hospital: { H1: { privacy_epsilon: null } }, issues: [] }]).hospitals).toEqual([]);
  });
});

describe('comparing runs', () => {
  it('labels a run by strategy, DP target and secure aggregation, with its id suffix', () => {
    expect(runLabel({ run_id: 'run-20260101-abcdef01', config: { strategy: 'fedprox', dp: { target_epsilon: 2 }, secure_aggregation: 'secagg' } }, 'run-20260101-abcdef01')).toBe('fedprox · ε 2 · SecAgg+ (abcdef01)');
    expect(runLabel({ run_id: 'r', config: { strategy: 'fedavg', secure_aggregation: 'none' } }, 'run-x-12345678')).toBe('fedavg · no DP (12345678)');
    expect(runLabel(undefined, 'run-x-12345678')).toBe('run · no DP (12345678)');
    expect(runLabel({ run_id: 'r', config: { strategy: 'fedavg', secure_aggregation: 'he' } }, 'r-87654321')).toBe('fedavg · no DP · HE (87654321)');
  });

  it('overlays runs by round: one column per run, null where a run has no such round or value', () => {
    let a: RunSeries = { run_id: 'a', rounds: [] };
    for (const [round, v] of [[1, 0.6], [2, 0.65], [3, 0.7]] as const) a = applyRound(a, { run_id: 'a', round, metrics: { auc_roc: v } });
    let b: RunSeries = { run_id: 'b', rounds: [] };
    for (const [round, v] of [[2, 0.8], [1, null]] as const) b = applyRound(b, { run_id: 'b', round, metrics: { auc_roc: v as number } });
    expect(comparisonRows([{ run_id: 'a', series: a }, { run_id: 'b', series: b }], 'auc_roc')).toEqual([
      { round: 1, a: 0.6, b: null },
      { round: 2, a: 0.65, b: 0.8 },
      { round: 3, a: 0.7, b: null },
    ]);
    expect(comparisonRows([], 'auc_roc')).toEqual([]);
  });
});

describe('reliabilityRows', () => {
  it('one row per confidence bin: each hospital\'s accuracy where its bin holds examples, the pooled mean confidence', () => {
    const r: RoundRow = {
      round: 3,
      metrics: { ece: 0.1 },
      per_hospital: {
        H2: { ece: 0.2, reliability_9_count: 4, reliability_9_confidence: 0.95, reliability_9_accuracy: 0.5, reliability_5_count: 0, reliability_5_confidence: 0, reliability_5_accuracy: 0 },
        H1: { ece: 0.1, reliability_9_count: 1, reliability_9_confidence: 0.9, reliability_9_accuracy: 1, reliability_5_count: 2, reliability_5_confidence: 0.55, reliability_5_accuracy: 0.5 },
        H3: { test_accuracy: 0.4 }, // no calibration figures: not drawn
      },
      issues: [],
    };
    const { hospitals, rows } = reliabilityRows(r);
    expect(hospitals).toEqual(['H1', 'H2']);
    expect(rows).toHaveLength(10);
    expect(rows[9]).toMatchObject({ bin: 0.95, ideal: 0.95, H1: 1, H2: 0.5 });
    expect(rows[9]!.confidence).toBeCloseTo((0.9 + 4 * 0.95) / 5, 12);
    expect(rows[5]).toMatchObject({ H1: 0.5, H2: null, confidence: 0.55 });
    expect(rows[0]).toMatchObject({ H1: null, H2: null, confidence: null });
    expect(reliabilityRows(undefined)).toEqual({ hospitals: [], rows: [] });
  });
});
