// The container files, checked statically (no engine needed): the Dockerfile, .dockerignore and
// compose.yaml. compose cannot run here (no container engine), so what can be checked without one is:
// the coordinator and the hospitals run the same image, every variable compose sets for them is one
// fedcare reads, the tokens agree, the data volume and paths agree, health checks and start order.
// apps/cli/src/image.test.ts builds the image and runs it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVER_ENV } from './server-config';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions in order: comments dropped, continuation lines joined. */
function dockerfile(text: string): Instruction[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l) as RegExpExecArray;
      return { op: (m[1] as string).toUpperCase(), args: m[2] as string };
    });
}

/** The names of the environment variables fedcare's own sources read (apps/cli and apps/server, tests excluded). */
function fedcareVariables(): Set<string> {
  const names = new Set<string>(Object.values(SERVER_ENV).flat());
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/\b(FEDCARE_[A-Z0-9_]+)\b/g)) names.add(m[1] as string);
      }
    }
  };
  walk(path.join(ROOT, 'apps/cli/src'));
  walk(path.join(ROOT, 'apps/server/src'));
  return names;
}

/** The AWS SDK's own variables (credentials, region, per-service endpoints) that the aws store relies on. */
const AWS_SDK_VARIABLES = new Set(['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_DYNAMODB']);

/** compose's ${NAME:-default} with every variable unset: the defaults. */
function interpolateDefaults(value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_m, _name: string, fallback: string) => fallback);
}

