/** `fedcare token create|list|revoke`: credentials stored (hashed) in the coordinator's database. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore, tokenJson } from '@fedcare/server';
import { hospitalIdSchema } from '@fedcare/shared/data';
import { CliError, defaultDbPath } from '../io';
import { renderTable } from '../table';

const HELP = `usage: fedcare token create (--hospital H1 | --admin) [--db FILE | --server URL] [--json]
       fedcare token list [--db FILE | --server URL]
       fedcare token revoke TOKEN_ID [--db FILE | --server URL]

The plaintext token is printed once; the database keeps only its SHA-256. With --server the
coordinator's REST API does it (admin token in FEDCARE_ADMIN_TOKEN): for a deployed coordinator
whose database you have no shell on; revoking there also closes the token's open connections.`;

type TokenRow = ReturnType<typeof tokenJson>;

/** The REST side of `fedcare token --server`: the same three actions, as the admin. */
async function remote(server: string, method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> {
  const admin = process.env.FEDCARE_ADMIN_TOKEN;
  if (!admin) throw new CliError('--server needs the admin token in FEDCARE_ADMIN_TOKEN', 2);
  let res: Response;
  try {
    res = await fetch(`${server.replace(/\/$/, '')}${route}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new CliError(`cannot reach ${server}: ${(e as Error).message}`);
  }
  const payload = (await res.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  if (!res.ok) throw new CliError(`${server}: ${res.status} ${payload?.error ? `${payload.error.code}: ${payload.error.message}` : res.statusText}`);
  return payload;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      hospital: { type: 'string' },
      admin: { type: 'boolean', default: false },
      db: { type: 'string', default: defaultDbPath() },
      server: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [action, arg] = positionals;
  if (values.help || !action) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? 0 : 2;
  }
  const listRows = (rows: TokenRow[]) =>
    process.stdout.write(renderTable(['token id', 'role', 'hospital', 'created', 'revoked'], rows.map((t) => [t.token_id, t.role, t.hospital_id ?? '', t.created_at, t.revoked_at ?? ''])));
  if (values.server !== undefined) {
    const server = values.server;
    if (action === 'create') {
      if (values.admin === (values.hospital !== undefined)) throw new CliError('give exactly one of --hospital ID or --admin', 2);
      const created = (await remote(server, 'POST', '/api/v1/tokens', values.admin ? { role: 'admin' } : { role: 'hospital', hospital_id: values.hospital })) as { token_id: string; token: string; role: string; hospital_id?: string };
      process.stdout.write(values.json ? `${JSON.stringify(created)}\n` : `${created.token}\n`);
      process.stderr.write(`token ${created.token_id} created for ${created.hospital_id ?? 'admin'} on ${server}; store it now, it is not shown again\n`);
      return 0;
    }
    if (action === 'list') {
      listRows(((await remote(server, 'GET', '/api/v1/tokens')) as { tokens: TokenRow[] }).tokens);
      return 0;
    }
    if (action === 'revoke') {
      if (!arg) throw new CliError('revoke needs a TOKEN_ID (see `fedcare token list`)', 2);
      const res = (await remote(server, 'POST', '/api/v1/tokens/revoke', { token_id: arg })) as { disconnected: number };
      process.stderr.write(`token ${arg} revoked; ${res.disconnected} open connection(s) closed\n`);
      return 0;
    }
    throw new CliError(`unknown action "${action}" (create, list, revoke)`, 2);
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
      listRows((await store.listTokens()).map(tokenJson));
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
