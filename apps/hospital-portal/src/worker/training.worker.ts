/**
 * The portal's training worker: TF.js on the backend picked by feature detection, the hospital's
 * records read straight from IndexedDB, and the same HospitalClient the headless hospital uses.
 * It answers the page's requests one by one; `stop` interrupts a training in progress.
 */
// tfjs-core registers no gradients by itself (the union package does it for Node hosts).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { HospitalClient, type PinStore, type PrivacyLedgerState, type PrivacyLedgerStore } from '@fedcare/shared/fl';
import { parseRoster } from '@fedcare/shared/secagg';
import { kvGet, kvSet, loadRecords } from '../data/db';
import { selectBackend } from './backend';
import type { WorkerMessage, WorkerReplies, WorkerRequest } from './protocol';

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerMessage, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

let client: HospitalClient | undefined;
let ready: Promise<unknown> | undefined;

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  scope.postMessage(message, transfer);
}

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

async function answer(req: WorkerRequest): Promise<{ value: WorkerReplies[keyof WorkerReplies]; transfer: Transferable[] }> {
  switch (req.op) {
    case 'init': {
      const p = selectBackend(req.backend);
      ready = p;
      return { value: await p, transfer: [] };
    }
    case 'load': {
      await ready;
      const records = await loadRecords(req.hospitalId);
      client?.dispose();
      client = new HospitalClient(req.hospitalId, records, {
        onProgress: (progress) => post({ kind: 'progress', progress }),
        privacyLedger: indexedDbLedger(req.hospitalId),
        // A roster (checked again here) replaces trust on first use; the TOFU pins stay untouched meanwhile.
        ...(req.roster !== undefined ? { roster: parseRoster(req.roster) } : { pinStore: indexedDbPins(req.hospitalId) }),
        ...(req.maxEpsilon !== undefined ? { maxEpsilon: req.maxEpsilon } : {}),
        ...(req.credential !== undefined ? { credential: req.credential } : {}),
      });
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
    case 'fit': {
      const r = await requireClient().fit(req.instr);
      return { value: r, transfer: r.weights ? [r.weights.buffer as ArrayBuffer] : [] };
    }
    case 'evaluate':
      return { value: await requireClient().evaluate(req.instr), transfer: [] };
    case 'secagg': {
      const reply = await requireClient().secureAggregation(req.req);
      // The masked vector (2.3 MB) moves to the page without a copy.
      return { value: reply, transfer: reply.stage === 'masked-input' ? [reply.masked.buffer as ArrayBuffer] : [] };
    }
    case 'he':
      return { value: await requireClient().homomorphic(req.req), transfer: [] };
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
