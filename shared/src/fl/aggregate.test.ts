import { describe, expect, it } from 'vitest';
import {
  AggregationError,
  coordinateMedian,
  evaluateMetrics,
  fairness,
  firstNonFinite,
  fitMetrics,
  krumNeighbours,
  krumScores,
  multiKrum,
  trimCount,
  trimmedMean,
  weightedAverage,
  weightedMetricAverage,
} from './aggregate';
import type { MetricReport } from './aggregate';

const f32 = (...xs: number[]) => Float32Array.from(xs);
const rows = (xs: number[][]) => xs.map((x) => Float32Array.from(x));

function expectClose(actual: ArrayLike<number>, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i], `index ${i}`).toBeCloseTo(e, digits));
}

describe('weightedAverage', () => {
  it.each([
    { name: 'equal weights', arrays: [[1, 2], [3, 4]], weights: [1, 1], expected: [2, 3] },
    // (1·1 + 3·3)/4, (2·1 + 4·3)/4
    { name: 'weights 1 and 3', arrays: [[1, 2], [3, 4]], weights: [1, 3], expected: [2.5, 3.5] },
    { name: 'a zero weight is ignored', arrays: [[1, 2], [1000, -1000], [3, 4]], weights: [1, 0, 1], expected: [2, 3] },
    { name: 'one array', arrays: [[-0.5, 7]], weights: [42], expected: [-0.5, 7] },
    // Float64 accumulation: 2^24 + 1 + 1 is exact in doubles; Float32 sums would drop both ones (2^24/3 = 5592405.33…).
    { name: 'accumulates in Float64', arrays: [[16777216], [1], [1]], weights: [1, 1, 1], expected: [5592406] },
  ])('$name', ({ arrays, weights, expected }) => {
    const out = weightedAverage(rows(arrays), weights);
    expect(out).toBeInstanceOf(Float32Array);
    expectClose(out, expected);
    if (expected[0] === 5592406) expect(out[0]).toBe(5592406);
  });

  it.each([
    { name: 'different lengths', arrays: [[1, 2], [3]], weights: [1, 1], error: /array 1 has 1 values/ },
    { name: 'no arrays', arrays: [], weights: [], error: /at least one array/ },
    { name: 'weights sum to 0', arrays: [[1], [2]], weights: [0, 0], error: /sum to 0/ },
    { name: 'negative weight', arrays: [[1], [2]], weights: [1, -1], error: />= 0/ },
    { name: 'NaN weight', arrays: [[1], [2]], weights: [1, NaN], error: /finite/ },
    { name: 'count mismatch', arrays: [[1], [2]], weights: [1], error: /2 arrays but 1 weights/ },
  ])('rejects $name', ({ arrays, weights, error }) => {
    expect(() => weightedAverage(rows(arrays), weights)).toThrow(error);
  });
});

describe('coordinateMedian', () => {
  const forty = Array.from({ length: 40 }, (_, i) => [(i * 17) % 40]); // 0..39 permuted: the > 32 sort path
  it.each([
    { name: 'odd count', arrays: [[1, 2, 3], [3, -2, 0], [2, 0, 100]], expected: [2, 0, 3] },
    // even count: mean of the two middle values — (1+2)/2, (0+3)/2
    { name: 'even count', arrays: [[1, 0], [2, 3], [-50, 10], [100, -1]], expected: [1.5, 1.5] },
    { name: 'one array', arrays: [[4, 5]], expected: [4, 5] },
    { name: 'two arrays', arrays: [[0, 1], [1, 3]], expected: [0.5, 2] },
    { name: '40 arrays (typed sort)', arrays: forty, expected: [19.5] },
  ])('$name', ({ arrays, expected }) => {
    expectClose(coordinateMedian(rows(arrays)), expected);
  });
});

