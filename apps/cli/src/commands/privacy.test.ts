// `fedcare privacy` as a user runs it: the real binary, one process per call.
import { spawnSync } from 'node:child_process';
import { DP_SGD_ORDERS, epsilonFor, noiseForEpsilon, stepsForBudget } from '@fedcare/shared/privacy';
import { describe, expect, it } from 'vitest';
import { BIN } from '../testing-processes';

function fedcare(...args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('fedcare privacy epsilon', () => {
  it('--json prints exactly {"epsilon":…,"alpha":…} on one line (Opacus accountant test: ε 7.32911117143)', () => {
    const r = fedcare('privacy', 'epsilon', '--sample-rate', '0.04', '--noise-multiplier', '1.5', '--steps', '2250', '--delta', '1e-5', '--orders', 'opacus', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\{"epsilon":[-+.e\d]+,"alpha":[.\d]+\}\n$/);
    const out = JSON.parse(r.stdout) as { epsilon: number; alpha: number };
    expect(Object.keys(out)).toEqual(['epsilon', 'alpha']);
    expect(Math.abs(out.epsilon - 7.32911117143) / 7.32911117143).toBeLessThan(1e-6);
    expect(out.alpha).toBe(3.9);
  });

  it('prints ε and the best α on one line; takes --sample-rate as a fraction and --conversion classic', () => {
    const r = fedcare('privacy', 'epsilon', '--sample-rate', '256/60000', '--noise-multiplier', '1.1', '--steps', '14062', '--delta', '1e-5', '--conversion', 'classic', '--orders', 'opacus');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ε = 3\.008\d* \(best α = 8\.8; δ = 0\.00001, classic conversion\)\n$/);
  });
});

describe('fedcare privacy: the orders', () => {
  it('by default charges at DP-SGD’s integer orders (the discrete Gaussian): ε ≥ the Opacus orders’ ε, best α an integer', () => {
    const args = ['privacy', 'epsilon', '--sample-rate', '0.04', '--noise-multiplier', '1.5', '--steps', '2250', '--delta', '1e-5', '--json'];
    const dp = JSON.parse(fedcare(...args).stdout) as { epsilon: number; alpha: number };
    const op = JSON.parse(fedcare(...args, '--orders', 'opacus').stdout) as { epsilon: number; alpha: number };
    expect(dp.epsilon).toBe(epsilonFor({ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250, delta: 1e-5, orders: DP_SGD_ORDERS }).epsilon);
    expect(Number.isInteger(dp.alpha)).toBe(true);
    expect(dp.epsilon).toBeGreaterThan(op.epsilon);
    // α 3.9 is Opacus's best; the integer neighbours cost little (< 2 %)
    expect(dp.epsilon / op.epsilon).toBeLessThan(1.02);
    const bad = fedcare('privacy', 'epsilon', '--sample-rate', '0.04', '--noise-multiplier', '1.5', '--steps', '2250', '--delta', '1e-5', '--orders', 'tf');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--orders must be dp-sgd or opacus (got "tf")');
  });
});

describe('fedcare privacy noise', () => {
  it('--json prints {"noise_multiplier":…}: Opacus’s σ 1.3562 for ε 8, q 0.04, 2000 steps', () => {
    const r = fedcare('privacy', 'noise', '--target-epsilon', '8', '--sample-rate', '0.04', '--steps', '2000', '--delta', '1e-5', '--orders', 'opacus', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\{"noise_multiplier":[.\d]+\}\n$/);
    const { noise_multiplier: sigma } = JSON.parse(r.stdout) as { noise_multiplier: number };
    expect(sigma).toBe(noiseForEpsilon({ targetEpsilon: 8, sampleRate: 0.04, steps: 2000, delta: 1e-5 }));
    expect(sigma).toBeCloseTo(1.3562, 4);
  });

  it('prints σ and the ε it gives', () => {
    const r = fedcare('privacy', 'noise', '--target-epsilon', '3', '--sample-rate', '0.01', '--steps', '1000', '--delta', '1e-5', '--orders', 'opacus');
    expect(r.code, r.stderr).toBe(0);
    const m = /^σ = ([.\d]+) \(ε = ([.\d]+) ≤ 3 over 1000 steps; δ = 0\.00001, opacus conversion\)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const eps = epsilonFor({ sampleRate: 0.01, noiseMultiplier: Number(m?.[1]), steps: 1000, delta: 1e-5 }).epsilon;
    expect(eps).toBeLessThanOrEqual(3);
    expect(eps).toBeGreaterThanOrEqual(2.99);
  });
});

