/**
 * The hostile-hospital harness of the adversarial suite (issue 13): a real coordinator on port 0
 * (startTestServer), honest headless hospitals (FakeHospital; with secure aggregation, the real
 * HospitalClient's SecAgg+ / HE code on a small known update) and one hostile hospital speaking the
 * same protocol with one message changed. Helpers compute what the honest hospitals alone would
 * have produced, so each test can bound the hostile hospital's influence.
 */
import { computeFeatureSums, generateHospital, OBSERVATION_WINDOW_DAYS, type FeatureSums } from '@fedcare/shared/data';
import { HospitalClient, type AuditEntry } from '@fedcare/shared/fl';
import { weightsFromBytes } from '@fedcare/shared/model';
import type { Instruction, RunConfigInput, StageResult } from '@fedcare/shared/protocol';
import * as parser from 'socket.io-parser';
import type { RunningServer } from '../server';
import { FakeHospital, perturb, startTestServer, type Behaviour, type TrainInstruction } from '../testing/fake-hospital';

/**
 * socket.io-parser decodes at most 10 binary attachments per packet by default; a SecAgg+
 * share-keys request to a hospital with four peers carries more (each peer's keys and signature).
 * The harness's hospitals accept more, so five-hospital SecAgg+ runs work over the real transport
 * (fedcare client and the portal still use the default: reported with issue 13).
 */
class ManyAttachmentsDecoder extends parser.Decoder {
  constructor() {
    super({ maxAttachments: 1000 });
  }
}
const manyAttachments = { ...parser, Decoder: ManyAttachmentsDecoder };

export const TOKENS: Record<string, string> = Object.fromEntries(['H1', 'H2', 'H3', 'H4', 'H5'].map((h) => [h, `${h.toLowerCase()}-adversarial-token-0123456789`]));

/** Small runs: two rounds, short sequences, a round completes with all but one hospital. */
export function baseConfig(n: number): RunConfigInput {
  return { rounds: 2, seq_len: 12, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0, min_fit_clients: n - 1, min_evaluate_clients: n - 1, min_available_clients: n - 1 };
}

export interface Cohort {
  server: RunningServer;
  honest: FakeHospital[];
  hostile: FakeHospital;
  all: FakeHospital[];
  close(): Promise<void>;
}

/** A coordinator with n hospitals H1…Hn; the last one is hostile (`bad` replaces its behaviour per stage). */
export async function cohort(
  n: number,
  bad: Partial<Record<Instruction['stage'], Behaviour>>,
  options: { secure?: boolean; declare?: boolean; hostile?: 'first' | 'last' } = {},
): Promise<Cohort> {
  const server = await startTestServer({ FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') });
  const ids = Array.from({ length: n }, (_, i) => `H${i + 1}`);
  const all: FakeHospital[] = [];
  for (const h of ids) {
    const hostile = h === (options.hostile === 'first' ? ids[0] : ids.at(-1));
    // declare: each hospital declares its honest record count at sign-in (what fedcare client and the portal send).
    const auth = options.declare ? { num_records: HONEST_SAMPLES(h) } : {};
    const f = await FakeHospital.connect({ url: server.url, hospitalId: h, token: TOKENS[h] as string, auth, socketOptions: { parser: manyAttachments } });
    f.behaviour = options.secure ? secureBehaviour(f) : { preprocess: plainPreprocess };
    if (hostile) f.behaviour = { ...f.behaviour, ...bad };
    all.push(f);
  }
  const first = options.hostile === 'first';
  return {
    server,
    all,
    honest: first ? all.slice(1) : all.slice(0, -1),
    hostile: (first ? all[0] : all.at(-1)) as FakeHospital,
    close: async () => {
      for (const f of all) f.close();
      await server.close();
    },
  };
}

/** Generated records of any hospital id (H4 and H5 are drawn like H1: only H1–H3 have profiles). */
export function records(hospitalId: string) {
  return generateHospital(hospitalId, { seed: 7, patients: 30, ...(/^H[1-3]$/.test(hospitalId) ? {} : { basedOn: 'H1' }) }).records;
}

const sumsCache = new Map<string, FeatureSums>();
/** The honest preprocess reply: the hospital's real feature sums. */
const plainPreprocess: Behaviour = async (instr, f) => {
  if (instr.stage !== 'preprocess') return;
  const key = `${f.hospitalId}/${instr.seq_len}`;
  let sums = sumsCache.get(key);
  if (!sums) sumsCache.set(key, (sums = computeFeatureSums(records(f.hospitalId), { seqLen: instr.seq_len, windowDays: OBSERVATION_WINDOW_DAYS })));
  await f.send('fl:result', { run_id: instr.run_id, round: 0, stage: 'preprocess', sums });
};

/** Starts a run and waits for its end (and every hospital's last acknowledgement). */
export async function runTo(c: Cohort, config: RunConfigInput) {
  const { runId } = await c.server.coordinator.start(config, 'test');
  const summary = await c.server.coordinator.idle();
  await Promise.all(c.all.map((f) => f.settled()));
  const rounds = await c.server.store.getRoundMetrics(runId);
  const run = await c.server.store.getRun(runId);
  return { runId, summary, rounds, run };
}

/** Audit entries naming a hospital (actor hospital:H…) or mentioning it in their detail. */
export async function auditNaming(c: Cohort, hospitalId: string): Promise<AuditEntry[]> {
  const entries = await c.server.store.listAudit({ limit: 10_000 });
  return entries.filter((e) => e.actor === `hospital:${hospitalId}` && e.outcome === 'rejected');
}

/** The global weights a hospital was asked to evaluate in `round` (the round's aggregate). */
export function evaluated(f: FakeHospital, round: number): Float32Array {
  const e = f.received('evaluate', round)[0];
  if (!e) throw new Error(`${f.hospitalId} evaluated nothing in round ${round}`);
  return weightsFromBytes(e.weights);
}

/** The global weights of the train instruction of `round` (what every update starts from). */
export function trainedFrom(f: FakeHospital, round: number): Float32Array {
  const t = f.received('train', round)[0];
  if (!t) throw new Error(`${f.hospitalId} was not asked to train in round ${round}`);
  return weightsFromBytes(t.weights);
}

export function l2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s);
}

