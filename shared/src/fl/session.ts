/**
 * The hospital's side of the protocol, shared by every host: the headless Node client (socket and
 * HospitalClient in one process) and the browser portal (socket in the page, HospitalClient in a
 * Web Worker). A host wires its transport's events to `onInstruction` / `onStats` / `onRun` and
 * gives the session a `HospitalCompute` (the HospitalClient itself, or a proxy to a worker) and a
 * `SessionTransport` (how results and declines go back). The session validates every message,
 * handles one instruction at a time in arrival order, and declines — with the reason — what it
 * cannot do; it never sees a record.
 */
import type { FeatureStats, FeatureSums } from '../data/features';
import { sha256Hex } from '../model/weights';
import { ProtocolError } from '../protocol/errors';
import { MAX_MESSAGE_BYTES, oversizedMessage } from '../protocol/size';
import {
  globalStatsSchema,
  instructionSchema,
  tabularStatsSchema,
  type TabularPreprocessWire,
  runEventSchema,
  validate,
  type Decline,
  type Instruction,
  type RunEvent,
  type StageResult,
  type WireInstruction,
} from '../protocol/messages';
import type { EvaluateReply, TrainReply } from './client';
import type { SecAggReply, SecAggRequest } from '../secagg/protocol';
import type { HeReply, HeRequest } from '../he/messages';
import type { TabularPreprocessReply, TabularSchema } from '../tabular/schema';

/** What a session needs from the model side; `HospitalClient` implements it, so does the portal's worker proxy. */
export interface HospitalCompute {
  featureSums(seqLen: number): FeatureSums | Promise<FeatureSums>;
  /** Secure preprocessing: keep the sums for round 0's SecAgg+ stages instead of returning them. */
  holdFeatureSums(runId: string, seqLen: number): void | Promise<void>;
  setStats(runId: string, stats: FeatureStats, seqLen: number): void | Promise<void>;
  /** deadline: when the coordinator stops waiting for the result (Date.now() clock), when it said. */
  fit(instr: Extract<Instruction, { stage: 'train' }>, deadline?: number): Promise<TrainReply>;
  evaluate(instr: Extract<Instruction, { stage: 'evaluate' }>, deadline?: number): Promise<EvaluateReply>;
  /** One SecAgg+ stage (advertise-keys, share-keys, masked-input, unmask). */
  secureAggregation(req: SecAggRequest): Promise<SecAggReply>;
  /** One HE stage (he-keys, he-setup, he-input, he-decrypt). */
  homomorphic(req: HeRequest): Promise<HeReply>;
  /** A tabular run's preprocessing (../tabular/client.ts); absent: this hospital has no table and declines. */
  tabularPreprocess?(runId: string, wire: TabularPreprocessWire, secure: boolean): TabularPreprocessReply | Promise<TabularPreprocessReply>;
  /** A tabular run's schema (its `fl:stats`). */
  setTabularSchema?(runId: string, schema: TabularSchema): void | Promise<void>;
}

export interface SessionTransport {
  /** Sends a stage result; resolves when acknowledged, rejects (or resolves with an error) as the host decides. */
  sendResult(result: StageResult): Promise<void>;
  /** Sends a decline; best effort. */
  sendDecline(decline: Decline): Promise<void>;
}

/** What the session is doing, for progress displays. */
export type SessionActivity =
  | { kind: 'idle' }
  | { kind: 'stage'; stage: Instruction['stage']; run_id: string; round: number }
  | { kind: 'sent'; stage: Instruction['stage']; run_id: string; round: number; result: StageResult }
  | { kind: 'declined'; stage: Instruction['stage']; run_id: string; round: number; reason: string };

export interface HospitalSessionOptions {
  log?: (msg: string) => void;
  onActivity?: (a: SessionActivity) => void;
  onRun?: (e: RunEvent) => void;
  onStats?: (runId: string) => void;
  /** Test hook: rewrite a result before it is sent (fault injection); undefined sends nothing. */
  tamper?: (result: StageResult) => StageResult | undefined;
  /** Test hook: called before an instruction is handled; return false to ignore it. */
  beforeInstruction?: (instr: Instruction) => boolean;
  /** The coordinator's per-message limit (default `MAX_MESSAGE_BYTES`): a larger result is declined, not sent. */
  maxMessageBytes?: number;
}

