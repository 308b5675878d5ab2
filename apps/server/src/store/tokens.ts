/**
 * Credentials: generation, hashing, the env-token formats and the TokenAuthority that the socket
 * auth middleware and the REST layer ask "who is this token?".
 *
 * A token is 256 random bits (WebCrypto getRandomValues), base64url. Only its SHA-256 is stored.
 * Tokens also come from the environment for scripts: FEDCARE_ADMIN_TOKEN and
 * FEDCARE_HOSPITAL_TOKENS="H1:tok,H2:tok". Env tokens are compared digest to digest in constant
 * time; store tokens are looked up by digest (an attacker controls the preimage, not the digest,
 * so the index lookup's timing reveals nothing about stored tokens).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { HOSPITAL_ID_PATTERN } from '@fedcare/shared/data';
import type { Store, TokenPrincipal } from '@fedcare/shared/fl';

/** Hospital ids follow the record schema's rule (one definition, in @fedcare/shared/data). */
export { HOSPITAL_ID_PATTERN };
/** Env tokens shorter than this are refused: a guessable admin token is worse than none. */
export const MIN_ENV_TOKEN_LENGTH = 16;
/** Longer presented tokens are rejected before hashing. */
export const MAX_TOKEN_LENGTH = 1024;

export function isValidHospitalId(id: unknown): id is string {
  return typeof id === 'string' && HOSPITAL_ID_PATTERN.test(id);
}

/** Lower-case hex SHA-256 of the token's UTF-8 bytes: the only form a token is stored in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * A fresh secret: 'fct_' + 32 bytes from crypto.getRandomValues in base64url (47 characters). The
 * prefix makes a leaked token recognisable to secret scanners and keeps it from starting with '-'
 * (which command-line parsers take for an option).
 */
