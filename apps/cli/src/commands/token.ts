/** `fedcare token create|list|revoke`: credentials stored (hashed) in the coordinator's database. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore, tokenJson } from '@fedcare/server';
import { ApiError, createApiClient } from '@fedcare/shared/api';
import { hospitalIdSchema } from '@fedcare/shared/data';
import { parseDuration } from '../duration';
import { CliError, defaultDbPath } from '../io';
import { renderTable } from '../table';

const HELP = `usage: fedcare token create (--hospital H1 | --admin | --observer) [--expires 90d] [--db FILE | --server URL] [--json]
       fedcare token list [--db FILE | --server URL]
       fedcare token revoke TOKEN_ID [--db FILE | --server URL]

Roles: a hospital token signs that hospital in and reads its own metrics and the global ones; an
observer token reads what the dashboard shows (every hospital) and nothing else; the admin token
does everything (run control, credentials). --expires: the token stops working after this long
(s, m, h, d, w: 30m, 12h, 90d; without it, it lasts until revoked).
The plaintext token is printed once; the database keeps only its SHA-256. With --server the
coordinator's REST API does it (admin token in FEDCARE_ADMIN_TOKEN): for a deployed coordinator
whose database you have no shell on; revoking there also closes the token's open connections.`;

type TokenRow = ReturnType<typeof tokenJson>;

/** The REST side of `fedcare token --server`: the same three actions, as the admin, through the shared typed client. */
function remote(server: string) {
  const admin = process.env.FEDCARE_ADMIN_TOKEN;
  if (!admin) throw new CliError('--server needs the admin token in FEDCARE_ADMIN_TOKEN', 2);
  const { call } = createApiClient({ baseUrl: server, token: admin });
  return async <T>(request: (c: typeof call) => Promise<T>): Promise<T> => {
    try {
      return await request(call);
    } catch (e) {
      if (e instanceof ApiError) throw new CliError(e.status === 0 ? e.message : `${server}: ${e.status} ${e.code}: ${e.message}`);
      throw e;
    }
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      hospital: { type: 'string' },
      admin: { type: 'boolean', default: false },
      observer: { type: 'boolean', default: false },
      expires: { type: 'string' },
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
    process.stdout.write(
      renderTable(['token id', 'role', 'hospital', 'created', 'expires', 'revoked'], rows.map((t) => [t.token_id, t.role, t.hospital_id ?? '', t.created_at, t.expires_at ?? '', t.revoked_at ?? ''])),
    );
  /** create's role and expiry from --hospital / --admin / --observer and --expires. */
  const createSpec = (): { role: 'hospital'; hospital_id: string; expires_at?: string } | { role: 'admin' | 'observer'; expires_at?: string } => {
    if ([values.admin, values.observer, values.hospital !== undefined].filter(Boolean).length !== 1) throw new CliError('give exactly one of --hospital ID, --admin or --observer', 2);
    if (values.hospital !== undefined && !hospitalIdSchema.safeParse(values.hospital).success) throw new CliError(`--hospital: "${values.hospital}" is not a valid hospital id`, 2);
    let expires: { expires_at?: string } = {};
    if (values.expires !== undefined) {
      try {
        expires = { expires_at: new Date(Date.now() + parseDuration(values.expires)).toISOString() };
      } catch (e) {
        throw new CliError(`--expires: ${(e as Error).message}`, 2);
      }
    }
    return values.hospital !== undefined ? { role: 'hospital', hospital_id: values.hospital, ...expires } : { role: values.admin ? 'admin' : 'observer', ...expires };
  };
  const created = (c: { token_id: string; token: string; role: string; hospital_id?: string; expires_at?: string }, where: string) => {
    // The token alone on stdout (for a pipe), once; what it is on stderr.
    process.stdout.write(values.json ? `${JSON.stringify(c)}\n` : `${c.token}\n`);
    process.stderr.write(`token ${c.token_id} created for ${c.hospital_id ?? c.role}${where}${c.expires_at ? `, valid until ${c.expires_at}` : ''}; store it now, it is not shown again\n`);
  };
  if (values.server !== undefined) {
    const server = values.server;
    if (action === 'create') {
      const spec = createSpec();
      created(await remote(server)((call) => call('createToken', { body: spec })), ` on ${server}`);
      return 0;
    }
    if (action === 'list') {
      listRows((await remote(server)((call) => call('listTokens'))).tokens);
      return 0;
    }
    if (action === 'revoke') {
      if (!arg) throw new CliError('revoke needs a TOKEN_ID (see `fedcare token list`)', 2);
      const res = await remote(server)((call) => call('revokeToken', { params: { token_id: arg } }));
      process.stderr.write(`token ${arg} revoked; ${res.disconnected} open connection(s) closed\n`);
      return 0;
    }
    throw new CliError(`unknown action "${action}" (create, list, revoke)`, 2);
  }
  const spec = action === 'create' ? createSpec() : undefined;
  // The database holds the credentials' digests and the federation's metrics: a 0700 directory, a 0600 file.
  mkdirSync(path.dirname(path.resolve(values.db)), { recursive: true, mode: 0o700 });
  const store = openSqliteStore(values.db);
  try {
    if (spec) {
      const expiry = spec.expires_at === undefined ? {} : { expiresAt: spec.expires_at };
      const c = await store.createToken(spec.role === 'hospital' ? { role: 'hospital', hospitalId: spec.hospital_id, ...expiry } : { role: spec.role, ...expiry });
      created({ token_id: c.tokenId, token: c.token, ...spec }, '');
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
