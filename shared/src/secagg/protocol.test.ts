import { describe, expect, it } from 'vitest';
import { CHI2_255_P001, chiSquareOfBytes } from '../testing/chi-square';
import { seededRandom } from '../util/csprng';
import { Rng } from '../util/random';
import { KeySignatureError, SecAggCryptoError, agree, exportIdentityPublicKey, generateIdentityKeyPair, importPrivateKey, importPublicKey, signKeys, signShare, type KeyPair, type RoundKeyPairs } from './keys';
import {
  PinMismatchError,
  RevealRefusedError,
  SECAGG_STAGES,
  SecAggAbortError,
  SecAggClient,
  SecAggProtocolError,
  SecAggServer,
  ENCODED_SHARE_BYTES,
  SEALED_SHARES_BYTES,
  bytesToWords,
  checkConfig,
  encodeInput,
  quantizationOf,
  secAggConfig,
  wordsToBytes,
  type Pins,
  type MaskedInputRequest,
  type SecAggConfig,
  type SecAggReply,
  type SecAggResult,
  type SecAggStage,
  type ShareKeysRequest,
  type UnmaskReply,
  type UnmaskRequest,
} from './protocol';
import { neighbourGraph } from './graph';
import { quantizationStep, sumErrorBound } from './quantize';
import { fixedPointErrorBound } from './fixed-point';
import type { RandomBytes } from './shamir';

const RUN = 'run-42';
const ROUND = 7;
/** Clip range R and largest weight W of the tests. */
const R = 0.5;
const W = 1000;
const STAGE_INDEX: Record<SecAggStage, number> = { 'advertise-keys': 0, 'share-keys': 1, 'masked-input': 2, 'consistency-check': 3, unmask: 4 };
const idsOf = (n: number) => Array.from({ length: n }, (_, i) => `H${i + 1}`);

/** Reproducible "random" bytes (production uses the CSPRNG). */
function seededBytes(label: string): RandomBytes {
  const rng = new Rng(`protocol-test/${label}`);
  return (n) => Uint8Array.from({ length: n }, () => rng.nextU32() & 0xff);
}

const BASE_POINT = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0));
async function keyPairFrom(raw: Uint8Array, extractable: boolean): Promise<KeyPair> {
  const privateKey = await importPrivateKey(raw, extractable);
  return { privateKey, publicKey: await importPublicKey(await agree(privateKey, BASE_POINT)) };
}
/** Deterministic round keys, so masked vectors (and their χ²) are the same on every run. */
function seededKeys(label: string): () => Promise<RoundKeyPairs> {
  const bytes = seededBytes(`keys/${label}`);
  return async () => ({ c: await keyPairFrom(bytes(32), false), s: await keyPairFrom(bytes(32), true) });
}

const identityCache = new Map<string, Promise<KeyPair>>();
function identityOf(id: string): Promise<KeyPair> {
  let kp = identityCache.get(id);
  if (kp === undefined) {
    kp = generateIdentityKeyPair('Ed25519');
    identityCache.set(id, kp);
  }
  return kp;
}

/** What socket.io delivers in Node: every binary field as a fresh Buffer of its bytes. */
function overWire<T>(msg: T): T {
  const copy = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v)) return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    if (Array.isArray(v)) return v.map(copy);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
    return v;
  };
  return copy(msg) as T;
}

interface Options {
  readonly n: number;
  readonly L: number;
  readonly k?: number;
  readonly t?: number;
  readonly drops?: Readonly<Record<string, SecAggStage | undefined>>;
  /** Seeded keys, seeds and rounding. */
  readonly deterministic?: boolean;
  /** Carry every message as socket.io would (Buffers). */
  readonly wire?: boolean;
  readonly pins?: (id: string) => Pins | undefined;
  readonly seed?: number;
  /** Exact sums in fixed point (the preprocessing statistics' encoding): unclipped values of wildly different magnitudes. */
  readonly fixedPoint?: boolean;
}

/** n simulated hospitals and a server in one process; every reply the server receives is kept. */
class Round {
  readonly ids: string[];
  readonly received: SecAggReply[] = [];

  private constructor(
    readonly opts: Options,
    readonly cfg: SecAggConfig,
    readonly server: SecAggServer,
    readonly clients: Map<string, SecAggClient>,
    readonly updates: Map<string, Float32Array | Float64Array>,
    readonly weights: Map<string, number>,
  ) {
    this.ids = idsOf(opts.n);
  }

  static async create(opts: Options): Promise<Round> {
    const ids = idsOf(opts.n);
    const cfg = secAggConfig({
      clients: opts.n,
      vectorLength: opts.L,
      clip: R,
      maxWeight: W,
      ...(opts.k === undefined ? {} : { neighbours: opts.k }),
      ...(opts.t === undefined ? {} : { threshold: opts.t }),
      ...(opts.fixedPoint ? { fixedPointFractionBits: 24 } : {}),
    });
    const server = new SecAggServer({ runId: RUN, round: ROUND, config: cfg, clients: ids, seed: opts.seed ?? 11 });
    const clients = new Map<string, SecAggClient>();
    const updates = new Map<string, Float32Array | Float64Array>();
    const weights = new Map<string, number>();
    for (const [i, id] of ids.entries()) {
      const pins = opts.pins?.(id);
      clients.set(
        id,
        new SecAggClient({
          clientId: id,
          identity: await identityOf(id),
          ...(pins === undefined ? {} : { pins }),
          ...(opts.deterministic ? { random: seededBytes(`b/${id}`), quantizeRandom: seededRandom(`q/${id}`), generateKeys: seededKeys(id) } : {}),
        }),
      );
      const rng = new Rng(`update/${id}/${opts.L}`);
      updates.set(
        id,
        opts.fixedPoint
          ? // Counts, sums and sums of squares: 10^-3 … 10^12, both signs.
            Float64Array.from({ length: opts.L }, (_, i) => rng.uniform(-1, 1) * 10 ** ((i % 16) - 3))
          : // Some values beyond ±R, to exercise clipping.
            Float32Array.from({ length: opts.L }, () => rng.uniform(-1.5 * R, 1.5 * R)),
      );
      weights.set(id, [120, 431, W, 57, 800][i % 5] as number);
    }
    return new Round(opts, cfg, server, clients, updates, weights);
  }

  alive(id: string, stage: SecAggStage): boolean {
    const drop = this.opts.drops?.[id];
    return drop === undefined || STAGE_INDEX[stage] < STAGE_INDEX[drop];
  }

  private send<T>(msg: T): T {
    return this.opts.wire ? overWire(msg) : msg;
  }

  private async deliver(stage: SecAggStage, requests: ReadonlyMap<string, unknown>, answer: (client: SecAggClient, id: string, req: unknown) => Promise<SecAggReply>, receive: (id: string, reply: unknown) => Promise<void>): Promise<void> {
    for (const [id, req] of requests) {
      if (!this.alive(id, stage)) continue;
      const reply = await answer(this.clients.get(id) as SecAggClient, id, this.send(req));
      this.received.push(reply);
      await (receive(id, this.send(reply)));
    }
  }

