// `fedcare simulate --secure-aggregation secagg` end to end: real client processes run SecAgg+ over
// Socket.IO after training. Same seeds as plain FedAvg → the same model within the quantisation
// error (the pooled AUC within 0.01); a hospital lost mid-protocol is recovered.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateToDir } from './generate';
import { fedcareProcess } from '../testing-processes';

type Line = Record<string, number> & { round: number; dropouts: { hospital: string; stage: string; status: string }[]; per_hospital: Record<string, Record<string, number>> };
type Summary = { status: string; test: { auc_roc: number } };

async function simulate(dir: string, extra: string[]): Promise<{ rounds: Line[]; summary: Summary }> {
  const p = fedcareProcess(['simulate', '--data', dir, '--rounds', '2', '--seq-len', '12', '--batch-size', '16', '--json', ...extra]);
  expect(await p.exited, p.output()).toBe(0);
  const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { rounds: lines.filter((l) => 'round' in l) as Line[], summary: (lines.find((l) => 'summary' in l) as { summary: Summary }).summary };
}

describe('fedcare simulate --secure-aggregation secagg', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-simsa-'));
  generateToDir(['H1', 'H2', 'H3'], 5, dir, 60);
  // Plain FedAvg on these seeds, run once for the SecAgg+ and the HE comparison (it is deterministic).
  let plainRun: ReturnType<typeof simulate> | undefined;
  const plainFedAvg = () => (plainRun ??= simulate(dir, []));

  it('reaches the pooled test AUC of plain FedAvg with the same seeds (within 0.01) and reports its traffic', async () => {
    const plain = await plainFedAvg();
    const secure = await simulate(dir, ['--secure-aggregation', 'secagg']);
    expect(secure.summary.status).toBe('completed');
    expect(Math.abs(secure.summary.test.auc_roc - plain.summary.test.auc_roc)).toBeLessThan(0.01);
    for (const [i, r] of secure.rounds.entries()) {
      expect(r.secure_aggregation).toBe(1);
      expect(r.secagg_dropped).toBe(0);
      expect(r.num_participating_clients).toBe(3);
      // the masked vector replaces the weights upload; key and share traffic come on top
      const plainUp = plain.rounds[i]!.per_hospital.H1!.communication_bytes_up!;
      const secureUp = r.per_hospital.H1!.communication_bytes_up!;
      expect(secureUp).toBeGreaterThan(plainUp * 0.9);
      expect(secureUp).toBeLessThan(plainUp * 1.2);
      expect(plain.rounds[i]!.secure_aggregation).toBe(0);
    }
  }, 600_000);

  it('completes a round in which a hospital disconnects at masked-input, recovering its masks', async () => {
    const { rounds, summary } = await simulate(dir, ['--secure-aggregation', 'secagg', '--min-fit-clients', '2', '--fault', 'H2:disconnect@masked-input:round=1']);
    expect(summary.status).toBe('completed');
    expect(rounds[0]).toMatchObject({ num_participating_clients: 2, secagg_dropped: 1, secagg_recovered: 1 });
    expect(rounds[0]!.dropouts).toEqual([{ hospital: 'H2', stage: 'masked-input', status: 'dropped', reason: 'disconnected' }]);
    expect(rounds[1]).toMatchObject({ num_participating_clients: 3, secagg_dropped: 0 });
  }, 600_000);

  it('HE (BFV): the same AUC as plain FedAvg, uploads ≤ 10 MB per hospital (seed spec 8.3), and a hospital lost at he-input is left out', async () => {
    const plain = await plainFedAvg();
    const he = await simulate(dir, ['--secure-aggregation', 'he']);
    expect(he.summary.status).toBe('completed');
    expect(Math.abs(he.summary.test.auc_roc - plain.summary.test.auc_roc)).toBeLessThan(0.01);
    for (const r of he.rounds) {
      expect(r.secure_aggregation).toBe(2);
      expect(r.num_participating_clients).toBe(3);
      for (const h of ['H1', 'H2', 'H3']) expect(r.per_hospital[h]!.communication_bytes_up!).toBeLessThanOrEqual(10_000_000);
      // the encrypted update (~4.5 MB) replaces the 2.3 MB of plain weights
      expect(r.per_hospital.H3!.communication_bytes_up!).toBeGreaterThan(4_000_000);
    }
    const lost = await simulate(dir, ['--secure-aggregation', 'he', '--min-fit-clients', '2', '--fault', 'H3:disconnect@he-input:round=1']);
    expect(lost.summary.status).toBe('completed');
    expect(lost.rounds[0]).toMatchObject({ num_participating_clients: 2, secagg_dropped: 1 });
    expect(lost.rounds[0]!.dropouts).toEqual([{ hospital: 'H3', stage: 'he-input', status: 'dropped', reason: 'disconnected' }]);
  }, 600_000);
});
