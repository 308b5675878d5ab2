/**
 * Seed spec 8.3's performance tests as a benchmark (`fedcare bench --only spec`): a real coordinator
 * in this process and one `fedcare client` process per hospital, as a deployment runs them.
 *
 *  - "spec_round": one round of the spec configuration — H1–H3 from the default generator (seed
 *    42), the standard model, 5 local epochs, batch 32, FedAvg — wall time and time per stage,
 *    against the spec's limit of 2 minutes per round.
 *  - "spec_bytes": upload and download bytes per client per round, plain, SecAgg+ and HE, against
 *    the spec's 10 MB per client per round, up and down together (1 local epoch: the bytes do not
 *    depend on it), over two rounds, the worst reported. The run's initial model goes once with
 *    preprocessing (round 0, before any round; `model_bytes`), each later model with an evaluate.
 *  - "spec_scaling": the same per-client work (H1–H3-like hospitals of `scalePatients` patients, 1
 *    local epoch) at 5, 10 and 15 hospitals: round time and the coordinator's CPU time, and the
 *    least-squares slope per hospital against the slope of proportional (linear) growth.
 *
 * Asserts nothing about time; the limits are reported next to what was measured.
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { generateHospital, KNOWN_HOSPITALS, toNdjson, type PatientRecord } from '@fedcare/shared/data';
import { median } from '@fedcare/shared/fl';
import { runConfigSchema, type RunConfig } from '@fedcare/shared/protocol';
import { runSimulation } from './commands/simulate';
import { PRIVATE, writeFileAtomic } from './io';
import { renderChart } from '@fedcare/shared/report';

/** Seed spec 8.3. */
export const SPEC_ROUND_LIMIT_S = 120;
export const SPEC_BYTES_LIMIT = 10 * 1024 * 1024;

export interface SpecBenchOptions {
  parts?: readonly ('round' | 'bytes' | 'scaling')[];
  /** Hospital counts of the scaling part (default 5, 10, 15). */
  scale?: readonly number[];
  /** Patients per hospital in the scaling part (default 100). */
  scalePatients?: number;
  /** Write the scaling plot here (SVG). */
  plot?: string;
  onInfo?: (msg: string) => void;
}

export interface SpecRound {
  bench: 'spec_round';
  hospitals: number;
  patients: number;
  local_epochs: number;
  batch_size: number;
  strategy: string;
  /** The coordinator's round_duration_seconds (train + evaluate of the round). */
  round_seconds: number;
  /** Seconds per stage, from its start to its end as the coordinator drove it (preprocess is round 0). */
  stage_seconds: Record<string, number>;
  limit_seconds: number;
  within_limit: boolean;
  test_auc_roc: number | null;
}

export interface SpecBytes {
  bench: 'spec_bytes';
  secure_aggregation: 'none' | 'secagg' | 'he';
  hospitals: number;
  /** Per client per round: the median over clients, and the largest client. */
  bytes_up_median: number;
  bytes_up_max: number;
  bytes_down_median: number;
  bytes_down_max: number;
  /** Upload + download of the client that moved the most. */
  bytes_total_max: number;
  /** The worst round's bytes per client; every round's largest up + down in `per_round`. */
  per_client: Record<string, { up: number; down: number }>;
  per_round: { round: number; bytes_total_max: number }[];
  /** One model's float32 bytes (it travels once per client with preprocessing, round 0). */
  model_bytes: number;
  /** The spec's limit applies to everything a client sends and receives in a round. */
  limit_bytes: number;
  within_limit: boolean;
}

export interface SpecScaling {
  bench: 'spec_scaling';
  hospitals: number;
  patients_per_hospital: number;
  local_epochs: number;
  round_seconds: number;
  /** CPU seconds of this process (the coordinator; the hospitals are child processes) over the run. */
  coordinator_cpu_seconds: number;
  wall_seconds: number;
}

export interface SpecScalingFit {
  bench: 'spec_scaling_fit';
  hospitals: number[];
  /** Least-squares slope of round time per added hospital, and what proportional growth from the smallest run would give. */
  round_seconds_slope: number;
  round_seconds_slope_linear: number;
  coordinator_cpu_slope: number;
  coordinator_cpu_slope_linear: number;
  machine_cores: number;
}

export type SpecBenchRow = SpecRound | SpecBytes | SpecScaling | SpecScalingFit;

