import { describe, expect, it } from 'vitest';
import { planPrivacy, USEFUL_NOISE_LIMIT } from './plan';
import { DP_SGD_ORDERS, epsilonFor } from './rdp';
import { dpSchedule } from './schedule';

// The seed spec's settings: σ 1.1, batch 32, 5 local epochs, 50 rounds, target ε 1.0, δ 1e-5; H1–H3
// hold 1000 / 800 / 1200 patients (the "ε 17–23" counts all of them; the 72 % that really
// trains — 80 % train split × 90 % not held out for validation — spends more: see the last test).
const SEED = { rounds: 50, local_epochs: 5, batch_size: 32, dp: { noise_multiplier: 1.1, target_epsilon: 1.0, delta: 1e-5 } };
const HOSPITALS = [
  { hospital_id: 'H1', n: 1000 },
  { hospital_id: 'H2', n: 800 },
  { hospital_id: 'H3', n: 1200 },
];

describe('privacy planner', () => {
  it('shows that the seed spec’s own settings spend ε far past its target 1.0 (roughly 17–23), and says what would meet it', () => {
    const plan = planPrivacy(SEED, HOSPITALS);
    expect(plan.ok).toBe(false);
    for (const h of plan.hospitals) {
      const { sampleRate, steps } = dpSchedule(h.n, 32, 5);
      expect(h.sample_rate).toBe(sampleRate);
      expect(h.steps_total).toBe(steps * 50);
      expect(h.epsilon_run).toBeCloseTo(epsilonFor({ sampleRate, noiseMultiplier: 1.1, steps: steps * 50, delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon, 12);
      expect(h.epsilon_run).toBeGreaterThan(16);
      expect(h.epsilon_run).toBeLessThan(24);
      // the budget stops it early: exactly the last round within the target
      const per = h.steps_per_round;
      expect(epsilonFor({ sampleRate, noiseMultiplier: 1.1, steps: Math.max(1, per * h.rounds_affordable), delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon <= 1 || h.rounds_affordable === 0).toBe(true);
      expect(epsilonFor({ sampleRate, noiseMultiplier: 1.1, steps: per * (h.rounds_affordable + 1), delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon).toBeGreaterThan(1);
      // the σ that meets the target over the whole run does
      const sigma = h.noise_for_target!;
      const e = epsilonFor({ sampleRate, noiseMultiplier: sigma, steps: h.steps_total, delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon;
      expect(e).toBeLessThanOrEqual(1);
      expect(e).toBeGreaterThan(0.99);
      expect(sigma).toBeGreaterThan(USEFUL_NOISE_LIMIT);
      expect(h.warnings.join('\n')).toMatch(new RegExp(`${h.hospital_id} would spend ε .* past the target 1: it stops after ${h.rounds_affordable} round`));
      expect(h.warnings.join('\n')).toMatch(/noise that leaves little to learn/);
    }
    // H2 has the fewest examples, so the largest sampling rate and the largest ε
    const eps = Object.fromEntries(plan.hospitals.map((h) => [h.hospital_id, h.epsilon_run]));
    expect(eps.H2).toBeGreaterThan(eps.H1!);
    expect(eps.H1).toBeGreaterThan(eps.H3!);
    expect(plan.max_epsilon).toBe(1);
  });

  it('is ok when the run fits the budget', () => {
    const plan = planPrivacy({ rounds: 3, local_epochs: 1, batch_size: 32, dp: { noise_multiplier: 1.1, target_epsilon: 8, delta: 1e-5 } }, HOSPITALS);
    expect(plan.warnings).toEqual([]);
    expect(plan.ok).toBe(true);
    expect(plan.hospitals.every((h) => h.rounds_affordable === 3 && h.epsilon_run < 8)).toBe(true);
    expect(plan.max_epsilon).toBe(Math.max(...plan.hospitals.map((h) => h.epsilon_run)));
  });

  it('on the training splits that really train (72 %), the seed settings spend more: ε 22–28', () => {
    const plan = planPrivacy(SEED, HOSPITALS.map((h) => ({ ...h, n: Math.round(h.n * 0.72) })));
    for (const h of plan.hospitals) {
      expect(h.epsilon_run).toBeGreaterThan(20);
      expect(h.epsilon_run).toBeLessThan(30);
    }
  });

  it('warns when δ is not below 1/n, and rejects a bad n', () => {
    const plan = planPrivacy({ rounds: 1, local_epochs: 1, batch_size: 8, dp: { noise_multiplier: 1, target_epsilon: 5, delta: 0.01 } }, [{ hospital_id: 'H9', n: 150 }]);
    expect(plan.ok).toBe(false);
    expect(plan.warnings[0]).toMatch(/δ 0.01 is not below 1\/n = 6.67e-3: H9 will refuse to train/);
    expect(() => planPrivacy(SEED, [{ hospital_id: 'H1', n: 0 }])).toThrow(/H1: n must be a positive integer/);
  });
});
