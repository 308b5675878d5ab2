// Adversarial suite, protocol fuzzer (issue 13 item 6): a hospital that sends the coordinator
// anything at all over real Socket.IO — random JSON, and mutations of every valid inbound message
// (wrong types, huge numbers, NaN-like strings, deep nesting, extra and missing fields, binary of
// the wrong length, wrong run ids, rounds and stages). Every inbound event of the /hospital
// namespace is covered: `fl:result` for each of the twelve stages (preprocess, train, evaluate, the
// five SecAgg+ and the four HE stages), `fl:decline`, `fl:status`, and events the protocol does not
// define. The coordinator must stay up (/healthz), refuse each bad message with a typed error
// naming the field (or ignore it where the protocol defines no answer), never crash, and the honest
// hospitals' rounds must complete around the fuzzing hospital. Seeded and bounded: a failure prints
// its seed and counterexample (fast-check), and the same seed replays it.
import fc from 'fast-check';
import { io, type Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, HOSPITAL_NAMESPACE, PROTOCOL_VERSION, STAGES, type ProtocolErrorPayload, type StageName } from '@fedcare/shared/protocol';
import { PUBLIC_KEY_BYTES, SEALED_SHARES_BYTES, SIGNED_SHARE_BYTES } from '@fedcare/shared/secagg';
import type { RunningServer } from '../server';
import { HOSPITAL_TOKENS, startTestServer, type AckResponse, type Behaviour, type FakeHospital } from '../testing/fake-hospital';
import { baseConfig, cohort, runTo, secureBehaviour, type Cohort } from './harness';

/** One seed for the whole file (fast-check's runs and every sampled payload derive from it); FUZZ_SEED replays or explores another. */
const SEED = Number(process.env.FUZZ_SEED ?? 0x13f022);
/** Messages of the unrouted property (one coordinator, one hospital, no run); FUZZ_RUNS for a longer local search. */
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 200);
/** Fuzzed payloads the fuzzing hospital sends per stage of a real run. */
const PER_STAGE = 8;

// Errors the coordinator's process would otherwise only log: any of them fails the file.
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => void unhandled.push(e);
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
});

// ---------------------------------------------------------------------------------------------
// Valid messages (the templates the mutations start from) and the mutations.

type Msg = Record<string, unknown>;
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
const SHA = 'a'.repeat(64);

/** A schema-valid reply for each stage (content aside), for a given run and round. */
function template(stage: StageName, runId: string, round: number): Msg {
  const h = { run_id: runId, round, stage };
  const advert = { client_id: 'H1', c_pk: bytes(PUBLIC_KEY_BYTES), s_pk: bytes(PUBLIC_KEY_BYTES), identity_pk: bytes(32), signature: bytes(64) };
  switch (stage) {
    case 'preprocess':
      return { ...h, round: 0 };
    case 'train':
      return { ...h, weights: bytes(64), weights_sha256: SHA, num_samples: 21, metrics: { train_loss: 0.5 } };
    case 'evaluate':
      return { ...h, num_examples: 9, metrics: { test_accuracy: 0.6, val_loss: 0.4 } };
    case 'advertise-keys':
      return { ...h, ...advert };
    case 'share-keys':
      return { ...h, client_id: 'H1', shares: [{ to: 'H2', ciphertext: bytes(SEALED_SHARES_BYTES) }] };
    case 'masked-input':
      return { ...h, client_id: 'H1', masked: bytes(64) };
    case 'consistency-check':
      return { ...h, client_id: 'H1', signature: bytes(64) };
    case 'unmask':
      return { ...h, client_id: 'H1', b_shares: [{ client_id: 'H2', share: bytes(SIGNED_SHARE_BYTES) }], s_shares: [] };
    case 'he-keys':
      return { ...h, ...advert };
    case 'he-setup':
      return { ...h, client_id: 'H1', public_key: bytes(48), wrapped: [{ to: 'H2', ciphertext: bytes(48) }] };
    case 'he-input':
      return { ...h, client_id: 'H1', ciphertexts: bytes(48) };
    case 'he-decrypt':
      return { ...h, client_id: 'H1', first: 0, slots: bytes(64) };
  }
}

