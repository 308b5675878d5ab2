/**
 * The portal's training worker: TF.js on the backend picked by feature detection, the hospital's
 * records read straight from IndexedDB, and the same HospitalClient the headless hospital uses.
 * It answers the page's requests one by one; `stop` interrupts a training in progress.
 *
 * A backend that fails during a stage (device lost, a GPU error, a lost context) is given up for
 * the next one of the chain: the model is rebuilt there from the stage's own global weights (every
 * train and evaluate instruction carries them) and the stage is done again if its deadline leaves
 * time for it, else declined once with the reason. The worker stays on the backend that works.
 */
// tfjs-core registers no gradients by itself (the union package does it for Node hosts).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { HospitalClient, type HospitalClientOptions, type PinStore, type PrivacyLedgerState, type PrivacyLedgerStore } from '@fedcare/shared/fl';
import { parseCsv, TabularHospitalClient } from '@fedcare/shared/tabular';
import { loadOrCreateIdentity, parseRoster } from '@fedcare/shared/secagg';
import { compareSteps, measureTrainThroughput, stepCheckBatch, trainingStepNumbers, type Throughput, type ThroughputOptions } from '@fedcare/shared/train';
import { kvGet, kvSet, loadRecords, tableKey } from '../data/db';
import { indexedDbIdentity } from '../data/identity';
import { BackendGuard, NoBackendError } from './backend';
import type { BackendName, WorkerMessage, WorkerReplies, WorkerRequest } from './protocol';

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerMessage, transfer?: Transferable[]): void;
  /**
   * For the e2e tests and the browser benchmark (Playwright evaluates in the worker): what a lost
   * GPU does, on demand; live tensors; training throughput on the backend in use (queued behind the
   * worker's requests, so it never overlaps a stage).
   */
  fedcareTestHooks?: { loseGpuDevice(): boolean; liveTensors(): number; benchTrain(opts: ThroughputOptions): Promise<Throughput> };
}
const scope = self as unknown as WorkerScope;

let client: HospitalClient | undefined;
let ready: Promise<unknown> | undefined;
const guard = new BackendGuard();
/** How long each kind of stage last took here, to judge whether a redo fits before a deadline. */
const lastSeconds = new Map<string, number>();

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

guard.onFailure = (backend, reason) => post({ kind: 'backend', message: `${backend} failed: ${reason}` });
scope.fedcareTestHooks = {
  loseGpuDevice: () => guard.loseDevice(),
  liveTensors: () => tf.memory().numTensors,
  benchTrain: (opts) => {
    const result = queue.then(async () => {
      await ready;
      return measureTrainThroughput(opts);
    });
    queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  },
};

/** The hospital's privacy ledger in IndexedDB: a reload, a new tab or a re-import cannot reset the budget. */
function indexedDbLedger(hospitalId: string): PrivacyLedgerStore {
  const key = `privacy-ledger/${hospitalId}`;
  return { load: () => kvGet<PrivacyLedgerState>(key), save: (state) => kvSet(key, state) };
}

/** The hospital's SecAgg+ pins in IndexedDB: a reload keeps refusing a substituted identity key. */
function indexedDbPins(hospitalId: string): PinStore {
  const key = `secagg-pins/${hospitalId}`;
  return { load: () => kvGet<Record<string, Uint8Array>>(key), save: (pins) => kvSet(key, pins) };
}

function requireClient(): HospitalClient {
  if (!client) throw new Error('no records loaded in the training worker');
  return client;
}

function requireTabular(): TabularHospitalClient {
  const c = requireClient();
  if (!(c instanceof TabularHospitalClient)) throw new Error('this hospital holds patient records, not a table: it takes part in risk runs only (import a CSV for tabular runs)');
  return c;
}

/** Moves to the next backend of the chain; the model (on the failed one) is dropped and rebuilt on first use. */
async function fallBack(reason: string, during: string): Promise<BackendName> {
  const from = guard.name;
  try {
    client?.dispose();
  } catch {
    // Its tensors lived on a backend that is gone; nothing more to free.
  }
  try {
    const report = await guard.fallBack(reason, during);
    post({ kind: 'backend', report, failure: report.failures.at(-1)!, message: `${from} failed during ${during} (${reason}); now on ${report.backend}` });
    return report.backend;
  } catch (e) {
    const message = e instanceof NoBackendError ? e.message : `no backend after ${from} failed: ${(e as Error).message}`;
    post({ kind: 'backend', message });
    throw new Error(message);
  }
}

/**
 * Runs one TF.js stage on the backend in use; when the backend fails in it, falls back and does
 * the stage again if `deadline` leaves time for it — at least as long as the failed attempt had
 * run, or as this kind of stage last took — else gives up with the reason.
 */
