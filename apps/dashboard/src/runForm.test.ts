import { describe, expect, it } from 'vitest';
import { DEFAULT_RUN_FORM, formToConfig } from './runForm';

describe('formToConfig', () => {
  it('turns the default form into a valid config with min clients applied to all three minimums', () => {
    const res = formToConfig(DEFAULT_RUN_FORM);
    expect(res).toEqual({
      ok: true,
      config: { strategy: 'fedavg', rounds: 3, local_epochs: 1, learning_rate: 0.001, batch_size: 32, seq_len: 30, fraction_fit: 1, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2 },
    });
  });

  it('adds secure aggregation when chosen', () => {
    const res = formToConfig({ ...DEFAULT_RUN_FORM, secure_aggregation: 'secagg' });
    expect(res.ok && res.config.secure_aggregation).toBe('secagg');
  });

  it('adds the DP settings when DP is on (and only then)', () => {
    const res = formToConfig({ ...DEFAULT_RUN_FORM, dp: true, noise_multiplier: '0.8', target_epsilon: '5' });
    expect(res.ok && res.config.dp).toEqual({ noise_multiplier: 0.8, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 });
    const off = formToConfig({ ...DEFAULT_RUN_FORM, noise_multiplier: 'garbage' });
    expect(off.ok && off.config.dp).toBeUndefined();
  });

  it.each([
    [{ rounds: '' }, 'rounds'],
    [{ rounds: '2.5' }, 'rounds'],
    [{ learning_rate: 'abc' }, 'learning_rate'],
    [{ fraction_fit: '1.5' }, 'fraction_fit'],
    [{ seq_len: '1' }, 'seq_len'],
    [{ seq_len: '400' }, 'seq_len'],
    [{ strategy: 'sgd' }, 'strategy'],
    [{ min_clients: '0' }, 'min_fit_clients'],
    [{ dp: true, noise_multiplier: '0' }, 'dp.noise_multiplier'],
    [{ strategy: 'krum', secure_aggregation: 'secagg' }, 'secure_aggregation'],
    [{ secure_aggregation: 'paillier' }, 'secure_aggregation'],
    [{ dp: true, delta: '1' }, 'dp.delta'],
    [{ dp: true, max_grad_norm: '-1' }, 'dp.max_grad_norm'],
    [{ dp: true, target_epsilon: 'x' }, 'target_epsilon'],
  ])('rejects %j on field %s', (patch, field) => {
    const res = formToConfig({ ...DEFAULT_RUN_FORM, ...patch });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.field).toBe(field);
  });
});
