/**
 * The model card that travels with every export (Mitchell et al. 2019, "Model Cards for Model
 * Reporting"): what the model is for, what it was trained on — counts and rates per hospital, never
 * a record — how well it does overall and per hospital, its privacy and secure-aggregation
 * settings, and the SHA-256s that tie the card to the exported files. JSON for machines, Markdown
 * for a governance board. What the run did not measure is said, not left out.
 */
import type { ModelBundle } from './model-bundle';
import type { RoundMetrics, RunRecord } from './store';

export interface ModelCard {
  format: 'fedcare-model-card/1';
  model: {
    run_id: string;
    round: number;
    definition: string;
    parameters: number;
    weights_sha256: string;
    feature_stats_sha256: string;
    temperature: number;
    exported_at: string;
    /** `--format onnx` exports only: model.onnx's SHA-256 and opset. */
    onnx_sha256?: string;
    onnx_opset?: number;
  };
  /** A multi-task run (run config task_weights): its heads' loss weights and what the exported files score. */
  multi_task?: { task_weights: { readmission_30d: number; days_to_readmission: number }; note: string };
  intended_use: string;
  out_of_scope: string;
  training: {
    rounds_completed: number;
    strategy: string;
    local_epochs: number | null;
    hospitals: { hospital_id: string; train_examples: number | null; test_examples: number | null; rounds_participated: number }[];
  };
  /** The exported round's pooled metrics (weighted over hospitals' test splits) and per hospital. */
  metrics: { pooled: Record<string, number>; per_hospital: Record<string, Record<string, number>> };
  fairness: { min_hospital_accuracy: number | null; max_hospital_accuracy: number | null; performance_variance: number | null; accuracy_by_risk_level: Record<string, number | null> };
  /** Pooled test ECE (10 bins, top label) at T = 1 and at the exported temperature, from the exported round. */
  calibration: { measured: boolean; ece: number | null; ece_calibrated: number | null; temperature: number; note: string };
  privacy: { mechanism: string; epsilon_per_hospital: Record<string, number>; delta: number | null; noise_multiplier: number | null; max_grad_norm: number | null };
  secure_aggregation: string;
}

