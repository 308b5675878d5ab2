// ASHA (Li et al. 2020) against its known behaviour on synthetic objectives, and the search space's
// parsing and seeded sampling.
import { describe, expect, it } from 'vitest';
import { CliError } from '../io';
import { Asha, rungsFor, type Job } from './asha';
import { DEFAULT_SPACE, normalise, parseSpace, sampleParams } from './space';

/** Runs a study to the end, one job at a time (or `parallel` at once, finishing the oldest first). */
function drive(asha: Asha, objective: (trial: number, rung: number) => number, parallel = 1): Job[] {
  const order: Job[] = [];
  const running: Job[] = [];
  for (;;) {
    while (running.length < parallel) {
      const j = asha.next();
      if (!j) break;
      running.push(j);
    }
    const j = running.shift();
    if (!j) break;
    order.push(j);
    asha.report(j, objective(j.trial, j.rung));
  }
  return order;
}

describe('rungsFor', () => {
  it('is R/η², R/η, R (at least one round, distinct, ascending)', () => {
    expect(rungsFor(4, 2)).toEqual([1, 2, 4]);
    expect(rungsFor(8, 2)).toEqual([2, 4, 8]);
    expect(rungsFor(9, 3)).toEqual([1, 3, 9]);
    expect(rungsFor(2, 2)).toEqual([1, 2]);
    expect(rungsFor(1, 3)).toEqual([1]);
  });
});

describe('Asha', () => {
  it('promotes only the top ⌊n/η⌋ of a rung, best first', () => {
    const asha = new Asha({ rungs: [1, 2, 4], eta: 2, maxTrials: 100 });
    const quality = [0.3, 0.9, 0.1, 0.5];
    const started = [0, 1, 2, 3].map(() => asha.next()!);
    expect(started).toEqual([0, 1, 2, 3].map((i) => ({ trial: i, rung: 0 })));
    started.forEach((j, i) => asha.report(j, quality[i] as number));
    expect(asha.promotable(0)).toEqual([1, 3]);
    expect(asha.next()).toEqual({ trial: 1, rung: 1 });
    expect(asha.next()).toEqual({ trial: 3, rung: 1 });
    // Nothing else is promotable: a new trial starts at the bottom (asynchronous: no waiting for the rung).
    expect(asha.next()).toEqual({ trial: 4, rung: 0 });
  });

  it('with a noiseless objective the best configuration reaches the top rung and ranks first', () => {
    const value = (t: number) => ((t * 7919) % 31) / 31; // a fixed, scrambled quality per trial
    const asha = new Asha({ rungs: [1, 2, 4], eta: 2, maxTrials: 16 });
    const jobs = drive(asha, (t, rung) => value(t) * (0.8 + 0.1 * rung), 2);
    const bestTrial = [...Array(16).keys()].sort((a, b) => value(b) - value(a))[0] as number;
    expect(asha.ranking()[0]?.id).toBe(bestTrial);
    expect(Asha.reached(asha.ranking()[0]!).rung).toBe(2);
    // Early stopping: fewer jobs than training every trial to the top, and every trial started once at rung 0.
    expect(jobs.filter((j) => j.rung === 0)).toHaveLength(16);
    // (Asynchronous promotions may exceed ⌊n/η⌋ by the trials promoted before better ones arrived.)
    const at = (k: number) => jobs.filter((j) => j.rung === k).length;
    expect(at(1)).toBeLessThan(at(0));
    expect(at(2)).toBeLessThan(at(1));
    expect(at(1)).toBeLessThanOrEqual(16 / 2 + 2);
  });

  it('never promotes a failed trial', () => {
    const asha = new Asha({ rungs: [1, 2], eta: 2, maxTrials: 2 });
    drive(asha, (t) => (t === 0 ? Number.NaN : 0.4));
    expect(asha.trials.find((t) => t.id === 0)?.results).toEqual([Number.NEGATIVE_INFINITY]);
    expect(asha.ranking().map((t) => t.id)).toEqual([1, 0]);
  });

  it('restored from stored results, runs the interrupted jobs first and finishes with the same outcome', () => {
    const objective = (t: number, rung: number) => ((t * 37) % 11) / 11 + rung * 0.01;
    const whole = new Asha({ rungs: [1, 2, 4], eta: 2, maxTrials: 8 });
    drive(whole, objective);
    // Stop a second study after 5 jobs with one more started, then restore a fresh scheduler.
    const first = new Asha({ rungs: [1, 2, 4], eta: 2, maxTrials: 8 });
    const done = new Map<number, Map<number, number>>();
    for (let i = 0; i < 5; i++) {
      const j = first.next()!;
      first.report(j, objective(j.trial, j.rung));
      done.set(j.trial, (done.get(j.trial) ?? new Map<number, number>()).set(j.rung, objective(j.trial, j.rung)));
    }
    const interrupted = first.next()!;
    const resumed = new Asha({ rungs: [1, 2, 4], eta: 2, maxTrials: 8 });
    resumed.restore(done, [interrupted]);
    expect(resumed.next()).toEqual(interrupted);
    resumed.report(interrupted, objective(interrupted.trial, interrupted.rung));
    drive(resumed, objective);
    expect(resumed.trials).toHaveLength(8);
    expect(resumed.ranking()[0]?.id).toBe(whole.ranking()[0]?.id);
  });

  it('refuses bad settings', () => {
    expect(() => new Asha({ rungs: [2, 1], eta: 2, maxTrials: 1 })).toThrow(/ascending/);
    expect(() => new Asha({ rungs: [1], eta: 1, maxTrials: 1 })).toThrow(/eta/);
  });
});

