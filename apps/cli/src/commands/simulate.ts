/**
 * `fedcare simulate`: a whole federation on this machine — a real coordinator on a free port and one
 * real client process per hospital — printing one JSON line per round and a final summary with the
 * global model's metrics on the pooled test split.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { generateToken, openStore, startServer, type StoreSpec } from '@fedcare/server';
import { encodeRecords, OBSERVATION_WINDOW_DAYS, splitByHospital, type PatientRecord } from '@fedcare/shared/data';
import { HospitalClient, riskStatsOf, type FederationSummary, type RoundReport, type StageProgress } from '@fedcare/shared/fl';
import { DP_RECIPE, proposeDp } from '@fedcare/shared/privacy';
import { createModel, unflattenWeights, weightsFromBytes } from '@fedcare/shared/model';
import { runConfigSchema, STRATEGY_NAMES, type RunConfig, type RunConfigInput } from '@fedcare/shared/protocol';
import { evaluate, splitMetrics } from '@fedcare/shared/train';
import { stringifyMetrics } from '@fedcare/shared/util';
import { formatFault, parseFault, type Fault } from '../faults';
import { startHospital, type HeadlessHospital } from '../hospital';
import { CliError, writeFileAtomic } from '../io';
import { roundsChart } from '@fedcare/shared/report';
import { ProgressBar } from '../progress';
import { renderTable } from '../table';
import { loadRecords } from '../records-io';
import { initTf } from '../tf-node';
import { mlflowSetting, storeSpec } from '../server-config';
import { personaliseHospitals, type PersonalisationRow } from '../personalisation';
import { parseSet, readRunConfigFile, resolveRunConfig } from '../run-config-file';
import { isTabularSchema, type TabularTable } from '@fedcare/shared/tabular';
import { tabularSimulationInputs, tabularTestMetrics, tabularTrainExamples } from './simulate-tabular';

const HELP = `usage: fedcare simulate --data DIR [--hospitals H1,H2,H3] [--rounds 5] [--strategy fedavg]
         [--local-epochs 1] [--fraction-fit 1] [--min-fit-clients N] [--seed 1] [--seq-len 30]
         [--batch-size 32] [--lr 0.001] [--model standard|compact] [--fault H2:disconnect@train:round=2] [--db FILE]
         [--dp [--target-epsilon 1.0] [--noise-multiplier σ] [--max-grad-norm 1.0] [--delta 1e-5]]
         [--secure-aggregation none|secagg|he [--secagg-threshold T] [--secagg-neighbours K] [--secagg-clip R]]
         [--store sqlite|aws [--create-missing]] [--cloudwatch-emf FILE] [--plot metrics.svg] [--personalise]
         [--config run.yaml] [--set key=value …] [--json]
       fedcare simulate --task tabular --csv data.csv --target COLUMN [--split-by COLUMN | --hospitals 3 --non-iid dirichlet:0.5|iid]
         [--min-category-count 5] [--hidden-dim 32] [the run, DP and secure-aggregation flags above]

--task tabular federates any CSV with a target column (README "Your own tabular data"): the file is
split into hospitals (one per value of --split-by, or N label-skewed by Dirichlet(α) per class),
each hospital types its columns, the coordinator merges normalisation statistics and category
vocabularies (a value seen fewer than --min-category-count times at a hospital stays there), and an
MLP (hidden --hidden-dim, ⌈half⌉) trains with the same federation, DP and secure aggregation. Defaults
without --dp: --rounds 5 --local-epochs 2 --batch-size 16 --lr 0.01.

--dp trains with DP-SGD (Poisson sampling, per-example clipping, discrete Gaussian noise) and an RDP
accountant per hospital (a fresh ledger per simulation); a hospital declines rounds that would
take it past --target-epsilon, and the run ends when too few hospitals have budget left. With --dp
the defaults are the DP recipe: --model compact --rounds 3 --local-epochs 10 --batch-size 128
--lr 0.01 --max-grad-norm 1 --delta 1e-5, and σ the planner's for the target over these hospitals
(fedcare privacy plan shows it); any flag given overrides its part. Without --dp: --model standard
--rounds 5 --local-epochs 1 --batch-size 32 --lr 0.001.
--secure-aggregation secagg runs SecAgg+ after training (advertise-keys, share-keys, masked-input,
consistency-check, unmask; all valid --fault stages): the coordinator sees only the weighted sum of the updates.
--secure-aggregation he encrypts the updates (BFV, node-seal): stages he-keys, he-setup, he-input,
he-decrypt; a hospital holds the key, the coordinator adds ciphertexts (FedAvg / FedProx only).
--store aws keeps the run in DynamoDB + S3 as a deployed coordinator does (FEDCARE_S3_BUCKET,
FEDCARE_DYNAMODB_TABLE_PREFIX, AWS_ENDPOINT_URL_DYNAMODB / _S3; --create-missing makes tables and
bucket). --cloudwatch-emf FILE writes one CloudWatch Embedded Metric Format record per round to FILE.
--config FILE: the run configuration as YAML or JSON, with the REST API's keys (examples/*.yaml);
--set key=value overrides one key (dotted for dp: --set dp.noise_multiplier=1.1). Precedence: flags
> --set > --config > the defaults above; validated by the REST schema, errors name the key and line.
--personalise: after the run each hospital fine-tunes the final model's head and fusion norm on its
own training split (FedPer/FedRep; DP-SGD under its budget when the run has --dp) and the summary's
"personalisation" compares, on each hospital's own test split, AUC-ROC local-only (its data alone,
as many epochs as the federation ran), global and personalised.

Strategies: ${STRATEGY_NAMES.join(', ')}. Prints one JSON line per round (seed spec 6.1 names,
per_hospital), then {"summary": …} with the final model on the pooled test split.`;

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/fedcare.mjs');


export function roundLine(r: RoundReport): Record<string, unknown> {
  const dropouts = r.participation.filter((p) => p.status !== 'ok').map((p) => ({ hospital: p.hospitalId, stage: p.stage, status: p.status, reason: p.reason }));
  const epsilons = Object.fromEntries(Object.entries(r.perHospital).flatMap(([h, m]) => (m.privacy_epsilon === undefined ? [] : [[h, m.privacy_epsilon]])));
  return { round: r.round, ...r.metrics, privacy_epsilon_per_hospital: epsilons, per_hospital: r.perHospital, dropouts };
}

/** The options of `fedcare simulate` (`fedcare compare` takes them too, with lists where it varies one). */
export const SIMULATE_OPTIONS = {
  data: { type: 'string', default: 'data' },
  hospitals: { type: 'string', default: 'H1,H2,H3' },
  rounds: { type: 'string' },
  strategy: { type: 'string', default: 'fedavg' },
  model: { type: 'string' },
  'local-epochs': { type: 'string' },
  'fraction-fit': { type: 'string', default: '1' },
  'min-fit-clients': { type: 'string' },
  seed: { type: 'string', default: '1' },
  'seq-len': { type: 'string', default: '30' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  'stage-timeout': { type: 'string', default: '600' },
  fault: { type: 'string', multiple: true, default: [] },
  dp: { type: 'boolean', default: false },
  'secure-aggregation': { type: 'string', default: 'none' },
  'secagg-threshold': { type: 'string' },
  'secagg-neighbours': { type: 'string' },
  'secagg-clip': { type: 'string' },
  'noise-multiplier': { type: 'string' },
  'max-grad-norm': { type: 'string' },
  'target-epsilon': { type: 'string' },
  delta: { type: 'string' },
  db: { type: 'string' },
  store: { type: 'string' },
  'create-missing': { type: 'boolean', default: false },
  'cloudwatch-emf': { type: 'string' },
  plot: { type: 'string' },
  personalise: { type: 'boolean', default: false },
  config: { type: 'string' },
  set: { type: 'string', multiple: true, default: [] },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  // Bring-your-own tabular data (./simulate-tabular.ts).
  task: { type: 'string', default: 'risk' },
  csv: { type: 'string' },
  target: { type: 'string' },
  'split-by': { type: 'string' },
  'non-iid': { type: 'string' },
  'min-category-count': { type: 'string' },
  'hidden-dim': { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

type SimulateValues = ReturnType<typeof parseArgs<{ args: string[]; strict: true; options: typeof SIMULATE_OPTIONS }>>['values'];

/**
 * What the options say to simulate, apart from the run configuration: the hospitals, their records
 * from --data, the faults to inject (each naming a simulated hospital), one process per hospital.
 * Errors name what is missing.
 */
export function simulationInputs(
  values: Pick<SimulateValues, 'data' | 'hospitals' | 'fault' | 'db' | 'store' | 'create-missing' | 'cloudwatch-emf'>,
  env: Record<string, string | undefined> = process.env,
): Omit<SimulationOptions, 'config'> & { hospitals: string[] } {
  const hospitals = values.hospitals.split(',').map((h) => h.trim()).filter(Boolean);
  const faults = values.fault.map(parseFault);
  for (const f of faults) if (!hospitals.includes(f.hospital)) throw new CliError(`--fault names ${f.hospital}, which is not simulated (${hospitals.join(', ')})`, 2);
  const all = loadRecords(values.data);
  const missing = hospitals.filter((h) => !all.some((r) => r.hospital_id === h));
  if (missing.length) throw new CliError(`no records for ${missing.join(', ')} in ${values.data}`, 2);
  // The coordinator's store: a throwaway SQLite file unless --db or --store aws says otherwise.
  const store = values.store === 'aws' || values.db ? storeSpec({ store: values.store, db: values.db, 'create-missing': values['create-missing'] }, env) : undefined;
  return {
    hospitals,
    records: all.filter((r) => hospitals.includes(r.hospital_id)),
    faults,
    clients: 'process',
    data: values.data,
    ...(store ? { store } : {}),
    ...(values['cloudwatch-emf'] ? { emfFile: values['cloudwatch-emf'] } : {}),
  };
}

/** Each hospital's labelled training examples, as its client will count them (the planner's n). */
export function trainExamplesOf(records: readonly PatientRecord[], hospitals: readonly string[]): { hospital_id: string; n: number }[] {
  return hospitals.map((h) => ({ hospital_id: h, n: new HospitalClient(h, records.filter((r) => r.hospital_id === h)).numTrainExamples }));
}

/** Without --dp: the seed spec's model and schedule. */
const PLAIN_DEFAULTS = { rounds: 5, model: 'standard', local_epochs: 1, batch_size: 32, learning_rate: 0.001 } as const;
/** --task tabular without --dp: the MLP's schedule (`model` is unused by a tabular run). */
const TABULAR_DEFAULTS = { rounds: 5, model: 'standard', local_epochs: 2, batch_size: 16, learning_rate: 0.01 } as const;

/**
 * The run configuration the options describe, validated (a CliError naming the field otherwise).
 * With --dp, what a flag leaves unsaid is the DP recipe (shared/src/privacy/plan.ts DP_RECIPE): the
 * compact model, lot 128, 10 local epochs, learning rate 0.01, 3 rounds, C 1, target ε 1, δ 1e-5, and
 * σ from the planner for these hospitals' training examples (`trainExamples`; needed only then).
 */
/** The run config keys each flag sets (--config/--set give the same keys by name). */
const FLAG_KEYS: Readonly<Record<string, readonly (keyof RunConfigInput)[]>> = {
  rounds: ['rounds'],
  strategy: ['strategy'],
  model: ['model'],
  'local-epochs': ['local_epochs'],
  'fraction-fit': ['fraction_fit'],
  'min-fit-clients': ['min_fit_clients', 'min_evaluate_clients', 'min_available_clients'],
  seed: ['seed'],
  'seq-len': ['seq_len'],
  'batch-size': ['batch_size'],
  lr: ['learning_rate'],
  'stage-timeout': ['stage_timeout_s'],
  'secure-aggregation': ['secure_aggregation'],
  'secagg-threshold': ['secagg_threshold'],
  'secagg-neighbours': ['secagg_neighbours'],
  'secagg-clip': ['secagg_clip'],
  dp: ['dp'],
  'noise-multiplier': ['dp'],
  'max-grad-norm': ['dp'],
  'target-epsilon': ['dp'],
  delta: ['dp'],
  task: ['task'],
  target: ['tabular'],
  'min-category-count': ['tabular'],
  'hidden-dim': ['hidden_dim'],
};

/** The options given on the command line (not left at their defaults), from parseArgs' tokens. */
export function givenOptions(tokens: readonly { kind: string; name?: string }[] | undefined): Set<string> {
  return new Set((tokens ?? []).flatMap((t) => (t.kind === 'option' && t.name ? [t.name] : [])));
}

/**
 * The run configuration: flags > --set > --config FILE > the defaults below (../run-config-file.ts),
 * validated by the REST schema; errors name the key and where it came from. `given`: the options
 * on the command line (all of them count as given when absent).
 */
export function runConfigFromOptions(values: SimulateValues, hospitals: number, trainExamples: readonly { hospital_id: string; n: number }[] = [], given?: ReadonlySet<string>): RunConfig {
  const input = flagsRunConfig(values, hospitals, trainExamples);
  if (!values.config && values.set.length === 0) {
    const parsed = runConfigSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new CliError(`invalid run configuration: ${i?.path.join('.')}: ${i?.message}`, 2);
    }
    return parsed.data;
  }
  const flags: Record<string, { value: unknown; flag: string }> = {};
  for (const name of given ?? Object.keys(FLAG_KEYS)) for (const key of FLAG_KEYS[name] ?? []) if (input[key] !== undefined) flags[key] = { value: input[key], flag: `--${name}` };
  return resolveRunConfig({ defaults: input, ...(values.config ? { file: readRunConfigFile(values.config) } : {}), sets: values.set, flags });
}

/** The run configuration the flags and the defaults describe (unvalidated). */
function flagsRunConfig(values: SimulateValues, hospitals: number, trainExamples: readonly { hospital_id: string; n: number }[]): RunConfigInput {
  const n = hospitals;
  const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
  const tabular = values.task === 'tabular';
  const base = values.dp ? DP_RECIPE : tabular ? TABULAR_DEFAULTS : PLAIN_DEFAULTS;
  const rounds = num(values.rounds, base.rounds);
  const localEpochs = num(values['local-epochs'], base.local_epochs);
  const batchSize = num(values['batch-size'], base.batch_size);
  let dp: RunConfigInput['dp'];
  if (values.dp) {
    const target = num(values['target-epsilon'], 1);
    const delta = num(values.delta, DP_RECIPE.delta);
    let sigma = values['noise-multiplier'] === undefined ? undefined : Number(values['noise-multiplier']);
    if (sigma === undefined) {
      if (trainExamples.length === 0) throw new CliError('--dp without --noise-multiplier needs the hospitals\' training examples to propose σ', 2);
      try {
        sigma = proposeDp(target, trainExamples, { rounds, delta, local_epochs: localEpochs, batch_size: batchSize }).dp.noise_multiplier;
      } catch (e) {
        throw new CliError(`--target-epsilon ${target}: ${(e as Error).message}`, 2);
      }
    }
    dp = { noise_multiplier: sigma, max_grad_norm: num(values['max-grad-norm'], DP_RECIPE.max_grad_norm), target_epsilon: target, delta };
  }
  const input: RunConfigInput = {
    ...(tabular
      ? {
          task: 'tabular' as const,
          tabular: { target: values.target as string, ...(values['min-category-count'] ? { min_category_count: Number(values['min-category-count']) } : {}) },
        }
      : {}),
    ...(values['hidden-dim'] ? { hidden_dim: Number(values['hidden-dim']) } : {}),
    model: (values.model ?? base.model) as RunConfigInput['model'],
    strategy: values.strategy as RunConfigInput['strategy'],
    rounds,
    local_epochs: localEpochs,
    fraction_fit: Number(values['fraction-fit']),
    min_fit_clients: values['min-fit-clients'] ? Number(values['min-fit-clients']) : n,
    min_evaluate_clients: values['min-fit-clients'] ? Number(values['min-fit-clients']) : n,
    min_available_clients: values['min-fit-clients'] ? Number(values['min-fit-clients']) : n,
    seed: Number(values.seed),
    seq_len: Number(values['seq-len']),
    batch_size: batchSize,
    learning_rate: num(values.lr, base.learning_rate),
    stage_timeout_s: Number(values['stage-timeout']),
    wait_for_clients_s: 120,
    early_stopping_patience: 0,
    secure_aggregation: values['secure-aggregation'] as RunConfigInput['secure_aggregation'],
    ...(values['secagg-threshold'] ? { secagg_threshold: Number(values['secagg-threshold']) } : {}),
    ...(values['secagg-neighbours'] ? { secagg_neighbours: Number(values['secagg-neighbours']) } : {}),
    ...(values['secagg-clip'] ? { secagg_clip: Number(values['secagg-clip']) } : {}),
    ...(dp ? { dp } : {}),
  };
  return input;
}

/**
 * The flags' values with the task settings the layers below them give filled in (flags > --set >
 * --config, as runConfigFromOptions resolves them): `task: tabular` with `tabular.target` in a
 * --config file or --set federates --csv as `--task tabular --target` does. Read before the data,
 * which the task decides (records or a CSV). An invalid --set is left to runConfigFromOptions to report.
 */
export function withConfigTask(values: SimulateValues, given: ReadonlySet<string>): SimulateValues {
  if (!values.config && values.set.length === 0) return values;
  const file = values.config ? readRunConfigFile(values.config).values : {};
  const layer: Record<string, unknown> = { task: file.task };
  const tabular = file.tabular;
  if (typeof tabular === 'object' && tabular !== null) Object.assign(layer, { target: (tabular as Record<string, unknown>).target, min: (tabular as Record<string, unknown>).min_category_count });
  const KEYS: Record<string, string> = { task: 'task', 'tabular.target': 'target', 'tabular.min_category_count': 'min' };
  for (const arg of values.set) {
    let set: { path: string[]; value: unknown };
    try {
      set = parseSet(arg);
    } catch {
      continue;
    }
    const key = KEYS[set.path.join('.')];
    if (key) layer[key] = set.value;
  }
  const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));
  const task = given.has('task') ? undefined : str(layer.task);
  const target = given.has('target') ? undefined : str(layer.target);
  const min = given.has('min-category-count') ? undefined : str(layer.min);
  return { ...values, ...(task ? { task } : {}), ...(target ? { target } : {}), ...(min ? { 'min-category-count': min } : {}) };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseArgs({ args: argv, strict: true, options: SIMULATE_OPTIONS, tokens: true });
  const { tokens } = parsed;
  const values = withConfigTask(parsed.values, givenOptions(tokens));
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const tabular = values.task === 'tabular' ? tabularInputsFrom(values, givenOptions(tokens)) : undefined;
  if (values.task !== 'tabular' && values.task !== 'risk') throw new CliError(`--task: expected risk or tabular, got "${values.task}"`, 2);
  const inputs = tabular ? { hospitals: tabular.hospitals, records: [], tables: tabular.tables, faults: values.fault.map(parseFault), clients: 'process' as const, data: tabular.data } : simulationInputs(values);
  const hospitals = inputs.hospitals;
  const config = runConfigFromOptions(values, hospitals.length, tabular ? tabularTrainExamples(tabular.tables) : trainExamplesOf(inputs.records, hospitals), givenOptions(tokens));

  const bar = new ProgressBar('rounds', config.rounds);
  const result = await runSimulation({
    ...inputs,
    config,
    personalise: values.personalise,
    onRound: (r) => {
      if (values.json) process.stdout.write(`${stringifyMetrics(roundLine(r))}\n`);
      else {
        const m = r.metrics;
        const f = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3));
        const dropped = r.participation.filter((p) => p.status !== 'ok').map((p) => `${p.hospitalId}@${p.stage}:${p.status}`);
        const eps = config.dp ? `  ε ${f(m.privacy_epsilon)} (${Object.entries(r.perHospital).map(([h, x]) => `${h} ${f(x.privacy_epsilon)}`).join(', ')})` : '';
        process.stdout.write(
          `round ${String(r.round).padStart(3)}  train_loss ${f(m.train_loss)}  val_loss ${f(m.val_loss)}  auc_roc ${f(m.auc_roc)}  test_acc ${f(m.test_accuracy)}  clients ${m.num_participating_clients}  ${f(m.round_duration_seconds)} s${eps}${dropped.length ? `  dropped ${dropped.join(', ')}` : ''}\n`,
        );
      }
      bar.update(r.round, `auc_roc ${(r.metrics.auc_roc ?? Number.NaN).toFixed(3)}`);
    },
    onStage: (p) => {
      if (p.phase === 'end' && p.dropped.length) process.stderr.write(`round ${p.round} ${p.stage}: dropped ${p.dropped.join(', ')}\n`);
    },
    onInfo: (msg) => process.stderr.write(`${msg}\n`),
  });
  bar.done();
  const out = result.summary;
  if (values.plot) {
    writeFileAtomic(values.plot, roundsChart(`fedcare simulate: ${config.strategy}, ${hospitals.join('+')}`, result.rounds));
    process.stderr.write(`plot written to ${values.plot}\n`);
  }
  if (values.json) process.stdout.write(`${stringifyMetrics({ summary: out })}\n`);
  else {
    const test = out.test as Record<string, number> | undefined;
    const per = (out.per_hospital ?? {}) as Record<string, Record<string, number>>;
    process.stdout.write(`\nrun ${String(out.run_id)} ${out.status}${out.reason ? ` (${String(out.reason)})` : ''} after ${String(out.rounds)} round(s); final model on the test splits:\n`);
    if (test) {
      const row = (name: string, m: Record<string, number>) => [name, String(m.num_examples), ...['auc_roc', 'auc_pr', 'f1_score', 'test_accuracy'].map((k) => (Number.isFinite(m[k]) ? (m[k] as number).toFixed(3) : '—'))];
      process.stdout.write(renderTable(['test split', 'n', 'auc_roc', 'auc_pr', 'f1_score', 'accuracy'], [row('pooled', test), ...Object.entries(per).map(([h, m]) => row(h, m))]));
    }
    const personal = out.personalisation as PersonalisationRow[] | undefined;
    if (personal) {
      process.stdout.write('\nown test split AUC-ROC: local-only, global, personalised (head + fusion norm fine-tuned locally):\n');
      const f = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');
      process.stdout.write(renderTable(['hospital', 'n', 'local-only', 'global', 'personalised', 'margin', 'best epoch', 'T'], personal.map((r) => [r.hospital, String(r.n), f(r.local_only), f(r.global), f(r.personalised), `${r.margin >= 0 ? '+' : ''}${f(r.margin)}`, String(r.best_epoch), String(r.temperature)])));
    }
  }
  return out.status === 'completed' ? 0 : 1;
}

