import { describe, expect, it } from 'vitest';
import { computeFeatureSums, finalizeFeatureStats, type FeatureSums } from '../data/features';
import { generateHospital } from '../data/generator';
import { ProtocolError } from '../protocol/errors';
import type { Decline, Instruction, StageResult } from '../protocol/messages';
import { HospitalSession, type HospitalCompute, type SessionActivity } from './session';

const RUN = 'run-20260101000000-abcdef01';
const SHA = 'a'.repeat(64);
const records = generateHospital('H1', { seed: 3, patients: 20 }).records;

/** A compute whose fit/evaluate outcomes the test scripts; featureSums is the real computation. */
function scripted(log: string[], fit: (instr: Extract<Instruction, { stage: 'train' }>) => Promise<void> = async () => {}): HospitalCompute {
  return {
    featureSums: (seqLen) => {
      log.push(`sums ${seqLen}`);
      return computeFeatureSums(records, { seqLen, windowDays: 30 });
    },
    holdFeatureSums: (runId, seqLen) => {
      log.push(`hold sums ${runId} ${seqLen}`);
    },
    setStats: async (runId) => {
      await new Promise((r) => setTimeout(r, 20));
      log.push(`stats ${runId}`);
    },
    fit: async (instr) => {
      log.push(`fit ${instr.round} start`);
      await fit(instr);
      log.push(`fit ${instr.round} end`);
      return { weights: new Uint8Array([1, 2, 3, 4]), weights_sha256: SHA, num_samples: 7, metrics: { train_loss: 0.5 } };
    },
    evaluate: async (instr) => {
      log.push(`evaluate ${instr.round}`);
      return { num_examples: 3, metrics: { test_accuracy: 0.5 } };
    },
    secureAggregation: async (req) => {
      log.push(`secagg ${req.stage}`);
      throw new Error('no secure aggregation in this test');
    },
    homomorphic: async (req) => {
      log.push(`he ${req.stage}`);
      throw new Error('no HE in this test');
    },
  };
}

function harness(compute: HospitalCompute, opts: ConstructorParameters<typeof HospitalSession>[3] = {}) {
  const sent: StageResult[] = [];
  const declined: Decline[] = [];
  const logs: string[] = [];
  const activity: SessionActivity[] = [];
  const session = new HospitalSession(
    'H1',
    compute,
    {
      sendResult: async (r) => void sent.push(r),
      sendDecline: async (d) => void declined.push(d),
    },
    { log: (m) => logs.push(m), onActivity: (a) => activity.push(a), ...opts },
  );
  return { session, sent, declined, logs, activity };
}

const train = (round: number): Extract<Instruction, { stage: 'train' }> => ({
  run_id: RUN,
  round,
  stage: 'train',
  config: { local_epochs: 1, batch_size: 8, learning_rate: 0.001, proximal_mu: 0, seq_len: 12, seed: 1 },
  weights: new Uint8Array([0, 0, 128, 63]),
  weights_sha256: SHA,
});

