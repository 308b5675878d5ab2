// Protocol hardening against a real coordinator (port 0, real Socket.IO, real SQLite file) and
// three fake hospitals (real sockets that answer instructions at once instead of training). In each
// case one hospital misbehaves: its message is refused with a typed error, the round goes on and
// completes with the honest hospitals, nothing it sent reaches aggregation, and the refusal is in
// the audit log.
import { afterEach, describe, expect, it } from 'vitest';
import { weightedAverage, type RoundMetrics, type StageProgress } from '@fedcare/shared/fl';
import { sha256Hex, weightsFromBytes } from '@fedcare/shared/model';
import { PROTOCOL_VERSION, type ErrorCode, type ProtocolErrorPayload, type RunConfigInput, type StageName } from '@fedcare/shared/protocol';
import { MAX_MESSAGE_BYTES, type RunningServer } from './server';
import {
  ADMIN_TOKEN,
  FakeHospital,
  HOSPITAL_TOKENS,
  firstNonFinite,
  startTestServer,
  type AckResponse,
  type Behaviour,
  type FakeHospitalOptions,
  type TrainInstruction,
  type TrainResult,
} from './testing/fake-hospital';

/** Small runs; min 2 of 3 everywhere so a round completes without the misbehaving hospital. */
const BASE: RunConfigInput = {
  rounds: 2,
  seq_len: 12,
  stage_timeout_s: 60,
  wait_for_clients_s: 20,
  rejoin_grace_s: 0,
  min_fit_clients: 2,
  min_evaluate_clients: 2,
  min_available_clients: 2,
};
/** Where the misbehaving hospital stays silent after its refused message, the stage waits this long for it. */
const SHORT_TIMEOUT_S = 6;

let server: RunningServer | undefined;
const fakes: FakeHospital[] = [];

afterEach(async () => {
  for (const f of fakes.splice(0)) f.close();
  await server?.close();
  server = undefined;
});

