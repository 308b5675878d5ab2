/**
 * The privacy planner: before a run starts, what each hospital will spend. A hospital with n
 * labelled training examples trains round(n / B) DP-SGD steps per local epoch at sampling rate
 * q = B / n (shared/src/train/train.ts `dpSchedule`), so over R rounds × E epochs its ε follows
 * from the RDP accountant; the σ that meets the target over the whole run follows from the
 * calibration. Used by `fedcare privacy plan` and the dashboard's run form.
 */
import { dpSchedule } from './schedule';
import { noiseForEpsilon, stepsForBudget } from './calibrate';
import { epsilonFor } from './rdp';

/** Above this σ the noise swamps a clipped gradient sum of a typical lot: warn that the run will learn little. */
export const USEFUL_NOISE_LIMIT = 4;

export interface PlanConfig {
  rounds: number;
  local_epochs: number;
  batch_size: number;
  dp: { noise_multiplier: number; target_epsilon: number; delta: number };
}

export interface HospitalPlan {
  hospital_id: string;
  /** Labelled training examples. */
  n: number;
  sample_rate: number;
  steps_per_round: number;
  steps_total: number;
  /** ε after the whole run at the chosen σ (may pass the target: then the hospital stops early). */
  epsilon_run: number;
  /** Rounds the hospital can train before its budget stops it (≤ rounds). */
  rounds_affordable: number;
  /** σ that keeps the whole run within the target ε; null when out of reach. */
  noise_for_target: number | null;
  warnings: string[];
}

export interface PrivacyPlan {
  hospitals: HospitalPlan[];
  /** The largest ε any hospital would spend over the run (capped hospitals stop at the target). */
  max_epsilon: number;
  /** True when every hospital can train every round within its budget with useful noise. */
  ok: boolean;
  warnings: string[];
}

export function planPrivacy(config: PlanConfig, hospitals: readonly { hospital_id: string; n: number }[]): PrivacyPlan {
  const { noise_multiplier: sigma, target_epsilon: target, delta } = config.dp;
  const out: HospitalPlan[] = hospitals.map(({ hospital_id, n }) => {
    const warnings: string[] = [];
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`${hospital_id}: n must be a positive integer of labelled training examples, got ${n}`);
    if (delta >= 1 / n) warnings.push(`δ ${delta} is not below 1/n = ${(1 / n).toExponential(2)}: ${hospital_id} will refuse to train (choose δ < 1/n)`);
    const { sampleRate, steps } = dpSchedule(n, config.batch_size, config.local_epochs);
    const total = steps * config.rounds;
    const epsilonRun = epsilonFor({ sampleRate, noiseMultiplier: sigma, steps: total, delta }).epsilon;
    const affordableSteps = stepsForBudget({ targetEpsilon: target, sampleRate, noiseMultiplier: sigma, delta });
    const roundsAffordable = Math.min(config.rounds, Math.floor(affordableSteps / steps));
    let noiseForTarget: number | null = null;
    try {
      noiseForTarget = noiseForEpsilon({ targetEpsilon: target, sampleRate, steps: total, delta });
    } catch (e) {
      warnings.push(`${hospital_id}: target ε ${target} cannot be met over ${config.rounds} rounds: ${(e as Error).message}`);
    }
    if (epsilonRun > target) {
      warnings.push(
        `${hospital_id} would spend ε ${epsilonRun.toFixed(2)} over ${config.rounds} rounds, past the target ${target}: it stops after ${roundsAffordable} round(s)` +
          (noiseForTarget !== null ? `; σ ≥ ${noiseForTarget.toFixed(2)} keeps the whole run within the target` : ''),
      );
    }
    if (noiseForTarget !== null && noiseForTarget > USEFUL_NOISE_LIMIT && epsilonRun > target) {
      warnings.push(`${hospital_id}: meeting ε ${target} over the whole run needs σ ${noiseForTarget.toFixed(2)} > ${USEFUL_NOISE_LIMIT}, noise that leaves little to learn — fewer rounds or local epochs, larger batches or a larger target`);
    }
    return {
      hospital_id,
      n,
      sample_rate: sampleRate,
      steps_per_round: steps,
      steps_total: total,
      epsilon_run: epsilonRun,
      rounds_affordable: roundsAffordable,
      noise_for_target: noiseForTarget,
      warnings,
    };
  });
  const warnings = out.flatMap((h) => h.warnings);
  return {
    hospitals: out,
    max_epsilon: Math.max(0, ...out.map((h) => Math.min(h.epsilon_run, h.rounds_affordable < config.rounds ? target : h.epsilon_run))),
    ok: warnings.length === 0,
    warnings,
  };
}
