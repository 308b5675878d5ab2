// Adversarial (issue 13): a hostile hospital that speaks the real SecAgg+ protocol to a real
// coordinator and reveals one corrupted Shamir share at unmask. Before shares were signed by their
// dealers, that share made the coordinator's reconstruction fail and the round abort blaming an
// honest peer (the dealer whose secret would not rebuild). Now the share is discarded, the hostile
// hospital is named in the audit log, and the round completes from the honest hospitals' shares —
// or, with too few honest shares left, fails naming the hostile hospital, never an honest one.
import { afterEach, describe, expect, it } from 'vitest';
import { generateHospital } from '@fedcare/shared/data';
import { HospitalClient } from '@fedcare/shared/fl';
import { weightsFromBytes } from '@fedcare/shared/model';
import type { Instruction, RunConfigInput, StageResult } from '@fedcare/shared/protocol';
import type { SecAggReply, UnmaskReply } from '@fedcare/shared/secagg';
import type { RunningServer } from '../server';
import { FakeHospital, HOSPITAL_TOKENS, perturb, startTestServer, type Behaviour } from '../testing/fake-hospital';

const TOKENS: Record<string, string> = { ...HOSPITAL_TOKENS, H5: 'h5-token-0123456789abcdef' };
type Held = { runId: string; round: number; delta: Float32Array | Float64Array; weight: number };

/**
 * A fake hospital whose secure-aggregation stages are the real HospitalClient's (its own generated
 * identity key, its real SecAgg+ client); training is skipped: it holds a small known update.
 * `unmask` may rewrite the reply before it is sent (the hostile hospital); `silentAt` never answers that stage.
 */
function secure(f: FakeHospital, o: { unmask?: (r: UnmaskReply) => UnmaskReply; silentAt?: Instruction['stage'] } = {}): Partial<Record<Instruction['stage'], Behaviour>> {
  // The generator knows H1–H3; H4 and H5 reuse H1's profile (their records are never trained on here).
  const records = generateHospital(['H1', 'H2', 'H3'].includes(f.hospitalId) ? f.hospitalId : 'H1', { seed: 7, patients: 30 }).records.map((r) => ({ ...r, hospital_id: f.hospitalId }));
  const client = new HospitalClient(f.hospitalId, records);
  const samples = 20 + Number(f.hospitalId.slice(1));
  const send = (r: unknown) => f.send('fl:result', r).then(() => undefined);
  const stage: Behaviour = async (instr) => {
    if (instr.stage === o.silentAt) return;
    let reply = (await client.secureAggregation(instr as never)) as SecAggReply;
    if (reply.stage === 'unmask' && o.unmask) reply = o.unmask(reply);
    await send(reply);
  };
  return {
    preprocess: async (instr) => {
      if (instr.stage !== 'preprocess') return;
      client.holdFeatureSums(instr.run_id, instr.seq_len);
      await send({ run_id: instr.run_id, round: 0, stage: 'preprocess' } satisfies StageResult);
    },
    train: async (instr) => {
      if (instr.stage !== 'train') return;
      const global = weightsFromBytes(instr.weights);
      const local = perturb(global, f.hospitalId, instr.round);
      const delta = local.map((v, i) => v - (global[i] as number));
      (client as unknown as { held: Held }).held = { runId: instr.run_id, round: instr.round, delta, weight: samples };
      await send({ run_id: instr.run_id, round: instr.round, stage: 'train', num_samples: samples, metrics: { train_loss: 1 } } satisfies StageResult);
    },
    ...Object.fromEntries((['advertise-keys', 'share-keys', 'masked-input', 'consistency-check', 'unmask'] as const).map((s) => [s, stage])),
  };
}

/** The hostile edit: one byte of its revealed share of `dealer`'s self-mask seed changed (its signature left as it was). */
const corruptShareOf =
  (dealer: string) =>
  (r: UnmaskReply): UnmaskReply => ({
    ...r,
    b_shares: r.b_shares.map((e) => (e.client_id === dealer ? { ...e, share: e.share.map((b, i) => (i === 7 ? b ^ 0xff : b)) } : e)),
  });

let server: RunningServer | undefined;
const fakes: FakeHospital[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) f.close();
  await server?.close();
  server = undefined;
});