function srv(): RunningServer {
  if (!server) throw new Error('no server');
  return server;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function connect(hospitalId: string, extra: Partial<FakeHospitalOptions> = {}): Promise<FakeHospital> {
  const f = await FakeHospital.connect({ url: srv().url, hospitalId, token: HOSPITAL_TOKENS[hospitalId] as string, ...extra });
  fakes.push(f);
  return f;
}

/** A fresh coordinator with H1 and H2 honest and H3 doing `bad` (honest for the stages it leaves out). */
async function cohort(bad: Partial<Record<StageName, Behaviour>> = {}) {
  server = await startTestServer();
  const h1 = await connect('H1');
  const h2 = await connect('H2');
  const h3 = await connect('H3', { behaviour: bad });
  return { h1, h2, h3 };
}

/** The run's end, once every hospital has also had its last acknowledgement back. */
async function finished() {
  const summary = await srv().coordinator.idle();
  await Promise.all(fakes.map((f) => f.settled()));
  return summary;
}

async function run(config: RunConfigInput = {}) {
  const { runId } = await srv().coordinator.start({ ...BASE, ...config }, 'test');
  const summary = await finished();
  const rounds = await srv().store.getRoundMetrics(runId);
  return { runId, summary, rounds };
}

function part(r: RoundMetrics, h: string, stage: string) {
  return r.participation.find((p) => p.hospitalId === h && p.stage === stage);
}

/** The acknowledgement is a typed refusal: code, the field, and a message naming the problem. */
function expectRefused(res: AckResponse | undefined, code: ErrorCode, field: string, message: RegExp): void {
  expect(res).toEqual({ ok: false, error: { code, field, message: expect.stringMatching(message), event: 'fl:result' } });
}

/** The round completed with H1 and H2 alone; H3 is marked `status` with `reason` and kept out of evaluation. */
function expectRoundWithoutH3(r: RoundMetrics, status: 'rejected' | 'dropped', reason: RegExp): void {
  expect(r.metrics.num_participating_clients, `round ${r.round}`).toBe(2);
  // H3 appears per hospital only with the bytes it moved: no metric of its reached the round.
  expect(Object.keys(r.perHospital).sort()).toEqual(['H1', 'H2', 'H3']);
  expect(Object.keys(r.perHospital.H3 ?? {}).sort()).toEqual(['communication_bytes_down', 'communication_bytes_up']);
  for (const h of ['H1', 'H2']) {
    expect(part(r, h, 'train')?.status).toBe('ok');
    expect(part(r, h, 'evaluate')?.status).toBe('ok');
  }
  const p = part(r, 'H3', 'train');
  expect(p?.status, `round ${r.round}: H3's train participation`).toBe(status);
  expect(p?.reason).toMatch(reason);
  expect(part(r, 'H3', 'evaluate'), 'dropped for the rest of the round').toBeUndefined();
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/**
 * Nothing but `contributions` reached aggregation in `round`: the model every observer was then
 * asked to evaluate (and, next round, to train from) is finite and is FedAvg of exactly those.
 */
function expectAggregateOf(round: number, contributions: TrainResult[], observers: FakeHospital[]): void {
  const expected = weightedAverage(
    contributions.map((c) => weightsFromBytes(c.weights as Uint8Array)),
    contributions.map((c) => c.num_samples),
  );
  for (const o of observers) {
    const evaluate = o.received('evaluate', round);
    expect(evaluate, `${o.hospitalId} evaluates round ${round}`).toHaveLength(1);
    const got = weightsFromBytes(evaluate[0]!.weights);
    expect(firstNonFinite(got)).toBe(-1);
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-6);
    const next = o.received('train', round + 1)[0];
    if (next) expect(Buffer.from(next.weights).equals(Buffer.from(evaluate[0]!.weights)), 'next round trains from the aggregate').toBe(true);
  }
}

function sentBy(f: FakeHospital, round: number): TrainResult {
  const r = f.trainSent.get(round);
  if (!r) throw new Error(`${f.hospitalId} sent no train result in round ${round}`);
  return r;
}

/** Honest hospitals: every message accepted, no fl:error, no exception in a behaviour. */
async function expectHonest(...hs: FakeHospital[]): Promise<void> {
  for (const h of hs) {
    await h.settled(); // the run can end before the last acknowledgement is back
    expect(h.failures, h.hospitalId).toEqual([]);
    expect(h.errors, h.hospitalId).toEqual([]);
    for (const s of h.sent) expect(s.response, `${h.hospitalId} ${s.event}`).toEqual({ ok: true, value: expect.anything() });
  }
}

async function rejections(actor: string, code?: ErrorCode) {
  const entries = await srv().store.listAudit({ limit: 10_000 });
  return entries.filter((e) => e.actor === actor && e.outcome === 'rejected' && (code === undefined || e.detail?.code === code));
}

async function expectStoredModelFinite(runId: string): Promise<void> {
  const latest = await srv().store.getModel(runId, 'latest');
  expect(latest).toBeDefined();
  expect(firstNonFinite(weightsFromBytes(latest!.bytes))).toBe(-1);
}

/** Trains honestly in `rounds` other than those `bad` handles. */
function perRound(bad: Record<number, Behaviour>): Behaviour {
  return async (instr, f) => {
    const b = bad[instr.round];
    if (b) await b(instr, f);
    else await f.send('fl:result', await f.honest(instr));
  };
}

describe('fl:result content checks', () => {
  it('rejects NaN, +Infinity and -Infinity in an update with NON_FINITE, and each round completes without it', async () => {
    const planted = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const at = 1234;
    const acks: (AckResponse | undefined)[] = [];
    const { h1, h2, h3 } = await cohort({
      train: async (instr, f) => {
        const value = planted[instr.round - 1] as number;
        const bad = await f.trainResult(instr as TrainInstruction, (w) => void (w[at] = value));
        acks.push(await f.send('fl:result', { ...bad, metrics: { train_loss: 50, train_accuracy: 0 } }));
      },
    });
    const { runId, summary, rounds } = await run({ rounds: 3 });
    expect(summary?.status).toBe('completed');
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    expect(acks).toHaveLength(3);
    for (const ack of acks) expectRefused(ack, 'NON_FINITE', `weights[${at}]`, /^weights\[1234\] is not a finite number$/);
    for (const r of rounds) {
      expectRoundWithoutH3(r, 'rejected', /^rejected: NON_FINITE: weights\[1234\] is not a finite number$/);
      expectAggregateOf(r.round, [sentBy(h1, r.round), sentBy(h2, r.round)], [h1, h2]);
      expect(r.metrics.train_loss, 'H3’s train_loss of 50 did not count either').toBeCloseTo(1 / (r.round + 1), 9);
    }
    await expectStoredModelFinite(runId);
    expect(await rejections('hospital:H3', 'NON_FINITE')).toHaveLength(3);
    expect((await rejections('hospital:H3', 'NON_FINITE'))[0]?.detail).toMatchObject({ field: 'weights[1234]', event: 'fl:result' });
    expect(h3.failures).toEqual([]);
    await expectHonest(h1, h2);
  });

  it('rejects weights of the wrong length (short, long, not whole float32s) with WRONG_LENGTH', async () => {
    const acks: (AckResponse | undefined)[] = [];
    let expectedBytes = 0;
    const { h1, h2, h3 } = await cohort({
      train: async (instr, f) => {
        const i = instr as TrainInstruction;
        expectedBytes = i.weights.byteLength;
        let r: TrainResult;
        if (i.round === 1) r = await f.trainResult(i, (w) => w.subarray(0, w.length - 1));
        else if (i.round === 2) r = await f.trainResult(i, (w) => Float32Array.from([...w.subarray(0, 10), ...w]));
        else {
          const weights = new Uint8Array(i.weights.byteLength + 2);
          r = { ...(await f.trainResult(i)), weights, weights_sha256: await sha256Hex(weights) };
        }
        acks.push(await f.send('fl:result', r));
      },
    });
    const { runId, summary, rounds } = await run({ rounds: 3 });
    expect(summary?.status).toBe('completed');
    expect(rounds).toHaveLength(3);
    const e = expectedBytes;
    const got = [e - 4, e + 40, e + 2];
    acks.forEach((ack, k) => expectRefused(ack, 'WRONG_LENGTH', 'weights', new RegExp(`^weights: ${got[k]} bytes, expected ${e} \\(${e / 4} float32\\)$`)));
    for (const r of rounds) {
      expectRoundWithoutH3(r, 'rejected', /^rejected: WRONG_LENGTH: weights: \d+ bytes, expected \d+/);
      expectAggregateOf(r.round, [sentBy(h1, r.round), sentBy(h2, r.round)], [h1, h2]);
    }
    await expectStoredModelFinite(runId);
    expect(await rejections('hospital:H3', 'WRONG_LENGTH')).toHaveLength(3);
    expect(h3.failures).toEqual([]);
    await expectHonest(h1, h2);
  });

  it('rejects weights that do not hash to weights_sha256 with CHECKSUM_MISMATCH', async () => {
    const acks: (AckResponse | undefined)[] = [];
    const { h1, h2 } = await cohort({
      train: async (instr, f) => {
        const i = instr as TrainInstruction;
        const honest = await f.trainResult(i);
        // Round 1: tampered weights (far from the model) under the honest checksum; round 2: honest weights, another checksum.
        const r =
          i.round === 1
            ? { ...honest, weights: (await f.trainResult(i, (w) => w.map((x) => x + 10))).weights }
            : { ...honest, weights_sha256: 'ab'.repeat(32) };
        acks.push(await f.send('fl:result', r));
      },
    });
    const { runId, summary, rounds } = await run({ rounds: 2 });
    expect(summary?.status).toBe('completed');
    expect(acks).toHaveLength(2);
    for (const ack of acks) expectRefused(ack, 'CHECKSUM_MISMATCH', 'weights_sha256', /^weights: SHA-256 does not match weights_sha256$/);
    for (const r of rounds) {
      expectRoundWithoutH3(r, 'rejected', /^rejected: CHECKSUM_MISMATCH: /);
      expectAggregateOf(r.round, [sentBy(h1, r.round), sentBy(h2, r.round)], [h1, h2]);
    }
    await expectStoredModelFinite(runId);
    expect(await rejections('hospital:H3', 'CHECKSUM_MISMATCH')).toHaveLength(2);
    await expectHonest(h1, h2);
  });
});

describe('fl:result routing: round and replay', () => {
  it('rejects a round-1 update sent during round 2 with STALE_ROUND; the round completes without the silent sender', async () => {
    let ack: AckResponse | undefined;
    const { h1, h2, h3 } = await cohort({
      train: perRound({
        2: async (_instr, f) => {
          ack = await f.send('fl:result', sentBy(f, 1)); // its own round-1 update, replayed late
        },
      }),
    });
    const { runId, summary, rounds } = await run({ rounds: 2, stage_timeout_s: SHORT_TIMEOUT_S });
    expect(summary?.status).toBe('completed');
    expectRefused(ack, 'STALE_ROUND', 'round', /^round 1 is over; round 2 is open$/);
    expect(rounds[0]!.metrics.num_participating_clients).toBe(3);
    expectAggregateOf(1, [sentBy(h1, 1), sentBy(h2, 1), sentBy(h3, 1)], [h1, h2, h3]);
    // A routing refusal leaves the stage open to the sender; staying silent, it is dropped at the stage timeout.
    expectRoundWithoutH3(rounds[1]!, 'dropped', /^timeout$/);
    expectAggregateOf(2, [sentBy(h1, 2), sentBy(h2, 2)], [h1, h2]);
    await expectStoredModelFinite(runId);
    expect(await rejections('hospital:H3', 'STALE_ROUND')).toHaveLength(1);
    await expectHonest(h1, h2);
  });

  it('rejects an update for a round that has not started with FUTURE_ROUND; the sender rejoins the next round', async () => {
    let ack: AckResponse | undefined;
    const { h1, h2, h3 } = await cohort({
      train: perRound({
        1: async (instr, f) => {
          ack = await f.send('fl:result', { ...(await f.trainResult(instr as TrainInstruction)), round: 2 });
        },
      }),
    });
    const { summary, rounds } = await run({ rounds: 2, stage_timeout_s: SHORT_TIMEOUT_S });
    expect(summary?.status).toBe('completed');
    expectRefused(ack, 'FUTURE_ROUND', 'round', /^round 2 has not started; round 1 is open$/);
    expectRoundWithoutH3(rounds[0]!, 'dropped', /^timeout$/);
    expectAggregateOf(1, [sentBy(h1, 1), sentBy(h2, 1)], [h1, h2]);
    expect(rounds[1]!.metrics.num_participating_clients).toBe(3);
    expect(part(rounds[1]!, 'H3', 'train')?.status).toBe('ok');
    expectAggregateOf(2, [sentBy(h1, 2), sentBy(h2, 2), sentBy(h3, 2)], [h1, h2, h3]);
    expect(await rejections('hospital:H3', 'FUTURE_ROUND')).toHaveLength(1);
    await expectHonest(h1, h2);
  });

  it('rejects a second update for the same round (replayed or different, sequential or concurrent) with DUPLICATE_RESULT; the first stands', async () => {
    const gates = new Map([1, 2].map((r) => [r, deferred()]));
    const first = new Map<number, TrainResult>();
    const acks: Record<number, (AckResponse | undefined)[]> = { 1: [], 2: [] };
    const gated: Behaviour = async (instr, f) => {
      await gates.get(instr.round)?.promise;
      await f.send('fl:result', await f.honest(instr));
    };
    server = await startTestServer();
    const h1 = await connect('H1', { behaviour: { train: gated } });
    const h2 = await connect('H2', { behaviour: { train: gated } });
    const h3 = await connect('H3', {
      behaviour: {
        train: async (instr, f) => {
          const i = instr as TrainInstruction;
          const honest = await f.trainResult(i);
          const other = { ...(await f.trainResult(i, (w) => w.map((x) => x + 5))), metrics: { train_loss: 99, train_accuracy: 0 } };
          first.set(i.round, honest);
          if (i.round === 1) {
            acks[1]!.push(await f.send('fl:result', honest));
            acks[1]!.push(await f.send('fl:result', honest)); // the same message again
            acks[1]!.push(await f.send('fl:result', other));
          } else {
            // both in flight at once: the first is being checked (async SHA-256) when the second arrives
            acks[2]!.push(...(await Promise.all([f.send('fl:result', honest), f.send('fl:result', other)])));
          }
          gates.get(i.round)?.resolve();
        },
      },
    });
    const { runId, summary, rounds } = await run({ rounds: 2 });
    expect(summary?.status).toBe('completed');
    const dup = /^H3 already sent its train result for round [12]$/;
    expect(acks[1]![0]).toEqual({ ok: true, value: { accepted: true } });
    expectRefused(acks[1]![1], 'DUPLICATE_RESULT', 'round', dup);
    expectRefused(acks[1]![2], 'DUPLICATE_RESULT', 'round', dup);
    expect(acks[2]![0]).toEqual({ ok: true, value: { accepted: true } });
    expectRefused(acks[2]![1], 'DUPLICATE_RESULT', 'round', dup);
    for (const r of rounds) {
      expect(r.metrics.num_participating_clients).toBe(3);
      expect(part(r, 'H3', 'train')).toMatchObject({ status: 'ok' });
      expect(r.perHospital.H3?.train_loss, 'the first update’s metrics stand').toBeCloseTo(1 / (r.round + 1), 9);
      expectAggregateOf(r.round, [sentBy(h1, r.round), sentBy(h2, r.round), first.get(r.round)!], [h1, h2, h3]);
    }
    await expectStoredModelFinite(runId);
    expect(await rejections('hospital:H3', 'DUPLICATE_RESULT')).toHaveLength(3);
    await expectHonest(h1, h2);
  });

  it('rejects a result from a hospital that was not sampled, or that joined after sampling, with NOT_SELECTED', async () => {
    const release = deferred();
    const gated: Behaviour = async (instr, f) => {
      await release.promise;
      await f.send('fl:result', await f.honest(instr));
    };
    server = await startTestServer();
    const trainStart = new Promise<StageProgress>((resolve) =>
      srv().events.on('stage', (p: StageProgress) => {
        if (p.stage === 'train' && p.phase === 'start' && p.round === 1) resolve(p);
      }),
    );
    const all = [await connect('H1', { behaviour: { train: gated } }), await connect('H2', { behaviour: { train: gated } }), await connect('H3', { behaviour: { train: gated } })];
    const { runId } = await srv().coordinator.start({ ...BASE, rounds: 1, fraction_fit: 0.5, seed: 42 }, 'test');
    const { targets } = await trainStart;
    expect(targets).toHaveLength(2); // max(min_fit_clients 2, ⌈0.5 · 3⌉)
    const selected = all.filter((f) => targets.includes(f.hospitalId));
    const unselected = all.find((f) => !targets.includes(f.hospitalId))!;
    await selected[0]!.until(() => selected[0]!.received('train', 1).length === 1, 'the train instruction');
    const instr = selected[0]!.received('train', 1)[0]!;

    const ackUnselected = await unselected.send('fl:result', await unselected.trainResult(instr));
    const late = await connect('H4'); // connected after sampling
    const ackLate = await late.send('fl:result', await late.trainResult(instr));
    expectRefused(ackUnselected, 'NOT_SELECTED', 'stage', new RegExp(`^${unselected.hospitalId} was not selected for train in round 1$`));
    expectRefused(ackLate, 'NOT_SELECTED', 'stage', /^H4 was not selected for train in round 1$/);
    release.resolve();

    const summary = await finished();
    expect(summary?.status).toBe('completed');
    const [r] = await srv().store.getRoundMetrics(runId);
    expect(r!.metrics.num_participating_clients).toBe(2);
    expect(r!.participation.filter((p) => p.stage === 'train').map((p) => [p.hospitalId, p.status])).toEqual(targets.map((h) => [h, 'ok']));
    // Neither was punished: both evaluate the new model (federated evaluation samples everyone available).
    expect(part(r!, unselected.hospitalId, 'evaluate')?.status).toBe('ok');
    expect(part(r!, 'H4', 'evaluate')?.status).toBe('ok');
    expectAggregateOf(1, selected.map((f) => sentBy(f, 1)), [...all, late]);
    expect(await rejections(`hospital:${unselected.hospitalId}`, 'NOT_SELECTED')).toHaveLength(1);
    expect(await rejections('hospital:H4', 'NOT_SELECTED')).toHaveLength(1);
    await expectHonest(...selected);
  });
});

describe('fl:result schema', () => {
  it('rejects schema violations with INVALID_PAYLOAD naming the field, acknowledged or pushed as fl:error', async () => {
    const acks: (AckResponse | undefined)[] = [];
    const { h1, h2, h3 } = await cohort({
      train: perRound({
        1: async (instr, f) => {
          const ok = await f.trainResult(instr as TrainInstruction);
          const { num_samples: _omit, ...noSamples } = ok;
          acks.push(await f.send('fl:result', noSamples));
          acks.push(await f.send('fl:result', { ...ok, metrics: { train_loss: 'low' } }));
          acks.push(await f.send('fl:result', { ...ok, weights: Array.from(weightsFromBytes(ok.weights as Uint8Array).subarray(0, 64)) }));
          acks.push(await f.send('fl:result', { ...ok, stage: 'aggregate' }));
          acks.push(await f.send('fl:result', 'not an object'));
          f.socket.emit('fl:result', { ...ok, num_samples: 0 }); // no acknowledgement callback: the error is pushed
        },
      }),
    });
    const { runId, summary, rounds } = await run({ rounds: 2, stage_timeout_s: SHORT_TIMEOUT_S });
    expect(summary?.status).toBe('completed');
    expectRefused(acks[0], 'INVALID_PAYLOAD', 'num_samples', /^num_samples: .*number/);
    expectRefused(acks[1], 'INVALID_PAYLOAD', 'metrics.train_loss', /^metrics\.train_loss: expected a finite number$/);
    expectRefused(acks[2], 'INVALID_PAYLOAD', 'weights', /^weights: expected binary data$/);
    expectRefused(acks[3], 'INVALID_PAYLOAD', 'stage', /^stage: /);
    expectRefused(acks[4], 'INVALID_PAYLOAD', '(payload)', /^\(payload\): /);
    await h3.until(() => h3.errors.length === 1, 'the pushed fl:error');
    expect(h3.errors[0]).toEqual({ code: 'INVALID_PAYLOAD', field: 'num_samples', message: expect.stringMatching(/^num_samples: /), event: 'fl:result' });

    expectRoundWithoutH3(rounds[0]!, 'dropped', /^timeout$/);
    expectAggregateOf(1, [sentBy(h1, 1), sentBy(h2, 1)], [h1, h2]);
    expect(rounds[1]!.metrics.num_participating_clients).toBe(3); // honest again in round 2, and welcome
    await expectStoredModelFinite(runId);
    const audited = await rejections('hospital:H3', 'INVALID_PAYLOAD');
    expect(audited).toHaveLength(6);
    expect(audited.map((e) => e.detail?.field).sort()).toEqual(['(payload)', 'metrics.train_loss', 'num_samples', 'num_samples', 'stage', 'weights']);
    await expectHonest(h1, h2);
  });
});

describe('message size limit', () => {
  it.each(['websocket', 'polling'] as const)(
    'disconnects a hospital whose message exceeds MAX_MESSAGE_BYTES (%s); the round completes without it and the server keeps serving',
    async (transport) => {
      const gone = deferred();
      const back = deferred();
      let sent: FakeHospital['sent'][number] | undefined;
      let disconnect: { reason: string; closeCode?: number } | undefined;
      server = await startTestServer();
      const h1 = await connect('H1', {
        behaviour: {
          evaluate: async (instr, f) => {
            if (instr.round === 1) await back.promise; // hold round 1 open until H3 has reconnected
            await f.send('fl:result', await f.honest(instr));
          },
        },
      });
      const h2 = await connect('H2');
      const h3 = await connect('H3', {
        transports: [transport],
        behaviour: {
          train: async (instr, f) => {
            const big = new Float32Array(MAX_MESSAGE_BYTES / 4 + 1024); // 4 KiB over the limit, checksum correct
            await f.send('fl:result', await f.trainResult(instr as TrainInstruction, () => big));
            sent = f.sent.at(-1);
            gone.resolve();
          },
        },
      });
      h3.socket.on('disconnect', (reason, details) => {
        const ctx = (details as { context?: { code?: number } } | undefined)?.context;
        disconnect = { reason, ...(typeof ctx?.code === 'number' ? { closeCode: ctx.code } : {}) };
      });

      const { runId } = await srv().coordinator.start({ ...BASE, rounds: 2 }, 'test');
      await gone.promise;
      // No acknowledgement: Socket.IO's limit closed the connection before the message was decoded.
      expect(sent?.response).toBeUndefined();
      expect(sent?.error).toBe('socket has been disconnected');
      expect(h3.socket.connected).toBe(false);
      expect(h3.errors).toEqual([]);
      if (transport === 'websocket') expect(disconnect).toEqual({ reason: 'transport close', closeCode: 1009 }); // 1009: message too big
      // polling: the POST is answered 413 and the session closed; which of the two the client notices first is a race
      else expect(['transport close', 'transport error']).toContain(disconnect?.reason);

      // The server keeps serving: REST answers, and H3 can sign in again.
      expect((await fetch(`${srv().url}/healthz`)).status).toBe(200);
      const h3again = await connect('H3', { transports: [transport] }); // a full-size honest update fits, even base64-encoded over polling
      back.resolve();

      const summary = await finished();
      expect(summary?.status).toBe('completed');
      const rounds = await srv().store.getRoundMetrics(runId);
      expectRoundWithoutH3(rounds[0]!, 'dropped', transport === 'websocket' ? /^disconnected: transport error: .*Max payload size exceeded$/ : /^disconnected: transport error: payload too large$/);
      expectAggregateOf(1, [sentBy(h1, 1), sentBy(h2, 1)], [h1, h2]);
      expect(rounds[1]!.metrics.num_participating_clients).toBe(3);
      expect(part(rounds[1]!, 'H3', 'train')?.status).toBe('ok');
      expectAggregateOf(2, [sentBy(h1, 2), sentBy(h2, 2), sentBy(h3again, 2)], [h1, h2, h3again]);
      await expectStoredModelFinite(runId);
      // Audited as a refused departure with the transport's reason (the message itself never reached the protocol layer).
      const left = (await srv().store.listAudit({ limit: 1000 })).filter((e) => e.actor === 'hospital:H3' && e.action === 'leave');
      expect(left.filter((e) => e.outcome === 'rejected')).toEqual([
        expect.objectContaining({
          detail: { reason: 'transport error', code: 'MESSAGE_TOO_LARGE', detail: expect.stringMatching(transport === 'websocket' ? /Max payload size exceeded$/ : /^transport error: payload too large$/) },
        }),
      ]);
      await expectHonest(h1, h2);
    },
  );
});

describe('handshake', () => {
  /** Runs `body` while round 1's train stage is open (H1 holds its result), then lets the round finish with all three. */
  async function duringRound(body: () => Promise<void>): Promise<void> {
    const release = deferred();
    const { h1, h2, h3 } = await cohort();
    h1.behaviour.train = async (instr, f) => {
      await release.promise;
      await f.send('fl:result', await f.honest(instr));
    };
    const { runId } = await srv().coordinator.start({ ...BASE, rounds: 1 }, 'test');
    await h1.until(() => h1.received('train', 1).length === 1, 'round 1 train');
    expect(srv().coordinator.status()).toMatchObject({ status: 'running', current_round: 1, stage: 'train' });
    await body();
    expect(srv().grid.available(), 'nobody was signed out by the refused attempt').toEqual(['H1', 'H2', 'H3']);
    release.resolve();
    expect((await finished())?.status).toBe('completed');
    const [r] = await srv().store.getRoundMetrics(runId);
    expect(r!.metrics.num_participating_clients).toBe(3);
    await expectHonest(h1, h2, h3);
  }

  async function refused(auth: { hospital_id: string; token: string; client_version?: number }): Promise<Error & { data?: ProtocolErrorPayload }> {
    const err = await FakeHospital.connect({ url: srv().url, hospitalId: auth.hospital_id, token: auth.token, auth: { client_version: auth.client_version ?? PROTOCOL_VERSION } }).then(
      (f) => {
        f.close();
        throw new Error(`${auth.hospital_id} was let in`);
      },
      (e: unknown) => e as Error & { data?: ProtocolErrorPayload },
    );
    return err;
  }

  /** Refusals are audited in aggregate: one row per address and window, counted by namespace and code (the message is logged). */
  async function expectJoinAudited(code: ErrorCode, secret: string): Promise<void> {
    await srv().flushRefusals();
    const entries = await srv().store.listAudit({ limit: 1000 });
    const refusals = entries.filter((e) => e.action === 'auth.refused' && e.outcome === 'rejected');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.detail).toMatchObject({ count: 1, by: { [`hospital:${code}`]: 1 } });
    expect(refusals[0]!.actor).toMatch(/127\.0\.0\.1/);
    expect(JSON.stringify(entries), 'no secret in the audit log').not.toContain(secret);
  }

  it('refuses an unknown token with UNAUTHORIZED', async () => {
    const token = 'not-a-real-token-0123456789abcdef';
    await duringRound(async () => {
      const err = await refused({ hospital_id: 'H1', token });
      expect(err.message).toBe('unknown or revoked token');
      expect(err.data).toEqual({ code: 'UNAUTHORIZED', message: 'unknown or revoked token', field: 'token', event: 'connect' });
      await expectJoinAudited('UNAUTHORIZED', token);
    });
  });

  it("refuses a hospital token used as another hospital with FORBIDDEN (and the real one stays signed in)", async () => {
    await duringRound(async () => {
      const err = await refused({ hospital_id: 'H2', token: HOSPITAL_TOKENS.H1 as string });
      expect(err.data).toEqual({ code: 'FORBIDDEN', message: 'this token belongs to H1, not H2', field: 'hospital_id', event: 'connect' });
      await expectJoinAudited('FORBIDDEN', HOSPITAL_TOKENS.H1 as string);
    });
  });

  it('refuses the admin token on /hospital with FORBIDDEN', async () => {
    await duringRound(async () => {
      const err = await refused({ hospital_id: 'H1', token: ADMIN_TOKEN });
      expect(err.data).toEqual({ code: 'FORBIDDEN', message: 'an admin token cannot join as a hospital', field: 'token', event: 'connect' });
      await expectJoinAudited('FORBIDDEN', ADMIN_TOKEN);
    });
  });

  it('refuses another protocol version with INVALID_PAYLOAD naming client_version', async () => {
    await duringRound(async () => {
      const err = await refused({ hospital_id: 'H1', token: HOSPITAL_TOKENS.H1 as string, client_version: PROTOCOL_VERSION + 1 });
      const message = `protocol version ${PROTOCOL_VERSION + 1} unsupported (server speaks ${PROTOCOL_VERSION})`;
      expect(err.data).toEqual({ code: 'INVALID_PAYLOAD', message, field: 'client_version', event: 'connect' });
      await expectJoinAudited('INVALID_PAYLOAD', HOSPITAL_TOKENS.H1 as string);
    });
  });
});

