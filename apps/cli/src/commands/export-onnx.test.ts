// `fedcare export --format onnx` checked against the model it came from: ONNX Runtime (onnxruntime-node,
// CPU) on model.onnx must give the probabilities and logits the TF.js path gives for the same input
// tensors — for a run's standard model exported by the CLI, and for the compact model straight
// from the exporter — and a deliberately wrong LSTM gate order must fail that check.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURE_CONFIG, fitAndEncode, generateHospital, toNdjson, type FeatureBatch } from '@fedcare/shared/data';
import { bundleFeatures, loadBundle, modelCardMarkdown, scoreWithBundle, type ModelCard } from '@fedcare/shared/fl';
import { createModel, type MultimodalRiskClassifier } from '@fedcare/shared/model';
import { disposeInputs, inputsFor, scoreBatch, type PatientScore } from '@fedcare/shared/train';
import { decodeModel } from '../onnx/onnx-proto';
import { classifierToOnnx, ONNX_OPSET } from '../onnx/onnx';
import { loadOnnxRuntime, type OrtTensor } from '../onnx/runtime';
import { fedcareRun } from '../testing-processes';
import { smallFinishedRun } from '../testing-runs';

// Installed on first use (apps/cli/src/onnx/runtime.ts says why it is not a dependency).
const ort = loadOnnxRuntime();

const TOLERANCE = 1e-4;
const PATIENTS = 500;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
};

interface Outputs {
  logits: Float32Array;
  probabilities: Float32Array;
  attention: Float32Array;
}

/** The TF.js side: logits and attention from the model on the batch's tensors, probabilities from `probabilitiesOf`. */
async function tfjsLogits(model: MultimodalRiskClassifier, batch: FeatureBatch): Promise<{ logits: Float32Array; feeds: Record<string, OrtTensor> }> {
  const inputs = inputsFor(batch, [...Array(batch.n).keys()]);
  // ONNX Runtime is fed these very tensors' contents.
  const feeds = Object.fromEntries(
    (['vitals', 'labs', 'demographics', 'biology', 'omics'] as const).map((k) => [k, new ort.Tensor('float32', Float32Array.from(inputs[k].dataSync() as Float32Array), inputs[k].shape)] as const),
  );
  const { logits, attention } = model.predictWithAttention(inputs);
  const out = Float32Array.from(await logits.data());
  tf.dispose([logits, attention]);
  disposeInputs(inputs);
  return { logits: out, feeds };
}

async function runOnnx(model: Uint8Array | string, feeds: Record<string, OrtTensor>): Promise<Outputs> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    const r = await session.run(feeds);
    const get = (k: string) => Float32Array.from(r[k]!.data as Float32Array);
    return { logits: get('logits'), probabilities: get('probabilities'), attention: get('attention') };
  } finally {
    await session.release();
  }
}

const flat = (scores: readonly PatientScore[]) => ({
  probabilities: Float32Array.from(scores.flatMap((s) => s.probabilities)),
  attention: Float32Array.from(scores.flatMap((s) => Object.values(s.modality_attention))),
});

/** The graph's declared opset, op types and interface, read back from the bytes. */
function graphOf(bytes: Uint8Array) {
  const m = decodeModel(bytes);
  const dims = (v: (typeof m.graph.input)[number]) => v.type.tensor_type.shape.dim.map((d) => ('dim_param' in d && d.dim_param ? d.dim_param : (d as { dim_value: number }).dim_value));
  return {
    opset: m.opset_import.find((o) => !o.domain)?.version ?? 0,
    ops: new Set(m.graph.node.map((n) => n.op_type)),
    inputs: Object.fromEntries(m.graph.input.map((v) => [v.name, dims(v)])),
    outputs: Object.fromEntries(m.graph.output.map((v) => [v.name, dims(v)])),
  };
}

