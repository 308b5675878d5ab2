// FedYogi: Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR); Yogi of Zaheer et al. 2018.
import { FEDOPT_DEFAULTS, FedOpt } from './fedopt';
import type { FedOptParams } from './fedopt';
import type { StrategyName, StrategyOptions } from './strategy';

/** v ← v − (1 − β2)·Δ²·sign(v − Δ²): v grows towards Δ² additively, so it forgets large past Δ² more slowly than Adam. No bias correction (as Flower). */
export class FedYogi extends FedOpt {
  override readonly name: StrategyName = 'fedyogi';

  constructor(options: Partial<StrategyOptions> = {}, params: FedOptParams = {}) {
    super(options, params, FEDOPT_DEFAULTS);
  }

  protected nextV(v: number, deltaSquared: number): number {
    return v - (1 - this.beta2) * deltaSquared * Math.sign(v - deltaSquared);
  }
}
