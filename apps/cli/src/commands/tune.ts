/**
 * `fedcare tune`: federated hyper-parameter search over seed spec 3.3's space (learning rate, batch
 * size, local epochs, hidden dim, dropout, ε, strategy) on simulated federations of this machine's
 * hospitals.
 *
 * Design:
 *  - Search: ASHA, asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel
 *    Hyperparameter Tuning"; ../tune/asha.ts) over seeded random samples (../tune/space.ts). The
 *    resource is rounds: with --budget-rounds R and η the rungs are R/η², R/η, R (at least 1
 *    round each); a trial trains more rounds only when it is in the top 1/η of its rung, so bad
 *    trials stop early. A promoted trial trains its configuration again from the run's initial model
 *    for the longer budget (no checkpoint hand-over: the same seed makes the longer run's first rounds
 *    the shorter run's, and the cost is at most η/(η−1) of continuing).
 *  - Measure: the validation AUC-ROC of the final round (each hospital's validation split, held out of
 *    its training split, num_examples-weighted: the round metric `val_auc_roc`). Trials are ranked by
 *    it — never by test metrics; the best trial's pooled test AUC-ROC is shown for information only.
 *  - Trials: one `runSimulation` each with in-process hospitals (one process per trial, not one per
 *    hospital), in a child process of its own (`fedcare tune --trial-job`), up to --parallel at once
 *    (default: the cores).
 *  - Resumable: the study (settings, each trial's parameters, each job's result) lives in a SQLite file
 *    (--study, default .fedcare/tune-<name>.db; ../tune/study.ts). Restarted, finished jobs are read
 *    back and never re-run; jobs that were running are run again.
 *  - Output: a ranked table, --out best.yaml (the best configuration as a run config at the full
 *    budget, for `fedcare simulate --config`), --plot tune.svg (parallel coordinates), --json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DP_RECIPE, proposeDp } from '@fedcare/shared/privacy';
import { runConfigSchema, runConfigToYaml, type RunConfig } from '@fedcare/shared/protocol';
import { stringifyMetrics } from '@fedcare/shared/util';
import { CliError, readText, writeFileAtomic } from '../io';
import { renderTable } from '../table';
import { Asha, rungsFor, type Job } from '../tune/asha';
import { parallelCoordinates } from '../tune/plot';
import { DEFAULT_SPACE, parseSpace, sampleParams, type ParamValue, type Space } from '../tune/space';
import { Study } from '../tune/study';
import { givenOptions, runConfigFromOptions, runSimulation, SIMULATE_OPTIONS, simulationInputs, trainExamplesOf } from './simulate';

const HELP = `usage: fedcare tune [--space space.yaml] [--trials 16] [--budget-rounds 4] [--eta 2] [--parallel N]
         [--study FILE] [--name NAME] [--out best.yaml] [--plot tune.svg] [--json]
         [--config base.yaml] [--set key=value …] [fedcare simulate options: --data, --hospitals, --seed,
         --seq-len, --model, …]

Searches the space with ASHA (asynchronous successive halving, Li et al. 2020): --trials seeded
random configurations start at the lowest rung (R/η² rounds, R = --budget-rounds); a trial is
promoted to the next rung (more rounds) only when it is in the top 1/η of its rung, so bad trials
stop early. Each trial is a simulated federation of the hospitals (in-process clients), up to
--parallel at once (default: the cores). Trials are ranked by validation AUC-ROC (the hospitals'
validation splits; never the test split) at the highest rung they reached.
The study lives in --study (default .fedcare/tune-<name>.db, name: the space file's name or
"default"): run the same command again and finished trials are read back, not re-run.
--space: YAML, per key "loguniform [a, b]", "uniform [a, b]", "int [a, b]" or "choice [x, …]";
keys learning_rate, batch_size, local_epochs, hidden_dim, dropout, proximal_mu, strategy, epsilon
(target ε; inf: no DP). Default (seed spec 3.3): learning_rate loguniform [1e-4, 1e-2], batch_size
choice [16, 32, 64], local_epochs int [1, 5], hidden_dim choice [16, 32, 64], dropout uniform
[0, 0.5], epsilon choice [1, 5, inf], strategy choice [fedavg, fedprox, fedadam].
--config/--set give the base run config of every trial (the searched keys override it); without
--model the base model is compact (9.3k parameters before hidden_dim; the standard one's 569k make
each trial far slower on CPU).
--out FILE: the best configuration as a run config (fedcare simulate --config FILE);
--plot FILE: parallel coordinates, one line per trial.`;

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/fedcare.mjs');

export const TUNE_OPTIONS = {
  ...SIMULATE_OPTIONS,
  space: { type: 'string' },
  trials: { type: 'string', default: '16' },
  'budget-rounds': { type: 'string', default: '4' },
  eta: { type: 'string', default: '2' },
  parallel: { type: 'string' },
  study: { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  'trial-job': { type: 'string' },
} as const;

/** A trial's run configuration: the base with the trial's parameters, `rounds` rounds; σ for ε planned over the full budget. */
export function trialConfig(base: RunConfig, params: Readonly<Record<string, ParamValue>>, rounds: number, budget: number, trainExamples: readonly { hospital_id: string; n: number }[]): RunConfig {
  const c: Record<string, unknown> = { ...base, rounds };
  for (const [k, v] of Object.entries(params)) if (k !== 'epsilon') c[k] = v;
  const eps = params.epsilon;
  if (eps === 'inf') delete c.dp;
  else if (typeof eps === 'number') {
    const delta = base.dp?.delta ?? DP_RECIPE.delta;
    const sigma = proposeDp(eps, trainExamples, { rounds: budget, delta, local_epochs: Number(c.local_epochs), batch_size: Number(c.batch_size) }).dp.noise_multiplier;
    c.dp = { noise_multiplier: sigma, max_grad_norm: base.dp?.max_grad_norm ?? DP_RECIPE.max_grad_norm, target_epsilon: eps, delta };
  }
  const parsed = runConfigSchema.safeParse(c);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`invalid trial configuration: ${i?.path.join('.')}: ${i?.message}`);
  }
  return parsed.data;
}

