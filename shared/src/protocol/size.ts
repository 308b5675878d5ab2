/**
 * How large a message is on the wire, so that a hospital can refuse to send what the coordinator
 * would refuse to read. Socket.IO (socket.io-parser v5 protocol) sends an event as one text packet
 * in which every binary value (ArrayBuffer or typed array) is replaced by a numbered placeholder,
 * followed by each binary value as a frame of its own; over WebSocket each of these is one message,
 * and the coordinator closes a connection whose message exceeds `MAX_MESSAGE_BYTES` (its
 * `maxHttpBufferSize`, which engine.io applies as the WebSocket's `maxPayload`). A hospital that
 * sent such a message would only see a disconnect; measured here first, it declines the stage and
 * says why, and stays in the federation. Both hosts (Node client, portal) use the WebSocket
 * transport; over HTTP long-polling the limit applies to a whole base64-encoded POST instead.
 */

/** The largest WebSocket message (one text packet or one binary attachment) the coordinator accepts. */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Room for what the text packet adds around the JSON: engine.io and socket.io type digits, attachment count, namespace, ack id. */
const PACKET_HEADER_BYTES = 64;

export interface WireSize {
  /** Bytes of the text packet: the JSON with placeholders, plus header room. */
  text: number;
  /** Each binary attachment, in the order Socket.IO numbers them, with where it sits in the payload. */
  attachments: { path: string; bytes: number }[];
}

const isBinary = (v: unknown): v is ArrayBuffer | ArrayBufferView => v instanceof ArrayBuffer || ArrayBuffer.isView(v);

/** The frames `emit(event, payload)` becomes (an acknowledgement callback adds nothing but its id). */
export function wireSize(event: string, payload: unknown): WireSize {
  const attachments: WireSize['attachments'] = [];
  const strip = (v: unknown, path: string): unknown => {
    if (isBinary(v)) {
      attachments.push({ path, bytes: v.byteLength });
      return { _placeholder: true, num: attachments.length - 1 };
    }
    if (Array.isArray(v)) return v.map((x, i) => strip(x, `${path}[${i}]`));
    if (v && typeof v === 'object' && !(v instanceof Date)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = strip(x, path ? `${path}.${k}` : k);
      return out;
    }
    return v;
  };
  const json = JSON.stringify([event, strip(payload, '')]);
  return { text: new TextEncoder().encode(json).length + PACKET_HEADER_BYTES, attachments };
}

/**
 * Why `emit(event, payload)` would exceed `limit` bytes in one WebSocket message, naming the part
 * (`weights`, `input.ciphertexts[3]`, the JSON text) and its size; undefined when it fits.
 */
export function oversizedMessage(event: string, payload: unknown, limit: number = MAX_MESSAGE_BYTES): string | undefined {
  const size = wireSize(event, payload);
  const over = size.attachments.find((a) => a.bytes > limit);
  const fmt = (n: number) => n.toLocaleString('en-US');
  if (over) return `${event}: ${over.path || 'the payload'} is ${fmt(over.bytes)} bytes, over the coordinator's limit of ${fmt(limit)} bytes per message`;
  if (size.text > limit) return `${event}: the message's JSON text is ${fmt(size.text)} bytes, over the coordinator's limit of ${fmt(limit)} bytes per message`;
  return undefined;
}
