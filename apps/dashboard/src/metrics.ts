/**
 * Round metrics as the dashboard keeps them. JSON has no NaN or ±Infinity, so the coordinator's
 * "not measured" (NaN) and "not private" (ε = ∞) arrive as null, on the socket and over REST alike;
 * every value is normalised to `number | null` here and null is drawn as a gap, never as 0.
 */
import type { DashboardServerToClient } from '@fedcare/shared/protocol';

export type MetricValue = number | null;
export type Metrics = Record<string, MetricValue>;

export interface RoundRow {
  round: number;
  metrics: Metrics;
  per_hospital: Record<string, Metrics>;
  /** ISO time: the server's completion time of the round. */
  timestamp?: string;
  /** Hospitals that did not complete a stage of this round (dropped, rejected, declined) and why. */
  issues: ParticipationIssue[];
}

export interface ParticipationIssue {
  hospital_id: string;
  stage: string;
  status: string;
  reason?: string;
}

/** The not-ok entries of a round's participation list (socket and REST carry the store's shape). */
export function participationIssues(list: readonly unknown[] | undefined): ParticipationIssue[] {
  const out: ParticipationIssue[] = [];
  for (const p of list ?? []) {
    if (!p || typeof p !== 'object') continue;
    const e = p as { hospitalId?: unknown; stage?: unknown; status?: unknown; reason?: unknown };
    if (typeof e.hospitalId !== 'string' || typeof e.status !== 'string' || e.status === 'ok') continue;
    out.push({ hospital_id: e.hospitalId, stage: String(e.stage ?? ''), status: e.status, ...(typeof e.reason === 'string' ? { reason: e.reason } : {}) });
  }
  return out;
}

/** The series of one run, live or loaded from history. */
export interface RunSeries {
  run_id: string | null;
  rounds: RoundRow[];
}

export type RoundMessage = Parameters<DashboardServerToClient['dash:round']>[0];

