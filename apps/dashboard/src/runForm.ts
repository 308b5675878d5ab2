/**
 * The admin's run form: a few fields as strings (what inputs hold) → a RunConfig input, checked
 * with the protocol's own `runConfigSchema` before it is POSTed. Only the form's fields are sent;
 * the server fills the other defaults. "min clients" sets the fit, evaluate and available minimums.
 * With DP on, σ, C, target ε and δ go in `dp` (checked by the same schema: σ ≤ 0, δ ≥ 1 … are refused).
 * Task tabular adds `task` and `tabular` (target column, min category count): the hospitals train on their CSVs.
 */
import { DP_RECIPE, proposeDp } from '@fedcare/shared/privacy';
import { parseRunConfigFile, resolveRunConfig, runConfigSchema, runConfigToYaml, STRATEGY_NAMES, validate, type RunConfigInput } from '@fedcare/shared/protocol';

export interface RunForm {
  /** 'risk' (the multimodal risk model on patient records) or 'tabular' (the hospitals' own CSVs, an MLP). */
  task: string;
  /** task tabular: the column to predict, and the count below which a category stays at its hospital. */
  target: string;
  min_category_count: string;
  /** 'standard' (the seed spec's model) or 'compact' (the DP recipe's). */
  model: string;
  strategy: string;
  rounds: string;
  local_epochs: string;
  learning_rate: string;
  batch_size: string;
  /** T: days of vitals and labs per patient the LSTM encoders read (seed spec: 30). */
  seq_len: string;
  fraction_fit: string;
  min_clients: string;
  /** 'none' or 'secagg' (SecAgg+: the coordinator sees only the weighted sum). */
  secure_aggregation: string;
  /** Differential privacy on/off and its settings (seed spec defaults). */
  dp: boolean;
  noise_multiplier: string;
  max_grad_norm: string;
  target_epsilon: string;
  delta: string;
  /** Keys of an imported run configuration file that the form has no field for (proximal_mu, …): sent as they are. */
  extra?: Readonly<Record<string, unknown>>;
}

export const DEFAULT_RUN_FORM: RunForm = {
  task: 'risk',
  target: '',
  min_category_count: '5',
  model: 'standard',
  strategy: 'fedavg',
  rounds: '3',
  local_epochs: '1',
  learning_rate: '0.001',
  batch_size: '32',
  seq_len: '30',
  fraction_fit: '1',
  min_clients: '2',
  secure_aggregation: 'none',
  dp: false,
  noise_multiplier: '1.1',
  max_grad_norm: '1.0',
  target_epsilon: '1.0',
  delta: '1e-5',
};

export const STRATEGIES: readonly string[] = STRATEGY_NAMES;

/**
 * Ticking "Differential privacy" applies the DP recipe (shared/src/privacy/plan.ts DP_RECIPE): the
 * compact model, lot 128, 10 local epochs, learning rate 0.01, 3 rounds, C 1, δ 1e-5 — and σ, the
 * planner's for the target ε over the connected hospitals (`hospitals`: their n from sign-in), when
 * any is known. Rounds and target ε stay as the admin set them if already edited for DP.
 */
export function applyDpRecipe(form: RunForm, hospitals: readonly { hospital_id: string; n: number }[]): RunForm {
  const next: RunForm = {
    ...form,
    dp: true,
    model: DP_RECIPE.model,
    rounds: form.dp ? form.rounds : String(DP_RECIPE.rounds),
    local_epochs: String(DP_RECIPE.local_epochs),
    batch_size: String(DP_RECIPE.batch_size),
    learning_rate: String(DP_RECIPE.learning_rate),
    max_grad_norm: String(DP_RECIPE.max_grad_norm),
    delta: form.dp ? form.delta : String(DP_RECIPE.delta),
  };
  const sigma = proposedSigma(next, hospitals);
  return sigma === null ? next : { ...next, noise_multiplier: String(sigma) };
}

/** The planner's σ for the form's target ε, rounds and δ over these hospitals; null when unknown or out of reach. */
export function proposedSigma(form: RunForm, hospitals: readonly { hospital_id: string; n: number }[]): number | null {
  const target = Number(form.target_epsilon);
  const rounds = Number(form.rounds);
  const delta = Number(form.delta);
  if (hospitals.length === 0 || !(target > 0) || !Number.isInteger(rounds) || rounds < 1 || !(delta > 0 && delta < 1)) return null;
  try {
    return proposeDp(target, hospitals, { rounds, delta }).dp.noise_multiplier;
  } catch {
    return null;
  }
}

export type FormResult = { ok: true; config: RunConfigInput } | { ok: false; field: string; message: string };