describe('dropouts', () => {
  it('drops a hospital that disconnects mid-train (participation dropped, reason disconnected) and completes the round at once', async () => {
    const { h1, h2 } = await cohort({
      train: (_instr, f) => {
        f.socket.disconnect();
      },
    });
    const { runId, summary, rounds } = await run({ rounds: 2, stage_timeout_s: 60 });
    expect(summary?.status).toBe('completed');
    expectRoundWithoutH3(rounds[0]!, 'dropped', /^disconnected$/);
    expect(rounds[0]!.metrics.round_duration_seconds, 'no wait for the stage timeout').toBeLessThan(30);
    expectAggregateOf(1, [sentBy(h1, 1), sentBy(h2, 1)], [h1, h2]);
    // Gone for good: round 2 runs with the two that are there.
    expect(rounds[1]!.participation.map((p) => p.hospitalId)).not.toContain('H3');
    expect(rounds[1]!.metrics.num_participating_clients).toBe(2);
    await expectStoredModelFinite(runId);
    await expectHonest(h1, h2);
  });
});

describe('stop between stages', () => {
  it('a wait for clients or a stage that begins after the run was stopped ends at once, sending nothing', async () => {
    server = await startTestServer();
    const h1 = await connect('H1');
    const t0 = Date.now();
    expect(await srv().grid.waitForClients(3, 30_000, AbortSignal.abort())).toBe(false);
    const out = await srv().grid.request(
      {
        runId: 'run-x',
        round: 1,
        stage: 'evaluate',
        targets: ['H1'],
        instruction: () => {
          throw new Error('no instruction may be sent');
        },
        timeoutMs: 30_000,
        minResults: 1,
      },
      AbortSignal.abort(),
    );
    expect(Date.now() - t0, 'neither waited out its 30 s timeout').toBeLessThan(5_000);
    expect(out.results.size).toBe(0);
    expect(srv().grid.currentStage()).toBeUndefined();
    expect(h1.instructions).toEqual([]);
  });
});
