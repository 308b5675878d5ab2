#!/usr/bin/env node
// `npm test` after ensure-deps: typecheck, lint, the suites on this Node, then the store and server
// suites on Node 24. Node 24's preparation (its download and an `npm ci` that compiles
// better-sqlite3) runs beside the typecheck and lint, which keep one of CI's two cores busy, so
// that it is done when the suites on Node 24 start. Any failing step fails the whole, with its code.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const prep = spawn(process.execPath, [path.join(root, 'scripts', 'node24-tests.mjs'), '--prepare'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
const prepared = new Promise((resolve) => prep.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));

function step(script) {
  const res = spawnSync(npm, ['run', script], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    prep.kill();
    process.stderr.write(`[test] npm run ${script} failed (exit code ${res.status ?? res.signal})\n`);
    process.exit(res.status ?? 1);
  }
}

for (const script of ['typecheck', 'lint', 'test:unit']) step(script);
const code = await prepared;
if (code !== 0) {
  process.stderr.write(`[test] preparing Node 24 failed (exit code ${code})\n`);
  process.exit(code);
}
step('test:node24');
