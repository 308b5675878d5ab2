/**
 * The cost of secure aggregation (`fedcare bench --only secure`): SecAgg+ client and server time
 * per stage for 3, 10, 30 and 100 simulated hospitals on the real model size (569,091 weights),
 * all in this process — and HE (BFV) encrypt / add / decrypt with the upload size. Medians where
 * there are many clients; asserts nothing about time.
 */
import { createKeyHolderKeys, decryptSum, encryptUpdate, heConfig, serverContext } from '@fedcare/shared/he';
import { DEFAULT_FRACTION_BITS, generateIdentityKeyPair, SecAggClient, SecAggServer, secAggConfig, type SecAggRequest } from '@fedcare/shared/secagg';
import { Rng } from '@fedcare/shared/util';

export const MODEL_PARAMS = 569_091;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function update(seed: string, L: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: L }, () => (rng.next() - 0.5) * 0.1);
}

/** Statistics-like values: counts, sums and sums of squares spanning many magnitudes. */
function statistics(seed: string, L: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: L }, (_, i) => rng.next() * 10 ** (i % 10));
}

export interface SecAggBenchRow {
  bench: 'secagg' | 'secagg-preprocess';
  hospitals: number;
  neighbours: number;
  threshold: number;
  params: number;
  client_ms_median: Record<string, number>;
  server_ms: Record<string, number>;
  upload_bytes_per_client: number;
  round_seconds_sequential: number;
}

/**
 * One SecAgg+ round with `n` in-process hospitals; clients run one after another (the sum of their
 * times is not a wall time of a real federation). `preprocess`: round 0's exact fixed-point sum of
 * the feature statistics (FEATURE_SUMS_LENGTH values, weight 1) instead of the model update.
 */
export async function benchSecAgg(n: number, L = MODEL_PARAMS, neighbours?: number, preprocess = false): Promise<SecAggBenchRow> {
  const ids = Array.from({ length: n }, (_, i) => `S${String(i + 1).padStart(3, '0')}`);
  const config = secAggConfig({
    clients: n,
    vectorLength: L,
    clip: 0.5,
    maxWeight: preprocess ? 1 : 1000,
    ...(neighbours !== undefined ? { neighbours } : {}),
    ...(preprocess ? { fixedPointFractionBits: DEFAULT_FRACTION_BITS } : {}),
  });
  const server = new SecAggServer({ runId: 'run-bench', round: 1, config, clients: ids, seed: 'bench' });
  const clients = new Map<string, SecAggClient>();
  for (const id of ids) clients.set(id, new SecAggClient({ clientId: id, identity: await generateIdentityKeyPair() }));
  const clientMs: Record<string, number[]> = {};
  const serverMs: Record<string, number> = {};
  let upload = 0;
  const t0 = performance.now();
  const stage = async (name: string, requests: ReadonlyMap<string, SecAggRequest>, answer: (c: SecAggClient, r: SecAggRequest, id: string) => Promise<unknown>, receive: (id: string, r: unknown) => Promise<void>) => {
    for (const [id, req] of requests) {
      const c0 = performance.now();
      const reply = await answer(clients.get(id) as SecAggClient, req, id);
      (clientMs[name] ??= []).push(performance.now() - c0);
      const s0 = performance.now();
      await receive(id, reply);
      serverMs[name] = (serverMs[name] ?? 0) + performance.now() - s0;
      if (name === 'masked-input') upload = Math.max(upload, (reply as { masked: Uint32Array }).masked.byteLength);
    }
  };
  const timedServer = <T>(name: string, f: () => T): T => {
    const s0 = performance.now();
    const out = f();
    serverMs[name] = (serverMs[name] ?? 0) + performance.now() - s0;
    return out;
  };
  const ad = timedServer('advertise-keys', () => server.advertiseRequest());
  await stage('advertise-keys', new Map(ids.map((id) => [id, ad])), (c, r) => c.advertise(r), (id, r) => server.receiveAdvertise(id, r));
  await stage('share-keys', timedServer('share-keys', () => server.shareKeysRequests()), (c, r) => c.shareKeys(r), (id, r) => server.receiveShareKeys(id, r));
  await stage('masked-input', timedServer('masked-input', () => server.maskedInputRequests()), (c, r, id) => c.maskedInput(r, preprocess ? statistics(id, L) : update(id, L), preprocess ? 1 : 100), (id, r) => server.receiveMaskedInput(id, r));
  await stage('consistency-check', timedServer('consistency-check', () => server.consistencyCheckRequests()), (c, r) => c.consistencyCheck(r), (id, r) => server.receiveConsistencyCheck(id, r));
  await stage('unmask', timedServer('unmask', () => server.unmaskRequests()), (c, r) => c.unmask(r), (id, r) => server.receiveUnmask(id, r));
  const r0 = performance.now();
  await server.result();
  serverMs.result = performance.now() - r0;
  return {
    bench: preprocess ? 'secagg-preprocess' : 'secagg',
    hospitals: n,
    neighbours: config.neighbours,
    threshold: config.threshold,
    params: L,
    client_ms_median: Object.fromEntries(Object.entries(clientMs).map(([k, v]) => [k, Number(median(v).toFixed(2))])),
    server_ms: Object.fromEntries(Object.entries(serverMs).map(([k, v]) => [k, Number(v.toFixed(1))])),
    upload_bytes_per_client: upload,
    round_seconds_sequential: (performance.now() - t0) / 1000,
  };
}