describe('Dockerfile', () => {
  const ins = dockerfile(read('Dockerfile'));
  const lastFrom = ins.map((i) => i.op).lastIndexOf('FROM');
  const runtime = ins.slice(lastFrom);
  const one = (op: string) => runtime.filter((i) => i.op === op);

  it('builds on the official Node 24 slim image by default, the runtime stage too', () => {
    const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('BASE_IMAGE='));
    expect(arg?.args).toBe('BASE_IMAGE=docker.io/library/node:24-slim');
    expect(ins.indexOf(arg as Instruction)).toBeLessThan(ins.findIndex((i) => i.op === 'FROM'));
    expect(runtime[0]?.args).toMatch(/^\$\{BASE_IMAGE\}( AS \S+)?$/);
  });

  it('runs fedcare serve as the user node, production mode, data in the volume /data, port 8080, a /healthz health check', () => {
    expect(one('USER').map((i) => i.args)).toEqual(['node']);
    const env = one('ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/\bNODE_ENV=production\b/);
    // serve binds 127.0.0.1 by default; in a container the port is reached through its own interface.
    expect(env).toMatch(/\bFEDCARE_HOST=0\.0\.0\.0\b/);
    expect(env).toMatch(/\bFEDCARE_DB=\/data\/fedcare\.db\b/);
    // PORT would shadow FEDCARE_PORT (serve reads PORT first): the image leaves both to the deployer.
    expect(env).not.toMatch(/\b(PORT|FEDCARE_PORT)=/);
    expect(one('VOLUME').map((i) => i.args)).toEqual(['/data']);
    expect(one('EXPOSE').map((i) => i.args)).toEqual(['8080']);
    const health = one('HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(health[0]?.args).toMatch(/CMD \["node", "-e", ".*\/healthz/);
    expect(JSON.parse(one('ENTRYPOINT')[0]?.args ?? '[]')).toEqual(['node', '/app/apps/cli/bin/fedcare.mjs']);
    expect(JSON.parse(one('CMD')[0]?.args ?? '[]')).toEqual(['serve']);
    // the user owns /data and nothing else of the app
    const chown = runtime.filter((i) => i.op === 'RUN' && /chown/.test(i.args)).map((i) => i.args).join(' ');
    expect(chown).toMatch(/chown node:node \/data$/);
    expect(runtime.some((i) => (i.op === 'COPY' || i.op === 'ADD') && /--chown/.test(i.args))).toBe(false);
  });

  it('sets only variables fedcare reads', () => {
    const known = fedcareVariables();
    const names = ins.filter((i) => i.op === 'ENV').flatMap((i) => [...i.args.matchAll(/(?:^|\s)([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1] as string));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(name === 'NODE_ENV' || known.has(name), `${name} is read by fedcare`).toBe(true);
  });

  it('mounts the npm CA bundle as a build secret for the npm steps only, never into a layer or the config', () => {
    const text = read('Dockerfile');
    for (const i of ins) {
      if (i.op === 'ENV' || i.op === 'ARG') expect(i.args, `${i.op} ${i.args}`).not.toMatch(/NODE_EXTRA_CA_CERTS|npm_config_cafile|ca-certificates\.crt/i);
      if (i.op === 'COPY' || i.op === 'ADD') expect(i.args).not.toMatch(/\.crt|\.pem|secrets/);
      if (i.op === 'RUN' && /npm ci/.test(i.args)) expect(i.args).toMatch(/--mount=type=secret,id=npm_ca,required=false/);
    }
    expect(text).not.toMatch(/cp .*\/run\/secrets|cat .*\/run\/secrets/);
  });

  it('installs production dependencies of shared, server and cli only in the runtime stage', () => {
    const deps = ins.find((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args));
    expect(deps?.args).toMatch(/--workspace shared --workspace apps\/server --workspace apps\/cli/);
    expect(runtime.filter((i) => i.op === 'COPY' && /--from=/.test(i.args)).map((i) => /--from=(\S+)/.exec(i.args)?.[1])).toEqual(['deps', 'web', 'web']);
    expect(ins.some((i) => i.op === 'RUN' && /npm run build:web/.test(i.args))).toBe(true);
  });
});

describe('.dockerignore', () => {
  it('keeps installs, builds, local state, credentials and the git history out of the build context', () => {
    const lines = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['**/node_modules', '**/dist', '.git', '.cache', '.fedcare', '.scratch', 'test-results', 'data', 'coverage']) expect(lines).toContain(p);
    // e2e's manifest stays: npm ci checks every workspace of the lock file
    expect(lines).toContain('!e2e/package.json');
  });
});

describe('compose.yaml', () => {
  interface Service {
    image?: string;
    build?: { context?: string; dockerfile?: string } | string;
    command?: string[];
    environment?: Record<string, string>;
    volumes?: string[];
    depends_on?: Record<string, { condition: string }>;
    healthcheck?: { disable?: boolean; test?: string[] };
  }
  const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const services = compose.services;
  const coordinator = services.coordinator as Service;
  const hospitals = Object.entries(services).filter(([, s]) => s.command?.[0] === 'client');
  const generate = Object.values(services).find((s) => s.command?.[0] === 'generate') as Service;
  const env = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolateDefaults(String(v))]));
  const arg = (s: Service, flag: string) => s.command?.[(s.command?.indexOf(flag) ?? -2) + 1];

  it('parses, and runs the coordinator, a one-shot generate and three hospitals from one image built from the Dockerfile', () => {
    expect(coordinator.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    expect(coordinator.command).toBeUndefined(); // the image's CMD: serve
    expect(hospitals.map(([, s]) => arg(s, '--hospital'))).toEqual(['H1', 'H2', 'H3']);
    for (const s of [coordinator, generate, ...hospitals.map(([, h]) => h)]) expect(s.image).toBe('fedcare:latest');
  });

  it('sets only variables that serve and client read', () => {
    const known = fedcareVariables();
    for (const [name, s] of [['coordinator', coordinator], ['generate', generate], ...hospitals] as [string, Service][]) {
      for (const v of Object.keys(s.environment ?? {})) expect(known.has(v) || AWS_SDK_VARIABLES.has(v), `${name}: ${v} is read by fedcare or the AWS SDK`).toBe(true);
    }
  });

  it('configures the aws store against the local DynamoDB and S3 stand-ins, which it waits for', () => {
    const e = env(coordinator);
    expect(e).toMatchObject({ FEDCARE_STORE: 'aws', FEDCARE_CREATE_MISSING: '1' });
    for (const v of ['FEDCARE_S3_BUCKET', 'FEDCARE_DYNAMODB_TABLE_PREFIX', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) expect(e[v], v).toBeTruthy();
    const s3 = new URL(e.AWS_ENDPOINT_URL_S3 as string);
    const dynamo = new URL(e.AWS_ENDPOINT_URL_DYNAMODB as string);
    const s3Service = services[s3.hostname] as Service;
    const dynamoService = services[dynamo.hostname] as Service;
    expect(s3Service.image).toMatch(/^(minio\/minio|adobe\/s3mock)(:|$)/);
    expect(dynamoService.image).toMatch(/^amazon\/dynamodb-local(:|$)/);
    expect(s3.port).toBe('9000');
    expect(dynamo.port).toBe('8000');
    // MinIO's credentials are the coordinator's dummy AWS credentials
    expect(env(s3Service)).toMatchObject({ MINIO_ROOT_USER: e.AWS_ACCESS_KEY_ID, MINIO_ROOT_PASSWORD: e.AWS_SECRET_ACCESS_KEY });
    expect(coordinator.depends_on).toEqual({ [s3.hostname]: { condition: 'service_healthy' }, [dynamo.hostname]: { condition: 'service_started' } });
    expect(s3Service.healthcheck?.test).toBeDefined();
  });

  it('gives each hospital the token the coordinator has for it, the data that generate wrote, and starts it after both', () => {
    const tokens = Object.fromEntries((env(coordinator).FEDCARE_HOSPITAL_TOKENS as string).split(',').map((t) => t.split(':') as [string, string]));
    const out = arg(generate, '--out') as string;
    expect(arg(generate, '--hospitals')).toBe('H1,H2,H3');
    const dataVolume = generate.volumes?.find((v) => v.endsWith(`:${out}`)) as string;
    expect(dataVolume).toBeDefined();
    expect(compose.volumes).toHaveProperty(dataVolume.split(':')[0] as string);
    const generateName = Object.keys(services).find((k) => services[k] === generate) as string;
    for (const [name, h] of hospitals) {
      const id = arg(h, '--hospital') as string;
      expect(env(h).FEDCARE_TOKEN, name).toBe(tokens[id]);
      expect(arg(h, '--server')).toBe('http://coordinator:8080');
      expect(arg(h, '--data')).toBe(`${out}/${id}.ndjson`);
      expect(h.volumes).toContain(dataVolume);
      expect(h.depends_on).toEqual({ [generateName]: { condition: 'service_completed_successfully' }, coordinator: { condition: 'service_healthy' } });
      // the image's HEALTHCHECK asks the coordinator's /healthz: not a hospital's
      expect(h.healthcheck?.disable, name).toBe(true);
    }
    expect(generate.healthcheck?.disable).toBe(true);
    expect(new Set(Object.values(tokens)).size).toBe(3);
    expect(Object.values(tokens)).not.toContain(env(coordinator).FEDCARE_ADMIN_TOKEN);
    for (const t of [...Object.values(tokens), env(coordinator).FEDCARE_ADMIN_TOKEN as string]) expect(t.length).toBeGreaterThanOrEqual(16);
  });

  it('relies on the image health check (GET /healthz) for the coordinator', () => {
    expect(coordinator.healthcheck).toBeUndefined();
    expect(read('Dockerfile')).toMatch(/HEALTHCHECK [^\n]*\n\s*CMD \["node", "-e", "[^\n]*'\/healthz'/);
  });
});