async function federation(n: number, behaviours: (f: FakeHospital) => Partial<Record<Instruction['stage'], Behaviour>>) {
  server = await startTestServer({ FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') });
  const ids = Array.from({ length: n }, (_, i) => `H${i + 1}`);
  for (const h of ids) {
    const f = await FakeHospital.connect({ url: server.url, hospitalId: h, token: TOKENS[h] as string });
    f.behaviour = behaviours(f);
    fakes.push(f);
  }
  return ids;
}

async function run(config: RunConfigInput) {
  const s = server as RunningServer;
  const { runId } = await s.coordinator.start(config, 'test');
  // The run's end as the store records it (status and reason).
  let summary = await s.store.getRun(runId);
  for (const until = Date.now() + 100_000; summary?.status === 'running' && Date.now() < until; summary = await s.store.getRun(runId)) await new Promise((r) => setTimeout(r, 100));
  await s.coordinator.idle();
  await Promise.all(fakes.map((f) => f.settled()));
  const audit = await s.store.listAudit({ limit: 10_000 });
  return { runId, summary, audit, rounds: await s.store.getRoundMetrics(runId) };
}

const config = (n: number, extra: Partial<RunConfigInput> = {}): RunConfigInput => ({
  rounds: 1,
  seq_len: 12,
  secure_aggregation: 'secagg',
  stage_timeout_s: 60,
  wait_for_clients_s: 20,
  rejoin_grace_s: 0,
  min_fit_clients: n,
  // The hostile hospital, its unmask reply rejected, is out for the rest of the round.
  min_evaluate_clients: n - 1,
  min_available_clients: n,
  ...extra,
});

describe('SecAgg+ against a hostile hospital that corrupts one share at unmask', () => {
  // Three hospitals: with four or more, the share-keys instruction carries more than 10 binary
  // fields, which socket.io-parser (4.2.7, maxAttachments 10) refuses on the hospital's side — a
  // transport limit this test does not lift; the protocol tests cover 5 hospitals in process.
  it.each([3])('among %i hospitals: its share is discarded, it is named in the audit log, and the round completes', async (n) => {
    const hostile = `H${n}`;
    await federation(n, (f) => secure(f, f.hospitalId === hostile ? { unmask: corruptShareOf('H1') } : {}));
    const { summary, audit, rounds } = await run(config(n));
    expect(summary?.status, summary?.reason).toBe('completed');
    const round1 = rounds.find((r) => r.round === 1);
    expect(round1?.metrics.num_participating_clients).toBe(n); // the hostile hospital's own update is in the sum
    const rejected = audit.filter((e) => e.outcome === 'rejected' && /share/.test(JSON.stringify(e.detail ?? {})));
    // Once per SecAgg+ round: round 0 (the preprocessing sums) and round 1.
    expect(rejected.map((e) => e.actor)).toEqual([`hospital:${hostile}`, `hospital:${hostile}`]);
    expect(JSON.stringify(rejected[0]?.detail)).toMatch(new RegExp(`self-mask share of H1 does not carry the dealer's signature: altered by ${hostile}, discarded`));
    // No honest hospital is blamed for anything.
    for (let i = 1; i < n; i++) expect(audit.filter((e) => e.actor === `hospital:H${i}` && e.outcome === 'rejected')).toEqual([]);
    expect(round1?.participation).toContainEqual(expect.objectContaining({ hospitalId: hostile, stage: 'unmask', status: 'rejected' }));
  });

  it('with too few honest shares left (another hospital silent at unmask, 3 hospitals, t = 2): the round fails naming the hostile hospital, never an honest peer', async () => {
    await federation(3, (f) => secure(f, f.hospitalId === 'H3' ? { unmask: corruptShareOf('H1') } : f.hospitalId === 'H2' ? { silentAt: 'unmask' } : {}));
    const { summary, audit } = await run(config(3, { min_fit_clients: 2, min_evaluate_clients: 2, stage_timeout_s: 5, round_failure_policy: 'stop' }));
    expect(summary?.status).toBe('failed');
    // H1's self mask: H1's own share valid, H3's discarded, H2 silent — 1 valid of t = 2.
    expect(summary?.reason).toMatch(/cannot rebuild the self mask of survivor H1: 1 of its 3 share holders answered unmask with a valid share \(discarded: H3's forged shares\)/);
    expect(audit.filter((e) => e.outcome === 'rejected' && e.actor.startsWith('hospital:')).map((e) => e.actor)).toEqual(['hospital:H3']);
  });
});
