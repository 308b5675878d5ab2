/**
 * The aws store against local stand-ins (dynalite + s3rver behind the fronts of testing/local-aws.ts,
 * started here on port 0): the whole Store contract, then what only this store has — the table
 * layout of seed spec 5.1, S3 objects checked against their recorded SHA-256, opening errors that
 * name the endpoint, createMissing, and openStore.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DescribeTimeToLiveCommand, QueryCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, type Store } from '@fedcare/shared/fl';
import { AwsStore, CLIENT_STATUS_TTL_SECONDS, modelKey, openAwsStore, participants, type AwsStoreOptions } from './aws';
import { describeStoreContract, rejectsWith } from './contract';
import { openStore } from './open';
import { SqliteStore } from './sqlite';
import { startLocalAws, type LocalAws } from './testing/local-aws';
import { commitFor, metricsFor, sha256Hex, weightsFor } from './testing/rounds';

let local: LocalAws;
let raw: { dynamodb: DynamoDBClient; s3: S3Client };
beforeAll(async () => {
  local = await startLocalAws();
  raw = local.clients();
});
afterAll(async () => {
  await local?.close();
});

let made = 0;
/** A fresh table prefix and bucket: tests never see each other's data. */
function fresh(tag: string): { tablePrefix: string; bucket: string } {
  made++;
  return { tablePrefix: `${tag}${made}-`, bucket: `fedcare-${tag}-${made}` };
}

async function scanAll(client: DynamoDBClient, table: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    keys.push(...(out.Contents ?? []).map((o) => o.Key ?? ''));
    token = out.NextContinuationToken;
  } while (token);
  return keys.sort();
}

async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from((await out.Body?.transformToByteArray()) ?? new Uint8Array(0));
}

/** Every item of the store's tables and every object of its bucket (with its SHA-256). */
async function rawState(store: AwsStore): Promise<unknown> {
  const tables: Record<string, string[]> = {};
  for (const table of Object.values(store.tables)) tables[table] = (await scanAll(raw.dynamodb, table)).map((i) => JSON.stringify(i, Object.keys(i).sort())).sort();
  const objects: Record<string, string> = {};
  for (const key of await listKeys(raw.s3, store.bucket)) objects[key] = sha256Hex(await getBytes(raw.s3, store.bucket, key));
  return { tables, objects };
}

async function rawBytes(store: AwsStore): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const table of Object.values(store.tables)) out.push(Buffer.from(JSON.stringify(await scanAll(raw.dynamodb, table))));
  for (const key of await listKeys(raw.s3, store.bucket)) out.push(await getBytes(raw.s3, store.bucket, key));
  return out;
}

describeStoreContract('AwsStore (dynalite + s3rver)', async () => {
  const names = fresh('c');
  const clients = local.clients();
  const open = (createMissing: boolean): Promise<AwsStore> => openAwsStore({ ...names, createMissing, clients });
  let store = await open(true);
  return {
    store,
    async cleanup() {
      await store.close();
    },
    async reopen() {
      await store.close();
      store = await open(false);
      return store;
    },
    snapshot: () => rawState(store),
    rawBytes: () => rawBytes(store),
  };
});

