/**
 * The Patients view: every imported patient scored with the newest global model, in the training
 * worker, shown here and nowhere else — a sortable table, a detail panel per patient, and a CSV file
 * saved locally. Nothing of it is sent to the coordinator (the e2e wire check covers this view).
 *
 * "Looked at most" is the fusion's attention over the five modality tokens (shared/src/train/score.ts
 * says why attention and not integrated gradients); the detail panel says it is not a causal
 * attribution.
 */
import { useMemo, useState } from 'react';
import type { PatientScores, PersonalisationReport } from '@fedcare/shared/fl';
import { MODALITY_TOKENS } from '@fedcare/shared/model';
import { scoresToCsv } from '@fedcare/shared/train';

type Row = PatientScores['scores'][number];
type SortKey = 'patient_id' | 'split' | 'predicted' | 'p_low' | 'p_medium' | 'p_high' | 'top_modality';

const COLUMNS: { key: SortKey; label: string; numeric?: boolean }[] = [
  { key: 'patient_id', label: 'Patient' },
  { key: 'split', label: 'Split' },
  { key: 'predicted', label: 'Predicted risk' },
  { key: 'p_low', label: 'P(Low)', numeric: true },
  { key: 'p_medium', label: 'P(Medium)', numeric: true },
  { key: 'p_high', label: 'P(High)', numeric: true },
  { key: 'top_modality', label: 'Looked at most' },
];

const RISK_ORDER = { Low: 0, Medium: 1, High: 2 } as const;

function sortValue(r: Row, key: SortKey): string | number {
  switch (key) {
    case 'p_low':
      return r.probabilities[0];
    case 'p_medium':
      return r.probabilities[1];
    case 'p_high':
      return r.probabilities[2];
    case 'predicted':
      return RISK_ORDER[r.predicted];
    default:
      return r[key];
  }
}

const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

export interface PatientsPanelProps {
  hospitalId: string;
  /** The newest global model evaluated here; undefined before the first round. */
  model: { run_id: string; round: number } | undefined;
  patients: { state: 'scoring' } | { state: 'ready'; scores: PatientScores } | { state: 'error'; error: string } | undefined;
  /** This hospital's personalised copy of the newest global model, if it made one. */
  personalisation: { state: 'running' } | { state: 'ready'; report: PersonalisationReport } | { state: 'error'; error: string } | undefined;
  onScore: (which: 'global' | 'personalised') => void;
  onPersonalise: () => void;
}

const auc = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');

/** One line on what personalising did, for the status next to its button. */
function personalisationText(p: PatientsPanelProps['personalisation']): string {
  if (!p) return '';
  if (p.state === 'running') return 'personalising …';
  if (p.state === 'error') return `personalisation failed: ${p.error}`;
  const r = p.report;
  return (
    `round ${r.round} model personalised (${r.trainable.toLocaleString('en')} parameters of the head and fusion norm, epoch ${r.best_epoch} of ${r.epochs_run} kept by validation loss): ` +
    `AUC-ROC on this hospital's test split ${auc(r.global.test.auc_roc)} global → ${auc(r.personalised.test.auc_roc)} personalised` +
    (r.privacy_epsilon !== undefined ? `; ε spent so far ${r.privacy_epsilon.toFixed(3)}` : '')
  );
}

