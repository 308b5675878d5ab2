/**
 * Shared checks of the SecAgg+ and HE adversarial tests: what the honest hospitals alone would have
 * produced (FedAvg of their known updates, added to the global weights they trained from), and the
 * configured bound on a hostile hospital's influence under secure aggregation: every update is
 * clipped to ±R per coordinate (secagg_clip) and its weight is at most its bound, so one hospital of
 * weight share s moves any coordinate of the mean by at most s·2R (plus the protocol's quantisation
 * error).
 */
import { expect } from 'vitest';
import type { FakeHospital } from '../testing/fake-hospital';
import { evaluated, HONEST_SAMPLES, honestDelta, runTo, trainedFrom, type Cohort } from './harness';

export const CLIP = 0.5;

/** FedAvg of `contributors`' honest updates from the global weights of `round`. */
export function fedAvgOf(contributors: readonly string[], global: Float32Array, round: number): Float32Array {
  const total = contributors.reduce((s, h) => s + HONEST_SAMPLES(h), 0);
  const out = Float32Array.from(global);
  for (const h of contributors) {
    const d = honestDelta(h, global, round);
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (HONEST_SAMPLES(h) * Math.max(-CLIP, Math.min(CLIP, d[i] as number))) / total;
  }
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Every round's global model is within `bound(round)` (L∞) of the honest hospitals' FedAvg. */
export function expectNearHonest(c: Cohort, bound: number, rounds = [1, 2]): void {
  const observer = c.honest[0] as FakeHospital;
  for (const round of rounds) {
    const g = trainedFrom(observer, round);
    const want = fedAvgOf(
      c.honest.map((f) => f.hospitalId),
      g,
      round,
    );
    expect(maxAbsDiff(evaluated(observer, round), want), `round ${round}: L∞ distance to the honest-only model`).toBeLessThanOrEqual(bound);
  }
}

/** A secure run of two rounds with the harness's small config; the run must complete. */
export async function secureRun(c: Cohort, n: number, mode: 'secagg' | 'he', rounds = 2) {
  const res = await runTo(c, { rounds, seq_len: 12, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0, min_fit_clients: n - 1, min_evaluate_clients: n - 1, min_available_clients: n - 1, secure_aggregation: mode, secagg_clip: CLIP });
  expect(res.summary?.status, res.summary?.reason ?? res.run?.reason).toBe('completed');
  expect(res.rounds).toHaveLength(rounds);
  return res;
}