  async advertise(): Promise<void> {
    const req = this.server.advertiseRequest();
    await this.deliver(
      'advertise-keys',
      new Map(this.ids.map((id) => [id, req])),
      (c, _id, r) => c.advertise(r),
      (id, reply) => this.server.receiveAdvertise(id, reply),
    );
  }

  async shareKeysRequests(): Promise<Map<string, ShareKeysRequest>> {
    return this.server.shareKeysRequests();
  }

  async shareKeys(requests?: Map<string, ShareKeysRequest>): Promise<void> {
    await this.deliver(
      'share-keys',
      requests ?? (await this.shareKeysRequests()),
      (c, _id, r) => c.shareKeys(r),
      (id, reply) => this.server.receiveShareKeys(id, reply),
    );
  }

  async maskedInput(): Promise<void> {
    const requests = this.server.maskedInputRequests();
    await this.deliver(
      'masked-input',
      requests,
      (c, id, r) => c.maskedInput(r, this.updates.get(id) as Float32Array | Float64Array, this.weights.get(id) as number),
      (id, reply) => this.server.receiveMaskedInput(id, reply),
    );
  }

  async consistencyCheck(): Promise<void> {
    await this.deliver(
      'consistency-check',
      this.server.consistencyCheckRequests(),
      (c, _id, r) => c.consistencyCheck(r),
      (id, reply) => this.server.receiveConsistencyCheck(id, reply),
    );
  }

  async unmaskRequests(): Promise<Map<string, UnmaskRequest>> {
    return this.server.unmaskRequests();
  }

  async unmask(requests?: Map<string, UnmaskRequest>): Promise<SecAggResult> {
    await this.deliver(
      'unmask',
      requests ?? (await this.unmaskRequests()),
      (c, _id, r) => c.unmask(r),
      (id, reply) => this.server.receiveUnmask(id, reply),
    );
    return this.server.result();
  }

  async run(): Promise<SecAggResult> {
    await this.advertise();
    await this.shareKeys();
    await this.maskedInput();
    await this.consistencyCheck();
    return this.unmask();
  }

  /** Σ w_i·clip(x_i) over `survivors` (unclipped with fixed point), in float64. */
  expectedSum(survivors: readonly string[]): Float64Array {
    const out = new Float64Array(this.opts.L);
    const clip = (v: number) => (this.opts.fixedPoint ? v : Math.min(R, Math.max(-R, v)));
    for (const id of survivors) {
      const x = this.updates.get(id) as Float32Array | Float64Array;
      const w = this.weights.get(id) as number;
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + w * clip(x[i] as number);
    }
    return out;
  }

  /** Σ |w_i·x_i|: the float64 reference sum is itself only good to a few ε of this. */
  magnitude(survivors: readonly string[], i: number): number {
    return survivors.reduce((s, id) => s + Math.abs((this.weights.get(id) as number) * ((this.updates.get(id) as Float32Array | Float64Array)[i] as number)), 0);
  }

  /** The clients that sent a masked input under this round's drops. */
  get maskedSurvivors(): string[] {
    return this.ids.filter((id) => this.alive(id, 'masked-input'));
  }

  checkResult(result: SecAggResult): void {
    const survivors = this.maskedSurvivors;
    expect(result.survivors).toEqual([...survivors].sort());
    expect(result.totalWeight).toBe(survivors.reduce((s, id) => s + (this.weights.get(id) as number), 0));
    const expected = this.expectedSum(survivors);
    if (this.cfg.fixed_point) {
      expect(result.errorBound).toBe(fixedPointErrorBound(this.cfg.fixed_point, survivors.length));
      for (let i = 0; i < expected.length; i++) {
        const slack = (survivors.length + 1) * Number.EPSILON * this.magnitude(survivors, i);
        expect(Math.abs((result.sum[i] as number) - (expected[i] as number)), `value ${i}`).toBeLessThanOrEqual(result.errorBound + slack);
      }
    } else {
      expect(result.errorBound).toBe(sumErrorBound(quantizationOf(this.cfg), survivors.length));
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs((result.sum[i] as number) - (expected[i] as number)));
      expect(worst).toBeLessThan(result.errorBound);
    }
    const drops = Object.entries(this.opts.drops ?? {}).flatMap(([id, stage]) => (stage === undefined ? [] : [[id, stage] as const]));
    expect(result.dropped).toEqual(
      drops
        .map(([client_id, stage]) => ({ client_id, stage }))
        .sort((a, b) => STAGE_INDEX[a.stage] - STAGE_INDEX[b.stage] || (a.client_id < b.client_id ? -1 : 1)),
    );
    expect(result.recovered).toEqual(
      drops
        .filter(([, stage]) => stage === 'masked-input')
        .map(([id]) => id)
        .sort(),
    );
  }
}

const advertiseRequestOf = (config: SecAggConfig) => ({ stage: 'advertise-keys', run_id: RUN, round: ROUND, config }) as const;