interface TrialJob {
  data: string;
  hospitals: string;
  config: RunConfig;
}

/** `--trial-job FILE`: one trial in this process, its result as the last stdout line. */
async function runTrialJob(file: string): Promise<number> {
  const job = JSON.parse(readText(file)) as TrialJob;
  const inputs = simulationInputs({ data: job.data, hospitals: job.hospitals, fault: [], 'create-missing': false });
  const result = await runSimulation({ ...inputs, clients: 'inprocess', config: job.config });
  const last = result.rounds.at(-1)?.metrics;
  const test = (result.summary.test ?? {}) as Record<string, number>;
  process.stdout.write(`${stringifyMetrics({ trial_result: { status: result.summary.status, rounds: result.rounds.length, val_auc: last?.val_auc_roc ?? Number.NaN, test_auc: test.auc_roc ?? Number.NaN } })}\n`);
  return 0;
}

/** The trial processes running now: stopped with this one (SIGINT, SIGTERM). */
const children = new Set<ChildProcess>();
function stopChildren(signal: NodeJS.Signals): void {
  for (const c of children) c.kill('SIGTERM');
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** Runs one job in a child process; NaN AUCs and the error when it fails. */
function runJobProcess(jobFile: string): Promise<{ val_auc: number; test_auc: number; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'tune', '--trial-job', jobFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.on('exit', (code) => {
      children.delete(child);
      const line = out.split('\n').reverse().find((l) => l.startsWith('{"trial_result"'));
      if (code === 0 && line) {
        const r = (JSON.parse(line) as { trial_result: { val_auc: number | null; test_auc: number | null; status: string } }).trial_result;
        const val = r.val_auc ?? Number.NaN;
        resolve({ val_auc: val, test_auc: r.test_auc ?? Number.NaN, ...(r.status !== 'completed' || !Number.isFinite(val) ? { error: `run ${r.status}${Number.isFinite(val) ? '' : ', no validation AUC'}` } : {}) });
      } else {
        const why = err.trim().split('\n').filter((l) => !l.startsWith('coordinator ')).slice(-3).join(' ').slice(-400);
        resolve({ val_auc: Number.NaN, test_auc: Number.NaN, error: `exit ${code}: ${why || 'no output'}` });
      }
    });
  });
}

