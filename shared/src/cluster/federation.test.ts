import { describe, expect, it } from 'vitest';
import { generateHospital } from '../data';
import { PlainAggregator, SecAggAggregator } from './aggregator';
import { REPORT_FEATURES, runFederatedClustering } from './federation';

const data = ['H1', 'H2', 'H3'].map((id) => ({ id, records: generateHospital(id, { seed: 5, patients: 40 }).records }));
const options = { rounds: 1, localEpochs: 1, batchSize: 32, learningRate: 1e-3, seed: 1, seqLen: 6, kMin: 2, kMax: 3, hidden: [32, 16], latentDim: 8 } as const;

describe('runFederatedClustering', () => {
  it('clusters every patient and reports sizes, risk mix, readmission and distinguishing features', async () => {
    const run = await runFederatedClustering(data, new PlainAggregator(), options);
    expect(run.input_width).toBe(62 + 6 * 13);
    expect(run.selection.map((s) => s.k)).toEqual([2, 3]);
    expect(run.clusters).toHaveLength(run.k);
    expect(run.clusters.reduce((s, c) => s + c.size, 0)).toBe(120);
    for (const h of ['H1', 'H2', 'H3']) expect(run.clusters.reduce((s, c) => s + (c.size_per_hospital[h] ?? 0), 0)).toBe(40);
    for (const c of run.clusters) {
      expect(Object.values(c.risk_mix).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      expect(c.readmission_rate).toBeGreaterThanOrEqual(0);
      expect(c.top_features).toHaveLength(3);
      for (const f of c.top_features) expect(REPORT_FEATURES).toContain(f.feature);
    }
  });

  it('with SecAgg+ the coordinator receives only protocol messages and sums, and reaches the same clusters', async () => {
    const plain = new PlainAggregator(true);
    const secure = new SecAggAggregator({ hospitals: ['H1', 'H2', 'H3'], record: true });
    const a = await runFederatedClustering(data, plain, options);
    const b = await runFederatedClustering(data, secure, options);
    expect(b.k).toBe(a.k);
    expect(b.clusters.map((c) => c.size_per_hospital)).toEqual(a.clusters.map((c) => c.size_per_hospital));
    expect(secure.rounds).toBe(plain.rounds);
    const labels = new Set(secure.received.map((r) => r.label));
    for (const l of ['feature-stats', 'autoencoder/round1', 'moments', 'report']) expect(labels).toContain(l);
    for (const r of secure.received) expect(r.from === 'coordinator' ? r.kind === 'sum' : r.kind === 'secagg-reply').toBe(true);
    // Every hospital vector the plain coordinator saw is absent from what the SecAgg+ coordinator saw.
    const sums = secure.received.filter((r) => r.kind === 'sum').map((r) => r.payload as Float64Array);
    for (const v of plain.received.filter((r) => r.kind === 'vector' && r.label === 'report').map((r) => r.payload as Float64Array)) {
      for (const s of sums) if (s.length === v.length) expect(s.every((x, i) => Math.abs(x - (v[i] as number)) < 1e-6)).toBe(false);
    }
  });
});