/** When the coordinator stops waiting for this stage, by this host's clock; undefined if it did not say. */
function deadlineOf(instr: { timeout_s?: number | undefined }, receivedAt: number): number | undefined {
  return instr.timeout_s === undefined ? undefined : receivedAt + instr.timeout_s * 1000;
}

/** How many models (by SHA-256) a session keeps to fill in instructions that name one without its weights. */
const HELD_MODELS = 2;

export class HospitalSession {
  private queue: Promise<void> = Promise.resolve();
  private readonly log: (msg: string) => void;
  /** The last models this connection received and used, by SHA-256 (insertion order: oldest first). */
  private readonly models = new Map<string, Uint8Array>();

  constructor(
    readonly hospitalId: string,
    private readonly compute: HospitalCompute,
    private readonly transport: SessionTransport,
    private readonly options: HospitalSessionOptions = {},
  ) {
    this.log = options.log ?? (() => {});
  }

  /** An `fl:instruction` payload; queued behind the ones before it. Resolves when this one is handled. */
  onInstruction(raw: unknown): Promise<void> {
    // The stage's time runs from when the coordinator sent it, not from when its turn here comes.
    const receivedAt = Date.now();
    const next = this.queue.then(() => this.handle(raw, receivedAt)).catch((e: unknown) => this.log(`${this.hospitalId}: ${(e as Error).message}`));
    this.queue = next;
    return next;
  }

  /** An `fl:stats` payload (the run's global feature statistics). */
  async onStats(raw: unknown): Promise<void> {
    if (raw && typeof raw === 'object' && 'tabular' in raw) return this.onTabularStats(raw);
    const msg = validate(globalStatsSchema, raw);
    if (!msg.ok) return this.log(`${this.hospitalId}: ignoring invalid global statistics (${msg.message})`);
    // Queued too: statistics must not change under an instruction being handled.
    const next = this.queue.then(async () => {
      await this.compute.setStats(msg.value.run_id, msg.value.stats, msg.value.seq_len);
      this.log(`${this.hospitalId}: global statistics for ${msg.value.run_id}`);
      this.options.onStats?.(msg.value.run_id);
    });
    this.queue = next.catch((e: unknown) => this.log(`${this.hospitalId}: ${(e as Error).message}`));
    return this.queue;
  }

  /** A tabular run's `fl:stats` (its schema). */
  private async onTabularStats(raw: unknown): Promise<void> {
    const msg = validate(tabularStatsSchema, raw);
    if (!msg.ok) return this.log(`${this.hospitalId}: ignoring an invalid tabular schema (${msg.message})`);
    const next = this.queue.then(async () => {
      if (!this.compute.setTabularSchema) return this.log(`${this.hospitalId}: run ${msg.value.run_id} is tabular; this hospital holds no table`);
      await this.compute.setTabularSchema(msg.value.run_id, msg.value.tabular as TabularSchema);
      this.log(`${this.hospitalId}: tabular schema for ${msg.value.run_id}`);
      this.options.onStats?.(msg.value.run_id);
    });
    this.queue = next.catch((e: unknown) => this.log(`${this.hospitalId}: ${(e as Error).message}`));
    return this.queue;
  }

  /** An `fl:run` payload; returns the validated event (undefined when invalid). */
  onRun(raw: unknown): RunEvent | undefined {
    const msg = validate(runEventSchema, raw);
    if (!msg.ok) {
      this.log(`${this.hospitalId}: ignoring invalid run event (${msg.message})`);
      return undefined;
    }
    const e = msg.value;
    this.log(`${this.hospitalId}: run ${e.run_id} ${e.status}${e.reason ? ` (${e.reason})` : ''}`);
    this.options.onRun?.(e);
    return e;
  }

  /** Resolves when every queued instruction has been handled. */
  idle(): Promise<void> {
    return this.queue;
  }

  /**
   * Sends a result, unless it would exceed the coordinator's message limit: the coordinator would
   * close the connection unread, so the stage is declined instead, naming the part that is too
   * large, and the hospital stays connected for the next round. Returns the decline reason then.
   */
  private async send(result: StageResult): Promise<string | undefined> {
    const out = this.options.tamper ? this.options.tamper(result) : result;
    if (!out) return undefined;
    const tooLarge = oversizedMessage('fl:result', out, this.options.maxMessageBytes ?? MAX_MESSAGE_BYTES);
    if (tooLarge) return `MESSAGE_TOO_LARGE: ${tooLarge}`.slice(0, 500);
    await this.transport.sendResult(out);
    return undefined;
  }

