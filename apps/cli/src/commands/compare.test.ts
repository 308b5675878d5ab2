// `fedcare compare` end to end: real simulations (coordinator + client processes) per variant, the
// ranked table against each variant's own summary, the DP variant's ε within its budget, the plot;
// then `fedcare runs` reads the runs back from the one database --db collected them in.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifierParamCount, MODEL_PRESETS } from '@fedcare/shared/model';
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
    const db = path.join(dir, 'runs.db');
    const args = ['compare', '--data', dir, '--strategies', 'fedavg,median', '--target-epsilons', 'inf,30', '--rounds', '1', '--seq-len', '12', '--batch-size', '16', '--db', db];
    const p = fedcareProcess([...args, '--plot', plot, '--json']);
    const code = await p.exited;
    expect(code, p.output()).toBe(0);
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const variants = lines.filter((l) => 'variant' in l) as { variant: string; config: { strategy: string; dp?: { target_epsilon: number } }; summary: { status: string; test: { auc_roc: number } }; rounds: { round: number; auc_roc: number; privacy_epsilon: number | null }[] }[];
    expect(variants.map((v) => v.variant)).toEqual(['fedavg ε=∞', 'fedavg ε=30', 'median ε=∞', 'median ε=30']);
    expect(variants.map((v) => v.config.strategy)).toEqual(['fedavg', 'fedavg', 'median', 'median']);
    expect(variants.map((v) => (v.config as { model?: string }).model)).toEqual(['compact', 'compact', 'compact', 'compact']);
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
      // a full float32 update of the DP recipe's compact model, which every variant trains when one is private
      expect(r.upload_bytes_per_hospital_round).toBeGreaterThanOrEqual(classifierParamCount(MODEL_PRESETS.compact) * 4);
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

    // --db: every variant's run in one database, which `fedcare runs` reads back
    const listed = fedcareProcess(['runs', '--db', db, '--json']);
    expect(await listed.exited, listed.output()).toBe(0);
    const runs = listed.output().trim().split('\n').map((l) => JSON.parse(l) as { run_id: string; status: string; strategy: string; config: { dp?: { target_epsilon: number } } });
    expect(runs.map((r) => `${r.strategy} ${r.config.dp?.target_epsilon ?? '∞'}`).sort()).toEqual(['fedavg 30', 'fedavg ∞', 'median 30', 'median ∞']);
    const dpMedian = runs.find((r) => r.strategy === 'median' && r.config.dp)!;
    const shown = fedcareProcess(['runs', 'show', dpMedian.run_id.slice(-8), '--db', db, '--json']);
    expect(await shown.exited, shown.output()).toBe(0);
    const [round] = shown.output().trim().split('\n').map((l) => JSON.parse(l) as { run_id: string; round: number; auc_roc: number; privacy_epsilon: number });
    const fromCompare = variants.find((v) => v.variant === 'median ε=30')!.rounds[0]!;
    expect(round).toMatchObject({ run_id: dpMedian.run_id, round: 1, auc_roc: fromCompare.auc_roc, privacy_epsilon: fromCompare.privacy_epsilon });
    const csv = fedcareProcess(['runs', 'show', dpMedian.run_id, '--db', db, '--csv']);
    expect(await csv.exited).toBe(0);
    const [header, row, ...rest] = csv.output().trim().split('\n');
    expect(header!.split(',').slice(0, 4)).toEqual(['round', 'completed_at', 'train_loss', 'train_accuracy']);
    expect(row!.split(',')[header!.split(',').indexOf('privacy_epsilon')]).toBe(String(fromCompare.privacy_epsilon));
    expect(rest).toEqual([]);
    const ambiguous = fedcareProcess(['runs', 'show', 'run-', '--db', db]);
    expect(await ambiguous.exited).toBe(2);
    expect(ambiguous.output()).toMatch(/run- matches 4 runs/);
    const unknown = fedcareProcess(['runs', 'show', 'nope', '--db', db]);
    expect(await unknown.exited).toBe(1);
    expect(unknown.output()).toMatch(/no run nope in /);
  }, 600_000);

  it('refuses a bad variant list before running anything, and a missing database, naming them', async () => {
    const p = fedcareProcess(['compare', '--data', '/nonexistent', '--strategies', 'fedavg,fedsgd']);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/fedcare compare: --strategies: unknown strategy "fedsgd"/);
    const noDb = fedcareProcess(['runs', '--db', '/nonexistent/fedcare.db']);
    expect(await noDb.exited).toBe(2);
    expect(noDb.output()).toMatch(/fedcare runs: no database at \/nonexistent\/fedcare\.db/);
  });
});
