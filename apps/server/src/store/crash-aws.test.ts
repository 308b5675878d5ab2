/**
 * kill -9 durability of the aws store: the same child as crash.test.ts commits rounds against
 * dynalite + s3rver started here (their data lives in this process, so it outlives the child; the
 * child reaches them through AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3) and is SIGKILLed —
 * between the S3 uploads and the DynamoDB transaction, right after the transaction, and at random
 * moments. After each kill a reopened store must hold every round the child reported committed,
 * completely, with a valid resume point, and the tables nothing of a round beyond the last one.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAwsStore, type AwsStore } from './aws';
import { committed, runChild, verifyCrashRun } from './testing/crash-harness';
import { startLocalAws, type LocalAws } from './testing/local-aws';

const tablePrefix = 'crash-';
const bucket = 'fedcare-crash';
const STORE = `aws:${tablePrefix}:${bucket}`;

let local: LocalAws;
beforeAll(async () => {
  local = await startLocalAws();
  await (await openAwsStore({ tablePrefix, bucket, createMissing: true, clients: local.clients() })).close();
});
afterAll(async () => {
  await local?.close();
});

async function scan(table: string): Promise<Record<string, AttributeValue>[]> {
  const { dynamodb } = local.clients();
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await dynamodb.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Checks the tables and a reopened store after a kill; returns the last completed round. */
async function verify(atLeast: number): Promise<number> {
  const store: AwsStore = await openAwsStore({ tablePrefix, bucket, clients: local.clients() });
  try {
    const last = await verifyCrashRun(store, atLeast);
    // Nothing of a round beyond the last one; every round's three hospitals (written in its transaction).
    const rounds = (await scan(store.tables.trainingMetadata)).map((i) => Number(i.round_number?.N));
    expect(rounds.sort((a, b) => a - b)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    const status = (await scan(store.tables.clientStatus)).map((i) => `${i.round_number?.N}/${i.client_id?.S}`);
    expect(status.sort()).toEqual(Array.from({ length: last }, (_, i) => ['H1', 'H2', 'H3'].map((h) => `${i + 1}/${h}`)).flat().sort());
    return last;
  } finally {
    await store.close();
  }
}

async function objectCount(prefix: string): Promise<number> {
  const out = await local.clients().s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return out.KeyCount ?? 0;
}

describe('AwsStore survives kill -9', () => {
  it('killed between the S3 uploads and the transaction: the round is absent, its uploads are orphans', async () => {
    const { lines } = await runChild(STORE, ['3'], undefined, local.env);
    expect(lines).toEqual(['resumed 0', 'begin 1', 'committed 1', 'begin 2', 'committed 2', 'begin 3', 'dying 3']);
    expect(await verify(2)).toBe(2);
    expect(await objectCount('models/crash/0000000003-')).toBe(1); // uploaded, never referenced
  });

  it('killed right after the transaction: the round is there although never reported; the skipped pruning is harmless', async () => {
    const { lines } = await runChild(STORE, ['3', 'after'], undefined, local.env);
    expect(lines).toEqual(['resumed 2', 'begin 3', 'dying 3']);
    expect(await verify(2)).toBe(3);
    // Round 2's weights and strategy state were to be deleted after round 3 (a new best): still there, unused.
    expect(await objectCount('models/crash/0000000002-')).toBe(1);
    expect(await objectCount('state/crash/0000000002-')).toBe(1);
    const store = await openAwsStore({ tablePrefix, bucket, clients: local.clients() });
    try {
      expect(await store.getModel('crash', 2)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('killed at random moments, restarted each time: resumes and loses nothing', async () => {
    let last = 3;
    let inFlight = 0;
    const kills = 6;
    for (let i = 0; i < kills; i++) {
      const { lines } = await runChild(
        STORE,
        [],
        (ls) => {
          const done = committed(ls);
          // Let it commit a few rounds after resuming, then kill after a random 0–60 ms.
          return done.length >= 3 ? Math.floor(Math.random() * 60) : undefined;
        },
        local.env,
      );
      expect(lines[0]).toBe(`resumed ${last}`);
      const reported = committed(lines);
      if ((lines.at(-1) ?? '').startsWith('begin ')) inFlight++;
      last = await verify(Math.max(last, ...reported));
    }
    const { lines } = await runChild(STORE, [String(last + 2)], undefined, local.env);
    expect(lines.slice(0, 2)).toEqual([`resumed ${last}`, `begin ${last + 1}`]);
    expect(await verify(last + 1)).toBe(last + 1);
    console.log(`aws kill -9 test: ${kills} random kills (${inFlight} during a commit) + 3 at chosen points; ${last + 1} rounds intact`);
  });
});
