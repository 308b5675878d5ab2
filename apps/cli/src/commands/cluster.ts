/**
 * `fedcare cluster` (seed spec 2.2): federated representation learning and clustering of patients.
 *
 * Scope: the federation runs in this process (shared/src/cluster/federation.ts): hospitals as
 * objects that hold only their own records, a coordinator that learns only what the aggregator
 * returns — plain sums of the hospitals' vectors, or with `--secure-aggregation secagg` one full
 * in-memory SecAgg+ round (Bonawitz et al. 2017) per sum, in fixed point, so that it sees masked
 * vectors and sums only. A run with `task: "cluster"` over the Socket.IO round engine is not built.
 *
 * Pipeline: federated feature statistics → FedAvg on the FederatedAutoencoder (input → 32) →
 * federated k-means on the latent codes for k in [--k-min, --k-max] (Lloyd 1982; greedy
 * k-means++ seeding, Arthur & Vassilvitskii 2007, over a shared-seed candidate pool) → k with the
 * largest federated simplified silhouette → per-cluster report. On generated data (records whose
 * metadata.source is `synthetic:SEED`) the harness regenerates the generator's latent states and
 * reports the adjusted Rand index (Hubert & Arabie 1985) of the clusters against each patient's
 * dominant latent state — an oracle only a simulation has.
 */
import { parseArgs } from 'node:util';
import {
  adjustedRandIndex,
  DEFAULT_CLUSTER_OPTIONS,
  dominantColumn,
  PlainAggregator,
  runFederatedClustering,
  SecAggAggregator,
  type Aggregator,
  type ClusterRun,
} from '@fedcare/shared/cluster';
import { generateHospital, LATENT_STATE_NAMES, RISK_LEVELS, type PatientRecord } from '@fedcare/shared/data';
import { renderChart, type Panel } from '@fedcare/shared/report';
import { stringifyMetrics } from '@fedcare/shared/util';
import { CliError, writeFileAtomic } from '../io';
import { loadRecords } from '../records-io';
import { renderTable } from '../table';
import { initTf } from '../tf-node';

const HELP = `usage: fedcare cluster --data DIR [--hospitals H1,H2,H3] [--rounds 5] [--local-epochs 2]
         [--batch-size 64] [--lr 0.001] [--seed 1] [--seq-len 30] [--k-min 2] [--k-max 8]
         [--secure-aggregation none|secagg] [--plot clusters.svg] [--json]

Trains the FederatedAutoencoder (features → 32) with FedAvg over the hospitals, then runs federated
k-means on the latent codes (hospitals send per-centroid sums and counts; greedy k-means++ seeding
over a candidate pool drawn from a shared seed, never from a patient's point), choosing k in
[--k-min, --k-max] by the largest federated simplified silhouette. Prints, per cluster, its size
per hospital, risk-level mix, readmission rate and the features that set it apart (standardised
mean difference against the other clusters). --secure-aggregation secagg routes every sum through
SecAgg+ (in memory, fixed point): the coordinator sees masked vectors and sums only. The federation
runs in this process. On generated data the adjusted Rand index against each patient's dominant
latent state (the generator's oracle) is reported; --json prints one object (adjusted_rand_index).`;

const OPTIONS = {
  data: { type: 'string', default: 'data' },
  hospitals: { type: 'string', default: 'H1,H2,H3' },
  rounds: { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.rounds) },
  'local-epochs': { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.localEpochs) },
  'batch-size': { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.batchSize) },
  lr: { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.learningRate) },
  seed: { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.seed) },
  'seq-len': { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.seqLen) },
  'k-min': { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.kMin) },
  'k-max': { type: 'string', default: String(DEFAULT_CLUSTER_OPTIONS.kMax) },
  'secure-aggregation': { type: 'string', default: 'none' },
  plot: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function int(name: string, v: string, lo: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo) throw new CliError(`--${name} must be an integer ≥ ${lo}, got ${v}`, 2);
  return n;
}

/**
 * The generator's dominant latent state per record (argmax of the cohort-standardised states), when
 * every record is generated (`synthetic:SEED`) and can be regenerated; otherwise the reason not.
 */
