import { parseRunConfigFile, resolveRunConfig } from '@fedcare/shared/protocol';
import { describe, expect, it } from 'vitest';
import { DP_RECIPE, planPrivacy, proposeDp } from '@fedcare/shared/privacy';
import dpYaml from '../../../examples/dp.yaml?raw';
import tabularYaml from '../../../examples/tabular.yaml?raw';
import { applyDpRecipe, DEFAULT_RUN_FORM, exportRunConfig, formToConfig, importRunConfig, proposedSigma } from './runForm';

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

describe('the DP recipe in the run form', () => {
  const hospitals = [
    { hospital_id: 'H1', n: 800 },
    { hospital_id: 'H2', n: 640 },
    { hospital_id: 'H3', n: 960 },
  ];

  it('ticking DP applies the recipe and the planner’s σ for the target over the connected hospitals', () => {
    const form = applyDpRecipe({ ...DEFAULT_RUN_FORM, target_epsilon: '8' }, hospitals);
    const res = formToConfig(form);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const proposal = proposeDp(8, hospitals, { rounds: 3, delta: 1e-5 });
    expect(res.config).toMatchObject({ model: 'compact', rounds: DP_RECIPE.rounds, local_epochs: DP_RECIPE.local_epochs, batch_size: DP_RECIPE.batch_size, learning_rate: DP_RECIPE.learning_rate });
    expect(res.config.dp).toEqual({ noise_multiplier: proposal.dp.noise_multiplier, max_grad_norm: 1, target_epsilon: 8, delta: 1e-5 });
    // what the planner then shows: the thirstiest hospital (H2, smallest n) spends the target, nobody more, every round affordable
    const plan = planPrivacy({ rounds: 3, local_epochs: 10, batch_size: DP_RECIPE.batch_size, dp: res.config.dp! }, hospitals);
    expect(plan.ok).toBe(true);
    expect(plan.proposal).toEqual(proposal);
    const h2 = plan.hospitals.find((h) => h.hospital_id === 'H2')!;
    expect(h2.epsilon_run).toBeLessThanOrEqual(8);
    expect(h2.epsilon_run).toBeGreaterThan(8 * 0.97);
    for (const h of plan.hospitals) expect(h.rounds_affordable).toBe(3);
  });

  it('keeps rounds and δ the admin set while DP was on, and leaves σ alone without known hospitals', () => {
    const on = applyDpRecipe({ ...DEFAULT_RUN_FORM }, hospitals);
    const edited = applyDpRecipe({ ...on, rounds: '1', delta: '1e-4', target_epsilon: '2' }, hospitals);
    expect(edited.rounds).toBe('1');
    expect(edited.delta).toBe('1e-4');
    expect(Number(edited.noise_multiplier)).toBe(proposeDp(2, hospitals, { rounds: 1, delta: 1e-4 }).dp.noise_multiplier);
    const unknown = applyDpRecipe({ ...DEFAULT_RUN_FORM, noise_multiplier: '1.7' }, []);
    expect(unknown.noise_multiplier).toBe('1.7');
    expect(proposedSigma({ ...on, target_epsilon: 'x' }, hospitals)).toBeNull();
  });
});

