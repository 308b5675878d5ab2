// Adversarial suite, stragglers (issue 13): a hospital that slow-walks each stage to just before
// its timeout stretched every round and was never penalised. The adaptive deadline cuts it at a few
// times the honest hospitals' pace, and after `straggler_strikes` such rounds it is excluded.
import { afterEach, describe, expect, it } from 'vitest';
import type { TrainInstruction } from '../testing/fake-hospital';
import { baseConfig, cohort, runTo, type Cohort } from './harness';

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const SLOW_MS = 8_000;

describe.each([3, 5])('stragglers, one slow-walking hospital among %i', (n) => {
  it('each train answer just before the timeout: cut at the adaptive deadline, excluded after two rounds, audited', async () => {
    current = await cohort(n, {
      // Answers honestly, but only SLOW_MS later (not blocking its other instructions).
      train: (instr, f) => {
        setTimeout(() => void f.trainResult(instr as TrainInstruction).then((r) => f.send('fl:result', r, 2_000)), SLOW_MS);
      },
    });
    const { summary, rounds } = await runTo(current, { ...baseConfig(n), rounds: 3, stage_timeout_s: SLOW_MS / 1000 + 2, straggler_factor: 3, straggler_min_s: 0.3, straggler_strikes: 2 });
    expect(summary?.status, summary?.reason).toBe('completed');
    const hostile = `H${n}`;
    for (const r of rounds) {
      // Before: every round lasted at least SLOW_MS.
      expect(r.metrics.round_duration_seconds, `round ${r.round} is not stretched by the slow hospital`).toBeLessThan(SLOW_MS / 1000 / 2);
    }
    for (const r of rounds.slice(0, 2)) {
      expect(r.participation.find((p) => p.hospitalId === hostile && p.stage === 'train')).toMatchObject({ status: 'dropped', reason: expect.stringMatching(/^timeout: straggler: past the adaptive deadline/) });
    }
    // Excluded from round 3: not even asked.
    expect(current.hostile.received('train', 3)).toEqual([]);
    const audit = await current.server.store.listAudit({ limit: 1000 });
    expect(audit.filter((e) => e.actor === `hospital:${hostile}` && e.action === 'hospital.excluded')).toEqual([
      expect.objectContaining({ outcome: 'rejected', detail: expect.objectContaining({ reason: 'straggled in 2 consecutive rounds (straggler_policy exclude)' }) }),
    ]);
  });
});