  private async decline(at: { stage: Instruction['stage']; run_id: string; round: number }, reason: string): Promise<void> {
    this.log(`${this.hospitalId}: declining ${at.stage} of round ${at.round}: ${reason}`);
    this.options.onActivity?.({ kind: 'declined', ...at, reason });
    await this.transport.sendDecline({ ...at, reason }).catch(() => undefined);
  }

  private async handle(raw: unknown, receivedAt: number): Promise<void> {
    const parsed = validate(instructionSchema, raw);
    if (!parsed.ok) return this.log(`${this.hospitalId}: ignoring invalid instruction (${parsed.message})`);
    const wire = parsed.value as WireInstruction;
    const at = { stage: wire.stage, run_id: wire.run_id, round: wire.round };
    const instr = this.withModel(wire);
    if (!instr) return this.decline(at, `UNKNOWN_MODEL: the model ${(wire as { weights_sha256: string }).weights_sha256.slice(0, 12)}… was named without its weights and is not held here`);
    if (this.options.beforeInstruction && !this.options.beforeInstruction(instr)) return;
    this.options.onActivity?.({ kind: 'stage', ...at });
    let result: StageResult;
    try {
      if (instr.stage === 'preprocess' && instr.tabular) {
        if (!this.compute.tabularPreprocess) throw new Error('this hospital holds patient records, not a table: it takes part in risk runs only');
        result = { run_id: instr.run_id, round: 0, stage: 'preprocess', ...(await this.compute.tabularPreprocess(instr.run_id, instr.tabular as TabularPreprocessWire, instr.secure_aggregation === 'secagg')) };
      } else if (instr.stage === 'preprocess' && instr.secure_aggregation) {
        await this.compute.holdFeatureSums(instr.run_id, instr.seq_len);
        result = { run_id: instr.run_id, round: 0, stage: 'preprocess' };
      } else if (instr.stage === 'preprocess') {
        result = { run_id: instr.run_id, round: 0, stage: 'preprocess', sums: await this.compute.featureSums(instr.seq_len) };
      } else if (instr.stage === 'train') {
        this.log(`${this.hospitalId}: round ${instr.round} train`);
        result = { run_id: instr.run_id, round: instr.round, stage: 'train', ...(await this.compute.fit(instr, deadlineOf(instr, receivedAt))) };
      } else if (instr.stage === 'evaluate') {
        result = { run_id: instr.run_id, round: instr.round, stage: 'evaluate', ...(await this.compute.evaluate(instr, deadlineOf(instr, receivedAt))) };
      } else if (instr.stage.startsWith('he-')) {
        result = (await this.compute.homomorphic(instr as HeRequest)) as StageResult;
      } else {
        result = (await this.compute.secureAggregation(instr as SecAggRequest)) as StageResult;
      }
    } catch (e) {
      return this.decline(at, (e instanceof ProtocolError ? `${e.code}: ${e.message}` : (e as Error).message).slice(0, 500));
    }
    // Compute checked train and evaluate weights against their SHA-256; preprocess's (the initial model) are checked here.
    // Either way they are kept for an instruction that names them alone.
    if ((instr.stage === 'train' || instr.stage === 'evaluate') && wire.stage === instr.stage && wire.weights) this.hold(instr.weights_sha256, instr.weights);
    if (instr.stage === 'preprocess' && instr.weights && instr.weights_sha256 && (await sha256Hex(instr.weights)) === instr.weights_sha256) this.hold(instr.weights_sha256, instr.weights);
    const refused = await this.send(result);
    if (refused) return this.decline(at, refused);
    this.options.onActivity?.({ kind: 'sent', ...at, result });
  }

  /** The instruction with its weights: as sent, or from a held model it names; undefined when it names one not held. */
  private withModel(wire: WireInstruction): Instruction | undefined {
    if ((wire.stage !== 'train' && wire.stage !== 'evaluate') || wire.weights) return wire as Instruction;
    const weights = this.models.get(wire.weights_sha256);
    return weights ? ({ ...wire, weights } as Instruction) : undefined;
  }

  private hold(sha: string, weights: Uint8Array): void {
    this.models.delete(sha);
    this.models.set(sha, weights);
    for (const old of this.models.keys()) if (this.models.size > HELD_MODELS) this.models.delete(old);
  }
}