describe('fedcare export --format onnx', () => {
  it('standard model of a real run: ONNX Runtime on model.onnx matches the TF.js path within 1e-4 for 500 patients; a wrong gate order does not', async () => {
    const { dir, db, runId, cohort } = await smallFinishedRun({ prefix: 'fc-export-onnx-', seed: 31, patients: 24, rounds: 1, seqLen: 6 });

    const out = path.join(dir, 'onnx');
    const exported = await fedcareRun(['export', '--db', db, '--run', runId, '--format', 'onnx', '--out', out]);
    expect(exported.code, exported.out).toBe(0);
    const onnxBytes = new Uint8Array(readFileSync(path.join(out, 'model.onnx')));
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    const sha = createHash('sha256').update(onnxBytes).digest('hex');
    expect(manifest).toMatchObject({ format: 'fedcare-model/1', run_id: runId, model: 'standard', features: { seq_len: 6 }, onnx: { file: 'model.onnx', sha256: sha, opset: ONNX_OPSET } });
    const card = JSON.parse(readFileSync(path.join(out, 'model-card.json'), 'utf8')) as ModelCard;
    expect(card.model).toMatchObject({ onnx_sha256: sha, onnx_opset: ONNX_OPSET, weights_sha256: manifest.weights.sha256 });
    const cardMd = readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8');
    expect(cardMd).toBe(modelCardMarkdown(card));
    expect(cardMd).toContain(`model.onnx SHA-256 \`${sha}\` (ONNX opset 17)`);

    // The graph: opset 17, the operators the classifier maps to, the named interface.
    const graph = graphOf(onnxBytes);
    expect(graph.opset).toBeGreaterThanOrEqual(17);
    for (const op of ['LSTM', 'LayerNormalization', 'Softmax', 'Gemm', 'MatMul', 'ReduceMean']) expect(graph.ops.has(op), op).toBe(true);
    expect(graph.inputs).toEqual({ vitals: ['N', 6, 10], labs: ['N', 6, 16], demographics: ['N', 10], biology: ['N', 20], omics: ['N', 32] });
    expect(graph.outputs).toEqual({ logits: ['N', 3], probabilities: ['N', 3], attention: ['N', 5] });

    // 500 patients the model never saw, encoded by the bundle's own feature pipeline.
    const records = generateHospital('H3', { seed: 77, patients: PATIENTS }).records;
    const { bundle, model } = await loadBundle(manifest, new Uint8Array(readFileSync(path.join(out, 'weights.bin'))));
    try {
      const batch = bundleFeatures(bundle, records);
      expect(batch.n).toBe(PATIENTS);
      const { logits, feeds } = await tfjsLogits(model, batch);
      const tfjs = flat(await scoreWithBundle(bundle, model, records)); // the portal's / predict's probabilities
      const onnx = await runOnnx(path.join(out, 'model.onnx'), feeds);
      const dLogits = maxAbsDiff(onnx.logits, logits);
      const dProbs = maxAbsDiff(onnx.probabilities, tfjs.probabilities);
      const dAttention = maxAbsDiff(onnx.attention, tfjs.attention);
      console.log(`[export-onnx] standard, ${PATIENTS} patients, T = ${bundle.temperature.toFixed(3)}: max |Δ| logits ${dLogits.toExponential(2)}, probabilities ${dProbs.toExponential(2)}, attention ${dAttention.toExponential(2)}`);
      expect(dLogits).toBeLessThanOrEqual(TOLERANCE);
      expect(dProbs).toBeLessThanOrEqual(TOLERANCE);
      expect(dAttention).toBeLessThanOrEqual(TOLERANCE);

      // The check has teeth: Keras's i|f|g|o written verbatim where ONNX expects i|o|f|c.
      const wrong = await runOnnx(classifierToOnnx(model, { seqLen: bundle.features.seq_len, temperature: bundle.temperature, gateOrder: [0, 1, 2, 3] }), feeds);
      const dWrong = maxAbsDiff(wrong.logits, logits);
      console.log(`[export-onnx] standard with Keras gate order left as is: max |Δ| logits ${dWrong.toExponential(2)}, probabilities ${maxAbsDiff(wrong.probabilities, tfjs.probabilities).toExponential(2)}`);
      expect(dWrong).toBeGreaterThan(TOLERANCE);
    } finally {
      model.dispose();
    }

    // The ONNX export directory is a fedcare-format one as well: predict scores records with it.
    const data = path.join(dir, 'H2.ndjson');
    writeFileSync(data, toNdjson(cohort[1]!));
    const predicted = await fedcareRun(['predict', '--model', out, '--data', data, '--out', path.join(dir, 'scores.csv')]);
    expect(predicted.code, predicted.out).toBe(0);
    expect(readFileSync(path.join(dir, 'scores.csv'), 'utf8').trim().split('\r\n')).toHaveLength(1 + cohort[1]!.length);

    // A format that does not exist is refused.
    const bad = await fedcareRun(['export', '--db', db, '--run', runId, '--format', 'pmml', '--out', path.join(dir, 'x')]);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--format must be fedcare or onnx/);
  }, 300_000);

  it('compact model (random weights, symbolic T): ONNX Runtime matches TF.js within 1e-4; a wrong gate order does not', async () => {
    const model = createModel('compact', 5);
    try {
      // Every parameter random (biases, LayerNorm γ/β included), so a misplaced bias or scale shows.
      model.params.forEach((p, i) => p.variable.assign(tf.randomNormal([...p.shape], 0, 0.4, 'float32', 1000 + i)));
      const records = generateHospital('H3', { seed: 78, patients: PATIENTS }).records;
      const { batch } = fitAndEncode(records, { ...DEFAULT_FEATURE_CONFIG, seqLen: 7 });
      const temperature = 1.7;
      const bytes = classifierToOnnx(model, { seqLen: null, temperature });
      const graph = graphOf(bytes);
      expect(graph.opset).toBeGreaterThanOrEqual(17);
      for (const op of ['LSTM', 'LayerNormalization', 'Softmax']) expect(graph.ops.has(op), op).toBe(true);
      expect(graph.inputs.vitals).toEqual(['N', 'T', 10]);

      const { logits, feeds } = await tfjsLogits(model, batch);
      const tfjs = flat(await scoreBatch(model, batch, 128, temperature));
      const onnx = await runOnnx(bytes, feeds);
      const dLogits = maxAbsDiff(onnx.logits, logits);
      const dProbs = maxAbsDiff(onnx.probabilities, tfjs.probabilities);
      console.log(`[export-onnx] compact, ${PATIENTS} patients, T = ${temperature}: max |Δ| logits ${dLogits.toExponential(2)}, probabilities ${dProbs.toExponential(2)}, attention ${maxAbsDiff(onnx.attention, tfjs.attention).toExponential(2)}`);
      expect(dLogits).toBeLessThanOrEqual(TOLERANCE);
      expect(dProbs).toBeLessThanOrEqual(TOLERANCE);
      expect(maxAbsDiff(onnx.attention, tfjs.attention)).toBeLessThanOrEqual(TOLERANCE);

      // Swapping only f and o (i|f|o|c instead of i|o|f|c) is caught too.
      const wrong = await runOnnx(classifierToOnnx(model, { seqLen: null, temperature, gateOrder: [0, 1, 3, 2] }), feeds);
      expect(maxAbsDiff(wrong.logits, logits)).toBeGreaterThan(TOLERANCE);
      expect(maxAbsDiff(wrong.probabilities, tfjs.probabilities)).toBeGreaterThan(TOLERANCE);
    } finally {
      model.dispose();
    }
  }, 120_000);
});
