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

// --browser: the end-to-end tests drive Debian's Chromium (never a downloaded browser build).
if (process.argv.includes('--browser')) {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!root || !existsSync('/usr/bin/apt-get')) {
      process.stderr.write(`[ensure-deps] ${chromium} is missing: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH\n`);
      process.exit(1);
    }
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  }
}

const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
if (want !== have) {
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, `${want}\n`);
}
