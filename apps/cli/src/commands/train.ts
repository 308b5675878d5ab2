/** `fedcare train`: centralized training on pooled hospitals (or one alone), test metrics per hospital. */
import { parseArgs } from 'node:util';
import {
  computeFeatureSums,
  encodeRecords,
  finalizeFeatureStats,
  splitByHospital,
  DEFAULT_SEQ_LEN,
  OBSERVATION_WINDOW_DAYS,
  type PatientRecord,
} from '@fedcare/shared/data';
import { createClassifier, countParams } from '@fedcare/shared/model';
import { evaluate, labelledIndices, splitMetrics, trainLocal, type ClassificationMetrics, type SplitMetrics } from '@fedcare/shared/train';
import { CliError, writeFileAtomic } from '../io';
import { renderChart } from '@fedcare/shared/report';
import { ProgressBar } from '../progress';
import { loadRecords } from '../records-io';
import { renderTable } from '../table';
import { initTf, type NodeBackend } from '../tf-node';

const HELP = `usage: fedcare train --data DIR [--hospital H2] [--epochs 10] [--seed 1] [--seq-len 30]
                     [--batch-size 32] [--lr 0.001] [--backend wasm|cpu] [--plot loss.svg] [--json]

Trains on the pooled hospitals' 80 % train splits (or one hospital's with --hospital) and reports
test metrics on the pooled 20 % test split and on each hospital's. The split is fixed by patient id.`;

export type TestMetrics = SplitMetrics<'test'>;
const toTestMetrics = (m: ClassificationMetrics): TestMetrics => splitMetrics('test', m);

export interface TrainReport {
  trained_on: string[];
  train_examples: number;
  excluded_unlabelled: number;
  epochs: { epoch: number; loss: number; seconds: number }[];
  test: TestMetrics;
  per_hospital: Record<string, TestMetrics>;
  params: number;
  seq_len: number;
  backend: string;
  train_seconds: number;
}

export interface TrainOptions {
  records: PatientRecord[];
  hospital?: string;
  epochs: number;
  seed: number;
  seqLen: number;
  batchSize: number;
  learningRate: number;
  progress: boolean;
}

export async function trainCentral(o: TrainOptions): Promise<TrainReport> {
  const split = splitByHospital(o.records, 0.2, 0);
  const hospitals = [...new Set(o.records.map((r) => r.hospital_id))].sort();
  if (o.hospital !== undefined && !hospitals.includes(o.hospital)) {
    throw new CliError(`unknown hospital "${o.hospital}": the data holds ${hospitals.join(', ')}`, 2);
  }
  const trainRecords = o.hospital === undefined ? split.train : split.train.filter((r) => r.hospital_id === o.hospital);
  const cfg = { seqLen: o.seqLen, windowDays: OBSERVATION_WINDOW_DAYS };
  // Statistics come from the training records only: the test split stays unseen.
  const stats = finalizeFeatureStats(computeFeatureSums(trainRecords, cfg));
  const train = encodeRecords(trainRecords, stats, cfg);
  const test = encodeRecords(split.test, stats, cfg);
  const rows = labelledIndices(train);
  const excluded = train.n - rows.length;
  if (rows.length === 0) {
    throw new CliError(`none of the ${train.n} training record(s) has a known risk_level (FHIR imports have none): nothing to train on`);
  }
  if (excluded > 0) process.stderr.write(`${excluded} training record(s) have unknown outcomes and are excluded from supervised training\n`);

  const model = createClassifier({}, o.seed);
  try {
    const batches = Math.ceil(rows.length / o.batchSize);
    const bar = new ProgressBar('train', o.epochs * batches, process.stderr, o.progress);
    const result = await trainLocal(
      model,
      train,
      { epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed },
      (p) => bar.update((p.epoch - 1) * p.batches + p.batch, `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)}`),
      rows,
    );
    bar.done();
    const perHospital: Record<string, TestMetrics> = {};
    for (const h of hospitals) {
      const idx = [...split.test.keys()].filter((i) => (split.test[i] as PatientRecord).hospital_id === h);
      perHospital[h] = toTestMetrics(await evaluate(model, test, idx));
    }
    return {
      trained_on: o.hospital === undefined ? hospitals : [o.hospital],
      train_examples: rows.length,
      excluded_unlabelled: excluded,
      epochs: result.epochs,
      test: toTestMetrics(await evaluate(model, test)),
      per_hospital: perHospital,
      params: countParams(model.params),
      seq_len: o.seqLen,
      backend: '',
      train_seconds: result.seconds,
    };
  } finally {
    model.dispose();
  }
}

function num(name: string, raw: string, integer: boolean): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new CliError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`, 2);
  }
  return v;
}

export function printReport(r: TrainReport): void {
  const f = (v: number) => (Number.isNaN(v) ? '—' : v.toFixed(3));
  const rows = [['pooled', r.test] as const, ...Object.entries(r.per_hospital)].map(([name, m]) => [
    name,
    String(m.num_examples),
    f(m.auc_roc),
    f(m.auc_pr),
    f(m.f1_score),
    f(m.test_accuracy),
    f(m.test_loss),
  ]);
  process.stdout.write(`trained on ${r.trained_on.join('+')} (${r.train_examples} examples, ${r.params} parameters, T=${r.seq_len}, ${r.backend}, ${r.train_seconds.toFixed(0)} s)\n`);
  process.stdout.write(renderTable(['test split', 'n', 'auc_roc', 'auc_pr', 'f1_score', 'accuracy', 'loss'], rows));
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      data: { type: 'string', default: 'data' },
      hospital: { type: 'string' },
      epochs: { type: 'string', default: '10' },
      seed: { type: 'string', default: '1' },
      'seq-len': { type: 'string', default: String(DEFAULT_SEQ_LEN) },
      'batch-size': { type: 'string', default: '32' },
      lr: { type: 'string', default: '0.001' },
      backend: { type: 'string', default: 'wasm' },
      plot: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.backend !== 'wasm' && values.backend !== 'cpu') throw new CliError(`--backend must be wasm or cpu, got "${values.backend}"`, 2);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new CliError(`--seed must be an integer, got "${values.seed}"`, 2);
  const backend = await initTf(values.backend as NodeBackend);
  const report = await trainCentral({
    records: loadRecords(values.data),
    ...(values.hospital !== undefined ? { hospital: values.hospital } : {}),
    epochs: num('epochs', values.epochs, true),
    seed,
    seqLen: num('seq-len', values['seq-len'], true),
    batchSize: num('batch-size', values['batch-size'], true),
    learningRate: num('lr', values.lr, false),
    progress: true,
  });
  report.backend = backend;
  if (values.plot) {
    const f = (v: number) => (Number.isFinite(v) ? v : Number.NaN);
    writeFileAtomic(
      values.plot,
      renderChart(`fedcare train: ${report.trained_on.join('+')}, ${report.train_examples} examples`, [
        { title: 'Training loss', xLabel: 'epoch', series: [{ name: 'train loss', points: report.epochs.map((e) => ({ x: e.epoch, y: e.loss })) }] },
        {
          title: 'Test AUC-ROC by split',
          xLabel: 'split (0 = pooled)',
          yRange: [0, 1],
          series: [{ name: 'auc_roc', points: [report.test, ...Object.values(report.per_hospital)].map((m, i) => ({ x: i, y: f(m.auc_roc) })) }],
        },
      ]),
    );
    process.stderr.write(`plot written to ${values.plot}\n`);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printReport(report);
  return 0;
}
