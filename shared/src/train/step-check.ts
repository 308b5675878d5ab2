/**
 * One training step as numbers, to check a TF.js backend against a reference backend: the loss and
 * every parameter's gradient of one minibatch of synthetic patients (no hospital record is used),
 * and the same minibatch through DP-SGD's per-example clipping (./dp-fast.ts: each example's
 * gradient norm and the clipped sum, no noise), the model built from a fixed seed and dropout drawn
 * from fixed seeds, so that two backends compute exactly the same functions and may differ only by
 * floating-point rounding.
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
import { clippedGradientSumFast } from './dp-fast';
import { disposeInputs, inputsFor, labelledIndices } from './train';

export interface StepNumbers {
  backend: string;
  loss: number;
  /** Per parameter, in the model's parameter order. */
  grads: { name: string; values: Float32Array }[];
  /** DP-SGD's per-example clipping of the same minibatch (C = 1): Σ_i clip(g_i) per parameter, and ‖g_i‖. */
  clipped: { name: string; values: Float32Array }[];
  norms: number[];
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
 * current TF.js backend, then the per-example clipped sum of the same minibatch. Leaves no tensor
 * behind.
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
      // The model's own dropout stream, untouched so far, draws the same masks on every backend.
      const dp = await clippedGradientSumFast(model, input.batch, input.rows, 1);
      try {
        const clipped = await Promise.all(dp.sum.map((t) => t.data<'float32'>()));
        return {
          backend: tf.getBackend(),
          loss: loss![0] as number,
          grads: values.map((v, i) => ({ name: names[i]!, values: v })),
          clipped: clipped.map((v, i) => ({ name: names[i]!, values: v })),
          norms: dp.norms,
          seconds: (performance.now() - started) / 1000,
        };
      } finally {
        tf.dispose(dp.sum);
      }
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
  /** The parameter whose gradient differs most (relative L2; "dp:" for the clipped sum), and by how much. */
  worstParam: string;
  worstRelativeError: number;
  /** ‖g − g_ref‖ / ‖g_ref‖ over all parameters together. */
  overallRelativeError: number;
  /** Largest |g − g_ref| of any coordinate. */
  maxAbsError: number;
  /** Largest relative difference of one example's gradient norm (DP-SGD's clipping decision). */
  normRelativeError: number;
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
 * Loss, gradients, per-example norms and clipped sums of `got` against `ref`, each in relative
 * error; agrees when every one is within `tolerance`.
 */
export function compareSteps(got: StepNumbers, ref: StepNumbers, tolerance = STEP_CHECK_TOLERANCE): StepComparison {
  const plain = compareGradients(got.grads, ref.grads, '');
  const dp = compareGradients(got.clipped, ref.clipped, 'dp: ');
  if (got.norms.length !== ref.norms.length) throw new Error(`step check: ${got.norms.length} per-example norms against ${ref.norms.length}`);
  let normRel = 0;
  got.norms.forEach((n, i) => {
    const r = ref.norms[i]!;
    const e = Math.abs(n - r) / Math.max(Math.abs(r), 1e-12);
    if (!(e <= normRel)) normRel = e;
  });
  const worst = dp.worst > plain.worst || Number.isNaN(dp.worst) ? dp : plain;
  const finite = Number.isFinite(got.loss) && Number.isFinite(ref.loss) && plain.finite && dp.finite && got.norms.every(Number.isFinite);
  const lossRel = Math.abs(got.loss - ref.loss) / Math.max(Math.abs(ref.loss), 1e-12);
  return {
    backend: got.backend,
    reference: ref.backend,
    lossRelativeError: lossRel,
    worstParam: worst.param,
    worstRelativeError: worst.worst,
    overallRelativeError: plain.overall,
    maxAbsError: Math.max(plain.maxAbs, dp.maxAbs),
    normRelativeError: normRel,
    finite,
    agrees: finite && lossRel <= tolerance && plain.worst <= tolerance && dp.worst <= tolerance && normRel <= tolerance,
    tolerance,
    seconds: { backend: got.seconds, reference: ref.seconds },
  };
}

/**
 * Per parameter, relative L2 error. Parameters whose reference gradient is (almost) zero are
 * measured against the overall gradient scale instead: a relative error of noise over noise means
 * nothing.
 */
function compareGradients(
  got: readonly { name: string; values: Float32Array }[],
  ref: readonly { name: string; values: Float32Array }[],
  label: string,
): { worst: number; param: string; overall: number; maxAbs: number; finite: boolean } {
  if (got.length !== ref.length) throw new Error(`step check: ${got.length} gradients against ${ref.length}`);
  let diffSq = 0;
  let refSq = 0;
  let maxAbs = 0;
  let finite = true;
  const perParam: { name: string; d: number; r: number }[] = [];
  got.forEach((g, k) => {
    const r = ref[k]!;
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
  let worst = 0;
  let param = '';
  for (const p of perParam) {
    const rel = Math.sqrt(p.d / Math.max(p.r, scale * 1e-6));
    if (!(rel <= worst)) {
      worst = rel;
      param = `${label}${p.name}`;
    }
  }
  return { worst, param, overall: Math.sqrt(diffSq / Math.max(refSq, 1e-30)), maxAbs, finite };
}
