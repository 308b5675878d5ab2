/**
 * The only host globals the pure core may use: the intersection of what a browser tab, a Web Worker
 * and Node 20 provide. shared/ compiles without the DOM lib and without @types/node, so anything
 * not declared here is a compile error, which is how the boundary is enforced.
 */
interface SubtleCryptoLike {
  digest(algorithm: 'SHA-256' | 'SHA-384' | 'SHA-512', data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer>;
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
interface AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
