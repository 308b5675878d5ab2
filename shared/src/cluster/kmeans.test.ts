import { describe, expect, it } from 'vitest';
import { Rng } from '../util/random';
import { PlainAggregator, SecAggAggregator } from './aggregator';
import { assignPoints, candidatePool, federatedKMeans, federatedMoments, federatedSilhouette, type Site } from './kmeans';
import { adjustedRandIndex } from './metrics';

/** Four Gaussian blobs in 5-d, dealt unevenly over three hospitals. */
function blobs(): { sites: Site[]; pooled: Site; truth: number[] } {
  const rng = new Rng('cluster-test/blobs');
  const centres = [[0, 0, 0, 0, 0], [6, 0, 0, 0, 0], [0, 6, 0, 0, 0], [0, 0, 6, 3, 0]];
  const sizes = [90, 45, 60];
  const rows: number[][] = [];
  const truth: number[] = [];
  for (let i = 0; i < sizes.reduce((a, b) => a + b, 0); i++) {
    const c = rng.int(0, 3);
    truth.push(c);
    rows.push((centres[c] as number[]).map((m) => m + rng.normal(0, 1)));
  }
  let at = 0;
  const sites = sizes.map((n, h) => {
    const pts = Float64Array.from(rows.slice(at, at + n).flat());
    at += n;
    return { id: `H${h + 1}`, points: pts, n };
  });
  return { sites, pooled: { id: 'pooled', points: Float64Array.from(rows.flat()), n: rows.length }, truth };
}

describe('federated k-means', () => {
  it('equals centralised k-means on the pooled points with the same seeding (Lloyd sums are exact)', async () => {
    const { sites, pooled, truth } = blobs();
    const d = 5;
    const mFed = await federatedMoments(sites, d, new PlainAggregator());
    const mCen = await federatedMoments([pooled], d, new PlainAggregator());
    for (let i = 0; i < d * d; i++) expect(mFed.cov[i]).toBeCloseTo(mCen.cov[i] as number, 10);
    const candidates = candidatePool(mCen, d, 7);
    const fed = await federatedKMeans(sites, d, 4, new PlainAggregator(), { seed: 7, candidates });
    const cen = await federatedKMeans([pooled], d, 4, new PlainAggregator(), { seed: 7, candidates });
    expect(fed.iterations).toBe(cen.iterations);
    expect(Array.from(fed.counts)).toEqual(Array.from(cen.counts));
    for (let i = 0; i < fed.centroids.length; i++) expect(fed.centroids[i]).toBeCloseTo(cen.centroids[i] as number, 9);
    const labels = sites.flatMap((s) => Array.from(assignPoints(s, d, fed.centroids, 4)));
    expect(labels).toEqual(Array.from(assignPoints(pooled, d, cen.centroids, 4)));
    expect(adjustedRandIndex(labels, truth)).toBeGreaterThan(0.95);
    // the simplified silhouette prefers the true k
    const sil = async (k: number) => federatedSilhouette(sites, d, (await federatedKMeans(sites, d, k, new PlainAggregator(), { seed: 7, candidates })).centroids, k, new PlainAggregator());
    const s4 = await sil(4);
    expect(s4).toBeGreaterThan(await sil(2));
    expect(s4).toBeGreaterThan(await sil(6));
  });

  it('through SecAgg+ gives the same clustering, and the coordinator receives only protocol messages and sums', async () => {
    const { sites } = blobs();
    const d = 5;
    const plain = new PlainAggregator(true);
    const secure = new SecAggAggregator({ hospitals: sites.map((s) => s.id), record: true });
    const candidates = candidatePool(await federatedMoments(sites, d, plain), d, 3);
    const a = await federatedKMeans(sites, d, 3, plain, { seed: 3, candidates });
    const b = await federatedKMeans(sites, d, 3, secure, { seed: 3, candidates });
    expect(b.iterations).toBe(a.iterations);
    expect(Array.from(b.counts)).toEqual(Array.from(a.counts));
    for (let i = 0; i < a.centroids.length; i++) expect(b.centroids[i]).toBeCloseTo(a.centroids[i] as number, 7);
    // plain: the coordinator saw every hospital's vector; SecAgg+: replies from hospitals, sums from itself
    expect(plain.received.some((r) => r.kind === 'vector')).toBe(true);
    expect(secure.received.length).toBeGreaterThan(0);
    for (const r of secure.received) {
      if (r.from === 'coordinator') expect(r.kind).toBe('sum');
      else expect(r.kind).toBe('secagg-reply');
    }
    const stages = new Set(secure.received.flatMap((r) => (r.kind === 'secagg-reply' ? [(r.payload as { stage: string }).stage] : [])));
    expect([...stages].sort()).toEqual(['advertise-keys', 'consistency-check', 'masked-input', 'share-keys', 'unmask']);
    // no plain per-hospital vector appears in what the coordinator got: the sums equal the plain totals
    const plainVectors = plain.received.filter((r) => r.kind === 'vector' && r.label.startsWith('k3/')).map((r) => r.payload as Float64Array);
    const sums = secure.received.filter((r) => r.kind === 'sum').map((r) => r.payload as Float64Array);
    expect(sums.length).toBe(secure.rounds);
    for (const v of plainVectors) for (const s of sums) if (s.length === v.length) expect(s.every((x, i) => Math.abs(x - (v[i] as number)) < 1e-6)).toBe(false);
  });
});