/** Runs `fn` with these environment variables set, then puts the environment back. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function openFresh(tag: string, options: Partial<AwsStoreOptions> = {}): Promise<AwsStore> {
  return openAwsStore({ ...fresh(tag), createMissing: true, clients: local.clients(), ...options });
}

describe('AwsStore: the tables (seed spec 5.1)', () => {
  it('a committed round is exactly one fl-training-metadata item with the summary attributes and every metric', async () => {
    const now = new Date('2025-03-01T12:00:00.000Z');
    const store = await openFresh('m', { now: () => now });
    try {
      await store.createRun('r', {}, 5);
      const c = commitFor({ runId: 'r', round: 1 });
      Object.assign(c.metrics, { test_accuracy: 0.8125, privacy_epsilon: 2.5, num_participating_clients: 3, privacy_delta: 1e-5, tiny: 1e-300 });
      await store.commitRound(c);
      await rejectsWith(store.commitRound(c), 'replay');
      const query = async (): Promise<Record<string, AttributeValue>[]> =>
        (await raw.dynamodb.send(new QueryCommand({ TableName: store.tables.trainingMetadata, KeyConditionExpression: 'run_id = :r', ExpressionAttributeValues: { ':r': { S: 'r' } }, ConsistentRead: true }))).Items ?? [];
      const items = await query();
      expect(items).toHaveLength(1);
      const item = items[0] ?? {};
      expect(item.run_id).toEqual({ S: 'r' });
      expect(item.round_number).toEqual({ N: '1' });
      expect(item.timestamp).toEqual({ S: c.completedAt });
      expect(Number(item.global_accuracy?.N)).toBe(0.8125);
      expect(Number(item.privacy_budget?.N)).toBe(2.5);
      expect(item.participating_clients).toEqual({ L: participants(c.participation).map((h) => ({ S: h })) });
      expect(item.participating_clients?.L?.length).toBeGreaterThan(0);
      for (const [name, value] of Object.entries(c.metrics)) {
        const a = item[name];
        expect(a, name).toBeDefined();
        expect(Number(a?.N ?? a?.S), name).toBe(value);
      }
      expect(item.epsilon).toEqual({ S: 'Infinity' }); // DynamoDB numbers have no Infinity
      expect(item.tiny).toEqual({ S: '1e-300' }); // nor magnitudes below 1E-130
      expect(item.model_sha256).toEqual({ S: c.model.sha256 });
      expect(item.model_key).toEqual({ S: modelKey('r', 1, c.model.sha256) });

      // One fl-client-status item per hospital, expiring 7 days after the commit.
      const status = (await scanAll(raw.dynamodb, store.tables.clientStatus)).sort((a, b) => String(a.client_id?.S).localeCompare(String(b.client_id?.S)));
      expect(status.map((s) => s.client_id?.S)).toEqual(['H1', 'H2', 'H3']);
      for (const s of status) {
        expect(s.expires_at).toEqual({ N: String(now.getTime() / 1000 + CLIENT_STATUS_TTL_SECONDS) });
        expect(s.timestamp?.S).toBe(`${c.completedAt}#0000000001#r`);
        expect(s).toMatchObject({ run_id: { S: 'r' }, round_number: { N: '1' }, status: { S: 'ok' } });
      }
      const h1 = status[0] ?? {};
      expect(h1.stages?.L?.map((x) => x.M?.stage?.S)).toEqual(['train', 'evaluate']);
      expect(h1.bytes_up).toEqual({ N: String(1000 + 5) });
      expect(h1.bytes_down).toEqual({ N: String(2000 + 6) });
      expect(Number(h1.metrics?.M?.test_accuracy?.N)).toBe(c.perHospital.H1?.test_accuracy);

      await store.commitRound(commitFor({ runId: 'r', round: 2 }));
      expect((await query()).map((i) => i.round_number?.N)).toEqual(['1', '2']);
      const dropped = (await scanAll(raw.dynamodb, store.tables.clientStatus)).find((s) => s.client_id?.S === 'H2' && s.round_number?.N === '2');
      expect(dropped?.status).toEqual({ S: 'dropped' });
      expect(dropped?.stages?.L?.[0]?.M?.reason).toEqual({ S: 'disconnect' });
    } finally {
      await store.close();
    }
  });

  it('writes the client-status items past what one transaction holds right after it', async () => {
    const store = await openFresh('o');
    try {
      await store.createRun('r', {}, 5);
      const c = commitFor({ runId: 'r', round: 1 });
      c.participation = Array.from({ length: 150 }, (_, i) => ({ hospitalId: `H${i}`, stage: 'train', status: 'ok' as const, bytesUp: i, bytesDown: 2 * i }));
      await store.commitRound(c);
      const status = await scanAll(raw.dynamodb, store.tables.clientStatus);
      expect(status.map((s) => s.client_id?.S).sort()).toEqual([...new Set([...c.participation.map((p) => p.hospitalId), 'H1', 'H2', 'H3'])].sort());
      expect((await store.getRoundMetrics('r'))[0]?.participation).toEqual(c.participation);
    } finally {
      await store.close();
    }
  });

  it('keeps in S3 only the weights of the kept rounds and the latest strategy state', async () => {
    const store = await openFresh('k');
    try {
      await store.createRun('r/1', {}, 20);
      await store.saveFeatureStats('r/1', { a: 1 });
      await store.saveFeatureStats('r/1', { a: 2 });
      for (let r = 1; r <= 12; r++) await store.commitRound(commitFor({ runId: 'r/1', round: r, best: r <= 3 }));
      const keys = await listKeys(raw.s3, store.bucket);
      expect(keys.filter((k) => k.startsWith('models/'))).toEqual([3, 5, 10, 12].map((r) => modelKey('r/1', r, sha256Hex(weightsFor(r, 64)))));
      expect(keys.filter((k) => k.startsWith('state/'))).toEqual([`state/r%2F1/0000000012-${sha256Hex(new TextEncoder().encode('{"step":12}'))}.bin`]);
      expect(keys.filter((k) => k.startsWith('feature-stats/'))).toEqual([`feature-stats/r%2F1/${sha256Hex(Buffer.from('{"a":2}'))}.json`]);
      for (const k of keys) {
        const name = k.split('/').at(-1) ?? '';
        expect(sha256Hex(await getBytes(raw.s3, store.bucket, k)), k).toBe(name.replace(/^\d{10}-/, '').replace(/\.(bin|json)$/, ''));
      }
    } finally {
      await store.close();
    }
  });
});

describe('AwsStore: every read checks the bytes against the recorded SHA-256', () => {
  it('refuses a tampered or missing object by name on getModel, resumePoint and getFeatureStats', async () => {
    const store = await openFresh('x');
    try {
      await store.createRun('r', {}, 10);
      await store.saveFeatureStats('r', { mean: [1] });
      for (let r = 1; r <= 6; r++) await store.commitRound(commitFor({ runId: 'r', round: r, best: false }));
      const put = (key: string, body: Uint8Array): Promise<unknown> => raw.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: body }));
      const other = new Uint8Array(256).fill(7);
      const refused = (key: string, recorded: string): RegExp =>
        new RegExp(`^s3://${store.bucket}/${key}: bytes hash to ${sha256Hex(other)}, the store recorded ${recorded}$`);

      const five = modelKey('r', 5, sha256Hex(weightsFor(5, 64)));
      await put(five, other);
      await rejectsWith(store.getModel('r', 5), 'conflict', refused(five, sha256Hex(weightsFor(5, 64))));
      expect((await store.resumePoint('r'))?.round).toBe(6); // other rounds are unaffected
      await put(five, weightsFor(5, 64));
      expect((await store.getModel('r', 5))?.bytes).toEqual(weightsFor(5, 64));

      const six = modelKey('r', 6, sha256Hex(weightsFor(6, 64)));
      await put(six, other);
      await rejectsWith(store.resumePoint('r'), 'conflict', refused(six, sha256Hex(weightsFor(6, 64))));
      await rejectsWith(store.getModel('r', 'latest'), 'conflict', refused(six, sha256Hex(weightsFor(6, 64))));
      await put(six, weightsFor(6, 64).subarray(0, 100)); // truncated
      await rejectsWith(store.resumePoint('r'), 'conflict', new RegExp(`^s3://${store.bucket}/${six}: bytes hash to ${sha256Hex(weightsFor(6, 64).subarray(0, 100))}`));
      await put(six, weightsFor(6, 64));

      const [state] = await listKeys(raw.s3, store.bucket, 'state/');
      const stateSha = sha256Hex(new TextEncoder().encode('{"step":6}'));
      expect(state).toBe(`state/r/0000000006-${stateSha}.bin`);
      await put(state ?? '', other);
      await rejectsWith(store.resumePoint('r'), 'conflict', refused(state ?? '', stateSha));
      await raw.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: state }));
      await expect(store.resumePoint('r')).rejects.toThrow(`s3://${store.bucket}/${state} does not exist`);

      const [stats] = await listKeys(raw.s3, store.bucket, 'feature-stats/');
      await put(stats ?? '', other);
      await rejectsWith(store.getFeatureStats('r'), 'conflict', refused(stats ?? '', sha256Hex(Buffer.from('{"mean":[1]}'))));
    } finally {
      await store.close();
    }
  });
});

describe('AwsStore: opening', () => {
  const env = (): Record<string, string> => local.env;

  it('rejects quickly, in one line naming the endpoint and the table, when DynamoDB is unreachable', async () => {
    const names = fresh('u');
    const started = Date.now();
    const err = await withEnv({ ...env(), AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1' }, () => openAwsStore(names)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err?.message).toMatch(new RegExp(`^DynamoDB at http://127\\.0\\.0\\.1:1 is unreachable \\(table ${names.tablePrefix}fl-training-metadata\\): connect ECONNREFUSED 127\\.0\\.0\\.1:1`));
    expect(err?.message).not.toContain('\n');
  });

  it('names the S3 endpoint and bucket when S3 is unreachable', async () => {
    const names = fresh('v');
    const err = await withEnv({ ...env(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1' }, () => openAwsStore({ ...names, createMissing: true })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(new RegExp(`^S3 at http://127\\.0\\.0\\.1:1 is unreachable \\(bucket ${names.bucket}\\): connect ECONNREFUSED`));
  });

  it('gives up on an endpoint that accepts connections but never answers, within the open timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const err = await withEnv({ ...env(), AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}` }, () => openAwsStore({ ...fresh('s'), openTimeoutMs: 400 })).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(err?.message).toMatch(new RegExp(`^DynamoDB at http://127\\.0\\.0\\.1:${port} is unreachable \\(table s\\d+-fl-training-metadata\\): no answer within 0\\.4 s$`));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('names a missing table, a missing bucket and a table with another key', async () => {
    const names = fresh('n');
    await expect(withEnv(env(), () => openAwsStore(names))).rejects.toThrow(`DynamoDB at ${local.dynamodbEndpoint}: table ${names.tablePrefix}fl-training-metadata does not exist`);
    await (await openAwsStore({ ...names, createMissing: true, clients: local.clients() })).close();
    await expect(withEnv(env(), () => openAwsStore({ ...names, bucket: 'fedcare-absent' }))).rejects.toThrow(`S3 at ${local.s3Endpoint}: bucket fedcare-absent does not exist`);

    const wrong = fresh('w');
    await raw.dynamodb.send(
      new CreateTableCommand({
        TableName: `${wrong.tablePrefix}fl-training-metadata`,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await expect(openAwsStore({ ...wrong, createMissing: true, clients: local.clients() })).rejects.toThrow(
      `table ${wrong.tablePrefix}fl-training-metadata has the key (id HASH); this store needs (run_id HASH, round_number RANGE)`,
    );
  });

  it('createMissing makes the tables and the bucket; a later open without it uses them', async () => {
    const names = fresh('cm');
    const store = await withEnv(env(), () => openAwsStore({ ...names, createMissing: true }));
    const keys: Record<string, string[]> = {
      'fl-training-metadata': ['run_id HASH S', 'round_number RANGE N'],
      'fl-client-status': ['client_id HASH S', 'timestamp RANGE S'],
      'fl-coordinator': ['pk HASH S', 'sk RANGE S'],
    };
    for (const [table, want] of Object.entries(keys)) {
      const t = (await raw.dynamodb.send(new DescribeTableCommand({ TableName: `${names.tablePrefix}${table}` }))).Table;
      expect(t?.TableStatus).toBe('ACTIVE');
      expect(t?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
      const types = Object.fromEntries((t?.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]));
      expect((t?.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType} ${types[k.AttributeName ?? '']}`)).toEqual(want);
    }
    await raw.s3.send(new HeadBucketCommand({ Bucket: names.bucket }));
    expect(store.ttl).toBe('unsupported'); // dynalite has no UpdateTimeToLive: skipped, the items still carry expires_at
    await store.createRun('r', { a: 1 }, 3);
    await store.commitRound(commitFor({ runId: 'r', round: 1 }));
    await store.close();

    const again = await withEnv(env(), () => openAwsStore(names));
    try {
      expect((await again.activeRun())?.lastCompletedRound).toBe(1);
      expect((await again.getModel('r', 'latest'))?.bytes).toEqual(weightsFor(1, 64));
      expect(again.ttl).toBeUndefined();
    } finally {
      await again.close();
    }
  });

  it('createMissing switches TTL on for fl-client-status where the service has it, once', async () => {
    const withTtl = await startLocalAws({ ttl: 'emulated' });
    try {
      const names = fresh('t');
      const open = (): Promise<AwsStore> => openAwsStore({ ...names, createMissing: true, clients: withTtl.clients() });
      const store = await open();
      expect(store.ttl).toBe('enabled');
      expect(withTtl.ttlRequests).toEqual([{ table: `${names.tablePrefix}fl-client-status`, attribute: 'expires_at', enabled: true }]);
      await store.close();
      const { dynamodb } = withTtl.clients();
      const ttl = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: `${names.tablePrefix}fl-client-status` }));
      expect(ttl.TimeToLiveDescription).toEqual({ TimeToLiveStatus: 'ENABLED', AttributeName: 'expires_at' });
      await (await open()).close();
      expect(withTtl.ttlRequests).toHaveLength(1); // already on: not asked again
    } finally {
      await withTtl.close();
    }
  });

  it('refuses a bad table prefix or bucket before connecting', async () => {
    await rejectsWith(openAwsStore({ tablePrefix: 'bad prefix', bucket: 'b' }), 'invalid', /tablePrefix/);
    await rejectsWith(openAwsStore({ tablePrefix: 'p-', bucket: '' }), 'invalid', /bucket/);
  });
});

describe('openStore', () => {
  it('opens SQLite or the aws store from a spec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcare-open-'));
    try {
      const sqlite: Store = await openStore({ kind: 'sqlite', file: join(dir, 'x.db') });
      expect(sqlite).toBeInstanceOf(SqliteStore);
      await sqlite.createRun('r', {}, 1);
      await sqlite.close();

      const names = fresh('f');
      const aws = await withEnv(local.env, () => openStore({ kind: 'aws', ...names, region: local.region, createMissing: true }));
      expect(aws).toBeInstanceOf(AwsStore);
      await aws.createRun('r', {}, 1);
      await aws.commitRound(commitFor({ runId: 'r', round: 1 }));
      expect((await aws.getRoundMetrics('r'))[0]?.metrics).toEqual(metricsFor(1));
      await aws.close();
      await rejectsWith(aws.getRun('r'), 'closed', /is closed/);
      const err = await withEnv(local.env, () => openStore({ kind: 'aws', ...fresh('g') })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).not.toBeInstanceOf(StoreError);
      expect((err as Error).message).toMatch(/fl-training-metadata does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('participating_clients (seed spec 5.1, a list)', () => {
  it('lists the hospitals whose update is in the model: trained, not lost in SecAgg+/HE; an evaluation dropout does not count', () => {
    const p = (hospitalId: string, stage: string, status: 'ok' | 'dropped' | 'declined' | 'rejected') => ({ hospitalId, stage, status, bytesUp: 0, bytesDown: 0 });
    expect(
      participants([
        p('H3', 'train', 'ok'), p('H1', 'train', 'ok'), p('H2', 'train', 'ok'), p('H4', 'train', 'declined'),
        p('H2', 'masked-input', 'dropped'), p('H1', 'evaluate', 'dropped'), p('H3', 'masked-input', 'ok'),
      ]),
    ).toEqual(['H1', 'H3']);
    expect(participants([])).toEqual([]);
  });
});
