import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('initTf (wasm)', () => {
  it('leaves unhandled rejections to the host: the Emscripten glue no longer turns them into a crash', async () => {
    // A child process: after initTf, a stray rejection must reach the host's own handler, and the
    // process must exit normally (the glue's `throw reason` handler made it exit with code 7).
    const script = [
      `const { initTf } = await import(${JSON.stringify(path.join(here, 'tf-node.ts'))});`,
      `await initTf('wasm');`,
      `process.on('unhandledRejection', (reason) => { console.log('host saw: ' + reason.message); });`,
      `void Promise.reject(new Error('stray'));`,
      `await new Promise((resolve) => setTimeout(resolve, 50));`,
      `console.log('still running');`,
    ].join('\n');
    const outcome = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: here,
    }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      // Keep a failure short: the glue's rethrow prints the whole minified module.
      (e: { code?: number; stdout?: string }) => ({ code: e.code, stdout: e.stdout ?? '' }),
    );
    expect(outcome).toEqual({ code: 0, stdout: 'host saw: stray\nstill running\n' });
  });
});
