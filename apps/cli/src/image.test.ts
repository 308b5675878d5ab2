// The coordinator's container image, built (`npm run image`: docker build, or buildah where no Docker
// daemon answers) and run as it would be deployed: its own user, entrypoint and command, configured
// by the environment alone. Asserts: the user is not root; /healthz answers 200 (and the image's
// HEALTHCHECK command, run in the container, agrees); the REST API wants a token (401); a headless
// hospital on this machine finishes a one-round run; SIGTERM to the container's process interrupts
// a running run (the next start resumes it) and the process exits 0 within 10 s. Also: the CA
// bundle handed to the build as a secret is in no layer, no history entry and not the config.
//
// Skipped only where neither docker nor buildah can be made to work; as root on Debian the image
// script installs buildah (apt-get), so there — CI — it always runs. Several minutes; cold (no base
// image, no layer cache) about 6 minutes here to build.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { generateToDir } from './commands/generate';
import { fedcareProcess, waitFor, type Proc } from './testing-processes';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ADMIN = 'image-test-admin-token-0123456789';
const H1_TOKEN = 'image-test-h1-token-0123456789';

function works(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 60_000 }).status === 0;
}
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const aptDebian = existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
const dockerWorks = works('docker', ['info']);
const buildahWorks = works('buildah', ['info']);
/** Root on Debian: `npm run image` apt-gets buildah, so the test must run (and fail, never skip). */
const canBuild = dockerWorks || buildahWorks || (isRoot && aptDebian);

interface ImageConfig {
  User?: string;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  ExposedPorts?: Record<string, unknown> | null;
  Healthcheck?: { Test?: string[] } | null;
  WorkingDir?: string;
}

interface LastBuild {
  engine: 'docker' | 'buildah';
  global: string[];
  image: string;
  id: string;
  size: number | string;
  base: string;
  ca: string | null;
}

/** One run of the container's process (a start or a restart of the same container). */
interface Running {
  output(): string;
  exited: Promise<number | null>;
  done(): boolean;
  /** The container's main process as this machine sees it. */
  mainPid(): Promise<number>;
  /** The real uid of the container's main process. */
  uid(): Promise<number>;
  /** SIGTERM to the container's main process, as an orchestrator stops it. */
  terminate(): Promise<void>;
  /** SIGKILL to the whole container (clean-up). */
  kill(): void;
}

interface Container {
  start(): Running;
  /** Runs a command in the running container (as the image's user), e.g. its HEALTHCHECK. */
  exec(cmd: string[]): { status: number | null; output: string };
  remove(): void;
}

interface Engine {
  config(): { config: ImageConfig; history: string[] };
  /** The image as a docker-archive tar (uncompressed layers). */
  save(file: string): void;
  create(name: string, env: Record<string, string>, config: ImageConfig): Container;
}

