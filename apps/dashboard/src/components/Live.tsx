import { useDeferredValue, useMemo } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useDash } from '../instance';
import { chartRows, epsilonRows, formatBytes, formatMetric, hospitalAccuracy, latestRound, privacyLabel, reliabilityRows, type RoundRow } from '../metrics';

const COLORS = ['#1d3557', '#e63946', '#2a9d8f', '#f4a261', '#6a4c93', '#457b9d'];
/** Tooltip text in the page's text colour: the series colours are for lines, several are below 4.5:1 as text (axe color-contrast). */
const TOOLTIP_ITEM = { color: '#1d2433' };

export function MetricChart({
  rounds,
  keys,
  title,
  yDomain,
  yFormat,
}: {
  rounds: readonly RoundRow[];
  keys: readonly string[];
  title: string;
  yDomain?: [number, number];
  yFormat?: (v: number) => string;
}) {
  const data = useMemo(() => chartRows(rounds, keys), [rounds, keys]);
  return <LineFigure title={title} data={data} keys={keys} {...(yDomain ? { yDomain } : {})} {...(yFormat ? { yFormat } : {})} />;
}

/** One line per key over the rounds, in a captioned figure. */
export function LineFigure({
  title,
  label,
  data,
  keys,
  names,
  yDomain,
  yFormat,
}: {
  title: string;
  /** The figure's accessible name; default the title. */
  label?: string;
  data: readonly object[];
  keys: readonly string[];
  /** Legend names of the keys, where they differ from the keys. */
  names?: Readonly<Record<string, string>>;
  yDomain?: [number, number];
  yFormat?: (v: number) => string;
}) {
  return (
    <figure style={{ margin: 0 }} aria-label={label ?? title}>
      <figcaption>{title}</figcaption>
      <ResponsiveContainer width="100%" height={200}>
        <LineChart data={data as object[]} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="round" allowDecimals={false} />
          <YAxis {...(yDomain ? { domain: yDomain } : {})} {...(yFormat ? { tickFormatter: yFormat, width: 84 } : {})} />
          <Tooltip itemStyle={TOOLTIP_ITEM} {...(yFormat ? { formatter: (v: unknown) => (typeof v === 'number' ? yFormat(v) : String(v)) } : {})} />
          <Legend />
          {keys.map((k, i) => (
            <Line key={k} type="monotone" dataKey={k} name={names?.[k] ?? k} stroke={COLORS[i % COLORS.length]} dot isAnimationActive={false} connectNulls={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </figure>
  );
}

const LOSS = ['train_loss', 'val_loss', 'test_loss'] as const;
const ACCURACY = ['train_accuracy', 'test_accuracy'] as const;
const AUC = ['auc_roc', 'auc_pr', 'f1_score'] as const;
const BYTES = ['communication_bytes'] as const;
const DURATION = ['round_duration_seconds', 'aggregation_time_seconds'] as const;
/** Multi-task heads (run config task_weights): shown only for a run whose rounds report them. */
const READMISSION = ['readmission_auc_roc'] as const;
const DAYS = ['days_mae', 'days_rmse'] as const;

export function LivePanels() {
  const status = useDash((s) => s.status);
  const stage = useDash((s) => s.stage);
  const run = useDash((s) => s.run);
  const clients = useDash((s) => s.clients);
  const live = useDash((s) => s.live);
  const last = latestRound(live);
  const runId = status?.run_id ?? run?.run_id ?? null;
  const hospitals = last ? Object.keys(last.per_hospital).sort() : [];
  const multiTask = live.rounds.some((r) => r.metrics.readmission_auc_roc != null || r.metrics.days_mae != null);
  return (
    <>
      <section aria-label="Current run">
        <h2>Current run</h2>
        {runId ? (
          <dl>
            <dt>Run</dt>
            <dd data-testid="run-id">{runId}</dd>
            <dt>Status</dt>
            <dd data-testid="run-status">{status?.status ?? run?.status}</dd>
            <dt>Round</dt>
            <dd data-testid="round">
              {status?.current_round ?? run?.round ?? 0} / {status?.total_rounds ?? run?.total_rounds ?? 0}
            </dd>
            <dt>Last completed round</dt>
            <dd data-testid="last-round">{last ? last.round : '—'}</dd>
            <dt>Aggregation</dt>
            <dd data-testid="aggregation">
              {!last
                ? '—'
                : last.metrics.secure_aggregation === 1
                  ? `SecAgg+: the coordinator saw only the sum (${formatMetric(last.metrics.secagg_dropped)} lost in the protocol, ${formatMetric(last.metrics.secagg_recovered)} recovered)`
                  : last.metrics.secure_aggregation === 2
                    ? `HE: the coordinator added ciphertexts; the hospitals decrypted the mean in slices (${formatMetric(last.metrics.secagg_dropped)} lost in the protocol)`
                    : 'in the clear'}
            </dd>
          </dl>
        ) : (
          <p className="muted">No run yet.</p>
        )}
        {stage && stage.run_id === runId && (
          <div aria-label="Stage progress">
            <p>
              Round {stage.round}, stage <strong>{stage.stage}</strong>: {stage.done} / {stage.total}
              {stage.dropped.length > 0 && <span className="error"> (dropped: {stage.dropped.join(', ')})</span>}
            </p>
            <progress max={Math.max(stage.total, 1)} value={stage.done} aria-label={`${stage.stage} progress`} />
          </div>
        )}
      </section>
      <section aria-label="Hospitals">
        <h2>Connected hospitals ({clients.length})</h2>
        {clients.length === 0 ? (
          <p className="muted">None connected.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Hospital</th>
                <th>State</th>
                <th>Host</th>
              </tr>
            </thead>
            <tbody>
              {clients.map((c) => (
                <tr key={c.hospital_id}>
                  <td>{c.hospital_id}</td>
                  <td>{c.state}</td>
                  <td>{c.host ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section className="wide" aria-label="Global metrics">
        <h2>Global metrics</h2>
        <div style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(360px, 1fr))', gap: '1rem' }}>
          <MetricChart rounds={live.rounds} keys={LOSS} title="Loss" />
          <MetricChart rounds={live.rounds} keys={ACCURACY} title="Accuracy" yDomain={[0, 1]} />
          <MetricChart rounds={live.rounds} keys={AUC} title="AUC-ROC, AUC-PR, F1" yDomain={[0, 1]} />
          <MetricChart rounds={live.rounds} keys={BYTES} title="Communication per round" yFormat={(v) => formatBytes(v)} />
          <MetricChart rounds={live.rounds} keys={DURATION} title="Round duration (s)" />
          {multiTask && <MetricChart rounds={live.rounds} keys={READMISSION} title="Readmission (30 d) AUC-ROC" yDomain={[0, 1]} />}
          {multiTask && <MetricChart rounds={live.rounds} keys={DAYS} title="Days to readmission: MAE, RMSE (days)" />}
        </div>
      </section>
      <section className="wide" aria-label="Per-hospital metrics">
        <h2>Per hospital, round {last?.round ?? '—'}</h2>
        {last && (
          <p>
            Fairness: variance {formatMetric(last.metrics.performance_variance, 5)}, min accuracy {formatMetric(last.metrics.min_hospital_accuracy)}, max accuracy{' '}
            {formatMetric(last.metrics.max_hospital_accuracy)}
          </p>
        )}
        {hospitals.length === 0 ? (
          <p className="muted">No round completed yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Hospital</th>
                <th>Accuracy</th>
                <th>Loss</th>
                <th>AUC-ROC</th>
                <th>ECE</th>
                {multiTask && <th>Readmission AUC-ROC</th>}
                {multiTask && <th>Days MAE / RMSE</th>}
                <th>Examples</th>
                <th>Train samples</th>
                <th>Bytes up</th>
                <th>Bytes down</th>
                <th>Privacy</th>
              </tr>
            </thead>
            <tbody>
              {hospitals.map((h) => {
                const m = last?.per_hospital[h] ?? {};
                return (
                  <tr key={h} data-hospital={h}>
                    <td>{h}</td>
                    <td className="num">{formatMetric(hospitalAccuracy(m))}</td>
                    <td className="num">{formatMetric(m.test_loss ?? m.loss)}</td>
                    <td className="num">{formatMetric(m.auc_roc)}</td>
                    <td className="num">{formatMetric(m.ece)}</td>
                    {multiTask && <td className="num">{formatMetric(m.readmission_auc_roc)}</td>}
                    {multiTask && (
                      <td className="num">
                        {formatMetric(m.days_mae, 2)} / {formatMetric(m.days_rmse, 2)}
                      </td>
                    )}
                    <td className="num">{formatMetric(m.num_examples)}</td>
                    <td className="num">{formatMetric(m.num_samples)}</td>
                    <td className="num">{formatBytes(m.communication_bytes_up)}</td>
                    <td className="num">{formatBytes(m.communication_bytes_down)}</td>
                    <td>{privacyLabel(m, last?.metrics ?? {})}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
      <CalibrationPanel rounds={live.rounds} />
      <PrivacyPanel rounds={live.rounds} />
      <DropoutPanel rounds={live.rounds} />
    </>
  );
}

/** Every hospital that did not complete a stage in this run: dropped (disconnected, timed out), rejected or declined. */
function DropoutPanel({ rounds }: { rounds: readonly RoundRow[] }) {
  const rows = rounds.flatMap((r) => r.issues.map((i) => ({ round: r.round, ...i })));
  return (
    <section className="wide" aria-label="Dropouts and declines">
      <h2>Dropouts and declines ({rows.length})</h2>
      {rows.length === 0 ? (
        <p className="muted">Every hospital asked into a stage completed it.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Round</th>
              <th>Hospital</th>
              <th>Stage</th>
              <th>Outcome</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, k) => (
              <tr key={`${r.round}/${r.hospital_id}/${r.stage}/${k}`} data-dropout={r.hospital_id}>
                <td className="num">{r.round}</td>
                <td>{r.hospital_id}</td>
                <td>{r.stage}</td>
                <td className="error">{r.status}</td>
                <td>{r.reason ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** ε spent per hospital over the rounds (DP runs); "not private" otherwise. */
/**
 * Calibration: pooled ECE per round before and after the temperature the hospitals' validation
 * statistics pick, and the last round's reliability diagram per hospital (accuracy against the
 * confidence bin; the diagonal is perfect calibration).
 */
function CalibrationPanel({ rounds: live }: { rounds: readonly RoundRow[] }) {
  // Rendered after the round's main figures (a deferred value): its two charts must not delay them.
  const rounds = useDeferredValue(live);
  const last = rounds.at(-1);
  const { hospitals, rows } = useMemo(() => reliabilityRows(last), [last]);
  return (
    <section className="wide" aria-label="Calibration">
      <h2>Calibration</h2>
      {last?.metrics.ece === undefined || last.metrics.ece === null ? (
        <p className="muted">{last ? 'No calibration figures in this run.' : 'No round completed yet.'}</p>
      ) : (
        <>
          <p data-testid="calibration">
            Round {last.round}: expected calibration error {formatMetric(last.metrics.ece)} (pooled over the hospitals' test splits, 10 bins); temperature scaling picks T ={' '}
            {formatMetric(last.metrics.temperature ?? null, 2)}, ECE {formatMetric(last.metrics.ece_calibrated ?? null)} there. Per hospital:{' '}
            {hospitals.map((h) => `${h} ${formatMetric(last.per_hospital[h]?.ece ?? null)}`).join(', ')}.
          </p>
          <div style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(360px, 1fr))', gap: '1rem' }}>
            <MetricChart rounds={rounds} keys={CALIBRATION} title="ECE per round (before / after temperature scaling)" />
            <figure style={{ margin: 0 }} aria-label={`Reliability diagram of round ${last.round}: accuracy per confidence bin, per hospital`}>
              <figcaption>Reliability, round {last.round} (diagonal: perfectly calibrated)</figcaption>
              <ResponsiveContainer width="100%" height={200}>
                <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="bin" type="number" domain={[0, 1]} tickFormatter={(v: number) => v.toFixed(1)} />
                  <YAxis domain={[0, 1]} />
                  <Tooltip itemStyle={TOOLTIP_ITEM} />
                  <Legend />
                  <Line dataKey="ideal" name="perfect" stroke="#999" strokeDasharray="4 4" dot={false} isAnimationActive={false} />
                  {hospitals.map((h, i) => (
                    <Line key={h} dataKey={h} stroke={COLORS[i % COLORS.length]} dot isAnimationActive={false} connectNulls={false} />
                  ))}
                </LineChart>
              </ResponsiveContainer>
            </figure>
          </div>
        </>
      )}
    </section>
  );
}

const CALIBRATION = ['ece', 'ece_calibrated'] as const;

function PrivacyPanel({ rounds }: { rounds: readonly RoundRow[] }) {
  const { hospitals, rows } = useMemo(() => epsilonRows(rounds), [rounds]);
  const last = rounds.at(-1);
  return (
    <section className="wide" aria-label="Privacy budget">
      <h2>Privacy budget per hospital</h2>
      {hospitals.length === 0 ? (
        <p className="muted">{last ? 'Not private: this run uses no differential privacy (ε = ∞).' : 'No round completed yet.'}</p>
      ) : (
        <>
          <p>
            δ = {formatMetric(last?.metrics.privacy_delta ?? null, 6)}, noise multiplier σ = {formatMetric(last?.metrics.noise_multiplier ?? null)}; ε per hospital
            after round {last?.round}:{' '}
            {hospitals.map((h) => `${h} ${formatMetric(last?.per_hospital[h]?.privacy_epsilon ?? null)}${last?.per_hospital[h]?.privacy_budget_exhausted ? ' (budget spent)' : ''}`).join(', ')}
          </p>
          <LineFigure title="ε spent per hospital" label="Privacy ε per hospital over rounds" data={rows} keys={hospitals} />
        </>
      )}
    </section>
  );
}