/** Values no field of the protocol accepts where a different type is expected, and edge cases of the right type. */
const hostileScalar = fc.oneof(
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e309', '-0', '', ' ', '__proto__', 'constructor', '\u0000', '\ud800', 'x'.repeat(70)),
  fc.constantFrom(Number.MAX_VALUE, -Number.MAX_VALUE, Number.MAX_SAFE_INTEGER + 2, -1, 0, 0.5, 1e308, 2 ** 31, 2 ** 32, -0),
  fc.double(), // NaN and ±Infinity travel as null
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 80 }),
);
/** Binary of arbitrary (usually wrong) length, as Buffer-like views Socket.IO sends as attachments. */
const binary = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.float32Array({ maxLength: 40 }),
  fc.float64Array({ maxLength: 20 }),
  fc.int32Array({ maxLength: 20 }),
  fc.nat(5000).map((n) => new Uint8Array(n)),
);
/** An object nested `depth` levels deep (within the message limit; JSON parsers and schema walkers meet it). */
const deep = fc.integer({ min: 50, max: 2_000 }).map((depth) => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
});
const anyValue = fc.oneof(
  { weight: 3, arbitrary: hostileScalar },
  { weight: 2, arbitrary: binary },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.array(fc.double(), { maxLength: 50 }) },
);

/** A mutation of a valid message: each is applied to a copy. */
const mutation = (keys: string[]) =>
  fc.oneof(
    // a field removed
    fc.constantFrom(...keys).map((k) => (m: Msg) => void delete m[k]),
    // a field of the wrong type or an edge value
    fc.tuple(fc.constantFrom(...keys), anyValue).map(([k, v]) => (m: Msg) => void (m[k] = v)),
    // extra fields, prototype keys among them
    fc.dictionary(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'then'), fc.string({ maxLength: 12 })), anyValue, { maxKeys: 4 }).map((extra) => (m: Msg) => {
      for (const [k, v] of Object.entries(extra)) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
    }),
    // metrics with hostile values and keys
    fc.dictionary(fc.string({ maxLength: 70 }), hostileScalar, { maxKeys: 80 }).map((metrics) => (m: Msg) => void (m.metrics = metrics)),
  );

/** A valid message of `stage` with one to three mutations. */
const mutated = (stage: StageName, runId: string, round: number) => {
  const base = template(stage, runId, round);
  return fc.array(mutation(Object.keys(base)), { minLength: 1, maxLength: 3 }).map((ms) => {
    const m: Msg = { ...base };
    for (const f of ms) f(m);
    return m;
  });
};

/** Any fl:result payload: random JSON and values, or a mutated message of any stage with any run id and round. */
const resultPayload = fc.oneof(
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3, withTypedArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 5 }) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(...STAGES), fc.oneof(fc.uuid(), fc.string({ maxLength: 70 })), fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constantFrom(100_000, 100_001, 2 ** 32, 1.5)))
      .chain(([stage, runId, round]) => mutated(stage, runId, round)),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...STAGES), fc.uuid(), fc.nat(5)).map(([stage, runId, round]) => template(stage, runId, round)) },
);
const declinePayload = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ run_id: fc.oneof(fc.uuid(), anyValue), round: fc.oneof(fc.nat(5), anyValue), stage: fc.oneof(fc.constantFrom(...STAGES), anyValue), reason: fc.oneof(fc.string({ minLength: 1, maxLength: 600 }), anyValue) }, { requiredKeys: [] }),
);

/** Names socket.io-client refuses to emit, and the events the protocol defines. */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener', 'fl:result', 'fl:decline', 'fl:status']);
/** One inbound message: an event with its arguments, with or without an acknowledgement. */
type Inbound = { event: 'fl:result' | 'fl:decline'; payload: unknown; ack: boolean } | { event: 'fl:status'; args: unknown[] } | { event: 'unknown'; name: string; args: unknown[] };
const inbound: fc.Arbitrary<Inbound> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ event: fc.constant('fl:result' as const), payload: resultPayload, ack: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ event: fc.constant('fl:decline' as const), payload: declinePayload, ack: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ event: fc.constant('fl:status' as const), args: fc.array(anyValue, { maxLength: 2 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      event: fc.constant('unknown' as const),
      // server → hospital events sent the other way, and names the protocol does not define
      name: fc.oneof(fc.constantFrom('fl:instruction', 'fl:stats', 'fl:run', 'fl:error', 'fl:hello', 'dash:status', 'error', 'message'), fc.string({ minLength: 1, maxLength: 30 }).filter((n) => !RESERVED.has(n))),
      args: fc.array(anyValue, { maxLength: 2 }),
    }),
  },
);