/** --task tabular: the CSV split into hospitals (--split-by COLUMN, or --hospitals N --non-iid dirichlet:α). */
function tabularInputsFrom(values: SimulateValues, given: ReadonlySet<string>) {
  if (!values.csv) throw new CliError('task tabular (--task, or task: in --config / --set) needs --csv FILE', 2);
  if (!values.target) throw new CliError('task tabular needs --target COLUMN, or tabular.target in --config / --set (the column to predict)', 2);
  if (values['split-by'] && (given.has('hospitals') || values['non-iid'])) throw new CliError('--split-by names the hospitals itself: leave out --hospitals and --non-iid', 2);
  const n = given.has('hospitals') ? Number(values.hospitals) : 3;
  if (!values['split-by'] && !(Number.isInteger(n) && n >= 2)) throw new CliError(`--hospitals: with --task tabular, a number of hospitals ≥ 2, got "${values.hospitals}"`, 2);
  return tabularSimulationInputs({ csv: values.csv, target: values.target, splitBy: values['split-by'], hospitals: n, nonIid: values['non-iid'], seed: Number(values.seed) });
}

export interface SimulationOptions {
  /** --task tabular: each hospital's table (its <H>.csv in `data`), for the final test metrics. */
  tables?: Record<string, TabularTable>;
  records: PatientRecord[];
  hospitals: string[];
  config: RunConfig;
  faults?: Fault[];
  /** 'process': one `fedcare client` process per hospital (real isolation); 'inprocess': clients share this process (scale benchmarks). */
  clients: 'process' | 'inprocess';
  /** Directory of <H>.ndjson files (process clients read their own file). */
  data?: string;
  /** Where the coordinator keeps the run (default: a SQLite file in a temporary directory). */
  store?: StoreSpec;
  /** Writes one CloudWatch EMF record per round to this file. */
  emfFile?: string;
  /** After the run: each hospital's own-test AUC-ROC local-only, global and personalised (../personalisation.ts). */
  personalise?: boolean;
  onRound?: (r: RoundReport) => void;
  onStage?: (p: StageProgress) => void;
  onInfo?: (msg: string) => void;
}

