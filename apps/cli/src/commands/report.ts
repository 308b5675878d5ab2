/**
 * `fedcare report`: one self-contained HTML page for a hospital's governance board — the model card,
 * the configuration, the metrics of every round as charts and a table, each hospital's figures,
 * fairness, calibration, ε per hospital, who took part and who dropped out with why, and the audit
 * trail of the run (who joined, was refused, was revoked, with times). No script, no external
 * resource: it opens anywhere and prints to PDF from Chromium. It holds counts, metrics and ids of
 * hospitals only; the coordinator never had a patient's record, and the test checks no patient
 * identifier is in it.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '@fedcare/server';
import { storedBundle, storedCard } from '@fedcare/shared/fl';
import { reportHtml, runAudit } from '@fedcare/shared/report';
import { CliError, defaultDbPath, writeFileAtomic } from '../io';
import { initTf } from '../tf-node';
import { resolveRun } from './runs';

const HELP = `usage: fedcare report RUN_ID [--db .fedcare/fedcare.db] --out report.html

One self-contained HTML page about a run, for review and print (Chromium: Print → Save as PDF):
model card, configuration, metrics per round (charts and table), per-hospital figures, fairness,
calibration, privacy (ε per hospital), participation and dropouts with reasons, and the audit trail.
RUN_ID may be a unique prefix or suffix.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      db: { type: 'string', default: defaultDbPath() },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [id] = positionals;
  if (!id) throw new CliError('report needs a RUN_ID (see `fedcare runs`)', 2);
  if (!values.out) throw new CliError('--out report.html is required', 2);
  if (!existsSync(values.db)) throw new CliError(`no database at ${values.db} (give --db, or set FEDCARE_HOME)`, 2);
  const store = openSqliteStore(values.db);
  try {
    const run = resolveRun(await store.listRuns(), id, values.db);
    const rounds = await store.getRoundMetrics(run.runId);
    await initTf('wasm');
    const stored = await storedBundle(store, run, rounds, 'latest');
    writeFileAtomic(values.out, reportHtml(run, rounds, storedCard(run, rounds, stored), runAudit(run, rounds, await store.listAudit({ limit: 10_000 }))));
    process.stderr.write(`report of ${run.runId} (${rounds.length} rounds) → ${values.out}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