// ---------------------------------------------------------------------------------------------
// Checks shared by both parts.

/** Codes whose refusals always name a field (the routing and schema checks of grid.ts). */
const FIELD_CODES = new Set(['INVALID_PAYLOAD', 'WRONG_RUN', 'STALE_ROUND', 'FUTURE_ROUND', 'WRONG_STAGE', 'NOT_SELECTED', 'DUPLICATE_RESULT']);

/** A typed refusal: a protocol code (never INTERNAL: that is a coordinator bug), the event it answers, and the field where the protocol names one. */
function expectTypedRefusal(error: ProtocolErrorPayload | undefined, event: string, what: string): void {
  expect(error, `${what}: no error`).toBeDefined();
  const e = error as ProtocolErrorPayload;
  expect(ERROR_CODES, `${what}: untyped code ${String(e.code)}`).toContain(e.code);
  expect(e.code, `${what}: ${e.message}`).not.toBe('INTERNAL');
  expect(e.event, what).toBe(event);
  expect(typeof e.message === 'string' && e.message.length > 0, `${what}: a message`).toBe(true);
  if (FIELD_CODES.has(e.code)) {
    expect(typeof e.field === 'string' && e.field.length > 0, `${what}: ${e.code} names no field`).toBe(true);
    if (e.code === 'INVALID_PAYLOAD') expect(e.message.startsWith(`${e.field}:`), `${what}: ${e.message}`).toBe(true);
  }
}

