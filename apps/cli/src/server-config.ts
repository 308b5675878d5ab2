/**
 * How `fedcare serve` (and the coordinator inside `fedcare simulate`) is configured: every setting
 * from a flag or, in a container, from the environment alone (12-factor); a flag wins over the
 * environment, the environment over the default. Bad settings fail with one line naming the
 * setting, before anything is opened or written.
 */
import { readFileSync } from 'node:fs';
import { mlflowOptionsFromEnv, type MlflowOptions, type ServerLimits, type StoreSpec } from '@fedcare/server';
import { CliError, defaultDbPath } from './io';

/** Every environment variable the coordinator reads (README "Deploy" lists them with their meaning). */
export const SERVER_ENV = {
  port: ['PORT', 'FEDCARE_PORT'],
  host: ['FEDCARE_HOST'],
  logLevel: ['FEDCARE_LOG_LEVEL'],
  store: ['FEDCARE_STORE'],
  db: ['FEDCARE_DB'],
  tablePrefix: ['FEDCARE_DYNAMODB_TABLE_PREFIX'],
  bucket: ['FEDCARE_S3_BUCKET'],
  region: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
  createMissing: ['FEDCARE_CREATE_MISSING'],
  tlsCert: ['FEDCARE_TLS_CERT'],
  tlsKey: ['FEDCARE_TLS_KEY'],
  allowedOrigins: ['FEDCARE_ALLOWED_ORIGINS'],
  cloudwatchEmf: ['FEDCARE_CLOUDWATCH_EMF'],
  deployment: ['FEDCARE_DEPLOYMENT'],
  drainSeconds: ['FEDCARE_DRAIN_SECONDS'],
  maxConnections: ['FEDCARE_MAX_CONNECTIONS'],
  maxConnectionsPerIp: ['FEDCARE_MAX_CONNECTIONS_PER_IP'],
  authFailuresPerMinute: ['FEDCARE_AUTH_FAILURES_PER_MINUTE'],
  trustProxy: ['FEDCARE_TRUST_PROXY'],
  auditMaxRows: ['FEDCARE_AUDIT_MAX_ROWS'],
  auditMaxAgeDays: ['FEDCARE_AUDIT_MAX_AGE_DAYS'],
  // MLflow tracking, under MLflow's own names (its clients read the same variables).
  mlflowTrackingUri: ['MLFLOW_TRACKING_URI'],
  mlflowExperimentName: ['MLFLOW_EXPERIMENT_NAME'],
  mlflowTrackingToken: ['MLFLOW_TRACKING_TOKEN'],
  mlflowTrackingUsername: ['MLFLOW_TRACKING_USERNAME'],
  mlflowTrackingPassword: ['MLFLOW_TRACKING_PASSWORD'],
} as const;

type Env = Record<string, string | undefined>;

function fromEnv(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return { name, value };
  }
  return undefined;
}

/** A flag's value, else the first set environment variable's, else the default; with where it came from. */
export function setting(flag: string | undefined, flagName: string, env: Env, names: readonly string[], fallback?: string): { value: string | undefined; from: string } {
  if (flag !== undefined) return { value: flag, from: flagName };
  const e = fromEnv(env, names);
  if (e) return { value: e.value, from: e.name };
  return { value: fallback, from: `${flagName} (default)` };
}

export function booleanSetting(flag: boolean | undefined, env: Env, names: readonly string[]): boolean {
  if (flag) return true;
  const e = fromEnv(env, names);
  if (!e) return false;
  if (/^(1|true|yes|on)$/i.test(e.value)) return true;
  if (/^(0|false|no|off)$/i.test(e.value)) return false;
  throw new CliError(`${e.name} must be 1/true or 0/false, got "${e.value}"`, 2);
}