describe('fedcare privacy steps', () => {
  it('--json prints {"steps":…}, the largest count within the budget', () => {
    const r = fedcare('privacy', 'steps', '--target-epsilon', '3', '--sample-rate', '0.01', '--noise-multiplier', '1', '--delta', '1e-5', '--orders', 'opacus', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\{"steps":\d+\}\n$/);
    expect(JSON.parse(r.stdout)).toEqual({ steps: stepsForBudget({ targetEpsilon: 3, sampleRate: 0.01, noiseMultiplier: 1, delta: 1e-5 }) });
  });

  it('says when not even one step fits', () => {
    const r = fedcare('privacy', 'steps', '--target-epsilon', '0.1', '--sample-rate', '0.5', '--noise-multiplier', '0.5', '--delta', '1e-5');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^0 steps \(even one step exceeds it/);
  });
});

describe('fedcare privacy refuses bad input with the flag named', () => {
  const eps = ['epsilon', '--sample-rate', '0.01', '--noise-multiplier', '1', '--steps', '100', '--delta', '1e-5'];
  const edit = (flag: string, value: string) => eps.map((a, i) => (eps[i - 1] === flag ? value : a));
  it.each([
    { name: 'a missing flag', args: ['epsilon', '--sample-rate', '0.01', '--delta', '1e-5'], error: 'missing --noise-multiplier, --steps' },
    { name: 'not a number', args: edit('--sample-rate', 'abc'), error: '--sample-rate: "abc" is not a number' },
    { name: 'division by zero', args: edit('--sample-rate', '1/0'), error: '--sample-rate: "1/0" divides by zero' },
    { name: 'q outside (0, 1]', args: edit('--sample-rate', '1.5'), error: '--sample-rate must be in (0, 1] (got 1.5)' },
    { name: 'σ ≤ 0', args: edit('--noise-multiplier', '0'), error: '--noise-multiplier must be > 0 and finite (got 0)' },
    { name: 'fractional steps', args: edit('--steps', '2.5'), error: '--steps must be a positive integer (got 2.5)' },
    { name: 'δ ≥ 1', args: edit('--delta', '1'), error: '--delta must be in (0, 1) (got 1)' },
    { name: 'target ε ≤ 0', args: ['noise', '--target-epsilon', '0', '--sample-rate', '0.01', '--steps', '10', '--delta', '1e-5'], error: '--target-epsilon must be > 0 and finite (got 0)' },
    {
      name: 'an unreachable target',
      args: ['noise', '--target-epsilon', '0.01', '--sample-rate', '0.01', '--steps', '10', '--delta', '1e-5'],
      error: '--target-epsilon must be reachable with a noise multiplier <= 10000',
    },
    { name: 'a flag of another action', args: [...eps, '--target-epsilon', '3'], error: '--target-epsilon is not an option of `privacy epsilon`' },
    { name: 'an unknown conversion', args: [...eps, '--conversion', 'foo'], error: '--conversion must be one of opacus, classic (got "foo")' },
    { name: 'an unknown action', args: ['budget'], error: 'unknown action "budget" (epsilon, noise, steps)' },
    { name: 'an unknown flag', args: [...eps, '--sampel-rate', '1'], error: "Unknown option '--sampel-rate'" },
  ])('$name → exit 2', ({ args, error }) => {
    const r = fedcare('privacy', ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`fedcare privacy: ${error}`);
  });

  it('is listed in fedcare --help', () => {
    expect(fedcare('--help').stdout).toMatch(/privacy +ε for a DP-SGD schedule/);
  });
});
