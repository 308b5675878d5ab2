import { describe, expect, it } from 'vitest';
import { computeFeatureSums, finalizeFeatureStats } from '../data/features';
import { generateHospital } from '../data/generator';
import { describeTable, finalizeSchema, isTabularSchema, mergeShapes, summarise } from '../tabular/schema';
import { generateTabularTable } from '../testing/tabular';
import { loadBundle } from './model-bundle';
import { riskStatsOf, TabularRunError } from './run-stats';
import type { RunStats } from './store';
import { TABULAR_BUNDLE_FORMAT } from './tabular-bundle';

const task = { target: 'readmitted', min_category_count: 5 };
const table = generateTabularTable(120, 2);
const layout = mergeShapes([describeTable(table, task)], task);
const schema = finalizeSchema(layout, summarise(table, layout));
const stats = finalizeFeatureStats(computeFeatureSums(generateHospital('H1', { seed: 1, patients: 20 }).records));

describe('a run stats slot: risk statistics or a tabular schema', () => {
  it.each<[string, RunStats, boolean]>([
    ['risk feature statistics', stats, false],
    ['a tabular schema', schema, true],
  ])('isTabularSchema(%s) is %s', (_, s, tabular) => {
    expect(isTabularSchema(s)).toBe(tabular);
  });

  it('riskStatsOf passes a risk run\'s statistics and refuses a tabular run by name', () => {
    expect(riskStatsOf('r1', stats, 'x')).toBe(stats);
    expect(() => riskStatsOf('r2', schema, 'ONNX export')).toThrow(new TabularRunError('r2', 'ONNX export'));
    expect(() => riskStatsOf('r2', schema, 'ONNX export')).toThrow('run r2 is a tabular run: ONNX export supports the risk model only');
  });

  it('loadBundle refuses a tabular run\'s manifest by name, not as a malformed risk bundle', async () => {
    await expect(loadBundle({ format: TABULAR_BUNDLE_FORMAT, run_id: 'r3' }, new Uint8Array(4))).rejects.toThrow(/model\.json is the model of tabular run r3 \(fedcare-tabular-model\/1\)/);
  });
});
