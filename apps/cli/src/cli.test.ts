// The fedcare command as a user runs it: a real process, real files.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/fedcare.mjs');
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../fixtures/fhir/synthea');

function fedcare(...args: string[]) {
  const res = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('fedcare generate', () => {
  it('writes one NDJSON per hospital and a JSON summary; same seed → same bytes', () => {
    const a = mkdtempSync(path.join(tmpdir(), 'fc-gen-'));
    const b = mkdtempSync(path.join(tmpdir(), 'fc-gen-'));
    const r1 = fedcare('generate', '--hospitals', 'H1,H3', '--seed', '5', '--patients', '30', '--out', a, '--json');
    expect(r1.code, r1.stderr).toBe(0);
    const summary = JSON.parse(r1.stdout);
    expect(summary.hospitals.map((h: { hospital: string }) => h.hospital)).toEqual(['H1', 'H3']);
    expect(summary.hospitals[0].patients).toBe(30);
    expect(readdirSync(a).sort()).toEqual(['H1.ndjson', 'H3.ndjson']);
    expect(fedcare('generate', '--hospitals', 'H1,H3', '--seed', '5', '--patients', '30', '--out', b).code).toBe(0);
    expect(readFileSync(path.join(a, 'H1.ndjson'))).toEqual(readFileSync(path.join(b, 'H1.ndjson')));
  });

  it('refuses an unknown hospital and writes nothing', () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'fc-gen-')), 'out');
    const r = fedcare('generate', '--hospitals', 'H1,H9', '--out', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown hospital\(s\) H9/);
    expect(existsSync(dir)).toBe(false);
  });

  it('rejects unknown flags with a usage error', () => {
    const r = fedcare('generate', '--hospitalz', 'H1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/hospitalz/);
  });
});

describe('fedcare train with malformed input', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-bad-'));
  fedcare('generate', '--hospitals', 'H2', '--patients', '5', '--out', dir);
  const lines = readFileSync(path.join(dir, 'H2.ndjson'), 'utf8').trimEnd().split('\n');

  it.each([
    { name: 'bad JSON line', edit: (l: string[]) => (l[2] = '{"patient_id": "P_H2_0003",'), expect: /H2\.ndjson: line 3: \(record\): not valid JSON/ },
    { name: 'missing field', edit: (l: string[]) => (l[1] = l[1]!.replace('"gender":"F",', '').replace('"gender":"M",', '')), expect: /line 2, patient P_H2_0002: demographics\.gender/ },
    { name: 'wrong unit', edit: (l: string[]) => (l[0] = l[0]!.replace(/"temperature":\[[0-9.]+/, '"temperature":[98.6')), expect: /line 1, patient P_H2_0001: clinical_timeseries\.temperature\[0\]: outside the plausible range 30–43 Celsius/ },
    { name: 'unknown hospital', edit: (l: string[]) => (l[4] = l[4]!.replace('"hospital_id":"H2"', '"hospital_id":"H7"')), expect: /line 5, patient P_H2_0005: hospital_id: is "H7" but this file belongs to "H2"/ },
  ])('$name → names the line and field, exits 1', ({ edit, expect: message }) => {
    const copy = [...lines];
    edit(copy);
    const d = mkdtempSync(path.join(tmpdir(), 'fc-bad-'));
    writeFileSync(path.join(d, 'H2.ndjson'), copy.join('\n') + '\n');
    const r = fedcare('train', '--data', d, '--epochs', '1', '--backend', 'cpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/nothing loaded/);
  });

  it('an unknown --hospital is a usage error', () => {
    const r = fedcare('train', '--data', dir, '--hospital', 'H5', '--epochs', '1', '--backend', 'cpu');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown hospital "H5": the data holds H2/);
  });
});

