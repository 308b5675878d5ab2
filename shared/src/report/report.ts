/**
 * The run report (`fedcare report`, the dashboard's Report button through
 * `GET /api/v1/runs/{run_id}/report`): one self-contained HTML page for a hospital's governance
 * board — the model card, the configuration, the metrics of every round as charts and a table, each
 * hospital's figures, fairness, calibration, ε per hospital, who took part and who dropped out with
 * why, and the audit trail of the run (who joined, was refused, was revoked, with times). No script,
 * no external resource: it opens anywhere and prints to PDF from Chromium. It holds counts, metrics
 * and ids of hospitals only; the coordinator never had a patient's record, and the tests check no
 * patient identifier is in it. Pure string building: the CLI and the coordinator both render it.
 */
import type { AuditEntry, ModelCard, RoundMetrics, RoundReport, RunRecord, TabularModelCard } from '../fl';
import { renderChart } from './plot';

/** The round as the charts take it: bytes per hospital summed over its stages. */
export function asReport(runId: string, r: RoundMetrics): RoundReport {
  const bytes: RoundReport['bytes'] = {};
  for (const p of r.participation) {
    const b = (bytes[p.hospitalId] ??= { up: 0, down: 0 });
    b.up += p.bytesUp;
    b.down += p.bytesDown;
  }
  return { runId, round: r.round, metrics: r.metrics, perHospital: r.perHospital, participation: r.participation, bytes };
}

/** Metrics over rounds: ranking quality, losses, fairness, and traffic per hospital. */
export function roundsChart(title: string, rounds: RoundReport[]): string {
  const series = (name: string, f: (r: RoundReport) => number | undefined) => ({ name, points: rounds.map((r) => ({ x: r.round, y: f(r) ?? Number.NaN })) });
  const hospitals = [...new Set(rounds.flatMap((r) => Object.keys(r.perHospital)))].sort();
  return renderChart(title, [
    { title: 'Global model (federated evaluation)', xLabel: 'round', yRange: [0, 1], series: ['auc_roc', 'auc_pr', 'f1_score', 'test_accuracy'].map((k) => series(k, (r) => r.metrics[k])) },
    { title: 'Loss', xLabel: 'round', series: ['train_loss', 'val_loss', 'test_loss'].map((k) => series(k, (r) => r.metrics[k])) },
    { title: 'Test accuracy per hospital (fairness)', xLabel: 'round', yRange: [0, 1], series: hospitals.map((h) => series(h, (r) => r.perHospital[h]?.test_accuracy)) },
    { title: 'Upload per hospital (MB)', xLabel: 'round', series: hospitals.map((h) => series(h, (r) => (r.bytes[h] ? (r.bytes[h] as { up: number }).up / 1e6 : Number.NaN))) },
  ]);
}

export const REPORT_SECTIONS = ['Model card', 'Configuration', 'Metrics per round', 'Hospitals', 'Fairness', 'Calibration', 'Privacy', 'Participation and dropouts', 'Audit trail'] as const;

const esc = (v: unknown) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const clip = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}…` : t);
const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  return `<table><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

const section = (title: (typeof REPORT_SECTIONS)[number], body: string) => `<section id="${title.toLowerCase().replace(/\W+/g, '-')}"><h2>${esc(title)}</h2>${body}</section>`;

/** A tabular run's model card: its MLP, and the schema the hospitals encode with (counts and column names only). */
function tabularCardHtml(card: TabularModelCard): string {
  const d = card.data;
  return `<p>Tabular model <code>${esc(card.model.definition)}</code>, round ${card.model.round}, ${card.model.parameters.toLocaleString('en-US')} parameters; weights SHA-256 <code>${esc(card.model.weights_sha256)}</code>, schema SHA-256 <code>${esc(card.model.schema_sha256)}</code>.</p>
<p>Target <code>${esc(d.target)}</code> over ${d.records.toLocaleString('en-US')} training rows; ${d.numeric_columns.length} numeric and ${d.categorical_columns.length} categorical columns, ${d.width} encoded features.</p>
${table(['class', 'training rows'], d.classes.map((c, i) => [c, d.class_counts[i] ?? '—']))}
${table(['column', 'kind'], [...d.numeric_columns.map((c) => [c, 'numeric']), ...d.categorical_columns.map((c) => [c, 'categorical'])])}
<p>Pooled: ${esc(Object.entries(card.metrics.pooled).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || '—')}. Secure aggregation: ${esc(card.secure_aggregation)}.</p>`;
}

