import { useMemo, useState } from 'react';
import { store, useDash } from '../instance';
import { exportFileName, roundsToCsv, roundsToJson } from '../csv';
import { downloadText } from '../download';
import { comparisonRows, formatMetric, latestRound, runLabel } from '../metrics';
import type { RunSummary } from '../api';
import { LineFigure, MetricChart } from './Live';

const COMPARE_METRICS: readonly { key: string; label: string; unit?: true }[] = [
  { key: 'auc_roc', label: 'AUC-ROC', unit: true },
  { key: 'auc_pr', label: 'AUC-PR', unit: true },
  { key: 'f1_score', label: 'F1', unit: true },
  { key: 'test_accuracy', label: 'Test accuracy', unit: true },
  { key: 'test_loss', label: 'Test loss' },
  { key: 'privacy_epsilon', label: 'ε spent' },
  { key: 'readmission_auc_roc', label: 'Readmission AUC-ROC (multi-task)', unit: true },
  { key: 'days_mae', label: 'Days to readmission MAE (multi-task)' },
  { key: 'days_rmse', label: 'Days to readmission RMSE (multi-task)' },
];

/** The ticked runs overlaid, one line each, for a chosen metric; with each run's final value. */
function Comparison({ runs }: { runs: readonly RunSummary[] }) {
  const compared = useDash((s) => s.compared);
  const [key, setKey] = useState('auc_roc');
  const metric = COMPARE_METRICS.find((m) => m.key === key) ?? COMPARE_METRICS[0]!;
  const data = useMemo(() => comparisonRows(compared, metric.key), [compared, metric.key]);
  const names = useMemo(() => Object.fromEntries(compared.map((c) => [c.run_id, runLabel(runs.find((r) => r.run_id === c.run_id), c.run_id)])), [compared, runs]);
  if (compared.length === 0) return null;
  return (
    <div aria-label="Runs compared">
      <h3>Compare runs</h3>
      {compared.length < 2 ? (
        <p className="muted">Tick another run to compare it with {names[compared[0]!.run_id]}.</p>
      ) : (
        <>
          <label style={{ maxWidth: 240 }}>
            Metric
            <select value={metric.key} onChange={(e) => setKey(e.target.value)}>
              {COMPARE_METRICS.map((m) => (
                <option key={m.key} value={m.key}>
                  {m.label}
                </option>
              ))}
            </select>
          </label>
          <LineFigure title={`${metric.label} per round`} label={`Runs compared: ${metric.label}`} data={data} keys={compared.map((c) => c.run_id)} names={names} {...(metric.unit ? { yDomain: [0, 1] as [number, number] } : {})} />
          <table>
            <thead>
              <tr>
                <th>Run</th>
                <th>Rounds</th>
                <th>Final {metric.label}</th>
              </tr>
            </thead>
            <tbody>
              {compared.map((c) => (
                <tr key={c.run_id}>
                  <td>{names[c.run_id]}</td>
                  <td className="num">{c.series.rounds.length}</td>
                  <td className="num">{formatMetric(latestRound(c.series)?.metrics[metric.key])}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

export function HistoryPanel() {
  const runs = useDash((s) => s.runs);
  const selected = useDash((s) => s.selected);
  const error = useDash((s) => s.historyError);
  const compared = useDash((s) => s.compared);
  const selectedRun = runs.find((r) => r.run_id === selected?.run_id);
  return (
    <section className="wide" aria-label="Run history">
      <h2>
        Run history{' '}
        <button type="button" onClick={() => void store.getState().loadRuns()}>
          Refresh
        </button>
      </h2>
      {error && <p className="error">{error}</p>}
      {runs.length === 0 ? (
        <p className="muted">No runs yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Run</th>
              <th>Status</th>
              <th>Strategy</th>
              <th>Rounds</th>
              <th>Created</th>
              <th />
              <th>Compare</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.run_id}>
                <td>{r.run_id}</td>
                <td>
                  {r.status}
                  {r.reason ? ` (${r.reason})` : ''}
                </td>
                <td>{typeof r.config?.strategy === 'string' ? r.config.strategy : '—'}</td>
                <td className="num">
                  {r.last_completed_round ?? 0} / {r.total_rounds ?? '—'}
                </td>
                <td>{r.created_at ?? '—'}</td>
                <td>
                  <button type="button" onClick={() => void store.getState().loadRun(r.run_id)}>
                    Metrics
                  </button>
                </td>
                <td>
                  <input type="checkbox" aria-label={`Compare ${r.run_id}`} checked={compared.some((c) => c.run_id === r.run_id)} onChange={() => void store.getState().toggleCompare(r.run_id)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Comparison runs={runs} />
      {selected && (
        <div aria-label={`Metrics of run ${selected.run_id}`}>
          <h3>
            Run {selected.run_id}: {selected.series.rounds.length} rounds{' '}
            <button type="button" onClick={() => downloadText(exportFileName(selected.run_id, 'csv'), roundsToCsv(selected.run_id, selected.series.rounds), 'text/csv')}>
              Export CSV
            </button>{' '}
            <button type="button" onClick={() => downloadText(exportFileName(selected.run_id, 'json'), roundsToJson(selected.run_id, selected.series.rounds, selectedRun), 'application/json')}>
              Export JSON
            </button>{' '}
            <button type="button" onClick={() => void store.getState().downloadReport(selected.run_id, (name, html) => downloadText(name, html, 'text/html'))}>
              Report (HTML)
            </button>
          </h3>
          <MetricChart rounds={selected.series.rounds} keys={['test_loss', 'test_accuracy', 'auc_roc', 'auc_pr', 'f1_score']} title={`Run ${selected.run_id}`} />
        </div>
      )}
    </section>
  );
}
