// `fedcare simulate --dp` end to end: real client processes train with DP-SGD, each keeps its RDP
// ledger, reports ε every round, and declines the round that would pass the target; the run ends
// when too few hospitals have budget left. Every ε is checked against the accountant directly.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateHospital } from '@fedcare/shared/data';
import { HospitalClient } from '@fedcare/shared/fl';
import { DP_RECIPE, DP_SGD_ORDERS, epsilonFor, type PrivacyPlan } from '@fedcare/shared/privacy';
import { writeFileSync } from 'node:fs';
import { dpSchedule } from '@fedcare/shared/train';
import { openSqliteStore } from '@fedcare/server';
import { generateToDir } from './generate';
import { fedcareProcess } from '../testing-processes';

const HOSPITALS = ['H1', 'H2', 'H3'];
const SIGMA = 1.0;
const DELTA = 1e-4;
const BATCH = 16;

describe('fedcare simulate --dp', () => {
  it('reports each hospital’s ε per round as the accountant computes it, declines past the target, and ends the run when budgets are spent', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-simdp-'));
    generateToDir(HOSPITALS, 5, dir, 60);
    // What each hospital will spend per round (the same split the client makes).
    const schedule = Object.fromEntries(
      HOSPITALS.map((h) => {
        const n = new HospitalClient(h, generateHospital(h, { seed: 5, patients: 60 }).records).numTrainExamples;
        return [h, dpSchedule(n, BATCH, 1)];
      }),
    );
    const eps = (h: string, rounds: number) => epsilonFor({ sampleRate: schedule[h]!.sampleRate, noiseMultiplier: SIGMA, steps: schedule[h]!.steps * rounds, delta: DELTA, orders: DP_SGD_ORDERS }).epsilon;
    // A target every hospital meets for two rounds and the thirstiest passes in round 3.
    const target = Number((Math.max(...HOSPITALS.map((h) => eps(h, 2))) * 1.02).toFixed(4));
    const last = Object.fromEntries(HOSPITALS.map((h) => [h, [1, 2, 3, 4, 5, 6].filter((k) => eps(h, k) <= target).at(-1) ?? 0]));
    const willing = (r: number) => HOSPITALS.filter((h) => last[h]! >= r);
    const expectedRounds = [1, 2, 3, 4, 5, 6].filter((r) => [1, 2, 3, 4, 5, 6].filter((k) => k <= r).every((k) => willing(k).length >= 2));
    expect(expectedRounds.length).toBeGreaterThanOrEqual(2);
    expect(expectedRounds.length).toBeLessThan(6);

    const db = path.join(dir, 'sim.db');
    const p = fedcareProcess(['simulate', '--data', dir, '--rounds', '6', '--seq-len', '12', '--batch-size', String(BATCH), '--local-epochs', '1', '--min-fit-clients', '2', '--dp', '--noise-multiplier', String(SIGMA), '--max-grad-norm', '1', '--target-epsilon', String(target), '--delta', String(DELTA), '--db', db, '--json']);
    expect(await p.exited, p.output()).toBe(0);
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    type Line = Record<string, number> & { round: number; privacy_epsilon_per_hospital: Record<string, number>; dropouts: { hospital: string; stage: string; status: string; reason: string }[] };
    const rounds = lines.filter((l) => 'round' in l) as Line[];
    expect(rounds.map((r) => r.round)).toEqual(expectedRounds);
    for (const r of rounds) {
      expect(r.privacy_delta).toBe(DELTA);
      expect(r.noise_multiplier).toBe(SIGMA);
      for (const h of HOSPITALS) {
        const want = eps(h, Math.min(r.round, last[h]!));
        expect(Math.abs(r.privacy_epsilon_per_hospital[h]! - want) / want, `${h} round ${r.round}`).toBeLessThan(1e-9);
        expect(r.privacy_epsilon_per_hospital[h]!).toBeLessThanOrEqual(target);
      }
      expect(r.privacy_epsilon).toBeCloseTo(Math.max(...Object.values(r.privacy_epsilon_per_hospital)), 12);
      // a hospital past its budget declines, saying why, from the round after its last
      const declined = r.dropouts.filter((d) => d.status === 'declined').map((d) => d.hospital).sort();
      expect(declined).toEqual(HOSPITALS.filter((h) => last[h] === r.round - 1));
      for (const d of r.dropouts.filter((x) => x.status === 'declined')) expect(d.reason).toMatch(/PRIVACY_BUDGET: this round would take ε from .* past the target/);
      // no training metrics measured on the private records leave the hospitals
      expect(r.train_loss).toBeNull();
    }
    const summary = (lines.find((l) => 'summary' in l) as { summary: { status: string; reason: string } }).summary;
    expect(summary.status).toBe('completed');
    expect(summary.reason).toMatch(/^privacy budget spent: /);

    // The database holds the same ε per hospital per round.
    const store = openSqliteStore(db);
    const [run] = await store.listRuns();
    const stored = await store.getRoundMetrics(run!.runId);
    expect(stored.map((r) => r.perHospital.H1?.privacy_epsilon)).toEqual(rounds.map((r) => r.privacy_epsilon_per_hospital.H1));
    await store.close();
  }, 600_000);

  it('with --dp alone, runs the DP recipe (compact model, lot 128, 10 local epochs, planner’s σ) and each hospital spends what `fedcare privacy plan` predicts, within 1 %', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-simdp-recipe-'));
    generateToDir(HOSPITALS, 6, dir, 300);
    const db = path.join(dir, 'sim.db');
    const p = fedcareProcess(['simulate', '--data', dir, '--rounds', '1', '--seq-len', '12', '--dp', '--target-epsilon', '4', '--delta', '1e-4', '--db', db, '--json']);
    expect(await p.exited, p.output()).toBe(0);
    const round = p.output().split('\n').filter((l) => l.startsWith('{"round"')).map((l) => JSON.parse(l) as { privacy_epsilon_per_hospital: Record<string, number> })[0]!;
    const store = openSqliteStore(db);
    const [run] = await store.listRuns();
    await store.close();
    const config = run!.config as Record<string, unknown> & { dp: { noise_multiplier: number; max_grad_norm: number; target_epsilon: number; delta: number } };
    expect(config).toMatchObject({ model: 'compact', rounds: 1, local_epochs: DP_RECIPE.local_epochs, batch_size: DP_RECIPE.batch_size, learning_rate: DP_RECIPE.learning_rate });
    expect(config.dp).toMatchObject({ max_grad_norm: 1, target_epsilon: 4, delta: 1e-4 });
    // the planner, as the admin runs it, on the stored run configuration
    const runJson = path.join(dir, 'run.json');
    writeFileSync(runJson, JSON.stringify(config));
    const plan = fedcareProcess(['privacy', 'plan', '--config', runJson, '--data', dir, '--json']);
    expect(await plan.exited, plan.output()).toBe(0);
    const predicted = JSON.parse(plan.output().split('\n').find((l) => l.startsWith('{'))!) as PrivacyPlan;
    expect(predicted.proposal?.dp.noise_multiplier).toBe(config.dp.noise_multiplier);
    for (const h of HOSPITALS) {
      const want = predicted.hospitals.find((x) => x.hospital_id === h)!.epsilon_run;
      const got = round.privacy_epsilon_per_hospital[h]!;
      expect(Math.abs(got - want) / want, h).toBeLessThan(0.01);
      expect(got).toBeLessThanOrEqual(4);
    }
    // σ was calibrated on the thirstiest hospital: it spends (almost) the whole target
    expect(Math.max(...Object.values(round.privacy_epsilon_per_hospital))).toBeGreaterThan(4 * 0.97);
  }, 600_000);
});