describe('trimmedMean', () => {
  // 5 clients × 4 coordinates; beta 0.2 drops 1 value at each end of every coordinate.
  const five = [
    [1, -5, 5, 0.5],
    [2, 0, 4, 0.5],
    [3, 0, 3, 0.5],
    [4, 1, 2, 0.5],
    [100, 2, 1, 0.5],
  ];
  it.each([
    // mean(2,3,4)=3; mean(0,0,1)=1/3; mean(4,3,2)=3; 0.5
    { name: '5 clients, beta 0.2', arrays: five, beta: 0.2, expected: [3, 1 / 3, 3, 0.5] },
    // plain mean: 110/5, -2/5, 15/5, 0.5
    { name: '5 clients, beta 0', arrays: five, beta: 0, expected: [22, -0.4, 3, 0.5] },
    // ⌊0.4·5⌋ = 2 at each end: the median
    { name: '5 clients, beta 0.4', arrays: five, beta: 0.4, expected: [3, 0, 3, 0.5] },
    // ⌊0.2·3⌋ = 0: three clients are not trimmed at the default beta
    { name: '3 clients, beta 0.2', arrays: [[0], [1], [5]], beta: 0.2, expected: [2] },
    { name: '3 clients, beta 0.34', arrays: [[0], [1], [5]], beta: 0.34, expected: [1] },
  ])('$name', ({ arrays, beta, expected }) => {
    expectClose(trimmedMean(rows(arrays), beta), expected);
  });

  it.each([0.5, -0.1, NaN])('rejects beta %s', (beta) => {
    expect(() => trimmedMean(rows([[1], [2]]), beta)).toThrow(/beta/);
  });

  it.each([
    { n: 3, beta: 0.2, k: 0 },
    { n: 5, beta: 0.2, k: 1 },
    { n: 10, beta: 0.3, k: 3 },
    { n: 100, beta: 0.29, k: 29 }, // 0.29·100 is 28.999999999999996 in doubles
  ])('trimCount($n, $beta) = $k', ({ n, beta, k }) => {
    expect(trimCount(n, beta)).toBe(k);
  });
});

describe('Krum', () => {
  // Squared distances, by hand: d01=1 d02=4 d03=8 d04=200 d12=5 d13=5 d14=181 d23=4 d24=164 d34=128.
  // f = 1 → n − f − 2 = 2 nearest: X0 1+4=5, X1 1+5=6, X2 4+4=8, X3 4+5=9, X4 128+164=292.
  const points = rows([[0, 0], [1, 0], [0, 2], [2, 2], [10, 10]]);

  it('scores by the n − f − 2 nearest squared distances', () => {
    expectClose(krumScores(points, 1), [5, 6, 8, 9, 292], 9);
  });

  it.each([
    { f: 0, expected: [1 + 4 + 8, 1 + 5 + 5, 4 + 4 + 5, 4 + 5 + 8, 128 + 164 + 181] }, // 3 nearest
    { f: 2, expected: [1, 1, 4, 4, 128] }, // 1 nearest
    { f: 10, expected: [1, 1, 4, 4, 128] }, // clamped to 1 nearest, as Flower
  ])('f = $f', ({ f, expected }) => {
    expectClose(krumScores(points, f), expected, 9);
  });

  it.each([
    { m: 1, weights: undefined, selected: [0], average: [0, 0] },
    { m: 3, weights: undefined, selected: [0, 1, 2], average: [1 / 3, 2 / 3] },
    // weighted by [1, 2, 1]: ((0 + 2 + 0)/4, (0 + 0 + 2)/4)
    { m: 3, weights: [1, 2, 1, 1, 1], selected: [0, 1, 2], average: [0.5, 0.5] },
    { m: 99, weights: undefined, selected: [0, 1, 2, 3, 4], average: [13 / 5, 14 / 5] },
  ])('multiKrum m = $m weights $weights', ({ m, weights, selected, average }) => {
    const r = multiKrum(points, 1, m, weights);
    expect(r.selected).toEqual(selected);
    expectClose(r.average, average);
  });

  it('breaks ties by the lower index', () => {
    // Scores (f = 0, 1 nearest): A=2, B=2, C=4.25.
    const r = multiKrum(rows([[1, 1, -1, 0.5], [0, 2, -1, 0.5], [0.5, 1, -3, 0.5]]), 0, 1);
    expectClose(r.scores, [2, 2, 4.25], 9);
    expect(r.selected).toEqual([0]);
  });

  it.each([
    { n: 1, f: 0, k: 1 },
    { n: 3, f: 0, k: 1 },
    { n: 5, f: 1, k: 2 },
    { n: 10, f: 2, k: 6 },
    { n: 4, f: 3, k: 1 },
  ])('krumNeighbours($n, $f) = $k', ({ n, f, k }) => {
    expect(krumNeighbours(n, f)).toBe(k);
  });

  it('scores a single client 0', () => {
    expect(Array.from(krumScores(rows([[1, 2]]), 0))).toEqual([0]);
  });

  it.each([
    { f: -1, m: 1, error: /f \(Byzantine clients\)/ },
    { f: 0.5, m: 1, error: /f \(Byzantine clients\)/ },
    { f: 0, m: 0, error: /m \(clients to keep\)/ },
  ])('rejects f $f m $m', ({ f, m, error }) => {
    expect(() => multiKrum(points, f, m)).toThrow(error);
  });
});

