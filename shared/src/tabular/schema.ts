/**
 * Federated preprocessing of any table with a target column, in two exchanges (../fl/rounds.ts
 * `tabularPreprocess`):
 *
 * 1. Shape (in the clear): each hospital types its columns on its training split — numeric when
 *    every non-missing value parses as a finite number, else categorical — and lists, per
 *    categorical column, only the values it holds at least `min_category_count` times (a rarer value,
 *    possibly an identifier, never leaves the hospital), and the target's classes. No counts.
 *    `mergeShapes` makes the run's layout: the union of the columns (sorted by name); a column is
 *    categorical if ANY hospital says so (a column numeric at one hospital and text at another is
 *    text: its numbers then count as categories when they are in the vocabulary, as "(other)" if not);
 *    vocabularies and classes are unions.
 * 2. Sums over that layout (additive, a fixed-length vector, so SecAgg+ can mask it): rows; per
 *    numeric column count, Σx, Σx², missing; per categorical column a count per vocabulary value,
 *    "(other)" and "(missing)"; per class a count. `finalizeSchema` turns the total into the
 *    schema every hospital encodes with: means and standard deviations, vocabularies, width.
 *
 * Encoding (`encodeTable`): numeric x → (x − mean) / std clipped to ±10, a missing value → 0 (the
 * global mean) plus a missing-indicator column where the federation has missing values; a
 * categorical value → one-hot over its vocabulary, "(other)" and "(missing)" (slots the federation
 * never filled are left out). Pure: no DOM, no node:*.
 */
import type { TabularTable } from './csv';

export const MISSING = '(missing)';
export const OTHER = '(other)';
/** A classification target with more distinct values than this is refused (a regression target, or an id). */
export const MAX_CLASSES = 50;
export const MAX_COLUMNS = 2000;
export const MAX_VOCABULARY = 1000;
/** Standardised values are clipped to ±this (an outlier cannot dominate a gradient). */
export const Z_CLIP = 10;

export interface TabularTask {
  /** The column to predict (classification: its distinct values are the classes). */
  target: string;
  /** A categorical value seen fewer times than this at a hospital stays there (folded into "(other)"). */
  min_category_count: number;
}

export type ColumnKind = 'numeric' | 'categorical';

/** One hospital's columns, as its data says (phase 1; sent in the clear). */
export interface TabularShape {
  columns: { name: string; kind: ColumnKind; values?: string[] }[];
  classes: string[];
}

/** What the preprocess stage's reply carries for a tabular run. */
export type TabularPreprocessReply = { tabular_shape: TabularShape } | { tabular_sums: number[] } | Record<string, never>;

/** The run's column layout, merged from the shapes (phase 2 sums are laid out by it). */
export interface TabularLayout {
  target: string;
  columns: { name: string; kind: ColumnKind; values?: string[] }[];
  classes: string[];
}

export type SchemaColumn =
  | { name: string; kind: 'numeric'; mean: number; std: number; missing: boolean }
  | { name: string; kind: 'categorical'; categories: string[] };

/** What every hospital encodes with (broadcast as `fl:stats`). */
export interface TabularSchema {
  target: string;
  classes: string[];
  columns: SchemaColumn[];
  /** Encoded feature width. */
  width: number;
  /** Rows the statistics come from (all hospitals' training splits). */
  records: number;
  /** Training rows per class, federation-wide. */
  class_counts: number[];
}

/**
 * Whether a run's stored statistics (the store's stats slot, `RunStats` in ../fl/store.ts) are a
 * tabular run's schema rather than the risk model's feature statistics: only a schema has a target.
 */
export function isTabularSchema(stats: object): stats is TabularSchema {
  return typeof (stats as { target?: unknown }).target === 'string' && Array.isArray((stats as { columns?: unknown }).columns);
}

const MISSING_TOKENS = new Set(['', 'na', 'n/a', 'nan', 'null', 'none', '?']);

