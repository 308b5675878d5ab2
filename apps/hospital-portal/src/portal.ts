/**
 * The portal's side effects: sign-in over REST, records in IndexedDB, the training worker, and the
 * hospital's Socket.IO connection driven by the shared HospitalSession (the same pipeline as the
 * headless hospital). Records never leave the tab: the worker reads them from IndexedDB and only
 * feature sums, weights and metrics come back to be sent.
 */
import { io, type Socket } from 'socket.io-client';
import { createApiClient } from '@fedcare/shared/api';
import { HospitalSession } from '@fedcare/shared/fl';
import {
  HOSPITAL_NAMESPACE,
  PROTOCOL_VERSION,
  type HospitalClientToServer,
  type HospitalServerToClient,
  type ProtocolErrorPayload,
} from '@fedcare/shared/protocol';
import { summarizeCohort } from './data/cohort';
import { importInfo, kvGet, kvSet, loadRecords, replaceRecords, tableKey } from './data/db';
import { parseCsv } from '@fedcare/shared/tabular';
import { exportIdentityPublicKey, identityFingerprint, keyHex, loadOrCreateIdentity, parseRoster } from '@fedcare/shared/secagg';
import { indexedDbIdentity } from './data/identity';
import { importFileStreams } from './data/importFiles';
import { appendLog, initialPortalState, reduceActivity, type PortalState, type PortalStore } from './store';
import { TrainingWorker } from './worker/compute';
import type { BackendChoice } from './worker/protocol';

type HospitalSocket = Socket<HospitalServerToClient, HospitalClientToServer>;

const TOKEN_KEY = 'fedcare.portal.token';
const STATUS_EVERY_MS = 3000;

