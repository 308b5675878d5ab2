/**
 * The cohort panel (key numbers and four charts) and the table of import problems.
 *
 * Accessibility: each chart is a <figure> with a visible caption; the plot itself is a
 * role="img" element whose aria-label spells out every value, so a screen reader gets the data.
 * recharts' own accessibility layer (a focusable role="application" <svg>) is switched off: a
 * focusable element inside role="img" is an axe `nested-interactive` violation.
 */
import { useId, type ReactElement } from 'react';
import { Bar, BarChart, CartesianGrid, LabelList, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { CohortSummary } from '../data/cohort';
import type { ImportOutcome } from '../data/importFiles';

const BAR_FILL = '#1d3557';
/** Axis and label text: the page's text colour (contrast 14:1 on white). */
const TICK = { fill: '#1d2433', fontSize: 12 };
const CHART_HEIGHT = 220;
const MARGIN = { top: 20, right: 24, bottom: 4, left: 0 };
export const MAX_ISSUE_ROWS = 200;

export function formatPercent(v: number, digits = 1): string {
  return `${(v * 100).toFixed(digits)} %`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function Chart({ title, label, children }: { title: string; label: string; children: ReactElement }) {
  return (
    <figure style={{ margin: 0 }}>
      <figcaption>
        <strong>{title}</strong>
      </figcaption>
      <div role="img" aria-label={label}>
        <ResponsiveContainer width="100%" height={CHART_HEIGHT}>
          {children}
        </ResponsiveContainer>
      </div>
    </figure>
  );
}

/**
 * One column chart of the panel: counts (integer axis) or rates (0–100 % axis), each bar labelled
 * with its value (or with the `text` field of its row).
 */
function ColumnChart(props: {
  title: string;
  label: string;
  data: readonly object[];
  category: string;
  value: string;
  name: string;
  text?: string;
  percent?: boolean;
  smallTicks?: boolean;
}) {
  const { percent = false } = props;
  return (
    <Chart title={props.title} label={props.label}>
      <BarChart data={props.data as object[]} margin={MARGIN} accessibilityLayer={false}>
        <CartesianGrid strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey={props.category} tick={props.smallTicks ? { ...TICK, fontSize: 11 } : TICK} {...(props.smallTicks ? { interval: 0 } : {})} />
        {percent ? (
          <YAxis domain={[0, 1]} tickFormatter={(v: number) => formatPercent(v, 0)} tick={TICK} width={56} />
        ) : (
          <YAxis allowDecimals={false} tick={TICK} width={48} />
        )}
        {percent ? <Tooltip formatter={(v: unknown) => (typeof v === 'number' ? formatPercent(v) : String(v))} /> : <Tooltip />}
        <Bar dataKey={props.value} name={props.name} fill={BAR_FILL} isAnimationActive={false}>
          <LabelList dataKey={props.text ?? props.value} position="top" fill={TICK.fill} fontSize={11} />
        </Bar>
      </BarChart>
    </Chart>
  );
}

export function CohortPanel({ summary }: { summary: CohortSummary }) {
  const headingId = useId();
  const sex = summary.sex.map((s) => `${s.sex === 'F' ? 'female' : 'male'} ${s.count}`).join(', ');
  const outcomes = summary.outcomes.map((o) => ({ ...o, text: o.known > 0 ? formatPercent(o.rate) : 'unknown' }));
  const missing = summary.missingness.map((m) => ({ ...m, text: formatPercent(m.missing, 0) }));
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>Cohort</h2>
      <dl style={{ display: 'grid', gridTemplateColumns: 'max-content 1fr', gap: '0.2rem 1rem', margin: '0 0 0.75rem' }}>
        <dt>Patients</dt>
        <dd style={{ margin: 0 }} data-testid="cohort-count">
          {summary.count}
        </dd>
        <dt>Labelled (risk level known)</dt>
        <dd style={{ margin: 0 }} data-testid="cohort-labelled">
          {summary.labelled}
        </dd>
        <dt>Sex</dt>
        <dd style={{ margin: 0 }}>{sex}</dd>
      </dl>
      {summary.count === 0 ? (
        <p className="muted">No records imported yet.</p>
      ) : (
        <div style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(360px, 1fr))', gap: '1rem' }}>
          <ColumnChart
            title="Age distribution (patients per 10 years)"
            label={`Bar chart of patients by age: ${summary.ageHistogram.map((b) => `${b.bin}: ${b.count}`).join(', ')}.`}
            data={summary.ageHistogram}
            category="bin"
            value="count"
            name="Patients"
            smallTicks
          />
          <ColumnChart
            title="Outcome rates (where known)"
            label={`Bar chart of outcome rates: ${outcomes.map((o) => `${o.name} ${o.text} of ${plural(o.known, 'patient')} with a known outcome`).join(', ')}.`}
            data={outcomes}
            category="name"
            value="rate"
            name="Rate"
            text="text"
            percent
          />
          <ColumnChart
            title="Risk level"
            label={`Bar chart of patients per risk level: ${summary.riskLevels.map((r) => `${r.level} ${r.count}`).join(', ')}.`}
            data={summary.riskLevels}
            category="level"
            value="count"
            name="Patients"
          />
          <Chart
            title="Missing data per modality (share of patients)"
            label={`Horizontal bar chart of the share of patients without each modality: ${missing.map((m) => `${m.label} ${m.text}`).join(', ')}.`}
          >
            <BarChart data={missing} layout="vertical" margin={{ ...MARGIN, top: 4, right: 48 }} accessibilityLayer={false}>
              <CartesianGrid strokeDasharray="3 3" horizontal={false} />
              <XAxis type="number" domain={[0, 1]} ticks={[0, 0.5, 1]} interval={0} tickFormatter={(v: number) => formatPercent(v, 0)} tick={TICK} />
              <YAxis type="category" dataKey="label" tick={TICK} width={130} />
              <Tooltip formatter={(v: unknown) => (typeof v === 'number' ? formatPercent(v) : String(v))} />
              {/* minPointSize: a 0 % bar keeps a sliver, so its label still shows */}
              <Bar dataKey="missing" name="Missing" fill={BAR_FILL} minPointSize={2} isAnimationActive={false}>
                <LabelList dataKey="text" position="right" fill={TICK.fill} fontSize={11} />
              </Bar>
            </BarChart>
          </Chart>
        </div>
      )}
    </section>
  );
}

/** The import's problems: file, where, field, message; the first MAX_ISSUE_ROWS rows. */
export function ImportIssues({ outcome }: { outcome: ImportOutcome }) {
  const headingId = useId();
  const n = outcome.issues.length;
  if (n === 0) {
    return (
      <p className="ok" role="status">
        No problems: {plural(outcome.records.length, 'record')} imported.
      </p>
    );
  }
  const shown = outcome.issues.slice(0, MAX_ISSUE_ROWS);
  return (
    <div>
      <h3 id={headingId}>{plural(n, 'problem')} — valid records were kept</h3>
      <table aria-labelledby={headingId}>
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">Where</th>
            <th scope="col">Field</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((i, k) => (
            <tr key={k}>
              <td>{i.file}</td>
              <td>{i.where}</td>
              <td>
                <code>{i.field}</code>
              </td>
              <td>{i.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {n > MAX_ISSUE_ROWS && <p className="muted">… and {n - MAX_ISSUE_ROWS} more</p>}
    </div>
  );
}
