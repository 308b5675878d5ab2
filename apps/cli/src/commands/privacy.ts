/** `fedcare privacy epsilon|noise|steps|plan`: the RDP accountant of DP-SGD from the command line. */
import { parseArgs } from 'node:util';
import { CONVERSIONS, DEFAULT_ORDERS, DP_SGD_ORDERS, epsilonFor, noiseForEpsilon, PrivacyParameterError, stepsForBudget, type Conversion } from '@fedcare/shared/privacy';
import { CliError } from '../io';

const HELP = `usage: fedcare privacy epsilon --sample-rate Q --noise-multiplier S --steps T --delta D [--conversion opacus|classic] [--orders dp-sgd|opacus] [--json]
       fedcare privacy noise --target-epsilon E --sample-rate Q --steps T --delta D [--conversion …] [--json]
       fedcare privacy steps --target-epsilon E --sample-rate Q --noise-multiplier S --delta D [--conversion …] [--json]
       fedcare privacy plan --config run.json (--data DIR | --hospitals H1=720,H2=576) [--json]

epsilon  ε spent by T DP-SGD steps at sampling rate Q (e.g. 256/60000) with noise multiplier S, for δ = D
noise    the noise multiplier σ that keeps T steps within ε = E
steps    the most steps that stay within ε = E
plan     per hospital, what a run configuration will spend (see fedcare privacy plan --help)

RDP accountant of the sampled Gaussian mechanism (Mironov et al. 2019). --orders dp-sgd (default) uses
the integer orders 2…63 at which fedcare's hospitals charge their discrete Gaussian DP-SGD (the bound
holds for it there); --orders opacus uses Opacus's orders 1.1…63, for the continuous Gaussian.
--conversion opacus (default) is Opacus's RDP → (ε, δ) conversion (Balle et al. 2020); classic is
ε = RDP − log δ/(α − 1), as in TF Privacy before 2020.`;

/** The flags each action needs; every action also takes --conversion and --json. */
const ACTIONS = {
  epsilon: ['sample-rate', 'noise-multiplier', 'steps', 'delta'],
  noise: ['target-epsilon', 'sample-rate', 'steps', 'delta'],
  steps: ['target-epsilon', 'sample-rate', 'noise-multiplier', 'delta'],
} as const;
type Action = keyof typeof ACTIONS;
type NumberFlag = (typeof ACTIONS)[Action][number];

/** The shared library names parameters as in code; a user typed flags. */
const FLAG_OF: Record<string, string> = {
  sampleRate: '--sample-rate',
  noiseMultiplier: '--noise-multiplier',
  steps: '--steps',
  delta: '--delta',
  targetEpsilon: '--target-epsilon',
  conversion: '--conversion',
};

/** A number as typed: decimal or exponent notation, or a fraction A/B (for --sample-rate 256/60000). */
function parseNumber(flag: string, text: string): number {
  const parts = text.split('/');
  const nums = parts.map((p) => (p.trim() === '' ? Number.NaN : Number(p)));
  if (parts.length > 2 || nums.some((n) => !Number.isFinite(n))) throw new CliError(`--${flag}: "${text}" is not a number`, 2);
  const [a, b] = nums as [number, number?];
  if (b === undefined) return a;
  if (b === 0) throw new CliError(`--${flag}: "${text}" divides by zero`, 2);
  return a / b;
}

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'plan') return (await import('./privacy-plan')).run(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      'sample-rate': { type: 'string' },
      'noise-multiplier': { type: 'string' },
      steps: { type: 'string' },
      delta: { type: 'string' },
      'target-epsilon': { type: 'string' },
      conversion: { type: 'string', default: 'opacus' },
      orders: { type: 'string', default: 'dp-sgd' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [action, ...extra] = positionals;
  if (values.help || !action) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  if (!Object.hasOwn(ACTIONS, action)) throw new CliError(`unknown action "${action}" (${Object.keys(ACTIONS).join(', ')})`, 2);
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}"`, 2);
  const needed: readonly NumberFlag[] = ACTIONS[action as Action];
  const allFlags = new Set<NumberFlag>(Object.values(ACTIONS).flat());
  for (const flag of allFlags) {
    if (!needed.includes(flag) && values[flag] !== undefined) throw new CliError(`--${flag} is not an option of \`privacy ${action}\` (it takes --${needed.join(', --')})`, 2);
  }
  const missing = needed.filter((flag) => values[flag] === undefined);
  if (missing.length) throw new CliError(`missing ${missing.map((f) => `--${f}`).join(', ')} (see fedcare privacy --help)`, 2);
  const num = (flag: NumberFlag) => parseNumber(flag, values[flag] as string);
  const conversion = values.conversion as Conversion;
  if (values.orders !== 'dp-sgd' && values.orders !== 'opacus') throw new CliError(`--orders must be dp-sgd or opacus (got "${values.orders}")`, 2);
  const orders = values.orders === 'opacus' ? DEFAULT_ORDERS : DP_SGD_ORDERS;
  if (!CONVERSIONS.includes(conversion)) throw new CliError(`--conversion must be one of ${CONVERSIONS.join(', ')} (got "${values.conversion}")`, 2);

  try {
    if (action === 'epsilon') {
      const args = { sampleRate: num('sample-rate'), noiseMultiplier: num('noise-multiplier'), steps: num('steps'), delta: num('delta'), conversion, orders };
      const { epsilon, alpha } = epsilonFor(args);
      if (values.json) process.stdout.write(`${JSON.stringify({ epsilon, alpha })}\n`);
      else process.stdout.write(`ε = ${format(epsilon)} (best α = ${alpha}; δ = ${args.delta}, ${conversion} conversion)\n`);
    } else if (action === 'noise') {
      const args = { targetEpsilon: num('target-epsilon'), sampleRate: num('sample-rate'), steps: num('steps'), delta: num('delta'), conversion, orders };
      const sigma = noiseForEpsilon(args);
      if (values.json) process.stdout.write(`${JSON.stringify({ noise_multiplier: sigma })}\n`);
      else {
        const { epsilon } = epsilonFor({ ...args, noiseMultiplier: sigma });
        process.stdout.write(`σ = ${format(sigma)} (ε = ${format(epsilon)} ≤ ${args.targetEpsilon} over ${args.steps} steps; δ = ${args.delta}, ${conversion} conversion)\n`);
      }
    } else {
      const args = { targetEpsilon: num('target-epsilon'), sampleRate: num('sample-rate'), noiseMultiplier: num('noise-multiplier'), delta: num('delta'), conversion, orders };
      const steps = stepsForBudget(args);
      if (values.json) process.stdout.write(`${JSON.stringify({ steps })}\n`);
      else {
        const spent = steps > 0 ? `ε = ${format(epsilonFor({ ...args, steps }).epsilon)}` : 'even one step exceeds it';
        process.stdout.write(`${steps} steps (${spent}, budget ε ≤ ${args.targetEpsilon}; δ = ${args.delta}, ${conversion} conversion)\n`);
      }
    }
    return 0;
  } catch (e) {
    // A value out of its domain: name the flag the user typed, keep the library's rule.
    if (e instanceof PrivacyParameterError) throw new CliError(`${FLAG_OF[e.parameter] ?? e.parameter} must ${e.rule} (got ${String(e.value)})`, 2);
    throw e;
  }
}

/** 8 significant digits: enough to tell ε = 2.9999982 from a target of 3. */
function format(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(8))) : String(x);
}