export interface HeBenchRow {
  bench: 'he';
  hospitals: number;
  params: number;
  upload_bytes_symmetric: number;
  upload_bytes_public_key: number;
  encrypt_ms_symmetric: number;
  encrypt_ms_public_key: number;
  add_ms: number;
  decrypt_ms: number;
  max_abs_error: number;
}

/** HE (BFV, node-seal) for `n` hospitals on the real model size: sizes and times. */
export async function benchHe(n: number, L = MODEL_PARAMS): Promise<HeBenchRow> {
  const keys = await createKeyHolderKeys();
  const cfg = heConfig({ vectorLength: L, clip: 0.5, maxWeight: 1000 });
  const updates = Array.from({ length: n }, (_, i) => update(`he/${i}`, L));
  const uploads: Uint8Array[][] = [];
  const enc: number[] = [];
  let symBytes = 0;
  for (const u of updates) {
    const t0 = performance.now();
    const c = await encryptUpdate(u, 100, keys, cfg, { encryption: 'symmetric' });
    enc.push(performance.now() - t0);
    symBytes = c.reduce((s, x) => s + x.byteLength, 0);
    uploads.push(c);
  }
  const p0 = performance.now();
  const pk = await encryptUpdate(updates[0] as Float32Array, 100, { params: keys.params, public_key: keys.public_key }, cfg, { encryption: 'public-key' });
  const pkMs = performance.now() - p0;
  const server = await serverContext(keys.params);
  const a0 = performance.now();
  const sum = server.addCiphertexts(uploads);
  const addMs = performance.now() - a0;
  const d0 = performance.now();
  const out = await decryptSum(sum, keys, n, cfg);
  const decMs = performance.now() - d0;
  let err = 0;
  for (let i = 0; i < L; i++) {
    let want = 0;
    for (const u of updates) want += (u[i] as number) / n;
    err = Math.max(err, Math.abs((out.mean[i] as number) - want));
  }
  return {
    bench: 'he',
    hospitals: n,
    params: L,
    upload_bytes_symmetric: symBytes,
    upload_bytes_public_key: pk.reduce((s, x) => s + x.byteLength, 0),
    encrypt_ms_symmetric: Number(median(enc).toFixed(1)),
    encrypt_ms_public_key: Number(pkMs.toFixed(1)),
    add_ms: Number(addMs.toFixed(1)),
    decrypt_ms: Number(decMs.toFixed(1)),
    max_abs_error: err,
  };
}