describe('run configuration files in the run form (the same YAML as fedcare simulate|serve --config)', () => {
  it('imports examples/dp.yaml into the fields, keeps keys without a field in extra, and sends them', () => {
    const res = importRunConfig('dp.yaml', `${dpYaml}proximal_mu: 0.05\n`);
    if (!res.ok) throw new Error(res.message);
    expect(res.form).toMatchObject({ model: 'compact', rounds: '3', local_epochs: '10', batch_size: '128', learning_rate: '0.01', dp: true, noise_multiplier: '2.6', max_grad_norm: '1', target_epsilon: '5', delta: '0.00001' });
    expect(res.form.extra).toEqual({ proximal_mu: 0.05 });
    const sent = formToConfig(res.form);
    if (!sent.ok) throw new Error(sent.message);
    expect(sent.config).toMatchObject({ model: 'compact', proximal_mu: 0.05, dp: { noise_multiplier: 2.6, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 } });
    // keys the file leaves out keep the form's values
    const partial = importRunConfig('r.yaml', 'rounds: 9\n', { ...DEFAULT_RUN_FORM, seq_len: '14' });
    expect(partial.ok && partial.form).toMatchObject({ rounds: '9', seq_len: '14', dp: false });
  });

  it('export → import gives the same form and the same config; the YAML is what the CLI reads', () => {
    const imported = importRunConfig('dp.yaml', dpYaml);
    if (!imported.ok) throw new Error(imported.message);
    const out = exportRunConfig(imported.form, new Date('2026-12-08T00:00:00Z'));
    if (!out.ok) throw new Error(out.message);
    expect(out.yaml).toMatch(/^# fedcare run configuration, exported from the dashboard 2026-12-08T00:00:00\.000Z\n/);
    expect(out.yaml).toMatch(/\ndp:\n {2}noise_multiplier: 2\.6\n/);
    const back = importRunConfig('fedcare-run.yaml', out.yaml);
    if (!back.ok) throw new Error(back.message);
    expect(formToConfig(back.form)).toEqual(formToConfig(imported.form));
    expect(resolveRunConfig({ defaults: {}, file: parseRunConfigFile('fedcare-run.yaml', out.yaml) })).toMatchObject({ model: 'compact', rounds: 3 });
  });

  it('task tabular: the form sends task and tabular (target, min category count), exports them, and imports examples/tabular.yaml back', () => {
    const form = { ...DEFAULT_RUN_FORM, task: 'tabular', target: ' readmitted ', min_category_count: '3' };
    const sent = formToConfig(form);
    if (!sent.ok) throw new Error(sent.message);
    expect(sent.config).toMatchObject({ task: 'tabular', tabular: { target: 'readmitted', min_category_count: 3 } });
    expect(formToConfig({ ...form, target: '' })).toMatchObject({ ok: false, field: 'tabular.target' });
    expect(formToConfig({ ...form, min_category_count: '0' })).toMatchObject({ ok: false, field: 'tabular.min_category_count' });
    // a risk run sends neither key, whatever the hidden fields hold
    const risk = formToConfig({ ...form, task: 'risk' });
    expect(risk.ok && [risk.config.task, risk.config.tabular]).toEqual([undefined, undefined]);
    const out = exportRunConfig(form);
    if (!out.ok) throw new Error(out.message);
    expect(out.yaml).toMatch(/\ntask: tabular\ntabular:\n {2}target: readmitted\n {2}min_category_count: 3\n/);
    const back = importRunConfig('fedcare-run.yaml', out.yaml);
    if (!back.ok) throw new Error(back.message);
    expect(back.form).toMatchObject({ task: 'tabular', target: 'readmitted', min_category_count: '3', extra: {} });
    expect(formToConfig(back.form)).toEqual(sent);
    const example = importRunConfig('tabular.yaml', tabularYaml);
    expect(example.ok && example.form).toMatchObject({ task: 'tabular', target: 'readmitted', min_category_count: '5', learning_rate: '0.01', extra: { hidden_dim: 32 } });
  });

  it('refuses a bad file naming the key and its line, and leaves the form alone', () => {
    expect(importRunConfig('run.yaml', 'rounds: 3\nlocal_epochz: 2\n')).toEqual({ ok: false, message: 'invalid run configuration: run.yaml:2: local_epochz: not a run configuration key' });
    expect(importRunConfig('run.yaml', 'rounds: 3\ndp:\n  noise_multiplier: -1\n  max_grad_norm: 1\n  target_epsilon: 1\n  delta: 0.001\n')).toMatchObject({ ok: false, message: expect.stringMatching(/^invalid run configuration: run\.yaml:3: dp\.noise_multiplier: /) });
    expect(importRunConfig('run.json', '{"rounds": 3,')).toMatchObject({ ok: false, message: expect.stringMatching(/^run\.json:1:\d+: not valid YAML/) });
    expect(exportRunConfig({ ...DEFAULT_RUN_FORM, rounds: 'x' })).toEqual({ ok: false, message: 'rounds: expected a number' });
  });
});
