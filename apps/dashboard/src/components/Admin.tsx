import { useState, type FormEvent } from 'react';
import { store, useDash } from '../instance';
import { DEFAULT_RUN_FORM, formToConfig, STRATEGIES, type RunForm } from '../runForm';

const FIELDS: Array<[keyof RunForm, string, string]> = [
  ['rounds', 'Rounds', '1'],
  ['local_epochs', 'Local epochs', '1'],
  ['learning_rate', 'Learning rate', 'any'],
  ['batch_size', 'Batch size', '1'],
  ['fraction_fit', 'Fraction fit', 'any'],
  ['min_clients', 'Min clients', '1'],
];

export function AdminPanel() {
  const [form, setForm] = useState<RunForm>(DEFAULT_RUN_FORM);
  const [formError, setFormError] = useState<string | null>(null);
  const busy = useDash((s) => s.busy);
  const notice = useDash((s) => s.notice);
  const running = useDash((s) => s.status?.status === 'running');
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const res = formToConfig(form);
    if (!res.ok) return setFormError(res.message);
    setFormError(null);
    void store.getState().startRun(res.config);
  };
  return (
    <section className="wide" aria-label="Run control">
      <h2>Run control (admin)</h2>
      <form className="run" onSubmit={onSubmit}>
        <label>
          Strategy
          <select value={form.strategy} onChange={(e) => setForm({ ...form, strategy: e.target.value })}>
            {STRATEGIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        {FIELDS.map(([k, label, step]) => (
          <label key={k}>
            {label}
            <input type="number" step={step} value={form[k]} onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
          </label>
        ))}
        <button type="submit" disabled={busy || running}>
          Start run
        </button>
        <button type="button" disabled={busy || !running} onClick={() => void store.getState().stopRun()}>
          Stop
        </button>
      </form>
      {formError && <p className="error">{formError}</p>}
      {notice && (
        <p className={notice.kind} role={notice.kind === 'error' ? 'alert' : 'status'}>
          {notice.text}
        </p>
      )}
    </section>
  );
}
