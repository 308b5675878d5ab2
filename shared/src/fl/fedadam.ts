// FedAdam: Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR); bias correction of Kingma & Ba 2015, as Flower since 1.13.
import { FEDOPT_DEFAULTS, FedOpt } from './fedopt';
import type { FedOptParams } from './fedopt';
import type { StrategyName, StrategyOptions } from './strategy';

/**
 * v ← β2·v + (1 − β2)·Δ², and the bias-corrected rate η_t = η·√(1 − β2^t) / (1 − β1^t).
 * Flower (PR #4362) applies the same correction but with t = server_round + 1, one step ahead of
 * Adam's; we use t = the number of server updates made (1 on the first), which is Kingma & Ba's α_t
 * and makes the first step ≈ η·sign(Δ) like Adam's; the counter is checkpointed with m and v.
 */
export class FedAdam extends FedOpt {
  override readonly name: StrategyName = 'fedadam';

  constructor(options: Partial<StrategyOptions> = {}, params: FedOptParams = {}) {
    super(options, params, FEDOPT_DEFAULTS);
  }

  protected nextV(v: number, deltaSquared: number): number {
    return this.beta2 * v + (1 - this.beta2) * deltaSquared;
  }

  protected override stepSize(t: number): number {
    return (this.eta * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
  }
}
