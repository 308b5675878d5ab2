/**
 * Splitting one table into simulated hospitals: by a column's values (each value a hospital), or
 * label-skewed with a Dirichlet(α) per class (Hsu, Qi & Brown 2019, "Measuring the Effects of
 * Non-Identical Data Distribution for Federated Visual Classification": each class's rows are
 * shared among the hospitals in proportions drawn from Dir(α·1); small α, more skew). Draws are
 * repeated (seeded) until every hospital has at least `minRows` rows, as their reference code does.
 */
import { Rng } from '../util/random';
import type { TabularTable } from './csv';
import { isMissing } from './schema';

/** Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost. */
export function gammaVariate(rng: Rng, shape: number): number {
  if (!(shape > 0)) throw new Error(`gamma shape must be > 0, got ${shape}`);
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng.next();
    return gammaVariate(rng, shape + 1) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function dirichlet(rng: Rng, alpha: number, k: number): number[] {
  const g = Array.from({ length: k }, () => gammaVariate(rng, alpha));
  const s = g.reduce((a, b) => a + b, 0);
  return s > 0 ? g.map((x) => x / s) : g.map(() => 1 / k);
}

/** Rows per hospital, label-skewed by Dirichlet(α) over `target`'s classes (rows without a label are spread uniformly). */
export function dirichletPartition(table: TabularTable, target: string, hospitals: number, alpha: number, seed: number, minRows = 10): TabularTable[] {
  const t = table.columns.indexOf(target);
  if (t < 0) throw new Error(`the target column "${target}" is not in the data`);
  if (!(Number.isInteger(hospitals) && hospitals >= 1)) throw new Error(`hospitals must be a whole number ≥ 1, got ${hospitals}`);
  if (!(alpha > 0)) throw new Error(`the Dirichlet α must be > 0, got ${alpha}`);
  if (table.rows.length < hospitals * minRows) throw new Error(`${table.rows.length} rows cannot give ${hospitals} hospitals ${minRows} rows each`);
  const byClass = new Map<string, number[]>();
  table.rows.forEach((r, i) => {
    const v = r[t] as string;
    const key = isMissing(v) ? '' : v.trim();
    const list = byClass.get(key) ?? [];
    list.push(i);
    byClass.set(key, list);
  });
  const rng = new Rng(`tabular/dirichlet/${seed}/${alpha}`);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const parts: number[][] = Array.from({ length: hospitals }, () => []);
    for (const [key, rows] of [...byClass].sort(([a], [b]) => a.localeCompare(b))) {
      const shuffled = rng.shuffle([...rows]);
      const p = key === '' ? Array.from({ length: hospitals }, () => 1 / hospitals) : dirichlet(rng, alpha, hospitals);
      let start = 0;
      let cum = 0;
      p.forEach((share, h) => {
        cum += share;
        const end = h === hospitals - 1 ? shuffled.length : Math.round(cum * shuffled.length);
        (parts[h] as number[]).push(...shuffled.slice(start, end));
        start = end;
      });
    }
    if (parts.every((p) => p.length >= minRows)) return parts.map((p) => ({ columns: table.columns, rows: p.sort((a, b) => a - b).map((i) => table.rows[i] as readonly string[]) }));
  }
  throw new Error(`no Dirichlet(${alpha}) draw in 1000 gave every one of ${hospitals} hospitals ${minRows} rows: use a larger α or fewer hospitals`);
}

/** One table per distinct value of `column` (the column itself left out: it is the hospital). */
export function partitionByColumn(table: TabularTable, column: string): Map<string, TabularTable> {
  const c = table.columns.indexOf(column);
  if (c < 0) throw new Error(`--split-by: the column "${column}" is not in the data`);
  const columns = table.columns.filter((_, i) => i !== c);
  const out = new Map<string, (readonly string[])[]>();
  for (const r of table.rows) {
    const v = (r[c] as string).trim();
    if (isMissing(v)) continue;
    const list = out.get(v) ?? [];
    list.push(r.filter((_, i) => i !== c));
    out.set(v, list);
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)).map(([v, rows]) => [v, { columns, rows }]));
}