export function generateToken(): string {
  return `fct_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** A public handle for a stored token (listing, revoking): 'tok_' + 12 hex characters. */
export function generateTokenId(): string {
  return `tok_${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString('hex')}`;
}

/** Audit-log actor for a principal: 'admin' or 'hospital:H1'. */
export function describePrincipal(p: TokenPrincipal): string {
  return p.role === 'hospital' ? `hospital:${p.hospitalId}` : p.role;
}

export class TokenConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenConfigError';
  }
}

export interface HospitalToken {
  hospitalId: string;
  token: string;
}

/**
 * Parses FEDCARE_HOSPITAL_TOKENS ("H1:tok,H2:tok"). Whitespace around entries is ignored, and so
 * are empty entries (a trailing comma). Errors name the entry by position and hospital id and
 * never echo a token.
 */
export function parseHospitalTokens(value: string, variable = 'FEDCARE_HOSPITAL_TOKENS'): HospitalToken[] {
  const raw = value.split(',');
  const out: HospitalToken[] = [];
  const seenIds = new Set<string>();
  const seenTokens = new Map<string, string>();
  raw.forEach((entryRaw, i) => {
    const entry = entryRaw.trim();
    if (entry === '') return;
    const where = `${variable}: entry ${i + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0) {
      throw new TokenConfigError(`${where} has no ':'; expected HOSPITAL_ID:TOKEN (e.g. "H1:<token>"), entries separated by ','`);
    }
    const hospitalId = entry.slice(0, colon).trim();
    const token = entry.slice(colon + 1).trim();
    if (!HOSPITAL_ID_PATTERN.test(hospitalId)) {
      throw new TokenConfigError(
        hospitalId === ''
          ? `${where} has an empty hospital id before ':'`
          : `${where}: hospital id ${JSON.stringify(hospitalId.slice(0, 70))} is not valid (letters, digits, '_', '-', '.'; at most 64 characters)`,
      );
    }
    const named = `${where} (${hospitalId})`;
    if (token === '') throw new TokenConfigError(`${named} has an empty token after ':'`);
    if (/\s/.test(token)) throw new TokenConfigError(`${named}: the token contains whitespace`);
    if (token.length < MIN_ENV_TOKEN_LENGTH) {
      throw new TokenConfigError(`${named}: the token has ${token.length} characters, at least ${MIN_ENV_TOKEN_LENGTH} are required (use \`fedcare token create\` or 32 random bytes)`);
    }
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenConfigError(`${named}: the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    if (seenIds.has(hospitalId)) throw new TokenConfigError(`${named}: hospital ${hospitalId} is listed twice`);
    const other = seenTokens.get(token);
    if (other !== undefined) throw new TokenConfigError(`${named}: the same token is also given to ${other}; each hospital needs its own`);
    seenIds.add(hospitalId);
    seenTokens.set(token, hospitalId);
    out.push({ hospitalId, token });
  });
  return out;
}

/** Validates FEDCARE_ADMIN_TOKEN; undefined/empty means no env admin token. */
export function parseAdminToken(value: string | undefined, variable = 'FEDCARE_ADMIN_TOKEN'): string | undefined {
  if (value === undefined) return undefined;
  const token = value.trim();
  if (token === '') return undefined;
  if (/\s/.test(token)) throw new TokenConfigError(`${variable}: the token contains whitespace`);
  if (token.length < MIN_ENV_TOKEN_LENGTH) {
    throw new TokenConfigError(`${variable}: the token has ${token.length} characters, at least ${MIN_ENV_TOKEN_LENGTH} are required`);
  }
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenConfigError(`${variable}: the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  return token;
}

export interface EnvTokens {
  adminToken?: string;
  hospitalTokens?: readonly HospitalToken[];
  /** FEDCARE_METRICS_TOKEN: when set, Prometheus /metrics needs it (or the admin token). */
  metricsToken?: string;
}

/** Reads FEDCARE_ADMIN_TOKEN and FEDCARE_HOSPITAL_TOKENS; throws TokenConfigError on a bad value. */
export function envTokens(env: Record<string, string | undefined>): EnvTokens {
  const adminToken = parseAdminToken(env.FEDCARE_ADMIN_TOKEN);
  const hospitalsRaw = env.FEDCARE_HOSPITAL_TOKENS;
  const hospitalTokens = hospitalsRaw === undefined ? [] : parseHospitalTokens(hospitalsRaw);
  if (adminToken !== undefined) {
    const clash = hospitalTokens.find((h) => h.token === adminToken);
    if (clash) throw new TokenConfigError(`FEDCARE_ADMIN_TOKEN is the same as ${clash.hospitalId}'s token in FEDCARE_HOSPITAL_TOKENS; use different tokens`);
  }
  const metricsToken = parseAdminToken(env.FEDCARE_METRICS_TOKEN, 'FEDCARE_METRICS_TOKEN');
  if (metricsToken !== undefined && hospitalTokens.some((h) => h.token === metricsToken)) {
    throw new TokenConfigError('FEDCARE_METRICS_TOKEN is the same as a hospital token in FEDCARE_HOSPITAL_TOKENS; use different tokens');
  }
  return { adminToken, hospitalTokens, ...(metricsToken !== undefined ? { metricsToken } : {}) };
}

interface EnvEntry {
  digest: Buffer;
  principal: TokenPrincipal;
}

/**
 * Who a token speaks for: env tokens first (constant-time digest comparison against every one of
 * them), then the store's tokens (by digest, unrevoked only).
 */
export class TokenAuthority {
  private readonly env: readonly EnvEntry[];
  private readonly metricsDigest: Buffer | undefined;

  constructor(
    private readonly store: Pick<Store, 'verifyToken' | 'verifyTokenHash'>,
    tokens: EnvTokens = {},
  ) {
    const env: EnvEntry[] = [];
    if (tokens.adminToken !== undefined) env.push({ digest: digest(tokens.adminToken), principal: { role: 'admin' } });
    for (const h of tokens.hospitalTokens ?? []) {
      if (!isValidHospitalId(h.hospitalId)) throw new TokenConfigError(`invalid hospital id ${JSON.stringify(h.hospitalId)}`);
      env.push({ digest: digest(h.token), principal: { role: 'hospital', hospitalId: h.hospitalId } });
    }
    this.env = env;
    this.metricsDigest = tokens.metricsToken === undefined ? undefined : digest(tokens.metricsToken);
  }

  /** Whether Prometheus /metrics is closed (FEDCARE_METRICS_TOKEN set); open otherwise, for a scraper on a private network. */
  get metricsProtected(): boolean {
    return this.metricsDigest !== undefined;
  }

  /**
   * May this token read /metrics? Always, when it is open; otherwise the metrics token or an admin
   * token. 'denied' means a valid token of the wrong kind (a hospital's): 403, not 401.
   */
  async verifyMetrics(token: unknown): Promise<'ok' | 'unauthorized' | 'denied'> {
    if (!this.metricsDigest) return 'ok';
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return 'unauthorized';
    if (timingSafeEqual(digest(token), this.metricsDigest)) return 'ok';
    const principal = await this.verify(token);
    return principal === undefined ? 'unauthorized' : principal.role === 'admin' ? 'ok' : 'denied';
  }

  /** From FEDCARE_ADMIN_TOKEN / FEDCARE_HOSPITAL_TOKENS (pass process.env); throws TokenConfigError on a bad value. */
  static fromEnv(store: Pick<Store, 'verifyToken' | 'verifyTokenHash'>, env: Record<string, string | undefined>): TokenAuthority {
    return new TokenAuthority(store, envTokens(env));
  }

  /** How many tokens came from the environment. */
  get envTokenCount(): number {
    return this.env.length;
  }

  async verify(token: unknown): Promise<TokenPrincipal | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const d = digest(token);
    let match: TokenPrincipal | undefined;
    // No early exit: every env digest is compared whatever matches.
    for (const e of this.env) {
      if (timingSafeEqual(d, e.digest) && match === undefined) match = e.principal;
    }
    if (match !== undefined) return match.role === 'hospital' ? { role: 'hospital', hospitalId: match.hospitalId } : { role: match.role };
    return this.store.verifyToken(token);
  }

  /**
   * Who a token speaks for, by its SHA-256 (`hashToken`, what a connection keeps instead of the
   * token): the same answer as `verify(token)`, so a revoked or expired token stops here too.
   */
  async verifyDigest(sha256Hex: unknown): Promise<TokenPrincipal | undefined> {
    if (typeof sha256Hex !== 'string' || !/^[0-9a-f]{64}$/.test(sha256Hex)) return undefined;
    const d = Buffer.from(sha256Hex, 'hex');
    let match: TokenPrincipal | undefined;
    for (const e of this.env) {
      if (timingSafeEqual(d, e.digest) && match === undefined) match = e.principal;
    }
    if (match !== undefined) return match.role === 'hospital' ? { role: 'hospital', hospitalId: match.hospitalId } : { role: match.role };
    return this.store.verifyTokenHash(sha256Hex);
  }
}
