/**
 * Picks the TF.js backend inside the worker by feature detection, in the order WebGPU → WebGL →
 * WASM → CPU, or the one the user asked for (falling back along the same order when it fails).
 * A backend counts only after it initialised and computed a small matmul correctly: a context
 * that initialises and then returns zeros (lost WebGL contexts do) is not a backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { BACKEND_ORDER, type BackendAttempt, type BackendChoice, type BackendName, type BackendReport } from './protocol';

interface GpuNavigator {
  gpu?: { requestAdapter(): Promise<unknown> };
}

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

/** Why a backend cannot run here, or undefined when it is worth trying. */
async function precondition(name: BackendName): Promise<string | undefined> {
  if (name === 'webgpu') {
    const gpu = (globalThis.navigator as unknown as GpuNavigator | undefined)?.gpu;
    if (!gpu) return 'navigator.gpu is not available in this browser';
    const adapter = await gpu.requestAdapter().catch(() => null);
    if (!adapter) return 'navigator.gpu gave no adapter';
    // Loaded only where an adapter exists: the WebGPU backend is large.
    await import('@tensorflow/tfjs-backend-webgpu');
    return undefined;
  }
  if (name === 'webgl') {
    if (typeof OffscreenCanvas === 'undefined') return 'OffscreenCanvas is not available in workers here';
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (!gl) return 'no WebGL 2 context';
    return undefined;
  }
  if (name === 'wasm') {
    if (typeof WebAssembly === 'undefined') return 'WebAssembly is not available';
    return undefined;
  }
  return undefined;
}

async function smokeTest(): Promise<string | undefined> {
  const got = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
  const values = await got.data();
  got.dispose();
  const want = [19, 22, 43, 50];
  return want.every((w, i) => Math.abs((values[i] as number) - w) < 1e-3) ? undefined : `computed ${Array.from(values).join(',')} for a 2×2 matmul`;
}

function describe(name: BackendName): string {
  if (name === 'webgl') {
    const f32 = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
    return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}, ${f32 ? 'float32' : 'float16'} textures`;
  }
  if (name === 'wasm') return `WebAssembly${typeof SharedArrayBuffer !== 'undefined' ? ' (threads possible)' : ''}, SIMD where supported`;
  if (name === 'webgpu') return 'WebGPU';
  return 'plain JavaScript';
}

export async function selectBackend(choice: BackendChoice): Promise<BackendReport> {
  tf.enableProdMode();
  const order: BackendName[] = choice === 'auto' ? [...BACKEND_ORDER] : [choice, ...BACKEND_ORDER.filter((b) => b !== choice && BACKEND_ORDER.indexOf(b) > BACKEND_ORDER.indexOf(choice))];
  const attempts: BackendAttempt[] = [];
  for (const name of order) {
    try {
      const why = await precondition(name);
      if (why) {
        attempts.push({ backend: name, ok: false, reason: why });
        continue;
      }
      if (!(await tf.setBackend(name))) {
        attempts.push({ backend: name, ok: false, reason: 'failed to initialise' });
        continue;
      }
      await tf.ready();
      const wrong = await smokeTest();
      if (wrong) {
        attempts.push({ backend: name, ok: false, reason: wrong });
        continue;
      }
      attempts.push({ backend: name, ok: true });
      return { backend: name, attempts, detail: describe(name) };
    } catch (e) {
      attempts.push({ backend: name, ok: false, reason: (e as Error).message });
    }
  }
  throw new Error(`no TensorFlow.js backend works here: ${attempts.map((a) => `${a.backend}: ${a.reason ?? 'ok'}`).join('; ')}`);
}
