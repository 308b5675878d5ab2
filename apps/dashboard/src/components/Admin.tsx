import { useMemo, useState, type ChangeEvent, type FormEvent } from 'react';
import { planPrivacy, type PrivacyPlan } from '@fedcare/shared/privacy';
import { store, useDash } from '../instance';
import { downloadText } from '../download';
import { applyDpRecipe, DEFAULT_RUN_FORM, exportRunConfig, formToConfig, importRunConfig, STRATEGIES, type RunForm } from '../runForm';

type TextField = Exclude<keyof RunForm, 'task' | 'dp' | 'secure_aggregation' | 'model' | 'extra'>;

const DP_FIELDS: Array<[TextField, string, string]> = [
  ['noise_multiplier', 'Noise multiplier σ', 'any'],
  ['max_grad_norm', 'Max grad norm C', 'any'],
  ['target_epsilon', 'Target ε', 'any'],
  ['delta', 'δ', 'any'],
];

const FIELDS: Array<[TextField, string, string]> = [
  ['rounds', 'Rounds', '1'],
  ['local_epochs', 'Local epochs', '1'],
  ['learning_rate', 'Learning rate', 'any'],
  ['batch_size', 'Batch size', '1'],
  ['seq_len', 'Sequence length T (days)', '1'],
  ['fraction_fit', 'Fraction fit', 'any'],
  ['min_clients', 'Min clients', '1'],
];

export function AdminPanel() {
  const [form, setForm] = useState<RunForm>(DEFAULT_RUN_FORM);
  const [formError, setFormError] = useState<string | null>(null);
  const [imported, setImported] = useState<string | null>(null);
  const busy = useDash((s) => s.busy);
  const notice = useDash((s) => s.notice);
  const running = useDash((s) => s.status?.status === 'running');
  const clients = useDash((s) => s.clients);
  // The hospitals' n as they reported it at sign-in: what the planner and the DP recipe's σ use.
  const known = useMemo(() => clients.filter((h) => h.num_records !== undefined && h.num_records > 0).map((h) => ({ hospital_id: h.hospital_id, n: h.num_records as number })), [clients]);
  // The planner: what each connected hospital would spend with these settings.
  const plan = useMemo((): PrivacyPlan | string | null => {
    if (!form.dp) return null;
    const res = formToConfig(form);
    if (!res.ok) return null;
    const c = res.config;
    if (known.length === 0) return 'No connected hospital has reported its number of records yet.';
    try {
      return planPrivacy({ rounds: c.rounds ?? 50, local_epochs: c.local_epochs ?? 5, batch_size: c.batch_size ?? 32, dp: c.dp! }, known);
    } catch (e) {
      return (e as Error).message;
    }
  }, [form, known]);
  const onImport = async (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    const res = importRunConfig(file.name, await file.text(), form);
    if (!res.ok) return setFormError(res.message);
    setFormError(null);
    setForm(res.form);
    setImported(`${file.name} imported${Object.keys(res.form.extra ?? {}).length ? `; also sent as they are: ${Object.keys(res.form.extra ?? {}).join(', ')}` : ''}`);
  };
  const onExport = () => {
    const res = exportRunConfig(form);
    if (!res.ok) return setFormError(res.message);
    setFormError(null);
    downloadText('fedcare-run.yaml', res.yaml, 'application/yaml');
  };
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
          Task
          <select value={form.task} onChange={(e) => setForm({ ...form, task: e.target.value })}>
            <option value="risk">risk (patient records)</option>
            <option value="tabular">tabular (the hospitals' CSVs)</option>
          </select>
        </label>
        {form.task === 'tabular' && (
          <>
            <label>
              Target column
              <input type="text" value={form.target} placeholder="e.g. readmitted" onChange={(e) => setForm({ ...form, target: e.target.value })} />
            </label>
            <label>
              Min category count
              <input type="number" step="1" value={form.min_category_count} onChange={(e) => setForm({ ...form, min_category_count: e.target.value })} />
            </label>
          </>
        )}
        <label>
          Model
          <select value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })}>
            <option value="standard">standard (569k parameters)</option>
            <option value="compact">compact (9.3k; the DP recipe)</option>
          </select>
        </label>
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
        <label>
          Secure aggregation
          <select value={form.secure_aggregation} onChange={(e) => setForm({ ...form, secure_aggregation: e.target.value })}>
            <option value="none">none</option>
            <option value="secagg">SecAgg+ (server sees only the sum)</option>
            <option value="he">HE (BFV; FedAvg / FedProx)</option>
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={form.dp} onChange={(e) => setForm(e.target.checked ? applyDpRecipe(form, known) : { ...form, dp: false })} />
          Differential privacy
        </label>
        {form.dp &&
          DP_FIELDS.map(([k, label, step]) => (
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
        <label className="file">
          Import run configuration (YAML or JSON)
          <input type="file" accept=".yaml,.yml,.json,application/yaml,application/json" onChange={(e) => void onImport(e)} />
        </label>
        <button type="button" onClick={onExport}>
          Export as YAML
        </button>
      </form>
      {imported && !formError && <p className="muted" role="status">{imported}</p>}
      {formError && <p className="error" role="alert">{formError}</p>}
      {plan !== null && <PlanTable plan={plan} sigma={form.noise_multiplier} onUseProposal={() => setForm(applyDpRecipe(form, known))} />}
      {notice && (
        <p className={notice.kind} role={notice.kind === 'error' ? 'alert' : 'status'}>
          {notice.text}
        </p>
      )}
    </section>
  );
}

/** The privacy planner's verdict for the connected hospitals, before the run starts. */
function PlanTable({ plan, sigma, onUseProposal }: { plan: PrivacyPlan | string; sigma: string; onUseProposal: () => void }) {
  if (typeof plan === 'string') return <p className="muted">{plan}</p>;
  const proposal = plan.proposal;
  return (
    <div aria-label="Privacy plan">
      <h3>Privacy plan</h3>
      <table>
        <thead>
          <tr>
            <th>Hospital</th>
            <th>Examples n</th>
            <th>Sampling rate q</th>
            <th>Steps per round</th>
            <th>ε over the run</th>
            <th>Rounds within budget</th>
            <th>σ for the target</th>
          </tr>
        </thead>
        <tbody>
          {plan.hospitals.map((h) => (
            <tr key={h.hospital_id} data-plan={h.hospital_id}>
              <td>{h.hospital_id}</td>
              <td className="num">{h.n}</td>
              <td className="num">{h.sample_rate.toFixed(4)}</td>
              <td className="num">{h.steps_per_round}</td>
              <td className="num">{h.epsilon_run.toFixed(2)}</td>
              <td className="num">{h.rounds_affordable}</td>
              <td className="num">{h.noise_for_target === null ? 'out of reach' : h.noise_for_target.toFixed(2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {plan.warnings.map((w) => (
        <p key={w} className="alarm warning" role="status">
          {w}
        </p>
      ))}
      {proposal && (
        <p className="muted" data-testid="dp-proposal">
          DP recipe for ε {proposal.dp.target_epsilon} over {proposal.rounds} round(s): {proposal.model} model, lot {proposal.batch_size}, {proposal.local_epochs} local epochs, learning rate{' '}
          {proposal.learning_rate}, C {proposal.dp.max_grad_norm}, σ {proposal.dp.noise_multiplier}.{' '}
          {String(proposal.dp.noise_multiplier) !== sigma.trim() && (
            <button type="button" onClick={onUseProposal}>
              Use the DP recipe
            </button>
          )}
        </p>
      )}
    </div>
  );
}