export function PatientsPanel({ hospitalId, model, patients, personalisation, onScore, onPersonalise }: PatientsPanelProps) {
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: 'p_high', descending: true });
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const scores = patients?.state === 'ready' ? patients.scores : undefined;
  const rows = useMemo(() => {
    if (!scores) return [];
    const out = [...scores.scores];
    out.sort((a, b) => {
      const x = sortValue(a, sort.key);
      const y = sortValue(b, sort.key);
      const c = x < y ? -1 : x > y ? 1 : a.patient_id < b.patient_id ? -1 : 1;
      return sort.descending ? -c : c;
    });
    return out;
  }, [scores, sort]);
  const detail = rows.find((r) => r.patient_id === selected);
  const stale = scores && model && (scores.run_id !== model.run_id || scores.round !== model.round);
  const personal = personalisation?.state === 'ready' && model && personalisation.report.run_id === model.run_id && personalisation.report.round === model.round ? personalisation.report : undefined;
  const shown = scores?.model ?? 'global';

  const download = () => {
    if (!scores) return;
    const csv = scoresToCsv(scores.scores, { split: (s) => (s as Row).split });
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `patients-${hospitalId}-${scores.run_id}-round${scores.round}${scores.model === 'personalised' ? '-personalised' : ''}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <section className="wide" aria-labelledby="patients-title">
      <h2 id="patients-title">Patients</h2>
      <p className="muted small">
        Scores are computed in this tab with the global model and stay here: nothing of this view is sent to the coordinator. The CSV is saved on this computer only.
      </p>
      <div className="row">
        <button type="button" onClick={() => onScore('global')} disabled={!model || patients?.state === 'scoring'}>
          {model ? `Score patients with the round ${model.round} model` : 'Score patients (after the first round)'}
        </button>
        <button type="button" onClick={onPersonalise} disabled={!model || personalisation?.state === 'running' || patients?.state === 'scoring'}>
          Personalise on this hospital&apos;s data
        </button>
        <fieldset className="inline" disabled={!personal || patients?.state === 'scoring'}>
          <legend className="sr-only">Model used for the scores</legend>
          {(['global', 'personalised'] as const).map((which) => (
            <label key={which}>
              <input type="radio" name="patients-model" value={which} checked={shown === which} onChange={() => onScore(which)} /> {which}
            </label>
          ))}
        </fieldset>
        <button type="button" onClick={download} disabled={!scores}>
          Save as CSV
        </button>
        <span role="status" aria-live="polite" data-testid="patients-status">
          {patients?.state === 'scoring'
            ? 'scoring …'
            : patients?.state === 'error'
              ? `scoring failed: ${patients.error}`
              : scores
                ? `${scores.scores.length} patients scored with the ${scores.model === 'personalised' ? 'personalised copy of the ' : ''}round ${scores.round} model of ${scores.run_id}, ${scores.temperature === 1 ? 'uncalibrated (T = 1)' : `calibrated (T = ${scores.temperature})`}${stale ? ' — a newer model is here: score again' : ''}`
                : ''}
        </span>
      </div>
      <p className="small" role="status" aria-live="polite" data-testid="personalisation-status">
        {personalisationText(personalisation)}
      </p>
      {scores ? (
        <div className="scroll" tabIndex={0} role="region" aria-label="Patient scores">
          <table data-testid="patients-table">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c.key} scope="col" aria-sort={sort.key === c.key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
                    <button type="button" className="link" onClick={() => setSort((s) => ({ key: c.key, descending: s.key === c.key ? !s.descending : !!c.numeric }))}>
                      {c.label}
                    </button>
                  </th>
                ))}
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.patient_id} data-patient={r.patient_id} aria-selected={r.patient_id === selected}>
                  <td>{r.patient_id}</td>
                  <td>{r.split}</td>
                  <td>{r.predicted}</td>
                  <td className="num">{pct(r.probabilities[0])}</td>
                  <td className="num">{pct(r.probabilities[1])}</td>
                  <td className="num">{pct(r.probabilities[2])}</td>
                  <td>{r.top_modality}</td>
                  <td>
                    <button type="button" className="link" onClick={() => setSelected(r.patient_id)}>
                      show<span className="sr-only"> details of {r.patient_id}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {detail ? (
        <div className="detail" data-testid="patient-detail" aria-labelledby="patient-detail-title">
          <h3 id="patient-detail-title">Patient {detail.patient_id}</h3>
          <p>
            Predicted risk <strong>{detail.predicted}</strong> ({detail.split} split).
          </p>
          <table>
            <caption className="muted small">Risk class probabilities</caption>
            <tbody>
              {(['Low', 'Medium', 'High'] as const).map((level, k) => (
                <tr key={level}>
                  <th scope="row">{level}</th>
                  <td className="num">{pct(detail.probabilities[k] as number)}</td>
                  <td>
                    <meter min={0} max={1} value={detail.probabilities[k]} aria-label={`P(${level})`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <table>
            <caption className="muted small">Attention of the fusion layer per modality (sums to 100 %)</caption>
            <tbody>
              {MODALITY_TOKENS.map((m) => (
                <tr key={m}>
                  <th scope="row">{m}</th>
                  <td className="num">{pct(detail.modality_attention[m])}</td>
                  <td>
                    <meter min={0} max={1} value={detail.modality_attention[m]} aria-label={`attention to ${m}`} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">Attention shows where the model looked when combining the modalities; it is not a causal attribution of the score.</p>
        </div>
      ) : null}
    </section>
  );
}
