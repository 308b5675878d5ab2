/**
 * The TF.js backend inside the worker: picked by feature detection in the order WebGPU → WebGL →
 * WASM → CPU (or the one the user asked for, falling back along the same order when it fails),
 * watched while in use, and replaced by the next one when it fails.
 *
 * A backend counts only after it initialised and computed a small matmul correctly: a context
 * that initialises and then returns zeros (lost WebGL contexts do) is not a backend. While in use,
 * a WebGPU backend is watched: a lost device (`GPUDevice.lost`) or an error the device reports on
 * its own (`uncapturederror`, e.g. out of memory: TF.js pushes no error scopes, so such an error
 * would otherwise leave wrong numbers behind silently) marks it failed; a lost WebGL context does
 * the same. Synchronous reads of GPU data are refused on WebGPU: TF.js serves them through a canvas
 * readback that stalls the device and, on a software adapter without shared images, took the whole
 * GPU process down ("A valid external Instance reference no longer exists").
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { BACKEND_ORDER, type BackendAttempt, type BackendChoice, type BackendFailure, type BackendName, type BackendReport } from './protocol';

/** The parts of WebGPU this file touches (the worker's lib has no WebGPU types). */
interface GpuAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapter {
  info?: GpuAdapterInfo;
  isFallbackAdapter?: boolean;
}
interface GpuDevice {
  lost: Promise<{ reason: string; message: string }>;
  addEventListener(type: 'uncapturederror', listener: (e: { error: { message: string } }) => void): void;
  destroy(): void;
}
interface GpuNavigator {
  gpu?: { requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapter | null> };
}

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});
// WASM starts single-threaded unless configureWasmThreads says otherwise (the backend check's wasm
// reference, set directly, too): TF.js's threaded build would otherwise start under a bundler's
// minified glue, whose pthreads fail (see startThreadedWasm).
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);

/**
 * How many threads WASM runs on: TF.js's threaded build (XNNPACK's thread pool on Emscripten
 * pthreads) needs SharedArrayBuffer, i.e. a cross-origin isolated page (the portal is: COOP + COEP);
 * its pthreads start as blob: workers, which the training worker's CSP allows (apps/server/src/
 * security.ts). `requested` (the portal's `?threads=N`), else TF.js's own choice: one per physical
 * core, taken as half the logical ones (1 on a 2-core machine, 4 on a typical 8-thread laptop);
 * at most 8, the pthread workers the build starts.
 */
function configureWasmThreads(requested: number | undefined): { threads: number; why?: string } {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const logical = Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
  const threads = isolated ? Math.min(8, Math.max(1, Math.floor(requested ?? logical / 2))) : 1;
  // One thread: the plain SIMD build (no thread pool, no workers); more: the threaded one.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
  if (threads > 1) setThreadsCount(threads);
  return { threads, ...(isolated ? {} : { why: 'the page is not cross-origin isolated' }) };
}

const GLUE_PREFIX = 'var WasmBackendModuleThreadedSimd = ';

/**
 * Initialises the threaded WASM backend. TF.js hands each pthread worker the Emscripten glue as a
 * Blob of `var WasmBackendModuleThreadedSimd = ` + the bundled factory's `toString()`; once Vite has
 * minified it, that text names a variable of the module around it (the minifier folded the glue's
 * `typeof _scriptDir !== "undefined"` guard away) and every pthread dies with "e is not defined".
 * So, while the backend starts, that one Blob gets the package's own unminified glue instead (the
 * same Emscripten build, byte for byte as published), loaded only when threads are used.
 */
async function startThreadedWasm(threads: number): Promise<boolean> {
  const { default: glue } = await import('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js?raw');
  // The backend caps its pool at navigator.hardwareConcurrency / 2 (tfjs-backend-wasm/src/cc/
  // backend.cc: "many x86-64 processors have 2 threads per core"), read once as the module starts:
  // one thread on a 2-core machine whatever setThreadsCount asked. While it starts, it is told
  // twice the threads asked for, so the pool has exactly that many (capped at its 8 workers).
  const nav = globalThis.navigator as unknown as Record<string, unknown>;
  Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  const NativeBlob = globalThis.Blob;
  class GlueBlob extends NativeBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      const first = parts?.[0];
      super(parts?.length === 1 && typeof first === 'string' && first.startsWith(GLUE_PREFIX) ? [glue] : parts, options);
    }
  }
  globalThis.Blob = GlueBlob;
  try {
    return await tf.setBackend('wasm');
  } finally {
    globalThis.Blob = NativeBlob;
    delete nav.hardwareConcurrency; // the navigator's own getter again
  }
}

/** Software rasterisers that browsers expose as WebGPU adapters: correct, not fast. */
const SOFTWARE_ADAPTERS = /swiftshader|llvmpipe|lavapipe|warp|software/i;

