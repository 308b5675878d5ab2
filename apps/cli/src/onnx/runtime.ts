/**
 * ONNX Runtime for Node (onnxruntime-node), the reference the ONNX export is checked against, loaded
 * for the tests from `.cache/onnxruntime-node/<version>` and installed there on first use — not a
 * dependency of the repository: its package carries CPU binaries for five platforms (115 MB packed,
 * 294 MB unpacked), which every `npm ci` (`npm start`'s, the Node 24 lane's, the image's build stage)
 * would otherwise download for one test. Its postinstall only fetches the CUDA execution provider
 * from NuGet (unreachable here and not needed on CPU): `ONNXRUNTIME_NODE_INSTALL=skip` turns it off.
 * Only the few calls the tests make are typed here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ONNXRUNTIME_NODE_VERSION = '1.31.1';

export interface OrtTensor {
  readonly data: ArrayLike<number>;
  readonly dims: readonly number[];
}

export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OnnxRuntime {
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(model: string | Uint8Array): Promise<OrtSession> };
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** onnxruntime-node, installed into the repository's .cache on first use (npm, a minute at most). */
export function loadOnnxRuntime(version = ONNXRUNTIME_NODE_VERSION): OnnxRuntime {
  const prefix = path.join(root, '.cache', 'onnxruntime-node', version);
  if (!existsSync(path.join(prefix, 'node_modules', 'onnxruntime-node', 'package.json'))) {
    process.stderr.write(`[onnxruntime] npm install onnxruntime-node@${version} into ${prefix}\n`);
    const res = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `onnxruntime-node@${version}`], {
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip' },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 600_000,
    });
    if (res.status !== 0) throw new Error(`npm install onnxruntime-node@${version} failed (exit ${res.status ?? res.signal ?? res.error?.message})`);
  }
  return createRequire(path.join(prefix, 'package.json'))('onnxruntime-node') as OnnxRuntime;
}
