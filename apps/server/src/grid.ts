/**
 * The round engine's Grid over Socket.IO: the `/hospital` namespace, one authenticated socket per
 * hospital. It sends stage instructions, validates every `fl:result` (schema, run, round, stage,
 * selection, replay, content) before anything reaches aggregation, answers each with a typed
 * acknowledgement, drops hospitals that disconnect, time out or send bad results, and measures the
 * bytes each hospital moves on the wire.
 */
import type { Namespace, Socket } from 'socket.io';
import {
  declineSchema,
  ProtocolError,
  resultSchema,
  validate,
  type Ack,
  type HospitalClientToServer,
  type HospitalServerToClient,
  type Instruction,
  type WireInstruction,
  type ProtocolErrorPayload,
  type RunEvent,
  type StageResult,
} from '@fedcare/shared/protocol';
import { adaptiveDeadlineMs, type Dropout, type Grid, type StageOutcome, type StageRequest } from '@fedcare/shared/fl';

export interface HospitalSocketData {
  hospitalId: string;
  /** SHA-256 (hex) of the token it signed in with: re-checked on revocation; the token itself is not kept (server.ts). */
  tokenDigest?: string;
  host?: string;
  numRecords?: number;
  /** SHA-256 of the last model this connection acknowledged (a valid result to an instruction carrying it). */
  heldModel?: string;
}

export type HospitalSocket = Socket<HospitalClientToServer, HospitalServerToClient, Record<string, never>, HospitalSocketData>;
export type HospitalNamespace = Namespace<HospitalClientToServer, HospitalServerToClient, Record<string, never>, HospitalSocketData>;

export interface GridEvents {
  /** A result or decline was rejected (for the audit log and the dashboard). */
  onReject?(hospitalId: string, error: ProtocolErrorPayload): void;
  onDecline?(hospitalId: string, reason: string): void;
  /** A hospital's connection closed; `detail` says why when the transport failed (e.g. a message over the size limit). */
  onDisconnect?(hospitalId: string, reason: string, detail?: string): void;
  onConnectionChange?(hospitals: string[]): void;
  /** A run event went to the hospitals (completed, failed, stopped). */
  onRun?(event: RunEvent): void;
}

interface OpenStage {
  req: StageRequest;
  pending: Set<string>;
  /** Received, content check still running. */
  checking: Set<string>;
  results: Map<string, StageResult>;
  dropped: Map<string, Dropout>;
  bytesAtStart: Map<string, { up: number; down: number }>;
  /** When the stage began (performance.now()), and each answer's delay from then. */
  startedAt: number;
  elapsedMs: Map<string, number>;
  /** The model (SHA-256) each hospital's instruction carried in full: held once it answers validly. */
  sentModel: Map<string, string>;
  settle: () => void;
}

