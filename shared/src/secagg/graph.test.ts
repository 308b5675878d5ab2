import { describe, expect, it } from 'vitest';
import { GraphError, defaultThreshold, degreeRange, minimumThreshold, neighbourGraph, type NeighbourGraph } from './graph';

const idsOf = (n: number) => Array.from({ length: n }, (_, i) => `H${i + 1}`);

function connected(graph: NeighbourGraph): boolean {
  const [start] = graph.keys();
  if (start === undefined) return true;
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length > 0) {
    for (const v of graph.get(queue.pop() as string) ?? []) {
      if (!seen.has(v)) {
        seen.add(v);
        queue.push(v);
      }
    }
  }
  return seen.size === graph.size;
}

describe('neighbourGraph', () => {
  it.each([
    { n: 30, k: 8 },
    { n: 30, k: 9 },
    { n: 31, k: 9 },
    { n: 31, k: 8 },
    { n: 10, k: 3 },
    { n: 11, k: 1 },
    { n: 100, k: 14 },
    { n: 5, k: 4 },
    { n: 5, k: 10 },
    { n: 2, k: 1 },
  ])('n = $n, k = $k: symmetric, no self-loops, degrees as degreeRange says, connected for k ≥ 2', ({ n, k }) => {
    const graph = neighbourGraph(idsOf(n), k, 42);
    expect(graph.size).toBe(n);
    const [lo, hi] = degreeRange(n, k);
    const degrees = [...graph.values()].map((ns) => ns.length);
    for (const [u, ns] of graph) {
      expect(ns).not.toContain(u);
      expect(new Set(ns).size).toBe(ns.length);
      expect([...ns].sort()).toEqual(ns); // canonical order
      for (const v of ns) expect(graph.get(v)).toContain(u);
    }
    expect(Math.min(...degrees)).toBe(lo);
    expect(Math.max(...degrees)).toBe(hi);
    // Only with n and k both odd does one client get k + 1.
    expect(degrees.filter((d) => d !== lo).length).toBe(lo === hi ? 0 : 1);
    expect(connected(graph)).toBe(k >= 2 || n <= 2); // k = 1 is a matching
  });

  it('k ≥ n − 1 is the complete graph', () => {
    const graph = neighbourGraph(idsOf(5), 4, 'x');
    for (const [u, ns] of graph) expect(ns).toEqual(idsOf(5).filter((v) => v !== u).sort());
    expect(neighbourGraph(idsOf(5), 99, 'y')).toEqual(graph);
  });

  it('is deterministic per seed, independent of the order of ids, and differs between seeds', () => {
    const ids = idsOf(30);
    const a = neighbourGraph(ids, 8, 7);
    expect(neighbourGraph([...ids].reverse(), 8, 7)).toEqual(a);
    expect(neighbourGraph(ids, 8, 7)).toEqual(a);
    const b = neighbourGraph(ids, 8, 8);
    expect([...b.entries()].some(([u, ns]) => ns.join() !== a.get(u)?.join())).toBe(true);
  });

  it('is not just the ring of sorted ids (the permutation is random)', () => {
    const graph = neighbourGraph(idsOf(30), 2, 1);
    const sortedRing = [...graph.entries()].every(([u, ns]) => {
      const i = idsOf(30).indexOf(u);
      return ns.includes(`H${((i + 1) % 30) + 1}`);
    });
    expect(sortedRing).toBe(false);
  });

  it.each([
    { name: 'duplicate ids', run: () => neighbourGraph(['H1', 'H2', 'H1'], 2, 1), error: /client H1 appears twice/ },
    { name: 'k = 0', run: () => neighbourGraph(['H1', 'H2'], 0, 1), error: /integer ≥ 1, got 0/ },
    { name: 'an empty id', run: () => neighbourGraph(['', 'H2'], 1, 1), error: /empty/ },
  ])('rejects $name', ({ run, error }) => {
    expect(run).toThrow(GraphError);
    expect(run).toThrow(error);
  });
});

describe('thresholds', () => {
  it.each([
    { k: 1, min: 2, def: 2 },
    { k: 2, min: 2, def: 2 },
    { k: 3, min: 3, def: 3 },
    { k: 4, min: 3, def: 3 }, // 5 hospitals, full graph: the seed spec's 3
    { k: 8, min: 5, def: 6 },
    { k: 9, min: 6, def: 7 },
    { k: 29, min: 16, def: 20 },
  ])('k = $k: minimum $min, default $def; a majority of the k + 1 holders and at most k + 1', ({ k, min, def }) => {
    expect(minimumThreshold(k)).toBe(min);
    expect(defaultThreshold(k)).toBe(def);
    expect(2 * def).toBeGreaterThan(k + 1);
    expect(def).toBeLessThanOrEqual(k + 1);
  });
});