export interface TuneRow {
  rank: number;
  trial: number;
  params: Record<string, ParamValue>;
  rounds: number;
  val_auc_roc: number | null;
  /** For information only: never used to rank. */
  test_auc_roc: number | null;
  error?: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values, tokens } = parseArgs({ args: argv, strict: true, options: TUNE_OPTIONS, tokens: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values['trial-job']) return runTrialJob(values['trial-job']);
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!(Number.isInteger(n) && n >= min)) throw new CliError(`--${name}: expected an integer >= ${min}, got "${v}"`, 2);
    return n;
  };
  const maxTrials = int('trials', values.trials, 1);
  const budget = int('budget-rounds', values['budget-rounds'], 1);
  const eta = int('eta', values.eta, 2);
  const parallel = int('parallel', values.parallel ?? String(availableParallelism()), 1);
  const space: Space = values.space ? parseSpace(values.space, (() => {
    try {
      return readText(values.space);
    } catch (e) {
      throw new CliError(`--space ${values.space}: ${(e as Error).message}`, 2);
    }
  })()) : { ...DEFAULT_SPACE };
  const name = values.name ?? (values.space ? path.basename(values.space).replace(/\.[^.]*$/, '') : 'default');
  const studyFile = values.study ?? path.join('.fedcare', `tune-${name}.db`);

  const inputs = simulationInputs(values);
  const hospitals = inputs.hospitals;
  const trainExamples = trainExamplesOf(inputs.records, hospitals);
  const given = givenOptions(tokens);
  // The base of every trial: simulate's flags, --config, --set; the compact model unless one of them names a model.
  const base = runConfigFromOptions({ ...values, model: values.model ?? 'compact', rounds: String(budget) }, hospitals.length, trainExamples, new Set([...given, 'rounds']));
  const rungs = rungsFor(budget, eta);
  const seed = base.seed;

  const study = new Study(studyFile);
  process.once('SIGINT', stopChildren).once('SIGTERM', stopChildren);
  try {
    const opened = study.settings({ space, seed, rungs, eta, trials: maxTrials, base });
    if (opened.mismatch) throw new CliError(`${studyFile} holds a study with another ${opened.mismatch}; give another --study (or --name), or delete the file to start over`, 2);
    const asha = new Asha({ rungs, eta, maxTrials });
    const done = new Map<number, Map<number, number>>();
    const started: Job[] = [];
    for (const j of study.jobs()) {
      if (j.status === 'done') {
        const m = done.get(j.trial) ?? new Map<number, number>();
        m.set(j.rung, j.val_auc ?? Number.NaN);
        done.set(j.trial, m);
      } else started.push({ trial: j.trial, rung: j.rung });
    }
    asha.restore(done, started);
    const finished = study.jobs().filter((j) => j.status === 'done').length;
    process.stderr.write(
      `${opened.resumed ? `resuming ${studyFile}: ${finished} job(s) done, ${started.length} to run again` : `study ${studyFile}`}; ASHA η ${eta}, rungs ${rungs.join('/')} rounds, ${maxTrials} trials, ${parallel} in parallel\n`,
    );

    const work = path.join(path.dirname(path.resolve(studyFile)), `tune-${name}-jobs`);
    const inFlight = new Set<Promise<void>>();
    const launch = (job: Job) => {
      const params = study.params(job.trial) ?? sampleParams(space, seed, job.trial);
      const rounds = rungs[job.rung] as number;
      study.start(job, rounds, params);
      const started = Date.now();
      let config: RunConfig;
      let p: Promise<{ val_auc: number; test_auc: number; error?: string }>;
      try {
        config = trialConfig(base, params, rounds, budget, trainExamples);
        const file = path.join(work, `trial-${job.trial}-rung-${job.rung}.json`);
        writeFileAtomic(file, JSON.stringify({ data: values.data, hospitals: hospitals.join(','), config } satisfies TrialJob), { mode: 0o600, dirMode: 0o700 });
        p = runJobProcess(file);
      } catch (e) {
        p = Promise.resolve({ val_auc: Number.NaN, test_auc: Number.NaN, error: (e as Error).message });
      }
      const task = p.then((r) => {
        const seconds = (Date.now() - started) / 1000;
        study.finish(job, { ...r, seconds });
        asha.report(job, r.val_auc);
        process.stderr.write(`trial ${job.trial} rung ${job.rung} (${rounds} round(s)): val AUC-ROC ${Number.isFinite(r.val_auc) ? r.val_auc.toFixed(3) : '—'} in ${seconds.toFixed(0)} s${r.error ? ` (${r.error})` : ''}\n`);
        inFlight.delete(task);
      });
      inFlight.add(task);
    };
    for (;;) {
      while (inFlight.size < parallel) {
        const job = asha.next();
        if (!job) break;
        launch(job);
      }
      if (inFlight.size === 0) break;
      await Promise.race(inFlight);
    }

    // The ranked table: highest rung reached first, then validation AUC-ROC there.
    const jobs = study.jobs();
    const rows: TuneRow[] = asha.ranking().map((t, i) => {
      const reached = Asha.reached(t);
      const j = jobs.find((x) => x.trial === t.id && x.rung === reached.rung);
      return {
        rank: i + 1,
        trial: t.id,
        params: study.params(t.id) ?? {},
        rounds: rungs[reached.rung] ?? 0,
        val_auc_roc: j?.val_auc ?? null,
        test_auc_roc: j?.test_auc ?? null,
        ...(j?.error ? { error: j.error } : {}),
      };
    });
    const best = rows.find((r) => r.val_auc_roc !== null);
    const keys = Object.keys(space);
    if (values.plot) {
      writeFileAtomic(values.plot, parallelCoordinates(`fedcare tune: ${rows.length} trials, ASHA η ${eta}, rungs ${rungs.join('/')} rounds`, space, rows.map((r) => ({ id: r.trial, params: r.params, valAuc: r.val_auc_roc ?? Number.NaN, rounds: r.rounds }))));
      process.stderr.write(`plot written to ${values.plot}\n`);
    }
    let bestConfig: RunConfig | undefined;
    if (best) {
      bestConfig = trialConfig(base, best.params, budget, budget, trainExamples);
      if (values.out) {
        writeFileAtomic(values.out, runConfigToYaml(bestConfig, `fedcare tune: best of ${rows.length} trials (trial ${best.trial}), validation AUC-ROC ${best.val_auc_roc?.toFixed(4)} after ${best.rounds} round(s)\nstudy ${studyFile}; fedcare simulate --config ${path.basename(values.out)}`));
        process.stderr.write(`best configuration written to ${values.out}\n`);
      }
    }
    if (values.json) process.stdout.write(`${stringifyMetrics({ tune: rows, best: best ? { trial: best.trial, val_auc_roc: best.val_auc_roc, test_auc_roc_for_information: best.test_auc_roc, config: bestConfig } : null, study: studyFile, rungs, eta })}\n`);
    else {
      const f = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(3));
      const show = (v: ParamValue | undefined) => (v === undefined ? '—' : typeof v === 'number' && Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(2) : String(v));
      process.stdout.write(`\n${renderTable(['rank', 'trial', ...keys, 'rounds', 'val_auc_roc'], rows.map((r) => [String(r.rank), String(r.trial), ...keys.map((k) => show(r.params[k])), String(r.rounds), f(r.val_auc_roc)]))}`);
      if (best) process.stdout.write(`\nbest: trial ${best.trial}, validation AUC-ROC ${f(best.val_auc_roc)} after ${best.rounds} round(s) (pooled test AUC-ROC ${f(best.test_auc_roc)}, for information only: not used to rank)\n`);
    }
    return best ? 0 : 1;
  } finally {
    study.close();
  }
}