/** What the browser says about its WebGPU adapter, and whether it is a software one. */
function describeAdapter(adapter: GpuAdapter): { text: string; software: boolean } {
  const info = adapter.info ?? {};
  const parts = [info.vendor, info.architecture, info.description || info.device].filter((p): p is string => !!p);
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTERS.test(parts.join(' '));
  return { text: parts.length ? parts.join(' ') : 'adapter not named by the browser', software };
}

/** Why a backend cannot run here, or undefined when it is worth trying; the adapter for WebGPU. */
async function precondition(name: BackendName): Promise<{ why?: string; adapter?: GpuAdapter }> {
  if (name === 'webgpu') {
    const gpu = (globalThis.navigator as unknown as GpuNavigator | undefined)?.gpu;
    if (!gpu) return { why: 'navigator.gpu is not available in this browser' };
    // The adapter TF.js will ask for (it asks with the same preference).
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
    if (!adapter) return { why: 'navigator.gpu gave no adapter' };
    // Loaded only where an adapter exists: the WebGPU backend is large.
    await import('@tensorflow/tfjs-backend-webgpu');
    return { adapter };
  }
  if (name === 'webgl') {
    if (typeof OffscreenCanvas === 'undefined') return { why: 'OffscreenCanvas is not available in workers here' };
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (!gl) return { why: 'no WebGL 2 context' };
    return {};
  }
  if (name === 'wasm') {
    if (typeof WebAssembly === 'undefined') return { why: 'WebAssembly is not available' };
    return {};
  }
  return {};
}

