/**
 * `fedcare runs`: what the coordinator's database says about past runs, without a browser or a
 * token — for the ML engineer on the machine that holds the database (after `npm start`,
 * `fedcare serve`, or `fedcare simulate|compare --db`). `runs` lists them; `runs show RUN` prints
 * the metrics of every round (a table, --json lines or --csv) and --plot draws them.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '@fedcare/server';
import { ROUND_METRIC_NAMES, type RoundMetrics } from '@fedcare/shared/fl';
import { csvCell, stringifyMetrics } from '@fedcare/shared/util';
import { CliError, defaultDbPath, writeFileAtomic } from '../io';
import { renderTable } from '../table';
import { asReport, roundsChart } from '@fedcare/shared/report';

const HELP = `usage: fedcare runs [--db .fedcare/fedcare.db] [--json]
       fedcare runs show RUN_ID [--db FILE] [--json | --csv] [--plot metrics.svg]

Lists the runs in a coordinator's database (newest first), or shows one run's metrics per round:
the seed spec 6.1 metrics, ε, the hospitals that took part and those that dropped out, declined or
were rejected, with why. RUN_ID may be a unique prefix or suffix (the 8 characters the dashboard
shows). Reads the database only; a coordinator may be running on it.`;

/** RFC 4180 CSV (formula-leading text escaped): one row per round, the seed spec 6.1 metrics in their order, then any others. */
export function roundsCsv(rounds: readonly RoundMetrics[]): string {
  const others = [...new Set(rounds.flatMap((r) => Object.keys(r.metrics)))].filter((k) => !(ROUND_METRIC_NAMES as readonly string[]).includes(k)).sort();
  const names = [...ROUND_METRIC_NAMES, ...others];
  const cell = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : v === Number.POSITIVE_INFINITY ? 'inf' : String(v));
  // Metric names come from hospitals: quoted and formula-escaped (OWASP CSV injection), like the dashboard's export.
  const lines = [['round', 'completed_at', ...names].map(csvCell).join(',')];
  for (const r of rounds) lines.push([String(r.round), csvCell(r.completedAt), ...names.map((n) => cell(r.metrics[n]))].join(','));
  return `${lines.join('\n')}\n`;
}

/** The run `id` names: the whole id, or a unique prefix or suffix of it. */
export function resolveRun<R extends { runId: string }>(runs: readonly R[], id: string, db: string): R {
  const matches = runs.filter((r) => r.runId === id || r.runId.startsWith(id) || r.runId.endsWith(id));
  if (matches.length === 0) throw new CliError(`no run ${id} in ${db}`);
  if (matches.length > 1) throw new CliError(`${id} matches ${matches.length} runs (${matches.map((r) => r.runId).join(', ')}); give more of the id`, 2);
  return matches[0] as R;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      db: { type: 'string', default: defaultDbPath() },
      json: { type: 'boolean', default: false },
      csv: { type: 'boolean', default: false },
      plot: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [action = 'list', id] = positionals;
  if (action !== 'list' && action !== 'show') throw new CliError(`unknown action "${action}" (list, show)`, 2);
  if (values.json && values.csv) throw new CliError('give one of --json or --csv', 2);
  if (!existsSync(values.db)) throw new CliError(`no database at ${values.db} (give --db, or set FEDCARE_HOME)`, 2);
  const store = openSqliteStore(values.db);
  try {
    const runs = await store.listRuns();
    if (action === 'list') {
      if (values.json) {
        for (const r of runs) process.stdout.write(`${stringifyMetrics({ run_id: r.runId, status: r.status, reason: r.reason, strategy: r.config.strategy, rounds: r.lastCompletedRound, total_rounds: r.totalRounds, created_at: r.createdAt, config: r.config })}\n`);
      } else if (runs.length === 0) process.stdout.write(`no runs in ${values.db}\n`);
      else {
        const dp = (c: Record<string, unknown>) => (c.dp && typeof c.dp === 'object' ? `ε ${String((c.dp as { target_epsilon?: unknown }).target_epsilon)}` : '—');
        process.stdout.write(
          renderTable(
            ['run', 'status', 'strategy', 'rounds', 'DP', 'secure aggregation', 'created'],
            runs.map((r) => [r.runId, r.status, String(r.config.strategy ?? '—'), `${r.lastCompletedRound}/${r.totalRounds}`, dp(r.config), String(r.config.secure_aggregation ?? 'none'), r.createdAt]),
          ),
        );
      }
      return 0;
    }
    if (!id) throw new CliError('show needs a RUN_ID (see `fedcare runs`)', 2);
    const run = resolveRun(runs, id, values.db);
    const rounds = await store.getRoundMetrics(run.runId);
    if (values.plot) {
      writeFileAtomic(values.plot, roundsChart(`fedcare run ${run.runId}: ${String(run.config.strategy)}`, rounds.map((r) => asReport(run.runId, r))));
      process.stderr.write(`plot written to ${values.plot}\n`);
    }
    if (values.csv) process.stdout.write(roundsCsv(rounds));
    else if (values.json) {
      for (const r of rounds) process.stdout.write(`${stringifyMetrics({ run_id: run.runId, round: r.round, completed_at: r.completedAt, ...r.metrics, per_hospital: r.perHospital, participation: r.participation })}\n`);
    } else {
      const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3));
      process.stdout.write(`run ${run.runId}: ${run.status}${run.reason ? ` (${run.reason})` : ''}, ${run.lastCompletedRound}/${run.totalRounds} rounds, ${String(run.config.strategy)}\n`);
      process.stdout.write(
        renderTable(
          ['round', 'auc_roc', 'auc_pr', 'f1', 'accuracy', 'test_loss', 'ε', 'clients', 'left out'],
          rounds.map((r) => {
            const out = r.participation.filter((p) => p.status !== 'ok').map((p) => `${p.hospitalId}@${p.stage}:${p.status}${p.reason ? ` (${p.reason})` : ''}`);
            return [String(r.round), f(r.metrics.auc_roc), f(r.metrics.auc_pr), f(r.metrics.f1_score), f(r.metrics.test_accuracy), f(r.metrics.test_loss), f(r.metrics.privacy_epsilon), String(r.metrics.num_participating_clients ?? '—'), out.join(', ') || '—'];
          }),
        ),
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}
