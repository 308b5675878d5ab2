// `fedcare privacy plan` as a user runs it: a run configuration file, the hospitals' sizes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateHospital } from '@fedcare/shared/data';
import { HospitalClient } from '@fedcare/shared/fl';
import { planPrivacy } from '@fedcare/shared/privacy';
import { BIN } from '../testing-processes';
import { generateToDir } from './generate';

function fedcare(...args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const dir = mkdtempSync(path.join(tmpdir(), 'fc-plan-'));
function configFile(name: string, config: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}
const SEED = { rounds: 50, local_epochs: 5, batch_size: 32, dp: { noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 1, delta: 1e-5 } };

describe('fedcare privacy plan', () => {
  it('--json prints the planner’s result for the given sizes; warnings give exit code 1', () => {
    const r = fedcare('privacy', 'plan', '--config', configFile('seed.json', SEED), '--hospitals', 'H1=720,H2=576', '--json');
    expect(r.code, r.stderr).toBe(1);
    const plan = JSON.parse(r.stdout) as ReturnType<typeof planPrivacy>;
    expect(plan).toEqual(JSON.parse(JSON.stringify(planPrivacy({ ...SEED }, [{ hospital_id: 'H1', n: 720 }, { hospital_id: 'H2', n: 576 }]))));
    expect(plan.ok).toBe(false);
  });

  it('reads the sizes from the records (the split the clients make) and prints a table; a plan within budget exits 0', () => {
    generateToDir(['H1', 'H2'], 3, dir, 200);
    const ok = { ...SEED, rounds: 2, local_epochs: 1, dp: { ...SEED.dp, target_epsilon: 50, delta: 1e-3 } };
    const r = fedcare('privacy', 'plan', '--config', configFile('ok.json', ok), '--data', dir);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const h of ['H1', 'H2']) {
      const n = new HospitalClient(h, generateHospital(h, { seed: 3, patients: 200 }).records).numTrainExamples;
      expect(r.stdout).toMatch(new RegExp(`^${h}\\s+${n}\\s`, 'm'));
    }
    expect(r.stdout).toContain('every hospital trains every round within its budget');
  });

  it('refuses a configuration without dp, an invalid one, and malformed --hospitals, naming what is wrong', () => {
    const noDp = fedcare('privacy', 'plan', '--config', configFile('nodp.json', { rounds: 3 }), '--hospitals', 'H1=10');
    expect(noDp.code).toBe(2);
    expect(noDp.stderr).toMatch(/no "dp" section: the run is not private/);
    const bad = fedcare('privacy', 'plan', '--config', configFile('bad.json', { ...SEED, dp: { ...SEED.dp, noise_multiplier: 0 } }), '--hospitals', 'H1=10');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/dp\.noise_multiplier: noise_multiplier must be > 0/);
    const hosp = fedcare('privacy', 'plan', '--config', configFile('seed2.json', SEED), '--hospitals', 'H1:10');
    expect(hosp.code).toBe(2);
    expect(hosp.stderr).toMatch(/--hospitals: "H1:10" is not H=N/);
  });
});