/** The multi-task heads' figures (present only in a multi-task run's rounds). */
const MULTI_TASK_CARD_METRICS = ['readmission_auc_roc', 'days_mae', 'days_rmse'] as const;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function modelCard(run: RunRecord, rounds: readonly RoundMetrics[], bundle: ModelBundle): ModelCard {
  const cfg = run.config;
  const exported = rounds.find((r) => r.round === bundle.round);
  if (!exported) throw new Error(`round ${bundle.round} of ${run.runId} has no metrics in the store`);
  const hospitals = [...new Set(rounds.flatMap((r) => Object.keys(r.perHospital)))].sort();
  const dp = (cfg.dp ?? undefined) as { noise_multiplier?: number; max_grad_norm?: number; delta?: number; target_epsilon?: number } | undefined;
  const epsilon: Record<string, number> = {};
  // ε spent so far, per hospital: the latest value each reported up to the exported round.
  for (const r of rounds.filter((x) => x.round <= bundle.round)) for (const [h, m] of Object.entries(r.perHospital)) if (num(m.privacy_epsilon) !== null) epsilon[h] = m.privacy_epsilon as number;
  const m = exported.metrics;
  return {
    format: 'fedcare-model-card/1',
    model: {
      run_id: run.runId,
      round: bundle.round,
      definition: bundle.model,
      parameters: bundle.weights.float32_count,
      weights_sha256: bundle.weights.sha256,
      feature_stats_sha256: bundle.features.stats_sha256,
      temperature: bundle.temperature,
      exported_at: bundle.created_at,
      ...(bundle.onnx ? { onnx_sha256: bundle.onnx.sha256, onnx_opset: bundle.onnx.opset } : {}),
    },
    ...(bundle.model_options?.task_weights
      ? {
          multi_task: {
            task_weights: bundle.model_options.task_weights,
            note: `Trained with two extra heads on the fused representation — readmission_30d (sigmoid BCE, weight ${bundle.model_options.task_weights.readmission_30d}) and days_to_readmission (squared error of days/30 over readmitted patients, weight ${bundle.model_options.task_weights.days_to_readmission}); their weights are in weights.bin (the last parameters). model.onnx (--format onnx) outputs them as readmission_probability and days_to_readmission; fedcare predict scores the risk head only.`,
          },
        }
      : {}),
    intended_use:
      'Decision support: a 3-class risk level (Low, Medium, High) for adult inpatients from demographics, vitals and labs over an observation window, comorbidity biology and omics markers, for clinicians of the hospitals that trained it, alongside their own judgement.',
    out_of_scope: 'Not a diagnosis; not validated outside the participating hospitals or on populations unlike theirs; not for automated decisions without a clinician.',
    training: {
      rounds_completed: run.lastCompletedRound,
      strategy: String(cfg.strategy ?? 'fedavg'),
      local_epochs: num(cfg.local_epochs),
      hospitals: hospitals.map((h) => ({
        hospital_id: h,
        train_examples: num(rounds.findLast((r) => num(r.perHospital[h]?.num_samples) !== null)?.perHospital[h]?.num_samples),
        test_examples: num(rounds.findLast((r) => num(r.perHospital[h]?.num_examples) !== null)?.perHospital[h]?.num_examples),
        rounds_participated: rounds.filter((r) => r.participation.some((p) => p.hospitalId === h && p.stage === 'train' && p.status === 'ok')).length,
      })),
    },
    metrics: {
      pooled: Object.fromEntries(['test_accuracy', 'auc_roc', 'auc_pr', 'f1_score', 'precision', 'recall', 'test_loss', 'val_loss', ...MULTI_TASK_CARD_METRICS].filter((k) => num(m[k]) !== null).map((k) => [k, m[k] as number])),
      per_hospital: Object.fromEntries(
        Object.entries(exported.perHospital).map(([h, v]) => [h, Object.fromEntries(['test_accuracy', 'auc_roc', 'f1_score', 'test_loss', ...MULTI_TASK_CARD_METRICS].filter((k) => num(v[k]) !== null).map((k) => [k, v[k] as number]))]),
      ),
    },
    fairness: {
      min_hospital_accuracy: num(m.min_hospital_accuracy),
      max_hospital_accuracy: num(m.max_hospital_accuracy),
      performance_variance: num(m.performance_variance),
      accuracy_by_risk_level: { Low: num(m.accuracy_low_risk), Medium: num(m.accuracy_medium_risk), High: num(m.accuracy_high_risk) },
    },
    calibration: calibrationOf(m, bundle.temperature),
    privacy: dp
      ? { mechanism: 'DP-SGD on each hospital (Gaussian noise, per-example clipping; RDP accountant)', epsilon_per_hospital: epsilon, delta: num(dp.delta), noise_multiplier: num(dp.noise_multiplier), max_grad_norm: num(dp.max_grad_norm) }
      : { mechanism: 'none (no differential privacy in this run)', epsilon_per_hospital: {}, delta: null, noise_multiplier: null, max_grad_norm: null },
    secure_aggregation: String(cfg.secure_aggregation ?? 'none'),
  };
}

function calibrationOf(m: Readonly<Record<string, number>>, temperature: number): ModelCard['calibration'] {
  const ece = num(m.ece);
  const after = num(m.ece_calibrated);
  if (ece === null) return { measured: false, ece: null, ece_calibrated: null, temperature, note: 'Not measured by this run: read the probabilities as scores, not frequencies.' };
  return {
    measured: true,
    ece,
    ece_calibrated: after,
    temperature,
    note: `Expected calibration error (10 bins, top label, pooled over the hospitals' test splits) ${ece.toFixed(3)} at T = 1; federated temperature scaling (validation NLL) picked T = ${temperature}${after !== null ? `, ECE ${after.toFixed(3)} there` : ''}. The exported probabilities are softmax(logits / T).`,
  };
}

