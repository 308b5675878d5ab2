/**
 * The risk classifier (shared/src/model/classifier.ts) as an ONNX model (opset 17), for hospitals
 * whose serving stack is ONNX Runtime rather than TF.js: `fedcare export --format onnx`.
 *
 * Operator semantics followed: onnx.ai, Operators.md (docs/Operators.md of onnx/onnx) — LSTM-14,
 * LayerNormalization-17, Softmax-13, Gemm-13, MatMul-13, ReduceMean-13, Reshape-14, Transpose-13,
 * Squeeze-13, Unsqueeze-13, Concat-13, Add-14, Mul-14, Div-14, Relu-14.
 *
 * The graph is the classifier's inference pass (no dropout), op for op:
 *   vitals [N,T,10], labs [N,T,16] → Transpose to [T,N,I] → ONNX LSTM per layer (direction forward,
 *     zero initial state); the last layer's Y_h [1,N,H] squeezed to [N,H]. Keras stores gates
 *     i|f|g|o in the columns of W [I,4H], U [H,4H] and one bias b [4H]; ONNX wants the rows of
 *     W [1,4H,I], R [1,4H,H] in i|o|f|c order and B = [Wb, Rb] [1,8H]: blocks reordered and
 *     transposed, Wb = b, Rb = 0.
 *   demographics, biology, omics → Gemm, Relu, Gemm.
 *   tokens = Unsqueeze(Concat(embeddings), 1) ⊙ block mask [5,F] + modality embedding [5,F].
 *   Self-attention (nn.ts multiHeadSelfAttention): q, k, v = tokens·W + b; per head (width F/heads)
 *     softmax(q kᵀ · 1/√dh) v; heads merged; output projection. Residual, LayerNormalization
 *     (last axis, ε 1e-5), ReduceMean over the 5 tokens, then the head: Gemm (+Relu between layers).
 * Outputs: logits [N,3]; probabilities = Softmax(logits / T_calibration) [N,3] (the run's temperature,
 * as scoreBatch applies it); attention [N,5] = the softmax weights averaged over heads and query
 * tokens (predictWithAttention), MODALITY_TOKENS order. N is symbolic; T is the run's seq_len.
 * A multi-task model (run config task_weights) adds readmission_probability [N,1] = Sigmoid(Gemm of
 * the pooled fusion vector) and days_to_readmission [N,1] = DAYS_SCALE × Gemm (ONNX_TASK_OUTPUTS).
 */
import { DAYS_SCALE, MODALITY_TOKENS, type ClassifierConfig, type MultimodalRiskClassifier } from '@fedcare/shared/model';
import { AttributeType, DataType, encodeModel, type AttributeMessage, type DimMessage, type ModelMessage, type NodeMessage, type TensorMessage, type ValueInfoMessage } from './onnx-proto';

export const ONNX_OPSET = 17;
/** IR version 8 (ONNX 1.12–1.13), the IR of opset 17. */
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUTS = ['vitals', 'labs', 'demographics', 'biology', 'omics'] as const;
export const ONNX_OUTPUTS = ['logits', 'probabilities', 'attention'] as const;
/** The multi-task heads' outputs, after ONNX_OUTPUTS, in a model with task_weights only. */
export const ONNX_TASK_OUTPUTS = ['readmission_probability', 'days_to_readmission'] as const;

/**
 * For each ONNX gate slot (i, o, f, c), the Keras gate block (0 i, 1 f, 2 g = c, 3 o) that goes
 * there. Exported so a test can prove a wrong order is caught.
 */
export const KERAS_GATE_FOR_ONNX_SLOT: readonly [number, number, number, number] = [0, 3, 1, 2];

export interface OnnxExportOptions {
  /** Time steps of vitals and labs (the run's seq_len); null: a symbolic "T". */
  seqLen: number | null;
  /** Calibration temperature: probabilities = softmax(logits / temperature). */
  temperature: number;
  /** Written into ModelProto.metadata_props (run id, round, …). */
  metadata?: Readonly<Record<string, string>>;
  /** Tests only: the Keras gate block for each ONNX slot i, o, f, c (default KERAS_GATE_FOR_ONNX_SLOT). */
  gateOrder?: readonly [number, number, number, number];
}

type Weights = Map<string, { shape: readonly number[]; values: Float32Array }>;

const attrInt = (name: string, i: number): AttributeMessage => ({ name, type: AttributeType.INT, i });
const attrInts = (name: string, ints: number[]): AttributeMessage => ({ name, type: AttributeType.INTS, ints });
const attrFloat = (name: string, f: number): AttributeMessage => ({ name, type: AttributeType.FLOAT, f });

