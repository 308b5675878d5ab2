// The privacy audit has power and DP holds: with noise off the one-run audit finds a clearly positive
// ε lower bound; at ε = 1 and 8 its lower bound stays at or below what the accountant charged.
// (A smaller cohort than the spec's — 300 patients per hospital, 500 canaries — to keep npm test short;
// `fedcare audit` and `bench --only privacy` run the spec cohort.)
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAudit, type AuditResult } from './audit';
import { BIN } from './testing-processes';
import { initTf } from './tf-node';

const small = { patients: 300, canaries: 500, seed: 1 };

describe('privacy audit (one run, Steinke et al. 2023) and membership inference', () => {
  beforeAll(async () => {
    await initTf('wasm');
  });

  let off: AuditResult;
  it('with noise off finds a clearly positive ε lower bound (the audit has power)', async () => {
    off = await runAudit({ ...small, targetEpsilon: Number.POSITIVE_INFINITY });
    console.log(`noise off: ε ≥ ${off.epsilon_lower_bound.toFixed(3)} (${off.correct}/${off.guesses}), canary AUC ${off.canary_auc.toFixed(3)}, MIA AUC ${off.mia_auc.toFixed(3)}`);
    expect(off.epsilon_spent).toBeNull();
    expect(off.noise_multiplier).toBe(0);
    expect(off.guesses).toBe(100);
    expect(off.correct / off.guesses).toBeGreaterThan(0.65);
    expect(off.epsilon_lower_bound).toBeGreaterThan(0.5);
    expect(off.canary_auc).toBeGreaterThan(0.6);
    expect(off.mia_auc).toBeGreaterThan(0.5);
  }, 300_000);

  it.each([1, 8])('at ε = %d the lower bound stays ≤ the accountant’s ε (≤ the target)', async (target) => {
    const r = await runAudit({ ...small, targetEpsilon: target });
    console.log(`ε ${target}: spent ${r.epsilon_spent!.toFixed(3)} (σ ${r.noise_multiplier}), audit ε ≥ ${r.epsilon_lower_bound.toFixed(3)} (${r.correct}/${r.guesses}), MIA AUC ${r.mia_auc.toFixed(3)}`);
    expect(r.noise_multiplier).toBeGreaterThan(0);
    expect(r.epsilon_spent!).toBeLessThanOrEqual(target);
    expect(r.epsilon_lower_bound).toBeLessThanOrEqual(r.epsilon_spent!);
    // the noise is what closes the gap the noise-off run showed
    expect(r.epsilon_lower_bound).toBeLessThan(off.epsilon_lower_bound);
  }, 300_000);

  it('fedcare audit refuses bad input by name', () => {
    const run = (...a: string[]) => spawnSync(process.execPath, [BIN, 'audit', ...a], { encoding: 'utf8', timeout: 60_000 });
    const bad = run('--epsilons', '1,0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--epsilons: "0" is not a positive number or inf');
    const few = run('--canaries', '5');
    expect(few.status).toBe(2);
    expect(few.stderr).toContain('--canaries must be at least 10, got 5');
    const who = run('--hospital', 'H9', '--patients', '40', '--canaries', '10', '--epsilons', 'inf');
    expect(who.status).toBe(2);
    expect(who.stderr).toContain('hospital must be one of H1, H2, H3, got H9');
  }, 120_000);
});
