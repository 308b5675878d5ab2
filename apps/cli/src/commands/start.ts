/**
 * `fedcare start` (what `npm start` runs): the main job on embedded defaults — SQLite, local files,
 * no cloud. Generates H1–H3 once, starts the coordinator (on 127.0.0.1 unless FEDCARE_HOST says
 * otherwise), starts the three headless hospitals as their own processes (unless --no-agents),
 * starts a FedAvg run (unless one is being resumed or --no-run), prints the dashboard URL, each
 * hospital's portal URL (H1–H3, and H4 for someone who brings their own records) and the name of
 * the 0600 file that holds the tokens — never a token itself (terminals are logged and shared) —
 * and shows per-round progress. Ctrl-C stops it all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateToken, startServer } from '@fedcare/server';
import { KNOWN_HOSPITALS } from '@fedcare/shared/data';
import type { RoundReport } from '@fedcare/shared/fl';
import { runConfigSchema } from '@fedcare/shared/protocol';
import { PRIVATE, writeFileAtomic } from '../io';
import { webApps } from '../web';
import { ProgressBar } from '../progress';
import { generateToDir } from './generate';
import { mlflowSetting } from '../server-config';

const HELP = `usage: fedcare start [--home .fedcare] [--port 8080] [--rounds 10] [--local-epochs 1] [--no-agents] [--no-run]

Runs the coordinator with headless hospitals H1–H3 on generated data (HOME/data), SQLite in
HOME/fedcare.db, credentials in HOME/tokens.json (created once, mode 0600; HOME is 0700; the tokens
are never printed: read them from the file). Listens on 127.0.0.1 (FEDCARE_HOST to change). Serves the dashboard
at /dashboard/ and the hospital portal at /hospital/. With --no-agents nobody trains until
hospitals join from their portals (H1–H3 with the generated files, or H4 with records you bring).
Ctrl-C interrupts a run without ending it: the next start resumes it from its last completed round.`;

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/fedcare.mjs');

interface Credentials {
  admin: string;
  hospitals: Record<string, string>;
}

/** A hospital with no headless agent and no generated data: someone opens its portal and imports records (e.g. FHIR bundles). */
const PORTAL_ONLY_HOSPITAL = 'H4';

