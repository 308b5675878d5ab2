#!/usr/bin/env node
// `npm test` after ensure-deps. CI has two cores, and the typecheck (TypeScript 7, ~30 s: scripts/
// typecheck.mjs) and lint (~30 s) each keep one busy, so they run beside the suites instead of before
// them: the typecheck and lint in one
// lane, Node 24's preparation (its download and an `npm ci` that compiles better-sqlite3) in
// another, followed there by the store and server suites on Node 24, the other suites on this Node
// (`test:unit`) in a third; a failing typecheck or lint stops the suites at once. Any failing step
// fails the whole, with its exit code, and says which step it was.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const children = new Set();

function start(name, cmd, args) {
  const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], detached: process.platform !== 'win32' });
  children.add(child);
  const done = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ name, code: code ?? (signal ? 1 : 0) });
    }),
  );
  return done;
}

/** A step's whole process group (npm → vitest → its forks, Chromium) goes. */
function stopAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
  }
}

function fail({ name, code }) {
  stopAll();
  process.stderr.write(`[test] ${name} failed (exit code ${code})\n`);
  process.exit(code || 1);
}

/** npm run a, then b, … (a script with its arguments: ['name', ...args]) — the first failure ends the lane. */
async function lane(...scripts) {
  for (const s of scripts) {
    const [name, ...args] = [s].flat();
    const r = await start(`npm run ${name}`, npm, ['run', name, ...(args.length ? ['--', ...args] : [])]);
    if (r.code !== 0) return r;
  }
  return { name: scripts.map((s) => [s].flat()[0]).join(' + '), code: 0 };
}

// Ctrl-C or CI's own timeout: the detached steps go too.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopAll();
    process.exit(130);
  });
}

const checks = lane('typecheck', 'lint').then((r) => (r.code !== 0 ? fail(r) : r));
// Node 24's suites start as soon as it is prepared, beside the rest, instead of after them: they
// fill the gaps the other lanes leave (waits on sockets and timers) rather than adding a minute at
// the end.
const node24 = start('preparing Node 24', process.execPath, [path.join(root, 'scripts', 'node24-tests.mjs'), '--prepare']).then((r) => (r.code !== 0 ? r : lane('test:node24')));
// The coordinator's suites (apps/server but its adversarial folder: node24-tests.mjs's SUITES) run
// once, on Node 24, where its binaries exist (Linux x64); on this Node the CLI, e2e and image suites
// drive the same coordinator. Elsewhere they run here. Running them on both cost ~130 s of CPU.
const NODE24_SUITES = ['apps/server/src/*.test.ts', 'apps/server/src/store/**'];
const node24Runs = process.platform === 'linux' && process.arch === 'x64';
const unit = lane(['test:unit', ...(node24Runs ? NODE24_SUITES.flatMap((g) => ['--exclude', g]) : [])]);
for (const r of await Promise.all([checks, node24, unit])) if (r.code !== 0) fail(r);