describe('SecAgg+ round, 5 hospitals, full graph, t = 3', () => {
  it('no dropout: the weighted sum within n·Δ, the total weight exactly (messages carried as Buffers)', async () => {
    const round = await Round.create({ n: 5, L: 3000, wire: true });
    expect(round.cfg).toMatchObject({ threshold: 3, neighbours: 4, bits: 29, max_weight: W, clip: R });
    const result = await round.run();
    round.checkResult(result);
    // The bound is n·Δ with Δ of the W·R grid: tiny next to the sum.
    expect(result.errorBound).toBeCloseTo(5 * quantizationStep({ clip: W * R, bits: 29 }), 15);
    expect(result.errorBound).toBeLessThan(1e-5);
  });

  it.each(SECAGG_STAGES)('one hospital (H3) drops at %s: the round completes with the survivors’ sum', async (stage) => {
    const round = await Round.create({ n: 5, L: 2000, drops: { H3: stage } });
    round.checkResult(await round.run());
  });

  it.each([
    { H2: 'advertise-keys', H4: 'advertise-keys' },
    { H2: 'share-keys', H4: 'share-keys' },
    { H2: 'masked-input', H4: 'masked-input' },
    { H2: 'unmask', H4: 'unmask' },
    { H1: 'advertise-keys', H5: 'share-keys' },
    { H1: 'advertise-keys', H5: 'masked-input' },
    { H1: 'advertise-keys', H5: 'unmask' },
    { H3: 'share-keys', H2: 'masked-input' },
    { H3: 'share-keys', H2: 'unmask' },
    { H4: 'masked-input', H5: 'unmask' },
  ] satisfies Record<string, SecAggStage>[])('two drop (%o): the round completes with the survivors’ sum', async (drops) => {
    const round = await Round.create({ n: 5, L: 1500, drops });
    round.checkResult(await round.run());
  });

  it.each([
    {
      name: 'three at advertise-keys',
      drops: { H1: 'advertise-keys', H2: 'advertise-keys', H3: 'advertise-keys' },
      error: /aborted: client H4 has 1 neighbours after 3 dropped at advertise-keys: 2 share holders, threshold 3/,
      clientId: 'H4',
    },
    {
      name: 'three at share-keys',
      drops: { H1: 'share-keys', H2: 'share-keys', H5: 'share-keys' },
      error: /aborted: client H3 has 1 neighbours left after share-keys \(H4\): 2 share holders of its secrets, threshold 3/,
      clientId: 'H3',
    },
    {
      name: 'three at masked-input',
      drops: { H1: 'masked-input', H2: 'masked-input', H3: 'masked-input' },
      error: /aborted: survivor H4 has 1 surviving neighbours: 2 holders of its self-mask shares, threshold 3/,
      clientId: 'H4',
    },
    {
      name: 'three at unmask',
      drops: { H1: 'unmask', H2: 'unmask', H3: 'unmask' },
      error: /aborted: cannot rebuild the self mask of survivor H1: 2 of its 5 share holders answered unmask, threshold 3/,
      clientId: 'H1',
    },
    {
      name: 'two at masked-input, one at unmask',
      drops: { H1: 'masked-input', H2: 'masked-input', H3: 'unmask' },
      // H3's self mask: holders H3, H4, H5 (H1, H2 never got past masked input), only H4 and H5 answer.
      error: /aborted: cannot rebuild the self mask of survivor H3: 2 of its 3 share holders answered unmask, threshold 3/,
      clientId: 'H3',
    },
  ] satisfies { name: string; drops: Record<string, SecAggStage>; error: RegExp; clientId: string }[])(
    'aborts with a clear error when $name leave some secret with fewer than t shares',
    async ({ drops, error, clientId }) => {
      const round = await Round.create({ n: 5, L: 500, drops });
      const run = round.run();
      await expect(run).rejects.toThrow(SecAggAbortError);
      await expect(run).rejects.toThrow(error);
      await expect(run).rejects.toMatchObject({ clientId });
      expect(round.server.stage).toBe('aborted');
    },
  );
});

describe('fixed point: exact sums of statistics (the preprocessing stage’s encoding)', () => {
  it.each([undefined, 'masked-input', 'unmask'] as const)('5 hospitals, H2 lost at %s: sums of values from 10^-3 to 10^12 come out exact but for rounding', async (stage) => {
    const round = await Round.create({ n: 5, L: 400, fixedPoint: true, wire: true, drops: stage ? { H2: stage } : {} });
    expect(round.cfg.fixed_point).toEqual({ fraction_bits: 24, bits: 29, limbs: 3 });
    const result = await round.run();
    round.checkResult(result);
    // 2^-25 per client: far finer than the 10^-3 the smallest statistics need, and nothing was clipped.
    expect(result.errorBound).toBeLessThan(2e-7);
    const received = round.received.filter((r) => r.stage === 'masked-input');
    expect(received.every((r) => r.stage === 'masked-input' && r.masked.length === 400 * 3 + 1)).toBe(true);
  });

  it('a value beyond the fixed-point range is refused by its client, naming it', async () => {
    const round = await Round.create({ n: 3, L: 4, fixedPoint: true });
    (round.updates.get('H1') as Float64Array)[2] = 2 ** 70;
    await round.advertise();
    await round.shareKeys();
    await expect(round.maskedInput()).rejects.toThrow(/the input cannot be encoded: value 2 is .* beyond the fixed-point range ±2\^/);
  });
});