export class Portal {
  private worker: TrainingWorker | undefined;
  private workerReady: Promise<void> | undefined;
  private socket: HospitalSocket | undefined;
  private statusTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly store: PortalStore,
    private readonly server = '',
    /** The hospital the URL names (`?hospital=H1`); a token of another hospital is refused. */
    private readonly expectedHospital?: string,
    /** WASM's thread count (`?threads=N`); one per physical core when absent. */
    private readonly threads?: number,
  ) {}

  private set(patch: Partial<ReturnType<PortalStore['getState']>>): void {
    this.store.setState(patch);
  }

  private log(message: string): void {
    this.set(appendLog(this.store.getState(), message));
  }

  /** The shared typed REST client, as this hospital (its answers checked against the API's schemas). */
  private api(token: string) {
    return createApiClient({ baseUrl: this.server, token }).call;
  }

  /** Restores a token saved in this tab (sessionStorage) after a reload. */
  async resume(): Promise<void> {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) await this.signIn(saved);
  }

  async signIn(rawToken: string): Promise<void> {
    const token = rawToken.trim();
    this.set({ signInError: undefined });
    let who: { role: string; hospital_id?: string };
    try {
      who = await this.api(token)('whoami');
    } catch (e) {
      this.set({ signInError: `sign-in failed: ${(e as Error).message}` });
      return;
    }
    if (who.role !== 'hospital' || !who.hospital_id) {
      this.set({ signInError: 'this is not a hospital token (the admin token belongs on the dashboard)' });
      return;
    }
    if (this.expectedHospital && who.hospital_id !== this.expectedHospital) {
      this.set({ signInError: `this token belongs to ${who.hospital_id}, not ${this.expectedHospital}` });
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    this.set({ token, hospitalId: who.hospital_id });
    this.log(`signed in as ${who.hospital_id}`);
    this.pollStatus();
    this.set({ maxEpsilon: await kvGet<number>(`privacy-cap/${who.hospital_id}`), roster: await kvGet<Record<string, string>>(`secagg-roster/${who.hospital_id}`) });
    void this.showIdentity(who.hospital_id);
    await this.showStoredRecords(who.hospital_id);
    await this.startWorker(this.store.getState().backendChoice);
  }

  signOut(): void {
    this.leave();
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.worker?.terminate();
    this.worker = undefined;
    sessionStorage.removeItem(TOKEN_KEY);
    this.store.setState({ ...initialPortalState });
  }

  private pollStatus(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    const tick = async () => {
      const token = this.store.getState().token;
      if (!token) return;
      try {
        this.set({ status: await this.api(token)('getStatus'), statusError: undefined });
      } catch (e) {
        this.set({ statusError: `coordinator unreachable: ${(e as Error).message}` });
      }
    };
    void tick();
    this.statusTimer = setInterval(() => void tick(), STATUS_EVERY_MS);
  }

  private async showStoredRecords(hospitalId: string): Promise<void> {
    const [records, info] = await Promise.all([loadRecords(hospitalId), importInfo(hospitalId)]);
    this.set({ summary: records.length ? summarizeCohort(records) : undefined, importedAt: info?.imported_at });
  }

  /** (Re)starts the training worker on the chosen backend and loads the stored records into it. */
  async startWorker(choice: BackendChoice): Promise<void> {
    if (this.socket) throw new Error('leave the federation before changing the backend');
    this.worker?.terminate();
    const worker = new TrainingWorker();
    this.worker = worker;
    worker.onProgress((progress) => this.set({ progress }));
    // A backend that fails while in use is replaced by the next of the chain inside the worker.
    worker.onBackend((e) => {
      if (this.worker !== worker) return;
      if (e.report) this.set({ backend: e.report, backendCheck: undefined });
      this.log(e.message);
    });
    this.set({ backendChoice: choice, backend: undefined, backendError: undefined, loaded: undefined, backendCheck: undefined });
    this.workerReady = (async () => {
      try {
        const backend = await worker.init(choice, this.threads);
        if (this.worker !== worker) return;
        this.set({ backend });
        this.log(`TensorFlow.js backend: ${backend.backend} (${backend.detail})${backend.attempts.filter((a) => !a.ok).map((a) => `; ${a.backend} not used: ${a.reason}`).join('')}`);
        await this.loadIntoWorker();
      } catch (e) {
        if (this.worker === worker) this.set({ backendError: (e as Error).message });
      }
    })();
    await this.workerReady;
  }

  /**
   * Runs one training step of the model (synthetic patients, never the hospital's) on the backend in
   * use and on a reference backend, and shows how far apart loss and gradients are.
   */
  async checkBackend(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.store.getState().backendCheck === 'running') return;
    this.set({ backendCheck: 'running' });
    try {
      const result = await worker.checkBackend();
      if (this.worker !== worker) return;
      this.set({ backendCheck: result });
      this.log(
        `backend check: ${result.backend} against ${result.reference}, one training step: loss differs by ${result.lossRelativeError.toExponential(1)}, ` +
          `gradients and DP-clipped sums by at most ${result.worstRelativeError.toExponential(1)} (${result.worstParam}), per-example norms by ${result.normRelativeError.toExponential(1)} — ${result.agrees ? 'they agree' : 'they DISAGREE'}`,
      );
    } catch (e) {
      if (this.worker !== worker) return;
      this.set({ backendCheck: { error: (e as Error).message } });
      this.log(`backend check failed: ${(e as Error).message}`);
    }
  }

  /**
   * Scores every imported patient with the newest global model, or with this hospital's personalised
   * copy of it, in the worker; nothing is sent.
   */
  async scorePatients(which: 'global' | 'personalised' = 'global'): Promise<void> {
    const worker = this.worker;
    if (!worker || this.store.getState().patients?.state === 'scoring') return;
    this.set({ patients: { state: 'scoring' } });
    try {
      const scores = await worker.scorePatients(which === 'global' ? await this.temperature() : 1, which);
      if (this.worker !== worker) return;
      this.set({ patients: { state: 'ready', scores } });
      this.log(`scored ${scores.scores.length} patients with the ${which === 'personalised' ? 'personalised copy of the ' : ''}round ${scores.round} model of ${scores.run_id} (SHA-256 ${scores.model_sha256.slice(0, 12)}…, temperature ${scores.temperature})`);
    } catch (e) {
      if (this.worker !== worker) return;
      this.set({ patients: { state: 'error', error: (e as Error).message } });
      this.log(`scoring failed: ${(e as Error).message}`);
    }
  }

  /**
   * Fine-tunes this hospital's copy of the newest global model (the head and the fusion norm, on its
   * own training split, in the worker; under the run's DP and this hospital's budget when the run has
   * DP), then scores the patients with it. The copy never leaves the worker.
   */
  async personalise(): Promise<void> {
    const worker = this.worker;
    if (!worker || this.store.getState().personalisation?.state === 'running') return;
    this.set({ personalisation: { state: 'running' } });
    this.log('personalising the newest global model on this hospital\'s training split …');
    try {
      const report = await worker.personalise();
      if (this.worker !== worker) return;
      this.set({ personalisation: { state: 'ready', report } });
      this.log(`personalised the round ${report.round} model: own test AUC-ROC ${report.global.test.auc_roc.toFixed(3)} → ${report.personalised.test.auc_roc.toFixed(3)}, epoch ${report.best_epoch} of ${report.epochs_run} kept by validation loss${report.privacy_epsilon !== undefined ? `, ε now ${report.privacy_epsilon.toFixed(3)}` : ''}`);
      await this.scorePatients('personalised');
    } catch (e) {
      if (this.worker !== worker) return;
      this.set({ personalisation: { state: 'error', error: (e as Error).message } });
      this.log(`personalisation failed: ${(e as Error).message}`);
    }
  }

  /**
   * The calibration temperature of the newest model's round (the coordinator picks it from the
   * hospitals' validation statistics, shared/src/train/calibration.ts), 1 when the round has none or
   * the coordinator cannot be asked: the same probabilities `fedcare export` + `predict` give.
   */
  private async temperature(): Promise<number> {
    const { token, model } = this.store.getState();
    if (!token || !model) return 1;
    try {
      const res = await this.api(token)('getRunMetrics', { params: { run_id: model.run_id }, query: { round_number: model.round } });
      const t = res.rounds[0]?.metrics.temperature;
      return typeof t === 'number' && Number.isFinite(t) && t > 0 ? t : 1;
    } catch (e) {
      this.log(`no calibration temperature from the coordinator (${(e as Error).message}); scoring uncalibrated`);
      return 1;
    }
  }

  private async loadIntoWorker(): Promise<void> {
    const { hospitalId } = this.store.getState();
    if (!hospitalId || !this.worker) return;
    const { maxEpsilon, roster } = this.store.getState();
    const loaded = await this.worker.load(hospitalId, maxEpsilon, roster);
    // A new worker client holds no global model: earlier scores no longer describe these records.
    this.set({ loaded, model: undefined, patients: undefined, personalisation: undefined });
  }

  /** The identity key the worker will sign with (this profile's, in IndexedDB: created now on first use), and its fingerprint. */
  private async showIdentity(hospitalId: string): Promise<void> {
    try {
      const key = await exportIdentityPublicKey((await loadOrCreateIdentity(indexedDbIdentity(hospitalId))).publicKey);
      this.set({ identity: { key: keyHex(key), fingerprint: await identityFingerprint(key) } });
    } catch (e) {
      this.log(`identity key unavailable: ${(e as Error).message}`);
    }
  }

  /**
   * Loads (JSON text) or clears (undefined) the federation roster: the other hospitals' identity
   * keys as their operators published them out of band. Checked before it is kept; kept in IndexedDB.
   */
  async setRoster(text: string | undefined): Promise<void> {
    const { hospitalId, identity } = this.store.getState();
    if (!hospitalId) return;
    if (this.socket) throw new Error('leave the federation before changing the roster');
    let roster: Record<string, string> | undefined;
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new Error(`the roster is not JSON: ${(e as Error).message}`);
      }
      roster = Object.fromEntries(Object.entries(parseRoster(parsed)).map(([h, k]) => [h, keyHex(k)]));
      // Its own entry, if any, must be its own key: a roster that disagrees is the wrong roster.
      if (identity && roster[hospitalId] !== undefined && roster[hospitalId] !== identity.key) {
        throw new Error(`the roster's key for ${hospitalId} is not this hospital's identity key (fingerprint ${identity.fingerprint}): wrong roster?`);
      }
    }
    await this.saveSetting(
      `secagg-roster/${hospitalId}`,
      roster,
      { roster },
      roster ? `roster loaded: ${Object.keys(roster).sort().join(', ')}; identity keys not in it are refused` : 'roster cleared: identity keys are pinned on first use',
    );
  }

  /** Keeps one hospital setting in IndexedDB and in the store, logs it, and reloads the worker with it. */
  private async saveSetting(key: string, value: unknown, patch: Partial<PortalState>, message: string): Promise<void> {
    await kvSet(key, value);
    this.set(patch);
    this.log(message);
    await this.workerReady;
    await this.loadIntoWorker();
  }

  /** Sets (or clears, with undefined) the hospital's own ε cap; kept in IndexedDB, applied to the worker at once. */
  async setMaxEpsilon(cap: number | undefined): Promise<void> {
    const { hospitalId } = this.store.getState();
    if (!hospitalId) return;
    if (this.socket) throw new Error('leave the federation before changing the privacy policy');
    if (cap !== undefined && !(Number.isFinite(cap) && cap > 0)) throw new Error('the ε cap must be a number > 0');
    await this.saveSetting(
      `privacy-cap/${hospitalId}`,
      cap,
      { maxEpsilon: cap },
      cap === undefined ? 'privacy policy: follow each run’s target ε' : `privacy policy: only differentially private runs, never past ε ${cap}`,
    );
  }

  /** Imports NDJSON / FHIR files: valid records replace this hospital's set in IndexedDB, problems are listed. */
  async importFiles(files: readonly File[]): Promise<void> {
    const { hospitalId } = this.store.getState();
    if (!hospitalId) return;
    if (this.socket) {
      this.set({ importError: 'leave the federation before importing records' });
      return;
    }
    this.set({ importing: true, importError: undefined });
    try {
      if (files.some((f) => /\.csv$/i.test(f.name))) return await this.importTable(hospitalId, files);
      // FHIR Bulk Data files are streamed line by line; other files are read whole.
      const outcome = await importFileStreams(files, hospitalId);
      this.set({ importOutcome: outcome });
      if (outcome.records.length === 0) {
        this.set({ importError: 'no valid records in these files; the stored records are unchanged' });
        return;
      }
      await replaceRecords(hospitalId, outcome.records, { files: files.map((f) => f.name), issues: outcome.issues.length });
      // Records replace an imported table: this hospital takes part in risk runs again.
      await kvSet(tableKey(hospitalId), undefined);
      this.log(`imported ${outcome.records.length} records from ${files.length} file(s)${outcome.issues.length ? `, ${outcome.issues.length} problem(s) listed` : ''}`);
      await this.showStoredRecords(hospitalId);
      await this.workerReady;
      await this.loadIntoWorker();
    } catch (e) {
      this.set({ importError: (e as Error).message });
    } finally {
      this.set({ importing: false });
    }
  }

  /**
   * A CSV (a header row, any columns) for tabular runs: checked here (a malformed file names its line
   * and nothing is kept), then kept in IndexedDB as its text; the worker's client becomes a tabular
   * one. The rows never leave the tab: the run names the target, and only the table's shape, its
   * sums (masked with secure aggregation), weights and metrics are sent.
   */
  private async importTable(hospitalId: string, files: readonly File[]): Promise<void> {
    if (files.length !== 1) {
      this.set({ importError: 'import one CSV file at a time' });
      return;
    }
    const file = files[0] as File;
    const text = await file.text();
    let table;
    try {
      table = parseCsv(text, file.name);
    } catch (e) {
      this.set({ importError: (e as Error).message });
      return;
    }
    if (table.rows.length === 0) {
      this.set({ importError: `${file.name} has a header and no rows; the stored data is unchanged` });
      return;
    }
    await kvSet(tableKey(hospitalId), { name: file.name, text });
    this.set({ importOutcome: undefined, summary: undefined });
    this.log(`imported the table ${file.name}: ${table.rows.length} rows, ${table.columns.length} columns (${table.columns.join(', ')}); it takes part in tabular runs`);
    await this.workerReady;
    await this.loadIntoWorker();
  }

  /** Connects to the coordinator as this hospital: it takes part in the current run and the next ones. */
  join(): void {
    const s = this.store.getState();
    const worker = this.worker;
    if (this.socket || !worker || !s.token || !s.hospitalId || !s.loaded || !s.backend) return;
    const hospitalId = s.hospitalId;
    const socket: HospitalSocket = io(`${this.server}${HOSPITAL_NAMESPACE}`, {
      auth: { token: s.token, hospital_id: hospitalId, client_version: PROTOCOL_VERSION, num_records: s.loaded.numTrainExamples, host: `browser/${s.backend.backend}` },
      transports: ['websocket'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    this.socket = socket;
    this.set({ connection: 'connecting', connectionError: undefined });
    const session = new HospitalSession(
      hospitalId,
      worker,
      {
        sendResult: async (result) => {
          const res = await socket.timeout(60_000).emitWithAck('fl:result', result);
          if (!res.ok) this.log(`result rejected: ${res.error.code}: ${res.error.message}`);
        },
        sendDecline: async (d) => {
          if (socket.connected) await socket.timeout(10_000).emitWithAck('fl:decline', d);
        },
      },
      {
        log: (m) => this.log(m.replace(`${hospitalId}: `, '')),
        onActivity: (a) => this.set(reduceActivity(this.store.getState(), a)),
        onRun: (run) => {
          this.set({ run, ...(run.status !== 'running' ? { stage: undefined, progress: undefined } : {}) });
        },
      },
    );
    socket.on('connect', () => {
      this.set({ connection: 'joined', connectionError: undefined });
      this.log('joined the federation');
    });
    let lastError: ProtocolErrorPayload | undefined;
    socket.on('disconnect', (reason) => {
      if (this.socket !== socket) return;
      this.log(`disconnected (${reason})`);
      if (reason === 'io server disconnect') {
        // Closed by the coordinator on purpose (token revoked, this hospital signed in elsewhere):
        // Socket.IO will not reconnect, so say why instead of showing "reconnecting" forever.
        socket.close();
        this.socket = undefined;
        this.set({ connection: 'refused', connectionError: lastError ? `${lastError.code}: ${lastError.message}` : 'the coordinator closed the connection' });
        return;
      }
      this.set({ connection: reason === 'io client disconnect' ? 'offline' : 'reconnecting', connectionError: reason });
    });
    socket.on('connect_error', (err) => {
      const data = (err as Error & { data?: ProtocolErrorPayload }).data;
      if (data && (data.code === 'UNAUTHORIZED' || data.code === 'FORBIDDEN' || data.code === 'INVALID_PAYLOAD')) {
        socket.close();
        this.socket = undefined;
        this.set({ connection: 'refused', connectionError: `${data.code}: ${data.message}` });
        return;
      }
      this.set({ connection: 'reconnecting', connectionError: err.message });
    });
    socket.on('fl:error', (e) => {
      lastError = e;
      this.log(`coordinator: ${e.code}: ${e.message}`);
    });
    socket.on('fl:stats', (raw) => void session.onStats(raw));
    socket.on('fl:instruction', (raw) => void session.onInstruction(raw));
    socket.on('fl:run', (raw) => void session.onRun(raw));
  }

  /** Leaves cleanly: the training in progress stops at its next minibatch and the connection closes. */
  leave(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    this.worker?.stop();
    socket.removeAllListeners();
    socket.disconnect();
    this.set({ connection: 'offline', connectionError: undefined, stage: undefined, progress: undefined });
    this.log('left the federation');
  }
}
