/**
 * The registry: every strategy by name, built with the seed spec 3.1 defaults (fraction_fit 1.0,
 * fraction_evaluate 1.0, min_fit_clients 3, min_evaluate_clients 3, min_available_clients 3)
 * overlaid with the caller's options and the strategy's own parameters.
 */
import { FedAdagrad } from './fedadagrad';
import { FedAdam } from './fedadam';
import { FedAvg } from './fedavg';
import type { FedOptParams } from './fedopt';
import { FedProx } from './fedprox';
import type { FedProxParams } from './fedprox';
import { FedYogi } from './fedyogi';
import { Krum } from './krum';
import type { KrumParams } from './krum';
import { FedMedian } from './median';
import type { Strategy, StrategyName, StrategyOptions } from './strategy';
import { FedTrimmedMean } from './trimmed-mean';
import type { TrimmedMeanParams } from './trimmed-mean';

/** Everything createStrategy accepts; parameters of other strategies are ignored. */
export type StrategyParams = Partial<StrategyOptions> & FedProxParams & FedOptParams & TrimmedMeanParams & KrumParams;

function pick<K extends keyof StrategyParams>(p: StrategyParams, keys: readonly K[]): Pick<StrategyParams, K> {
  const out: Partial<StrategyParams> = {};
  for (const k of keys) if (p[k] !== undefined) out[k] = p[k];
  return out as Pick<StrategyParams, K>;
}

function options(p: StrategyParams): Partial<StrategyOptions> {
  return pick(p, ['fractionFit', 'fractionEvaluate', 'minFitClients', 'minEvaluateClients', 'minAvailableClients']);
}

const FEDOPT_KEYS = ['eta', 'etaL', 'beta1', 'beta2', 'tau'] as const;

const REGISTRY: Record<StrategyName, (p: StrategyParams) => Strategy> = {
  fedavg: (p) => new FedAvg(options(p)),
  fedprox: (p) => new FedProx(options(p), pick(p, ['proximalMu'])),
  fedadam: (p) => new FedAdam(options(p), pick(p, FEDOPT_KEYS)),
  fedyogi: (p) => new FedYogi(options(p), pick(p, FEDOPT_KEYS)),
  fedadagrad: (p) => new FedAdagrad(options(p), pick(p, ['eta', 'etaL', 'beta1', 'tau'])),
  median: (p) => new FedMedian(options(p)),
  trimmed: (p) => new FedTrimmedMean(options(p), pick(p, ['beta'])),
  krum: (p) => new Krum(options(p), pick(p, ['numMaliciousClients', 'numClientsToKeep'])),
};

/** Every strategy name, in a stable order. */
export const STRATEGY_NAMES: readonly StrategyName[] = Object.freeze(Object.keys(REGISTRY) as StrategyName[]);

export function isStrategyName(name: string): name is StrategyName {
  return Object.prototype.hasOwnProperty.call(REGISTRY, name);
}

/** A new strategy (with fresh server state). Throws an Error listing the known names for an unknown one. */
export function createStrategy(name: string, params: StrategyParams = {}): Strategy {
  if (!isStrategyName(name)) throw new Error(`unknown strategy "${name}"; known strategies: ${STRATEGY_NAMES.join(', ')}`);
  return REGISTRY[name](params);
}