export function dominantLatentStates(hospitals: readonly { id: string; records: readonly PatientRecord[] }[]): { labels: Map<string, Int32Array> } | { reason: string } {
  const rows: Float64Array[] = [];
  const spans: { id: string; from: number; n: number }[] = [];
  let at = 0;
  for (const h of hospitals) {
    const sources = new Set(h.records.map((r) => r.metadata.source ?? ''));
    const source = [...sources][0] ?? '';
    const m = /^synthetic:(\d+)$/.exec(source);
    if (sources.size !== 1 || !m) return { reason: `${h.id}: records are not all from the generator (metadata.source ${[...sources].slice(0, 2).join(', ')})` };
    let gen;
    try {
      gen = generateHospital(h.id, { seed: Number(m[1]), patients: h.records.length });
    } catch (e) {
      return { reason: `${h.id}: cannot regenerate (${(e as Error).message})` };
    }
    const w = LATENT_STATE_NAMES.length;
    const index = new Map(gen.records.map((r, i) => [r.patient_id, i]));
    const mine = new Float64Array(h.records.length * w);
    for (const [i, r] of h.records.entries()) {
      const j = index.get(r.patient_id);
      if (j === undefined) return { reason: `${h.id}: patient ${r.patient_id} is not in the regenerated cohort` };
      mine.set(gen.latentStates.subarray(j * w, (j + 1) * w), i * w);
    }
    rows.push(mine);
    spans.push({ id: h.id, from: at, n: h.records.length });
    at += h.records.length;
  }
  const all = new Float64Array(at * LATENT_STATE_NAMES.length);
  let o = 0;
  for (const r of rows) {
    all.set(r, o);
    o += r.length;
  }
  const dom = dominantColumn(all, at, LATENT_STATE_NAMES.length);
  return { labels: new Map(spans.map((s) => [s.id, dom.subarray(s.from, s.from + s.n)])) };
}