function floatBytes(values: Float32Array | readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true); // raw_data is little-endian
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return out;
}

/** Nodes and initializers, in topological order as they are added. */
class GraphBuilder {
  readonly nodes: NodeMessage[] = [];
  readonly initializers: TensorMessage[] = [];
  private readonly names = new Set<string>();
  private count = 0;

  private fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.count}`;
    this.names.add(name);
    return name;
  }

  floats(name: string, dims: readonly number[], values: Float32Array | readonly number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`onnx initializer ${name}: ${values.length} values for [${dims.join(', ')}]`);
    const n = this.fresh(name);
    this.initializers.push({ name: n, dims: [...dims], data_type: DataType.FLOAT, raw_data: floatBytes(values) });
    return n;
  }

  int64s(name: string, values: readonly number[]): string {
    const n = this.fresh(name);
    this.initializers.push({ name: n, dims: [values.length], data_type: DataType.INT64, raw_data: int64Bytes(values) });
    return n;
  }

  /** One node; `outputs`: names to give ('' = an optional output left out), or a count of fresh ones. */
  op(opType: string, inputs: readonly string[], attribute: AttributeMessage[] = [], outputs: readonly string[] | number = 1): string[] {
    const name = this.fresh(`${opType}_${this.nodes.length}`);
    const out = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, k) => this.fresh(`${name}_out${k}`)) : outputs.map((o) => (o === '' ? '' : this.fresh(o)));
    this.nodes.push({ name, op_type: opType, input: [...inputs], output: out, attribute });
    return out;
  }

  op1(opType: string, inputs: readonly string[], attribute: AttributeMessage[] = [], output?: string): string {
    return this.op(opType, inputs, attribute, output === undefined ? 1 : [output])[0] as string;
  }
}

/** The classifier's parameters by name, read off its TF.js variables. */
function weightsOf(model: MultimodalRiskClassifier): Weights {
  return new Map(model.params.map((p) => [p.name, { shape: p.shape, values: Float32Array.from(p.variable.dataSync() as Float32Array) }]));
}

/** Keras gate blocks (columns of m [rows, 4H]) → ONNX [4H, rows] in slot order, transposed. */
function onnxGates(m: Float32Array, rows: number, H: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(4 * H * rows);
  order.forEach((gate, slot) => {
    for (let j = 0; j < H; j++) {
      for (let k = 0; k < rows; k++) out[(slot * H + j) * rows + k] = m[k * 4 * H + gate * H + j] as number;
    }
  });
  return out;
}

/**
 * The ONNX ModelProto bytes of `model`'s inference pass with its current weights. Throws when a
 * parameter is missing, has another shape than the config implies, or is left unused.
 */
export function classifierToOnnx(model: MultimodalRiskClassifier, options: OnnxExportOptions): Uint8Array {
  const cfg: Readonly<ClassifierConfig> = model.config;
  const order = options.gateOrder ?? KERAS_GATE_FOR_ONNX_SLOT;
  if (!(Number.isFinite(options.temperature) && options.temperature > 0)) throw new Error(`onnx export: temperature must be positive, got ${options.temperature}`);
  if (options.seqLen !== null && !(Number.isInteger(options.seqLen) && options.seqLen >= 1)) throw new Error(`onnx export: seqLen must be a positive integer, got ${options.seqLen}`);
  const weights = weightsOf(model);
  const used = new Set<string>();
  const take = (name: string, shape: readonly number[]): Float32Array => {
    const w = weights.get(name);
    if (!w) throw new Error(`onnx export: the model has no parameter ${name}`);
    if (w.shape.join() !== shape.join()) throw new Error(`onnx export: ${name} is [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
    used.add(name);
    return w.values;
  };
  const g = new GraphBuilder();

  const lstmEncoder = (x: string, prefix: string, inDim: number, H: number): string => {
    let seq = g.op1('Transpose', [x], [attrInts('perm', [1, 0, 2])]); // [T, N, I]
    for (let l = 0; l < cfg.lstmLayers; l++) {
      const I = l === 0 ? inDim : H;
      const p = `${prefix}.lstm${l}`;
      const W = g.floats(`${p}.W`, [1, 4 * H, I], onnxGates(take(`${p}.kernel`, [I, 4 * H]), I, H, order));
      const R = g.floats(`${p}.R`, [1, 4 * H, H], onnxGates(take(`${p}.recurrent_kernel`, [H, 4 * H]), H, H, order));
      const b = take(`${p}.bias`, [4 * H]);
      const B = new Float32Array(8 * H); // [Wb, Rb]; Rb stays 0 (Keras has one bias)
      order.forEach((gate, slot) => B.set(b.subarray(gate * H, (gate + 1) * H), slot * H));
      const Bn = g.floats(`${p}.B`, [1, 8 * H], B);
      const last = l === cfg.lstmLayers - 1;
      // Outputs Y [T, 1, N, H] and Y_h [1, N, H]: a middle layer hands Y on, the last one Y_h.
      const [Y, Yh] = g.op('LSTM', [seq, W, R, Bn], [attrInt('hidden_size', H)], last ? ['', `${p}.Y_h`] : [`${p}.Y`]);
      if (last) return g.op1('Squeeze', [Yh as string, g.int64s(`${p}.axes`, [0])], [], `${prefix}.embedding`); // [N, H]
      seq = g.op1('Squeeze', [Y as string, g.int64s(`${p}.axes`, [1])]); // [T, N, H]
    }
    throw new Error('unreachable: lstmLayers >= 1');
  };

  const dense = (x: string, name: string, inDim: number, outDim: number, output?: string): string =>
    g.op1('Gemm', [x, g.floats(`${name}.kernel`, [inDim, outDim], take(`${name}.kernel`, [inDim, outDim])), g.floats(`${name}.bias`, [outDim], take(`${name}.bias`, [outDim]))], [], output);
  const mlp = (x: string, name: string, inDim: number, hidden: number, outDim: number): string =>
    dense(g.op1('Relu', [dense(x, `${name}.dense0`, inDim, hidden)]), `${name}.dense1`, hidden, outDim, `${name}.embedding`);

  const embeddings = [
    lstmEncoder('vitals', 'clinical', cfg.vitalsChannels, cfg.clinicalHidden),
    lstmEncoder('labs', 'lab', cfg.labChannels, cfg.labHidden),
    mlp('demographics', 'demographics', cfg.demographicsDim, cfg.demographicsHidden, cfg.demographicsOut),
    mlp('biology', 'biology', cfg.biologyDim, cfg.biologyHidden, cfg.biologyOut),
    mlp('omics', 'omics', cfg.omicsDim, cfg.omicsHidden, cfg.omicsOut),
  ];

  // Tokens: the concatenation broadcast over 5 tokens × the 0/1 block mask + the modality embedding.
  const widths = [cfg.clinicalHidden, cfg.labHidden, cfg.demographicsOut, cfg.biologyOut, cfg.omicsOut];
  const F = widths.reduce((a, b) => a + b, 0);
  if (F !== model.fusionDim) throw new Error(`onnx export: fusion width ${F}, the model says ${model.fusionDim}`);
  const mask = new Float32Array(5 * F);
  let offset = 0;
  widths.forEach((w, k) => {
    mask.fill(1, k * F + offset, k * F + offset + w);
    offset += w;
  });
  const concat = g.op1('Concat', embeddings, [attrInt('axis', 1)], 'fusion.concat'); // [N, F]
  const broadcast = g.op1('Unsqueeze', [concat, g.int64s('fusion.unsqueeze_axes', [1])]); // [N, 1, F]
  const masked = g.op1('Mul', [broadcast, g.floats('fusion.token_mask', [5, F], mask)]); // [N, 5, F]
  const tokens = g.op1('Add', [masked, g.floats('fusion.modality_embedding', [5, F], take('fusion.modality_embedding', [5, F]))], [], 'fusion.tokens');

  // Multi-head self-attention.
  const heads = cfg.attentionHeads;
  const dh = F / heads;
  const project = (x: string, which: string): string => {
    const p = `fusion.attention.${which}`;
    const mm = g.op1('MatMul', [x, g.floats(`${p}.kernel`, [F, F], take(`${p}.kernel`, [F, F]))]);
    return g.op1('Add', [mm, g.floats(`${p}.bias`, [F], take(`${p}.bias`, [F]))], [], `${p}.out`);
  };
  const splitShape = g.int64s('fusion.attention.split_shape', [0, 5, heads, dh]); // 0: keep N
  const split = (t: string, perm: number[]): string => g.op1('Transpose', [g.op1('Reshape', [t, splitShape])], [attrInts('perm', perm)]);
  const q = split(project(tokens, 'query'), [0, 2, 1, 3]); // [N, heads, 5, dh]
  const kT = split(project(tokens, 'key'), [0, 2, 3, 1]); // [N, heads, dh, 5]
  const v = split(project(tokens, 'value'), [0, 2, 1, 3]); // [N, heads, 5, dh]
  const scores = g.op1('Mul', [g.op1('MatMul', [q, kT]), g.floats('fusion.attention.scale', [], [1 / Math.sqrt(dh)])]); // [N, heads, 5, 5]
  const probs = g.op1('Softmax', [scores], [attrInt('axis', -1)], 'fusion.attention.probs');
  const ctx = g.op1('Transpose', [g.op1('MatMul', [probs, v])], [attrInts('perm', [0, 2, 1, 3])]); // [N, 5, heads, dh]
  const merged = g.op1('Reshape', [ctx, g.int64s('fusion.attention.merge_shape', [0, 5, F])]); // [N, 5, F]
  const attended = project(merged, 'output');
  const residual = g.op1('Add', [tokens, attended], [], 'fusion.residual');
  const normed = g.op1(
    'LayerNormalization',
    [residual, g.floats('fusion.norm.gamma', [F], take('fusion.norm.gamma', [F])), g.floats('fusion.norm.beta', [F], take('fusion.norm.beta', [F]))],
    [attrInt('axis', -1), attrFloat('epsilon', 1e-5)],
    'fusion.normed',
  );
  const pooled = g.op1('ReduceMean', [normed], [attrInts('axes', [1]), attrInt('keepdims', 0)], 'fusion.pooled'); // [N, F]
  let x = pooled;

  // Head.
  const sizes = [F, ...cfg.headHidden, cfg.numClasses];
  for (let k = 0; k < sizes.length - 1; k++) {
    const last = k === sizes.length - 2;
    x = dense(x, `head.dense${k}`, sizes[k] as number, sizes[k + 1] as number, last ? 'logits' : undefined);
    if (!last) x = g.op1('Relu', [x]);
  }
  const scaled = g.op1('Div', [x, g.floats('temperature', [], [options.temperature])]);
  g.op1('Softmax', [scaled], [attrInt('axis', -1)], 'probabilities');
  g.op1('ReduceMean', [probs], [attrInts('axes', [1, 2]), attrInt('keepdims', 0)], 'attention');
  if (model.taskWeights) {
    g.op1('Sigmoid', [dense(pooled, 'aux.readmission', F, 1)], [], 'readmission_probability');
    g.op1('Mul', [dense(pooled, 'aux.days', F, 1), g.floats('days_scale', [], [DAYS_SCALE])], [], 'days_to_readmission');
  }

  const unused = [...weights.keys()].filter((n) => !used.has(n));
  if (unused.length > 0) throw new Error(`onnx export: parameters not in the graph: ${unused.join(', ')}`);

  const dim = (d: number | string): DimMessage => (typeof d === 'number' ? { dim_value: d } : { dim_param: d });
  const T = options.seqLen ?? 'T';
  const valueInfo = (name: string, dims: (number | string)[], doc: string): ValueInfoMessage => ({
    name,
    doc_string: doc,
    type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map(dim) } } },
  });
  const message: ModelMessage = {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'fedcare',
    producer_version: '1',
    doc_string: 'fedcare MultimodalRiskClassifier: 3-class risk (Low, Medium, High) from vitals, labs, demographics, biology and omics encoded by the feature pipeline that model.json describes.',
    graph: {
      name: 'fedcare_risk_classifier',
      node: g.nodes,
      initializer: g.initializers,
      input: [
        valueInfo('vitals', ['N', T, cfg.vitalsChannels], 'per time step: the vital signs (standardised) then their missingness masks'),
        valueInfo('labs', ['N', T, cfg.labChannels], 'per time step: the lab values (standardised) then their missingness masks'),
        valueInfo('demographics', ['N', cfg.demographicsDim], 'demographics, standardised / one-hot'),
        valueInfo('biology', ['N', cfg.biologyDim], 'comorbidities and markers'),
        valueInfo('omics', ['N', cfg.omicsDim], 'omics projected on the run’s PCA basis'),
      ],
      output: [
        valueInfo('logits', ['N', cfg.numClasses], 'class logits: Low, Medium, High'),
        valueInfo('probabilities', ['N', cfg.numClasses], `softmax(logits / ${options.temperature})`),
        valueInfo('attention', ['N', 5], `attention each modality token receives (${MODALITY_TOKENS.join(', ')}), rows sum to 1`),
        ...(model.taskWeights
          ? [valueInfo('readmission_probability', ['N', 1], 'P(readmission within 30 days), the multi-task head'), valueInfo('days_to_readmission', ['N', 1], 'predicted days to readmission (meaningful for readmitted patients), the multi-task head')]
          : []),
      ],
    },
    metadata_props: Object.entries({ temperature: String(options.temperature), modalities: MODALITY_TOKENS.join(','), ...options.metadata }).map(([key, value]) => ({ key, value })),
  };
  return encodeModel(message);
}
