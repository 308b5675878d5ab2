import { useEffect, useMemo, useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import { useStore } from 'zustand';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { CohortPanel, ImportIssues } from './components/Cohort';
import { PatientsPanel } from './components/Patients';
import { Portal } from './portal';
import { createPortalStore, trainingFraction, type PortalState } from './store';
import { BACKEND_ORDER, type BackendChoice } from './worker/protocol';

/** Empty: same origin. VITE_FEDCARE_SERVER points a dev build at another coordinator. */
const SERVER = (import.meta.env.VITE_FEDCARE_SERVER as string | undefined) ?? '';
const params = new URLSearchParams(globalThis.location.search);
const store = createPortalStore();
/** `?threads=N`: WASM on N threads (a positive integer) instead of one per physical core. */
const threadsParam = Number(params.get('threads'));
const portal = new Portal(store, SERVER, params.get('hospital') ?? undefined, Number.isInteger(threadsParam) && threadsParam > 0 ? threadsParam : undefined);

function usePortal<T>(selector: (s: PortalState) => T): T {
  return useStore(store, selector);
}

export function App() {
  const hospitalId = usePortal((s) => s.hospitalId);
  useEffect(() => {
    void portal.resume();
  }, []);
  return hospitalId ? <HospitalPortal hospitalId={hospitalId} /> : <SignIn />;
}

function SignIn() {
  const [value, setValue] = useState('');
  const error = usePortal((s) => s.signInError);
  const expected = params.get('hospital');
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) void portal.signIn(value);
  };
  return (
    <main className="single">
      <section className="signin" aria-labelledby="signin-title">
        <h1 id="signin-title">fedcare hospital portal{expected ? ` — ${expected}` : ''}</h1>
        <form onSubmit={onSubmit}>
          <label>
            Hospital token
            <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
          </label>
          <button type="submit">Sign in</button>
        </form>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <p className="muted">Patient records stay in this browser (IndexedDB); only model updates are sent. The token stays in this tab.</p>
      </section>
    </main>
  );
}

