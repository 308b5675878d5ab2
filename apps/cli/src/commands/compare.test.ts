// `fedcare compare` end to end: real simulations (coordinator + client processes) per variant, the
// ranked table against each variant's own summary, the DP variant's ε within its budget, the plot.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError } from '../io';
import { fedcareProcess } from '../testing-processes';
import { parseVariants, type ComparisonRow } from './compare';
import { generateToDir } from './generate';

describe('parseVariants', () => {
  it('crosses strategies with target ε ("inf" without DP) and names each variant', () => {
    expect(parseVariants('fedavg,fedprox', '1,inf').map((v) => [v.name, v.strategy, v.targetEpsilon])).toEqual([
      ['fedavg ε=1', 'fedavg', 1],
      ['fedavg ε=∞', 'fedavg', null],
      ['fedprox ε=1', 'fedprox', 1],
      ['fedprox ε=∞', 'fedprox', null],
    ]);
    expect(parseVariants('fedavg, fedadam', undefined).map((v) => [v.name, v.targetEpsilon])).toEqual([
      ['fedavg', undefined],
      ['fedadam', undefined],
    ]);
  });

  it.each([
    ['fedavg,nope', undefined, /unknown strategy "nope"/],
    ['fedavg,fedavg', undefined, /listed twice/],
    ['fedavg', '1,0', /"0" is not a positive number or inf/],
    ['fedavg', '1,x', /"x" is not a positive number or inf/],
    ['fedavg', '2,2', /a budget is listed twice/],
    ['fedavg', undefined, /nothing to compare/],
    ['fedavg', '5', /nothing to compare/],
  ])('refuses --strategies %s --target-epsilons %s', (s, e, error) => {
    expect(() => parseVariants(s, e)).toThrow(CliError);
    expect(() => parseVariants(s, e)).toThrow(error);
  });
});

describe('fedcare compare', () => {
  it('runs each variant on the same data, ranks them by pooled test AUC-ROC and overlays them in the plot', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-compare-'));
    generateToDir(['H1', 'H2', 'H3'], 7, dir, 40);
    const plot = path.join(dir, 'compare.svg');
    const args = ['compare', '--data', dir, '--strategies', 'fedavg,median', '--target-epsilons', 'inf,30', '--rounds', '1', '--seq-len', '12', '--batch-size', '16'];
    const p = fedcareProcess([...args, '--plot', plot, '--json']);
    const code = await p.exited;
    expect(code, p.output()).toBe(0);
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const variants = lines.filter((l) => 'variant' in l) as { variant: string; config: { strategy: string; dp?: { target_epsilon: number } }; summary: { status: string; test: { auc_roc: number } }; rounds: { round: number; privacy_epsilon: number | null }[] }[];
    expect(variants.map((v) => v.variant)).toEqual(['fedavg ε=∞', 'fedavg ε=30', 'median ε=∞', 'median ε=30']);
    expect(variants.map((v) => v.config.strategy)).toEqual(['fedavg', 'fedavg', 'median', 'median']);
    expect(variants.map((v) => v.config.dp?.target_epsilon ?? null)).toEqual([null, 30, null, 30]);
    const rows = (lines.find((l) => 'comparison' in l) as { comparison: ComparisonRow[] }).comparison;
    expect(rows).toHaveLength(4);
    // ranked best first, and each row is its variant's own summary
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1]!.auc_roc).toBeGreaterThanOrEqual(rows[i]!.auc_roc);
    for (const r of rows) {
      const v = variants.find((x) => x.variant === r.variant)!;
      expect(r.status).toBe('completed');
      expect(r.rounds).toBe(1);
      expect(r.auc_roc).toBe(v.summary.test.auc_roc);
      expect(r.upload_bytes_per_hospital_round).toBeGreaterThan(2_000_000); // a full float32 update
      if (r.target_epsilon === null) expect(r.epsilon_spent).toBeNull();
      else {
        expect(r.epsilon_spent).toBeGreaterThan(0);
        expect(r.epsilon_spent!).toBeLessThanOrEqual(30);
        expect(r.epsilon_spent).toBe(v.rounds.at(-1)!.privacy_epsilon);
      }
    }
    // DP changes training: same seeds, different models
    const auc = (name: string) => rows.find((r) => r.variant === name)!.auc_roc;
    expect(auc('fedavg ε=30')).not.toBe(auc('fedavg ε=∞'));
    const svg = readFileSync(plot, 'utf8');
    expect(svg.startsWith('<?xml')).toBe(true);
    for (const name of ['fedavg ε=∞', 'fedavg ε=30', 'median ε=∞', 'median ε=30', 'AUC-ROC (federated evaluation)', 'ε spent (largest over hospitals)']) expect(svg).toContain(name);
  }, 600_000);

  it('refuses a bad variant list before running anything, naming it', async () => {
    const p = fedcareProcess(['compare', '--data', '/nonexistent', '--strategies', 'fedavg,fedsgd']);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/fedcare compare: --strategies: unknown strategy "fedsgd"/);
  });
});