async function expectHealthy(server: RunningServer): Promise<void> {
  const res = await fetch(`${server.url}/healthz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
}

/** The refusals the coordinator audited for a hospital (one per refused message, grid.ts onReject). */
async function auditedRefusals(server: RunningServer, hospitalId: string): Promise<number> {
  const entries = await server.store.listAudit({ limit: 100_000 });
  return entries.filter((e) => e.actor === `hospital:${hospitalId}` && e.outcome === 'rejected' && (e.action === 'fl:result' || e.action === 'fl:decline')).length;
}

async function eventually(pred: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// Part 1: every inbound event, no run (one coordinator, one hospital, many messages).

describe(`protocol fuzzer, every inbound event without a run (seed ${SEED}, ${NUM_RUNS} runs)`, () => {
  let server: RunningServer | undefined;
  let socket: Socket | undefined;
  afterEach(async () => {
    socket?.close();
    await server?.close();
    server = socket = undefined;
  });

  it(`each message is refused with a typed error naming its field, answered (fl:status) or ignored; the coordinator stays up (seed ${SEED})`, async () => {
    server = await startTestServer();
    const s = io(`${server.url}${HOSPITAL_NAMESPACE}`, {
      auth: { token: HOSPITAL_TOKENS.H1, hospital_id: 'H1', client_version: PROTOCOL_VERSION, host: 'fuzz' },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    socket = s;
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    const pushed: ProtocolErrorPayload[] = [];
    s.on('fl:error', (e: ProtocolErrorPayload) => void pushed.push(e));
    let refused = 0;
    /** How many messages of each kind were tried (each kind must be). */
    const tried: Record<string, number> = {};

    /** GetStatus: answered with the idle status (also the barrier after a message without acknowledgement). */
    const status = async (args: unknown[] = []) => {
      const res = (await s.timeout(5_000).emitWithAck('fl:status', ...args)) as AckResponse;
      expect(res.ok, JSON.stringify(res)).toBe(true);
      expect(res.ok && res.value).toMatchObject({ protocol_version: PROTOCOL_VERSION, status: 'idle', run_id: null });
    };

    await fc.assert(
      fc.asyncProperty(inbound, async (m) => {
        const before = pushed.length;
        const kind = 'ack' in m ? `${m.event}${m.ack ? '' : ' (no ack)'}` : m.event;
        tried[kind] = (tried[kind] ?? 0) + 1;
        if ('ack' in m) {
          if (m.ack) {
            const res = (await s.timeout(5_000).emitWithAck(m.event, m.payload)) as AckResponse;
            // No run: nothing can be accepted.
            expect(res.ok, JSON.stringify(res)).toBe(false);
            expectTypedRefusal(res.ok ? undefined : res.error, m.event, 'acknowledgement');
            expect(['INVALID_PAYLOAD', 'WRONG_STAGE']).toContain(res.ok ? undefined : res.error.code);
          } else {
            // Without an acknowledgement the refusal is pushed as fl:error (before the next answer).
            s.emit(m.event, m.payload);
            await status();
            expect(pushed.length - before, 'one fl:error for a message without acknowledgement').toBe(1);
            expectTypedRefusal(pushed.at(-1), m.event, 'fl:error');
          }
          refused++;
        } else if (m.event === 'fl:status') {
          // Stray arguments before the acknowledgement do not leave GetStatus unanswered.
          await status(m.args);
        } else {
          // Events the protocol does not define are ignored: no error, the connection stays usable.
          s.emit(m.name, ...m.args);
          await status();
          expect(pushed.length, `${m.name}: ignored`).toBe(before);
        }
        expect(s.connected, 'still connected').toBe(true);
      }),
      { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
    );

    expect(Object.keys(tried).sort()).toEqual(['fl:decline', 'fl:decline (no ack)', 'fl:result', 'fl:result (no ack)', 'fl:status', 'unknown']);
    expect(refused).toBeGreaterThan(NUM_RUNS / 2);
    await expectHealthy(server);
    // Every refusal is in the audit log, naming the hospital.
    await eventually(async () => (await auditedRefusals(server!, 'H1')) === refused, `${refused} audited refusals`);
    expect(unhandled).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Part 2: real runs, two honest hospitals and one fuzzing hospital whose replies are fuzzed.

interface Sent {
  stage: string;
  round: number;
  response: AckResponse | undefined;
  error?: string;
}

/** Samples PER_STAGE payloads for `instr` from `arb`, deterministically from the seed, the stage and the round. */
function sample<T>(arb: fc.Arbitrary<T>, stage: string, round: number): T[] {
  return fc.sample(arb, { seed: SEED + 1000 * round + STAGES.indexOf(stage as StageName), numRuns: PER_STAGE });
}

let current: Cohort | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/**
 * Breaking mutations only (each payload is invalid for its stage: a missing or mistyped required
 * field, a wrong run, round or stage, wrong-length or mismatched weights, a weight above any bound),
 * on top of which extra fields may ride: none can be accepted. Without `content`, only the breaks
 * the schema and routing checks refuse (the hospital stays pending, not dropped).
 */
function breaking(valid: Msg, content = true): fc.Arbitrary<Msg> {
  const required = ['run_id', 'round', 'stage', ...Object.keys(valid).filter((k) => ['client_id', 'num_samples', 'num_examples', 'metrics'].includes(k))];
  const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), binary);
  const notInteger = fc.oneof(fc.double({ noInteger: true }), fc.constantFrom('1', 'NaN', '1e309', null, true), fc.constant([1]));
  const breaks: fc.Arbitrary<(m: Msg) => void>[] = [
    fc.constantFrom(...required).map((k) => (m: Msg) => void delete m[k]),
    fc.oneof(fc.uuid(), notString).map((v) => (m: Msg) => void (m.run_id = v)),
    fc.oneof(fc.integer({ min: -5, max: 2 ** 31 }).filter((r) => r !== valid.round), notInteger).map((v) => (m: Msg) => void (m.round = v)),
    fc.oneof(fc.constantFrom(...STAGES).filter((s) => s !== valid.stage), notString).map((v) => (m: Msg) => void (m.stage = v)),
  ];
  if ('client_id' in valid) breaks.push(notString.map((v) => (m: Msg) => void (m.client_id = v)));
  if ('metrics' in valid) breaks.push(fc.oneof(notString, fc.dictionary(fc.string({ maxLength: 8 }), fc.constantFrom('NaN', '0.5', null, true, 'Infinity'), { minKeys: 1, maxKeys: 3 })).map((v) => (m: Msg) => void (m.metrics = v)));
  for (const k of ['num_samples', 'num_examples'] as const) {
    if (k in valid) breaks.push(fc.constantFrom(0, -1, 1.5, 'NaN', '1', null).map((v) => (m: Msg) => void (m[k] = v)));
    // above any hospital's bound (max_samples_per_hospital ≤ 10^7): refused by the content check
    if (k in valid && content) breaks.push(fc.oneof(fc.constantFrom(2 ** 31, Number.MAX_SAFE_INTEGER), fc.integer({ min: 10_000_001 })).map((v) => (m: Msg) => void (m[k] = v)));
  }
  if (valid.weights instanceof Uint8Array && content) {
    const n = valid.weights.byteLength;
    breaks.push(binary.filter((b) => b.byteLength !== n).map((v) => (m: Msg) => void (m.weights = v)));
    breaks.push(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }).filter((x) => x !== valid.weights_sha256), notString).map((v) => (m: Msg) => void (m.weights_sha256 = v)));
  }
  if (valid.sums && typeof valid.sums === 'object') {
    breaks.push(fc.oneof(notString, fc.constantFrom('demographics', 'vitals', 'labs', 'biology', 'omics')).map((v) => (m: Msg) => {
      if (typeof v !== 'string') return void (m.sums = v);
      const sums = structuredClone(m.sums) as Record<string, { sum: number[] }>;
      (sums[v] as { sum: number[] }).sum.push(1); // one dimension too many
      m.sums = sums;
    }));
  }
  const extra = fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'extra', 'then', 'toJSON'), anyValue, { maxKeys: 2 });
  return fc.tuple(fc.oneof(...breaks), extra).map(([br, ex]) => {
    const m: Msg = { ...valid };
    for (const [k, v] of Object.entries(ex)) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
    br(m);
    return m;
  });
}

/**
 * A behaviour sending PER_STAGE fuzzed variants of the honest reply, then either `last` (a reply
 * only the content check refuses: the hospital is refused for the stage at once, no deadline to
 * wait for) or, with `thenHonest`, the honest reply (the fuzz then breaks schema or routing only).
 */
function fuzzing(sent: Sent[], honest: (instr: Parameters<Behaviour>[0], f: FakeHospital) => Promise<Msg>, options: { thenHonest?: Behaviour; last?: (valid: Msg) => Msg } = {}): Behaviour {
  return async (instr, f) => {
    const valid = await honest(instr, f);
    const payloads = sample(breaking(valid, !options.thenHonest), instr.stage, instr.round);
    if (options.last) payloads.push(options.last(valid));
    for (const p of payloads) {
      const response = await f.send('fl:result', p, 10_000);
      const last = f.sent.at(-1);
      sent.push({ stage: instr.stage, round: instr.round, response, ...(last?.error ? { error: last.error } : {}) });
    }
    if (options.thenHonest) await options.thenHonest(instr, f);
  };
}

function expectAllRefused(sent: Sent[], stages: string[]): void {
  expect(new Set(sent.map((s) => s.stage)), 'every stage was fuzzed').toEqual(new Set(stages));
  for (const [i, s] of sent.entries()) {
    const what = `fuzzed ${s.stage} reply #${i} (round ${s.round})`;
    expect(s.error, `${what}: no acknowledgement`).toBeUndefined();
    expect(s.response?.ok, `${what}: ${JSON.stringify(s.response)}`).toBe(false);
    expectTypedRefusal(s.response && !s.response.ok ? s.response.error : undefined, 'fl:result', what);
  }
}

