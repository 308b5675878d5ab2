/**
 * Export of a run's metrics (pure: strings in, strings out; the browser download is in download.ts).
 * CSV is long-ish: one row per round for the global metrics (scope "global") and one per hospital
 * (scope = hospital id); columns are the union of metric names, seed spec 6.1 names first. Missing
 * or null values are empty cells.
 */
import { csvCell } from '@fedcare/shared/util';
import type { RoundRow } from './metrics';

const PREFERRED = [
  'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'test_loss', 'test_accuracy', 'auc_roc', 'auc_pr', 'f1_score',
  'precision', 'recall', 'accuracy_high_risk', 'accuracy_medium_risk', 'accuracy_low_risk', 'num_participating_clients',
  'aggregation_time_seconds', 'communication_bytes', 'round_duration_seconds', 'privacy_epsilon', 'privacy_delta',
  'noise_multiplier', 'performance_variance', 'min_hospital_accuracy', 'max_hospital_accuracy',
];

/**
 * RFC 4180 quoting, and formula-leading text (= + - @ tab CR) neutralised with a leading `'`
 * (OWASP CSV injection): metric names and hospital ids are chosen by hospitals.
 */
export const csvField = csvCell;

export function metricColumns(rounds: readonly RoundRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rounds) {
    for (const k of Object.keys(r.metrics)) seen.add(k);
    for (const m of Object.values(r.per_hospital)) for (const k of Object.keys(m)) seen.add(k);
  }
  const first = PREFERRED.filter((k) => seen.has(k));
  const rest = [...seen].filter((k) => !PREFERRED.includes(k)).sort();
  return [...first, ...rest];
}

export function roundsToCsv(runId: string, rounds: readonly RoundRow[]): string {
  const cols = metricColumns(rounds);
  const lines = [['run_id', 'round_number', 'scope', 'timestamp', ...cols].map(csvField).join(',')];
  for (const r of rounds) {
    const scopes: Array<[string, Record<string, number | null>]> = [['global', r.metrics], ...Object.entries(r.per_hospital).sort(([a], [b]) => a.localeCompare(b))];
    for (const [scope, m] of scopes) {
      lines.push([runId, r.round, scope, r.timestamp ?? null, ...cols.map((c) => m[c] ?? null)].map(csvField).join(','));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

export function roundsToJson(runId: string, rounds: readonly RoundRow[], run?: unknown): string {
  return `${JSON.stringify({ run_id: runId, ...(run === undefined ? {} : { run }), rounds: rounds.map((r) => ({ round_number: r.round, timestamp: r.timestamp ?? null, metrics: r.metrics, per_hospital: r.per_hospital })) }, null, 2)}\n`;
}

/** A file name safe on every OS: fedcare-<run>-metrics.<ext>. */
export function exportFileName(runId: string, ext: 'csv' | 'json'): string {
  return `fedcare-${runId.replace(/[^A-Za-z0-9._-]/g, '_')}-metrics.${ext}`;
}