describe('fedcare import-fhir', () => {
  it('imports every Synthea fixture bundle and reports modalities', () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'fc-fhir-')), 'fhir.ndjson');
    const r = fedcare('import-fhir', '--in', fixtures, '--hospital', 'H4', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.summary.records).toBe(12);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(12);
  });

  it('writes nothing when one bundle is malformed', () => {
    const d = mkdtempSync(path.join(tmpdir(), 'fc-fhir-'));
    writeFileSync(path.join(d, 'good.json'), readFileSync(path.join(fixtures, 'Lucien408_Herzog843_9c67d64e-d36e-e626-16e9-75aa668b9835.json')));
    writeFileSync(path.join(d, 'bad.json'), '{"resourceType": "Bundle", "entry": [');
    const out = path.join(d, 'out.ndjson');
    const r = fedcare('import-fhir', '--in', d, '--hospital', 'H4', '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.json/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('fedcare token', () => {
  it('creates a hospital token stored only as a hash, lists and revokes it', async () => {
    const { openSqliteStore } = await import('@fedcare/server');
    const db = path.join(mkdtempSync(path.join(tmpdir(), 'fc-tok-')), 'fedcare.db');
    const created = fedcare('token', 'create', '--hospital', 'H1', '--db', db, '--json');
    expect(created.code, created.stderr).toBe(0);
    const { token, token_id } = JSON.parse(created.stdout) as { token: string; token_id: string };
    expect(token.length).toBeGreaterThanOrEqual(43); // 256 random bits, base64url
    expect(readFileSync(db).includes(Buffer.from(token))).toBe(false);
    const store = openSqliteStore(db);
    expect(await store.verifyToken(token)).toEqual({ role: 'hospital', hospitalId: 'H1' });
    await store.close();
    const list = fedcare('token', 'list', '--db', db);
    expect(list.stdout).toContain(token_id);
    expect(list.stdout).not.toContain(token);
    expect(fedcare('token', 'revoke', token_id, '--db', db).code).toBe(0);
    const after = openSqliteStore(db);
    expect(await after.verifyToken(token)).toBeUndefined();
    await after.close();
    expect(fedcare('token', 'create', '--db', db).code).toBe(2); // neither --hospital nor --admin
  });
});

describe('fedcare identity and client --roster', () => {
  it('creates the hospital’s own identity key on first use (a 0600 PEM beside the data), prints its fingerprint and roster entry, and loads the same key after; nothing secret', async () => {
    const { exportIdentityPublicKey, identityFingerprint, keyHex } = await import('@fedcare/shared/secagg');
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-identity-'));
    const data = path.join(dir, 'H1.ndjson');
    const first = fedcare('identity', '--hospital', 'H1', '--data', data, '--json');
    expect(first.code, first.stderr).toBe(0);
    const file = path.join(dir, 'H1.identity.pem');
    const out = JSON.parse(first.stdout) as Record<string, unknown>;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const pem = readFileSync(file, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    // The printed key is the public half of the key in the file (as openssl would derive it).
    const raw = Uint8Array.from(Buffer.from(createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' }).x as string, 'base64url'));
    const { importIdentityPublicKey } = await import('@fedcare/shared/secagg');
    const key = await exportIdentityPublicKey(await importIdentityPublicKey(raw));
    expect(out).toEqual({ hospital: 'H1', algorithm: 'Ed25519', public_key: keyHex(key), fingerprint: await identityFingerprint(key), key_file: file, created: true });
    const again = fedcare('identity', '--hospital', 'H1', '--identity', file);
    expect(again.stdout).toContain(`roster entry: "H1":"${keyHex(key)}"`);
    expect(again.stdout).toContain(`fingerprint: ${await identityFingerprint(key)}`);
    expect(again.stdout).not.toContain('(created now)');
    expect(again.stdout).not.toContain(pem.split('\n')[1]);
    // Another hospital (another key file) gets another, random key.
    expect(JSON.parse(fedcare('identity', '--hospital', 'H2', '--data', path.join(dir, 'H2.ndjson'), '--json').stdout).public_key).not.toBe(keyHex(key));
    expect(fedcare('identity', '--identity', file).stderr).toMatch(/--hospital is required/);
    expect(fedcare('identity', '--hospital', 'H1').stderr).toMatch(/--identity FILE or --data FILE is required/);
    // A key file others can read is refused (as ssh does), and so is one that holds no Ed25519 key.
    chmodSync(file, 0o644);
    expect(fedcare('identity', '--hospital', 'H1', '--identity', file).stderr).toMatch(/is accessible to other users \(mode 644\); chmod 600 it/);
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, 'not a key', { mode: 0o600 });
    expect(fedcare('identity', '--hospital', 'H1', '--identity', junk).stderr).toMatch(/identity key .*junk\.pem cannot be read/);
  });

  it('client refuses a bad roster file by name, and --roster with --pins, before connecting', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-roster-'));
    expect(fedcare('generate', '--hospitals', 'H1', '--patients', '5', '--out', dir).code).toBe(0);
    const base = ['client', '--server', 'http://127.0.0.1:9', '--hospital', 'H1', '--token', 'fct_h1_token_0123456789', '--data', path.join(dir, 'H1.ndjson')];
    const bad = path.join(dir, 'roster.json');
    writeFileSync(bad, JSON.stringify({ H1: 'abcd' }));
    const r = fedcare(...base, '--roster', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}: roster: H1: expected a 32-byte Ed25519`);
    expect(fedcare(...base, '--roster', path.join(dir, 'missing.json')).stderr).toMatch(/roster .*missing\.json cannot be read/);
    const both = fedcare(...base, '--roster', bad, '--pins', path.join(dir, 'p.json'));
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--pins and --roster exclude each other/);
  });
});
