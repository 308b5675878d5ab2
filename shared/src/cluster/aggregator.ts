/**
 * How the clustering coordinator learns Σ over hospitals of a vector each hospital computes.
 *
 * - `PlainAggregator`: each hospital sends its vector; the coordinator adds them (it sees every
 *   hospital's vector).
 * - `SecAggAggregator`: every sum is one full round of SecAgg+ (Bonawitz et al. 2017, "Practical
 *   secure aggregation for privacy-preserving machine learning", CCS; Bell et al. 2020) driven in
 *   memory: a `SecAggClient` per hospital, a `SecAggServer` at the coordinator, the five stages
 *   (advertise-keys, share-keys, masked-input, consistency-check, unmask) carried as plain messages.
 *   Values are encoded in fixed point (exact sums, fixed-point.ts), so the coordinator gets the sum
 *   to within 2^−(F+1) per hospital and per coordinate, and sees only masked vectors and the sum.
 *
 * Both record what reached the coordinator (`received`), so a test can check what it saw.
 */
import { generateIdentityKeyPair, SecAggClient, SecAggServer, secAggConfig, type KeyPair, type SecAggReply } from '../secagg';

/** One message as the coordinator received it. */
export interface Received {
  readonly label: string;
  readonly from: string;
  /** A hospital's plain vector (plain mode), a SecAgg+ reply (secagg mode), or the unmasked sum ('coordinator'). */
  readonly kind: 'vector' | 'secagg-reply' | 'sum';
  readonly payload: Float64Array | SecAggReply;
}

export interface Aggregator {
  readonly mode: 'none' | 'secagg';
  /** Σ of the hospitals' vectors (all of the same length), as the coordinator learns it. */
  sum(label: string, inputs: ReadonlyMap<string, Float64Array>): Promise<Float64Array>;
  /** What the coordinator received, in order (kept only when `record` was set). */
  readonly received: Received[];
  /** Rounds of aggregation run so far. */
  readonly rounds: number;
}

function checkInputs(label: string, inputs: ReadonlyMap<string, Float64Array>): number {
  const lengths = new Set([...inputs.values()].map((v) => v.length));
  if (inputs.size === 0 || lengths.size !== 1) throw new Error(`aggregate ${label}: needs vectors of one length from at least one hospital`);
  for (const [h, v] of inputs) if (!v.every(Number.isFinite)) throw new Error(`aggregate ${label}: hospital ${h} sent a non-finite value`);
  return [...lengths][0] as number;
}

export class PlainAggregator implements Aggregator {
  readonly mode = 'none' as const;
  readonly received: Received[] = [];
  rounds = 0;
  constructor(private readonly record = false) {}

  sum(label: string, inputs: ReadonlyMap<string, Float64Array>): Promise<Float64Array> {
    const length = checkInputs(label, inputs);
    const out = new Float64Array(length);
    for (const [h, v] of inputs) {
      if (this.record) this.received.push({ label, from: h, kind: 'vector', payload: Float64Array.from(v) });
      for (let i = 0; i < length; i++) out[i] = (out[i] as number) + (v[i] as number);
    }
    this.rounds++;
    return Promise.resolve(out);
  }
}

export interface SecAggAggregatorOptions {
  readonly hospitals: readonly string[];
  readonly runId?: string;
  /** Fixed-point fraction bits F (default 32: 2.3·10^−10 per hospital and coordinate). */
  readonly fractionBits?: number;
  /** Keep every reply the coordinator receives (tests; costs memory). */
  readonly record?: boolean;
  /** k of SecAgg+ (neighbours per hospital); default n − 1, the complete graph. */
  readonly neighbours?: number;
}

export class SecAggAggregator implements Aggregator {
  readonly mode = 'secagg' as const;
  readonly received: Received[] = [];
  rounds = 0;
  private readonly hospitals: readonly string[];
  private readonly runId: string;
  private readonly fractionBits: number;
  private readonly record: boolean;
  private readonly neighbours: number | undefined;
  private identities: Map<string, KeyPair> | undefined;

  constructor(opts: SecAggAggregatorOptions) {
    if (opts.hospitals.length < 2) throw new Error('secure aggregation needs at least 2 hospitals');
    this.hospitals = [...opts.hospitals].sort();
    this.runId = opts.runId ?? 'cluster';
    this.fractionBits = opts.fractionBits ?? 32;
    this.record = opts.record ?? false;
    this.neighbours = opts.neighbours;
  }

  /** Long-lived identity keys, one per hospital (as each hospital would hold its own). */
  private async identityOf(h: string): Promise<KeyPair> {
    this.identities ??= new Map();
    let kp = this.identities.get(h);
    if (!kp) {
      kp = await generateIdentityKeyPair('Ed25519');
      this.identities.set(h, kp);
    }
    return kp;
  }

  async sum(label: string, inputs: ReadonlyMap<string, Float64Array>): Promise<Float64Array> {
    const length = checkInputs(label, inputs);
    const ids = this.hospitals;
    if (ids.some((h) => !inputs.has(h)) || inputs.size !== ids.length) throw new Error(`aggregate ${label}: expected vectors from ${ids.join(', ')}`);
    const round = ++this.rounds;
    const config = secAggConfig({ clients: ids.length, vectorLength: length, clip: 1, maxWeight: 1, fixedPointFractionBits: this.fractionBits, ...(this.neighbours ? { neighbours: this.neighbours } : {}) });
    const server = new SecAggServer({ runId: this.runId, round, config, clients: ids, seed: `${this.runId}/${label}` });
    const clients = new Map<string, SecAggClient>();
    for (const h of ids) clients.set(h, new SecAggClient({ clientId: h, identity: await this.identityOf(h) }));
    const got = (from: string, reply: SecAggReply) => {
      if (this.record) this.received.push({ label, from, kind: 'secagg-reply', payload: reply });
    };
    const client = (h: string) => clients.get(h) as SecAggClient;

    const ad = server.advertiseRequest();
    for (const h of ids) {
      const reply = await client(h).advertise(ad);
      got(h, reply);
      await server.receiveAdvertise(h, reply);
    }
    for (const [h, req] of server.shareKeysRequests()) {
      const reply = await client(h).shareKeys(req);
      got(h, reply);
      await server.receiveShareKeys(h, reply);
    }
    for (const [h, req] of server.maskedInputRequests()) {
      const reply = await client(h).maskedInput(req, inputs.get(h) as Float64Array, 1);
      got(h, reply);
      await server.receiveMaskedInput(h, reply);
    }
    for (const [h, req] of server.consistencyCheckRequests()) {
      const reply = await client(h).consistencyCheck(req);
      got(h, reply);
      await server.receiveConsistencyCheck(h, reply);
    }
    for (const [h, req] of server.unmaskRequests()) {
      const reply = await client(h).unmask(req);
      got(h, reply);
      await server.receiveUnmask(h, reply);
    }
    const result = await server.result();
    if (this.record) this.received.push({ label, from: 'coordinator', kind: 'sum', payload: Float64Array.from(result.sum) });
    return Float64Array.from(result.sum);
  }
}
