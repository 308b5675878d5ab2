// `fedcare tune` end to end on a tiny cohort: a study killed with SIGKILL mid-way (the command and
// its trial processes) and run again resumes without re-running finished jobs, reaches its trial
// budget, ranks by validation AUC-ROC, writes the best configuration as a run config that loads, and
// a parallel-coordinates plot with one line per trial. --config and --set give the trials' base.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { classifierParamCount, modelConfigFor } from '@fedcare/shared/model';
import { readRunConfigFile, resolveRunConfig } from '../run-config-file';
import { BIN, waitFor } from '../testing-processes';
import { generateToDir } from './generate';
import type { TuneRow } from './tune';

interface JobRow {
  trial: number;
  rung: number;
  status: string;
  val_auc: number | null;
  test_auc: number | null;
  seconds: number | null;
}

function doneJobs(db: string): JobRow[] {
  if (!existsSync(db)) return [];
  try {
    const d = new Database(db, { readonly: true, fileMustExist: true });
    try {
      return d.prepare("SELECT trial, rung, status, val_auc, test_auc, seconds FROM jobs WHERE status = 'done' ORDER BY trial, rung").all() as JobRow[];
    } finally {
      d.close();
    }
  } catch {
    return []; // not created yet
  }
}

/** The command in a process group of its own, so SIGKILL can take it and its trial processes at once. */
function tune(args: string[], cwd: string) {
  const child = spawn(process.execPath, [BIN, 'tune', ...args], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

describe('fedcare tune', () => {
  it('is killed mid-way and resumes without re-running finished trials; ranked table, best config, plot', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-tune-'));
    generateToDir(['H1', 'H2', 'H3'], 3, path.join(dir, 'data'), 30);
    writeFileSync(
      path.join(dir, 'space.yaml'),
      ['learning_rate: loguniform [1e-3, 3e-2]', 'batch_size: choice [16, 32]', 'local_epochs: int [1, 2]', 'hidden_dim: choice [8, 16]', 'dropout: uniform [0, 0.3]', 'epsilon: choice [5, inf]', 'strategy: choice [fedavg, fedprox]', ''].join('\n'),
    );
    writeFileSync(path.join(dir, 'base.yaml'), 'seq_len: 8\nmodel: compact\n');
    const db = path.join(dir, 'study.db');
    const args = ['--data', 'data', '--space', 'space.yaml', '--trials', '5', '--budget-rounds', '2', '--parallel', '2', '--study', db, '--config', 'base.yaml', '--set', 'proximal_mu=0.05', '--out', 'best.yaml', '--plot', 'tune.svg', '--json'];

    const first = tune(args, dir);
    const before = await waitFor(() => {
      const d = doneJobs(db);
      return d.length >= 2 ? d : undefined;
    }, 90_000, `two finished jobs\n${first.output()}`);
    process.kill(-(first.child.pid as number), 'SIGKILL');
    await first.exited;
    const killedAt = doneJobs(db);
    expect(killedAt.length, first.output()).toBeGreaterThanOrEqual(before.length);
    expect(killedAt.length).toBeLessThan(7); // mid-way: 5 trials at rung 0 and promotions to come

    const second = tune(args, dir);
    const code = await second.exited;
    expect(code, second.output()).toBe(0);
    expect(second.output()).toMatch(new RegExp(`resuming .*study\\.db: ${killedAt.length} job\\(s\\) done`));
    const after = doneJobs(db);
    // Finished jobs were not run again: same rows, same results, same durations.
    for (const j of killedAt) expect(after.find((x) => x.trial === j.trial && x.rung === j.rung)).toEqual(j);
    expect(after.filter((j) => j.rung === 0).map((j) => j.trial)).toEqual([0, 1, 2, 3, 4]);
    expect(after.some((j) => j.rung === 1)).toBe(true); // the top of rung 0 was promoted

    const result = JSON.parse(second.output().split('\n').find((l) => l.startsWith('{"tune"')) as string) as { tune: TuneRow[]; best: { trial: number; val_auc_roc: number } };
    expect(result.tune).toHaveLength(5);
    expect(result.tune.map((r) => r.rank)).toEqual([1, 2, 3, 4, 5]);
    // Ranked by rounds reached, then validation AUC-ROC.
    for (let i = 1; i < result.tune.length; i++) {
      const [a, b] = [result.tune[i - 1]!, result.tune[i]!];
      expect(a.rounds > b.rounds || (a.rounds === b.rounds && (a.val_auc_roc ?? -1) >= (b.val_auc_roc ?? -1))).toBe(true);
    }
    expect(result.best.trial).toBe(result.tune[0]?.trial);

    // The best configuration is a run config: loads, has the trial's parameters and the base's keys.
    const best = resolveRunConfig({ defaults: {}, file: readRunConfigFile(path.join(dir, 'best.yaml')) });
    const params = result.tune[0]!.params;
    expect(best).toMatchObject({ seq_len: 8, model: 'compact', proximal_mu: 0.05, rounds: 2, hidden_dim: params.hidden_dim, dropout: params.dropout, strategy: params.strategy, learning_rate: params.learning_rate });
    expect(best.dp?.target_epsilon ?? 'inf').toBe(params.epsilon);

    const svg = readFileSync(path.join(dir, 'tune.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(5);
  }, 150_000);

  it('hidden_dim and dropout change the model the run builds', () => {
    const base = classifierParamCount(modelConfigFor('compact'));
    expect(classifierParamCount(modelConfigFor('compact', { hidden_dim: 12 }))).toBe(base);
    expect(classifierParamCount(modelConfigFor('compact', { hidden_dim: 16 }))).toBeGreaterThan(base);
    expect(modelConfigFor('standard', { dropout: 0.1 })).toMatchObject({ lstmDropout: 0.1, headDropout: 0.1, attentionDropout: 0.1, omicsDropout: 0.1, demographicsDropout: 0.1 });
    expect(modelConfigFor('standard')).toEqual({});
  });
});