describe('firstNonFinite', () => {
  it.each([
    { values: [1, 2, 3], index: -1 },
    { values: [1, NaN, 3], index: 1 },
    { values: [Infinity], index: 0 },
    { values: [0, 0, -Infinity], index: 2 },
    { values: [-0, 3.4e38], index: -1 },
  ])('$values → $index', ({ values, index }) => {
    expect(firstNonFinite(f32(...values))).toBe(index);
  });
});

describe('metric averages', () => {
  it.each<{ name: string; results: MetricReport[]; expected: Record<string, number> }>([
    {
      name: 'weighted by examples',
      results: [
        { numExamples: 100, metrics: { loss: 0.5, accuracy: 0.8 } },
        { numExamples: 300, metrics: { loss: 1.0, accuracy: 0.6 } },
      ],
      // loss (50 + 300)/400, accuracy (80 + 180)/400
      expected: { accuracy: 0.65, loss: 0.875 },
    },
    {
      name: 'a metric only some clients report averages over those',
      results: [
        { numExamples: 100, metrics: { loss: 1 } },
        { numExamples: 300, metrics: { loss: 2, auc_roc: 0.9 } },
      ],
      expected: { auc_roc: 0.9, loss: 1.75 },
    },
    {
      name: 'NaN and Infinity are left out',
      results: [
        { numExamples: 100, metrics: { auc_roc: NaN, loss: 1 } },
        { numExamples: 100, metrics: { auc_roc: 0.7, loss: Infinity } },
        { numExamples: 200, metrics: { auc_roc: 0.4, loss: 4 } },
      ],
      // auc (70 + 80)/300, loss (100 + 800)/300
      expected: { auc_roc: 0.5, loss: 3 },
    },
    {
      name: 'zero-example clients carry no weight',
      results: [
        { numExamples: 0, metrics: { loss: 100 } },
        { numExamples: 5, metrics: { loss: 2 } },
      ],
      expected: { loss: 2 },
    },
    { name: 'nothing', results: [], expected: {} },
  ])('weightedMetricAverage: $name', ({ results, expected }) => {
    const out = weightedMetricAverage(results);
    expect(Object.keys(out)).toEqual(Object.keys(expected));
    for (const [k, v] of Object.entries(expected)) expect(out[k], k).toBeCloseTo(v, 12);
  });

  it.each([
    // mean 2.3/3; deviations 1/30, −5/30, 4/30 → (1 + 25 + 16)/900/3 = 14/900
    { accuracies: [0.8, 0.6, 0.9], variance: 14 / 900, min: 0.6, max: 0.9 },
    { accuracies: [0.7], variance: 0, min: 0.7, max: 0.7 },
    // mean 0.5; deviations ±0.5 → 0.25
    { accuracies: [0, 1], variance: 0.25, min: 0, max: 1 },
  ])('fairness($accuracies)', ({ accuracies, variance, min, max }) => {
    const f = fairness(accuracies);
    expect(f.performance_variance).toBeCloseTo(variance, 12);
    expect(f.min_hospital_accuracy).toBe(min);
    expect(f.max_hospital_accuracy).toBe(max);
  });

  it('fairness of nothing throws', () => {
    expect(() => fairness([])).toThrow(RangeError);
  });

  it('fitMetrics averages by numSamples and totals num_examples', () => {
    const out = fitMetrics([
      { numSamples: 1, metrics: { train_loss: 1, num_examples: 1 } },
      { numSamples: 3, metrics: { train_loss: 3, num_examples: 3 } },
    ]);
    // (1 + 9)/4; num_examples is the total, not the weighted average (10/4)
    expect(out).toEqual({ train_loss: 2.5, num_examples: 4 });
  });
});

