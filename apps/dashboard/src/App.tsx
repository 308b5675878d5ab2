import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { selectAlarms } from './store';
import { SERVER, store, useDash } from './instance';
import { connectDashboard } from './socket';
import { LivePanels } from './components/Live';
import { AdminPanel } from './components/Admin';
import { HistoryPanel } from './components/History';
import { CredentialsPanel } from './components/Credentials';

const TOKEN_KEY = 'fedcare.dashboard.token';
export function App() {
  const token = useDash((s) => s.token);
  useEffect(() => {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved && !store.getState().token) store.getState().signIn(saved);
  }, []);
  useEffect(() => {
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    const disconnect = connectDashboard(store, token, SERVER);
    void store.getState().loadRuns();
    return disconnect;
  }, [token]);
  return token ? <Dashboard /> : <SignIn />;
}

function SignIn() {
  const [value, setValue] = useState('');
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) store.getState().signIn(value);
  };
  return (
    <section className="signin">
      <h1>fedcare dashboard</h1>
      <form onSubmit={onSubmit}>
        <label>
          Token (admin token to start and stop runs)
          <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} aria-label="Token" />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p className="muted">The token stays in this tab (sessionStorage).</p>
    </section>
  );
}

function Dashboard() {
  const connection = useDash((s) => s.connection);
  const connectionError = useDash((s) => s.connectionError);
  const status = useDash((s) => s.status);
  const run = useDash((s) => s.run);
  const live = useDash((s) => s.live);
  const clients = useDash((s) => s.clients);
  const alarms = useMemo(() => selectAlarms({ status, run, live, clients }), [status, run, live, clients]);
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    store.getState().signOut();
  };
  return (
    <>
      <header>
        <h1>fedcare dashboard</h1>
        <span role="status" aria-live="polite">
          {connection}
          {connectionError ? `: ${connectionError}` : ''}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
        <section className="wide" aria-label="Alarms">
          <h2>Alarms</h2>
          {alarms.length === 0 ? (
            <p className="muted">No alarms.</p>
          ) : (
            alarms.map((a) => (
              <div key={a.id} className={`alarm ${a.severity}`} role="alert" data-alarm={a.id}>
                {a.message}
              </div>
            ))
          )}
        </section>
        <LivePanels />
        <AdminPanel />
        <HistoryPanel />
        <CredentialsPanel />
      </main>
    </>
  );
}
