/**
 * Test double of a hospital for the coordinator's protocol tests: a real socket.io-client socket on
 * `/hospital` that answers instructions at once instead of training a model. Preprocess sends the
 * real feature sums of a small generated cohort; train sends the global weights it received,
 * slightly perturbed (same length, correct SHA-256); evaluate sends plausible metrics. Each stage's
 * behaviour can be replaced to misbehave, and every instruction, acknowledgement and `fl:error` is
 * recorded for assertions.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { computeFeatureSums, generateHospital, OBSERVATION_WINDOW_DAYS, type FeatureSums, type PatientRecord } from '@fedcare/shared/data';
import { sha256Hex, weightsFromBytes, weightsToBytes } from '@fedcare/shared/model';
import {
  HOSPITAL_NAMESPACE,
  instructionSchema,
  PROTOCOL_VERSION,
  validate,
  type Instruction,
  type WireInstruction,
  type ProtocolErrorPayload,
  type StageName,
  type StageResult,
} from '@fedcare/shared/protocol';
import { startServer, type RunningServer, type ServerOptions } from '../server';

export type AckResponse = { ok: true; value: unknown } | { ok: false; error: ProtocolErrorPayload };
export type TrainInstruction = Extract<Instruction, { stage: 'train' }>;
export type EvaluateInstruction = Extract<Instruction, { stage: 'evaluate' }>;
export type TrainResult = Extract<StageResult, { stage: 'train' }>;

export interface SentMessage {
  event: string;
  payload: unknown;
  /** The acknowledgement; undefined when none came. */
  response: AckResponse | undefined;
  /** Why no acknowledgement came (socket.io-client's error: a timeout or "socket has been disconnected"). */
  error?: string;
}

/** What a hospital does with one instruction; the default sends the honest result. */
export type Behaviour = (instr: Instruction, fake: FakeHospital) => Promise<void> | void;

export interface FakeHospitalOptions {
  url: string;
  hospitalId: string;
  token: string;
  /** Handshake fields overriding the defaults (e.g. client_version), merged into `auth`. */
  auth?: Record<string, unknown>;
  /** Cohort for the preprocess sums (generateHospital seed and size). */
  seed?: number;
  patients?: number;
  transports?: ('websocket' | 'polling')[];
  /** Off by default: a test decides when a hospital comes back. */
  reconnection?: boolean;
  behaviour?: Partial<Record<StageName, Behaviour>>;
  /** Further socket.io-client options (e.g. a parser). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

const cohorts = new Map<string, readonly PatientRecord[]>();
const sumsCache = new Map<string, FeatureSums>();

function cohort(hospitalId: string, seed: number, patients: number): readonly PatientRecord[] {
  const key = `${hospitalId}/${seed}/${patients}`;
  let records = cohorts.get(key);
  if (!records) {
    records = generateHospital(hospitalId, { seed, patients }).records;
    cohorts.set(key, records);
  }
  return records;
}

/** A small deterministic nudge per hospital and round, so honest updates differ but stay close. */
export function perturb(weights: Float32Array, hospitalId: string, round: number): Float32Array {
  const out = Float32Array.from(weights);
  const salt = hospitalId.charCodeAt(hospitalId.length - 1) + 31 * round;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + 1e-3 * Math.sin(i * 0.37 + salt);
  return out;
}

export class FakeHospital {
  readonly socket: Socket;
  readonly hospitalId: string;
  /** Every instruction received (validated), in order. */
  readonly instructions: Instruction[] = [];
  /** Every message sent with an acknowledgement, and the acknowledgement (undefined when none came). */
  readonly sent: SentMessage[] = [];
  /** `fl:error` events pushed by the coordinator. */
  readonly errors: ProtocolErrorPayload[] = [];
  /** Exceptions thrown by a behaviour (a test asserts there are none). */
  readonly failures: Error[] = [];
  /** The train results this hospital sent, by round (the last one per round). */
  readonly trainSent = new Map<number, TrainResult>();
  behaviour: Partial<Record<StageName, Behaviour>>;
  private readonly seed: number;
  private readonly patients: number;
  private queue = Promise.resolve();
  private readonly models = new Map<string, Uint8Array>();
  private readonly waiters = new Set<() => void>();