describe(`protocol fuzzer in real runs (seed ${SEED}, ${PER_STAGE} payloads per stage)`, () => {
  it(`plain run: the fuzzer's preprocess, train and evaluate replies are fuzzed; each refused by type, the honest hospitals' rounds complete, the fuzzer is dropped and named (seed ${SEED})`, async () => {
    const sent: Sent[] = [];
    const honestReply = async (instr: Parameters<Behaviour>[0], f: FakeHospital) => (await f.honest(instr)) as unknown as Msg;
    // Each stage's fuzz ends with a reply refused by its content (weights of the wrong length, a weight above any bound, sums of 1e308).
    const last = (valid: Msg): Msg => {
      if (valid.stage === 'train') return { ...valid, weights: new Uint8Array(12) };
      if (valid.stage === 'evaluate') return { ...valid, num_examples: Number.MAX_SAFE_INTEGER };
      const sums = structuredClone(valid.sums) as { omicsCross: number[] };
      sums.omicsCross.fill(1e308);
      return { ...valid, sums };
    };
    const fuzz = fuzzing(sent, honestReply, { last });
    // A hospital refused in training is not asked to evaluate that round: in round 2 it trains honestly after its fuzzed train replies.
    const fuzzThenTrain = fuzzing(sent, honestReply, { thenHonest: async (instr, f) => void (await f.send('fl:result', await f.honest(instr))) });
    current = await cohort(3, { preprocess: fuzz, train: (instr, f) => (instr.round === 2 ? fuzzThenTrain : fuzz)(instr, f), evaluate: fuzz });
    const c = current;
    // No adaptive deadline: the stages end on the fuzzer's refusal, or its honest reply (however long the fuzz before it took).
    const { summary, rounds } = await runTo(c, { ...baseConfig(3), rounds: 2, stage_timeout_s: 60, straggler_factor: 0 });
    expect(summary?.status, summary?.reason).toBe('completed');
    expect(rounds).toHaveLength(2);
    expect(c.hostile.failures, 'the fuzzing hospital itself ran').toEqual([]);
    expectAllRefused(sent, ['preprocess', 'train', 'evaluate']);
    expect(sent.filter((s) => s.response && !s.response.ok && s.response.error.code === 'INVALID_PAYLOAD').length, 'schema refusals').toBeGreaterThan(0);
    const status = (round: number, stage: string, h: string) => rounds[round - 1]?.participation.find((p) => p.hospitalId === h && p.stage === stage)?.status;
    // Refused by a content check; in round 2 its honest train reply counted.
    for (const [round, stage, h3] of [[1, 'train', 'rejected'], [2, 'train', 'ok'], [2, 'evaluate', 'rejected']] as const) {
      expect(status(round, stage, 'H3'), `round ${round} ${stage}: H3`).toBe(h3);
      for (const h of ['H1', 'H2']) expect(status(round, stage, h), `round ${round} ${stage}: ${h}`).toBe('ok');
    }
    expect(status(1, 'evaluate', 'H1')).toBe('ok');
    for (const f of c.honest) {
      expect(f.failures).toEqual([]);
      expect(f.errors).toEqual([]);
      expect(f.sent.every((m) => m.response?.ok === true), `${f.hospitalId}: every honest reply accepted`).toBe(true);
    }
    await eventually(async () => (await auditedRefusals(c.server, 'H3')) === sent.length, `${sent.length} audited refusals of H3`);
    // Its refused preprocessing sums are named too (the round engine's audit).
    expect((await c.server.store.listAudit({ limit: 100_000 })).filter((e) => e.actor === 'hospital:H3' && e.action === 'preprocess.refused')).toHaveLength(1);
    await expectHealthy(c.server);
    expect(unhandled).toEqual([]);
  });

  const SECURE = {
    secagg: ['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask'],
    he: ['he-keys', 'he-setup', 'he-input', 'he-decrypt'],
  } as const;
  it.each(['secagg', 'he'] as const)(
    `%s run: every secure stage's reply is fuzzed while the stage is open, then answered honestly; each fuzzed reply refused by type and the run completes with all three (seed ${SEED})`,
    async (mode) => {
      const sent: Sent[] = [];
      current = await cohort(3, {}, { secure: true });
      const c = current;
      const real = secureBehaviour(c.hostile);
      // The honest reply of a secure stage comes from the real client code; the fuzzer mutates a valid template of the stage instead (the client's reply is sent once, after).
      const templateOf = async (instr: Parameters<Behaviour>[0]) => template(instr.stage, instr.run_id, instr.round);
      const stages: readonly StageName[] = SECURE[mode];
      c.hostile.behaviour = {
        ...real,
        ...Object.fromEntries(stages.map((s) => [s, fuzzing(sent, templateOf, { thenHonest: real[s] as Behaviour })])),
      };
      const { summary, rounds } = await runTo(c, { ...baseConfig(3), rounds: 1, secure_aggregation: mode, secagg_clip: 0.5 });
      expect(summary?.status, summary?.reason).toBe('completed');
      expect(rounds).toHaveLength(1);
      expect(c.hostile.failures, 'the fuzzing hospital itself ran').toEqual([]);
      // Every secure stage it was asked (with HE, the key holder alone is asked he-setup; every contributor decrypts a slice).
      const asked = [...new Set(c.hostile.instructions.map((i) => i.stage).filter((s) => stages.includes(s)))];
      expect(asked.length, `asked: ${asked.join(', ')}`).toBeGreaterThanOrEqual(mode === 'he' ? 3 : stages.length);
      expectAllRefused(sent, asked);
      // Its honest replies after the fuzz were accepted: it took part in every secure stage it was asked.
      for (const s of asked) expect(rounds[0]!.participation.find((p) => p.hospitalId === 'H3' && p.stage === s)?.status, `H3 in ${s}`).toBe('ok');
      await eventually(async () => (await auditedRefusals(c.server, 'H3')) === sent.length, `${sent.length} audited refusals of H3`);
      await expectHealthy(c.server);
      expect(unhandled).toEqual([]);
    },
  );
});