/**
 * The card as a hospital may read it: its own rows of the per-hospital tables (training counts,
 * metrics, ε) and the pooled figures, never another hospital's (least privilege, as the metrics
 * routes). The admin reads the whole card.
 */
export function modelCardFor(card: ModelCard, hospitalId: string | undefined): ModelCard {
  if (hospitalId === undefined) return card;
  const own = <T>(o: Record<string, T>) => Object.fromEntries(Object.entries(o).filter(([h]) => h === hospitalId));
  return {
    ...card,
    training: { ...card.training, hospitals: card.training.hospitals.filter((h) => h.hospital_id === hospitalId) },
    metrics: { ...card.metrics, per_hospital: own(card.metrics.per_hospital) },
    privacy: { ...card.privacy, epsilon_per_hospital: own(card.privacy.epsilon_per_hospital) },
  };
}

const fmt = (v: number | null, digits = 3) => (v === null ? '—' : v.toFixed(digits));

/** The card as Markdown, for people. */
export function modelCardMarkdown(c: ModelCard): string {
  const lines = [
    `# Model card — ${c.model.run_id}, round ${c.model.round}`,
    '',
    `Model \`${c.model.definition}\` (${c.model.parameters.toLocaleString('en-US')} parameters), exported ${c.model.exported_at}.`,
    '',
    '## Intended use',
    '',
    c.intended_use,
    '',
    `Out of scope: ${c.out_of_scope}`,
    '',
    '## Training data (counts only)',
    '',
    `${c.training.rounds_completed} federated rounds, strategy ${c.training.strategy}, ${c.training.local_epochs ?? '—'} local epochs per round.`,
    '',
    '| hospital | training examples | test examples | rounds trained |',
    '|---|---|---|---|',
    ...c.training.hospitals.map((h) => `| ${h.hospital_id} | ${h.train_examples ?? '—'} | ${h.test_examples ?? '—'} | ${h.rounds_participated} |`),
    '',
    '## Metrics (each hospital\u2019s own test split)',
    '',
    `Pooled: ${Object.entries(c.metrics.pooled).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || '—'}.`,
    '',
    ...(c.multi_task ? [`Multi-task: ${c.multi_task.note}`, ''] : []),
    '| hospital | accuracy | AUC-ROC | F1 |',
    '|---|---|---|---|',
    ...Object.entries(c.metrics.per_hospital).map(([h, v]) => `| ${h} | ${fmt(v.test_accuracy ?? null)} | ${fmt(v.auc_roc ?? null)} | ${fmt(v.f1_score ?? null)} |`),
    '',
    '## Fairness',
    '',
    `Accuracy across hospitals ${fmt(c.fairness.min_hospital_accuracy)}–${fmt(c.fairness.max_hospital_accuracy)} (variance ${fmt(c.fairness.performance_variance, 5)}); by risk level: ${Object.entries(c.fairness.accuracy_by_risk_level).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}.`,
    '',
    '## Calibration',
    '',
    c.calibration.note,
    '',
    '## Privacy and secure aggregation',
    '',
    `Differential privacy: ${c.privacy.mechanism}${c.privacy.delta !== null ? `; δ ${c.privacy.delta}, noise multiplier ${fmt(c.privacy.noise_multiplier, 2)}, clipping norm ${fmt(c.privacy.max_grad_norm, 2)}; ε per hospital: ${Object.entries(c.privacy.epsilon_per_hospital).map(([h, e]) => `${h} ${fmt(e, 2)}`).join(', ') || '—'}` : ''}.`,
    `Secure aggregation: ${c.secure_aggregation}.`,
    '',
    '## Files',
    '',
    `- weights.bin SHA-256 \`${c.model.weights_sha256}\``,
    ...(c.model.onnx_sha256 ? [`- model.onnx SHA-256 \`${c.model.onnx_sha256}\` (ONNX opset ${c.model.onnx_opset ?? '—'})`] : []),
    `- feature statistics SHA-256 \`${c.model.feature_stats_sha256}\``,
    `- temperature ${c.model.temperature}`,
    '',
  ];
  return lines.join('\n');
}
