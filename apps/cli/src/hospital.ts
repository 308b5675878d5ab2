/**
 * The headless hospital: the shared HospitalClient behind a Socket.IO connection. Reconnects with
 * backoff; after a reconnect it simply answers the next instruction it receives (the coordinator
 * dropped it from the stage it missed). Refused credentials are fatal, not retried.
 */
import { io, type Socket } from 'socket.io-client';
import { HospitalClient, type ClientProgress } from '@fedcare/shared/fl';
import type { PatientRecord } from '@fedcare/shared/data';
import {
  globalStatsSchema,
  HOSPITAL_NAMESPACE,
  instructionSchema,
  PROTOCOL_VERSION,
  ProtocolError,
  runEventSchema,
  validate,
  type HospitalClientToServer,
  type HospitalServerToClient,
  type Instruction,
  type ProtocolErrorPayload,
  type RunEvent,
  type StageResult,
} from '@fedcare/shared/protocol';

export type HospitalSocketClient = Socket<HospitalServerToClient, HospitalClientToServer>;

export interface HeadlessHospitalOptions {
  server: string;
  hospitalId: string;
  token: string;
  records: readonly PatientRecord[];
  modelSeed?: number;
  /** Resolve `done` when a run ends (simulations); otherwise keep serving runs. */
  exitOnRunEnd?: boolean;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  onProgress?: (p: ClientProgress) => void;
  /** Test hook: rewrite a result before it is sent (fault injection). */
  tamper?: (result: StageResult) => StageResult | undefined;
  /** Test hook: called before an instruction is handled; return false to ignore it. */
  beforeInstruction?: (instr: Instruction, socket: HospitalSocketClient) => boolean;
}

export interface HeadlessHospital {
  socket: HospitalSocketClient;
  client: HospitalClient;
  /** Resolves with the run's end event (exitOnRunEnd) or when closed; rejects on a refused credential. */
  done: Promise<RunEvent | undefined>;
  /** Errors the coordinator sent back for our messages. */
  errors: ProtocolErrorPayload[];
  close(): void;
}

export function startHospital(o: HeadlessHospitalOptions): HeadlessHospital {
  const log = o.log ?? (() => {});
  const client = new HospitalClient(o.hospitalId, o.records, { modelSeed: o.modelSeed ?? 0, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const socket: HospitalSocketClient = io(`${o.server}${HOSPITAL_NAMESPACE}`, {
    auth: { token: o.token, hospital_id: o.hospitalId, client_version: PROTOCOL_VERSION, num_records: client.numTrainExamples, host: 'node' },
    transports: ['websocket'],
    reconnection: true,
    reconnectionDelay: 250,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5,
  });
  const errors: ProtocolErrorPayload[] = [];
  let resolveDone!: (v: RunEvent | undefined) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<RunEvent | undefined>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    socket.close();
    client.dispose();
    resolveDone(undefined);
  };

  socket.on('connect', () => log(`${o.hospitalId}: connected`));
  socket.on('disconnect', (reason) => log(`${o.hospitalId}: disconnected (${reason})`));
  socket.on('connect_error', (err) => {
    const data = (err as Error & { data?: ProtocolErrorPayload }).data;
    if (data && (data.code === 'UNAUTHORIZED' || data.code === 'FORBIDDEN' || data.code === 'INVALID_PAYLOAD')) {
      closed = true;
      socket.close();
      client.dispose();
      rejectDone(new Error(`${o.hospitalId}: the coordinator refused the connection: ${data.code}: ${data.message}`));
    } else {
      log(`${o.hospitalId}: cannot reach the coordinator (${err.message}); retrying`);
    }
  });
  socket.on('fl:error', (e) => {
    errors.push(e);
    log(`${o.hospitalId}: coordinator error ${e.code}: ${e.message}`);
  });
  socket.on('fl:stats', (raw) => {
    const msg = validate(globalStatsSchema, raw);
    if (!msg.ok) return log(`${o.hospitalId}: ignoring invalid global statistics (${msg.message})`);
    client.setStats(msg.value.run_id, msg.value.stats, msg.value.seq_len);
    log(`${o.hospitalId}: global statistics for ${msg.value.run_id}`);
  });
  socket.on('fl:run', (raw) => {
    const msg = validate(runEventSchema, raw);
    if (!msg.ok) return;
    log(`${o.hospitalId}: run ${msg.value.run_id} ${msg.value.status}${msg.value.reason ? ` (${msg.value.reason})` : ''}`);
    if (o.exitOnRunEnd && msg.value.status !== 'running') {
      resolveDone(msg.value);
      close();
    }
  });

  // One instruction at a time, in arrival order.
  let queue = Promise.resolve();
  socket.on('fl:instruction', (raw) => {
    queue = queue.then(() => handle(raw)).catch((e: unknown) => log(`${o.hospitalId}: ${(e as Error).message}`));
  });

  const send = async (result: StageResult) => {
    const out = o.tamper ? o.tamper(result) : result;
    if (!out) return;
    const res = await socket.timeout(60_000).emitWithAck('fl:result', out);
    if (!res.ok) {
      errors.push(res.error);
      log(`${o.hospitalId}: result rejected ${res.error.code}: ${res.error.message}`);
    }
  };

  async function handle(raw: unknown): Promise<void> {
    const parsed = validate(instructionSchema, raw);
    if (!parsed.ok) return log(`${o.hospitalId}: ignoring invalid instruction (${parsed.message})`);
    const instr = parsed.value as Instruction;
    if (o.beforeInstruction && !o.beforeInstruction(instr, socket)) return;
    try {
      if (instr.stage === 'preprocess') {
        await send({ run_id: instr.run_id, round: 0, stage: 'preprocess', sums: client.featureSums(instr.seq_len) });
      } else if (instr.stage === 'train') {
        log(`${o.hospitalId}: round ${instr.round} train`);
        const r = await client.fit(instr);
        await send({ run_id: instr.run_id, round: instr.round, stage: 'train', ...r });
      } else {
        const r = await client.evaluate(instr);
        await send({ run_id: instr.run_id, round: instr.round, stage: 'evaluate', ...r });
      }
    } catch (e) {
      const reason = e instanceof ProtocolError ? `${e.code}: ${e.message}` : (e as Error).message;
      log(`${o.hospitalId}: declining ${instr.stage} of round ${instr.round}: ${reason}`);
      if (socket.connected) await socket.timeout(10_000).emitWithAck('fl:decline', { run_id: instr.run_id, round: instr.round, stage: instr.stage, reason }).catch(() => undefined);
    }
  }

  return { socket, client, done, errors, close };
}