/** The page. `card` is undefined when the run committed no model; a tabular run's card shows its MLP and schema. */
export function reportHtml(run: RunRecord, rounds: readonly RoundMetrics[], card: ModelCard | TabularModelCard | undefined, audit: readonly AuditEntry[], generatedAt = new Date().toISOString()): string {
  const tabular = card?.format === 'fedcare-tabular-model-card/1' ? card : undefined;
  const risk = card?.format === 'fedcare-model-card/1' ? card : undefined;
  const hospitals = [...new Set(rounds.flatMap((r) => Object.keys(r.perHospital)))].sort();
  const last = rounds.at(-1);
  const chart = rounds.length > 0
    ? roundsChart(`run ${run.runId}`, rounds.map((r) => asReport(run.runId, r))).replace(/^<\?xml[^>]*>\s*/, '')
    : '';
  const cardHtml = tabular
    ? tabularCardHtml(tabular)
    : risk
    ? `<p>Model <code>${esc(risk.model.definition)}</code>, round ${risk.model.round}, ${risk.model.parameters.toLocaleString('en-US')} parameters; weights SHA-256 <code>${esc(risk.model.weights_sha256)}</code>.</p>
<p><strong>Intended use.</strong> ${esc(risk.intended_use)}</p><p><strong>Out of scope.</strong> ${esc(risk.out_of_scope)}</p>
${table(['hospital', 'training examples', 'test examples', 'rounds trained'], risk.training.hospitals.map((h) => [h.hospital_id, h.train_examples ?? '—', h.test_examples ?? '—', h.rounds_participated]))}
<p>Pooled: ${esc(Object.entries(risk.metrics.pooled).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || '—')}. Secure aggregation: ${esc(risk.secure_aggregation)}.</p>`
    : '<p class="muted">The run committed no model.</p>';
  const config = Object.entries(run.config).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)]);
  const multiTask = ['readmission_auc_roc', 'days_mae', 'days_rmse'].filter((k) => rounds.some((r) => r.metrics[k] !== undefined));
  const metricNames = ['auc_roc', 'auc_pr', 'f1_score', 'test_accuracy', 'test_loss', 'val_loss', 'train_loss', ...multiTask, 'num_participating_clients', 'round_duration_seconds'];
  const epsilon = (h: string, r: RoundMetrics) => r.perHospital[h]?.privacy_epsilon;
  const dropouts = rounds.flatMap((r) => r.participation.filter((p) => p.status !== 'ok').map((p) => [r.round, p.hospitalId, p.stage, p.status, p.reason ?? '']));
  const participated = rounds.map((r) => [r.round, ...hospitals.map((h) => (r.participation.some((p) => p.hospitalId === h && p.stage === 'train' && p.status === 'ok') ? 'trained' : r.participation.some((p) => p.hospitalId === h) ? 'left out' : '—'))]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedcare run report — ${esc(run.runId)}</title>
<style>
body{font-family:system-ui,sans-serif;color:#1d2433;max-width:1000px;margin:2rem auto;padding:0 1rem;line-height:1.4}
h1{font-size:1.4rem}h2{font-size:1.1rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}th,td{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e3e7ee;vertical-align:top;overflow-wrap:anywhere}
code{font-size:.8rem;word-break:break-all}.muted{color:#5a6475}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}section{break-inside:avoid-page}h2{break-after:avoid}}
</style></head><body>
<h1>fedcare run report — ${esc(run.runId)}</h1>
<p>Status <strong>${esc(run.status)}</strong>${run.reason ? ` (${esc(run.reason)})` : ''}; ${run.lastCompletedRound} of ${run.totalRounds} rounds; created ${esc(run.createdAt)}, last change ${esc(run.updatedAt)}. Report generated ${esc(generatedAt)}. Hospitals: ${esc(hospitals.join(', ') || 'none')}.</p>
${section('Model card', cardHtml)}
${section('Configuration', table(['setting', 'value'], config))}
${section('Metrics per round', `${chart}${table(['round', ...metricNames], rounds.map((r) => [r.round, ...metricNames.map((k) => fmt(r.metrics[k]))]))}`)}
${section('Hospitals', last ? table(['hospital', 'train examples', 'test examples', 'test accuracy', 'AUC-ROC', 'F1', 'test loss'], hospitals.map((h) => {
    const m = last.perHospital[h] ?? {};
    return [h, m.num_samples ?? '—', m.num_examples ?? '—', fmt(m.test_accuracy), fmt(m.auc_roc), fmt(m.f1_score), fmt(m.test_loss)];
  })) : '<p class="muted">no round completed</p>')}
${section('Fairness', table(['round', 'min hospital accuracy', 'max hospital accuracy', 'variance', 'accuracy Low', 'accuracy Medium', 'accuracy High'], rounds.map((r) => [r.round, fmt(r.metrics.min_hospital_accuracy), fmt(r.metrics.max_hospital_accuracy), fmt(r.metrics.performance_variance, 5), fmt(r.metrics.accuracy_low_risk), fmt(r.metrics.accuracy_medium_risk), fmt(r.metrics.accuracy_high_risk)])))}
${section('Calibration', `<p>${esc(risk?.calibration.note ?? 'Not measured by this run.')}</p>${rounds.some((r) => r.metrics.ece !== undefined) ? table(['round', 'pooled ECE', 'temperature', 'ECE at it', ...hospitals.map((h) => `ECE ${h}`)], rounds.map((r) => [r.round, fmt(r.metrics.ece), fmt(r.metrics.temperature, 2), fmt(r.metrics.ece_calibrated), ...hospitals.map((h) => fmt(r.perHospital[h]?.ece))])) : ''}`)}
${section('Privacy', `<p>${esc(risk ? `${risk.privacy.mechanism}${risk.privacy.delta !== null ? `; δ ${risk.privacy.delta}, noise multiplier ${fmt(risk.privacy.noise_multiplier, 2)}, clipping norm ${fmt(risk.privacy.max_grad_norm, 2)}` : ''}` : '')}</p>${table(['round', ...hospitals.map((h) => `ε ${h}`)], rounds.map((r) => [r.round, ...hospitals.map((h) => (epsilon(h, r) === undefined ? 'not private' : fmt(epsilon(h, r), 2)))]))}`)}
${section('Participation and dropouts', `${table(['round', ...hospitals], participated)}<h3>Left out, with why</h3>${table(['round', 'hospital', 'stage', 'status', 'reason'], dropouts)}`)}
${section('Audit trail', table(['time', 'who', 'what', 'outcome', 'detail'], audit.map((e) => [e.at, e.actor, e.action, e.outcome, e.detail ? clip(JSON.stringify(e.detail), 400) : ''])))}
</body></html>
`;
}

/**
 * The run's audit trail: its own entries; those without a run (sign-ins, refusals, revocations)
 * while it ran; and the sign-in before the run of each hospital that took part.
 */
export function runAudit(run: RunRecord, rounds: readonly RoundMetrics[], entries: readonly AuditEntry[]): AuditEntry[] {
  const until = run.status === 'running' ? new Date().toISOString() : run.updatedAt;
  const during = (e: AuditEntry) => e.at >= run.createdAt && e.at <= until;
  const participants = new Set(rounds.flatMap((r) => r.participation.map((p) => `hospital:${p.hospitalId}`)));
  const joinedBefore = new Map<string, AuditEntry>();
  for (const e of entries) {
    if (e.action !== 'join' || !participants.has(e.actor) || e.at >= run.createdAt) continue;
    const seen = joinedBefore.get(e.actor);
    if (!seen || seen.id < e.id) joinedBefore.set(e.actor, e);
  }
  const kept = entries.filter((e) => e.runId === run.runId || (e.runId === undefined && during(e)));
  return [...joinedBefore.values(), ...kept].sort((a, b) => a.id - b.id);
}