function writeCohort(hospitals: readonly string[], make: (h: string, i: number) => PatientRecord[]): { dir: string; records: PatientRecord[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedcare-bench-spec-'));
  const records: PatientRecord[] = [];
  hospitals.forEach((h, i) => {
    const r = make(h, i);
    writeFileAtomic(path.join(dir, `${h}.ndjson`), toNdjson(r), PRIVATE);
    records.push(...r);
  });
  return { dir, records };
}

function config(overrides: Partial<RunConfig>, hospitals: number): RunConfig {
  return runConfigSchema.parse({
    rounds: 1,
    early_stopping_patience: 0,
    min_fit_clients: hospitals,
    min_evaluate_clients: hospitals,
    min_available_clients: hospitals,
    ...overrides,
  });
}

/** Least-squares slope of y on x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}

async function specRound(onInfo?: (m: string) => void): Promise<SpecRound> {
  const hospitals = [...KNOWN_HOSPITALS];
  const { dir, records } = writeCohort(hospitals, (h) => generateHospital(h, { seed: 42 }).records);
  const cfg = config({ local_epochs: 5, batch_size: 32, strategy: 'fedavg' }, hospitals.length);
  const started = new Map<string, number>();
  const stageSeconds: Record<string, number> = {};
  const res = await runSimulation({
    records,
    hospitals,
    config: cfg,
    clients: 'process',
    data: dir,
    onStage: (p) => {
      const key = `${p.round}:${p.stage}`;
      if (p.phase === 'start') started.set(key, performance.now());
      else if (started.has(key)) stageSeconds[p.stage] = (stageSeconds[p.stage] ?? 0) + (performance.now() - started.get(key)!) / 1000;
    },
    ...(onInfo ? { onInfo } : {}),
  });
  const round = res.rounds[0];
  if (!round) throw new Error(`bench spec: the spec round did not complete (${res.summary.status})`);
  const seconds = round.metrics.round_duration_seconds ?? Number.NaN;
  return {
    bench: 'spec_round',
    hospitals: hospitals.length,
    patients: records.length,
    local_epochs: cfg.local_epochs,
    batch_size: cfg.batch_size,
    strategy: cfg.strategy,
    round_seconds: seconds,
    stage_seconds: stageSeconds,
    limit_seconds: SPEC_ROUND_LIMIT_S,
    within_limit: seconds < SPEC_ROUND_LIMIT_S,
    test_auc_roc: (res.summary.test as { auc_roc?: number } | undefined)?.auc_roc ?? null,
  };
}

async function specBytes(mode: SpecBytes['secure_aggregation'], onInfo?: (m: string) => void): Promise<SpecBytes> {
  const hospitals = [...KNOWN_HOSPITALS];
  // Bytes do not depend on the cohort's size or the epochs: small hospitals, one epoch.
  const { dir, records } = writeCohort(hospitals, (h) => generateHospital(h, { seed: 42, patients: 60 }).records);
  const res = await runSimulation({ records, hospitals, config: config({ rounds: 2, local_epochs: 1, secure_aggregation: mode }, hospitals.length), clients: 'process', data: dir, ...(onInfo ? { onInfo } : {}) });
  if (res.rounds.length !== 2) throw new Error(`bench spec: the ${mode} run completed ${res.rounds.length} of 2 rounds (${res.summary.status})`);
  const totalMax = (r: (typeof res.rounds)[number]) => Math.max(...Object.values(r.bytes).map((b) => b.up + b.down));
  const round = res.rounds.reduce((a, b) => (totalMax(b) > totalMax(a) ? b : a));
  const up = Object.values(round.bytes).map((b) => b.up);
  const down = Object.values(round.bytes).map((b) => b.down);
  const maxUp = Math.max(...up);
  const maxDown = Math.max(...down);
  const maxTotal = totalMax(round);
  return {
    bench: 'spec_bytes',
    secure_aggregation: mode,
    hospitals: hospitals.length,
    bytes_up_median: median(up),
    bytes_up_max: maxUp,
    bytes_down_median: median(down),
    bytes_down_max: maxDown,
    bytes_total_max: maxTotal,
    per_client: round.bytes,
    per_round: res.rounds.map((r) => ({ round: r.round, bytes_total_max: totalMax(r) })),
    model_bytes: round.modelBytes ?? Number.NaN,
    limit_bytes: SPEC_BYTES_LIMIT,
    within_limit: maxTotal <= SPEC_BYTES_LIMIT,
  };
}

async function specScaling(n: number, patients: number, onInfo?: (m: string) => void): Promise<SpecScaling> {
  const hospitals = Array.from({ length: n }, (_, i) => `S${i + 1}`);
  const { dir, records } = writeCohort(hospitals, (h, i) => generateHospital(h, { seed: 7, patients, basedOn: KNOWN_HOSPITALS[i % 3] as string }).records);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await runSimulation({ records, hospitals, config: config({ local_epochs: 1 }, n), clients: 'process', data: dir, ...(onInfo ? { onInfo } : {}) });
  const cpu = process.cpuUsage(cpu0);
  const round = res.rounds[0];
  if (!round) throw new Error(`bench spec: the ${n}-hospital round did not complete (${res.summary.status})`);
  return {
    bench: 'spec_scaling',
    hospitals: n,
    patients_per_hospital: patients,
    local_epochs: 1,
    round_seconds: round.metrics.round_duration_seconds ?? Number.NaN,
    coordinator_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    wall_seconds: (performance.now() - t0) / 1000,
  };
}

/** Round time and coordinator CPU against the number of hospitals, with proportional growth for reference. */
export function scalingChart(rows: readonly SpecScaling[]): string {
  const first = rows[0];
  const linear = (key: 'round_seconds' | 'coordinator_cpu_seconds') =>
    first ? rows.map((r) => ({ x: r.hospitals, y: (first[key] * r.hospitals) / first.hospitals })) : [];
  return renderChart(
    `seed spec 8.3 scaling: one round; ${first?.patients_per_hospital ?? "?"} patients, 1 epoch, 1 process per hospital`,
    [
      {
        title: 'round time (s)',
        xLabel: 'hospitals',
        series: [
          { name: 'measured', points: rows.map((r) => ({ x: r.hospitals, y: r.round_seconds })) },
          { name: 'proportional to hospitals', points: linear('round_seconds') },
        ],
      },
      {
        title: 'coordinator CPU (s)',
        xLabel: 'hospitals',
        series: [
          { name: 'measured', points: rows.map((r) => ({ x: r.hospitals, y: r.coordinator_cpu_seconds })) },
          { name: 'proportional to hospitals', points: linear('coordinator_cpu_seconds') },
        ],
      },
    ],
    2,
  );
}

export async function benchSpec(opts: SpecBenchOptions = {}, emit: (row: SpecBenchRow) => void = () => {}): Promise<SpecBenchRow[]> {
  const parts = new Set(opts.parts ?? ['round', 'bytes', 'scaling']);
  const rows: SpecBenchRow[] = [];
  const out = (r: SpecBenchRow) => {
    rows.push(r);
    emit(r);
  };
  if (parts.has('round')) {
    opts.onInfo?.('bench spec: one round of the spec configuration (H1–H3, 5 local epochs) …');
    out(await specRound(opts.onInfo));
  }
  if (parts.has('bytes')) {
    for (const mode of ['none', 'secagg', 'he'] as const) {
      opts.onInfo?.(`bench spec: bytes per client per round, secure aggregation ${mode} …`);
      out(await specBytes(mode, opts.onInfo));
    }
  }
  if (parts.has('scaling')) {
    const counts = [...(opts.scale ?? [5, 10, 15])].sort((a, b) => a - b);
    const scaled: SpecScaling[] = [];
    for (const n of counts) {
      opts.onInfo?.(`bench spec: scaling, ${n} hospitals …`);
      const r = await specScaling(n, opts.scalePatients ?? 100, opts.onInfo);
      scaled.push(r);
      out(r);
    }
    const first = scaled[0];
    if (first && scaled.length > 1) {
      const xs = scaled.map((r) => r.hospitals);
      out({
        bench: 'spec_scaling_fit',
        hospitals: xs,
        round_seconds_slope: slope(xs, scaled.map((r) => r.round_seconds)),
        round_seconds_slope_linear: first.round_seconds / first.hospitals,
        coordinator_cpu_slope: slope(xs, scaled.map((r) => r.coordinator_cpu_seconds)),
        coordinator_cpu_slope_linear: first.coordinator_cpu_seconds / first.hospitals,
        machine_cores: availableParallelism(),
      });
      if (opts.plot) writeFileAtomic(opts.plot, scalingChart(scaled));
    }
  }
  return rows;
}
