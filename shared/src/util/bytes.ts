/** Byte helpers shared by the model, secure aggregation and HE (WebCrypto: the same in browsers, workers and Node). */

/** Lower-case hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Lower-case hex SHA-256 of the bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // The DOM typings accept only ArrayBuffer-backed views; callers never pass a SharedArrayBuffer.
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}
