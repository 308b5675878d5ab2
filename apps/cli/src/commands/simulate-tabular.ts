/**
 * `fedcare simulate --task tabular --csv FILE --target COLUMN`: bring-your-own tabular data. The
 * CSV is split into simulated hospitals — by a column's values (--split-by) or label-skewed with a
 * Dirichlet(α) per class (--hospitals N --non-iid dirichlet:α) — each written to its own CSV that
 * only its hospital process reads; the federation (preprocessing, MLP training, DP, secure
 * aggregation) is the same engine as the risk task's. After the run, this harness (which holds every
 * table; a real coordinator never does) scores the final model on each hospital's held-out split.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HOSPITAL_ID_PATTERN } from '@fedcare/shared/data';
import type { RunConfig } from '@fedcare/shared/protocol';
import {
  dirichletPartition,
  encodeTable,
  evaluateTabular,
  labelledRows,
  mlpConfigFor,
  parseCsv,
  partitionByColumn,
  splitTable,
  TabularMlp,
  toCsv,
  type TabularData,
  type TabularSchema,
  type TabularTable,
} from '@fedcare/shared/tabular';
import { splitMetrics } from '@fedcare/shared/train';
import { weightsFromBytes } from '@fedcare/shared/model';
import { CliError } from '../io';

export interface TabularSplitOptions {
  csv: string;
  target: string;
  /** A column whose values are the hospitals. */
  splitBy?: string | undefined;
  /** Otherwise: this many hospitals H1…HN, label-skewed by Dirichlet(α) (`dirichlet:α`), or IID rows (`iid`). */
  hospitals?: number | undefined;
  nonIid?: string | undefined;
  seed: number;
}

export interface TabularInputs {
  hospitals: string[];
  /** The directory of <H>.csv files, one per hospital. */
  data: string;
  tables: Record<string, TabularTable>;
}

/** Reads the CSV, splits it into hospitals and writes <H>.csv files into a fresh directory. */
export function tabularSimulationInputs(o: TabularSplitOptions): TabularInputs {
  let table: TabularTable;
  try {
    table = parseCsv(readFileSync(o.csv, 'utf8'), o.csv);
  } catch (e) {
    throw new CliError(`--csv: ${(e as Error).message}`, 2);
  }
  if (!table.columns.includes(o.target)) throw new CliError(`--target: the column "${o.target}" is not in ${o.csv} (columns: ${table.columns.join(', ')})`, 2);
  const tables: Record<string, TabularTable> = {};
  try {
    if (o.splitBy) {
      if (o.splitBy === o.target) throw new Error('--split-by cannot be the target');
      for (const [value, t] of partitionByColumn(table, o.splitBy)) {
        const clean = value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 31);
        const id = /^[A-Za-z]/.test(clean) ? clean : `H${clean}`;
        if (!HOSPITAL_ID_PATTERN.test(id)) throw new Error(`--split-by ${o.splitBy}: the value "${value}" makes no hospital id`);
        tables[id] = t;
      }
      if (Object.keys(tables).length < 2) throw new Error(`--split-by ${o.splitBy}: ${Object.keys(tables).length} distinct value(s); a federation needs at least 2`);
    } else {
      const n = o.hospitals ?? 3;
      const spec = o.nonIid ?? 'dirichlet:0.5';
      const m = /^dirichlet:([0-9.eE+-]+)$/.exec(spec);
      if (!m && spec !== 'iid') throw new Error(`--non-iid: expected dirichlet:α (e.g. dirichlet:0.5) or iid, got "${spec}"`);
      // IID: a very large α gives every hospital the same class mix.
      const parts = dirichletPartition(table, o.target, n, m ? Number(m[1]) : 1e6, o.seed);
      parts.forEach((t, i) => (tables[`H${i + 1}`] = t));
    }
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const data = mkdtempSync(path.join(tmpdir(), 'fedcare-tabular-'));
  for (const [h, t] of Object.entries(tables)) writeFileSync(path.join(data, `${h}.csv`), toCsv(t), { mode: 0o600 });
  return { hospitals: Object.keys(tables), data, tables };
}

/** Each hospital's training rows (the DP planner's n). */
export function tabularTrainExamples(tables: Record<string, TabularTable>): { hospital_id: string; n: number }[] {
  return Object.entries(tables).map(([h, t]) => ({ hospital_id: h, n: splitTable(t).train.rows.length }));
}

/** Test metrics under the seed spec names, less the risk task's per-level accuracies. */
function tableMetrics(m: Parameters<typeof splitMetrics>[1]): Record<string, number> {
  const { accuracy_low_risk: _l, accuracy_medium_risk: _m, accuracy_high_risk: _h, ...rest } = splitMetrics('test', m);
  return rest;
}

/** The final model on every hospital's test split (as each hospital's client splits it), pooled and per hospital. */
export async function tabularTestMetrics(tables: Record<string, TabularTable>, schema: TabularSchema, weights: Uint8Array, config: RunConfig): Promise<{ test: Record<string, number>; per_hospital: Record<string, Record<string, number>> }> {
  const model = new TabularMlp(mlpConfigFor(schema, config), weightsFromBytes(weights));
  try {
    const per: Record<string, Record<string, number>> = {};
    const parts: TabularData[] = [];
    for (const [h, t] of Object.entries(tables)) {
      const data = encodeTable(splitTable(t).test, schema);
      parts.push(data);
      const rows = labelledRows(data);
      if (rows.length) per[h] = tableMetrics(await evaluateTabular(model, data, rows));
    }
    const n = parts.reduce((s, p) => s + p.n, 0);
    const x = new Float32Array(n * schema.width);
    const y = new Int32Array(n);
    let o = 0;
    for (const p of parts) {
      x.set(p.x, o * schema.width);
      y.set(p.y, o);
      o += p.n;
    }
    const pooled: TabularData = { n, width: schema.width, x, y };
    return { test: tableMetrics(await evaluateTabular(model, pooled)), per_hospital: per };
  } finally {
    model.dispose();
  }
}