function loadOrCreateCredentials(file: string): Credentials {
  const existing = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Credentials) : undefined;
  const creds: Credentials = existing ?? { admin: generateToken(), hospitals: {} };
  let changed = !existing;
  for (const h of [...KNOWN_HOSPITALS, PORTAL_ONLY_HOSPITAL]) {
    if (!creds.hospitals[h]) {
      creds.hospitals[h] = generateToken();
      changed = true;
    }
  }
  // 0600 from its creation (the temporary file is created so), never world-readable for a moment.
  if (changed) writeFileAtomic(file, `${JSON.stringify(creds, null, 2)}\n`, PRIVATE);
  return creds;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      home: { type: 'string', default: process.env.FEDCARE_HOME ?? '.fedcare' },
      port: { type: 'string', default: process.env.PORT ?? '8080' },
      rounds: { type: 'string', default: '10' },
      'local-epochs': { type: 'string', default: '1' },
      seed: { type: 'string', default: '42' },
      'no-agents': { type: 'boolean', default: false },
      'no-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const home = values.home;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const dataDir = path.join(home, 'data');
  if (!existsSync(dataDir) || !readdirSync(dataDir).some((f) => f.endsWith('.ndjson'))) {
    process.stderr.write(`generating hospitals ${KNOWN_HOSPITALS.join(', ')} into ${dataDir} …\n`);
    for (const s of generateToDir(KNOWN_HOSPITALS, Number(values.seed), dataDir)) {
      process.stderr.write(`  ${s.hospital}: ${s.patients} patients, mean age ${s.mean_age.toFixed(1)}, readmission ${s.readmission_rate.toFixed(3)}\n`);
    }
  }
  const tokensFile = path.join(home, 'tokens.json');
  const creds = loadOrCreateCredentials(tokensFile);
  const mlflow = mlflowSetting(process.env);
  const server = await startServer({
    port: Number(values.port),
    host: process.env.FEDCARE_HOST || '127.0.0.1',
    db: path.join(home, 'fedcare.db'),
    env: {
      ...process.env,
      FEDCARE_ADMIN_TOKEN: process.env.FEDCARE_ADMIN_TOKEN ?? creds.admin,
      FEDCARE_HOSPITAL_TOKENS: process.env.FEDCARE_HOSPITAL_TOKENS ?? Object.entries(creds.hospitals).map(([h, t]) => `${h}:${t}`).join(','),
    },
    logLevel: 'warn',
    staticApps: webApps(),
    // MLFLOW_TRACKING_URI set: runs are logged to MLflow here too (apps/server/src/mlflow.ts).
    ...(mlflow ? { mlflow } : {}),
  });
  const base = `http://localhost:${server.port}`;
  process.stdout.write(
    [
      '',
      `fedcare coordinator   ${base}`,
      `  dashboard           ${base}/dashboard/   (sign in with the admin token; a hospital's token shows only that hospital)`,
      `  REST API            ${base}/api/v1/status   (OpenAPI: ${base}/api/v1/openapi.json)`,
      `  Prometheus          ${base}/metrics`,
      `  admin token         "admin" in ${tokensFile}`,
      '',
      `hospital portals (open one, sign in with its token, import records, click "Join round")`,
      ...[...KNOWN_HOSPITALS, PORTAL_ONLY_HOSPITAL].flatMap((h) => [
        `  ${h}  ${base}/hospital/?hospital=${h}`,
        `      token "hospitals.${h}" in the credentials file   ${
          h === PORTAL_ONLY_HOSPITAL
            ? '(an extra hospital: import your own records, e.g. FHIR bundles)'
            : values['no-agents']
              ? `(records: ${path.join(dataDir, `${h}.ndjson`)})`
              : '(its headless agent is connected; start with --no-agents to be it in the browser)'
        }`,
      ]),
      `  credentials file    ${tokensFile}   (mode 0600; the tokens are not printed)`,
      '',
    ].join('\n') + '\n',
  );

  const agents: ChildProcess[] = [];
  if (!values['no-agents']) {
    for (const h of KNOWN_HOSPITALS) {
      // Token via the environment: argv is visible to other users (and a token may start with '-').
      const child = spawn(process.execPath, [BIN, 'client', '--server', server.url, '--hospital', h, '--data', path.join(dataDir, `${h}.ndjson`), '--quiet'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, FEDCARE_TOKEN: creds.hospitals[h] as string },
      });
      agents.push(child);
    }
    process.stderr.write(`headless hospitals ${KNOWN_HOSPITALS.join(', ')} started\n`);
  }

  let bar: ProgressBar | undefined;
  server.events.on('round', (r: RoundReport) => {
    bar ??= new ProgressBar('federation', server.coordinator.status().total_rounds || Number(values.rounds));
    const m = r.metrics;
    bar.update(r.round, `round ${r.round}: auc_roc ${(m.auc_roc ?? Number.NaN).toFixed(3)} test_acc ${(m.test_accuracy ?? Number.NaN).toFixed(3)} ${(m.round_duration_seconds ?? 0).toFixed(0)}s`);
  });
  const followRun = () =>
    void server.coordinator.idle().then((s) => {
      if (s?.status === 'completed') bar?.done();
      else bar?.stop();
      if (!s) return;
      if (s.status === 'interrupted') process.stderr.write(`run ${s.runId} interrupted: ${s.reason}\n`);
      else process.stderr.write(`run ${s.runId} ${s.status}${s.reason ? ` (${s.reason})` : ''}; the coordinator keeps serving — Ctrl-C to stop\n`);
    });
  const resumed = server.coordinator.status();
  if (resumed.status === 'running' && resumed.run_id) {
    // A run an earlier start left (Ctrl-C, a crash) goes on from its last completed round.
    process.stderr.write(`run ${resumed.run_id} resumes after round ${resumed.current_round} of ${resumed.total_rounds}; follow it at ${base}/api/v1/status\n`);
    bar = new ProgressBar('federation', resumed.total_rounds, process.stderr, true, resumed.current_round);
    followRun();
  } else if (!values['no-run']) {
    const config = runConfigSchema.parse({ rounds: Number(values.rounds), local_epochs: Number(values['local-epochs']), early_stopping_patience: 0 });
    bar = new ProgressBar('federation', config.rounds);
    const { runId } = await server.coordinator.start(config, 'npm start');
    process.stderr.write(`run ${runId}: FedAvg, ${config.rounds} rounds × ${config.local_epochs} local epoch(s); follow it at ${base}/api/v1/status\n`);
    followRun();
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  process.stderr.write('stopping …\n');
  for (const a of agents) a.kill('SIGTERM');
  await server.close();
  return 0;
}
