/**
 * The only host globals the pure core may use: the intersection of what a browser tab, a Web Worker
 * and Node 20 provide. shared/ compiles without the DOM lib and without @types/node, so anything
 * not declared here is a compile error, which is how the boundary is enforced.
 */
interface SubtleCryptoLike {
  digest(algorithm: 'SHA-256' | 'SHA-384' | 'SHA-512', data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer>;
  // The subset secure aggregation uses (shared/src/secagg), present in Node 20, Chromium, Firefox
  // and Safari: X25519, Ed25519 / ECDSA P-256, HKDF, AES-GCM, AES-CTR.
  generateKey(algorithm: WebCryptoAlgorithm, extractable: boolean, keyUsages: readonly WebCryptoKeyUsage[]): Promise<CryptoKeyPairLike | CryptoKeyLike>;
  importKey(format: 'raw' | 'pkcs8' | 'spki', keyData: ArrayBufferView | ArrayBuffer, algorithm: WebCryptoAlgorithm, extractable: boolean, keyUsages: WebCryptoKeyUsage[]): Promise<CryptoKeyLike>;
  exportKey(format: 'raw' | 'pkcs8' | 'spki', key: CryptoKeyLike): Promise<ArrayBuffer>;
  exportKey(format: 'jwk', key: CryptoKeyLike): Promise<{ kty?: string; crv?: string; x?: string; d?: string }>;
  deriveBits(algorithm: WebCryptoAlgorithm, baseKey: CryptoKeyLike, length: number | null): Promise<ArrayBuffer>;
  encrypt(algorithm: WebCryptoAlgorithm, key: CryptoKeyLike, data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer>;
  decrypt(algorithm: WebCryptoAlgorithm, key: CryptoKeyLike, data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer>;
  sign(algorithm: WebCryptoAlgorithm, key: CryptoKeyLike, data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer>;
  verify(algorithm: WebCryptoAlgorithm, key: CryptoKeyLike, signature: ArrayBufferView | ArrayBuffer, data: ArrayBufferView | ArrayBuffer): Promise<boolean>;
}
type WebCryptoKeyUsage = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'deriveKey' | 'deriveBits' | 'wrapKey' | 'unwrapKey';
/** An algorithm name, or its parameter dictionary ({ name: 'HKDF', hash, salt, info }, { name: 'AES-GCM', iv }, …). */
type WebCryptoAlgorithm = string | { readonly name: string; readonly [parameter: string]: unknown };
/** An opaque WebCrypto key (the DOM's and Node's `CryptoKey`). */
interface CryptoKeyLike {
  readonly type: 'public' | 'private' | 'secret';
  readonly extractable: boolean;
  readonly algorithm: { readonly name: string };
  readonly usages: readonly WebCryptoKeyUsage[];
}
interface CryptoKeyPairLike {
  readonly publicKey: CryptoKeyLike;
  readonly privateKey: CryptoKeyLike;
}
interface CryptoLike {
  getRandomValues<T extends ArrayBufferView>(array: T): T;
  randomUUID(): string;
  readonly subtle: SubtleCryptoLike;
}
declare var crypto: CryptoLike;

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
interface Console {
  log(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
}
declare var console: Console;
declare var performance: { now(): number };
declare function setTimeout(handler: () => void, timeout?: number): unknown;
declare function clearTimeout(id: unknown): void;
declare function structuredClone<T>(value: T): T;
/** The fetch API (tab, worker, Node ≥ 18), as far as the REST client (src/api) uses it. */
declare function fetch(
  input: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
