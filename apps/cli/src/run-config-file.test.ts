import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { describe, expect, it } from 'vitest';
import { parseSet, readRunConfigFile, resolveRunConfig } from './run-config-file';
import { generateToDir } from './commands/generate';
import { givenOptions, runConfigFromOptions, SIMULATE_OPTIONS, withConfigTask } from './commands/simulate';
import { fedcareProcess } from './testing-processes';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');
const defaults = { rounds: 5, strategy: 'fedavg', model: 'standard', min_fit_clients: 3 } as const;
const file = (text: string) => readRunConfigFile('run.yaml', text);

describe('run configuration files (--config, --set)', () => {
  it('every example in examples/ is a valid run configuration that says what its name says', () => {
    const names = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
    expect(names).toEqual(['dp.yaml', 'he.yaml', 'secagg.yaml', 'spec-defaults.yaml', 'tabular.yaml']);
    const got = Object.fromEntries(names.map((n) => [n, resolveRunConfig({ defaults: {}, file: readRunConfigFile(n, readFileSync(path.join(EXAMPLES, n), 'utf8')) })]));
    expect(got['spec-defaults.yaml']).toMatchObject({ model: 'standard', rounds: 5, local_epochs: 1, secure_aggregation: 'none' });
    expect(got['spec-defaults.yaml']!.dp).toBeUndefined();
    expect(got['dp.yaml']).toMatchObject({ model: 'compact', dp: { noise_multiplier: 2.6, max_grad_norm: 1, target_epsilon: 5, delta: 1e-5 } });
    expect(got['secagg.yaml']).toMatchObject({ secure_aggregation: 'secagg' });
    expect(got['he.yaml']).toMatchObject({ secure_aggregation: 'he', strategy: 'fedprox' });
    expect(got['tabular.yaml']).toMatchObject({ task: 'tabular', tabular: { target: 'readmitted', min_category_count: 5 }, hidden_dim: 32 });
    // the same object the REST route would accept
    for (const c of Object.values(got)) expect(runConfigSchema.safeParse(c).success).toBe(true);
  });

  it('precedence: flags > --set > the file > the defaults', () => {
    const f = file('rounds: 7\nlearning_rate: 0.01\n');
    expect(resolveRunConfig({ defaults }).rounds).toBe(5);
    expect(resolveRunConfig({ defaults, file: f }).rounds).toBe(7);
    expect(resolveRunConfig({ defaults, file: f, sets: ['rounds=8'] }).rounds).toBe(8);
    expect(resolveRunConfig({ defaults, file: f, sets: ['rounds=8'], flags: { rounds: { value: 9, flag: '--rounds' } } }).rounds).toBe(9);
    // what no layer names keeps the lower layer's value
    expect(resolveRunConfig({ defaults, file: f, sets: ['rounds=8'] }).learning_rate).toBe(0.01);
    // dotted --set reaches into dp; the file's other dp keys stay
    const dp = file('dp:\n  noise_multiplier: 1\n  max_grad_norm: 1\n  target_epsilon: 3\n  delta: 1.0e-5\n');
    expect(resolveRunConfig({ defaults, file: dp, sets: ['dp.noise_multiplier=1.5'] }).dp).toEqual({ noise_multiplier: 1.5, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 });
  });

  it('errors name the key and where it came from: the file\'s line, the --set, the flag', () => {
    const bad = (l: Parameters<typeof resolveRunConfig>[0]) => {
      try {
        resolveRunConfig(l);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad({ defaults, file: file('rounds: 3\n# a comment\n\nroundz: 4\n') })).toBe('invalid run configuration: run.yaml:4: roundz: not a run configuration key');
    expect(bad({ defaults, file: file('strategy: fedavg\nrounds: 0\n') })).toMatch(/^invalid run configuration: run\.yaml:2: rounds: Too small/);
    expect(bad({ defaults, file: file('dp:\n  noise_multiplier: 1\n') })).toMatch(/^invalid run configuration: run\.yaml:1: dp\.max_grad_norm: /);
    expect(bad({ defaults, file: file('dp:\n  noise_multiplier: 1\n  max_grad_norm: 1\n  target_epsilon: 3\n  delta: 2\n') })).toMatch(/^invalid run configuration: run\.yaml:5: dp\.delta: delta must be < 1/);
    expect(bad({ defaults, sets: ['local_epochs=0'] })).toMatch(/^invalid run configuration: --set local_epochs: Too small/);
    expect(bad({ defaults, file: file('rounds: 3\n'), sets: ['secure_aggregation=yes'] })).toMatch(/^invalid run configuration: --set secure_aggregation: Invalid option/);
    expect(bad({ defaults, file: file('rounds: 3\n'), flags: { rounds: { value: 0, flag: '--rounds' } } })).toMatch(/^invalid run configuration: --rounds \(rounds\): Too small/);
    // a model that cannot be built is refused by name, not left to fail the run later
    expect(bad({ defaults, file: file('rounds: 3\nhidden_dim: 20\n') })).toBe('invalid run configuration: run.yaml:2: hidden_dim: the standard model cannot take it: classifier config: fusion width 148 is not divisible by 8 attention heads');
    expect(resolveRunConfig({ defaults, file: file('model: compact\nhidden_dim: 20\n') }).hidden_dim).toBe(20);
    // a rule across keys names the key it is about
    expect(bad({ defaults, file: file('strategy: krum\nsecure_aggregation: secagg\n') })).toMatch(/^invalid run configuration: run\.yaml:2: secure_aggregation: strategy krum needs every update in the clear/);
  });

  it('refuses what is not a run configuration file, naming the line', () => {
    expect(() => file('rounds: [1\n')).toThrow(/^run\.yaml:\d+:\d+: not valid YAML/);
    expect(() => file('rounds: 1\nrounds: 2\n')).toThrow(/^run\.yaml:2:\d+: not valid YAML: Map keys must be unique/);
    expect(() => file('- rounds\n')).toThrow(/a run configuration is a mapping of keys/);
    expect(() => file('')).toThrow(/not empty|mapping/);
    expect(() => parseSet('rounds')).toThrow(/expected key=value/);
    expect(() => parseSet('Rounds=3')).toThrow(/is not a run configuration key/);
    expect(() => parseSet('dp={noise_multiplier: 1}')).toThrow(/one value per --set/);
    expect(parseSet('learning_rate=1e-3')).toEqual({ path: ['learning_rate'], value: 0.001 });
    expect(parseSet('strategy=fedprox')).toEqual({ path: ['strategy'], value: 'fedprox' });
  });

  it('fedcare simulate --config with task: tabular reads --csv as --task tabular --target does; flags > --set > the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-config-tab-'));
    const yaml = path.join(dir, 'run.yaml');
    writeFileSync(yaml, 'task: tabular\ntabular:\n  target: readmitted\n  min_category_count: 3\nrounds: 2\n');
    const resolve = (...argv: string[]) => {
      const { values, tokens } = parseArgs({ args: ['--csv', 'x.csv', ...argv], strict: true, options: SIMULATE_OPTIONS, tokens: true });
      const given = givenOptions(tokens);
      const v = withConfigTask(values, given);
      return { values: v, config: runConfigFromOptions(v, 3, [], given) };
    };
    const plain = resolve('--config', yaml);
    expect(plain.values).toMatchObject({ task: 'tabular', target: 'readmitted', 'min-category-count': '3' });
    expect(plain.config).toMatchObject({ task: 'tabular', tabular: { target: 'readmitted', min_category_count: 3 }, rounds: 2, learning_rate: 0.01 });
    expect(resolve('--config', yaml, '--set', 'tabular.target=ward').config.tabular).toEqual({ target: 'ward', min_category_count: 3 });
    // a flag keeps the file's other tabular key
    expect(resolve('--config', yaml, '--set', 'tabular.target=ward', '--target', 'sex').config.tabular).toEqual({ target: 'sex', min_category_count: 3 });
    expect(resolve('--config', yaml, '--min-category-count', '9').config.tabular).toEqual({ target: 'readmitted', min_category_count: 9 });
    expect(resolve('--set', 'task=tabular', '--set', 'tabular.target=age').config).toMatchObject({ task: 'tabular', tabular: { target: 'age', min_category_count: 5 } });
    // --task risk on the command line wins over the file
    expect(resolve('--config', yaml, '--task', 'risk').values.task).toBe('risk');
    expect(resolve('--config', path.join(EXAMPLES, 'tabular.yaml')).values).toMatchObject({ task: 'tabular', target: 'readmitted' });
  });

  it('fedcare simulate --config: a bad key fails before anything starts, exit 2, naming the key and line', async () => {
    const data = mkdtempSync(path.join(tmpdir(), 'fc-config-'));
    generateToDir(['H1', 'H2', 'H3'], 3, data, 20);
    const p = fedcareProcess(['simulate', '--data', data, '--config', path.join(EXAMPLES, 'dp.yaml'), '--set', 'dp.target_epsilon=-1']);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/invalid run configuration: --set dp\.target_epsilon: /);
  });
});