export function portSetting(flag: string | undefined, env: Env, fallback = '8080'): number {
  const s = setting(flag, '--port', env, SERVER_ENV.port, fallback);
  const port = Number(s.value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${s.from} must be a port 0–65535, got "${s.value}"`, 2);
  return port;
}

export interface StoreFlags {
  store?: string | undefined;
  db?: string | undefined;
  'create-missing'?: boolean | undefined;
}

/** sqlite (default: a file) or aws (DynamoDB tables with a prefix + an S3 bucket; endpoints from AWS_ENDPOINT_URL_*). */
export function storeSpec(flags: StoreFlags, env: Env, defaultDb = defaultDbPath()): StoreSpec {
  const kind = setting(flags.store, '--store', env, SERVER_ENV.store, 'sqlite');
  if (kind.value === 'sqlite') return { kind: 'sqlite', file: setting(flags.db, '--db', env, SERVER_ENV.db, defaultDb).value as string };
  if (kind.value !== 'aws') throw new CliError(`${kind.from} must be sqlite or aws, got "${kind.value}"`, 2);
  const bucket = fromEnv(env, SERVER_ENV.bucket);
  if (!bucket) throw new CliError('the aws store needs FEDCARE_S3_BUCKET (the bucket for model weights)', 2);
  const prefix = fromEnv(env, SERVER_ENV.tablePrefix)?.value ?? 'fedcare-';
  const region = fromEnv(env, SERVER_ENV.region)?.value;
  return { kind: 'aws', tablePrefix: prefix, bucket: bucket.value, ...(region ? { region } : {}), createMissing: booleanSetting(flags['create-missing'], env, SERVER_ENV.createMissing) };
}

export interface TlsFlags {
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
}

/** The certificate and key, read now; both or neither. */
export function tlsFiles(flags: TlsFlags, env: Env): { cert: Buffer; key: Buffer } | undefined {
  const cert = setting(flags['tls-cert'], '--tls-cert', env, SERVER_ENV.tlsCert);
  const key = setting(flags['tls-key'], '--tls-key', env, SERVER_ENV.tlsKey);
  if (cert.value === undefined && key.value === undefined) return undefined;
  if (cert.value === undefined || key.value === undefined) throw new CliError(`TLS needs both a certificate and a key: ${cert.value === undefined ? '--tls-cert (FEDCARE_TLS_CERT)' : '--tls-key (FEDCARE_TLS_KEY)'} is missing`, 2);
  const read = (s: { value: string | undefined; from: string }): Buffer => {
    try {
      return readFileSync(s.value as string);
    } catch (e) {
      throw new CliError(`${s.from}: cannot read ${s.value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
    }
  };
  const out = { cert: read(cert), key: read(key) };
  if (!/-----BEGIN [A-Z ]*CERTIFICATE-----/.test(out.cert.toString('latin1'))) throw new CliError(`${cert.from}: ${cert.value} holds no PEM certificate`, 2);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(out.key.toString('latin1'))) throw new CliError(`${key.from}: ${key.value} holds no PEM private key`, 2);
  return out;
}

/** Seconds between SIGTERM and closing, while /readyz answers 503 (FEDCARE_DRAIN_SECONDS; default 0). */
export function drainSetting(env: Env): number {
  const e = fromEnv(env, SERVER_ENV.drainSeconds);
  if (!e) return 0;
  const s = Number(e.value);
  if (!(Number.isFinite(s) && s >= 0 && s <= 3600)) throw new CliError(`${e.name} must be seconds 0–3600, got "${e.value}"`, 2);
  return s;
}

/** A positive integer setting from the environment, within [1, max]; undefined when unset (the coordinator's default applies). */
function positiveInt(env: Env, names: readonly string[], max: number): number | undefined {
  const e = fromEnv(env, names);
  if (!e) return undefined;
  const n = Number(e.value);
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= max)) throw new CliError(`${e.name} must be an integer 1–${max}, got "${e.value}"`, 2);
  return n;
}

/** Strangers' limits and audit retention (README "Deploy"); unset ones keep the coordinator's defaults. */
export function limitSettings(env: Env): Partial<ServerLimits> {
  const out: Partial<ServerLimits> = {};
  const set = <K extends keyof ServerLimits>(key: K, value: ServerLimits[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('maxConnections', positiveInt(env, SERVER_ENV.maxConnections, 1_000_000));
  set('maxConnectionsPerIp', positiveInt(env, SERVER_ENV.maxConnectionsPerIp, 1_000_000));
  set('authFailuresPerMinute', positiveInt(env, SERVER_ENV.authFailuresPerMinute, 1_000_000));
  set('auditMaxRows', positiveInt(env, SERVER_ENV.auditMaxRows, 1_000_000_000));
  set('auditMaxAgeDays', positiveInt(env, SERVER_ENV.auditMaxAgeDays, 36_500));
  if (fromEnv(env, SERVER_ENV.trustProxy)) out.trustProxy = booleanSetting(undefined, env, SERVER_ENV.trustProxy);
  return out;
}

/** MLflow tracking (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD); undefined when no URI is set. */
export function mlflowSetting(env: Env): MlflowOptions | undefined {
  try {
    return mlflowOptionsFromEnv(env);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}
