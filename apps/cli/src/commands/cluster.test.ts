// `fedcare cluster` end to end on a small generated cohort: the table, the plot, the JSON keys and the
// adjusted Rand index against the generator's dominant latent state, with and without SecAgg+.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateToDir } from './generate';
import { fedcareProcess } from '../testing-processes';

const ARGS = ['--rounds', '2', '--seq-len', '12', '--k-max', '4'];

describe('fedcare cluster', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-cluster-'));
  generateToDir(['H1', 'H2', 'H3'], 42, dir, 60);

  it('prints the k selection and the per-cluster table, writes the plot, reports the ARI', async () => {
    const plot = path.join(dir, 'clusters.svg');
    const p = fedcareProcess(['cluster', '--data', dir, ...ARGS, '--plot', plot]);
    expect(await p.exited, p.output()).toBe(0);
    const out = p.output();
    expect(out).toMatch(/k\s+silhouette\s+cost\s+iterations/);
    expect(out).toMatch(/cluster\s+size\s+H1\s+H2\s+H3\s+low\s+medium\s+high\s+readmission\s+sets it apart/);
    const ari = Number(/adjusted Rand index vs the dominant latent state: (-?[\d.]+)/.exec(out)?.[1]);
    expect(Number.isFinite(ari)).toBe(true);
    const svg = readFileSync(plot, 'utf8');
    expect(svg).toContain('<svg');
    expect(svg).toContain('risk-level mix');
  }, 120_000);

  it('--secure-aggregation secagg --json: the same clustering through SecAgg+, adjusted_rand_index > 0', async () => {
    const run = async (extra: string[]) => {
      const p = fedcareProcess(['cluster', '--data', dir, ...ARGS, '--json', ...extra]);
      expect(await p.exited, p.output()).toBe(0);
      const line = p.output().split('\n').find((l) => l.startsWith('{')) as string;
      return JSON.parse(line) as { k: number; adjusted_rand_index: number; secure_aggregation: string; clusters: { size: number; size_per_hospital: Record<string, number>; risk_mix: Record<string, number>; readmission_rate: number; top_features: unknown[] }[]; selection: { k: number }[] };
    };
    const plain = await run([]);
    const secure = await run(['--secure-aggregation', 'secagg']);
    expect(secure.secure_aggregation).toBe('secagg');
    expect(secure.selection.map((s) => s.k)).toEqual([2, 3, 4]);
    expect(secure.k).toBe(plain.k);
    expect(secure.clusters.map((c) => c.size_per_hospital)).toEqual(plain.clusters.map((c) => c.size_per_hospital));
    expect(secure.clusters.reduce((s, c) => s + c.size, 0)).toBe(180);
    for (const c of secure.clusters) {
      expect(Object.keys(c.risk_mix).sort()).toEqual(['High', 'Low', 'Medium']);
      expect(c.top_features).toHaveLength(3);
    }
    expect(Number.isFinite(secure.adjusted_rand_index)).toBe(true);
    expect(secure.adjusted_rand_index).toBeGreaterThan(0);
    expect(secure.adjusted_rand_index).toBeCloseTo(plain.adjusted_rand_index, 9);
  }, 120_000);
});
