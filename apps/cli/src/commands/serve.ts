/** `fedcare serve`: the coordinator on a port, on embedded defaults (SQLite file, local logs). */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startServer } from '@fedcare/server';
import { CliError, defaultDbPath } from '../io';
import { webApps } from '../web';

const HELP = `usage: fedcare serve [--port 8080] [--host 0.0.0.0] [--db .fedcare/fedcare.db] [--log-level info]

Starts the coordinator: Socket.IO (/hospital, /dashboard), REST /api/v1, /metrics. Credentials:
\`fedcare token create\`, or FEDCARE_ADMIN_TOKEN and FEDCARE_HOSPITAL_TOKENS="H1:tok,…".
/metrics is open (for a scraper on a private network) unless FEDCARE_METRICS_TOKEN is set; then
it needs that bearer token or the admin token.
A run left running by a crashed coordinator resumes from its last completed round; SIGTERM or
Ctrl-C interrupts a run without ending it (the next start on the same database resumes it), while
an admin's POST /api/v1/train/stop ends it.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '0.0.0.0' },
      db: { type: 'string', default: defaultDbPath() },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0–65535, got "${values.port}"`, 2);
  if (values.db !== ':memory:') mkdirSync(path.dirname(path.resolve(values.db)), { recursive: true });
  const server = await startServer({ port, host: values.host, db: values.db, logLevel: values['log-level'], staticApps: webApps() });
  process.stderr.write(`fedcare coordinator on ${server.url} (db ${values.db})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
