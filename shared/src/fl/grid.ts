/**
 * How the round engine reaches hospitals. The server implements it over Socket.IO; tests and
 * single-process simulations implement it in memory. The engine never sees a socket.
 */
import type { ProtocolError } from '../protocol/errors';
import type { Instruction, StageName, StageResult } from '../protocol/messages';
import type { AdaptiveDeadline } from './stragglers';

export interface StageRequest<R extends StageResult = StageResult> {
  runId: string;
  round: number;
  stage: StageName;
  /** Hospitals asked to take part. */
  targets: readonly string[];
  /** The instruction for one hospital (may differ per hospital). */
  instruction: (hospitalId: string) => Instruction;
  /** Content checks beyond the schema (length, finiteness, checksum): a ProtocolError rejects the result (the client is told; it may not resend). */
  check?: (hospitalId: string, result: R) => ProtocolError | undefined | Promise<ProtocolError | undefined>;
  /** Milliseconds before hospitals that have not answered are dropped. */
  timeoutMs: number;
  /** Fewer live targets than this → the stage fails at once (no point waiting). */
  minResults: number;
  /** Stragglers (./stragglers.ts): once half the targets answered, wait at most max(minMs, factor × their median time). */
  adaptiveDeadline?: AdaptiveDeadline;
}

export interface Dropout {
  hospitalId: string;
  reason: 'disconnected' | 'timeout' | 'rejected' | 'declined';
  detail?: string;
}

export interface StageOutcome<R extends StageResult = StageResult> {
  results: Map<string, R>;
  dropped: Dropout[];
  /** Bytes on the wire per hospital during the stage. */
  bytes: Map<string, { up: number; down: number }>;
  /** Milliseconds from the stage's start to each answer (results and rejections), where the grid measures it. */
  elapsedMs?: Map<string, number>;
}

export interface Grid {
  /** Hospitals connected and authenticated now. */
  available(): string[];
  /** Resolves when at least `n` hospitals are available (true) or after `timeoutMs` (false). */
  waitForClients(n: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Runs one stage: sends, collects, drops the late and the lost. Never rejects for client faults. */
  request<R extends StageResult>(req: StageRequest<R>, signal?: AbortSignal): Promise<StageOutcome<R>>;
  /** Sends to every connected hospital (run lifecycle, global statistics). */
  broadcast(event: 'fl:stats' | 'fl:run', payload: unknown): void;
  /** The labelled records a hospital declared when it signed in (num_records), if any: its weight bound (./influence.ts). */
  declaredRecords?(hospitalId: string): number | undefined;
}
