// FedProx: Li et al. 2020, "Federated Optimization in Heterogeneous Networks" (MLSys).
import { FedAvg } from './fedavg';
import type { FitInstructionConfig, StrategyName, StrategyOptions } from './strategy';

export interface FedProxParams {
  /** Proximal coefficient μ of the client's extra loss term (μ/2)·‖w − w_global‖². Default 0.01. */
  proximalMu?: number;
}

/** FedAvg aggregation; the only difference is the proximal term the clients add, configured here. */
export class FedProx extends FedAvg {
  override readonly name: StrategyName = 'fedprox';
  readonly proximalMu: number;

  constructor(options: Partial<StrategyOptions> = {}, params: FedProxParams = {}) {
    super(options);
    const mu = params.proximalMu ?? 0.01;
    if (!(Number.isFinite(mu) && mu >= 0)) throw new RangeError(`proximalMu must be a finite number >= 0, got ${mu}`);
    this.proximalMu = mu;
  }

  override configureFit(round: number, base: FitInstructionConfig): FitInstructionConfig {
    return { ...super.configureFit(round, base), proximal_mu: this.proximalMu };
  }
}
