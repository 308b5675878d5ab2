import { describe, expect, it } from 'vitest';
import { generateTabularTable } from '../testing/tabular';
import { CsvError, parseCsv, toCsv, type TabularTable } from './csv';
import { dirichletPartition, partitionByColumn } from './partition';
import { describeTable, encodeTable, finalizeSchema, mergeShapes, MISSING, OTHER, refuseSummary, summarise, summaryLength, type TabularTask } from './schema';

const task: TabularTask = { target: 'y', min_category_count: 2 };
const table = (text: string): TabularTable => parseCsv(text);

describe('parseCsv (RFC 4180)', () => {
  it.each([
    ['LF and a trailing newline', 'a,b\n1,2\n3,4\n', [['1', '2'], ['3', '4']]],
    ['CRLF, no trailing newline', 'a,b\r\n1,2\r\n3,4', [['1', '2'], ['3', '4']]],
    ['quoted comma, doubled quote, newline inside quotes', 'a,b\n"x,y","say ""hi""\nthere"\n', [['x,y', 'say "hi"\nthere']]],
    ['a byte-order mark and blank lines', '\ufeffa,b\n\n1,2\n\n', [['1', '2']]],
    ['empty fields', 'a,b\n,\n"",x\n', [['', ''], ['', 'x']]],
  ])('%s', (_name, text, rows) => {
    const t = parseCsv(text);
    expect(t.columns).toEqual(['a', 'b']);
    expect(t.rows).toEqual(rows);
    expect(parseCsv(toCsv(t)).rows).toEqual(rows);
  });

  it.each([
    ['a row of another width, by line', 'a,b\n1,2\n3\n', /data.csv:3: 1 fields, the header has 2/],
    ['an unclosed quote', 'a,b\n"1,2\n', /data.csv:2: a quoted field is not closed/],
    ['a duplicate column', 'a,a\n1,2\n', /column "a" appears twice/],
    ['no header', '', /no header row/],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parseCsv(text, 'data.csv')).toThrow(CsvError);
    expect(() => parseCsv(text, 'data.csv')).toThrow(message);
  });
});

describe('column typing, missing values and rare categories', () => {
  const t = table('n,mixed,cat,id,y\n1.5,1,a,P1,yes\n,2,a,P2,no\nNA,x,b,P3,yes\n-2e3,3,,P4,no\n?,4,a,P5,yes\n');

  it('types a column numeric when every non-missing value is a finite number, else categorical', () => {
    const shape = describeTable(t, task);
    expect(shape.columns.map((c) => [c.name, c.kind])).toEqual([
      ['n', 'numeric'],
      ['mixed', 'categorical'],
      ['cat', 'categorical'],
      ['id', 'categorical'],
    ]);
    expect(shape.classes).toEqual(['no', 'yes']);
  });

  it('sends only categories seen at least min_category_count times: an identifier column sends none', () => {
    const shape = describeTable(t, task);
    expect(shape.columns.find((c) => c.name === 'cat')?.values).toEqual(['a']);
    expect(shape.columns.find((c) => c.name === 'id')?.values).toEqual([]);
    expect(JSON.stringify(shape)).not.toMatch(/P[1-5]/);
    expect(describeTable(t, { ...task, min_category_count: 1 }).columns.find((c) => c.name === 'cat')?.values).toEqual(['a', 'b']);
  });

  it('encodes a missing number as the mean plus an indicator, a missing category as (missing), a rare one as (other)', () => {
    const layout = mergeShapes([describeTable(t, task)], task);
    const schema = finalizeSchema(layout, summarise(t, layout));
    const n = schema.columns.find((c) => c.name === 'n');
    expect(n).toMatchObject({ kind: 'numeric', missing: true });
    expect(n && n.kind === 'numeric' && n.mean).toBeCloseTo((1.5 - 2000) / 2, 9);
    expect(schema.columns.find((c) => c.name === 'cat')).toEqual({ name: 'cat', kind: 'categorical', categories: ['a', OTHER, MISSING] });
    expect(schema.columns.find((c) => c.name === 'id')).toEqual({ name: 'id', kind: 'categorical', categories: [OTHER] });
    const enc = encodeTable(t, schema);
    const row = (r: number) => Array.from(enc.x.subarray(r * enc.width, (r + 1) * enc.width));
    // Columns in name order: cat (3), id (1), mixed (1 + 1 + 1: "1".."4" rare, x rare → (other) only), n (value, indicator).
    const cat = (r: number) => row(r).slice(0, 3);
    expect(cat(0)).toEqual([1, 0, 0]);
    expect(cat(2)).toEqual([0, 1, 0]); // b is rare here: (other)
    expect(cat(3)).toEqual([0, 0, 1]); // missing
    const nAt = schema.width - 2;
    expect(row(1).slice(nAt)).toEqual([0, 1]); // missing → mean (0 standardised), indicator 1
    expect(row(0)[nAt + 1]).toBe(0);
    expect(Array.from(enc.y)).toEqual([1, 0, 1, 0, 1]);
  });

  it('merges shapes by the union rule: categorical if any hospital says so, vocabularies and classes united', () => {
    const a = describeTable(table('g,y\n1,0\n2,1\n2,1\n1,0\n'), task);
    const b = describeTable(table('g,z,y\nlow,3,2\nlow,4,0\n'), task);
    expect(a.columns[0]?.kind).toBe('numeric');
    const layout = mergeShapes([a, b], task);
    expect(layout.columns).toEqual([
      { name: 'g', kind: 'categorical', values: ['low'] },
      { name: 'z', kind: 'numeric' },
    ]);
    expect(layout.classes).toEqual(['0', '1', '2']);
    // Hospital a has no column z: all its z values are missing.
    const sums = summarise(table('g,y\n1,0\n2,1\n2,1\n1,0\n'), layout);
    expect(Array.from(sums.slice(1, 4))).toEqual([0, 4, 0]); // g: low 0, (other) 4, (missing) 0
    expect(Array.from(sums.slice(4, 8))).toEqual([0, 0, 0, 4]); // z: count, Σ, Σ², missing
  });

  it('refuses a target with one class or too many', () => {
    expect(() => mergeShapes([describeTable(table('x,y\n1,a\n2,a\n'), task)], task)).toThrow(/1 class/);
    expect(() => describeTable(table(`x,y\n${Array.from({ length: 60 }, (_, i) => `1,${i}`).join('\n')}\n`), task)).toThrow(/at most 50/);
    expect(() => describeTable(table('x,z\n1,2\n'), task)).toThrow(/target column "y" is not in the data/);
  });
});