export function clusterChart(result: ClusterRun, title: string): string {
  const xs = result.clusters.map((c) => c.cluster);
  const hospitals = Object.keys(result.clusters[0]?.size_per_hospital ?? {});
  const panels: Panel[] = [
    { title: 'simplified silhouette by k (federated)', xLabel: 'k', series: [{ name: 'silhouette', points: result.selection.map((s) => ({ x: s.k, y: s.silhouette })) }] },
    { title: 'cluster size per hospital', xLabel: 'cluster', series: hospitals.map((h) => ({ name: h, points: result.clusters.map((c) => ({ x: c.cluster, y: c.size_per_hospital[h] ?? 0 })) })) },
    { title: 'risk-level mix', xLabel: 'cluster', yRange: [0, 1], series: RISK_LEVELS.map((l) => ({ name: l, points: result.clusters.map((c) => ({ x: c.cluster, y: c.risk_mix[l] ?? 0 })) })) },
    { title: 'readmission rate', xLabel: 'cluster', series: [{ name: 'readmission_30d', points: xs.map((x, i) => ({ x, y: result.clusters[i]?.readmission_rate ?? 0 })) }] },
  ];
  return renderChart(title, panels);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: OPTIONS });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const mode = values['secure-aggregation'];
  if (mode !== 'none' && mode !== 'secagg') throw new CliError(`--secure-aggregation must be none or secagg, got ${mode}`, 2);
  const ids = values.hospitals.split(',').map((h) => h.trim()).filter(Boolean);
  const all = loadRecords(values.data);
  const data = ids.map((id) => ({ id, records: all.filter((r) => r.hospital_id === id) }));
  const missing = data.filter((h) => h.records.length === 0).map((h) => h.id);
  if (missing.length) throw new CliError(`no records for ${missing.join(', ')} in ${values.data}`, 2);
  if (mode === 'secagg' && ids.length < 2) throw new CliError('--secure-aggregation secagg needs at least 2 hospitals', 2);
  const lr = Number(values.lr);
  if (!(lr > 0)) throw new CliError(`--lr must be a number > 0, got ${values.lr}`, 2);
  const options = {
    rounds: int('rounds', values.rounds, 1),
    localEpochs: int('local-epochs', values['local-epochs'], 1),
    batchSize: int('batch-size', values['batch-size'], 1),
    learningRate: lr,
    seed: int('seed', values.seed, 0),
    seqLen: int('seq-len', values['seq-len'], 1),
    kMin: int('k-min', values['k-min'], 2),
    kMax: int('k-max', values['k-max'], 2),
  };
  if (options.kMax < options.kMin) throw new CliError(`--k-max ${options.kMax} is below --k-min ${options.kMin}`, 2);

  await initTf('wasm');
  const agg: Aggregator = mode === 'secagg' ? new SecAggAggregator({ hospitals: ids, runId: `cluster-${options.seed}` }) : new PlainAggregator();
  const started = performance.now();
  const info = (msg: string) => process.stderr.write(`${msg}\n`);
  const result = await runFederatedClustering(data, agg, {
    ...options,
    onInfo: info,
    onRound: (r, loss) => info(`autoencoder round ${r}/${options.rounds}: reconstruction MSE ${loss.toFixed(4)}`),
  });
  const seconds = (performance.now() - started) / 1000;

  // Evaluation only: the hospitals' own assignments against the generator's oracle (a simulation has both).
  const oracle = dominantLatentStates(data);
  let ari: number | null = null;
  if ('labels' in oracle) {
    const pred: number[] = [];
    const truth: number[] = [];
    for (const h of result.hospitals) {
      pred.push(...h.assignments);
      truth.push(...(oracle.labels.get(h.id) as Int32Array));
    }
    ari = adjustedRandIndex(pred, truth);
  } else info(`adjusted Rand index not computed: ${oracle.reason}`);

  if (values.plot) {
    writeFileAtomic(values.plot, clusterChart(result, `fedcare cluster: k = ${result.k}, ${ids.join('+')}${mode === 'secagg' ? ' (SecAgg+)' : ''}`));
    info(`plot written to ${values.plot}`);
  }
  const out = {
    k: result.k,
    silhouette: result.silhouette,
    adjusted_rand_index: ari,
    ari_reference: 'dominant latent state (argmax of the cohort-standardised generator states: ' + LATENT_STATE_NAMES.join(', ') + ')',
    secure_aggregation: mode,
    hospitals: ids,
    input_width: result.input_width,
    latent_dim: result.latent_dim,
    autoencoder_loss: result.autoencoder_loss,
    selection: result.selection,
    clusters: result.clusters,
    aggregations: result.aggregations,
    seconds,
  };
  if (values.json) {
    process.stdout.write(`${stringifyMetrics(out)}\n`);
    return 0;
  }
  const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(0)}%` : '—');
  process.stdout.write(`k chosen by the federated simplified silhouette (${options.kMin}–${options.kMax}):\n`);
  process.stdout.write(renderTable(['k', 'silhouette', 'cost', 'iterations'], result.selection.map((s) => [String(s.k), s.silhouette.toFixed(3), s.cost.toFixed(1), String(s.iterations)])));
  process.stdout.write(`\n${result.k} clusters (${mode === 'secagg' ? 'every sum through SecAgg+' : 'plain sums'}, ${result.aggregations} aggregations, ${seconds.toFixed(1)} s):\n`);
  process.stdout.write(
    renderTable(
      ['cluster', 'size', ...ids, ...RISK_LEVELS.map((l) => l.toLowerCase()), 'readmission', 'sets it apart (SMD vs rest)'],
      result.clusters.map((c) => [
        String(c.cluster),
        String(c.size),
        ...ids.map((h) => String(c.size_per_hospital[h] ?? 0)),
        ...RISK_LEVELS.map((l) => pct(c.risk_mix[l] ?? Number.NaN)),
        pct(c.readmission_rate),
        c.top_features.map((f) => `${f.feature} ${f.smd >= 0 ? '+' : ''}${f.smd.toFixed(2)}`).join(', '),
      ]),
    ),
  );
  process.stdout.write(`\nadjusted Rand index vs the dominant latent state: ${ari === null ? '— (not generated data)' : ari.toFixed(3)}\n`);
  return 0;
}