function HospitalPortal({ hospitalId }: { hospitalId: string }) {
  const connection = usePortal((s) => s.connection);
  return (
    <>
      <header>
        <h1>fedcare hospital portal — {hospitalId}</h1>
        <span role="status" aria-live="polite" data-testid="connection">
          {connection}
        </span>
        <button type="button" onClick={() => portal.signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <CoordinatorPanel />
        <TrainingPanel />
        <DataPanel />
        <LocalMetricsPanel />
        <Patients hospitalId={hospitalId} />
        <LogPanel />
      </main>
    </>
  );
}

function Patients({ hospitalId }: { hospitalId: string }) {
  const model = usePortal((s) => s.model);
  const patients = usePortal((s) => s.patients);
  const personalisation = usePortal((s) => s.personalisation);
  const table = usePortal((s) => s.loaded?.table);
  // Scoring and personalisation are the risk model's: a table (tabular runs) has neither yet.
  if (table) return null;
  return (
    <PatientsPanel
      hospitalId={hospitalId}
      model={model}
      patients={patients}
      personalisation={personalisation}
      onScore={(which) => void portal.scorePatients(which)}
      onPersonalise={() => void portal.personalise()}
    />
  );
}

function CoordinatorPanel() {
  const status = usePortal((s) => s.status);
  const statusError = usePortal((s) => s.statusError);
  const hospitalId = usePortal((s) => s.hospitalId);
  return (
    <section aria-labelledby="coordinator-title">
      <h2 id="coordinator-title">Coordinator</h2>
      {statusError ? <p className="error">{statusError}</p> : null}
      {status ? (
        <table>
          <tbody>
            <tr>
              <th scope="row">Run</th>
              <td data-testid="run-status">
                {status.run_id ?? 'none'} ({status.status})
              </td>
            </tr>
            <tr>
              <th scope="row">Round</th>
              <td>
                {status.current_round} of {status.total_rounds}
                {status.stage ? `, stage ${status.stage}` : ''}
              </td>
            </tr>
            <tr>
              <th scope="row">Hospitals connected</th>
              <td>{status.active_clients.length ? status.active_clients.join(', ') : 'none'}{hospitalId && status.active_clients.includes(hospitalId) ? ' (including you)' : ''}</td>
            </tr>
            <tr>
              <th scope="row">Global accuracy</th>
              <td>{status.global_accuracy === null ? '—' : status.global_accuracy.toFixed(3)}</td>
            </tr>
          </tbody>
        </table>
      ) : (
        <p className="muted">Asking the coordinator …</p>
      )}
    </section>
  );
}

function TrainingPanel() {
  const s = usePortal((x) => x);
  const joined = s.connection !== 'offline' && s.connection !== 'refused';
  const canJoin = !joined && !!s.backend && !!s.loaded && s.loaded.numTrainExamples > 0;
  const fraction = trainingFraction(s.progress);
  const train = s.progress?.train;
  const runRounds = s.status?.run_id && s.run?.run_id === s.status.run_id ? s.status.total_rounds : s.status?.total_rounds;
  return (
    <section aria-labelledby="training-title">
      <h2 id="training-title">Training</h2>
      <BackendPanel joined={joined} />
      <PrivacyPolicy joined={joined} current={s.maxEpsilon} />
      <IdentityAndRoster joined={joined} />
      <p>
        {s.loaded?.table
          ? `Table ${s.loaded.table.name} in the worker (tabular runs): ${s.loaded.records} rows, ${s.loaded.train} train, ${s.loaded.val} validation, ${s.loaded.test} test.`
          : s.loaded
            ? `${s.loaded.records} records in the worker: ${s.loaded.train} train (${s.loaded.numTrainExamples} labelled), ${s.loaded.val} validation, ${s.loaded.test} test.`
            : 'Import records to take part.'}
      </p>
      <div className="row">
        <button type="button" onClick={() => portal.join()} disabled={!canJoin}>
          Join round
        </button>
        <button type="button" onClick={() => portal.leave()} disabled={!joined}>
          Leave
        </button>
        {s.connectionError ? <span className="muted">{s.connectionError}</span> : null}
      </div>
      <h3>Progress</h3>
      <label>
        Run: round {s.status?.current_round ?? 0} of {runRounds ?? 0}
        <progress max={Math.max(1, runRounds ?? 1)} value={s.status?.current_round ?? 0} />
      </label>
      <p data-testid="stage">
        {s.stage
          ? `round ${s.stage.round}: ${s.stage.stage} — ${s.stage.state === 'working' ? 'working' : s.stage.state === 'sent' ? 'sent' : `declined (${s.stage.reason ?? ''})`}`
          : joined
            ? 'waiting for the coordinator'
            : 'not taking part'}
      </p>
      <label>
        Local training{train ? `: epoch ${train.epoch} of ${train.epochs}, loss ${train.loss.toFixed(3)}` : ''}
        <progress max={1} value={fraction ?? 0} data-testid="train-progress" />
      </label>
      <label>
        Minibatches{train ? `: ${train.batch} of ${train.batches}` : ''}
        <progress max={Math.max(1, train?.batches ?? 1)} value={train?.batch ?? 0} />
      </label>
    </section>
  );
}

/** The hospital's own ε cap: with one, it trains only in differentially private runs and never past it. */
/**
 * Which TF.js backend trains here and how it was chosen: the ones skipped and why, a software
 * WebGPU adapter called what it is, backends that failed while in use, and a check of the backend
 * against a reference (one training step on synthetic patients).
 */
function BackendPanel({ joined }: { joined: boolean }) {
  const choice = usePortal((s) => s.backendChoice);
  const backend = usePortal((s) => s.backend);
  const error = usePortal((s) => s.backendError);
  const check = usePortal((s) => s.backendCheck);
  const onBackend = (e: ChangeEvent<HTMLSelectElement>) => void portal.startWorker(e.target.value as BackendChoice);
  const skipped = backend?.attempts.filter((a) => !a.ok) ?? [];
  return (
    <div>
      <div className="row">
        <label>
          TensorFlow.js backend
          <select value={choice} onChange={onBackend} disabled={joined} data-testid="backend-select">
            <option value="auto">automatic (WebGPU → WebGL → WASM → CPU)</option>
            {BACKEND_ORDER.map((b) => (
              <option key={b} value={b}>
                {b}
              </option>
            ))}
          </select>
        </label>
        <p>
          In use: <strong data-testid="backend" data-threads={backend?.threads}>{backend ? backend.backend : error ? 'none' : 'starting …'}</strong>
          {backend ? <span className="muted" data-testid="backend-detail"> — {backend.detail}</span> : null}
        </p>
      </div>
      {error ? <p className="error" role="alert">{error}</p> : null}
      {skipped.length ? (
        <ul className="muted small" data-testid="backend-fallbacks">
          {skipped.map((a) => (
            <li key={a.backend}>
              {a.backend} not used: {a.reason}
            </li>
          ))}
        </ul>
      ) : null}
      {backend?.failures.length ? (
        <ul className="error small" data-testid="backend-failures">
          {backend.failures.map((f) => (
            <li key={`${f.backend}-${f.at}`}>
              {f.backend} failed{f.during ? ` during ${f.during}` : ''}: {f.reason} — given up for this session
            </li>
          ))}
        </ul>
      ) : null}
      <div className="row">
        <button type="button" onClick={() => void portal.checkBackend()} disabled={!backend || check === 'running' || joined} data-testid="backend-check">
          Check the backend
        </button>
        <span className="muted small">
          {backend ? `one training step and one DP-SGD clipping pass on synthetic patients, on ${backend.backend} and on ${backend.backend === 'wasm' ? 'cpu' : 'wasm'}, compared` : ''}
        </span>
      </div>
      <BackendCheckResult check={check} />
    </div>
  );
}

function BackendCheckResult({ check }: { check: PortalState['backendCheck'] }) {
  if (check === undefined) return null;
  if (check === 'running') return <p data-testid="backend-check-result">checking … (a minute on a software adapter)</p>;
  if ('error' in check) return <p className="error" role="alert" data-testid="backend-check-result">backend check failed: {check.error}</p>;
  const e = (v: number) => v.toExponential(1);
  return (
    <p
      data-testid="backend-check-result"
      data-agrees={String(check.agrees)}
      data-loss-error={check.lossRelativeError}
      data-gradient-error={check.worstRelativeError}
      data-norm-error={check.normRelativeError}
      className={check.agrees ? undefined : 'error'}
    >
      {check.backend} against {check.reference}: loss {e(check.lossRelativeError)}, gradients and DP-clipped sums at most {e(check.worstRelativeError)} apart (relative;{' '}
      {check.worstParam}), per-example norms {e(check.normRelativeError)} —{' '}
      <strong>{check.agrees ? 'they agree' : `they disagree (tolerance ${e(check.tolerance)}): do not train on ${check.backend}`}</strong>; {check.seconds.backend.toFixed(1)} s here, {check.seconds.reference.toFixed(1)} s on {check.reference}
    </p>
  );
}

function PrivacyPolicy({ joined, current }: { joined: boolean; current: number | undefined }) {
  const [value, setValue] = useState(current === undefined ? '' : String(current));
  const [error, setError] = useState<string | undefined>();
  useEffect(() => setValue(current === undefined ? '' : String(current)), [current]);
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const cap = value.trim() === '' ? undefined : Number(value);
    portal.setMaxEpsilon(cap).then(
      () => setError(undefined),
      (err: unknown) => setError((err as Error).message),
    );
  };
  return (
    <form className="row" onSubmit={onSubmit} aria-label="Privacy policy">
      <label>
        Most ε this hospital will spend (empty: each run’s target)
        <input type="number" step="any" min="0" value={value} onChange={(e) => setValue(e.target.value)} disabled={joined} />
      </label>
      <button type="submit" disabled={joined}>
        Save policy
      </button>
      <span className="muted" data-testid="privacy-policy">
        {current === undefined ? 'follows each run’s target ε' : `only private runs, ε ≤ ${current}`}
      </span>
      {error ? (
        <span className="error" role="alert">
          {error}
        </span>
      ) : null}
    </form>
  );
}

