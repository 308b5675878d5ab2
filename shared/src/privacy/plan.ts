/**
 * The privacy planner: before a run starts, what each hospital will spend. A hospital with n
 * labelled training examples trains round(n / B) DP-SGD steps per local epoch at sampling rate
 * q = B / n (shared/src/train/train.ts `dpSchedule`), so over R rounds × E epochs its ε follows
 * from the RDP accountant; the σ that meets the target over the whole run follows from the
 * calibration. Used by `fedcare privacy plan` and the dashboard's run form.
 */
import { dpSchedule } from './schedule';
import { noiseForEpsilon, stepsForBudget } from './calibrate';
import { DP_SGD_ORDERS, epsilonFor } from './rdp';

/**
 * The DP recipe (issue 14; README "Differential privacy"): what the run form, `simulate --dp` and
 * the planner propose when DP is on. Chosen by measurement on the spec cohort (3 hospitals, 3000
 * patients, T = 30): the compact model (9.3k parameters; DP noise grows with √parameters, Tramèr &
 * Boneh 2021; no dropout), Poisson lots of 128 (4–5× the seed's 32: the noise per example falls as
 * the lot grows, De et al. 2022; 64–512 measured, 128 best at ε = 1), 10 local epochs per round and
 * Adam at 0.01. Measured by `bench --only privacy` (README, "Differential privacy"): pooled test
 * macro AUC-ROC 0.83 without DP, 0.83–0.84 at ε = 8, 0.755–0.776 at ε = 1 (the standard model at
 * the old schedule: 0.70 / 0.64).
 */
export const DP_RECIPE = Object.freeze({
  model: 'compact' as const,
  rounds: 3,
  local_epochs: 10,
  batch_size: 128,
  learning_rate: 0.01,
  max_grad_norm: 1,
  delta: 1e-5,
});

export interface DpProposal {
  model: 'compact';
  rounds: number;
  local_epochs: number;
  batch_size: number;
  learning_rate: number;
  /** σ: the largest any hospital needs to stay within the target over the whole run (every hospital then trains every round). */
  dp: { noise_multiplier: number; max_grad_norm: number; target_epsilon: number; delta: number };
}

/**
 * The recipe for a target ε and these hospitals: σ is calibrated on the hospital with the largest
 * sampling rate (the smallest n), rounded up to 3 decimals, so no hospital passes the target.
 * `options` override the recipe's rounds, δ, local epochs and lot size (σ is then calibrated for them).
 */
export function proposeDp(
  targetEpsilon: number,
  hospitals: readonly { hospital_id: string; n: number }[],
  options: { rounds?: number; delta?: number; local_epochs?: number; batch_size?: number } = {},
): DpProposal {
  const rounds = options.rounds ?? DP_RECIPE.rounds;
  const delta = options.delta ?? DP_RECIPE.delta;
  const localEpochs = options.local_epochs ?? DP_RECIPE.local_epochs;
  const batchSize = options.batch_size ?? DP_RECIPE.batch_size;
  if (hospitals.length === 0) throw new Error('the DP recipe needs at least one hospital with a known number of training examples');
  const sigma = Math.max(
    ...hospitals.map(({ hospital_id, n }) => {
      if (!(Number.isInteger(n) && n > 0)) throw new Error(`${hospital_id}: n must be a positive integer of labelled training examples, got ${n}`);
      const { sampleRate, steps } = dpSchedule(n, batchSize, localEpochs);
      return noiseForEpsilon({ targetEpsilon, sampleRate, steps: steps * rounds, delta, orders: DP_SGD_ORDERS });
    }),
  );
  return {
    model: DP_RECIPE.model,
    rounds,
    local_epochs: localEpochs,
    batch_size: batchSize,
    learning_rate: DP_RECIPE.learning_rate,
    dp: { noise_multiplier: Math.ceil(sigma * 1000) / 1000, max_grad_norm: DP_RECIPE.max_grad_norm, target_epsilon: targetEpsilon, delta },
  };
}

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
  /** The DP recipe for this target ε, δ and number of rounds (what the run form offers to apply). */
  proposal: DpProposal | null;
}

export function planPrivacy(config: PlanConfig, hospitals: readonly { hospital_id: string; n: number }[]): PrivacyPlan {
  const { noise_multiplier: sigma, target_epsilon: target, delta } = config.dp;
  const out: HospitalPlan[] = hospitals.map(({ hospital_id, n }) => {
    const warnings: string[] = [];
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`${hospital_id}: n must be a positive integer of labelled training examples, got ${n}`);
    if (delta >= 1 / n) warnings.push(`δ ${delta} is not below 1/n = ${(1 / n).toExponential(2)}: ${hospital_id} will refuse to train (choose δ < 1/n)`);
    const { sampleRate, steps } = dpSchedule(n, config.batch_size, config.local_epochs);
    const total = steps * config.rounds;
    const epsilonRun = epsilonFor({ sampleRate, noiseMultiplier: sigma, steps: total, delta, orders: DP_SGD_ORDERS }).epsilon;
    const affordableSteps = stepsForBudget({ targetEpsilon: target, sampleRate, noiseMultiplier: sigma, delta, orders: DP_SGD_ORDERS });
    const roundsAffordable = Math.min(config.rounds, Math.floor(affordableSteps / steps));
    let noiseForTarget: number | null = null;
    try {
      noiseForTarget = noiseForEpsilon({ targetEpsilon: target, sampleRate, steps: total, delta, orders: DP_SGD_ORDERS });
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
  let proposal: DpProposal | null = null;
  try {
    proposal = proposeDp(target, hospitals, { rounds: config.rounds, delta });
  } catch {
    proposal = null; // the target is out of reach even for the recipe; the warnings above say why
  }
  return {
    proposal,
    hospitals: out,
    max_epsilon: Math.max(0, ...out.map((h) => Math.min(h.epsilon_run, h.rounds_affordable < config.rounds ? target : h.epsilon_run))),
    ok: warnings.length === 0,
    warnings,
  };
}
