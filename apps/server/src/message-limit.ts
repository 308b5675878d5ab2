/**
 * Two inbound message limits on one engine.io server, whose `maxHttpBufferSize` is global: the
 * server is created with the small one (`UNAUTHENTICATED_MESSAGE_BYTES`), so a stranger's message
 * — before any namespace has accepted it, on `/` or anywhere — is refused at the transport (ws
 * stops reading a frame whose header announces more; polling answers 413 once the body passes it)
 * and the connection is closed, without buffering or parsing the rest. When a hospital's handshake
 * is accepted, its connection's limit is raised to `MAX_MESSAGE_BYTES` (10 MiB): on the current
 * transport and on the one it upgrades to.
 *
 * engine.io has no per-connection setting, so this reaches into the transports: a polling
 * transport checks its own `opts.maxHttpBufferSize` (a per-transport copy); a websocket transport
 * hands frames to ws's Receiver, which checks `_maxPayload`. message-limit.test.ts and the
 * adversarial suite check both against the installed engine.io and ws, so an upgrade that moves
 * them fails a test, not a hospital.
 */
/** The part of an engine.io socket (`socket.conn` in Socket.IO) this needs. */
export interface EngineConnection {
  transport: unknown;
  on(event: 'upgrading' | 'upgrade', listener: (transport: unknown) => void): unknown;
}

/** A handshake (hello with token, hospital id, host, public key) is well under 1 KiB; 16 KiB leaves room. */
export const UNAUTHENTICATED_MESSAGE_BYTES = 16 * 1024;

interface TransportInternals {
  opts?: { maxHttpBufferSize?: number };
  socket?: { _receiver?: { _maxPayload?: number } };
}

function setLimit(transport: unknown, bytes: number): boolean {
  const t = transport as TransportInternals;
  let set = false;
  if (t.opts && typeof t.opts.maxHttpBufferSize === 'number') {
    t.opts.maxHttpBufferSize = bytes;
    set = true;
  }
  const receiver = t.socket?._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') {
    receiver._maxPayload = bytes;
    set = true;
  }
  return set;
}

/** Raises one connection's inbound limit to `bytes` (now and after a transport upgrade); false when the transport could not be reached. */
export function raiseMessageLimit(conn: EngineConnection, bytes: number): boolean {
  const marked = conn as EngineConnection & { fedcareLimit?: number };
  if (marked.fedcareLimit === bytes) return true;
  marked.fedcareLimit = bytes;
  const ok = setLimit(conn.transport, bytes);
  conn.on('upgrading', (t) => setLimit(t, bytes));
  conn.on('upgrade', (t) => setLimit(t, bytes));
  return ok;
}
