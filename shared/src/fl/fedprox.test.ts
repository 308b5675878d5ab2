import { describe, expect, it } from 'vitest';
import { FedProx } from './fedprox';
import { createStrategy, STRATEGY_NAMES } from './strategies';
import type { FitInstructionConfig } from './strategy';

const BASE: FitInstructionConfig = { local_epochs: 5, batch_size: 32, learning_rate: 1e-3, proximal_mu: 0.5, dp: true, note: 'x' };

describe('configureFit', () => {
  it.each(STRATEGY_NAMES.map((name) => ({ name, mu: name === 'fedprox' ? 0.01 : 0 })))('$name sends proximal_mu $mu', ({ name, mu }) => {
    const before = structuredClone(BASE);
    const config = createStrategy(name).configureFit(1, BASE);
    expect(config).toEqual({ ...BASE, proximal_mu: mu });
    expect(config).not.toBe(BASE);
    expect(BASE).toEqual(before);
  });

  it.each([0, 0.001, 1])('FedProx with proximalMu %s', (mu) => {
    expect(new FedProx({}, { proximalMu: mu }).configureFit(3, BASE).proximal_mu).toBe(mu);
    expect(createStrategy('fedprox', { proximalMu: mu }).configureFit(3, BASE).proximal_mu).toBe(mu);
  });
});