describe('search space', () => {
  it('parses the four distributions, both forms, and inf for ε', () => {
    const space = parseSpace('s.yaml', 'learning_rate: loguniform [1e-4, 1e-2]\ndropout: { uniform: [0, 0.5] }\nlocal_epochs: int [1, 5]\nepsilon: choice [1, 5, inf]\nstrategy: choice [fedavg, fedprox]\n');
    expect(space).toEqual({
      learning_rate: { kind: 'loguniform', low: 1e-4, high: 1e-2 },
      dropout: { kind: 'uniform', low: 0, high: 0.5 },
      local_epochs: { kind: 'int', low: 1, high: 5 },
      epsilon: { kind: 'choice', values: [1, 5, 'inf'] },
      strategy: { kind: 'choice', values: ['fedavg', 'fedprox'] },
    });
  });

  it.each([
    ['rounds: int [1, 5]\n', /s\.yaml:1: rounds: not a tunable key/],
    ['dropout: uniform [0, 0.5]\nlearning_rate: loguniform [0, 1e-2]\n', /s\.yaml:2: learning_rate: .*outside|s\.yaml:2: learning_rate: loguniform needs bounds > 0/],
    ['batch_size: choice [16, 16]\n', /s\.yaml:1: batch_size: a choice is listed twice/],
    ['strategy: choice [fedavg, nope]\n', /s\.yaml:1: strategy: "nope" is not a strategy/],
    ['dropout: normal [0, 1]\n', /s\.yaml:1: dropout: unknown distribution "normal"/],
    ['local_epochs: int [1.5, 3]\n', /s\.yaml:1: local_epochs: 1.5 is not an integer/],
    ['\n\nhidden_dim: uniform [8, 2]\n', /s\.yaml:3: hidden_dim: the low bound 8 must be below/],
  ])('refuses %j, naming the line and key', (text, error) => {
    expect(() => parseSpace('s.yaml', text)).toThrow(CliError);
    expect(() => parseSpace('s.yaml', text)).toThrow(error);
  });

  it('samples within bounds, reproducibly per (seed, trial)', () => {
    const a = Array.from({ length: 50 }, (_, i) => sampleParams(DEFAULT_SPACE, 1, i));
    expect(Array.from({ length: 50 }, (_, i) => sampleParams(DEFAULT_SPACE, 1, i))).toEqual(a);
    expect(sampleParams(DEFAULT_SPACE, 2, 0)).not.toEqual(a[0]);
    for (const p of a) {
      expect(p.learning_rate).toBeGreaterThanOrEqual(1e-4);
      expect(p.learning_rate).toBeLessThanOrEqual(1e-2);
      expect([1, 2, 3, 4, 5]).toContain(p.local_epochs);
      expect([16, 32, 64]).toContain(p.batch_size);
      expect([1, 5, 'inf']).toContain(p.epsilon);
      for (const [k, spec] of Object.entries(DEFAULT_SPACE)) {
        const u = normalise(spec, p[k]!);
        expect(u).toBeGreaterThanOrEqual(0);
        expect(u).toBeLessThanOrEqual(1);
      }
    }
    // Log-uniform: about half the draws below the geometric mean 1e-3.
    const below = a.filter((p) => (p.learning_rate as number) < 1e-3).length;
    expect(below).toBeGreaterThan(12);
    expect(below).toBeLessThan(38);
  });
});