function byteLength(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

export class SocketGrid implements Grid {
  private readonly sockets = new Map<string, HospitalSocket>();
  private readonly counters = new Map<string, { up: number; down: number }>();
  private open: OpenStage | undefined;
  private lastStats: unknown;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly nsp: HospitalNamespace,
    private readonly events: GridEvents = {},
  ) {
    nsp.on('connection', (socket) => this.attach(socket));
  }

  available(): string[] {
    return [...this.sockets.keys()].sort();
  }

  /** Cumulative bytes per hospital since it first connected (up = hospital → server). */
  bytes(hospitalId: string): { up: number; down: number } {
    return { ...(this.counters.get(hospitalId) ?? { up: 0, down: 0 }) };
  }

  /** The currently open stage, for status reporting. */
  currentStage(): { runId: string; round: number; stage: string } | undefined {
    return this.open ? { runId: this.open.req.runId, round: this.open.req.round, stage: this.open.req.stage } : undefined;
  }

  private attach(socket: HospitalSocket): void {
    const h = socket.data.hospitalId;
    const previous = this.sockets.get(h);
    if (previous && previous.id !== socket.id) {
      previous.emit('fl:error', { code: 'FORBIDDEN', message: `another connection signed in as ${h}; this one is closed` });
      previous.disconnect(true);
    }
    this.sockets.set(h, socket);
    const counter = this.counters.get(h) ?? { up: 0, down: 0 };
    this.counters.set(h, counter);
    socket.conn.on('packet', (p: { data?: unknown }) => (counter.up += byteLength(p.data)));
    socket.conn.on('packetCreate', (p: { data?: unknown }) => (counter.down += byteLength(p.data)));

    socket.on('fl:result', (msg, ack) => this.onResult(socket, msg, ack));
    socket.on('fl:decline', (msg, ack) => this.onDecline(socket, msg, ack));
    socket.on('disconnect', (reason, description: unknown) => {
      if (this.sockets.get(h) === socket) this.sockets.delete(h);
      // A transport error carries its cause: Socket.IO's size limit closes the connection this way.
      const detail = reason === 'transport error' && description instanceof Error ? `${reason}: ${description.message}` : undefined;
      this.dropIfPending(h, 'disconnected', detail);
      this.events.onDisconnect?.(h, reason, detail);
      this.events.onConnectionChange?.(this.available());
    });
    if (this.lastStats !== undefined) socket.emit('fl:stats', this.lastStats as never);
    this.events.onConnectionChange?.(this.available());
    for (const w of [...this.waiters]) w();
  }

  private reply<T>(ack: unknown, res: Parameters<Ack<T>>[0]): void {
    if (typeof ack === 'function') (ack as Ack<T>)(res);
  }

  private reject(socket: HospitalSocket, ack: unknown, err: ProtocolError, event: string): void {
    const payload = err.toPayload(event);
    this.reply(ack, { ok: false, error: payload });
    if (typeof ack !== 'function') socket.emit('fl:error', payload);
    this.events.onReject?.(socket.data.hospitalId, payload);
  }

  /** Routing checks common to results and declines. */
  private route(h: string, msg: { run_id: string; round: number; stage: string }): ProtocolError | undefined {
    const open = this.open;
    if (!open) return new ProtocolError('WRONG_STAGE', `no stage is open (got ${msg.stage} for round ${msg.round})`, 'stage');
    const { req } = open;
    if (msg.run_id !== req.runId) return new ProtocolError('WRONG_RUN', `run ${msg.run_id} is not the active run ${req.runId}`, 'run_id');
    if (msg.round < req.round) return new ProtocolError('STALE_ROUND', `round ${msg.round} is over; round ${req.round} is open`, 'round');
    if (msg.round > req.round) return new ProtocolError('FUTURE_ROUND', `round ${msg.round} has not started; round ${req.round} is open`, 'round');
    if (msg.stage !== req.stage) return new ProtocolError('WRONG_STAGE', `stage ${msg.stage} is not open; ${req.stage} is`, 'stage');
    if (!req.targets.includes(h)) return new ProtocolError('NOT_SELECTED', `${h} was not selected for ${req.stage} in round ${req.round}`, 'stage');
    if (open.results.has(h) || open.checking.has(h)) return new ProtocolError('DUPLICATE_RESULT', `${h} already sent its ${req.stage} result for round ${req.round}`, 'round');
    if (open.dropped.has(h)) return new ProtocolError('WRONG_STAGE', `${h} was dropped from ${req.stage} in round ${req.round} (${open.dropped.get(h)?.reason})`, 'stage');
    return undefined;
  }

  private async onResult(socket: HospitalSocket, raw: unknown, ack: unknown): Promise<void> {
    const h = socket.data.hospitalId;
    const parsed = validate(resultSchema, raw);
    if (!parsed.ok) return this.reject(socket, ack, new ProtocolError('INVALID_PAYLOAD', parsed.message, parsed.field), 'fl:result');
    const msg = parsed.value;
    const routeErr = this.route(h, msg);
    if (routeErr) return this.reject(socket, ack, routeErr, 'fl:result');
    const open = this.open as OpenStage;
    open.elapsedMs.set(h, performance.now() - open.startedAt);
    open.pending.delete(h);
    open.checking.add(h); // claimed: a concurrent duplicate now fails the replay check
    let contentErr: ProtocolError | undefined;
    try {
      contentErr = await open.req.check?.(h, msg as never);
    } catch (e) {
      contentErr = new ProtocolError('INTERNAL', `checking the result failed: ${(e as Error).message}`);
    }
    open.checking.delete(h);
    if (this.open !== open) {
      // the stage ended (timeout or stop) while this result was being checked
      return this.reject(socket, ack, new ProtocolError('STALE_ROUND', `the ${open.req.stage} stage of round ${open.req.round} closed before the result was checked`, 'round'), 'fl:result');
    }
    if (contentErr) {
      open.dropped.set(h, { hospitalId: h, reason: 'rejected', detail: `${contentErr.code}: ${contentErr.message}` });
      this.reject(socket, ack, contentErr, 'fl:result');
    } else {
      open.results.set(h, msg);
      const sent = open.sentModel.get(h);
      if (sent) socket.data.heldModel = sent;
      this.reply(ack, { ok: true, value: { accepted: true } });
    }
    open.settle();
  }

  private onDecline(socket: HospitalSocket, raw: unknown, ack: unknown): void {
    const h = socket.data.hospitalId;
    const parsed = validate(declineSchema, raw);
    if (!parsed.ok) return this.reject(socket, ack, new ProtocolError('INVALID_PAYLOAD', parsed.message, parsed.field), 'fl:decline');
    const routeErr = this.route(h, parsed.value);
    if (routeErr) return this.reject(socket, ack, routeErr, 'fl:decline');
    if (parsed.value.reason.startsWith('UNKNOWN_MODEL')) delete socket.data.heldModel;
    this.events.onDecline?.(h, parsed.value.reason);
    this.dropIfPending(h, 'declined', parsed.value.reason);
    this.reply(ack, { ok: true, value: { recorded: true } });
  }

  private dropIfPending(h: string, reason: Dropout['reason'], detail?: string): void {
    const open = this.open;
    if (!open || !open.pending.has(h)) return;
    open.pending.delete(h);
    open.dropped.set(h, { hospitalId: h, reason, ...(detail ? { detail } : {}) });
    open.settle();
  }

  async waitForClients(n: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.sockets.size >= n) return true;
    if (signal?.aborted) return false; // an 'abort' listener added now would never fire
    return new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const check = () => this.sockets.size >= n && done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(this.sockets.size >= n), timeoutMs);
      this.waiters.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  request<R extends StageResult>(req: StageRequest<R>, signal?: AbortSignal): Promise<StageOutcome<R>> {
    if (this.open) throw new Error(`stage ${this.open.req.stage} of round ${this.open.req.round} is still open`);
    return new Promise<StageOutcome<R>>((resolve) => {
      const open: OpenStage = {
        req: req as unknown as StageRequest,
        pending: new Set(),
        checking: new Set(),
        results: new Map(),
        dropped: new Map(),
        bytesAtStart: new Map(req.targets.map((h) => [h, this.bytes(h)])),
        startedAt: performance.now(),
        elapsedMs: new Map(),
        sentModel: new Map(),
        settle: () => {},
      };
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        const cut = !signal?.aborted && deadlineMs < req.timeoutMs ? { detail: `straggler: past the adaptive deadline of ${(deadlineMs / 1000).toFixed(1)} s` } : {};
        for (const h of open.pending) open.dropped.set(h, { hospitalId: h, reason: signal?.aborted ? 'disconnected' : 'timeout', ...cut });
        for (const h of open.checking) open.dropped.set(h, { hospitalId: h, reason: 'timeout', detail: 'result arrived as the stage closed' });
        open.pending.clear();
        this.open = undefined;
        const bytes = new Map<string, { up: number; down: number }>();
        for (const h of req.targets) {
          const start = open.bytesAtStart.get(h) ?? { up: 0, down: 0 };
          const nowB = this.bytes(h);
          bytes.set(h, { up: nowB.up - start.up, down: nowB.down - start.down });
        }
        resolve({ results: open.results as unknown as Map<string, R>, dropped: [...open.dropped.values()], bytes, elapsedMs: open.elapsedMs });
      };
      let timer = setTimeout(finish, req.timeoutMs);
      let deadlineMs = req.timeoutMs;
      open.settle = () => {
        const live = open.pending.size + open.checking.size + open.results.size;
        if ((open.pending.size === 0 && open.checking.size === 0) || live < req.minResults) return finish();
        // Stragglers: once half the targets answered, the stage waits a few times their median time at most.
        const adaptive = req.adaptiveDeadline && adaptiveDeadlineMs([...open.elapsedMs.values()], req.targets.length, req.adaptiveDeadline);
        if (adaptive !== undefined && adaptive < deadlineMs) {
          deadlineMs = adaptive;
          clearTimeout(timer);
          timer = setTimeout(finish, Math.max(0, open.startedAt + deadlineMs - performance.now()));
        }
      };
      signal?.addEventListener('abort', finish, { once: true });
      if (signal?.aborted) return finish(); // stopped before the stage began: send nothing
      this.open = open;
      for (const h of req.targets) {
        const socket = this.sockets.get(h);
        if (!socket) {
          open.dropped.set(h, { hospitalId: h, reason: 'disconnected' });
          continue;
        }
        open.pending.add(h);
        socket.emit('fl:instruction', this.sendOnce(socket, open, req.instruction(h)));
      }
      open.settle();
    });
  }

  /**
   * Each model goes to a connection once (../protocol/messages.ts): an instruction whose model this
   * socket already acknowledged goes without its weights, named by its SHA-256 alone.
   */
  private sendOnce(socket: HospitalSocket, open: OpenStage, instr: Instruction): WireInstruction {
    if (instr.stage !== 'train' && instr.stage !== 'evaluate' && instr.stage !== 'preprocess') return instr;
    if (!instr.weights || !instr.weights_sha256) return instr;
    if (socket.data.heldModel === instr.weights_sha256) {
      const { weights: _held, ...named } = instr;
      return named;
    }
    open.sentModel.set(socket.data.hospitalId, instr.weights_sha256);
    return instr;
  }

  broadcast(event: 'fl:stats' | 'fl:run', payload: unknown): void {
    if (event === 'fl:stats') this.lastStats = payload;
    this.nsp.emit(event, payload as never);
    if (event === 'fl:run') this.events.onRun?.(payload as RunEvent);
  }

  /** What the hospital said it runs on at sign-in ('node', 'browser/webgl', …). */
  hostOf(hospitalId: string): string | undefined {
    return this.sockets.get(hospitalId)?.data.host;
  }

  /** Labelled training examples the hospital said it holds at sign-in (for the privacy planner). */
  numRecordsOf(hospitalId: string): number | undefined {
    return this.sockets.get(hospitalId)?.data.numRecords;
  }

  /** The Grid's view of the same: the round engine freezes the first one of a run as the hospital's weight bound. */
  declaredRecords(hospitalId: string): number | undefined {
    return this.numRecordsOf(hospitalId);
  }
}
