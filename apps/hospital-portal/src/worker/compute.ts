/**
 * The page's handle on the training worker: request/reply by id, progress events, and a
 * HospitalCompute for the shared HospitalSession — the same pipeline as the headless hospital,
 * with the model on the other side of postMessage.
 */
import type { FeatureStats, FeatureSums } from '@fedcare/shared/data';
import type { ClientProgress, EvaluateReply, HospitalCompute, PatientScores, PersonalisationReport, TrainReply } from '@fedcare/shared/fl';
import type { Instruction, TabularPreprocessWire } from '@fedcare/shared/protocol';
import type { TabularPreprocessReply, TabularSchema } from '@fedcare/shared/tabular';
import type { SecAggReply, SecAggRequest } from '@fedcare/shared/secagg';
import type { HeReply, HeRequest } from '@fedcare/shared/he';
import type { BackendChoice, BackendReport, LoadReport, StepComparison, WorkerMessage, WorkerReplies, WorkerRequest } from './protocol';

/** A backend event from the worker: a failure, or the backend it moved to. */
export type BackendEvent = Extract<WorkerMessage, { kind: 'backend' }>;

type Op = WorkerRequest['op'];
type Args<K extends Op> = Omit<Extract<WorkerRequest, { op: K }>, 'id' | 'op'>;

export class TrainingWorker implements HospitalCompute {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly progressListeners = new Set<(p: ClientProgress) => void>();
  private readonly backendListeners = new Set<(e: BackendEvent) => void>();
  private failure: Error | undefined;

  constructor() {
    this.worker = new Worker(new URL('./training.worker.ts', import.meta.url), { type: 'module', name: 'fedcare-training' });
    this.worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const m = e.data;
      if (m.kind === 'progress') {
        for (const l of this.progressListeners) l(m.progress);
        return;
      }
      if (m.kind === 'backend') {
        for (const l of this.backendListeners) l(m);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    };
    this.worker.onerror = (e) => {
      this.failure = new Error(`training worker failed: ${e.message || 'script error'}`);
      for (const p of this.pending.values()) p.reject(this.failure);
      this.pending.clear();
    };
  }

  private call<K extends Exclude<Op, 'stop'>>(op: K, args: Args<K>, transfer: Transferable[] = []): Promise<WorkerReplies[K]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<WorkerReplies[K]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, ...args } as unknown as WorkerRequest, transfer);
    });
  }

  onProgress(listener: (p: ClientProgress) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  /** The backend failed or changed (it falls back on its own when one fails during a stage). */
  onBackend(listener: (e: BackendEvent) => void): () => void {
    this.backendListeners.add(listener);
    return () => this.backendListeners.delete(listener);
  }

  init(backend: BackendChoice, threads?: number): Promise<BackendReport> {
    return this.call('init', { backend, ...(threads ? { threads } : {}) });
  }

  /**
   * roster: the federation's identity keys (hex), exchanged out of band; with one, no relayed key is
   * trusted on first use. The worker signs with this profile's own identity key (IndexedDB).
   */
  load(hospitalId: string, maxEpsilon?: number, roster?: Record<string, string>): Promise<LoadReport> {
    return this.call('load', {
      hospitalId,
      ...(maxEpsilon !== undefined ? { maxEpsilon } : {}),
      ...(roster !== undefined ? { roster } : {}),
    });
  }

  featureSums(seqLen: number): Promise<FeatureSums> {
    return this.call('featureSums', { seqLen });
  }

  /** Secure preprocessing: the sums stay in the worker until round 0's masked-input. */
  async holdFeatureSums(runId: string, seqLen: number): Promise<void> {
    await this.call('holdFeatureSums', { runId, seqLen });
  }

  async setStats(runId: string, stats: FeatureStats, seqLen: number): Promise<void> {
    await this.call('setStats', { runId, stats, seqLen });
  }

  /** A tabular run's preprocessing: the table's shape, or its sums (held in the worker with secure aggregation). */
  tabularPreprocess(runId: string, wire: TabularPreprocessWire, secure: boolean): Promise<TabularPreprocessReply> {
    return this.call('tabularPreprocess', { runId, wire, secure });
  }

  async setTabularSchema(runId: string, schema: TabularSchema): Promise<void> {
    await this.call('setTabularSchema', { runId, schema });
  }

  fit(instr: Extract<Instruction, { stage: 'train' }>, deadline?: number): Promise<TrainReply> {
    return this.call('fit', { instr, ...(deadline !== undefined ? { deadline } : {}) });
  }

  evaluate(instr: Extract<Instruction, { stage: 'evaluate' }>, deadline?: number): Promise<EvaluateReply> {
    return this.call('evaluate', { instr, ...(deadline !== undefined ? { deadline } : {}) });
  }

  /** One training step of the model on synthetic data, here and on a reference backend, compared. */
  checkBackend(): Promise<StepComparison> {
    return this.call('checkBackend', {});
  }

  secureAggregation(req: SecAggRequest): Promise<SecAggReply> {
    return this.call('secagg', { req });
  }

  homomorphic(req: HeRequest): Promise<HeReply> {
    return this.call('he', { req });
  }

  /** Every imported patient scored with the last global model evaluated here (queued behind any stage). */
  scorePatients(temperature: number, which: 'global' | 'personalised' = 'global'): Promise<PatientScores> {
    return this.call('score', { temperature, which });
  }

  /** Personalises the newest global model on this hospital's training split, in the worker (queued behind any stage). */
  personalise(): Promise<PersonalisationReport> {
    return this.call('personalise', {});
  }

  /** Interrupts a training in progress (its fit rejects); other requests are unaffected. */
  stop(): void {
    this.worker.postMessage({ id: 0, op: 'stop' } satisfies WorkerRequest);
  }

  terminate(): void {
    this.worker.terminate();
    const err = new Error('training worker closed');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.failure = err;
  }
}
