/**
 * The neighbour graph of SecAgg+ (Bell et al. 2020): each client masks its input only with its
 * neighbours and Shamir-shares its secrets only among them, so a client's cost grows with its
 * degree k instead of the number of clients n. With k ≥ n − 1 the graph is complete and the
 * protocol is Bonawitz et al. (2017)'s SecAgg.
 *
 * Construction (deterministic per seed, symmetric, connected for k ≥ 2): the client ids are sorted, shuffled
 * with the project's seeded PRNG, and placed on a ring; each client is joined to the ⌊k/2⌋ nearest
 * on either side (a Harary graph over a random permutation). For odd k a near-perfect matching of
 * diametrically opposite ring positions adds the last edge. So every client has degree exactly k,
 * except when n and k are both odd (n·k odd: no k-regular graph exists), where one client has k + 1.
 * Bell et al. analyse Erdős–Rényi graphs G(n, p); the circulant keeps the same unpredictability of
 * who neighbours whom (the permutation) while making the degrees exact, so no client falls below
 * the threshold by bad luck. The graph is public: the coordinator builds it and tells each client
 * its neighbours.
 *
 * Thresholds. A client's two secrets (self-mask seed b, mask key s) are split among its k
 * neighbours and itself, k + 1 holders (protocol.ts). Two constraints:
 * - t ≤ k + 1, or nothing can be reconstructed, and every dropout beyond k + 1 − t aborts;
 * - t > (k + 1)/2 (`minimumThreshold`): an honest holder reveals either b or s of a client, never
 *   both, so a coordinator that tells some holders "j survived" and others "j dropped" cannot
 *   collect t shares of each from disjoint honest holders (it would need 2t ≤ k + 1 of them).
 * `defaultThreshold(k)` = max(⌊2k/3⌋ + 1, minimumThreshold(k)): Bonawitz et al.'s t > 2n/3 for an
 * active adversary, applied to a neighbourhood. It is the seed spec's 3 for 4 and 5 hospitals
 * (k = 3, 4), 2 for 3 hospitals (k = 2: one dropout tolerated), 6 for k = 8, 20 for the full graph
 * of 30 hospitals; a round then survives up to k + 1 − t dropouts per neighbourhood.
 */
import { Rng } from '../util/random';

export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

/** Each client's neighbours, in canonical (sorted) order. Symmetric: v ∈ N(u) ⇔ u ∈ N(v). */
export type NeighbourGraph = ReadonlyMap<string, readonly string[]>;

function checkDegree(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new GraphError(`the number of neighbours k must be an integer ≥ 1, got ${k}`);
}

/** The degrees `neighbourGraph` gives n clients with parameter k: [min, max]. */
export function degreeRange(n: number, k: number): [number, number] {
  if (!Number.isInteger(n) || n < 1) throw new GraphError(`the number of clients must be an integer ≥ 1, got ${n}`);
  checkDegree(k);
  if (k >= n - 1) return [n - 1, n - 1];
  return k % 2 === 1 && n % 2 === 1 ? [k, k + 1] : [k, k];
}

/** The least threshold at which no client's b and s can both be rebuilt from honest holders: ⌊(k + 1)/2⌋ + 1. */
export function minimumThreshold(k: number): number {
  checkDegree(k);
  return Math.floor((k + 1) / 2) + 1;
}

/** max(⌊2k/3⌋ + 1, ⌊(k + 1)/2⌋ + 1) for a client with k neighbours (and k + 1 share holders). */
export function defaultThreshold(k: number): number {
  checkDegree(k);
  return Math.max(Math.floor((2 * k) / 3) + 1, minimumThreshold(k));
}

/**
 * The neighbour graph of `clients` with degree k, deterministic in (the set of ids, k, seed):
 * the order in which ids are given does not matter. k ≥ n − 1 gives the complete graph.
 */
export function neighbourGraph(clients: readonly string[], k: number, seed: string | number): NeighbourGraph {
  checkDegree(k);
  const ids = [...clients].sort();
  for (let i = 1; i < ids.length; i++) if (ids[i] === ids[i - 1]) throw new GraphError(`client ${ids[i]} appears twice`);
  if (ids.some((id) => id.length === 0)) throw new GraphError('a client id is empty');
  const n = ids.length;
  const edges = new Map<string, Set<string>>(ids.map((id) => [id, new Set<string>()]));
  const join = (a: string, b: string) => {
    edges.get(a)?.add(b);
    edges.get(b)?.add(a);
  };
  if (k >= n - 1) {
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) join(ids[i] as string, ids[j] as string);
  } else {
    // Fisher–Yates with the seeded PRNG: the ring order.
    const rng = new Rng(`fedcare/secagg/graph/${seed}`);
    const ring = ids.slice();
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [ring[i], ring[j]] = [ring[j] as string, ring[i] as string];
    }
    const at = (p: number) => ring[((p % n) + n) % n] as string;
    const half = Math.floor(k / 2);
    for (let p = 0; p < n; p++) for (let d = 1; d <= half; d++) join(at(p), at(p + d));
    if (k % 2 === 1) {
      // k < n − 1 and k odd ⇒ m = ⌊n/2⌋ > ⌊k/2⌋: these edges are new.
      const m = Math.floor(n / 2);
      for (let p = 0; p < m; p++) join(at(p), at(p + m));
      if (n % 2 === 1) join(at(n - 1), at(m - 1)); // the one unmatched position; at(m − 1) gets k + 1
    }
  }
  return new Map(ids.map((id) => [id, [...(edges.get(id) as Set<string>)].sort()]));
}