describe('evaluateMetrics', () => {
  it.each<{ name: string; results: (MetricReport & { hospitalId: string })[]; expected: Record<string, number> }>([
    {
      name: 'three hospitals by hand',
      results: [
        { hospitalId: 'H1', numExamples: 100, metrics: { accuracy: 0.8, loss: 0.5 } },
        { hospitalId: 'H2', numExamples: 300, metrics: { accuracy: 0.6, loss: 1.0 } },
        { hospitalId: 'H3', numExamples: 100, metrics: { accuracy: 0.9, loss: 0.25, auc_roc: 0.75 } },
      ],
      // accuracy (80 + 180 + 90)/500 = 0.7; loss (50 + 300 + 25)/500 = 0.75; fairness over 0.8, 0.6, 0.9
      expected: {
        accuracy: 0.7,
        loss: 0.75,
        auc_roc: 0.75,
        performance_variance: 14 / 900,
        min_hospital_accuracy: 0.6,
        max_hospital_accuracy: 0.9,
        num_examples: 500,
      },
    },
    {
      name: 'test_accuracy when there is no accuracy; a zero-example hospital is not in the fairness',
      results: [
        { hospitalId: 'H1', numExamples: 200, metrics: { test_accuracy: 0.5 } },
        { hospitalId: 'H2', numExamples: 200, metrics: { test_accuracy: 0.7 } },
        { hospitalId: 'H3', numExamples: 0, metrics: { test_accuracy: 0 } },
      ],
      // variance of 0.5, 0.7: deviations ±0.1 → 0.01
      expected: {
        test_accuracy: 0.6,
        performance_variance: 0.01,
        min_hospital_accuracy: 0.5,
        max_hospital_accuracy: 0.7,
        num_examples: 400,
      },
    },
    {
      name: 'no accuracy, no fairness keys',
      results: [{ hospitalId: 'H1', numExamples: 10, metrics: { loss: 2 } }],
      expected: { loss: 2, num_examples: 10 },
    },
  ])('$name', ({ results, expected }) => {
    const out = evaluateMetrics(results);
    expect(Object.keys(out).sort()).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expect(out[k], k).toBeCloseTo(v, 12);
  });

  it.each([
    { name: 'duplicate hospital', results: [{ hospitalId: 'H1', numExamples: 1, metrics: {} }, { hospitalId: 'H1', numExamples: 1, metrics: {} }], error: /H1: sent more than one/ },
    { name: 'negative numExamples', results: [{ hospitalId: 'H2', numExamples: -1, metrics: {} }], error: /H2: numExamples is -1/ },
    { name: 'NaN numExamples', results: [{ hospitalId: 'H3', numExamples: NaN, metrics: {} }], error: /H3: numExamples is NaN/ },
  ])('rejects $name', ({ results, error }) => {
    expect(() => evaluateMetrics(results)).toThrow(AggregationError);
    expect(() => evaluateMetrics(results)).toThrow(error);
  });
});
