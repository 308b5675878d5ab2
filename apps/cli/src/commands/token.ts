/** `fedcare token create|list|revoke`: credentials stored (hashed) in the coordinator's database. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '@fedcare/server';
import { hospitalIdSchema } from '@fedcare/shared/data';
import { CliError } from '../io';
import { renderTable } from '../table';

const HELP = `usage: fedcare token create (--hospital H1 | --admin) [--db FILE] [--json]
       fedcare token list [--db FILE]
       fedcare token revoke TOKEN_ID [--db FILE]

The plaintext token is printed once; the database keeps only its SHA-256.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      hospital: { type: 'string' },
      admin: { type: 'boolean', default: false },
      db: { type: 'string', default: path.join(process.env.FEDCARE_HOME ?? '.fedcare', 'fedcare.db') },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [action, arg] = positionals;
  if (values.help || !action) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  mkdirSync(path.dirname(path.resolve(values.db)), { recursive: true });
  const store = openSqliteStore(values.db);
  try {
    if (action === 'create') {
      if (values.admin === (values.hospital !== undefined)) throw new CliError('give exactly one of --hospital ID or --admin', 2);
      if (values.hospital !== undefined && !hospitalIdSchema.safeParse(values.hospital).success) throw new CliError(`--hospital: "${values.hospital}" is not a valid hospital id`, 2);
      const created = await store.createToken(values.admin ? { role: 'admin' } : { role: 'hospital', hospitalId: values.hospital as string });
      if (values.json) process.stdout.write(`${JSON.stringify({ token_id: created.tokenId, token: created.token, role: values.admin ? 'admin' : 'hospital', hospital_id: values.hospital })}\n`);
      else process.stdout.write(`${created.token}\n`);
      process.stderr.write(`token ${created.tokenId} created for ${values.admin ? 'admin' : values.hospital}; store it now, it is not shown again\n`);
      return 0;
    }
    if (action === 'list') {
      const rows = (await store.listTokens()).map((t) => [t.tokenId, t.role, t.hospitalId ?? '', t.createdAt, t.revokedAt ?? '']);
      process.stdout.write(renderTable(['token id', 'role', 'hospital', 'created', 'revoked'], rows));
      return 0;
    }
    if (action === 'revoke') {
      if (!arg) throw new CliError('revoke needs a TOKEN_ID (see `fedcare token list`)', 2);
      if (!(await store.revokeToken(arg))) throw new CliError(`no active token ${arg}`);
      process.stderr.write(`token ${arg} revoked\n`);
      return 0;
    }
    throw new CliError(`unknown action "${action}" (create, list, revoke)`, 2);
  } finally {
    await store.close();
  }
}