function must(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr}`);
  return res.stdout;
}

function attach(child: ChildProcess): { output: () => string; exited: Promise<number | null>; done: () => boolean } {
  let out = '';
  let done = false;
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return { output: () => out, exited, done: () => done };
}

/** Real uid from /proc/PID/status text. */
function realUid(status: string): number {
  const m = /^Uid:\s+(\d+)/m.exec(status);
  if (!m) throw new Error('no Uid line in /proc/…/status');
  return Number(m[1]);
}

/** This machine's processes below `pid` (from /proc). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function buildahEngine(b: LastBuild): Engine {
  const g = b.global;
  return {
    config() {
      const raw = JSON.parse(must('buildah', [...g, 'inspect', '--type', 'image', b.image])) as { Docker: { config: ImageConfig; history?: { created_by?: string }[] } };
      return { config: raw.Docker.config, history: (raw.Docker.history ?? []).map((h) => h.created_by ?? '') };
    },
    save(file) {
      must('buildah', [...g, 'push', '--quiet', '--disable-compression', b.image, `docker-archive:${file}:${b.image}`]);
    },
    create(name, env, config) {
      must('buildah', [...g, 'from', '--name', name, b.image]);
      const envArgs = Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
      const user = config.User ?? '';
      const run = (cmd: string[]) => ['run', '--isolation', 'chroot', ...(user ? ['--user', user] : []), ...envArgs, name, '--', ...cmd];
      return {
        start() {
          const child = spawn('buildah', [...g, ...run([...(config.Entrypoint ?? []), ...(config.Cmd ?? [])])], { stdio: ['ignore', 'pipe', 'pipe'] });
          const { output, exited, done } = attach(child);
          // buildah run → buildah-chroot-runtime → buildah-chroot-exec → node (→ tsx's esbuild service):
          // the last process in that chain that runs fedcare.mjs
          const runsFedcare = (p: number) => {
            try {
              return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('fedcare.mjs');
            } catch {
              return false;
            }
          };
          const mainPid = () =>
            waitFor(() => descendants(child.pid as number).filter((p) => runsFedcare(p) && !descendants(p).some(runsFedcare))[0], 30_000, 'the container process');
          return {
            output,
            exited,
            done,
            mainPid,
            uid: async () => realUid(readFileSync(`/proc/${await mainPid()}/status`, 'utf8')),
            terminate: async () => {
              process.kill(await mainPid(), 'SIGTERM');
            },
            kill: () => {
              for (const p of [...descendants(child.pid as number).reverse(), child.pid as number]) {
                try {
                  process.kill(p, 'SIGKILL');
                } catch {
                  // gone already
                }
              }
            },
          };
        },
        exec(cmd) {
          const res = spawnSync('buildah', [...g, ...run(cmd)], { encoding: 'utf8', timeout: 60_000 });
          return { status: res.status, output: `${res.stdout}${res.stderr}` };
        },
        remove() {
          spawnSync('buildah', [...g, 'rm', name], { stdio: 'ignore' });
        },
      };
    },
  };
}

function dockerEngine(b: LastBuild): Engine {
  return {
    config() {
      const [raw] = JSON.parse(must('docker', ['image', 'inspect', b.image])) as { Config: ImageConfig }[];
      const history = must('docker', ['history', '--no-trunc', '--format', '{{.CreatedBy}}', b.image]).split('\n');
      return { config: (raw as { Config: ImageConfig }).Config, history };
    },
    save(file) {
      must('docker', ['save', '-o', file, b.image]);
    },
    create(name, env) {
      // the host's network, as buildah's chroot isolation has it: the hospital on this machine reaches it
      must('docker', ['create', '--name', name, '--network', 'host', ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), b.image]);
      return {
        start() {
          const child = spawn('docker', ['start', '--attach', name], { stdio: ['ignore', 'pipe', 'pipe'] });
          const { output, exited, done } = attach(child);
          const mainPid = () => waitFor(() => Number(must('docker', ['inspect', '--format', '{{.State.Pid}}', name]).trim()) || undefined, 30_000, 'the container process');
          return {
            output,
            exited,
            done,
            mainPid,
            uid: async () => realUid(must('docker', ['exec', name, 'cat', '/proc/1/status'])),
            terminate: async () => {
              must('docker', ['kill', '--signal', 'SIGTERM', name]);
            },
            kill: () => {
              spawnSync('docker', ['kill', name], { stdio: 'ignore' });
            },
          };
        },
        exec(cmd) {
          const res = spawnSync('docker', ['exec', name, ...cmd], { encoding: 'utf8', timeout: 60_000 });
          return { status: res.status, output: `${res.stdout}${res.stderr}` };
        },
        remove() {
          spawnSync('docker', ['rm', '--force', name], { stdio: 'ignore' });
        },
      };
    },
  };
}

// ---- the CA bundle in the image's layers ----------------------------------------------------------

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const body = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

/**
 * The certificates of this machine's bundle that no stock trust store has (Node's own roots,
 * Debian's Mozilla set): this machine's additions, e.g. a TLS-intercepting proxy's CA. Those, or
 * the bundle itself, in an image layer would mean the build secret leaked.
 */
function machineOnlyCerts(bundle: string): string[] {
  const stock = new Set(rootCertificates.map(body));
  const mozilla = '/usr/share/ca-certificates/mozilla';
  if (existsSync(mozilla)) for (const f of readdirSync(mozilla)) for (const m of readFileSync(path.join(mozilla, f), 'utf8').matchAll(PEM)) stock.add(body(m[0]));
  return [...bundle.matchAll(PEM)].map((m) => m[0]).filter((pem) => !stock.has(body(pem)));
}

/** A line from the middle of a certificate's base64, as it stands in a PEM file. */
function needle(pem: string): Buffer {
  const lines = pem.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('-----'));
  return Buffer.from(lines[Math.floor(lines.length / 2)] as string);
}

interface TarFile {
  name: string;
  data: Buffer;
}

/** The regular files of a tar archive, long names (GNU, pax) included. */
function* tarFiles(buf: Buffer): Generator<TarFile> {
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= buf.length) {
    const header = buf.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number) => header.subarray(start, start + len).toString('latin1').replace(/\0.*$/s, '');
    const sizeField = header.subarray(124, 136);
    const size = (sizeField[0] as number) & 0x80 ? Number(sizeField.subarray(4).readBigUInt64BE()) : parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(257, 6).startsWith('ustar') ? field(345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const data = buf.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type === 'x') {
      const p = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      longName = p?.[1];
      continue;
    }
    longName = undefined;
    if (type === '0' || type === '7') yield { name: name.replace(/^\.\//, ''), data };
  }
}

const isTar = (data: Buffer) => data.length >= 512 && data.subarray(257, 262).toString('latin1') === 'ustar';

/** Every file of every layer in a saved image: { layer, name, data }. Gzipped layers are unpacked. */
function* imageFiles(archive: Buffer): Generator<TarFile & { layer: string }> {
  for (const outer of tarFiles(archive)) {
    let data = outer.data;
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    if (!isTar(data)) continue;
    for (const f of tarFiles(data)) yield { ...f, layer: outer.name };
  }
}

// ---- helpers ------------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const tail = (s: string, n = 4000) => (s.length > n ? `…${s.slice(-n)}` : s);

describe.skipIf(!canBuild)('the container image (npm run image)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'fc-image-'));
  const name = `fedcare-image-test-${process.pid}`;
  const clients: Proc[] = [];
  let build: LastBuild;
  let engine: Engine;
  let config: ImageConfig;
  let history: string[];
  let container: Container | undefined;
  let running: Running | undefined;
  let url = '';

  afterAll(async () => {
    for (const c of clients) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    const r = running;
    if (r && !r.done()) {
      await r.terminate().catch(() => undefined);
      await Promise.race([r.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (!r.done()) r.kill();
      await r.exited;
    }
    container?.remove();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const api = async (p: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token = ADMIN, ...rest } = init;
    return fetch(`${url}${p}`, { ...rest, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  };
  const json = async (p: string, init: RequestInit = {}) => (await api(p, init)).json() as Promise<Record<string, unknown>>;

  it('builds fedcare:latest', async () => {
    const t0 = Date.now();
    const child = spawn('npm', ['run', 'image', '--silent'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const { output, exited } = attach(child);
    const code = await exited;
    writeFileSync(path.join(work, 'build.log'), output());
    expect(code, tail(output())).toBe(0);
    build = JSON.parse(readFileSync(path.join(ROOT, '.cache/image/last-build.json'), 'utf8')) as LastBuild;
    expect(build.image).toBe('fedcare:latest');
    engine = build.engine === 'docker' ? dockerEngine(build) : buildahEngine(build);
    ({ config, history } = engine.config());
    console.log(`[image test] ${build.engine} ${build.global.join(' ')}: ${build.image} ${build.id}, ${build.size}, on ${build.base}, in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 2_700_000);

  it('runs fedcare serve as a user that is not root, on 8080, with a /healthz health check and production settings', () => {
    expect(config.User).toBeTruthy();
    expect(config.User).not.toMatch(/^(root|0)(:.*)?$/);
    expect(config.Entrypoint).toEqual(['node', '/app/apps/cli/bin/fedcare.mjs']);
    expect(config.Cmd).toEqual(['serve']);
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    expect(config.Healthcheck?.Test?.[0]).toBe('CMD');
    expect(config.Healthcheck?.Test?.join(' ')).toContain('/healthz');
    expect(config.Env).toEqual(expect.arrayContaining(['NODE_ENV=production', 'FEDCARE_HOST=0.0.0.0', 'FEDCARE_DB=/data/fedcare.db']));
  });

  it('holds the build secret (the npm CA bundle) in no layer, history entry or setting', () => {
    const text = [...(config.Env ?? []), ...history].join('\n');
    expect(text).not.toMatch(/NODE_EXTRA_CA_CERTS=|npm_config_cafile=|BEGIN CERTIFICATE/);
    const archive = path.join(work, 'image.tar');
    engine.save(archive);
    const saved = readFileSync(archive);
    rmSync(archive);
    const bundle = build.ca ? readFileSync(build.ca) : undefined;
    const bundleSha = bundle && createHash('sha256').update(bundle).digest('hex');
    const extra = bundle ? machineOnlyCerts(bundle.toString('utf8')) : [];
    const needles = extra.map(needle);
    // a control: the scan sees into the layers (a line of the repository's package.json is found)
    const control = Buffer.from(readFileSync(path.join(ROOT, 'package.json'), 'utf8').split('\n').find((l) => l.includes('"description"')) as string);
    const leaks: string[] = [];
    let files = 0;
    let controlFound = false;
    for (const f of imageFiles(saved)) {
      files++;
      if (f.name === 'app/package.json' && f.data.includes(control)) controlFound = true;
      if (bundle && f.data.length === bundle.length && createHash('sha256').update(f.data).digest('hex') === bundleSha) {
        // byte-identical to this machine's bundle: a leak, unless the bundle is a stock one at the stock place
        if (extra.length > 0 || f.name !== 'etc/ssl/certs/ca-certificates.crt') leaks.push(`${f.layer}: ${f.name} is the CA bundle`);
      }
      for (const [i, n] of needles.entries()) if (f.data.includes(n)) leaks.push(`${f.layer}: ${f.name} holds this machine's CA certificate #${i + 1}`);
    }
    console.log(`[image test] CA bundle ${build.ca ?? '(none)'}: ${extra.length} certificate(s) of this machine's own, searched in ${files} files of the image's layers`);
    expect(files).toBeGreaterThan(1000);
    expect(controlFound).toBe(true);
    expect(leaks).toEqual([]);
  }, 600_000);

  it('starts as its own user with its own entrypoint; /healthz 200, REST without a token 401', async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    container = engine.create(name, { PORT: String(port), FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: `H1:${H1_TOKEN}`, FEDCARE_LOG_LEVEL: 'info' }, config);
    running = container.start();
    const r = running;
    await waitFor(async () => {
      if (r.done()) throw new Error(`the container exited: ${tail(r.output())}`);
      const res = await fetch(`${url}/healthz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 180_000, `/healthz of the container (${url})`);
    expect(await r.uid()).not.toBe(0);
    expect(await r.uid()).toBe(1000); // node, as in the official image
    const health = container.exec(config.Healthcheck?.Test?.slice(1) ?? []);
    expect(health.status, health.output).toBe(0);
    const anonymous = await api('/api/v1/status', { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await json('/api/v1/status')).toMatchObject({ status: 'idle', active_clients: [] });
    expect(r.output()).toContain('db /data/fedcare.db');
  }, 300_000);

  it('trains a one-round run with a headless hospital on this machine', async () => {
    generateToDir(['H1'], 7, path.join(work, 'data'), 40);
    const data = path.join(work, 'data', 'H1.ndjson');
    const client = fedcareProcess(['client', '--server', url, '--hospital', 'H1', '--data', data, '--once', '--quiet'], { FEDCARE_TOKEN: H1_TOKEN });
    clients.push(client);
    await waitFor(async () => ((await json('/api/v1/status')).active_clients as string[]).includes('H1') || undefined, 120_000, 'H1 to connect');
    const res = await api('/api/v1/train/start', {
      method: 'POST',
      body: JSON.stringify({ config: { rounds: 1, local_epochs: 1, min_fit_clients: 1, min_evaluate_clients: 1, min_available_clients: 1 } }),
    });
    const started = (await res.json()) as { run_id: string };
    expect(res.status, JSON.stringify(started)).toBe(200);
    const code = await Promise.race([client.exited, new Promise((r) => setTimeout(() => r('timeout'), 300_000))]);
    expect(code, tail(client.output())).toBe(0);
    const runs = (await json('/api/v1/runs')).runs as { run_id: string; status: string; last_completed_round: number }[];
    expect(runs.find((r) => r.run_id === started.run_id)).toMatchObject({ status: 'completed', last_completed_round: 1 });
    const metrics = (await json(`/api/v1/metrics?run_id=${started.run_id}`)).rounds as { round_number: number }[];
    expect(metrics.map((m) => m.round_number)).toEqual([1]);
  }, 420_000);

  it('on SIGTERM interrupts the running run and exits 0 within 10 s; the next start resumes the run', async () => {
    const r = running as Running;
    const client = fedcareProcess(['client', '--server', url, '--hospital', 'H1', '--data', path.join(work, 'data', 'H1.ndjson'), '--quiet'], { FEDCARE_TOKEN: H1_TOKEN });
    clients.push(client);
    await waitFor(async () => ((await json('/api/v1/status')).active_clients as string[]).includes('H1') || undefined, 120_000, 'H1 to connect');
    const started = (await json('/api/v1/train/start', {
      method: 'POST',
      body: JSON.stringify({ config: { rounds: 50, local_epochs: 1, min_fit_clients: 1, min_evaluate_clients: 1, min_available_clients: 1 } }),
    })) as { run_id: string };
    await waitFor(async () => {
      const s = await json('/api/v1/status');
      return s.run_id === started.run_id && s.stage === 'train' ? true : undefined;
    }, 120_000, 'the run to train');
    const t0 = Date.now();
    await r.terminate();
    const code = await Promise.race([r.exited, new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000))]);
    const seconds = (Date.now() - t0) / 1000;
    expect(code, tail(r.output())).toBe(0);
    expect(seconds).toBeLessThan(10);
    console.log(`[image test] SIGTERM → exit 0 in ${seconds.toFixed(1)} s`);
    client.child.kill('SIGTERM');

    // The same container again (its /data volume kept): the run was interrupted, not ended.
    running = (container as Container).start();
    const again = running;
    await waitFor(async () => ((await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200 ? true : undefined), 180_000, 'the restarted container');
    const runs = (await json('/api/v1/runs')).runs as { run_id: string; status: string }[];
    expect(runs.find((x) => x.run_id === started.run_id)?.status).toBe('running');
    await waitFor(() => (again.output().includes('resuming interrupted run') ? true : undefined), 30_000, 'the resume log line');
    expect((await api('/api/v1/train/stop', { method: 'POST', body: JSON.stringify({ run_id: started.run_id }) })).status).toBe(200);
    await again.terminate();
    expect(await again.exited).toBe(0);
    running = undefined;
  }, 600_000);
});