export function isMissing(v: string | undefined): boolean {
  return v === undefined || MISSING_TOKENS.has(v.trim().toLowerCase());
}

/** The number a cell holds, or undefined (missing or text). */
export function numberOf(v: string): number | undefined {
  const t = v.trim();
  if (t === '') return undefined;
  const x = Number(t);
  return Number.isFinite(x) ? x : undefined;
}

function columnIndex(table: TabularTable, name: string): number {
  return table.columns.indexOf(name);
}

/** Phase 1: this hospital's column types, locally frequent categories and classes. */
export function describeTable(table: TabularTable, task: TabularTask): TabularShape {
  const t = columnIndex(table, task.target);
  if (t < 0) throw new Error(`the target column "${task.target}" is not in the data (columns: ${table.columns.join(', ')})`);
  if (table.columns.length > MAX_COLUMNS) throw new Error(`${table.columns.length} columns; at most ${MAX_COLUMNS}`);
  const k = Math.max(1, task.min_category_count);
  const columns: TabularShape['columns'] = [];
  table.columns.forEach((name, c) => {
    if (c === t) return;
    let numeric = true;
    const counts = new Map<string, number>();
    for (const row of table.rows) {
      const v = row[c] as string;
      if (isMissing(v)) continue;
      const key = v.trim();
      if (numeric && numberOf(key) === undefined) numeric = false;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    if (numeric) columns.push({ name, kind: 'numeric' });
    else {
      const values = [...counts].filter(([, n]) => n >= k).map(([v]) => v).sort();
      if (values.length > MAX_VOCABULARY) throw new Error(`column "${name}" has ${values.length} frequent values; at most ${MAX_VOCABULARY} (an identifier? leave it out of the file)`);
      columns.push({ name, kind: 'categorical', values });
    }
  });
  const classes = sortValues([...new Set(table.rows.map((r) => r[t] as string).filter((v) => !isMissing(v)).map((v) => v.trim()))]);
  if (classes.length > MAX_CLASSES) throw new Error(`the target "${task.target}" has ${classes.length} distinct values; classification takes at most ${MAX_CLASSES}`);
  return { columns, classes };
}

/** Numbers in numeric order when every value is a number, else lexicographic. */
function sortValues(values: string[]): string[] {
  return values.every((v) => numberOf(v) !== undefined) ? values.sort((a, b) => Number(a) - Number(b)) : values.sort();
}

/** The run's layout from every hospital's shape (union rule: categorical if any hospital says so). */
export function mergeShapes(shapes: readonly TabularShape[], task: TabularTask): TabularLayout {
  if (shapes.length === 0) throw new Error('no shapes to merge');
  const cols = new Map<string, { kind: ColumnKind; values: Set<string> }>();
  const classes = new Set<string>();
  for (const s of shapes) {
    for (const c of s.columns) {
      if (c.name === task.target) continue;
      const e = cols.get(c.name) ?? { kind: 'numeric' as ColumnKind, values: new Set<string>() };
      if (c.kind === 'categorical') e.kind = 'categorical';
      for (const v of c.values ?? []) e.values.add(v);
      cols.set(c.name, e);
    }
    for (const v of s.classes) classes.add(v);
  }
  if (cols.size > MAX_COLUMNS) throw new Error(`${cols.size} columns; at most ${MAX_COLUMNS}`);
  const columns = [...cols.keys()].sort().map((name) => {
    const e = cols.get(name) as { kind: ColumnKind; values: Set<string> };
    if (e.values.size > MAX_VOCABULARY) throw new Error(`column "${name}" has ${e.values.size} values over the federation; at most ${MAX_VOCABULARY}`);
    return e.kind === 'numeric' ? { name, kind: e.kind } : { name, kind: e.kind, values: [...e.values].sort() };
  });
  const cls = sortValues([...classes]);
  if (cls.length < 2) throw new Error(`the target "${task.target}" has ${cls.length} class(es) over the federation; classification needs at least 2`);
  if (cls.length > MAX_CLASSES) throw new Error(`the target "${task.target}" has ${cls.length} classes; at most ${MAX_CLASSES}`);
  return { target: task.target, columns, classes: cls };
}

/** Length of the phase-2 sum vector of a layout. */
export function summaryLength(layout: TabularLayout): number {
  let n = 1;
  for (const c of layout.columns) n += c.kind === 'numeric' ? 4 : (c.values?.length ?? 0) + 2;
  return n + layout.classes.length;
}

/** Phase 2: this hospital's additive sums over the layout (float64). */
export function summarise(table: TabularTable, layout: TabularLayout): Float64Array {
  const out = new Float64Array(summaryLength(layout));
  out[0] = table.rows.length;
  let o = 1;
  for (const c of layout.columns) {
    const j = columnIndex(table, c.name);
    if (c.kind === 'numeric') {
      for (const row of table.rows) {
        const v = j < 0 ? undefined : (row[j] as string);
        const x = v === undefined || isMissing(v) ? undefined : numberOf(v);
        if (x === undefined) out[o + 3]! += 1;
        else {
          out[o]! += 1;
          out[o + 1]! += x;
          out[o + 2]! += x * x;
        }
      }
      o += 4;
    } else {
      const values = c.values ?? [];
      const index = new Map(values.map((v, i) => [v, i]));
      for (const row of table.rows) {
        const v = j < 0 ? undefined : (row[j] as string);
        if (v === undefined || isMissing(v)) out[o + values.length + 1]! += 1;
        else out[o + (index.get(v.trim()) ?? values.length)]! += 1;
      }
      o += values.length + 2;
    }
  }
  const t = columnIndex(table, layout.target);
  const cls = new Map(layout.classes.map((v, i) => [v, i]));
  for (const row of table.rows) {
    const v = t < 0 ? undefined : (row[t] as string);
    const i = v === undefined || isMissing(v) ? undefined : cls.get(v.trim());
    if (i !== undefined) out[o + i]! += 1;
  }
  return out;
}

/**
 * A total of sums: plausible, or the reason it is not (a count below 0 or above the rows, rows
 * above `maxRows`, a non-finite value). Coordinates are checked one by one, so a hospital cannot
 * set the normalisation with invented totals that no records could make.
 */
export function refuseSummary(layout: TabularLayout, sums: ArrayLike<number>, maxRows: number): string | undefined {
  if (sums.length !== summaryLength(layout)) return `${sums.length} values, the layout has ${summaryLength(layout)}`;
  for (let i = 0; i < sums.length; i++) if (!Number.isFinite(sums[i] as number)) return `value ${i} is not finite`;
  const rows = sums[0] as number;
  const tol = 1e-6 * Math.max(1, rows);
  const isCount = (v: number) => v >= -tol && v <= rows + tol && Math.abs(v - Math.round(v)) <= tol;
  if (!(rows >= 0 && rows <= maxRows + tol)) return `${rows} rows, at most ${maxRows} declared`;
  let o = 1;
  for (const c of layout.columns) {
    if (c.kind === 'numeric') {
      const [n, s, q, m] = [0, 1, 2, 3].map((i) => sums[o + i] as number) as [number, number, number, number];
      if (!isCount(n) || !isCount(m) || Math.abs(n + m - rows) > tol) return `column "${c.name}": ${n} values + ${m} missing for ${rows} rows`;
      // Cauchy–Schwarz: (Σx)² ≤ n·Σx².
      if (q < 0 || s * s > n * q * (1 + 1e-6) + 1e-6) return `column "${c.name}": Σx² ${q} is below (Σx)²/n`;
      o += 4;
    } else {
      const w = (c.values?.length ?? 0) + 2;
      let total = 0;
      for (let i = 0; i < w; i++) {
        if (!isCount(sums[o + i] as number)) return `column "${c.name}": a count of ${sums[o + i]}`;
        total += sums[o + i] as number;
      }
      if (Math.abs(total - rows) > tol) return `column "${c.name}": counts add up to ${total} for ${rows} rows`;
      o += w;
    }
  }
  for (let i = 0; i < layout.classes.length; i++) if (!isCount(sums[o + i] as number)) return `class "${layout.classes[i]}": a count of ${sums[o + i]}`;
  return undefined;
}

/** The schema from the layout and the federation's total sums. */
export function finalizeSchema(layout: TabularLayout, sums: ArrayLike<number>): TabularSchema {
  if (sums.length !== summaryLength(layout)) throw new Error(`${sums.length} sums for a layout of ${summaryLength(layout)}`);
  const records = Math.round(sums[0] as number);
  const columns: SchemaColumn[] = [];
  let width = 0;
  let o = 1;
  for (const c of layout.columns) {
    if (c.kind === 'numeric') {
      const [n, s, q, m] = [0, 1, 2, 3].map((i) => sums[o + i] as number) as [number, number, number, number];
      const mean = n > 0 ? s / n : 0;
      const variance = n > 1 ? Math.max(0, (q - n * mean * mean) / (n - 1)) : 0;
      const std = Math.sqrt(variance);
      const missing = Math.round(m) > 0;
      columns.push({ name: c.name, kind: 'numeric', mean, std: std > 1e-8 ? std : 1, missing });
      width += missing ? 2 : 1;
      o += 4;
    } else {
      const values = c.values ?? [];
      const all = [...values, OTHER, MISSING];
      // Slots that no hospital filled are left out (a vocabulary value always has a count: some hospital had it k times).
      const categories = all.filter((_, i) => Math.round(sums[o + i] as number) > 0);
      columns.push({ name: c.name, kind: 'categorical', categories });
      width += categories.length;
      o += all.length;
    }
  }
  const class_counts = layout.classes.map((_, i) => Math.round(sums[o + i] as number));
  return { target: layout.target, classes: [...layout.classes], columns, width, records, class_counts };
}

/** Encoded rows: x [n × width] row-major, y the class index (−1: no or unknown label). */
export interface TabularData {
  readonly n: number;
  readonly width: number;
  readonly x: Float32Array;
  readonly y: Int32Array;
}

export function encodeTable(table: TabularTable, schema: TabularSchema): TabularData {
  const n = table.rows.length;
  const x = new Float32Array(n * schema.width);
  const y = new Int32Array(n).fill(-1);
  const t = columnIndex(table, schema.target);
  const cls = new Map(schema.classes.map((v, i) => [v, i]));
  const plan = schema.columns.map((c) => ({ c, j: columnIndex(table, c.name), index: c.kind === 'categorical' ? new Map(c.categories.map((v, i) => [v, i])) : undefined }));
  for (let r = 0; r < n; r++) {
    const row = table.rows[r] as readonly string[];
    let o = r * schema.width;
    for (const { c, j, index } of plan) {
      const v = j < 0 ? undefined : row[j];
      const absent = v === undefined || isMissing(v);
      if (c.kind === 'numeric') {
        const value = absent ? undefined : numberOf(v);
        x[o] = value === undefined ? 0 : Math.max(-Z_CLIP, Math.min(Z_CLIP, (value - c.mean) / c.std));
        if (c.missing) x[o + 1] = value === undefined ? 1 : 0;
        o += c.missing ? 2 : 1;
      } else {
        const m = index as Map<string, number>;
        const slot = absent ? m.get(MISSING) : (m.get(v.trim()) ?? m.get(OTHER));
        if (slot !== undefined) x[o + slot] = 1;
        o += c.categories.length;
      }
    }
    const label = t < 0 ? undefined : row[t];
    if (label !== undefined && !isMissing(label)) y[r] = cls.get(label.trim()) ?? -1;
  }
  return { n, width: schema.width, x, y };
}