  private constructor(o: FakeHospitalOptions) {
    this.hospitalId = o.hospitalId;
    this.seed = o.seed ?? 7;
    this.patients = o.patients ?? 30;
    this.behaviour = o.behaviour ?? {};
    this.socket = io(`${o.url}${HOSPITAL_NAMESPACE}`, {
      auth: { token: o.token, hospital_id: o.hospitalId, client_version: PROTOCOL_VERSION, host: 'test', ...o.auth },
      transports: o.transports ?? ['websocket'],
      reconnection: o.reconnection ?? false,
      forceNew: true,
      ...o.socketOptions,
    });
    this.socket.on('fl:error', (e: ProtocolErrorPayload) => {
      this.errors.push(e);
      this.notify();
    });
    this.socket.on('fl:instruction', (raw: unknown) => {
      this.queue = this.queue.then(() => this.handle(raw)).catch((e: unknown) => void this.failures.push(e as Error));
    });
  }

  /** Connects; resolves once the coordinator accepted the handshake, rejects with the connect_error otherwise. */
  static connect(o: FakeHospitalOptions): Promise<FakeHospital> {
    const fake = new FakeHospital(o);
    return new Promise((resolve, reject) => {
      fake.socket.once('connect', () => resolve(fake));
      fake.socket.once('connect_error', (err) => {
        fake.close();
        reject(err);
      });
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `pred` holds (checked after every instruction, acknowledgement and fl:error). */
  until(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.hospitalId}: timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** The instructions of one stage (and round, when given). */
  received<S extends StageName>(stage: S, round?: number): Extract<Instruction, { stage: S }>[] {
    return this.instructions.filter((i): i is Extract<Instruction, { stage: S }> => i.stage === stage && (round === undefined || i.round === round));
  }

  private async handle(raw: unknown): Promise<void> {
    const parsed = validate(instructionSchema, raw);
    if (!parsed.ok) throw new Error(`${this.hospitalId}: invalid instruction from the coordinator: ${parsed.message}`);
    const instr = this.withModel(parsed.value as WireInstruction);
    this.instructions.push(instr);
    this.notify();
    const b = this.behaviour[instr.stage];
    if (b) await b(instr, this);
    else await this.send('fl:result', await this.honest(instr));
  }

  /** A model named by SHA-256 alone (sent once per connection, ../grid.ts) filled in from the ones received; a fake keeps them all. */
  private withModel(wire: WireInstruction): Instruction {
    if (wire.stage === 'preprocess' && wire.weights && wire.weights_sha256) this.models.set(wire.weights_sha256, wire.weights);
    if (wire.stage !== 'train' && wire.stage !== 'evaluate') return wire;
    if (wire.weights) {
      this.models.set(wire.weights_sha256, wire.weights);
      return wire as Instruction;
    }
    const weights = this.models.get(wire.weights_sha256);
    if (!weights) throw new Error(`${this.hospitalId}: the coordinator named model ${wire.weights_sha256} without sending it first`);
    return { ...wire, weights } as Instruction;
  }

  /** The result a well-behaved hospital would send for `instr`. */
  async honest(instr: Instruction): Promise<StageResult> {
    if (instr.stage === 'preprocess') {
      const key = `${this.hospitalId}/${this.seed}/${this.patients}/${instr.seq_len}`;
      let sums = sumsCache.get(key);
      if (!sums) {
        sums = computeFeatureSums(cohort(this.hospitalId, this.seed, this.patients), { seqLen: instr.seq_len, windowDays: OBSERVATION_WINDOW_DAYS });
        sumsCache.set(key, sums);
      }
      return { run_id: instr.run_id, round: 0, stage: 'preprocess', sums };
    }
    if (instr.stage === 'train') return this.trainResult(instr);
    const k = Number(this.hospitalId.replace(/\D/g, '')) || 1;
    const acc = 0.55 + 0.02 * k + 0.01 * instr.round;
    return {
      run_id: instr.run_id,
      round: instr.round,
      stage: 'evaluate',
      num_examples: 8 + k,
      metrics: {
        test_accuracy: acc,
        accuracy: acc,
        val_accuracy: acc - 0.01,
        val_loss: 1 / (instr.round + 1) + 0.01 * k,
        test_loss: 1.1 / (instr.round + 1) + 0.01 * k,
        auc_roc: 0.6 + 0.01 * instr.round,
        auc_pr: 0.5,
        f1_score: 0.5,
        precision: 0.5,
        recall: 0.5,
      },
    };
  }

  /**
   * A train result built from the received global weights: perturbed, then optionally rewritten by
   * `edit` (e.g. to plant a NaN) before the SHA-256 is computed, so only the edit is wrong.
   */
  async trainResult(instr: TrainInstruction, edit?: (w: Float32Array) => Float32Array | void): Promise<TrainResult> {
    let w = perturb(weightsFromBytes(instr.weights), this.hospitalId, instr.round);
    if (edit) w = edit(w) ?? w;
    const bytes = weightsToBytes(w);
    const k = Number(this.hospitalId.replace(/\D/g, '')) || 1;
    return {
      run_id: instr.run_id,
      round: instr.round,
      stage: 'train',
      weights: bytes,
      weights_sha256: await sha256Hex(bytes),
      num_samples: 20 + k,
      metrics: { train_loss: 1 / (instr.round + 1), train_accuracy: 0.5 + 0.01 * instr.round },
    };
  }

  /**
   * Emits with an acknowledgement and records both. Resolves with the acknowledgement, or with
   * undefined when none came within `timeoutMs` (or the socket went away).
   */
  async send(event: 'fl:result' | 'fl:decline', payload: unknown, timeoutMs = 20_000): Promise<AckResponse | undefined> {
    const entry: SentMessage = { event, payload, response: undefined };
    this.sent.push(entry);
    const p = payload as Partial<TrainResult>;
    if (event === 'fl:result' && p.stage === 'train' && typeof p.round === 'number') this.trainSent.set(p.round, payload as TrainResult);
    try {
      entry.response = (await this.socket.timeout(timeoutMs).emitWithAck(event, payload)) as AckResponse;
    } catch (e) {
      entry.error = (e as Error).message;
    }
    this.notify();
    return entry.response;
  }

  /** Resolves once every instruction received so far has been handled (its messages sent and acknowledged or given up). */
  async settled(): Promise<void> {
    let q: Promise<void>;
    do {
      q = this.queue;
      await q;
    } while (q !== this.queue);
  }

  close(): void {
    this.socket.close();
  }
}

// ---------------------------------------------------------------------------------------------
// A coordinator with env tokens for H1–H3 (and spare hospitals) on port 0.

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const HOSPITAL_TOKENS: Record<string, string> = {
  H1: 'h1-token-0123456789abcdef',
  H2: 'h2-token-0123456789abcdef',
  H3: 'h3-token-0123456789abcdef',
  H4: 'h4-token-0123456789abcdef',
};

/**
 * A coordinator on port 0 with the test tokens (and `env` besides), on a fresh SQLite file. Suites
 * that try many wrong tokens on purpose share one address (127.0.0.1): the failed-authentication
 * limit is raised here unless `options.limits` says otherwise (adversarial/strangers.test.ts tests it).
 */
export async function startTestServer(env: Record<string, string> = {}, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-proto-'));
  return startServer({
    ...options,
    limits: { authFailuresPerMinute: 10_000, ...options.limits },
    port: 0,
    host: '127.0.0.1',
    db: path.join(dir, 'fedcare.db'),
    env: {
      FEDCARE_ADMIN_TOKEN: ADMIN_TOKEN,
      FEDCARE_HOSPITAL_TOKENS: Object.entries(HOSPITAL_TOKENS)
        .map(([h, t]) => `${h}:${t}`)
        .join(','),
      ...env,
    },
    logLevel: 'silent',
  });
}

/** Float32 weights whose every value is finite (index of the first bad one otherwise, -1 when fine). */
export function firstNonFinite(w: Float32Array): number {
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i] as number)) return i;
  return -1;
}
