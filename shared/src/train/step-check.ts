/**
 * One training step as numbers, to check a TF.js backend against a reference backend: the loss and
 * every parameter's gradient of one minibatch of synthetic patients (no hospital record is used),
 * the model built from a fixed seed and dropout drawn from a fixed seed, so that two backends compute
 * exactly the same function and may differ only by floating-point rounding.
 *
 * The comparison is per parameter, in relative L2 error ‖g_a − g_b‖ / ‖g_b‖: rounding leaves it
 * near float32's 1e-7 (accumulated over a 30-step LSTM, ~1e-6); a wrong kernel or a broken
 * backward pass leaves it near 1. Everything is read back asynchronously (GPU backends stall, or
 * worse, on synchronous reads).
 */
import * as tf from '@tensorflow/tfjs-core';
import { computeFeatureSums, encodeRecords, finalizeFeatureStats, type FeatureBatch } from '../data/features';
import { generateHospital, OBSERVATION_WINDOW_DAYS } from '../data/generator';
import { createClassifier } from '../model/classifier';
import { disposeInputs, inputsFor, labelledIndices } from './train';

export interface StepNumbers {
  backend: string;
  loss: number;
  /** Per parameter, in the model's parameter order. */
  grads: { name: string; values: Float32Array }[];
  seconds: number;
}

export interface StepCheckConfig {
  /** Minibatch size (default 32, the runs' default). */
  batchSize: number;
  /** Sequence length of vitals and labs (default 30, the runs' default). */
  seqLen: number;
  seed: number;
}

export const DEFAULT_STEP_CHECK: StepCheckConfig = { batchSize: 32, seqLen: 30, seed: 11 };

/** The synthetic minibatch every backend sees (host arrays: built once, on no backend). */
export function stepCheckBatch(config: Partial<StepCheckConfig> = {}): { batch: FeatureBatch; rows: number[] } {
  const cfg = { ...DEFAULT_STEP_CHECK, ...config };
  const records = generateHospital('H1', { seed: cfg.seed, patients: Math.ceil(cfg.batchSize * 1.5) + 8 }).records;
  const feat = { seqLen: cfg.seqLen, windowDays: OBSERVATION_WINDOW_DAYS };
  const batch = encodeRecords(records, finalizeFeatureStats(computeFeatureSums(records, feat)), feat);
  const rows = labelledIndices(batch).slice(0, cfg.batchSize);
  if (rows.length < cfg.batchSize) throw new Error(`step check: only ${rows.length} labelled synthetic records for a batch of ${cfg.batchSize}`);
  return { batch, rows };
}

/**
 * Loss and gradients of one training step (dropout on, seeded) of the default classifier on the
 * current TF.js backend. Leaves no tensor behind.
 */
export async function trainingStepNumbers(input: { batch: FeatureBatch; rows: readonly number[] }, seed = DEFAULT_STEP_CHECK.seed): Promise<StepNumbers> {
  const started = performance.now();
  const model = createClassifier({}, seed);
  const inputs = inputsFor(input.batch, input.rows);
  const labels = tf.tensor1d(Int32Array.from(input.rows, (r) => input.batch.labels[r] as number), 'int32');
  const vars = model.params.map((p) => p.variable);
  try {
    const { value, grads } = tf.variableGrads(() => model.loss(inputs, labels, { training: true, seed }), vars);
    try {
      const names = model.params.map((p) => p.name);
      const [loss, ...values] = await Promise.all([value.data<'float32'>(), ...model.params.map((p) => (grads[p.variable.name] as tf.Tensor).data<'float32'>())]);
      return {
        backend: tf.getBackend(),
        loss: loss![0] as number,
        grads: values.map((v, i) => ({ name: names[i]!, values: v })),
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  } finally {
    disposeInputs(inputs);
    labels.dispose();
    model.dispose();
  }
}

export interface StepComparison {
  backend: string;
  reference: string;
  /** |loss − loss_ref| / |loss_ref|. */
  lossRelativeError: number;
  /** The parameter whose gradient differs most (relative L2), and by how much. */
  worstParam: string;
  worstRelativeError: number;
  /** ‖g − g_ref‖ / ‖g_ref‖ over all parameters together. */
  overallRelativeError: number;
  /** Largest |g − g_ref| of any coordinate. */
  maxAbsError: number;
  /** Every gradient finite on both backends. */
  finite: boolean;
  /** All within `tolerance`. */
  agrees: boolean;
  tolerance: number;
  seconds: { backend: number; reference: number };
}

/**
 * Relative error the check accepts per parameter: 100× what float32 rounding leaves through the
 * LSTMs (measured in Chromium: WebGPU on SwiftShader 8.6e-7, WebGL 9.0e-7 against WASM; WASM 7.3e-7
 * against CPU) and far below what a wrong kernel or backward pass gives (~1).
 */
export const STEP_CHECK_TOLERANCE = 1e-4;

/**
 * Parameters whose reference gradient is (almost) zero are compared in absolute terms against the
 * overall gradient scale instead of relatively: a relative error of noise over noise means nothing.
 */
export function compareSteps(got: StepNumbers, ref: StepNumbers, tolerance = STEP_CHECK_TOLERANCE): StepComparison {
  if (got.grads.length !== ref.grads.length) throw new Error(`step check: ${got.grads.length} gradients against ${ref.grads.length}`);
  let worstParam = '';
  let worst = 0;
  let diffSq = 0;
  let refSq = 0;
  let maxAbs = 0;
  let finite = Number.isFinite(got.loss) && Number.isFinite(ref.loss);
  const perParam: { name: string; d: number; r: number }[] = [];
  got.grads.forEach((g, k) => {
    const r = ref.grads[k]!;
    if (g.name !== r.name || g.values.length !== r.values.length) throw new Error(`step check: parameter ${k} is ${g.name} [${g.values.length}] here, ${r.name} [${r.values.length}] in the reference`);
    let d = 0;
    let n = 0;
    for (let i = 0; i < g.values.length; i++) {
      const a = g.values[i]!;
      const b = r.values[i]!;
      if (!Number.isFinite(a) || !Number.isFinite(b)) finite = false;
      const e = a - b;
      d += e * e;
      n += b * b;
      if (Math.abs(e) > maxAbs) maxAbs = Math.abs(e);
    }
    diffSq += d;
    refSq += n;
    perParam.push({ name: g.name, d, r: n });
  });
  const scale = refSq / Math.max(1, perParam.length);
  for (const p of perParam) {
    const rel = Math.sqrt(p.d / Math.max(p.r, scale * 1e-6));
    if (!(rel <= worst)) {
      worst = rel;
      worstParam = p.name;
    }
  }
  const lossRel = Math.abs(got.loss - ref.loss) / Math.max(Math.abs(ref.loss), 1e-12);
  const overall = Math.sqrt(diffSq / Math.max(refSq, 1e-30));
  return {
    backend: got.backend,
    reference: ref.backend,
    lossRelativeError: lossRel,
    worstParam,
    worstRelativeError: worst,
    overallRelativeError: overall,
    maxAbsError: maxAbs,
    finite,
    agrees: finite && lossRel <= tolerance && worst <= tolerance,
    tolerance,
    seconds: { backend: got.seconds, reference: ref.seconds },
  };
}