export interface SimulationResult {
  rounds: RoundReport[];
  summary: Record<string, unknown> & { status: string };
}

/** A whole federation on this machine; resolves when the run ends, with the final model's pooled test metrics. */
export async function runSimulation(o: SimulationOptions): Promise<SimulationResult> {
  const work = mkdtempSync(path.join(tmpdir(), 'fedcare-sim-'));
  const tokens = Object.fromEntries(o.hospitals.map((h) => [h, generateToken()]));
  const admin = generateToken();
  const logFile = path.join(work, 'coordinator.log');
  const store = await openStore(o.store ?? { kind: 'sqlite', file: path.join(work, 'fedcare.db') }).catch((e: unknown) => {
    throw new CliError(`cannot open the ${o.store?.kind ?? 'sqlite'} store: ${(e as Error).message}`);
  });
  if (o.emfFile) writeFileSync(o.emfFile, '', { mode: 0o600 });
  const mlflow = mlflowSetting(process.env);
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    store,
    ...(o.emfFile ? { cloudwatchEmf: { write: (line: string) => appendFileSync(o.emfFile as string, `${line}\n`) } } : {}),
    // MLFLOW_TRACKING_URI set: the simulated run is logged to MLflow as a served one is.
    ...(mlflow ? { mlflow } : {}),
    env: { FEDCARE_ADMIN_TOKEN: admin, FEDCARE_HOSPITAL_TOKENS: o.hospitals.map((h) => `${h}:${tokens[h]}`).join(',') },
    logLevel: 'info',
    logStream: createWriteStream(logFile, { mode: 0o600 }),
  });
  o.onInfo?.(`coordinator ${server.url} (log ${logFile})`);
  if (o.clients === 'inprocess') await initTf('wasm');

  const children: ChildProcess[] = [];
  const stderrTail: Record<string, string> = {};
  const inProcess: HeadlessHospital[] = [];
  for (const h of o.hospitals) {
    if (o.clients === 'process') {
      const csv = o.data ? path.join(o.data, `${h}.csv`) : '';
      const file = o.tables && existsSync(csv) ? csv : o.data ? path.join(o.data, `${h}.ndjson`) : '';
      if (!o.data) throw new CliError('process clients need the data directory');
      // The token goes in the environment, not argv: other users can read argv, and a base64url
      // token may start with '-', which an option parser takes for a flag.
      // A fresh privacy ledger per simulation: each simulated hospital starts with its whole budget.
      const args = [BIN, 'client', '--server', server.url, '--hospital', h, '--data', existsSync(file) ? file : o.data, '--once', '--quiet', '--privacy-ledger', path.join(work, `${h}.privacy.json`), '--pins', path.join(work, `${h}.pins.json`), '--identity', path.join(work, `${h}.identity.pem`)];
      for (const f of (o.faults ?? []).filter((x) => x.hospital === h)) args.push('--fault', formatFault(f));
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FEDCARE_TOKEN: tokens[h] as string } });
      child.stderr?.on('data', (d: Buffer) => {
        stderrTail[h] = ((stderrTail[h] ?? '') + d.toString()).slice(-800);
        o.onInfo?.(`[${h}] ${d.toString().trimEnd()}`);
      });
      children.push(child);
    } else {
      inProcess.push(startHospital({ server: server.url, hospitalId: h, token: tokens[h] as string, records: o.records.filter((r) => r.hospital_id === h), exitOnRunEnd: true }));
    }
  }
  const rounds: RoundReport[] = [];
  server.events.on('stage', (p: StageProgress) => o.onStage?.(p));
  server.events.on('round', (r: RoundReport) => {
    rounds.push(r);
    o.onRound?.(r);
  });

  try {
    // Start when every simulated hospital is connected (process start-up time varies with load);
    // min_available_clients then governs the rounds, not the start.
    if (!(await server.grid.waitForClients(o.hospitals.length, 180_000))) {
      const missing = o.hospitals.filter((h) => !server.grid.available().includes(h));
      const why = missing.map((h) => `${h}: ${stderrTail[h]?.trim() || 'no output'}`).join('\n');
      throw new CliError(`only ${server.grid.available().length} of ${o.hospitals.length} hospitals connected within 180 s (missing ${missing.join(', ')})\n${why}`);
    }
    const { runId } = await server.coordinator.start(o.config, 'simulate');
    const summary = (await server.coordinator.idle()) as FederationSummary | undefined;
    if (!summary) throw new CliError(`run ${runId} crashed; see ${logFile}`);
    // Final model on the pooled test split (this harness holds every hospital's data; a real
    // coordinator never does).
    await initTf('wasm');
    const stats = await server.store.getFeatureStats(runId);
    const model = await server.store.getModel(runId, 'latest');
    const out: SimulationResult['summary'] = { rounds: summary.roundsCompleted, status: summary.status, strategy: o.config.strategy, run_id: runId };
    if (summary.reason) out.reason = summary.reason;
    if (model && stats && o.tables) {
      // A tabular run: its stats are the schema (shared/src/tabular/schema.ts).
      if (!isTabularSchema(stats)) throw new CliError(`run ${runId} is a tabular run, but the store holds the risk model's feature statistics`);
      Object.assign(out, await tabularTestMetrics(o.tables, stats, model.bytes, o.config), { model_sha256: model.sha256, schema: stats });
    } else if (model && stats) {
      const riskStats = riskStatsOf(runId, stats, 'the pooled test evaluation');
      const clf = createModel(o.config.model, 0, o.config);
      unflattenWeights(clf.params, weightsFromBytes(model.bytes));
      const test = splitByHospital(o.records, 0.2, 0).test;
      const batch = encodeRecords(test, riskStats, { seqLen: o.config.seq_len, windowDays: OBSERVATION_WINDOW_DAYS });
      out.test = splitMetrics('test', await evaluate(clf, batch));
      const per: Record<string, unknown> = {};
      for (const h of o.hospitals) {
        const idx = test.flatMap((r: PatientRecord, i) => (r.hospital_id === h ? [i] : []));
        per[h] = splitMetrics('test', await evaluate(clf, batch, idx));
      }
      out.per_hospital = per;
      out.model_sha256 = model.sha256;
      clf.dispose();
      if (o.personalise) {
        const round = summary.roundsCompleted;
        out.personalisation = await personaliseHospitals({
          records: o.records, hospitals: o.hospitals, runId, round, stats: riskStats, weights: model.bytes, sha256: model.sha256, config: o.config,
          ledgerFile: (h) => path.join(work, `${h}.privacy.json`),
          ...(o.onInfo ? { onInfo: o.onInfo } : {}),
        });
      }
    }
    return { rounds, summary: out };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    for (const h of inProcess) h.close();
    await server.close();
  }
}
