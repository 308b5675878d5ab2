// Run config `task_weights` (multi-task heads): absent by default, round-trips through the schema, a
// YAML file and --set, travels in instructions, and is refused with DP by name.
import { describe, expect, it } from 'vitest';
import { modelOptionsOf } from '../model/classifier';
import { instructionSchema, runConfigSchema } from './messages';
import { parseRunConfigFile, resolveRunConfig, runConfigToYaml } from './run-config-file';

const WEIGHTS = { readmission_30d: 0.5, days_to_readmission: 1.5 };
const SHA = 'a'.repeat(64);

describe('run config task_weights', () => {
  it('is absent by default: the model options (and so the model and its bytes) are the single-task ones', () => {
    const c = runConfigSchema.parse({});
    expect(c.task_weights).toBeUndefined();
    expect(modelOptionsOf(c)).toBeUndefined();
  });

  it('round-trips: schema → YAML file → schema, and through dotted --set', () => {
    const c = runConfigSchema.parse({ rounds: 3, task_weights: WEIGHTS });
    expect(c.task_weights).toEqual(WEIGHTS);
    const yaml = runConfigToYaml(c);
    expect(yaml).toMatch(/task_weights:\n {2}readmission_30d: 0.5\n {2}days_to_readmission: 1.5\n/);
    const back = resolveRunConfig({ defaults: {}, file: parseRunConfigFile('run.yaml', yaml) });
    expect(back).toEqual(c);
    const set = resolveRunConfig({ defaults: {}, sets: ['task_weights.readmission_30d=0.5', 'task_weights.days_to_readmission=1.5'] });
    expect(set.task_weights).toEqual(WEIGHTS);
    expect(modelOptionsOf(set)).toEqual({ task_weights: WEIGHTS });
  });

  it('travels in train and evaluate instructions (model_options)', () => {
    const weights = new Uint8Array(8);
    const train = { run_id: 'run-20260101000000-abcdef01', round: 1, stage: 'train', config: { local_epochs: 1, batch_size: 8, learning_rate: 1e-3, proximal_mu: 0, seq_len: 8, seed: 1, model_options: { task_weights: WEIGHTS } }, weights, weights_sha256: SHA };
    expect(instructionSchema.parse(train)).toMatchObject({ config: { model_options: { task_weights: WEIGHTS } } });
    const evaluate = { run_id: 'run-20260101000000-abcdef01', round: 1, stage: 'evaluate', weights, weights_sha256: SHA, model_options: { task_weights: WEIGHTS } };
    expect(instructionSchema.parse(evaluate)).toMatchObject({ model_options: { task_weights: WEIGHTS } });
  });

  it.each([
    { name: 'with dp', config: { task_weights: WEIGHTS, dp: { noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 } }, error: /task_weights: task_weights \(multi-task heads\) cannot be combined with dp/ },
    { name: 'with task tabular', config: { task_weights: WEIGHTS, task: 'tabular', tabular: { target: 'y' } }, error: /task_weights: task_weights adds heads to the risk model/ },
    { name: 'a negative weight', config: { task_weights: { ...WEIGHTS, days_to_readmission: -1 } }, error: /task_weights\.days_to_readmission: / },
    { name: 'a missing weight', config: { task_weights: { readmission_30d: 1 } }, error: /task_weights\.days_to_readmission: / },
    { name: 'an unknown task', config: { task_weights: { ...WEIGHTS, adverse_event: 1 } }, error: /task_weights\.adverse_event: not a run configuration key/ },
  ])('refuses $name, naming the key', ({ config, error }) => {
    expect(() => resolveRunConfig({ defaults: {}, file: parseRunConfigFile('run.yaml', JSON.stringify(config)) })).toThrow(error);
  });
});