/** A 2×2 matmul read back asynchronously; the reason it is wrong, or undefined. Rejects when the backend cannot run at all. */
async function smokeTest(): Promise<string | undefined> {
  const got = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
  try {
    const values = await got.data();
    const want = [19, 22, 43, 50];
    return want.every((w, i) => Math.abs((values[i] as number) - w) < 1e-3) ? undefined : `computed ${Array.from(values).join(',')} for a 2×2 matmul`;
  } finally {
    got.dispose();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function detail(name: BackendName, adapter: { text: string; software: boolean } | undefined, threads: { threads: number; why?: string } | undefined): string {
  if (name === 'webgl') {
    const f32 = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
    return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}, ${f32 ? 'float32' : 'float16'} textures`;
  }
  if (name === 'wasm') return `WebAssembly, SIMD where supported, ${threads?.threads === 1 ? 'one thread' : `${threads?.threads ?? '?'} threads`}${threads?.why ? ` (${threads.why})` : ''}`;
  if (name === 'webgpu') return adapter ? `WebGPU on ${adapter.text}${adapter.software ? ' — a software adapter: correct, not fast' : ''}` : 'WebGPU';
  return 'plain JavaScript';
}

/** Refuses synchronous reads of data that lives on the GPU (values already on the CPU are fine). */
function refuseSyncGpuReads(): void {
  const b = tf.backend() as unknown as { readSync(id: object): unknown; tensorMap: { get(id: object): { values?: unknown } | undefined } };
  const readSync = b.readSync.bind(b);
  b.readSync = (dataId: object) => {
    if (b.tensorMap.get(dataId)?.values == null) {
      throw new Error('a synchronous read of GPU data (dataSync/arraySync) on WebGPU; fedcare reads GPU tensors asynchronously only');
    }
    return readSync(dataId);
  };
}

/** Thrown when no backend of the chain works here. */
export class NoBackendError extends Error {}

/**
 * The worker's backend: selection, the watch while in use, and the fall-back to the next backend of
 * the chain. One per worker; TF.js's backend is global to it.
 */
export class BackendGuard {
  private current: BackendName | undefined;
  private report: BackendReport | undefined;
  /** Set when the backend in use failed on its own (device lost, a GPU error, a lost context). */
  private failed: string | undefined;
  /** Resolves with the reason when the backend in use fails on its own. */
  private failedSignal: Promise<string> = new Promise<string>(() => {});
  private readonly failures: BackendFailure[] = [];
  private device: GpuDevice | undefined;
  private threadsWanted: number | undefined;

  /** Called when a backend fails on its own, even between stages (for the activity log). */
  onFailure: ((backend: BackendName, reason: string) => void) | undefined;

  get name(): BackendName | undefined {
    return this.current;
  }

  /**
   * Picks the first backend of the chain (from `choice`) that works; throws NoBackendError if none
   * does. `threads`: WASM's thread count (default: one per physical core, where the page is isolated).
   */
  async select(choice: BackendChoice, threads?: number): Promise<BackendReport> {
    tf.enableProdMode();
    this.threadsWanted = threads;
    const order: BackendName[] = choice === 'auto' ? [...BACKEND_ORDER] : BACKEND_ORDER.slice(BACKEND_ORDER.indexOf(choice));
    return this.selectFrom(order, []);
  }

  private async selectFrom(order: readonly BackendName[], attempts: BackendAttempt[]): Promise<BackendReport> {
    for (const name of order) {
      try {
        const { why, adapter } = await precondition(name);
        if (why) {
          attempts.push({ backend: name, ok: false, reason: why });
          continue;
        }
        const wasmThreads = name === 'wasm' ? configureWasmThreads(this.threadsWanted) : undefined;
        if (!(await (wasmThreads && wasmThreads.threads > 1 ? startThreadedWasm(wasmThreads.threads) : tf.setBackend(name)))) {
          attempts.push({ backend: name, ok: false, reason: 'failed to initialise' });
          continue;
        }
        await tf.ready();
        const wrong = await withTimeout(smokeTest(), 60_000, `the ${name} backend`);
        if (wrong) {
          attempts.push({ backend: name, ok: false, reason: wrong });
          continue;
        }
        attempts.push({ backend: name, ok: true });
        const described = adapter ? describeAdapter(adapter) : undefined;
        this.current = name;
        this.failed = undefined;
        this.watch(name);
        // The thread pool TF.js actually started (it may start fewer than asked).
        const threadInfo = wasmThreads ? { ...wasmThreads, threads: wasmThreads.threads > 1 ? getThreadsCount() : 1 } : undefined;
        this.report = {
          backend: name,
          attempts,
          detail: detail(name, described, threadInfo),
          ...(described?.software ? { software: true } : {}),
          ...(threadInfo ? { threads: threadInfo.threads } : {}),
          failures: [...this.failures],
        };
        return this.report;
      } catch (e) {
        attempts.push({ backend: name, ok: false, reason: (e as Error).message });
      }
    }
    this.current = undefined;
    throw new NoBackendError(`no TensorFlow.js backend works here: ${attempts.map((a) => `${a.backend}: ${a.reason ?? 'ok'}`).join('; ')}`);
  }

  private watch(name: BackendName): void {
    this.device = undefined;
    this.failedSignal = new Promise<string>(() => {});
    if (name !== 'webgpu') return;
    const device = (tf.backend() as unknown as { device: GpuDevice }).device;
    this.device = device;
    let signal: (reason: string) => void = () => {};
    this.failedSignal = new Promise<string>((resolve) => (signal = resolve));
    const fail = (reason: string) => {
      if (this.device !== device || this.failed) return;
      this.failed = reason;
      signal(reason);
      this.onFailure?.(name, reason);
    };
    void device.lost.then((info) => fail(`GPU device lost (${info.reason || 'unknown'})${info.message ? `: ${info.message}` : ''}`));
    device.addEventListener('uncapturederror', (e) => fail(`GPU error: ${e.error.message}`));
    refuseSyncGpuReads();
  }

  /** Resolves with the reason when the backend in use fails on its own (never, while it works). */
  whenFailed(): Promise<string> {
    return this.failedSignal;
  }

  /**
   * Why the backend in use can no longer be trusted, or undefined when it is fine: a failure it
   * reported itself, a lost WebGL context, or — after a stage failed with `error` — a smoke test
   * that no longer passes (a backend that still computes correctly leaves the error to the stage).
   */
  async failure(error?: unknown): Promise<string | undefined> {
    if (this.failed) return this.failed;
    if (this.current === 'webgl') {
      const gl = (tf.backend() as unknown as { gpgpu?: { gl?: { isContextLost(): boolean } } }).gpgpu?.gl;
      if (gl?.isContextLost()) return 'WebGL context lost';
    }
    if (error === undefined) return undefined;
    const message = (error as Error).message ?? String(error);
    // A lost device says so a moment after its last work failed: whichever comes first decides.
    const smoke = withTimeout(smokeTest(), 30_000, `the ${this.current ?? ''} backend`).then(
      (wrong) => (wrong ? `${message} (and the backend now ${wrong})` : undefined),
      (e: unknown) => `${message} (the backend no longer computes: ${(e as Error).message})`,
    );
    return Promise.race([smoke, this.failedSignal]);
  }

  /**
   * Gives up the failed backend for the rest of this worker's life and selects the next one of the
   * chain. The caller has disposed every tensor it kept on the old backend (its data cannot be read
   * back from a lost device). Throws NoBackendError when no backend is left.
   */
  async fallBack(reason: string, during?: string): Promise<BackendReport> {
    const from = this.current;
    if (!from) throw new NoBackendError(`no TensorFlow.js backend in use (${reason})`);
    this.failures.push({ backend: from, reason, ...(during ? { during } : {}), at: new Date().toISOString() });
    this.device = undefined;
    try {
      tf.removeBackend(from); // disposes what is left of it; it is not tried again in this worker
    } catch {
      // A backend that cannot even be disposed is gone all the same.
    }
    const rest = BACKEND_ORDER.slice(BACKEND_ORDER.indexOf(from) + 1);
    return this.selectFrom(rest, (this.report?.attempts ?? []).filter((a) => !a.ok && a.backend !== from));
  }

  /** Test hook: destroys the WebGPU device in use, as a driver reset or a lost GPU would. */
  loseDevice(): boolean {
    if (!this.device) return false;
    this.device.destroy();
    return true;
  }
}