/**
 * This hospital's signing identity (to publish to the other operators) and the federation roster
 * (their keys, loaded from a JSON file): with a roster, no identity key the coordinator relays is
 * trusted on first use.
 */
function IdentityAndRoster({ joined }: { joined: boolean }) {
  const identity = usePortal((s) => s.identity);
  const roster = usePortal((s) => s.roster);
  const hospitalId = usePortal((s) => s.hospitalId);
  const [error, setError] = useState<string | undefined>();
  const apply = (text: string | undefined) =>
    portal.setRoster(text).then(
      () => setError(undefined),
      (err: unknown) => setError((err as Error).message),
    );
  const onFile = (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (file) void file.text().then(apply);
  };
  const others = roster ? Object.keys(roster).sort() : [];
  return (
    <div aria-label="Identity and roster">
      <p>
        Identity key fingerprint: <strong data-testid="identity-fingerprint">{identity?.fingerprint ?? '…'}</strong>{' '}
        <span className="muted">(read it to the other operators; roster entry below)</span>
      </p>
      {identity && hospitalId ? (
        <details>
          <summary>Roster entry of {hospitalId}</summary>
          <code className="small" data-testid="identity-entry">
            {JSON.stringify({ [hospitalId]: identity.key }).slice(1, -1)}
          </code>
        </details>
      ) : null}
      <div className="row">
        <label>
          Federation roster (JSON)
          <input type="file" accept=".json,application/json" onChange={onFile} disabled={joined} data-testid="roster-input" />
        </label>
        <button type="button" onClick={() => void apply(undefined)} disabled={joined || !roster}>
          Clear roster
        </button>
        <span className="muted" data-testid="roster-status">
          {roster ? `roster of ${others.length}: ${others.join(', ')} — any other identity key is refused` : 'no roster: identity keys are pinned on first use'}
        </span>
      </div>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

function DataPanel() {
  const summary = usePortal((s) => s.summary);
  const table = usePortal((s) => s.loaded?.table);
  const outcome = usePortal((s) => s.importOutcome);
  const importing = usePortal((s) => s.importing);
  const importError = usePortal((s) => s.importError);
  const importedAt = usePortal((s) => s.importedAt);
  const onFiles = (e: ChangeEvent<HTMLInputElement>) => {
    const files = Array.from(e.target.files ?? []);
    e.target.value = '';
    if (files.length) void portal.importFiles(files);
  };
  return (
    <section className="wide" aria-labelledby="data-title">
      <h2 id="data-title">Records</h2>
      <label>
        Import records (NDJSON from fedcare generate, FHIR R4 bundles, or a FHIR Bulk Data export: its NDJSON files together; re-importing replaces this hospital&apos;s records), or one CSV table with a header row for tabular runs (the run names the column to predict)
        <input type="file" multiple accept=".ndjson,.jsonl,.json,.csv,text/csv,application/json,application/x-ndjson" onChange={onFiles} disabled={importing} data-testid="import-input" />
      </label>
      {importing ? <p role="status">Importing …</p> : null}
      {importError ? (
        <p className="error" role="alert">
          {importError}
        </p>
      ) : null}
      {importedAt ? <p className="muted">Stored in this browser since {new Date(importedAt).toLocaleString()}.</p> : null}
      {outcome && outcome.issues.length > 0 ? <ImportIssues outcome={outcome} /> : null}
      {table ? (
        <p data-testid="table-stored">
          Table {table.name} stored in this browser for tabular runs: {table.columns.length} columns ({table.columns.join(', ')}). Its rows stay here.
        </p>
      ) : summary ? (
        <CohortPanel summary={summary} />
      ) : (
        <p className="muted">No records stored yet.</p>
      )}
    </section>
  );
}

function LocalMetricsPanel() {
  const rounds = usePortal((s) => s.rounds);
  const run = usePortal((s) => s.run);
  const data = useMemo(() => {
    const runId = run?.run_id ?? rounds.at(-1)?.run_id;
    return rounds.filter((r) => r.run_id === runId);
  }, [rounds, run]);
  return (
    <section className="wide" aria-labelledby="local-title">
      <h2 id="local-title">This hospital, per round</h2>
      {data.length === 0 ? (
        <p className="muted">No rounds yet.</p>
      ) : (
        <>
          <div role="img" aria-label={`Local loss, accuracy and AUC-ROC over ${data.length} rounds`}>
            <ResponsiveContainer width="100%" height={240}>
              <LineChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="round" allowDecimals={false} label={{ value: 'round', position: 'insideBottomRight', offset: -4 }} />
                <YAxis domain={[0, 'auto']} />
                <Tooltip />
                <Legend />
                <Line type="monotone" dataKey="train_loss" name="train loss" stroke="#c0392b" isAnimationActive={false} />
                <Line type="monotone" dataKey="test_loss" name="test loss" stroke="#8e44ad" isAnimationActive={false} />
                <Line type="monotone" dataKey="test_accuracy" name="test accuracy" stroke="#1d6fa5" isAnimationActive={false} />
                <Line type="monotone" dataKey="auc_roc" name="test AUC-ROC" stroke="#1e6b35" isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </div>
          <table data-testid="local-rounds">
            <thead>
              <tr>
                <th scope="col">Round</th>
                <th scope="col">Samples</th>
                <th scope="col">Train loss</th>
                <th scope="col">Train acc.</th>
                <th scope="col">Test loss</th>
                <th scope="col">Test acc.</th>
                <th scope="col">AUC-ROC</th>
                <th scope="col">Privacy ε spent</th>
              </tr>
            </thead>
            <tbody>
              {data.map((r) => (
                <tr key={`${r.run_id}/${r.round}`}>
                  <td>{r.round}</td>
                  <td className="num">{r.num_samples ?? '—'}</td>
                  <td className="num">{fmt(r.train_loss)}</td>
                  <td className="num">{fmt(r.train_accuracy)}</td>
                  <td className="num">{fmt(r.test_loss)}</td>
                  <td className="num">{fmt(r.test_accuracy)}</td>
                  <td className="num">{fmt(r.auc_roc)}</td>
                  <td className="num">{r.epsilon === undefined ? 'not private' : `${r.epsilon.toFixed(3)} (δ ${r.delta ?? '—'})`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

function LogPanel() {
  const log = usePortal((s) => s.log);
  const list = useRef<HTMLOListElement>(null);
  // The newest entry in view: the list scrolls (and can be scrolled by keyboard: it takes focus).
  useEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [log]);
  return (
    <section className="wide" aria-labelledby="log-title">
      <h2 id="log-title">Activity</h2>
      <ol className="log" data-testid="log" ref={list} tabIndex={0} aria-labelledby="log-title">
        {log.slice(-30).map((l, i) => (
          <li key={`${l.at}/${i}`}>
            <time dateTime={l.at}>{new Date(l.at).toLocaleTimeString()}</time> {l.message}
          </li>
        ))}
      </ol>
    </section>
  );
}

function fmt(v: number | undefined): string {
  return v === undefined ? '—' : v.toFixed(3);
}