describe('HospitalSession', () => {
  it('answers preprocess with the feature sums and train/evaluate with the compute results, in arrival order', async () => {
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const h = harness(scripted(log, async (i) => (i.round === 1 ? gate : undefined)));
    void h.session.onInstruction({ run_id: RUN, round: 0, stage: 'preprocess', seq_len: 12 });
    void h.session.onInstruction(train(1));
    const evaluated = h.session.onInstruction({ run_id: RUN, round: 1, stage: 'evaluate', weights: new Uint8Array(4), weights_sha256: SHA });
    await new Promise((r) => setTimeout(r, 30));
    // evaluate waits for the slow fit before it
    expect(log).toEqual(['sums 12', 'fit 1 start']);
    release();
    await evaluated;
    expect(log).toEqual(['sums 12', 'fit 1 start', 'fit 1 end', 'evaluate 1']);
    expect(h.sent.map((r) => `${r.stage} ${r.round}`)).toEqual(['preprocess 0', 'train 1', 'evaluate 1']);
    const sums = (h.sent[0] as Extract<StageResult, { stage: 'preprocess' }>).sums as FeatureSums;
    expect(sums).toEqual(computeFeatureSums(records, { seqLen: 12, windowDays: 30 }));
    expect(h.sent[1]).toMatchObject({ run_id: RUN, stage: 'train', num_samples: 7, weights_sha256: SHA });
    expect(h.activity.map((a) => `${a.kind}${'stage' in a ? ` ${a.stage}` : ''}`)).toEqual(['stage preprocess', 'sent preprocess', 'stage train', 'sent train', 'stage evaluate', 'sent evaluate']);
  });

  it('with secure aggregation, preprocess holds the sums and the reply carries none', async () => {
    const log: string[] = [];
    const h = harness(scripted(log));
    await h.session.onInstruction({ run_id: RUN, round: 0, stage: 'preprocess', seq_len: 12, secure_aggregation: 'secagg' });
    expect(log).toEqual([`hold sums ${RUN} 12`]);
    expect(h.sent).toEqual([{ run_id: RUN, round: 0, stage: 'preprocess' }]);
  });

  it('declines with the reason when the compute fails, names the protocol error code, and carries on', async () => {
    const h = harness(
      scripted([], async (i) => {
        if (i.round === 1) throw new ProtocolError('CHECKSUM_MISMATCH', 'global weights do not match their SHA-256', 'weights_sha256');
        if (i.round === 2) throw new Error('training stopped by the hospital');
      }),
    );
    await h.session.onInstruction(train(1));
    await h.session.onInstruction(train(2));
    await h.session.onInstruction(train(3));
    expect(h.declined).toEqual([
      { run_id: RUN, round: 1, stage: 'train', reason: 'CHECKSUM_MISMATCH: global weights do not match their SHA-256' },
      { run_id: RUN, round: 2, stage: 'train', reason: 'training stopped by the hospital' },
    ]);
    expect(h.sent.map((r) => r.round)).toEqual([3]);
    expect(h.activity.filter((a) => a.kind === 'declined')).toHaveLength(2);
  });

  it('ignores (and logs) an invalid instruction, statistics or run event without calling the compute', async () => {
    const log: string[] = [];
    const h = harness(scripted(log));
    await h.session.onInstruction({ run_id: RUN, round: 1, stage: 'train', weights: 'not bytes' });
    await h.session.onStats({ run_id: RUN, seq_len: 1 });
    expect(h.session.onRun({ run_id: RUN, status: 'exploded' })).toBeUndefined();
    expect(log).toEqual([]);
    expect(h.sent).toEqual([]);
    expect(h.declined).toEqual([]);
    expect(h.logs.join('\n')).toMatch(/ignoring invalid instruction .*config/);
    expect(h.logs.join('\n')).toMatch(/ignoring invalid global statistics/);
    expect(h.logs.join('\n')).toMatch(/ignoring invalid run event/);
  });

  it('installs statistics before an instruction that arrives after them, even when setStats is slow', async () => {
    const log: string[] = [];
    const h = harness(scripted(log));
    const stats = finalizeFeatureStats(computeFeatureSums(records, { seqLen: 12, windowDays: 30 }));
    void h.session.onStats({ run_id: RUN, seq_len: 12, stats });
    await h.session.onInstruction(train(1));
    expect(log).toEqual([`stats ${RUN}`, 'fit 1 start', 'fit 1 end']);
  });

  it('sends what tamper returns, and nothing when it returns undefined; beforeInstruction can skip', async () => {
    const h = harness(scripted([]), {
      tamper: (r) => (r.round === 2 ? undefined : r.stage === 'train' ? { ...r, num_samples: 99 } : r),
      beforeInstruction: (i) => i.round !== 3,
    });
    await h.session.onInstruction(train(1));
    await h.session.onInstruction(train(2));
    await h.session.onInstruction(train(3));
    expect(h.sent.map((r) => r.round)).toEqual([1]);
    expect(h.sent[0]).toMatchObject({ stage: 'train', num_samples: 99 });
  });

  it('fills in a model named by SHA-256 alone from the last ones it used, and declines UNKNOWN_MODEL for one it never held', async () => {
    const seen: Uint8Array[] = [];
    const compute: HospitalCompute = {
      ...scripted([]),
      fit: async (instr) => {
        seen.push(instr.weights);
        return { num_samples: 1, metrics: {}, weights: new Uint8Array(4), weights_sha256: SHA };
      },
      evaluate: async (instr) => {
        seen.push(instr.weights);
        return { num_examples: 1, metrics: {} };
      },
    };
    const h = harness(compute);
    const other = 'b'.repeat(64);
    const named = (round: number, sha: string) => {
      const { weights: _w, ...rest } = train(round);
      return { ...rest, weights_sha256: sha };
    };
    // Named before any model arrived: declined by name, nothing computed.
    await h.session.onInstruction(named(1, SHA));
    expect(h.declined.map((d) => d.reason)).toEqual([expect.stringMatching(/^UNKNOWN_MODEL: the model aaaaaaaaaaaa… was named without its weights/)]);
    expect(seen).toHaveLength(0);
    // Round 1's evaluate carries model B in full; round 2's train names it alone and gets those bytes.
    const b = new Uint8Array([9, 9, 9, 9]);
    await h.session.onInstruction({ run_id: RUN, round: 1, stage: 'evaluate', weights: b, weights_sha256: other });
    await h.session.onInstruction(named(2, other));
    expect(seen[1]).toEqual(b);
    expect(h.sent.map((r) => `${r.stage} ${r.round}`)).toEqual(['evaluate 1', 'train 2']);
    // A model whose compute failed is not held: naming it later is declined.
    const failing = harness({ ...compute, evaluate: async () => Promise.reject(new ProtocolError('CHECKSUM_MISMATCH', 'bad', 'weights_sha256')) });
    await failing.session.onInstruction({ run_id: RUN, round: 1, stage: 'evaluate', weights: b, weights_sha256: other });
    await failing.session.onInstruction(named(2, other));
    expect(failing.declined.map((d) => d.reason.split(':')[0])).toEqual(['CHECKSUM_MISMATCH', 'UNKNOWN_MODEL']);
  });

  it('declines a result larger than the coordinator accepts per message, naming the part, and carries on', async () => {
    // weights of 2,000 bytes against a 1,000-byte limit; the evaluate reply (no binary) still goes
    const big = (r: StageResult): StageResult => (r.stage === 'train' ? { ...r, weights: new Uint8Array(2000) } : r);
    const h = harness(scripted([]), { maxMessageBytes: 1000, tamper: big });
    await h.session.onInstruction(train(1));
    await h.session.onInstruction({ run_id: RUN, round: 1, stage: 'evaluate', weights: new Uint8Array(3), weights_sha256: SHA });
    expect(h.declined).toEqual([
      { run_id: RUN, round: 1, stage: 'train', reason: "MESSAGE_TOO_LARGE: fl:result: weights is 2,000 bytes, over the coordinator's limit of 1,000 bytes per message" },
    ]);
    expect(h.sent.map((r) => r.stage)).toEqual(['evaluate']);
    expect(h.activity.filter((a) => a.kind !== 'stage').map((a) => a.kind)).toEqual(['declined', 'sent']);
    // the default limit is the coordinator's: the same 2,000 bytes go
    const d = harness(scripted([]), { tamper: big });
    await d.session.onInstruction(train(1));
    expect(d.sent.map((r) => r.stage)).toEqual(['train']);
  });

  it("hands the compute the stage's deadline: when it arrived plus the coordinator's timeout_s, queueing included; none when unsaid", async () => {
    const deadlines: (number | undefined)[] = [];
    let turnAt = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const compute: HospitalCompute = {
      ...scripted([]),
      fit: async (instr, deadline) => {
        deadlines.push(deadline);
        if (instr.round === 1) await gate;
        return { num_samples: 1, metrics: {}, weights: new Uint8Array(4), weights_sha256: SHA };
      },
      evaluate: async (_instr, deadline) => {
        deadlines.push(deadline);
        turnAt = Date.now();
        return { num_examples: 1, metrics: {} };
      },
    };
    const h = harness(compute);
    const t0 = Date.now();
    const first = h.session.onInstruction({ ...train(1), timeout_s: 30 });
    // Arrives now, waits behind round 1's training: its 5 s count from now, not from its turn.
    const second = h.session.onInstruction({ run_id: RUN, round: 1, stage: 'evaluate', weights: new Uint8Array(4), weights_sha256: SHA, timeout_s: 5 });
    await new Promise((r) => setTimeout(r, 60));
    release();
    await Promise.all([first, second]);
    await h.session.onInstruction(train(2));
    expect(deadlines).toHaveLength(3);
    expect(deadlines[0]).toBeGreaterThanOrEqual(t0 + 30_000);
    expect(deadlines[0]).toBeLessThanOrEqual(t0 + 30_000 + 50);
    expect(deadlines[1]).toBeGreaterThanOrEqual(t0 + 5_000);
    expect(deadlines[1]).toBeLessThanOrEqual(t0 + 5_000 + 50);
    expect(turnAt).toBeGreaterThanOrEqual(t0 + 60);
    expect(deadlines[1]!).toBeLessThan(turnAt + 5_000);
    expect(deadlines[2]).toBeUndefined();
  });
});
