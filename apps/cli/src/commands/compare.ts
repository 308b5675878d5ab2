/**
 * `fedcare compare`: the question an ML engineer asks before a federation goes live — which
 * strategy, at which privacy budget? — answered on this machine. One `fedcare simulate` per variant
 * (strategies × target ε), the same data, seeds and settings otherwise, run one after another; then
 * a table ranked by the final model's pooled test AUC-ROC, and an SVG with the variants overlaid
 * round by round (AUC-ROC, test loss, ε spent, upload per hospital).
 */
import { parseArgs } from 'node:util';
import type { RoundReport } from '@fedcare/shared/fl';
import { STRATEGY_NAMES, type RunConfig } from '@fedcare/shared/protocol';
import { stringifyMetrics } from '@fedcare/shared/util';
import { CliError, writeFileAtomic } from '../io';
import { renderChart } from '@fedcare/shared/report';
import { ProgressBar } from '../progress';
import { renderTable } from '../table';
import { DP_RECIPE } from '@fedcare/shared/privacy';
import { roundLine, runConfigFromOptions, runSimulation, SIMULATE_OPTIONS, simulationInputs, trainExamplesOf, type SimulationResult } from './simulate';

const HELP = `usage: fedcare compare --data DIR --strategies fedavg,fedprox,fedadam [--target-epsilons 1,5,inf]
         [--plot compare.svg] [--json] [every fedcare simulate option: --rounds, --local-epochs, --seed,
         --noise-multiplier, --delta, --secure-aggregation, --fault, --db …]

Runs one simulation per variant — each strategy in --strategies (default: --strategy) at each
target ε in --target-epsilons (DP-SGD with that budget; "inf" trains without DP; default: as
--dp/--target-epsilon say) — with the same data, seeds and other settings, one after another.
Prints a table ranked by the final model's pooled test AUC-ROC (with the ε spent and the upload
per hospital and round); --plot overlays the variants round by round; --json prints one line per
variant, then {"comparison": rows}. With --db every run lands in one database (the dashboard's run
history shows them side by side). When any variant is private, every variant (∞ too) trains the DP
recipe where no flag says otherwise (--model compact --rounds 3 --local-epochs 10 --batch-size 128
--lr 0.01; σ per target from the planner), so the variants differ only in strategy and ε.`;

export interface Variant {
  name: string;
  strategy: RunConfig['strategy'];
  /** Target ε; null: no differential privacy; undefined: as the simulate options say. */
  targetEpsilon: number | null | undefined;
}

/** Strategies × target ε, validated before anything runs; errors name the bad item. */
export function parseVariants(strategies: string, epsilons: string | undefined): Variant[] {
  const names = strategies.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of names) if (!(STRATEGY_NAMES as readonly string[]).includes(s)) throw new CliError(`--strategies: unknown strategy "${s}" (known: ${STRATEGY_NAMES.join(', ')})`, 2);
  if (new Set(names).size !== names.length) throw new CliError('--strategies: a strategy is listed twice', 2);
  const eps: (number | null | undefined)[] =
    epsilons === undefined
      ? [undefined]
      : epsilons.split(',').map((raw) => {
          const e = raw.trim();
          if (e === 'inf' || e === '∞') return null;
          const v = Number(e);
          if (e === '' || !Number.isFinite(v) || v <= 0) throw new CliError(`--target-epsilons: "${e}" is not a positive number or inf`, 2);
          return v;
        });
  const variants = names.flatMap((strategy) =>
    eps.map((targetEpsilon) => ({
      strategy: strategy as RunConfig['strategy'],
      targetEpsilon,
      name: targetEpsilon === undefined ? strategy : `${strategy} ε=${targetEpsilon === null ? '∞' : targetEpsilon}`,
    })),
  );
  if (new Set(variants.map((v) => v.name)).size !== variants.length) throw new CliError('--target-epsilons: a budget is listed twice', 2);
  if (variants.length < 2) throw new CliError('nothing to compare: give at least two strategies or two target ε', 2);
  return variants;
}

export interface ComparisonRow {
  variant: string;
  strategy: string;
  target_epsilon: number | null;
  status: string;
  /** Why the run ended early (privacy budgets spent, too few hospitals), when it did. */
  reason?: string;
  rounds: number;
  auc_roc: number;
  auc_pr: number;
  f1_score: number;
  test_accuracy: number;
  /** Largest ε any hospital spent (null without DP). */
  epsilon_spent: number | null;
  /** Mean bytes a hospital uploaded per round. */
  upload_bytes_per_hospital_round: number;
  seconds: number;
}

/** One row per variant, best pooled test AUC-ROC first (a failed run, with no model, last). */
export function comparisonRows(results: { variant: Variant; config: RunConfig; result: SimulationResult; seconds: number }[]): ComparisonRow[] {
  const rows = results.map(({ variant, config, result, seconds }) => {
    const test = (result.summary.test ?? {}) as Record<string, number>;
    const ups = result.rounds.flatMap((r) => Object.values(r.bytes).map((b) => b.up));
    const eps = result.rounds.at(-1)?.metrics.privacy_epsilon;
    return {
      variant: variant.name,
      strategy: config.strategy,
      target_epsilon: config.dp ? config.dp.target_epsilon : null,
      status: result.summary.status,
      ...(typeof result.summary.reason === 'string' ? { reason: result.summary.reason } : {}),
      rounds: result.rounds.length,
      auc_roc: test.auc_roc ?? Number.NaN,
      auc_pr: test.auc_pr ?? Number.NaN,
      f1_score: test.f1_score ?? Number.NaN,
      test_accuracy: test.test_accuracy ?? Number.NaN,
      epsilon_spent: config.dp && eps !== undefined && Number.isFinite(eps) ? eps : null,
      upload_bytes_per_hospital_round: ups.length ? ups.reduce((a, b) => a + b, 0) / ups.length : 0,
      seconds,
    };
  });
  const key = (r: ComparisonRow) => (Number.isFinite(r.auc_roc) ? r.auc_roc : Number.NEGATIVE_INFINITY);
  return rows.sort((a, b) => key(b) - key(a));
}

