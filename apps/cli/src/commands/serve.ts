/** `fedcare serve`: the coordinator on a port — on embedded defaults (SQLite file, local logs), or configured by the environment alone in a container. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openStore, parseAllowedOrigins, startServer } from '@fedcare/server';
import { CliError } from '../io';
import { readRunConfigFile, resolveRunConfig } from '../run-config-file';
import { booleanSetting, drainSetting, limitSettings, mlflowSetting, portSetting, SERVER_ENV, setting, storeSpec, tlsFiles } from '../server-config';
import { webApps } from '../web';

const HELP = `usage: fedcare serve [--port 8080] [--host 127.0.0.1] [--store sqlite|aws] [--db .fedcare/fedcare.db]
                     [--create-missing] [--tls-cert FILE --tls-key FILE] [--cloudwatch-emf] [--log-level info]
                     [--config run.yaml] [--set key=value …]

Starts the coordinator: Socket.IO (/hospital, /dashboard), REST /api/v1, /metrics, /healthz, /readyz,
and the web apps (/hospital/, /dashboard/). It listens on 127.0.0.1 unless --host (FEDCARE_HOST) names
another interface (0.0.0.0 for all: the container image sets it). Every flag has an environment variable (a flag wins):
PORT or FEDCARE_PORT, FEDCARE_HOST, FEDCARE_STORE, FEDCARE_DB, FEDCARE_CREATE_MISSING, FEDCARE_TLS_CERT,
FEDCARE_TLS_KEY, FEDCARE_CLOUDWATCH_EMF, FEDCARE_LOG_LEVEL; and FEDCARE_ALLOWED_ORIGINS (browser origins
besides the coordinator's own), FEDCARE_DEPLOYMENT (the EMF Deployment dimension), FEDCARE_DRAIN_SECONDS
(after SIGTERM, answer /readyz 503 and keep serving this long before closing; default 0).
Strangers: FEDCARE_MAX_CONNECTIONS (open Socket.IO connections in all, default 1000),
FEDCARE_MAX_CONNECTIONS_PER_IP (default 32), FEDCARE_AUTH_FAILURES_PER_MINUTE (failed authentications
per address before it gets 429 / RATE_LIMITED for a minute, default 20), FEDCARE_TRUST_PROXY (1: the
client address is the last X-Forwarded-For entry, behind a load balancer), FEDCARE_AUDIT_MAX_ROWS
(default 100000) and FEDCARE_AUDIT_MAX_AGE_DAYS (default 365): the audit log's retention.

Store: sqlite (a file) or aws — DynamoDB tables FEDCARE_DYNAMODB_TABLE_PREFIX + fl-training-metadata, …
and the S3 bucket FEDCARE_S3_BUCKET; endpoints from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3,
region from AWS_REGION. --create-missing creates the tables and the bucket (local use; a deployment owns them).
TLS: HTTPS and WSS, TLS 1.2 minimum, 1.3 offered, HSTS (behind a load balancer TLS ends there: no flags).
--cloudwatch-emf: one CloudWatch Embedded Metric Format record per completed round on stdout.
MLFLOW_TRACKING_URI (http(s)): each run logged to that MLflow tracking server (experiment
MLFLOW_EXPERIMENT_NAME, default fedcare; MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
_PASSWORD): params, every round's metrics, the model card and final model, the run's status.
--config FILE (YAML or JSON, examples/*.yaml) and --set key=value: the run configuration a run
started over REST or from the dashboard takes for every key its request leaves out (the request
wins); validated at start-up, errors name the key and line.
Credentials: \`fedcare token create\`, or FEDCARE_ADMIN_TOKEN and FEDCARE_HOSPITAL_TOKENS="H1:tok,…".
/metrics is open (for a scraper on a private network) unless FEDCARE_METRICS_TOKEN is set; then
it needs that bearer token or the admin token.
A run left running by a crashed coordinator resumes from its last completed round; SIGTERM or
Ctrl-C interrupts a run without ending it (the next start on the same store resumes it), while
an admin's POST /api/v1/train/stop ends it.`;

export async function run(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      store: { type: 'string' },
      db: { type: 'string' },
      'create-missing': { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'cloudwatch-emf': { type: 'boolean' },
      'log-level': { type: 'string' },
      config: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  // Every setting is checked before anything is opened.
  const port = portSetting(values.port, env);
  const host = setting(values.host, '--host', env, SERVER_ENV.host, '127.0.0.1').value as string;
  const logLevel = setting(values['log-level'], '--log-level', env, SERVER_ENV.logLevel, 'info').value as string;
  const spec = storeSpec(values, env);
  const tls = tlsFiles(values, env);
  let allowedOrigins: string[];
  try {
    allowedOrigins = parseAllowedOrigins(env.FEDCARE_ALLOWED_ORIGINS);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  const emf = booleanSetting(values['cloudwatch-emf'], env, SERVER_ENV.cloudwatchEmf);
  const deployment = env.FEDCARE_DEPLOYMENT;
  const drainSeconds = drainSetting(env);
  const limits = limitSettings(env);
  const mlflow = mlflowSetting(env);
  // Run defaults from --config / --set, validated now (a bad key stops serve before anything opens).
  const runDefaults = values.config || values.set.length > 0 ? resolveRunConfig({ defaults: {}, ...(values.config ? { file: readRunConfigFile(values.config) } : {}), sets: values.set }) : undefined;

  // The database's directory is created 0700 (the file itself 0600: SqliteStore).
  if (spec.kind === 'sqlite' && spec.file !== ':memory:') mkdirSync(path.dirname(path.resolve(spec.file)), { recursive: true, mode: 0o700 });
  let store;
  try {
    store = await openStore(spec);
  } catch (e) {
    throw new CliError(`cannot open the ${spec.kind} store: ${(e as Error).message}`, 1);
  }
  let server;
  try {
    server = await startServer({
      port,
      host,
      store,
      logLevel,
      staticApps: webApps(),
      ...(runDefaults ? { runDefaults } : {}),
      ...(tls ? { tls } : {}),
      allowedOrigins,
      limits,
      ...(mlflow ? { mlflow } : {}),
      ...(emf ? { cloudwatchEmf: { write: (line: string) => process.stdout.write(`${line}\n`), ...(deployment ? { deployment } : {}) } } : {}),
      env,
    });
  } catch (e) {
    await store.close().catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new CliError(`port ${port} on ${host} is in use`, 1);
    if (tls && /PEM|key|certificate/i.test(err.message)) throw new CliError(`the TLS certificate or key is not usable: ${err.message}`, 2);
    throw e;
  }
  process.stderr.write(`fedcare coordinator on ${server.url} (${spec.kind === 'sqlite' ? `db ${spec.file}` : `aws store: tables ${spec.tablePrefix}*, bucket ${spec.bucket}`}${tls ? ', TLS' : ''})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // Not ready at once; serving on for FEDCARE_DRAIN_SECONDS lets a load balancer that polls /readyz move off first.
  await server.close({ drainMs: drainSeconds * 1000 });
  return 0;
}
