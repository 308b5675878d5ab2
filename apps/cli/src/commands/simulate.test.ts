// `fedcare simulate` end to end (real coordinator, one real client process per hospital), with a
// hospital that disconnects in the middle of round 2's training.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROUND_METRIC_NAMES } from '@fedcare/shared/fl';
import { generateToDir } from './generate';
import { fedcareProcess } from '../testing-processes';

describe('fedcare simulate --fault', () => {
  it('completes round 2 without H2, records the dropout, and H2 rejoins in round 3', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-sim-'));
    generateToDir(['H1', 'H2', 'H3'], 5, dir, 60);
    const p = fedcareProcess(['simulate', '--data', dir, '--rounds', '3', '--seq-len', '12', '--batch-size', '16', '--min-fit-clients', '2', '--fault', 'H2:disconnect@train:round=2', '--json']);
    const code = await p.exited;
    expect(code, p.output()).toBe(0);
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rounds = lines.filter((l) => 'round' in l) as (Record<string, number> & { per_hospital: Record<string, Record<string, number>>; dropouts: { hospital: string; stage: string; reason: string }[] })[];
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) for (const name of ROUND_METRIC_NAMES) expect(r, name).toHaveProperty(name);
    expect(rounds[0]!.num_participating_clients).toBe(3);
    expect(rounds[1]!.num_participating_clients).toBe(2);
    expect(rounds[1]!.dropouts).toEqual([{ hospital: 'H2', stage: 'train', status: 'dropped', reason: 'disconnected' }]);
    // H2 neither trained nor evaluated in round 2 (only the bytes it moved before dropping are listed)
    expect(rounds[1]!.per_hospital.H2!.test_accuracy).toBeUndefined();
    expect(rounds[1]!.per_hospital.H2!.num_samples).toBeUndefined();
    expect(rounds[1]!.per_hospital.H1!.test_accuracy).toBeGreaterThan(0);
    expect(rounds[2]!.per_hospital.H2!.num_samples).toBeGreaterThan(0);
    expect(rounds[2]!.num_participating_clients).toBe(3);
    expect(rounds[2]!.dropouts).toEqual([]);
    const summary = (lines.find((l) => 'summary' in l) as { summary: { status: string; test: { auc_roc: number }; per_hospital: Record<string, unknown> } }).summary;
    expect(summary.status).toBe('completed');
    expect(Object.keys(summary.per_hospital).sort()).toEqual(['H1', 'H2', 'H3']);
    expect(summary.test.auc_roc).toBeGreaterThan(0.5);
  }, 600_000);
});
