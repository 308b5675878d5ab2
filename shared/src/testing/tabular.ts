/**
 * A generated clinical-looking table for the tabular task's tests: numeric columns with missing
 * values, categorical ones (one with a missing level), a unique patient code (an identifier that
 * must never leave a hospital), a site column to split by, and a binary target whose log-odds
 * depend on numeric and categorical columns alike (so a pipeline that drops either loses AUC).
 */
import type { TabularTable } from '../tabular/csv';
import { Rng } from '../util/random';

export const WARDS = ['cardiology', 'icu', 'medicine', 'oncology', 'surgery'] as const;
const WARD_EFFECT = [0.5, 2, -0.5, 1, -1.5];
const SITES = ['north', 'south', 'east'] as const;

export function generateTabularTable(n: number, seed = 1): TabularTable {
  const rng = new Rng(`testing/tabular/${seed}`);
  const columns = ['patient_code', 'site', 'age', 'sex', 'smoker', 'ward', 'lactate', 'readmitted'];
  const rows: string[][] = [];
  for (let i = 0; i < n; i++) {
    const site = rng.int(0, SITES.length - 1);
    const age = rng.normal(62 + 4 * site, 14);
    const smoker = rng.next() < 0.1 ? '' : rng.next() < 0.3 ? 'yes' : 'no';
    // Each site has its own ward mix (non-IID features).
    const ward = rng.categorical(WARDS.map((_, w) => 1 + (w === site ? 3 : 0)));
    const lactate = Math.exp(rng.normal(0.4, 0.5));
    const logit = -0.7 + ((age - 62) / 14) + (smoker === 'yes' ? 2 : 0) + (WARD_EFFECT[ward] as number) + 0.8 * (lactate - 1.7) + rng.normal(0, 0.3);
    const y = rng.next() < 1 / (1 + Math.exp(-logit)) ? 'yes' : 'no';
    rows.push([
      `P${String(seed).padStart(2, '0')}${String(i).padStart(6, '0')}`,
      SITES[site] as string,
      rng.next() < 0.1 ? '' : age.toFixed(1),
      rng.next() < 0.5 ? 'F' : 'M',
      smoker,
      WARDS[ward] as string,
      rng.next() < 0.05 ? 'NA' : lactate.toFixed(2),
      y,
    ]);
  }
  return { columns, rows };
}
