import { describe, expect, it } from 'vitest';
import { openSqliteStore } from './sqlite';
import { TokenAuthority, TokenConfigError, describePrincipal, envTokens, generateToken, hashToken, parseAdminToken, parseHospitalTokens } from './tokens';

const T1 = 'h1-token-aaaaaaaaaaaaaaaa';
const T2 = 'h2-token-bbbbbbbbbbbbbbbb';
const ADMIN = 'admin-token-cccccccccccccccc';

describe('hashToken / generateToken', () => {
  it('hashes to lower-case hex SHA-256 (FIPS 180-2 "abc" vector)', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('generates distinct 256-bit base64url tokens with the fct_ prefix', () => {
    const seen = new Set(Array.from({ length: 100 }, generateToken));
    expect(seen.size).toBe(100);
    for (const t of seen) {
      expect(t).toMatch(/^fct_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(t.slice(4), 'base64url').length).toBe(32);
    }
  });
});

describe('parseHospitalTokens', () => {
  it.each([
    { value: `H1:${T1},H2:${T2}`, want: [{ hospitalId: 'H1', token: T1 }, { hospitalId: 'H2', token: T2 }] },
    { value: ` H1 : ${T1} , H2:${T2}, `, want: [{ hospitalId: 'H1', token: T1 }, { hospitalId: 'H2', token: T2 }] },
    { value: `hospital_A1-x:${T1}`, want: [{ hospitalId: 'hospital_A1-x', token: T1 }] },
    { value: '', want: [] },
    // A token may itself contain ':' (everything after the first one).
    { value: `H1:${T1}:more`, want: [{ hospitalId: 'H1', token: `${T1}:more` }] },
  ])('parses $value', ({ value, want }) => {
    expect(parseHospitalTokens(value)).toEqual(want);
  });

  it.each([
    { value: `H1:${T1},${T2}`, error: /entry 2 has no ':'/ },
    { value: `:${T1}`, error: /entry 1 has an empty hospital id/ },
    { value: `H 1:${T1}`, error: /entry 1: hospital id "H 1" is not valid/ },
    { value: `H1:${T1},H2:`, error: /entry 2 \(H2\) has an empty token/ },
    { value: `H1:${T1},H2:short`, error: /entry 2 \(H2\): the token has 5 characters, at least 16/ },
    { value: `H1:${T1},H1:${T2}`, error: /entry 2 \(H1\): hospital H1 is listed twice/ },
    { value: `H1:${T1},H2:${T1}`, error: /entry 2 \(H2\): the same token is also given to H1/ },
    { value: `H1:${T1} ${T2}`, error: /entry 1 \(H1\): the token contains whitespace/ },
  ])('rejects $value with a clear error', ({ value, error }) => {
    expect(() => parseHospitalTokens(value)).toThrow(TokenConfigError);
    expect(() => parseHospitalTokens(value)).toThrow(error);
  });

  it('never echoes a token in an error', () => {
    for (const value of [`H1:${T1},H2:short`, `H1:${T1},${T2}`, `H1:${T1},H2:${T1}`]) {
      try {
        parseHospitalTokens(value);
        expect.unreachable();
      } catch (e) {
        expect((e as Error).message).toMatch(/^FEDCARE_HOSPITAL_TOKENS: entry/);
        expect((e as Error).message).not.toContain(T1);
        expect((e as Error).message).not.toContain(T2);
        expect((e as Error).message).not.toContain('short');
      }
    }
  });
});

describe('env tokens', () => {
  it('reads admin and hospital tokens; empty means none', () => {
    expect(envTokens({})).toEqual({ adminToken: undefined, hospitalTokens: [] });
    expect(envTokens({ FEDCARE_ADMIN_TOKEN: ' ', FEDCARE_HOSPITAL_TOKENS: '' })).toEqual({ adminToken: undefined, hospitalTokens: [] });
    expect(envTokens({ FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: `H1:${T1}` })).toEqual({
      adminToken: ADMIN,
      hospitalTokens: [{ hospitalId: 'H1', token: T1 }],
    });
  });
  it.each([
    { env: { FEDCARE_ADMIN_TOKEN: 'short' }, error: /FEDCARE_ADMIN_TOKEN: the token has 5 characters/ },
    { env: { FEDCARE_ADMIN_TOKEN: T1, FEDCARE_HOSPITAL_TOKENS: `H1:${T1}` }, error: /same as H1's token/ },
    { env: { FEDCARE_HOSPITAL_TOKENS: 'H1' }, error: /FEDCARE_HOSPITAL_TOKENS: entry 1 has no ':'/ },
  ])('rejects $env', ({ env, error }) => {
    expect(() => envTokens(env)).toThrow(error);
  });
  it("reads FEDCARE_METRICS_TOKEN with the admin token's rules, and refuses one that is a hospital's", () => {
    expect(envTokens({ FEDCARE_METRICS_TOKEN: ` ${T2} ` }).metricsToken).toBe(T2);
    expect(envTokens({}).metricsToken).toBeUndefined();
    expect(() => envTokens({ FEDCARE_METRICS_TOKEN: 'short' })).toThrow(/^FEDCARE_METRICS_TOKEN: the token has 5 characters/);
    expect(() => envTokens({ FEDCARE_METRICS_TOKEN: T1, FEDCARE_HOSPITAL_TOKENS: `H1:${T1}` })).toThrow(/FEDCARE_METRICS_TOKEN is the same as a hospital token/);
  });
  it('parseAdminToken rejects whitespace', () => {
    expect(() => parseAdminToken(`${ADMIN} x`)).toThrow(/whitespace/);
  });
});

describe('TokenAuthority', () => {
  it('accepts env tokens first, then the store, and nothing else', async () => {
    const store = openSqliteStore(':memory:');
    try {
      const dbH3 = await store.createToken({ role: 'hospital', hospitalId: 'H3' });
      const dbAdmin = await store.createToken({ role: 'admin' });
      const auth = TokenAuthority.fromEnv(store, { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: `H1:${T1},H2:${T2}` });
      expect(auth.envTokenCount).toBe(3);
      const cases: [unknown, ReturnType<typeof describePrincipal> | undefined][] = [
        [ADMIN, 'admin'],
        [T1, 'hospital:H1'],
        [T2, 'hospital:H2'],
        [dbH3.token, 'hospital:H3'],
        [dbAdmin.token, 'admin'],
        [`${T1}x`, undefined],
        [T1.slice(0, -1), undefined],
        ['', undefined],
        [undefined, undefined],
        [42, undefined],
        [hashToken(T1), undefined], // the digest is not a credential
        ['y'.repeat(10_000), undefined],
      ];
      for (const [token, want] of cases) {
        const p = await auth.verify(token);
        expect(p === undefined ? undefined : describePrincipal(p), String(token).slice(0, 30)).toBe(want);
      }
      await store.revokeToken(dbH3.tokenId);
      expect(await auth.verify(dbH3.token)).toBeUndefined();
      expect(await auth.verify(T1)).toEqual({ role: 'hospital', hospitalId: 'H1' });
    } finally {
      await store.close();
    }
  });

  it('with no env tokens defers to the store', async () => {
    const store = openSqliteStore(':memory:');
    const auth = TokenAuthority.fromEnv(store, {});
    expect(auth.envTokenCount).toBe(0);
    expect(await auth.verify(ADMIN)).toBeUndefined();
    const t = await store.createToken({ role: 'admin' });
    expect(await auth.verify(t.token)).toEqual({ role: 'admin' });
    await store.close();
  });

  it('verifyMetrics: open without FEDCARE_METRICS_TOKEN; with it, the metrics token or an admin (env or store), 403 for a hospital', async () => {
    const store = openSqliteStore(':memory:');
    try {
      const open = TokenAuthority.fromEnv(store, { FEDCARE_HOSPITAL_TOKENS: `H1:${T1}` });
      expect(open.metricsProtected).toBe(false);
      expect(await open.verifyMetrics(undefined)).toBe('ok');
      const dbAdmin = await store.createToken({ role: 'admin' });
      const auth = TokenAuthority.fromEnv(store, { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: `H1:${T1}`, FEDCARE_METRICS_TOKEN: T2 });
      expect(auth.metricsProtected).toBe(true);
      const cases: [unknown, string][] = [
        [T2, 'ok'],
        [ADMIN, 'ok'],
        [dbAdmin.token, 'ok'],
        [T1, 'denied'],
        [`${T2}x`, 'unauthorized'],
        ['', 'unauthorized'],
        [undefined, 'unauthorized'],
        ['y'.repeat(10_000), 'unauthorized'],
      ];
      for (const [token, want] of cases) expect(await auth.verifyMetrics(token), String(token).slice(0, 30)).toBe(want);
      // the metrics token is for /metrics only: it is nobody's principal elsewhere
      expect(await auth.verify(T2)).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
