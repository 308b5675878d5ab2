/**
 * The headless hospital: the shared HospitalSession and HospitalClient behind a Socket.IO connection. Reconnects with
 * backoff; after a reconnect it simply answers the next instruction it receives (the coordinator
 * dropped it from the stage it missed). Refused credentials are fatal, not retried.
 */
import { io, type Socket } from 'socket.io-client';
import { HospitalClient, HospitalSession, type ClientProgress, type PinStore, type PrivacyLedgerStore } from '@fedcare/shared/fl';
import type { PatientRecord } from '@fedcare/shared/data';
import { TabularHospitalClient, type TabularTable } from '@fedcare/shared/tabular';
import type { KeyPair } from '@fedcare/shared/secagg';
import {
  HOSPITAL_NAMESPACE,
  PROTOCOL_VERSION,
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
  /** PEM certificate(s) of a private CA to trust for an https:// coordinator (besides the system's). */
  ca?: Buffer;
  hospitalId: string;
  token: string;
  records: readonly PatientRecord[];
  /** A table (a CSV) instead of records: the hospital then takes part in tabular runs (@fedcare/shared/tabular). */
  table?: TabularTable;
  /**
   * The hospital's own identity key pair (e.g. `loadOrCreateIdentityFile`), or a loader; never
   * derived from the token. Default: a fresh one for this process (simulations).
   */
  identity?: KeyPair | (() => Promise<KeyPair>);
  modelSeed?: number;
  /** Where the hospital's privacy ledger persists (default: memory). */
  privacyLedger?: PrivacyLedgerStore;
  /** Where the hospital pins the other hospitals' identity keys (default: memory). */
  pinStore?: PinStore;
  /** The federation's identity keys exchanged out of band: then no key is trusted on first use. */
  roster?: Readonly<Record<string, Uint8Array>>;
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
  /** Resolves with the run's end event (exitOnRunEnd) or when closed; rejects on a refused credential or a connection the coordinator closed. */
  done: Promise<RunEvent | undefined>;
  /** Errors the coordinator sent back for our messages. */
  errors: ProtocolErrorPayload[];
  close(): void;
}

export function startHospital(o: HeadlessHospitalOptions): HeadlessHospital {
  const log = o.log ?? (() => {});
  const clientOptions = {
    modelSeed: o.modelSeed ?? 0,
    ...(o.identity ? { identity: o.identity } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.privacyLedger ? { privacyLedger: o.privacyLedger } : {}),
    ...(o.pinStore ? { pinStore: o.pinStore } : {}),
    ...(o.roster ? { roster: o.roster } : {}),
  };
  const client = o.table ? new TabularHospitalClient(o.hospitalId, o.table, clientOptions) : new HospitalClient(o.hospitalId, o.records, clientOptions);
  const socket: HospitalSocketClient = io(`${o.server}${HOSPITAL_NAMESPACE}`, {
    auth: { token: o.token, hospital_id: o.hospitalId, client_version: PROTOCOL_VERSION, num_records: client.numTrainExamples, host: 'node' },
    transports: ['websocket'],
    // `ca` reaches Node's TLS through engine.io-client (a Node-only option its types leave out).
    ...((o.ca ? { ca: o.ca } : {}) as object),
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
  // A host that never awaits `done` must not crash on its rejection (the reason is already in the
  // log: the coordinator's fl:error and the disconnect); a host that awaits `done` still receives it.
  done.catch(() => undefined);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    socket.close();
    client.dispose();
    resolveDone(undefined);
  };

  socket.on('connect', () => log(`${o.hospitalId}: connected`));
  socket.on('disconnect', (reason) => {
    log(`${o.hospitalId}: disconnected (${reason})`);
    // The coordinator closed this connection on purpose (token revoked, another connection signed in
    // as this hospital): Socket.IO will not reconnect, so end with the reason it sent rather than wait forever.
    if (reason === 'io server disconnect' && !closed) {
      const why = errors.at(-1);
      closed = true;
      client.dispose();
      rejectDone(new Error(`${o.hospitalId}: the coordinator closed the connection${why ? `: ${why.code}: ${why.message}` : ''}`));
    }
  });
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

  const session = new HospitalSession(
    o.hospitalId,
    client,
    {
      sendResult: async (result) => {
        const res = await socket.timeout(60_000).emitWithAck('fl:result', result);
        if (!res.ok) {
          errors.push(res.error);
          log(`${o.hospitalId}: result rejected ${res.error.code}: ${res.error.message}`);
        }
      },
      sendDecline: async (d) => {
        if (socket.connected) await socket.timeout(10_000).emitWithAck('fl:decline', d);
      },
    },
    {
      log,
      ...(o.tamper ? { tamper: o.tamper } : {}),
      ...(o.beforeInstruction ? { beforeInstruction: (instr: Instruction) => (o.beforeInstruction as NonNullable<typeof o.beforeInstruction>)(instr, socket) } : {}),
    },
  );
  socket.on('fl:stats', (raw) => void session.onStats(raw));
  socket.on('fl:instruction', (raw) => void session.onInstruction(raw));
  socket.on('fl:run', (raw) => {
    const e = session.onRun(raw);
    if (e && o.exitOnRunEnd && e.status !== 'running') {
      resolveDone(e);
      close();
    }
  });

  return { socket, client, done, errors, close };
}
