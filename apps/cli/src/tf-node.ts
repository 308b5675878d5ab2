/**
 * TensorFlow.js in Node: the wasm backend (SIMD, single thread). tfjs-node cannot install here
 * (it downloads libtensorflow) and threaded wasm fails in Node, so this is the fast path.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// The union package registers every op's gradient and the cpu backend (tfjs-core alone registers
// no gradients); shared/ itself imports only tfjs-core and stays free of such side effects.
import '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type NodeBackend = 'wasm' | 'cpu';

let ready: Promise<NodeBackend> | undefined;

/** Selects and initialises a backend once per process; later calls return the same promise. */
export function initTf(preferred: NodeBackend = 'wasm'): Promise<NodeBackend> {
  ready ??= (async () => {
    // Production mode: no per-op debug checks, and no "install tfjs-node" banner (it cannot install here).
    tf.enableProdMode();
    if (preferred === 'wasm') {
      const require = createRequire(import.meta.url);
      const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
      setWasmPaths(path.join(path.dirname(pkg), 'dist') + path.sep);
    }
    const before = processListeners();
    try {
      const ok = await tf.setBackend(preferred);
      if (!ok) throw new Error(`TensorFlow.js backend "${preferred}" failed to initialise`);
      await tf.ready();
    } finally {
      dropListenersAddedSince(before);
    }
    return preferred;
  })();
  return ready;
}

const EVENTS = ['uncaughtException', 'unhandledRejection'] as const;
type Listener = (...args: unknown[]) => void;

function processListeners(): Map<string, Listener[]> {
  return new Map(EVENTS.map((event) => [event, (process as NodeJS.EventEmitter).listeners(event) as Listener[]]));
}

/**
 * The wasm backend's Emscripten glue (Node build) installs `unhandledRejection → throw reason` and an
 * `uncaughtException` handler that rethrows: any stray rejection anywhere in the process then kills
 * it without saying where (a Vitest fork died that way: "Worker exited unexpectedly"). Removing
 * them restores Node's own handling (and the test runner's report naming the test).
 */
function dropListenersAddedSince(before: Map<string, Listener[]>): void {
  for (const event of EVENTS) {
    const kept = new Set(before.get(event));
    for (const listener of (process as NodeJS.EventEmitter).listeners(event) as Listener[]) {
      if (!kept.has(listener)) (process as NodeJS.EventEmitter).removeListener(event, listener);
    }
  }
}
