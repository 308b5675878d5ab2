/** `fedcare audit`: a one-run privacy audit and a membership-inference attack per target ε (../audit.ts). */
import { parseArgs } from 'node:util';
import { stringifyMetrics } from '@fedcare/shared/util';
import { runAudit, type AuditResult } from '../audit';
import { CliError } from '../io';
import { renderTable } from '../table';
import { initTf } from '../tf-node';

const HELP = `usage: fedcare audit [--epsilons 1,8,inf] [--canaries 1000] [--patients N] [--hospital H1] [--seed 1] [--json]

For each target ε ("inf": no noise) trains the DP recipe (compact model, lot 128, 10 local epochs,
3 rounds, σ from the planner) in a FedAvg federation of the generated hospitals H1–H3 (the spec
cohort unless --patients), with m canaries (synthetic out-of-distribution records, random classes)
each added to --hospital's training split with probability ½. From the final global model alone it
guesses the top and bottom 10 % of canaries by loss drop as in / out and reports the one-run audit's
ε lower bound at 95 % confidence (Steinke, Nasr & Jagielski 2023) beside the accountant's ε, and a
loss-threshold membership-inference attack's AUC on the hospital's real records. A lower bound above
the accountant's ε would mean a bug in DP-SGD or its accounting: the command then exits 1.`;

function parseEpsilons(raw: string): number[] {
  return raw.split(',').map((t) => {
    const s = t.trim().toLowerCase();
    if (s === 'inf' || s === '∞') return Number.POSITIVE_INFINITY;
    const v = Number(s);
    if (!(Number.isFinite(v) && v > 0)) throw new CliError(`--epsilons: "${t}" is not a positive number or inf`, 2);
    return v;
  });
}

function positiveInt(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!(Number.isInteger(v) && v > 0)) throw new CliError(`--${flag} must be a positive integer, got "${raw}"`, 2);
  return v;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      epsilons: { type: 'string', default: '1,8,inf' },
      canaries: { type: 'string' },
      patients: { type: 'string' },
      hospital: { type: 'string', default: 'H1' },
      seed: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const epsilons = parseEpsilons(values.epsilons);
  const canaries = positiveInt('canaries', values.canaries);
  if (canaries !== undefined && canaries < 10) throw new CliError(`--canaries must be at least 10, got ${canaries}`, 2);
  const patients = positiveInt('patients', values.patients);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new CliError(`--seed must be an integer, got "${values.seed}"`, 2);
  await initTf('wasm');
  const results: AuditResult[] = [];
  for (const e of epsilons) {
    const r = await runAudit({
      targetEpsilon: e,
      seed,
      hospital: values.hospital,
      ...(canaries ? { canaries } : {}),
      ...(patients ? { patients } : {}),
      onInfo: (m) => process.stderr.write(`${m}\n`),
    }).catch((err: unknown) => {
      throw new CliError((err as Error).message, 2);
    });
    results.push(r);
    if (values.json) process.stdout.write(`${stringifyMetrics({ audit: r })}\n`);
  }
  if (!values.json) {
    const f = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d));
    process.stdout.write(
      renderTable(
        ['target ε', 'ε spent (accountant)', 'σ', 'ε lower bound (audit, 95 %)', 'correct / guesses', 'canary AUC', 'MIA AUC', 'test AUC-ROC'],
        results.map((r) => [r.target_epsilon === null ? '∞' : String(r.target_epsilon), f(r.epsilon_spent), f(r.noise_multiplier), f(r.epsilon_lower_bound), `${r.correct} / ${r.guesses}`, f(r.canary_auc), f(r.mia_auc), f(r.test_auc_roc)]),
      ),
    );
  }
  const violated = results.filter((r) => r.epsilon_spent !== null && r.epsilon_lower_bound > r.epsilon_spent);
  for (const r of violated) process.stderr.write(`audit: the lower bound ${r.epsilon_lower_bound.toFixed(3)} exceeds the accountant's ε ${r.epsilon_spent!.toFixed(3)} at target ε ${r.target_epsilon}: DP-SGD or its accounting is broken\n`);
  return violated.length ? 1 : 0;
}
