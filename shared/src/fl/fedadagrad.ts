// FedAdagrad: Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR).
import { FEDOPT_DEFAULTS, FedOpt } from './fedopt';
import type { FedOptParams } from './fedopt';
import type { StrategyName, StrategyOptions } from './strategy';

/** v ← v + Δ², so the step shrinks as Δ² accumulates. β1 defaults to 0 (m = Δ, no momentum), as Flower's FedAdagrad; β2 is unused. */
export class FedAdagrad extends FedOpt {
  override readonly name: StrategyName = 'fedadagrad';

  constructor(options: Partial<StrategyOptions> = {}, params: Omit<FedOptParams, 'beta2'> = {}) {
    super(options, params, { ...FEDOPT_DEFAULTS, beta1: 0 });
  }

  protected nextV(v: number, deltaSquared: number): number {
    return v + deltaSquared;
  }
}