export function formToConfig(form: RunForm): FormResult {
  type NumberField = Exclude<keyof RunForm, 'task' | 'target' | 'dp' | 'strategy' | 'secure_aggregation' | 'model' | 'extra'>;
  const dpFields: Array<[NumberField, string]> = [
    ['noise_multiplier', 'noise multiplier σ'],
    ['max_grad_norm', 'max grad norm C'],
    ['target_epsilon', 'target ε'],
    ['delta', 'δ'],
  ];
  const nums: Array<[NumberField, string]> = [
    ['rounds', 'rounds'],
    ['local_epochs', 'local epochs'],
    ['learning_rate', 'learning rate'],
    ['batch_size', 'batch size'],
    ['seq_len', 'sequence length T'],
    ['fraction_fit', 'fraction fit'],
    ['min_clients', 'min clients'],
    ...(form.dp ? dpFields : []),
    ...(form.task === 'tabular' ? [['min_category_count', 'min category count'] as [NumberField, string]] : []),
  ];
  const n: Partial<Record<keyof RunForm, number>> = {};
  for (const [k, label] of nums) {
    const raw = form[k].trim();
    const v = raw === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(v)) return { ok: false, field: k, message: `${label}: expected a number` };
    n[k] = v;
  }
  const min = n.min_clients as number;
  const tabular = form.task === 'tabular';
  if (tabular && form.target.trim() === '') return { ok: false, field: 'tabular.target', message: 'target column: the column of the hospitals\' CSVs to predict' };
  const config = {
    ...form.extra,
    ...(tabular ? { task: 'tabular', tabular: { target: form.target.trim(), min_category_count: n.min_category_count } } : {}),
    ...(form.model !== 'standard' ? { model: form.model } : {}),
    strategy: form.strategy,
    rounds: n.rounds,
    local_epochs: n.local_epochs,
    learning_rate: n.learning_rate,
    batch_size: n.batch_size,
    seq_len: n.seq_len,
    fraction_fit: n.fraction_fit,
    min_fit_clients: min,
    min_evaluate_clients: min,
    min_available_clients: min,
    ...(form.secure_aggregation !== 'none' ? { secure_aggregation: form.secure_aggregation } : {}),
    ...(form.dp ? { dp: { noise_multiplier: n.noise_multiplier, max_grad_norm: n.max_grad_norm, target_epsilon: n.target_epsilon, delta: n.delta } } : {}),
  };
  const checked = validate(runConfigSchema, config);
  if (!checked.ok) return { ok: false, field: checked.field, message: checked.message };
  return { ok: true, config: config as RunConfigInput };
}

/** The form's own keys of a run configuration; the rest goes in `extra`. */
const FORM_KEYS = new Set(['task', 'tabular', 'model', 'strategy', 'rounds', 'local_epochs', 'learning_rate', 'batch_size', 'seq_len', 'fraction_fit', 'min_fit_clients', 'min_evaluate_clients', 'min_available_clients', 'secure_aggregation', 'dp']);

/**
 * A run configuration file (YAML or JSON, the same as `fedcare simulate|serve --config` takes) into
 * the form: validated by the REST schema first (an error names the key and its line); the keys the
 * form shows fill its fields, the others ride along in `extra`. Only the file's own keys count: what
 * it leaves out keeps the form's value.
 */
export function importRunConfig(name: string, text: string, current: RunForm = DEFAULT_RUN_FORM): { ok: true; form: RunForm } | { ok: false; message: string } {
  let file;
  try {
    file = parseRunConfigFile(name, text);
    resolveRunConfig({ defaults: {}, file });
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  const v = file.values as Record<string, unknown>;
  const str = (k: string, fallback: string) => (v[k] === undefined ? fallback : String(v[k]));
  const dp = v.dp as Record<string, unknown> | undefined;
  const tabular = v.tabular as Record<string, unknown> | undefined;
  const form: RunForm = {
    ...current,
    task: str('task', current.task),
    ...(tabular ? { target: String(tabular.target), min_category_count: tabular.min_category_count === undefined ? DEFAULT_RUN_FORM.min_category_count : String(tabular.min_category_count) } : {}),
    model: str('model', current.model),
    strategy: str('strategy', current.strategy),
    rounds: str('rounds', current.rounds),
    local_epochs: str('local_epochs', current.local_epochs),
    learning_rate: str('learning_rate', current.learning_rate),
    batch_size: str('batch_size', current.batch_size),
    seq_len: str('seq_len', current.seq_len),
    fraction_fit: str('fraction_fit', current.fraction_fit),
    min_clients: str('min_fit_clients', str('min_available_clients', current.min_clients)),
    secure_aggregation: str('secure_aggregation', current.secure_aggregation),
    dp: dp !== undefined || (v.dp === undefined && current.dp),
    ...(dp ? { noise_multiplier: String(dp.noise_multiplier), max_grad_norm: String(dp.max_grad_norm), target_epsilon: String(dp.target_epsilon), delta: String(dp.delta) } : {}),
    extra: Object.fromEntries(Object.entries(v).filter(([k]) => !FORM_KEYS.has(k))),
  };
  return { ok: true, form };
}

/** The form as a run configuration file (YAML) that `fedcare simulate|serve --config` and Import read back. */
export function exportRunConfig(form: RunForm, when = new Date()): { ok: true; yaml: string } | { ok: false; message: string } {
  const res = formToConfig(form);
  if (!res.ok) return { ok: false, message: res.message };
  return { ok: true, yaml: runConfigToYaml(res.config, `fedcare run configuration, exported from the dashboard ${when.toISOString()}\nnpx fedcare simulate --data data --config THIS_FILE   (or serve --config, or the dashboard's Import)`) };
}
