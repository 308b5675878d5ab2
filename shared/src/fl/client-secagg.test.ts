import { describe, expect, it } from 'vitest';
import { generateHospital } from '../data/generator';
import { loadOrCreateIdentity, type IdentityStore } from '../secagg/identity';
import { exportIdentityPublicKey, generateIdentityKeyPair, type KeyPair } from '../secagg/keys';
import { SecAggServer, secAggConfig, type ShareKeysRequest } from '../secagg/protocol';
import { HospitalClient, type PinStore } from './client';

const IDS = ['H1', 'H2', 'H3'];

/** Each hospital's identity store, as its host keeps it (IndexedDB, a key file): generated on first use, then loaded. */
function memoryIdentity(): IdentityStore {
  let kept: KeyPair | undefined;
  return { load: async () => kept, add: async (k) => (kept ??= k) };
}
const IDENTITIES = new Map(IDS.map((h) => [h, memoryIdentity()]));

function memoryPins(): PinStore & { saved: number } {
  let state: Record<string, Uint8Array> | undefined;
  const store = {
    saved: 0,
    load: async () => state,
    save: async (p: Record<string, Uint8Array>) => {
      state = { ...p };
      store.saved++;
    },
  };
  return store;
}

function client(h: string, pins: PinStore, roster?: Record<string, Uint8Array>, identity: IdentityStore = IDENTITIES.get(h)!) {
  return new HospitalClient(h, generateHospital(h, { seed: 2, patients: 12 }).records, { identity: () => loadOrCreateIdentity(identity), pinStore: pins, ...(roster ? { roster } : {}) });
}

/** Each hospital's identity public key as its operator would publish it (`fedcare identity`). */
async function publishedKeys(): Promise<Record<string, Uint8Array>> {
  return Object.fromEntries(await Promise.all(IDS.map(async (h) => [h, await exportIdentityPublicKey((await loadOrCreateIdentity(IDENTITIES.get(h)!)).publicKey)] as const)));
}

/** Advertise and share-keys of one round; `tamper` may rewrite the share-keys requests. */
async function round(round: number, clients: Map<string, HospitalClient>, tamper?: (to: string, r: ShareKeysRequest) => ShareKeysRequest) {
  const server = new SecAggServer({ runId: 'run-pins', round, config: secAggConfig({ clients: 3, vectorLength: 8, clip: 1, maxWeight: 10 }), clients: IDS, seed: 1 });
  const ad = server.advertiseRequest();
  for (const h of IDS) await server.receiveAdvertise(h, await clients.get(h)!.secureAggregation(ad));
  const reqs = server.shareKeysRequests();
  const out: Record<string, unknown> = {};
  for (const h of IDS) {
    const req = reqs.get(h)!;
    try {
      out[h] = await clients.get(h)!.secureAggregation(tamper ? tamper(h, req) : req);
    } catch (e) {
      out[h] = e;
    }
  }
  return out;
}