async function onBackend<T>(kind: string, during: string, deadline: number | undefined, work: () => Promise<T>): Promise<T> {
  const known = await guard.failure();
  if (known) await fallBack(known, `the wait before ${during}`);
  for (;;) {
    const started = Date.now();
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      // A lost device can leave the work waiting on a read for a long while: stop waiting at once
      // (what is left of it fails on its next operation, its model being disposed below).
      const lost = guard.whenFailed().then((reason) => Promise.reject(new Error(reason)));
      outcome = { ok: true, value: await Promise.race([work(), lost]) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    // A result computed while the device reported an error is not trusted either.
    const broken = await guard.failure(outcome.ok ? undefined : outcome.error);
    if (!broken) {
      if (!outcome.ok) throw outcome.error;
      lastSeconds.set(kind, (Date.now() - started) / 1000);
      return outcome.value;
    }
    const from = guard.name;
    const used = (Date.now() - started) / 1000;
    const now = await fallBack(broken, during);
    const need = Math.max(used, lastSeconds.get(kind) ?? 0);
    if (deadline !== undefined && Date.now() + need * 1000 > deadline) {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      throw new Error(`${from} failed during ${during} (${broken}); now on ${now}, but ${left} s before the deadline is too little to do it again (it needs about ${Math.ceil(need)} s)`);
    }
  }
}

/** One training step here and on the reference backend (WASM, or CPU when WASM is the one in use). */
async function checkBackend(): Promise<WorkerReplies['checkBackend']> {
  const current = guard.name;
  if (!current) throw new Error('no backend in use');
  const reference: BackendName = current === 'wasm' ? 'cpu' : 'wasm';
  const input = stepCheckBatch();
  const got = await trainingStepNumbers(input);
  try {
    if (!(await tf.setBackend(reference))) throw new Error(`the ${reference} backend did not initialise`);
    const ref = await trainingStepNumbers(input);
    return compareSteps(got, ref);
  } finally {
    await tf.setBackend(current);
  }
}

async function answer(req: WorkerRequest): Promise<{ value: WorkerReplies[keyof WorkerReplies]; transfer: Transferable[] }> {
  switch (req.op) {
    case 'init': {
      const p = guard.select(req.backend, req.threads);
      ready = p;
      return { value: await p, transfer: [] };
    }
    case 'load': {
      await ready;
      // An imported CSV (kept as its text) makes this a tabular hospital; otherwise its patient records.
      const table = await kvGet<{ name: string; text: string }>(tableKey(req.hospitalId));
      const records = table ? [] : await loadRecords(req.hospitalId);
      client?.dispose();
      const options: HospitalClientOptions = {
        onProgress: (progress) => post({ kind: 'progress', progress }),
        privacyLedger: indexedDbLedger(req.hospitalId),
        // A roster (checked again here) replaces trust on first use; the TOFU pins stay untouched meanwhile.
        ...(req.roster !== undefined ? { roster: parseRoster(req.roster) } : { pinStore: indexedDbPins(req.hospitalId) }),
        ...(req.maxEpsilon !== undefined ? { maxEpsilon: req.maxEpsilon } : {}),
        // Its own identity key, generated in this profile on first use (never derived from the token).
        identity: () => loadOrCreateIdentity(indexedDbIdentity(req.hospitalId)),
      };
      if (table) {
        const tc = new TabularHospitalClient(req.hospitalId, parseCsv(table.text, table.name), options);
        client = tc;
        const { train, val, test } = tc.table;
        return {
          value: { records: train.rows.length + val.rows.length + test.rows.length, train: train.rows.length, val: val.rows.length, test: test.rows.length, numTrainExamples: tc.numTrainExamples, table: { name: table.name, columns: [...train.columns] } },
          transfer: [],
        };
      }
      client = new HospitalClient(req.hospitalId, records, options);
      return {
        value: { records: records.length, train: client.train.length, val: client.val.length, test: client.test.length, numTrainExamples: client.numTrainExamples },
        transfer: [],
      };
    }
    case 'featureSums':
      return { value: requireClient().featureSums(req.seqLen), transfer: [] };
    case 'holdFeatureSums':
      requireClient().holdFeatureSums(req.runId, req.seqLen);
      return { value: null, transfer: [] };
    case 'setStats':
      requireClient().setStats(req.runId, req.stats, req.seqLen);
      return { value: null, transfer: [] };
    case 'tabularPreprocess':
      return { value: requireTabular().tabularPreprocess(req.runId, req.wire, req.secure), transfer: [] };
    case 'setTabularSchema':
      requireTabular().setTabularSchema(req.runId, req.schema);
      return { value: null, transfer: [] };
    case 'fit': {
      const r = await onBackend('train', `round ${req.instr.round} train`, req.deadline, () => requireClient().fit(req.instr));
      return { value: r, transfer: r.weights ? [r.weights.buffer as ArrayBuffer] : [] };
    }
    case 'evaluate':
      return { value: await onBackend('evaluate', `round ${req.instr.round} evaluate`, req.deadline, () => requireClient().evaluate(req.instr)), transfer: [] };
    case 'checkBackend':
      return { value: await onBackend('check', 'the backend check', undefined, checkBackend), transfer: [] };
    case 'secagg': {
      const reply = await requireClient().secureAggregation(req.req);
      // The masked vector (2.3 MB) moves to the page without a copy.
      return { value: reply, transfer: reply.stage === 'masked-input' ? [reply.masked.buffer as ArrayBuffer] : [] };
    }
    case 'he':
      return { value: await requireClient().homomorphic(req.req), transfer: [] };
    case 'score':
      return { value: await onBackend('evaluate', 'scoring patients', undefined, () => requireClient().scorePatients(req.temperature, req.which)), transfer: [] };
    case 'personalise':
      return { value: await onBackend('train', 'personalising the model', undefined, () => requireClient().personalise()), transfer: [] };
    case 'stop':
      client?.stop();
      return { value: null, transfer: [] };
  }
}

// Requests run one at a time (the session already serialises them); `stop` jumps the queue.
let queue: Promise<void> = Promise.resolve();
scope.onmessage = (e) => {
  const req = e.data;
  const run = async () => {
    try {
      const { value, transfer } = await answer(req);
      if (req.op !== 'stop') post({ kind: 'reply', id: req.id, ok: true, value }, transfer);
    } catch (err) {
      post({ kind: 'reply', id: req.id, ok: false, error: (err as Error).message });
    }
  };
  if (req.op === 'stop') void run();
  else queue = queue.then(run);
};