/** The variants overlaid round by round. */
export function comparisonChart(title: string, runs: { name: string; rounds: RoundReport[] }[]): string {
  const over = (f: (r: RoundReport) => number | undefined) => runs.map(({ name, rounds }) => ({ name, points: rounds.map((r) => ({ x: r.round, y: f(r) ?? Number.NaN })) }));
  const meanUp = (r: RoundReport) => {
    const ups = Object.values(r.bytes).map((b) => b.up);
    return ups.length ? ups.reduce((a, b) => a + b, 0) / ups.length / 1e6 : Number.NaN;
  };
  return renderChart(title, [
    { title: 'AUC-ROC (federated evaluation)', xLabel: 'round', yRange: [0, 1], series: over((r) => r.metrics.auc_roc) },
    // Test loss, not training loss: under DP a hospital reports no metric measured on its training records.
    { title: 'Test loss (federated evaluation)', xLabel: 'round', series: over((r) => r.metrics.test_loss) },
    { title: 'ε spent (largest over hospitals)', xLabel: 'round', series: over((r) => r.metrics.privacy_epsilon) },
    // From zero: uploads differ by bytes of metadata, which a fitted axis would blow up into noise.
    { title: 'Upload per hospital and round (MB)', xLabel: 'round', yRange: [0, Math.max(1, ...runs.flatMap((x) => x.rounds.map(meanUp)).filter(Number.isFinite)) * 1.15], series: over(meanUp) },
  ]);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { ...SIMULATE_OPTIONS, strategies: { type: 'string' }, 'target-epsilons': { type: 'string' } },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const variants = parseVariants(values.strategies ?? values.strategy, values['target-epsilons']);
  const inputs = simulationInputs(values);
  const hospitals = inputs.hospitals;
  // Every variant's configuration is validated before the first simulation starts.
  // With a private variant in the grid, every variant (∞ too) trains the DP recipe where a flag
  // leaves it unsaid: the variants then differ only in strategy and ε.
  const anyDp = values.dp || variants.some((v) => typeof v.targetEpsilon === 'number');
  const recipe = anyDp
    ? {
        model: values.model ?? DP_RECIPE.model,
        rounds: values.rounds ?? String(DP_RECIPE.rounds),
        'local-epochs': values['local-epochs'] ?? String(DP_RECIPE.local_epochs),
        'batch-size': values['batch-size'] ?? String(DP_RECIPE.batch_size),
        lr: values.lr ?? String(DP_RECIPE.learning_rate),
      }
    : {};
  const configs = variants.map((v) =>
    runConfigFromOptions(
      {
        ...values,
        ...recipe,
        strategy: v.strategy,
        ...(v.targetEpsilon === null ? { dp: false } : v.targetEpsilon === undefined ? {} : { dp: true, 'target-epsilon': String(v.targetEpsilon) }),
      },
      hospitals.length,
      trainExamplesOf(inputs.records, hospitals),
    ),
  );

  const total = configs.reduce((s, c) => s + c.rounds, 0);
  const bar = new ProgressBar('rounds', total);
  let done = 0;
  const results: Parameters<typeof comparisonRows>[0] = [];
  for (const [i, variant] of variants.entries()) {
    const config = configs[i] as RunConfig;
    process.stderr.write(`variant ${i + 1}/${variants.length}: ${variant.name}\n`);
    const started = Date.now();
    const result = await runSimulation({
      ...inputs,
      config,
      onRound: (r) => bar.update(++done, `${variant.name} auc_roc ${(r.metrics.auc_roc ?? Number.NaN).toFixed(3)}`),
    });
    // A run that ended early (budget spent, too few hospitals) still counts its planned rounds as done.
    done += config.rounds - result.rounds.length;
    bar.update(done, variant.name);
    const seconds = (Date.now() - started) / 1000;
    results.push({ variant, config, result, seconds });
    if (values.json) process.stdout.write(`${stringifyMetrics({ variant: variant.name, config, summary: result.summary, rounds: result.rounds.map(roundLine) })}\n`);
  }
  bar.done();

  const rows = comparisonRows(results);
  if (values.plot) {
    writeFileAtomic(values.plot, comparisonChart(`fedcare compare: ${hospitals.join('+')}, ${configs[0]?.rounds} rounds`, results.map((r) => ({ name: r.variant.name, rounds: r.result.rounds }))));
    process.stderr.write(`plot written to ${values.plot}\n`);
  }
  if (values.json) process.stdout.write(`${stringifyMetrics({ comparison: rows })}\n`);
  else {
    const f = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(3));
    process.stdout.write(
      `\n${renderTable(
        ['variant', 'status', 'rounds', 'auc_roc', 'auc_pr', 'f1', 'accuracy', 'ε spent', 'MB up/hospital/round', 'seconds'],
        rows.map((r) => [r.variant, r.status, String(r.rounds), f(r.auc_roc), f(r.auc_pr), f(r.f1_score), f(r.test_accuracy), f(r.epsilon_spent), (r.upload_bytes_per_hospital_round / 1e6).toFixed(2), r.seconds.toFixed(0)]),
      )}`,
    );
  }
  return rows.every((r) => r.status === 'completed') ? 0 : 1;
}