describe('HospitalClient SecAgg+ identity and pins', () => {
  it('pins the others on first sight, persists them, and after a restart refuses a substituted identity key', async () => {
    const stores = new Map(IDS.map((h) => [h, memoryPins()]));
    const first = new Map(IDS.map((h) => [h, client(h, stores.get(h)!)]));
    const r1 = await round(1, first);
    for (const h of IDS) expect(r1[h]).toMatchObject({ stage: 'share-keys', client_id: h });
    expect(stores.get('H1')!.saved).toBe(1);
    expect(Object.keys((await stores.get('H1')!.load())!).sort()).toEqual(['H2', 'H3']);

    // H1 restarts (a new client object on the same pin store); H2 and H3 restart too: the same stored identity, still accepted.
    const restarted = new Map(IDS.map((h) => [h, client(h, stores.get(h)!)]));
    const r2 = await round(2, restarted);
    for (const h of IDS) expect(r2[h]).toMatchObject({ stage: 'share-keys' });

    // The coordinator substitutes H2's whole advertisement (its own identity key, validly signed) towards H1.
    const impostor = await generateIdentityKeyPair();
    const fakeH2 = new HospitalClient('H2', generateHospital('H2', { seed: 2, patients: 12 }).records, { identity: impostor });
    const fakeAd = await fakeH2.secureAggregation({ stage: 'advertise-keys', run_id: 'run-pins', round: 3, config: secAggConfig({ clients: 3, vectorLength: 8, clip: 1, maxWeight: 10 }) });
    const again = new Map(IDS.map((h) => [h, client(h, stores.get(h)!)]));
    const r3 = await round(3, again, (to, req) => (to === 'H1' ? { ...req, neighbours: req.neighbours.map((n) => (n.client_id === 'H2' ? (fakeAd as typeof n) : n)) } : req));
    expect(r3.H1).toBeInstanceOf(Error);
    expect((r3.H1 as Error).message).toMatch(/H2/);
    expect((r3.H1 as Error).name).toBe('PinMismatchError');
  });

  it('with an out-of-band roster nothing is trusted on first use: the first round already refuses a hospital not in it, and the pin store is left alone', async () => {
    const keys = await publishedKeys();
    const stores = new Map(IDS.map((h) => [h, memoryPins()]));
    // Everyone's roster lists all three: the first round completes.
    const ok = await round(1, new Map(IDS.map((h) => [h, client(h, stores.get(h)!, keys)])));
    for (const h of IDS) expect(ok[h]).toMatchObject({ stage: 'share-keys', client_id: h });
    for (const h of IDS) expect(stores.get(h)!.saved).toBe(0);
    // H1's roster lacks H3 (say H3 joined without telling H1): H1 refuses in its very first round.
    const partial = { H1: keys.H1!, H2: keys.H2! };
    const r = await round(1, new Map(IDS.map((h) => [h, client(h, memoryPins(), h === 'H1' ? partial : keys)])));
    expect(r.H1).toBeInstanceOf(Error);
    expect((r.H1 as Error).name).toBe('PinMismatchError');
    expect((r.H1 as Error).message).toMatch(/no identity key is pinned for hospital H3 and pins are required/);
    expect(r.H2).toMatchObject({ stage: 'share-keys' });
    // A first-round substitution (which TOFU cannot catch) is caught by the roster.
    const impostor = await generateIdentityKeyPair();
    const fakeH2 = new HospitalClient('H2', generateHospital('H2', { seed: 2, patients: 12 }).records, { identity: impostor });
    const fakeAd = await fakeH2.secureAggregation({ stage: 'advertise-keys', run_id: 'run-pins', round: 1, config: secAggConfig({ clients: 3, vectorLength: 8, clip: 1, maxWeight: 10 }) });
    const r2 = await round(1, new Map(IDS.map((h) => [h, client(h, memoryPins(), keys)])), (to, req) =>
      to === 'H1' ? { ...req, neighbours: req.neighbours.map((n) => (n.client_id === 'H2' ? (fakeAd as typeof n) : n)) } : req,
    );
    expect((r2.H1 as Error).name).toBe('PinMismatchError');
    expect((r2.H1 as Error).message).toMatch(/H2/);
  });

  it('a hospital whose generated key changed (lost, regenerated) is refused by name by a peer that pinned the old one, until re-pinned', async () => {
    const stores = new Map(IDS.map((h) => [h, memoryPins()]));
    const r1 = await round(1, new Map(IDS.map((h) => [h, client(h, stores.get(h)!)])));
    for (const h of IDS) expect(r1[h]).toMatchObject({ stage: 'share-keys' });
    // H3 loses its key file / browser profile: its host generates a new identity on next use.
    const lost = memoryIdentity();
    const r2 = await round(2, new Map(IDS.map((h) => [h, client(h, stores.get(h)!, undefined, h === 'H3' ? lost : IDENTITIES.get(h)!)])));
    for (const h of ['H1', 'H2']) {
      expect((r2[h] as Error).name).toBe('PinMismatchError');
      expect((r2[h] as Error).message).toMatch(/the identity key relayed for hospital H3 .* differs from the one pinned for it/);
    }
    // The operators re-pin H3's new key (out of band): H1 and H2 accept it again.
    const newKey = await exportIdentityPublicKey((await loadOrCreateIdentity(lost)).publicKey);
    for (const h of ['H1', 'H2']) await stores.get(h)!.save({ ...(await stores.get(h)!.load())!, H3: newKey });
    const r3 = await round(3, new Map(IDS.map((h) => [h, client(h, stores.get(h)!, undefined, h === 'H3' ? lost : IDENTITIES.get(h)!)])));
    for (const h of IDS) expect(r3[h]).toMatchObject({ stage: 'share-keys' });
  });
});