/** Metrics the coordinator has no value for come as null, NaN or ±Infinity: all become null. */
export function metricValue(v: unknown): MetricValue {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function normaliseMetrics(m: Record<string, unknown> | null | undefined): Metrics {
  const out: Metrics = {};
  if (!m || typeof m !== 'object') return out;
  for (const [k, v] of Object.entries(m)) out[k] = metricValue(v);
  return out;
}

/**
 * Adds one round to a run's series (reducer-like, returns a new series): rounds stay sorted, a
 * repeated round (a retry, or history overlapping live data) replaces the earlier one, and a round
 * of another run starts a fresh series.
 */
export function applyRound(
  series: RunSeries,
  msg: { run_id: string; round: number; metrics: Record<string, unknown>; per_hospital?: Record<string, Record<string, unknown>>; timestamp?: string; participation?: readonly unknown[] },
): RunSeries {
  const row: RoundRow = {
    round: msg.round,
    metrics: normaliseMetrics(msg.metrics),
    per_hospital: Object.fromEntries(Object.entries(msg.per_hospital ?? {}).map(([h, m]) => [h, normaliseMetrics(m)])),
    ...(msg.timestamp ? { timestamp: msg.timestamp } : {}),
    issues: participationIssues(msg.participation),
  };
  const base = series.run_id === msg.run_id ? series.rounds.filter((r) => r.round !== msg.round) : [];
  const rounds = [...base, row].sort((a, b) => a.round - b.round);
  return { run_id: msg.run_id, rounds };
}

/** Rows for a recharts chart: `{ round, key1, key2 }`, null where a round has no value (a gap). */
export function chartRows(rounds: readonly RoundRow[], keys: readonly string[]): Array<Record<string, number | null>> {
  return rounds.map((r) => {
    const row: Record<string, number | null> = { round: r.round };
    for (const k of keys) row[k] = r.metrics[k] ?? null;
    return row;
  });
}

/** ε of every hospital per round, one column per hospital (null where a hospital reported none). */
export function epsilonRows(rounds: readonly RoundRow[]): { hospitals: string[]; rows: Array<Record<string, number | null>> } {
  const hospitals = [...new Set(rounds.flatMap((r) => Object.keys(r.per_hospital).filter((h) => r.per_hospital[h]?.privacy_epsilon !== undefined && r.per_hospital[h]?.privacy_epsilon !== null)))].sort();
  const rows = rounds.map((r) => {
    const row: Record<string, number | null> = { round: r.round };
    for (const h of hospitals) row[h] = r.per_hospital[h]?.privacy_epsilon ?? null;
    return row;
  });
  return { hospitals, rows };
}

export function latestRound(series: RunSeries): RoundRow | undefined {
  return series.rounds[series.rounds.length - 1];
}

/** A hospital's accuracy, as the coordinator's fairness figures pick it: `accuracy`, else `test_accuracy`. */
export function hospitalAccuracy(m: Metrics): MetricValue {
  return m.accuracy ?? m.test_accuracy ?? null;
}

/** ε of a hospital (its own figure, else the round's); null means no differential privacy. */
export function privacyLabel(hospital: Metrics, global: Metrics): string {
  const eps = hospital.privacy_epsilon ?? global.privacy_epsilon ?? null;
  return eps === null ? 'not private' : `ε = ${eps.toFixed(2)}`;
}

export function formatMetric(v: MetricValue | undefined, digits = 3): string {
  return v === null || v === undefined ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function formatBytes(v: MetricValue | undefined): string {
  if (v === null || v === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

/** What a past run was, in a few words, for comparing runs: strategy, DP target ε, secure aggregation. */
export function runLabel(run: { run_id: string; config?: Record<string, unknown> } | undefined, runId: string): string {
  const c = run?.config ?? {};
  const parts = [typeof c.strategy === 'string' ? c.strategy : 'run'];
  const dp = c.dp as { target_epsilon?: unknown } | undefined;
  parts.push(dp && typeof dp.target_epsilon === 'number' ? `ε ${dp.target_epsilon}` : 'no DP');
  if (c.secure_aggregation === 'secagg') parts.push('SecAgg+');
  else if (c.secure_aggregation === 'he') parts.push('HE');
  // the run id's random suffix tells two runs with the same settings apart
  return `${parts.join(' · ')} (${runId.slice(-8)})`;
}

/** Runs overlaid: a row per round any of them reached, one column per run id (null where a run has no value). */
export function comparisonRows(runs: readonly { run_id: string; series: RunSeries }[], key: string): Array<Record<string, number | null>> {
  const rounds = [...new Set(runs.flatMap((r) => r.series.rounds.map((x) => x.round)))].sort((a, b) => a - b);
  return rounds.map((round) => {
    const row: Record<string, number | null> = { round };
    for (const r of runs) row[r.run_id] = r.series.rounds.find((x) => x.round === round)?.metrics[key] ?? null;
    return row;
  });
}

/** Bins of the reliability diagram the hospitals report (shared/src/train/calibration.ts: CALIBRATION_BINS). */
export const RELIABILITY_BINS = 10;

/**
 * The reliability diagram of one round: per bin of top-label confidence, each hospital's accuracy
 * (null where its bin is empty) and the bin's mean confidence pooled over the hospitals.
 */
export function reliabilityRows(r: RoundRow | undefined): { hospitals: string[]; rows: Array<Record<string, number | null>> } {
  if (!r) return { hospitals: [], rows: [] };
  const hospitals = Object.keys(r.per_hospital).filter((h) => r.per_hospital[h]?.ece !== undefined && r.per_hospital[h]?.ece !== null).sort();
  const rows = Array.from({ length: RELIABILITY_BINS }, (_, b) => {
    const row: Record<string, number | null> = { bin: (b + 0.5) / RELIABILITY_BINS, ideal: (b + 0.5) / RELIABILITY_BINS };
    let n = 0;
    let conf = 0;
    for (const h of hospitals) {
      const m = r.per_hospital[h] ?? {};
      const count = m[`reliability_${b}_count`] ?? 0;
      row[h] = count && count > 0 ? (m[`reliability_${b}_accuracy`] ?? null) : null;
      if (count && count > 0) {
        n += count;
        conf += count * (m[`reliability_${b}_confidence`] ?? 0);
      }
    }
    row.confidence = n > 0 ? conf / n : null;
    return row;
  });
  return { hospitals, rows };
}
