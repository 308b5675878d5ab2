/**
 * `fedcare privacy plan`: before a run, what each hospital would spend. Reads a run configuration
 * (the JSON POST /api/v1/train/start takes, with `dp`), and each hospital's number of labelled
 * training examples — from its records (--data, the same split its client makes) or given
 * (--hospitals H1=720,H2=576).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HospitalClient } from '@fedcare/shared/fl';
import { planPrivacy } from '@fedcare/shared/privacy';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { CliError } from '../io';
import { loadRecords } from '../records-io';
import { renderTable } from '../table';

const HELP = `usage: fedcare privacy plan --config run.json (--data DIR | --hospitals H1=720,H2=576) [--json]

run.json is a run configuration as POST /api/v1/train/start takes it, with "dp": {noise_multiplier,
max_grad_norm, target_epsilon, delta}. Prints per hospital the sampling rate, steps, the ε the run
spends at that σ, the rounds it can train within the target, and the σ that would meet the target.
Exit code 1 when the plan has warnings (a hospital would stop early, δ ≥ 1/n, noise too large).`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string' },
      data: { type: 'string' },
      hospitals: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.config) throw new CliError('--config is required (a run configuration JSON file with "dp")', 2);
  if (!values.data === !values.hospitals) throw new CliError('give exactly one of --data DIR or --hospitals H1=N,…', 2);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(values.config, 'utf8'));
  } catch (e) {
    throw new CliError(`--config ${values.config}: ${(e as Error).message}`, 2);
  }
  const parsed = runConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new CliError(`--config ${values.config}: ${i?.path.join('.') || '(root)'}: ${i?.message}`, 2);
  }
  const config = parsed.data;
  if (!config.dp) throw new CliError(`--config ${values.config}: no "dp" section: the run is not private (ε = ∞)`, 2);
  let hospitals: { hospital_id: string; n: number }[];
  if (values.hospitals) {
    hospitals = values.hospitals.split(',').map((part) => {
      const m = /^\s*([A-Za-z][\w-]*)=(\d+)\s*$/.exec(part);
      if (!m) throw new CliError(`--hospitals: "${part}" is not H=N (a hospital and its number of labelled training examples)`, 2);
      return { hospital_id: m[1] as string, n: Number(m[2]) };
    });
  } else {
    const records = loadRecords(values.data as string);
    const ids = [...new Set(records.map((r) => r.hospital_id))].sort();
    hospitals = ids.map((h) => ({ hospital_id: h, n: new HospitalClient(h, records.filter((r) => r.hospital_id === h)).numTrainExamples }));
  }
  const plan = planPrivacy({ ...config, dp: config.dp }, hospitals);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(plan)}\n`);
  } else {
    process.stdout.write(
      `${config.rounds} rounds × ${config.local_epochs} local epoch(s), lot size ${config.batch_size}, σ ${config.dp.noise_multiplier}, target ε ${config.dp.target_epsilon}, δ ${config.dp.delta}\n\n`,
    );
    process.stdout.write(
      renderTable(
        ['hospital', 'n', 'q', 'steps/round', 'ε over the run', 'rounds in budget', 'σ for target'],
        plan.hospitals.map((h) => [h.hospital_id, String(h.n), h.sample_rate.toFixed(4), String(h.steps_per_round), h.epsilon_run.toFixed(3), String(h.rounds_affordable), h.noise_for_target === null ? 'out of reach' : h.noise_for_target.toFixed(3)]),
      ),
    );
    for (const w of plan.warnings) process.stdout.write(`warning: ${w}\n`);
    if (plan.ok) process.stdout.write('every hospital trains every round within its budget\n');
    const p = plan.proposal;
    if (p) {
      process.stdout.write(
        `proposed (the DP recipe for ε ${p.dp.target_epsilon}): model ${p.model}, ${p.rounds} rounds × ${p.local_epochs} local epochs, lot size ${p.batch_size}, ` +
          `learning rate ${p.learning_rate}, C ${p.dp.max_grad_norm}, σ ${p.dp.noise_multiplier} — in a run config: ${JSON.stringify(p)}\n`,
      );
    }
  }
  return plan.ok ? 0 : 1;
}
