import { store, useDash } from '../instance';
import { exportFileName, roundsToCsv, roundsToJson } from '../csv';
import { downloadText } from '../download';
import { MetricChart } from './Live';

export function HistoryPanel() {
  const runs = useDash((s) => s.runs);
  const selected = useDash((s) => s.selected);
  const error = useDash((s) => s.historyError);
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
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {selected && (
        <div aria-label={`Metrics of run ${selected.run_id}`}>
          <h3>
            Run {selected.run_id}: {selected.series.rounds.length} rounds{' '}
            <button type="button" onClick={() => downloadText(exportFileName(selected.run_id, 'csv'), roundsToCsv(selected.run_id, selected.series.rounds), 'text/csv')}>
              Export CSV
            </button>{' '}
            <button type="button" onClick={() => downloadText(exportFileName(selected.run_id, 'json'), roundsToJson(selected.run_id, selected.series.rounds, selectedRun), 'application/json')}>
              Export JSON
            </button>
          </h3>
          <MetricChart rounds={selected.series.rounds} keys={['test_loss', 'test_accuracy', 'auc_roc', 'auc_pr', 'f1_score']} title={`Run ${selected.run_id}`} />
        </div>
      )}
    </section>
  );
}