// ---------------------------------------------------------------------------------------------
// Secure aggregation: the real HospitalClient code on a known small update (no training).

/** The update an honest hospital sends in a secure round: the fake hospital's perturbation of the global weights. */
export function honestDelta(hospitalId: string, global: Float32Array, round: number): Float32Array {
  const w = perturb(global, hospitalId, round);
  const d = new Float32Array(w.length);
  for (let i = 0; i < d.length; i++) d[i] = (w[i] as number) - (global[i] as number);
  return d;
}

export const HONEST_SAMPLES = (hospitalId: string) => 20 + Number(hospitalId.replace(/\D/g, ''));

/** What a HospitalClient holds between training and masked-input / he-input (set directly: no model is trained). */
type Held = { runId: string; round: number; delta: Float32Array | Float64Array; weight: number };

/**
 * Behaviours for a fake hospital that takes part in SecAgg+ / HE with the real client code: train
 * holds `delta` (default: the honest one) with `weight` and replies without weights; every secure
 * stage is the HospitalClient's own answer.
 */
export function secureBehaviour(
  f: FakeHospital,
  edit: { delta?: (instr: TrainInstruction) => Float32Array; weight?: number; reply?: (r: StageResult) => StageResult } = {},
): Partial<Record<Instruction['stage'], Behaviour>> {
  const client = new HospitalClient(f.hospitalId, records(f.hospitalId));
  const hold = (h: Held) => ((client as unknown as { held: Held }).held = h);
  const send = async (r: StageResult) => void (await f.send('fl:result', edit.reply ? edit.reply(r) : r));
  const secure: Behaviour = async (instr) => {
    const reply = instr.stage.startsWith('he-') ? await client.homomorphic(instr as never) : await client.secureAggregation(instr as never);
    await send(reply as StageResult);
  };
  return {
    preprocess: async (instr) => {
      if (instr.stage !== 'preprocess') return;
      client.holdFeatureSums(instr.run_id, instr.seq_len);
      await send({ run_id: instr.run_id, round: 0, stage: 'preprocess' });
    },
    train: async (instr) => {
      if (instr.stage !== 'train') return;
      const weight = edit.weight ?? HONEST_SAMPLES(f.hospitalId);
      hold({ runId: instr.run_id, round: instr.round, delta: edit.delta ? edit.delta(instr) : honestDelta(f.hospitalId, weightsFromBytes(instr.weights), instr.round), weight });
      await send({ run_id: instr.run_id, round: instr.round, stage: 'train', num_samples: weight, metrics: { train_loss: 1 } });
    },
    ...Object.fromEntries(['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask', 'he-keys', 'he-setup', 'he-input', 'he-decrypt'].map((s) => [s, secure])),
  };
}