describe('the server’s view', () => {
  it('every masked vector it receives looks uniform (χ², p > 0.001) and is not the quantised input; nothing else it receives is vector-sized', async () => {
    const L = 65_536; // 256 words per histogram bin
    const round = await Round.create({ n: 5, L, deterministic: true, drops: { H5: 'masked-input' } });
    const result = await round.run();
    round.checkResult(result);
    const masked = round.received.flatMap((m) => (m.stage === 'masked-input' ? [m] : []));
    expect(masked.map((m) => m.client_id)).toEqual(['H1', 'H2', 'H3', 'H4']);
    const stats = [];
    for (const m of masked) {
      const id = m.client_id;
      // The same quantisation the client did (same seeded rounding): what must never reach the server.
      const input = encodeInput(round.updates.get(id) as Float32Array, round.weights.get(id) as number, round.cfg, seededRandom(`q/${id}`));
      const top = chiSquareOfBytes(m.masked, (w) => w >>> 24);
      const low = chiSquareOfBytes(m.masked, (w) => w & 0xff);
      const differ = m.masked.filter((w, i) => w !== input[i]).length / m.masked.length;
      stats.push({ id, chi2_top: +top.toFixed(1), chi2_low: +low.toFixed(1), differ: +differ.toFixed(6), chi2_top_of_input: Math.round(chiSquareOfBytes(input, (w) => w >>> 24)) });
      expect(top).toBeLessThan(CHI2_255_P001);
      expect(low).toBeLessThan(CHI2_255_P001);
      expect(differ).toBeGreaterThanOrEqual(0.999);
      expect(chiSquareOfBytes(input, (w) => w >>> 24)).toBeGreaterThan(1e4); // the input itself is far from uniform
    }
    console.log(JSON.stringify({ test: 'server-view-chi-square', words: L + 1, critical_p001: CHI2_255_P001, clients: stats }));

    // Structurally: the only vector-sized data the server ever received are the masked vectors,
    // and none of them equals any client's input; everything else is keys, signatures, shares.
    const inputs = round.ids.map((id) => encodeInput(round.updates.get(id) as Float32Array, round.weights.get(id) as number, round.cfg, seededRandom(`q/${id}`)));
    const binaries: ArrayBufferView[] = [];
    const walk = (v: unknown): void => {
      if (ArrayBuffer.isView(v)) binaries.push(v);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
    };
    round.received.forEach(walk);
    const large = binaries.filter((b) => b.byteLength > 1024);
    expect(large.length).toBe(masked.length);
    for (const b of large) {
      const words = bytesToWords(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
      for (const input of inputs) expect(words.filter((w, i) => w === input[i]).length).toBeLessThan(L / 1000);
    }
    // The largest small item is a sealed pair of signed shares (IV, 2 × (share + dealer signature), tag).
    expect(Math.max(...binaries.filter((b) => b.byteLength <= 1024).map((b) => b.byteLength))).toBeLessThanOrEqual(SEALED_SHARES_BYTES);
  });
});

describe('key substitution by the server', () => {
  it.each(['c_pk', 's_pk'] as const)('a swapped %s of H2 in share-keys makes every neighbour of H2 throw KeySignatureError naming H2', async (field) => {
    const round = await Round.create({ n: 5, L: 100 });
    await round.advertise();
    const requests = await round.shareKeysRequests();
    const attacker = await keyPairFrom(seededBytes('attacker')(32), true);
    const forged = new Uint8Array(await crypto.subtle.exportKey('raw', attacker.publicKey));
    for (const req of requests.values()) {
      (req as { neighbours: ShareKeysRequest['neighbours'] }).neighbours = req.neighbours.map((ad) => (ad.client_id === 'H2' ? { ...ad, [field]: forged } : ad));
    }
    for (const id of ['H1', 'H3', 'H4', 'H5']) {
      const attempt = (round.clients.get(id) as SecAggClient).shareKeys(requests.get(id));
      await expect(attempt).rejects.toThrow(KeySignatureError);
      await expect(attempt).rejects.toMatchObject({ clientId: 'H2', message: expect.stringMatching(/advertised keys of client H2 do not carry its identity signature/) });
    }
    // The client has aborted its round: later stages refuse too.
    await expect((round.clients.get('H1') as SecAggClient).maskedInput({}, new Float32Array(100), 1)).rejects.toThrow(KeySignatureError);
  });

  async function substituteIdentity(round: Round): Promise<{ requests: Map<string, ShareKeysRequest>; attackerPk: Uint8Array }> {
    await round.advertise();
    const requests = await round.shareKeysRequests();
    // A server that re-signs H2's keys (or its own) with an identity key of its own.
    const attacker = await generateIdentityKeyPair('Ed25519');
    const attackerPk = await exportIdentityPublicKey(attacker.publicKey);
    for (const req of requests.values()) {
      const neighbours = await Promise.all(
        req.neighbours.map(async (ad) =>
          ad.client_id !== 'H2' ? ad : { ...ad, identity_pk: attackerPk, signature: await signKeys(attacker.privateKey, { run_id: RUN, round: ROUND, client_id: 'H2', c_pk: ad.c_pk, s_pk: ad.s_pk }) },
        ),
      );
      (req as { neighbours: ShareKeysRequest['neighbours'] }).neighbours = neighbours;
    }
    return { requests, attackerPk };
  }

  it('a substituted identity key of a pinned hospital is a PinMismatchError naming it', async () => {
    const pinned = new Map<string, Uint8Array>();
    for (const id of idsOf(5)) pinned.set(id, await exportIdentityPublicKey((await identityOf(id)).publicKey));
    const round = await Round.create({ n: 5, L: 100, pins: () => pinned });
    const { requests } = await substituteIdentity(round);
    const attempt = (round.clients.get('H1') as SecAggClient).shareKeys(requests.get('H1'));
    await expect(attempt).rejects.toThrow(PinMismatchError);
    await expect(attempt).rejects.toMatchObject({ clientId: 'H2', message: expect.stringMatching(/identity key relayed for hospital H2 .* differs from the one pinned for it/) });
  });

  it('without a pin the substituted identity is trusted on first use (the documented gap) and reported in firstSeen; requirePins refuses it', async () => {
    const round = await Round.create({ n: 5, L: 100 });
    const { requests, attackerPk } = await substituteIdentity(round);
    const h1 = round.clients.get('H1') as SecAggClient;
    await h1.shareKeys(requests.get('H1'));
    expect(h1.firstSeen.get('H2')).toEqual(attackerPk);
    expect(h1.firstSeen.get('H3')).toEqual(await exportIdentityPublicKey((await identityOf('H3')).publicKey));

    const strict = new SecAggClient({ clientId: 'H1', identity: await identityOf('H1'), requirePins: true, pins: {} });
    await strict.advertise(advertiseRequestOf(round.cfg));
    await expect(strict.shareKeys(requests.get('H1'))).rejects.toThrow(/no identity key is pinned for hospital H\d and pins are required/);
  });

  it('the server rejects an advertisement whose signature does not match (KeySignatureError), or from another identity than registered', async () => {
    const cfg = secAggConfig({ clients: 3, vectorLength: 10, clip: R, maxWeight: W });
    const registered = new Map([['H1', await exportIdentityPublicKey((await identityOf('H1')).publicKey)]]);
    const server = new SecAggServer({ runId: RUN, round: ROUND, config: cfg, clients: idsOf(3), seed: 1, identities: registered });
    const reply = await new SecAggClient({ clientId: 'H2', identity: await identityOf('H2') }).advertise(server.advertiseRequest());
    await expect(server.receiveAdvertise('H2', { ...reply, s_pk: reply.c_pk })).rejects.toThrow(KeySignatureError);
    const h1 = await new SecAggClient({ clientId: 'H1', identity: await identityOf('H3') }).advertise(server.advertiseRequest());
    await expect(server.receiveAdvertise('H1', h1)).rejects.toThrow(/H1 advertised with identity key .* not its registered/);
    await server.receiveAdvertise('H2', reply); // the genuine one is still welcome
  });
});

describe('consistency check (Bonawitz et al. 2017, round 4): one survivor set for everyone', () => {
  /** A round up to its consistency check, no drops: every client has sent its masked input. */
  async function toCheck(): Promise<Round> {
    const round = await Round.create({ n: 5, L: 50 });
    await round.advertise();
    await round.shareKeys();
    await round.maskedInput();
    return round;
  }
  const ALL = ['H1', 'H2', 'H3', 'H4', 'H5'];
  const check = (survivors: string[]) => ({ stage: 'consistency-check', run_id: RUN, round: ROUND, survivors }) as const;

  it('a server that tells H1 and H2 that H3 dropped (and the others that it survived) cannot get H3’s mask key from them', async () => {
    const round = await toCheck();
    const client = (id: string) => round.clients.get(id) as SecAggClient;
    // The lie: H3 "dropped" for H1 and H2; the truth for H3, H4, H5.
    const without = ALL.filter((j) => j !== 'H3');
    const signatures = new Map<string, Uint8Array>();
    for (const id of ALL) signatures.set(id, (await client(id).consistencyCheck(check(id === 'H1' || id === 'H2' ? without : ALL))).signature);
    const split = { stage: 'unmask', run_id: RUN, round: ROUND, survivors: ['H1', 'H2', 'H4', 'H5'], dropped: ['H3'] } as const;
    const sig = (ids: string[]) => ids.map((j) => ({ client_id: j, signature: signatures.get(j) as Uint8Array }));
    // With the others' signatures (over the true set): they do not verify over H1's set.
    const forged = client('H1').unmask({ ...split, signatures: sig(['H1', 'H2', 'H4']) });
    await expect(forged).rejects.toThrow(SecAggAbortError);
    await expect(forged).rejects.toThrow(/the consistency signature of H4 is not over the survivor set H1 confirmed/);
    // With only the signatures over H1's set: 2 of them, threshold 3.
    const few = client('H2').unmask({ ...split, signatures: sig(['H1', 'H2']) });
    await expect(few).rejects.toThrow(/client H2: 2 consistency signatures \(H1, H2\) on the survivor set, threshold 3/);
  });

  it('an unmask split other than the survivor set the client signed is refused, naming the client it would expose', async () => {
    const round = await toCheck();
    const h1 = round.clients.get('H1') as SecAggClient;
    const signatures = [];
    for (const id of ['H1', 'H2', 'H4']) signatures.push({ client_id: id, signature: (await (round.clients.get(id) as SecAggClient).consistencyCheck(check(ALL))).signature });
    const attempt = h1.unmask({ stage: 'unmask', run_id: RUN, round: ROUND, survivors: ['H1', 'H2', 'H4', 'H5'], dropped: ['H3'], signatures });
    await expect(attempt).rejects.toThrow(RevealRefusedError);
    await expect(attempt).rejects.toMatchObject({ clientId: 'H3', message: expect.stringMatching(/the server calls H3 dropped, but the survivor set it confirmed in consistency-check says otherwise/) });
  });

  it('a client refuses to confirm a survivor set without itself, or one that leaves fewer than t holders of its secrets', async () => {
    const round = await toCheck();
    await expect((round.clients.get('H1') as SecAggClient).consistencyCheck(check(['H2', 'H3', 'H4', 'H5']))).rejects.toThrow(/does not list H1 itself among the survivors/);
    const few = (round.clients.get('H2') as SecAggClient).consistencyCheck(check(['H2', 'H3']));
    await expect(few).rejects.toThrow(SecAggAbortError);
    await expect(few).rejects.toThrow(/client H2: only 2 holders of its self-mask shares survived \(itself and 1 neighbours\), threshold 3/);
  });

  it('the server rejects a signature that does not verify over U3 (the client is then lost at consistency-check), and the round still completes', async () => {
    const round = await toCheck();
    const requests = round.server.consistencyCheckRequests();
    for (const [id, req] of requests) {
      const reply = await (round.clients.get(id) as SecAggClient).consistencyCheck(req);
      if (id === 'H4') {
        const bad = { ...reply, signature: reply.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
        await expect(round.server.receiveConsistencyCheck(id, bad)).rejects.toThrow(/the consistency signature of H4 does not verify over the survivor set/);
      } else await round.server.receiveConsistencyCheck(id, reply);
    }
    const unmask = round.server.unmaskRequests();
    expect([...unmask.keys()]).toEqual(['H1', 'H2', 'H3', 'H5']);
    expect(unmask.get('H1')?.signatures.map((x) => x.client_id)).toEqual(['H1', 'H2', 'H3', 'H5']);
    for (const [id, req] of unmask) await round.server.receiveUnmask(id, await (round.clients.get(id) as SecAggClient).unmask(req));
    const result = await round.server.result();
    expect(result.survivors).toEqual(ALL); // H4's input is in the sum; its self mask was rebuilt from the others' shares
    expect(result.dropped).toEqual([{ client_id: 'H4', stage: 'consistency-check' }]);
  });
});

describe('unmask: never both shares of one client', () => {
  async function toUnmask(): Promise<{ round: Round; requests: Map<string, UnmaskRequest> }> {
    const round = await Round.create({ n: 5, L: 100, drops: { H5: 'masked-input' } });
    await round.advertise();
    await round.shareKeys();
    await round.maskedInput();
    await round.consistencyCheck();
    return { round, requests: await round.unmaskRequests() };
  }

  it('the server’s honest request splits H1’s neighbours into survivors and dropped', async () => {
    const { requests } = await toUnmask();
    expect(requests.get('H1')).toMatchObject({ survivors: ['H1', 'H2', 'H3', 'H4'], dropped: ['H5'] });
    expect([...requests.keys()]).toEqual(['H1', 'H2', 'H3', 'H4']);
  });

  it('a client listed both as survivor and dropped: the client refuses, naming it', async () => {
    const { round, requests } = await toUnmask();
    const req = requests.get('H1') as UnmaskRequest;
    const attempt = (round.clients.get('H1') as SecAggClient).unmask({ ...req, dropped: [...req.dropped, 'H2'] });
    await expect(attempt).rejects.toThrow(RevealRefusedError);
    await expect(attempt).rejects.toMatchObject({ clientId: 'H2', message: expect.stringMatching(/lists H2 as both survivor and dropped/) });
  });

  it('asked again with a different split: refuses; asked again with the same: the same reply', async () => {
    const { round, requests } = await toUnmask();
    const h1 = round.clients.get('H1') as SecAggClient;
    const req = requests.get('H1') as UnmaskRequest;
    const first = await h1.unmask(req);
    expect(first.b_shares.map((s) => s.client_id)).toEqual(['H1', 'H2', 'H3', 'H4']);
    expect(first.s_shares.map((s) => s.client_id)).toEqual(['H5']);
    expect(await h1.unmask(overWire(req))).toBe(first);
    const attempt = h1.unmask({ ...req, survivors: ['H1', 'H3', 'H4'], dropped: ['H2', 'H5'] });
    await expect(attempt).rejects.toThrow(RevealRefusedError);
    await expect(attempt).rejects.toThrow(/refuses to unmask again with a different split: H2 changed between survivor and dropped/);
  });

  it.each([
    { name: 'itself among the dropped', edit: (r: UnmaskRequest) => ({ ...r, survivors: r.survivors.filter((j) => j !== 'H1'), dropped: [...r.dropped, 'H1'] }), error: /does not list H1 itself among the survivors/ },
    { name: 'a neighbour left out', edit: (r: UnmaskRequest) => ({ ...r, survivors: r.survivors.filter((j) => j !== 'H3') }), error: /does not say whether neighbour H3 survived/ },
    { name: 'a stranger', edit: (r: UnmaskRequest) => ({ ...r, dropped: [...r.dropped, 'H9'] }), error: /names H9, whose shares H1 does not hold/ },
    { name: 'a duplicate', edit: (r: UnmaskRequest) => ({ ...r, dropped: ['H5', 'H5'] }), error: /lists client H5 twice/ },
    { name: 'another round', edit: (r: UnmaskRequest) => ({ ...r, round: ROUND + 1 }), error: /round 8, expected run run-42 round 7/ },
  ])('refuses an unmask request with $name', async ({ edit, error }) => {
    const { round, requests } = await toUnmask();
    await expect((round.clients.get('H1') as SecAggClient).unmask(edit(requests.get('H1') as UnmaskRequest))).rejects.toThrow(error);
  });
});

describe('authenticated shares (Bell et al. 2020 SecAgg+, malicious clients): a corrupted share names the client that revealed it', () => {
  type Edit = (reply: UnmaskReply) => UnmaskReply;
  const flip = (b: Uint8Array, at: number) => b.map((x, i) => (i === at ? x ^ 0x5a : x));
  /** One b share (of `dealer`) in the reply with a changed value byte, its signature kept. */
  const alterB =
    (dealer: string): Edit =>
    (r) => ({ ...r, b_shares: r.b_shares.map((e) => (e.client_id === dealer ? { ...e, share: flip(e.share, 5) } : e)) });
  const alterS =
    (dealer: string): Edit =>
    (r) => ({ ...r, s_shares: r.s_shares.map((e) => (e.client_id === dealer ? { ...e, share: flip(e.share, 9) } : e)) });

  /** A round to its unmask stage; then every reply goes to the server, `hostile`'s through `edit`; the server's rejections are collected. */
  async function unmaskWith(drops: Options['drops'], hostile: string, edit: Edit, opts: Partial<Options> = {}) {
    const round = await Round.create({ n: 5, L: 300, ...(drops ? { drops } : {}), ...opts });
    await round.advertise();
    await round.shareKeys();
    await round.maskedInput();
    await round.consistencyCheck();
    const rejected: { id: string; error: unknown }[] = [];
    for (const [id, req] of await round.unmaskRequests()) {
      if (!round.alive(id, 'unmask')) continue;
      const honest = await (round.clients.get(id) as SecAggClient).unmask(req);
      const reply = overWire(id === hostile ? edit(honest) : honest);
      await round.server.receiveUnmask(id, reply).catch((error: unknown) => rejected.push({ id, error }));
    }
    return { round, rejected };
  }

  it('an altered self-mask share: discarded, its sender named, and the survivors’ sum is exact from the others’ shares', async () => {
    const { round, rejected } = await unmaskWith(undefined, 'H3', alterB('H1'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.id).toBe('H3');
    expect(rejected[0]?.error).toBeInstanceOf(SecAggProtocolError);
    expect(rejected[0]?.error).toMatchObject({ clientId: 'H3', message: expect.stringMatching(/unmask reply from H3: its self-mask share of H1 does not carry the dealer's signature: altered by H3, discarded/) });
    const result = await round.server.result();
    round.checkResult(result); // every input in, the sum within n·Δ: H1's seed rebuilt from H1, H2, H4, H5
    expect(result.rejected).toEqual([{ client_id: 'H3', stage: 'unmask', reason: expect.stringMatching(/self-mask share of H1 .*altered by H3/) }]);
  });

  it('an altered mask-key share of a dropped client: discarded, its sender named, the dropped client’s masks still removed', async () => {
    const { round, rejected } = await unmaskWith({ H2: 'masked-input' }, 'H4', alterS('H2'));
    expect(rejected.map((r) => r.id)).toEqual(['H4']);
    expect(rejected[0]?.error).toMatchObject({ clientId: 'H4', message: expect.stringMatching(/its mask-key share of H2 does not carry the dealer's signature: altered by H4/) });
    const result = await round.server.result();
    round.checkResult(result);
    expect(result.recovered).toEqual(['H2']);
    expect(result.rejected.map((r) => r.client_id)).toEqual(['H4']);
  });

  it.each([
    {
      name: 'a share re-signed with the holder’s own key',
      edit: async (r: UnmaskReply) => ({ ...r, b_shares: await Promise.all(r.b_shares.map(async (e) => (e.client_id === 'H2' ? { ...e, share: await resignedAsHolder(flip(e.share, 3)) } : e))) }),
    },
    { name: 'a share given as another holder’s (index changed)', edit: async (r: UnmaskReply) => ({ ...r, b_shares: r.b_shares.map((e) => (e.client_id === 'H2' ? { ...e, share: flip(e.share, 0) } : e)) }) },
    {
      name: 'the signature of another share',
      edit: async (r: UnmaskReply) => ({ ...r, b_shares: r.b_shares.map((e, _i, all) => (e.client_id === 'H2' ? { ...e, share: withSignatureOf(e.share, (all.find((x) => x.client_id === 'H4') as typeof e).share) } : e)) }),
    },
  ])('$name is caught the same way', async ({ edit }) => {
    const round = await Round.create({ n: 5, L: 100 });
    await round.advertise();
    await round.shareKeys();
    await round.maskedInput();
    await round.consistencyCheck();
    const errors: unknown[] = [];
    for (const [id, req] of await round.unmaskRequests()) {
      const honest = await (round.clients.get(id) as SecAggClient).unmask(req);
      await round.server.receiveUnmask(id, id === 'H5' ? await edit(honest) : honest).catch((e: unknown) => errors.push(e));
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ clientId: 'H5', message: expect.stringMatching(/share of H2 does not carry the dealer's signature: altered by H5/) });
    round.checkResult(await round.server.result());
  });

  it('too few valid shares left: the round aborts naming the client whose shares were discarded, never the honest dealer', async () => {
    // H1 and H2 leave at unmask; H3 alters its share of H4: H4's seed has H4's and H5's valid shares, t = 3.
    const { round, rejected } = await unmaskWith({ H1: 'unmask', H2: 'unmask' }, 'H3', alterB('H4'));
    expect(rejected.map((r) => r.id)).toEqual(['H3']);
    const run = round.server.result();
    await expect(run).rejects.toThrow(SecAggAbortError);
    await expect(run).rejects.toMatchObject({ clientId: 'H3', message: expect.stringMatching(/2 of its 5 share holders answered unmask with a valid share \(discarded: H3's forged shares\), threshold 3/) });
  });

  it('a dealer’s shares are checked when its neighbour opens them: one not signed by the dealer is refused, naming the dealer', async () => {
    // H2 is given its own identity for the advertisement but signs the shares it deals with another key.
    const other = await generateIdentityKeyPair('Ed25519');
    const h2identity = await identityOf('H2');
    const round = await Round.create({ n: 5, L: 50 });
    const h2 = new SecAggClient({ clientId: 'H2', identity: h2identity });
    round.clients.set('H2', h2);
    await round.advertise();
    // After advertising, H2's key object is swapped: what it signs from now on no longer verifies under its advertised key.
    (h2 as unknown as { identity: KeyPair }).identity = { publicKey: h2identity.publicKey, privateKey: other.privateKey };
    await round.shareKeys();
    const masked = round.server.maskedInputRequests();
    const h1 = round.clients.get('H1') as SecAggClient;
    const attempt = h1.maskedInput(masked.get('H1'), round.updates.get('H1') as Float32Array, 5);
    await expect(attempt).rejects.toThrow(SecAggProtocolError);
    await expect(attempt).rejects.toMatchObject({ clientId: 'H2', message: expect.stringMatching(/the self-mask share from H2 to H1 does not carry H2's identity signature/) });
  });
});

/** A revealed share (encoded share ‖ signature) re-signed by H5, the hostile holder, as if it were the dealer H2. */
async function resignedAsHolder(revealed: Uint8Array): Promise<Uint8Array> {
  const out = revealed.slice();
  const share = revealed.subarray(0, ENCODED_SHARE_BYTES);
  out.set(await signShare((await identityOf('H5')).privateKey, { run_id: RUN, round: ROUND, dealer: 'H2', holder: 'H5', kind: 'b', share }), ENCODED_SHARE_BYTES);
  return out;
}

/** `revealed`'s share with `other`'s signature. */
function withSignatureOf(revealed: Uint8Array, other: Uint8Array): Uint8Array {
  const out = revealed.slice();
  out.set(other.subarray(ENCODED_SHARE_BYTES), ENCODED_SHARE_BYTES);
  return out;
}

describe('validation of what the other side sends', () => {
  it('server: unknown, duplicate, mislabelled, malformed, mis-sized and late replies are rejected without changing the round', async () => {
    const round = await Round.create({ n: 5, L: 50 });
    const server = round.server;
    const h1 = round.clients.get('H1') as SecAggClient;
    const ad = await h1.advertise(server.advertiseRequest());
    await expect(server.receiveAdvertise('H9', ad)).rejects.toThrow(/reply from H9, which is not in this stage/);
    await expect(server.receiveAdvertise('H2', ad)).rejects.toThrow(/reply from H2 claims to come from H1/);
    await expect(server.receiveAdvertise('H1', { ...ad, run_id: 'other' })).rejects.toThrow(/is for run other round 7, expected run run-42 round 7/);
    await expect(server.receiveAdvertise('H1', { ...ad, c_pk: ad.c_pk.subarray(1) })).rejects.toThrow(/invalid advertise-keys reply from H1: .*expected 32 bytes/s);
    await expect(server.receiveAdvertise('H1', { stage: 'advertise-keys' })).rejects.toThrow(SecAggProtocolError);
    await server.receiveAdvertise('H1', ad);
    await expect(server.receiveAdvertise('H1', ad)).rejects.toThrow(/a second advertise-keys reply from H1/);
    for (const id of ['H2', 'H3', 'H4', 'H5']) await server.receiveAdvertise(id, await (round.clients.get(id) as SecAggClient).advertise(server.advertiseRequest()));
    const requests = server.shareKeysRequests();
    await expect(server.receiveAdvertise('H2', ad)).rejects.toThrow(/came in stage share-keys \(late or early\)/);
    const h1Shares = await h1.shareKeys(requests.get('H1'));
    await expect(server.receiveShareKeys('H1', { ...h1Shares, shares: h1Shares.shares.slice(1) })).rejects.toThrow(/addresses \[H3, H4, H5\], its neighbours are \[H2, H3, H4, H5\]/);
    await expect(server.receiveShareKeys('H1', { ...h1Shares, shares: [...h1Shares.shares.slice(1), { ...(h1Shares.shares[1] as { to: string; ciphertext: Uint8Array }) }] })).rejects.toThrow(/lists client H3 twice/);
    await server.receiveShareKeys('H1', h1Shares);
    for (const id of ['H2', 'H3', 'H4', 'H5']) await server.receiveShareKeys(id, await (round.clients.get(id) as SecAggClient).shareKeys(requests.get(id)));
    const masked = server.maskedInputRequests();
    const y = await h1.maskedInput(masked.get('H1'), round.updates.get('H1') as Float32Array, 3);
    await expect(server.receiveMaskedInput('H1', { ...y, masked: y.masked.subarray(1) })).rejects.toThrow(/has 50 words, expected 51 \(L \+ 1\)/);
    await expect(server.receiveMaskedInput('H1', { ...y, masked: wordsToBytes(y.masked).subarray(1) })).rejects.toThrow(/203 bytes are not a whole number of 32-bit words/);
    await expect(() => server.result()).rejects.toThrow(/result\(\) called in stage masked-input, expected unmask/);
    await server.receiveMaskedInput('H1', { ...y, masked: Buffer.from(wordsToBytes(y.masked)) });
  });

  it('client: bad neighbour lists, tampered shares, wrong sizes and weights are refused', async () => {
    const round = await Round.create({ n: 5, L: 50 });
    await round.advertise();
    const requests = await round.shareKeysRequests();
    const req = requests.get('H1') as ShareKeysRequest;
    const h2ad = req.neighbours[0] as ShareKeysRequest['neighbours'][number];
    const fresh = async () => {
      const c = new SecAggClient({ clientId: 'H1', identity: await identityOf('H1') });
      await c.advertise(advertiseRequestOf(round.cfg));
      return c;
    };
    await expect((await fresh()).shareKeys({ ...req, neighbours: [...req.neighbours, h2ad] })).rejects.toThrow(/share-keys request lists client H2 twice/);
    await expect((await fresh()).shareKeys({ ...req, neighbours: [...req.neighbours.slice(1), { ...h2ad, client_id: 'H1' }] })).rejects.toThrow(/lists H1 as its own neighbour/);
    await expect((await fresh()).shareKeys({ ...req, neighbours: req.neighbours.slice(0, 1) })).rejects.toThrow(/has 1 neighbours: 2 share holders, fewer than the threshold 3/);
    await expect((await fresh()).shareKeys({ ...req, neighbours: [] })).rejects.toThrow(/was given no neighbours/);

    await round.shareKeys(requests);
    const masked = round.server.maskedInputRequests();
    const h1 = round.clients.get('H1') as SecAggClient;
    const x = round.updates.get('H1') as Float32Array;
    const mreq = masked.get('H1') as MaskedInputRequest;
    await expect(h1.maskedInput(mreq, x.subarray(1), 5)).rejects.toThrow(/the update has 49 values, the round expects 50/);
    const h2 = round.clients.get('H2') as SecAggClient;
    await expect(h2.maskedInput(masked.get('H2'), round.updates.get('H2') as Float32Array, W + 1)).rejects.toThrow(/weight must be an integer in \[1, max_weight = 1000\], got 1001/);
    const h3 = round.clients.get('H3') as SecAggClient;
    const m3 = masked.get('H3') as MaskedInputRequest;
    const tampered = { ...m3, shares: m3.shares.map((s, i) => (i === 0 ? { ...s, ciphertext: s.ciphertext.map((b, j) => (j === 40 ? b ^ 1 : b)) } : s)) };
    await expect(h3.maskedInput(tampered, round.updates.get('H3') as Float32Array, 5)).rejects.toThrow(SecAggCryptoError);
    await expect(h3.maskedInput(tampered, round.updates.get('H3') as Float32Array, 5)).rejects.toThrow(/the shares from H1 to H3 fail authentication/);
    const h4 = round.clients.get('H4') as SecAggClient;
    const m4 = masked.get('H4') as MaskedInputRequest;
    await expect(h4.maskedInput({ ...m4, shares: [...m4.shares.slice(1), { ...(m4.shares[0] as object), from: 'H9' }] }, round.updates.get('H4') as Float32Array, 5)).rejects.toThrow(/carries shares from H9, not a neighbour of H4/);
    const ok = await h1.maskedInput(mreq, x, 5).catch((e: unknown) => e);
    expect(ok).toBeInstanceOf(SecAggProtocolError); // H1 aborted its round at the bad update above
    await expect((round.clients.get('H5') as SecAggClient).advertise(advertiseRequestOf(round.cfg))).rejects.toThrow(/got a advertise-keys request in phase shared/);
  });
});

describe('configuration and the no-wrap bound', () => {
  it.each([
    { n: 3, k: undefined, t: 2, bits: 30 },
    { n: 5, k: undefined, t: 3, bits: 29 },
    { n: 10, k: undefined, t: 7, bits: 28 },
    { n: 30, k: 8, t: 6, bits: 27 },
    { n: 31, k: 9, t: 7, bits: 27 },
    { n: 30, k: undefined, t: 20, bits: 27 },
  ])('defaults for n = $n, k = $k: t = $t, b = $bits', ({ n, k, t, bits }) => {
    const cfg = secAggConfig({ clients: n, vectorLength: 10, clip: 1, maxWeight: 100, ...(k === undefined ? {} : { neighbours: k }) });
    expect(cfg.threshold).toBe(t);
    expect(cfg.bits).toBe(bits);
    expect(n * (2 ** cfg.bits - 1)).toBeLessThan(2 ** 32);
  });

  it.each([
    { name: 'bits that can wrap', cfg: { bits: 30 }, error: /a sum of 5 values of 30 bits can wrap mod 2\^32: use at most 29 bits/ },
    { name: 'weights that can wrap', cfg: { max_weight: 2 ** 30 }, error: /5 clients × max_weight 1073741824 ≥ 2\^32/ },
    { name: 't above the holders', cfg: { threshold: 6 }, error: /threshold 6 exceeds the 5 share holders/ },
    { name: 't below a majority', cfg: { threshold: 2 }, error: /threshold 2 is not a majority of the 5 share holders of a client \(needs ≥ 3\)/ },
    { name: 'a negative clip', cfg: { clip: -1 }, error: /clip R must be a finite number > 0/ },
  ])('rejects $name', ({ cfg, error }) => {
    const base = secAggConfig({ clients: 5, vectorLength: 10, clip: 1, maxWeight: 100 });
    expect(() => checkConfig({ ...base, ...cfg }, 5)).toThrow(SecAggProtocolError);
    expect(() => checkConfig({ ...base, ...cfg }, 5)).toThrow(error);
    expect(() => new SecAggServer({ runId: RUN, round: 0, config: { ...base, ...cfg }, clients: idsOf(5), seed: 1 })).toThrow();
  });

  it.each([R, -R])('at the extremes (every weight W, every value %d) the sum does not wrap and is exact within the bound', async (value) => {
    const round = await Round.create({ n: 5, L: 200 });
    for (const id of round.ids) {
      round.updates.set(id, new Float32Array(200).fill(value * 3)); // beyond the clip
      round.weights.set(id, W);
    }
    const result = await round.run();
    round.checkResult(result);
    expect(result.totalWeight).toBe(5 * W);
    for (const v of result.sum) expect(Math.abs(v - 5 * W * value)).toBeLessThan(result.errorBound);
  });

  it('bytesToWords / wordsToBytes are little-endian', () => {
    expect(Array.from(wordsToBytes(Uint32Array.of(0x04030201)))).toEqual([1, 2, 3, 4]);
    expect(Array.from(bytesToWords(Uint8Array.of(1, 2, 3, 4, 0xff, 0, 0, 0)))).toEqual([0x04030201, 255]);
  });
});

describe('sparse graph: 30 hospitals, k = 8', () => {
  it.each([
    { drops: {} },
    { drops: { H7: 'masked-input' } },
    { drops: { H7: 'masked-input', H19: 'masked-input' } },
    { drops: { H3: 'share-keys', H12: 'unmask' } },
    { drops: { H1: 'advertise-keys', H30: 'masked-input' } },
  ] satisfies { drops: Record<string, SecAggStage> }[])('drops $drops: the survivors’ sum; each client got 8 neighbours', async ({ drops }) => {
    const round = await Round.create({ n: 30, L: 1000, k: 8, drops, wire: true });
    expect(round.cfg.threshold).toBe(6);
    await round.advertise();
    const requests = await round.shareKeysRequests();
    for (const req of requests.values()) expect(req.neighbours.length).toBe(8); // n = 30 or 29, k even: 8-regular
    await round.shareKeys(requests);
    await round.maskedInput();
    await round.consistencyCheck();
    round.checkResult(await round.unmask());
  });

  it('aborts naming a dropped client whose mask key has fewer than t surviving neighbours to rebuild it', async () => {
    // The round's graph (the server seeds it with seed/run/round); find a client d and 3 of its
    // neighbours whose loss at masked input leaves d with 5 < t = 6 holders while every survivor
    // keeps ≥ 5 surviving neighbours (so the dropped-client check is the one that fires).
    const ids = idsOf(30);
    const graph = neighbourGraph(ids, 8, `11/${RUN}/${ROUND}`);
    const subsets = <T,>(xs: readonly T[], k: number): T[][] => (k === 0 ? [[]] : xs.flatMap((x, i) => subsets(xs.slice(i + 1), k - 1).map((r) => [x, ...r])));
    let lost: string[] | undefined;
    for (const d of ids) {
      for (const three of subsets(graph.get(d) ?? [], 3)) {
        const gone = new Set([d, ...three]);
        if (ids.every((v) => gone.has(v) || (graph.get(v) ?? []).filter((u) => !gone.has(u)).length >= 5)) lost = [...gone];
        if (lost) break;
      }
      if (lost) break;
    }
    expect(lost).toBeDefined();
    const drops = Object.fromEntries((lost as string[]).map((id) => [id, 'masked-input' as const]));
    const round = await Round.create({ n: 30, L: 100, k: 8, drops });
    const run = round.run();
    await expect(run).rejects.toThrow(SecAggAbortError);
    await expect(run).rejects.toThrow(/aborted: dropped client H\d+ has 5 surviving neighbours \(.*\) to rebuild its mask key, threshold 6/);
  });

  it('the same seed gives the same graph, another seed another', async () => {
    const neighboursOf = async (seed: number) => {
      const round = await Round.create({ n: 30, L: 10, k: 8, seed });
      await round.advertise();
      return new Map([...(await round.shareKeysRequests())].map(([id, r]) => [id, r.neighbours.map((a) => a.client_id).join()]));
    };
    const a = await neighboursOf(5);
    expect(await neighboursOf(5)).toEqual(a);
    expect(await neighboursOf(6)).not.toEqual(a);
  });
});

// At the model's full size, the sum comes out exact with a hospital lost: plain SecAgg (every
// hospital a neighbour) and SecAgg+ (k = 8 of 30). What it costs per stage and per client, for 3 to
// 100 hospitals, is a benchmark: `fedcare bench --only secure` (apps/cli/src/bench-secure.ts).
describe('the full model size (569 091 weights)', () => {
  const L = 569_091;
  it.each([
    { n: 10, k: undefined, drops: { H4: 'masked-input' } },
    { n: 30, k: 8, drops: { H4: 'masked-input' } },
  ] satisfies { n: number; k: number | undefined; drops: Record<string, SecAggStage> }[])('n = $n, k = $k, drops $drops: the survivors\' exact sum', async ({ n, k, drops }) => {
    const round = await Round.create({ n, L, drops, ...(k === undefined ? {} : { k }) });
    round.checkResult(await round.run());
  });
});