describe('federated statistics = pooled statistics', () => {
  const all = generateTabularTable(600, 3);
  const fed: TabularTask = { target: 'readmitted', min_category_count: 5 };

  it.each([2, 3, 5])('summing the sums of %i hospitals gives the pooled means, standard deviations and counts', (k) => {
    const parts = dirichletPartition(all, 'readmitted', k, 0.5, 7);
    const layout = mergeShapes(parts.map((p) => describeTable(p, fed)), fed);
    const total = new Float64Array(summaryLength(layout));
    for (const p of parts) summarise(p, layout).forEach((v, i) => (total[i]! += v));
    const federated = finalizeSchema(layout, total);
    const pooled = finalizeSchema(layout, summarise(all, layout));
    expect(federated.records).toBe(600);
    expect(federated.class_counts).toEqual(pooled.class_counts);
    expect(federated.width).toBe(pooled.width);
    federated.columns.forEach((c, i) => {
      const p = pooled.columns[i]!;
      if (c.kind === 'numeric' && p.kind === 'numeric') {
        expect(c.mean).toBeCloseTo(p.mean, 9);
        expect(c.std).toBeCloseTo(p.std, 9);
        expect(c.missing).toBe(p.missing);
      } else expect(c).toEqual(p);
    });
    // The identifier never makes it into a vocabulary; the ward column does, whole.
    expect(federated.columns.find((c) => c.name === 'patient_code')).toEqual({ name: 'patient_code', kind: 'categorical', categories: [OTHER] });
    expect(federated.columns.find((c) => c.name === 'ward')).toMatchObject({ categories: ['cardiology', 'icu', 'medicine', 'oncology', 'surgery'] });
    expect(federated.columns.find((c) => c.name === 'smoker')).toMatchObject({ categories: ['no', 'yes', MISSING] });
  });

  it('refuses sums no rows could make, and accepts honest ones', () => {
    const layout = mergeShapes([describeTable(all, fed)], fed);
    const honest = summarise(all, layout);
    expect(refuseSummary(layout, honest, 600)).toBeUndefined();
    expect(refuseSummary(layout, honest, 599)).toMatch(/600 rows, at most 599/);
    const inflated = Float64Array.from(honest);
    inflated[2] = 1e12; // Σx of the first numeric column (age: count, Σx, Σx², missing at 1…4), far past √(n·Σx²)
    expect(refuseSummary(layout, inflated, 600)).toMatch(/Σx²/);
    const negative = Float64Array.from(honest);
    negative[summaryLength(layout) - 1] = -5;
    expect(refuseSummary(layout, negative, 600)).toMatch(/a count of -5/);
  });
});

describe('partitions', () => {
  const all = generateTabularTable(300, 4);

  it('Dirichlet(α): every row once, every hospital ≥ 10 rows, label mixes skewed for small α and not for large', () => {
    const share = (parts: TabularTable[]) => parts.map((p) => p.rows.filter((r) => r[7] === 'yes').length / p.rows.length);
    const skewed = dirichletPartition(all, 'readmitted', 3, 0.1, 1);
    expect(skewed.reduce((s, p) => s + p.rows.length, 0)).toBe(300);
    expect(new Set(skewed.flatMap((p) => p.rows.map((r) => r[0]))).size).toBe(300);
    for (const p of skewed) expect(p.rows.length).toBeGreaterThanOrEqual(10);
    const even = dirichletPartition(all, 'readmitted', 3, 1000, 1);
    const spread = (s: number[]) => Math.max(...s) - Math.min(...s);
    expect(spread(share(skewed))).toBeGreaterThan(spread(share(even)));
    expect(spread(share(even))).toBeLessThan(0.1);
  });

  it('by column: one table per value, without the column', () => {
    const parts = partitionByColumn(all, 'site');
    expect([...parts.keys()]).toEqual(['east', 'north', 'south']);
    for (const t of parts.values()) expect(t.columns).not.toContain('site');
    expect([...parts.values()].reduce((s, t) => s + t.rows.length, 0)).toBe(300);
  });
});
