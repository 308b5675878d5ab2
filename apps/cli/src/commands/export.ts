/**
 * `fedcare export`: a run's model out of the coordinator's database as a directory a hospital's IT
 * can use without fedcare's coordinator — model.json + weights.bin (the "fedcare" format,
 * shared/src/fl/model-bundle.ts) and the model card (model-card.json, MODEL_CARD.md). `fedcare
 * predict` scores records with it. `--format onnx` adds model.onnx (../onnx/onnx.ts: the same model
 * as an ONNX opset-17 graph, for ONNX Runtime), whose SHA-256 and opset model.json and the card
 * record; the rest of the directory is the fedcare format's, so predict works on it too.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '@fedcare/server';
import { BUNDLE_ONNX_FILE, BUNDLE_WEIGHTS_FILE, loadBundle, modelBundleSchema, modelCard, modelCardMarkdown, storedBundle, TabularRunError, type ModelBundle, type ModelSelector } from '@fedcare/shared/fl';
import { MODEL_NAMES, sha256Hex } from '@fedcare/shared/model';
import { CliError, defaultDbPath, writeFileAtomic } from '../io';
import { classifierToOnnx, ONNX_INPUTS, ONNX_IR_VERSION, ONNX_OPSET, ONNX_OUTPUTS, ONNX_TASK_OUTPUTS } from '../onnx/onnx';
import { initTf } from '../tf-node';
import { resolveRun } from './runs';

const HELP = `usage: fedcare export --run RUN_ID [--version latest|best|N] [--format fedcare|onnx] --out DIR [--db .fedcare/fedcare.db]

Writes a run's global model to DIR: model.json (the model definition, the parameters' layout, the
run's feature statistics, vocabularies and temperature, SHA-256s), weights.bin (float32), and its
model card (model-card.json, MODEL_CARD.md: intended use, training data as counts per hospital,
metrics, fairness, calibration, privacy, secure aggregation). --version picks the round: the latest
(default), the best by validation loss, or a round number whose weights are kept. RUN_ID may be a
unique prefix or suffix. \`fedcare predict --model DIR\` scores records with it.

--format onnx also writes model.onnx: the same model as an ONNX graph (opset 17, for ONNX Runtime),
inputs vitals [N,T,10], labs [N,T,16], demographics [N,10], biology [N,20], omics [N,32] (T: the
run's seq_len), outputs logits [N,3], probabilities (softmax of logits / the run's temperature)
[N,3] and attention [N,5]. The inputs are what the feature pipeline makes of records with the
statistics and vocabularies in model.json; model.json and the model card record model.onnx's
SHA-256 and opset. weights.bin is written too, so \`fedcare predict\` works on the directory.`;

function selector(v: string): ModelSelector {
  if (v === 'latest' || v === 'best') return v;
  const n = Number(v);
  if (Number.isInteger(n) && n >= 1) return n;
  throw new CliError(`--version must be latest, best or a round number ≥ 1, got "${v}"`, 2);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      db: { type: 'string', default: defaultDbPath() },
      run: { type: 'string' },
      version: { type: 'string', default: 'latest' },
      format: { type: 'string', default: 'fedcare' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.run) throw new CliError('--run RUN_ID is required (see `fedcare runs`)', 2);
  if (!values.out) throw new CliError('--out DIR is required', 2);
  const format = values.format;
  if (format !== 'fedcare' && format !== 'onnx') throw new CliError(`--format must be fedcare or onnx, got "${format}"`, 2);
  const which = selector(values.version);
  if (!existsSync(values.db)) throw new CliError(`no database at ${values.db} (give --db, or set FEDCARE_HOME)`, 2);
  const store = openSqliteStore(values.db);
  try {
    const run = resolveRun(await store.listRuns(), values.run, values.db);
    const model = run.config.model ?? 'standard';
    if (!(MODEL_NAMES as readonly unknown[]).includes(model)) throw new CliError(`run ${run.runId} names an unknown model "${String(run.config.model)}"`);
    await initTf('wasm');
    const rounds = await store.getRoundMetrics(run.runId);
    const stored = await storedBundle(store, run, rounds, which);
    if ('missing' in stored) {
      throw new CliError(
        stored.missing === 'model'
          ? `run ${run.runId} has no ${typeof which === 'number' ? `kept model for round ${which}` : `${which} model`} (see \`fedcare runs show ${run.runId}\`)`
          : `run ${run.runId} has no global feature statistics in the store`,
      );
    }
    if ('tabular' in stored) throw new CliError(`${new TabularRunError(run.runId, `fedcare export --format ${format}`).message}; its MLP and schema are served by GET /api/v1/runs/${run.runId}/models/${String(which)}, and \`fedcare report\` shows them`);
    let bundle: ModelBundle = stored.bundle;
    const files = ['model.json', BUNDLE_WEIGHTS_FILE, 'model-card.json', 'MODEL_CARD.md'];
    let onnx: Uint8Array | undefined;
    if (format === 'onnx') {
      // The graph is built from the model loadBundle rebuilds (every SHA-256 and shape checked).
      const { model } = await loadBundle(bundle, stored.weights);
      try {
        onnx = classifierToOnnx(model, { seqLen: bundle.features.seq_len, temperature: bundle.temperature, metadata: { run_id: run.runId, round: String(bundle.round), model: bundle.model } });
      } finally {
        model.dispose();
      }
      bundle = modelBundleSchema.parse({
        ...bundle,
        onnx: { file: BUNDLE_ONNX_FILE, sha256: await sha256Hex(onnx), opset: ONNX_OPSET, ir_version: ONNX_IR_VERSION, inputs: [...ONNX_INPUTS], outputs: [...ONNX_OUTPUTS, ...(bundle.model_options?.task_weights ? ONNX_TASK_OUTPUTS : [])] },
      });
      files.splice(2, 0, BUNDLE_ONNX_FILE);
    }
    const card = modelCard(run, rounds, bundle);
    mkdirSync(values.out, { recursive: true });
    if (onnx) writeFileAtomic(path.join(values.out, BUNDLE_ONNX_FILE), onnx);
    writeFileAtomic(path.join(values.out, BUNDLE_WEIGHTS_FILE), stored.weights);
    writeFileAtomic(path.join(values.out, 'model.json'), `${JSON.stringify(bundle, null, 2)}\n`);
    writeFileAtomic(path.join(values.out, 'model-card.json'), `${JSON.stringify(card, null, 2)}\n`);
    writeFileAtomic(path.join(values.out, 'MODEL_CARD.md'), modelCardMarkdown(card));
    process.stdout.write(`${JSON.stringify({ run_id: run.runId, round: bundle.round, out: values.out, format, weights_sha256: bundle.weights.sha256, ...(bundle.onnx ? { onnx_sha256: bundle.onnx.sha256 } : {}), files })}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
