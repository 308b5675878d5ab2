// `fedcare simulate --store aws --create-missing --cloudwatch-emf FILE` end to end: a real coordinator
// on DynamoDB + S3 stand-ins (dynalite and s3rver, started here), real client processes; then the
// tables, the bucket and the EMF file are read back and compared with the run's JSON lines.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalAws, type LocalAws } from '@fedcare/server/testing/local-aws';
import { generateToDir } from './generate';
import { fedcareProcess } from '../testing-processes';

describe('fedcare simulate on the aws store, with CloudWatch EMF', () => {
  let aws: LocalAws;
  beforeAll(async () => {
    aws = await startLocalAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  it('leaves one fl-training-metadata row per round and the final model in S3, byte-identical to model_sha256; one EMF record per round equal to the JSON lines', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-sim-aws-'));
    generateToDir(['H1', 'H2'], 7, dir, 40);
    const emf = path.join(dir, 'metrics.emf.jsonl');
    const env = { ...aws.env, FEDCARE_S3_BUCKET: 'fedcare-sim-models', FEDCARE_DYNAMODB_TABLE_PREFIX: 'sim-' };
    const p = fedcareProcess(['simulate', '--data', dir, '--hospitals', 'H1,H2', '--rounds', '2', '--seq-len', '8', '--batch-size', '16', '--model', 'standard', '--local-epochs', '1', '--dp', '--target-epsilon', '50', '--delta', '1e-3', '--store', 'aws', '--create-missing', '--cloudwatch-emf', emf, '--json'], env);
    expect(await p.exited, p.output()).toBe(0);
    const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const rounds = lines.filter((l) => 'round' in l) as Record<string, number>[];
    const summary = (lines.find((l) => 'summary' in l) as { summary: { run_id: string; model_sha256: string; status: string } }).summary;
    expect(summary.status).toBe('completed');
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);

    // DynamoDB: exactly one metadata row per round, the seed spec 5.1 attributes equal to the round's figures.
    const { dynamodb, s3 } = aws.clients();
    const items = (await dynamodb.send(new QueryCommand({ TableName: 'sim-fl-training-metadata', KeyConditionExpression: 'run_id = :r', ExpressionAttributeValues: { ':r': { S: summary.run_id } }, ConsistentRead: true }))).Items ?? [];
    expect(items.map((i) => Number(i.round_number?.N))).toEqual([1, 2]);
    items.forEach((item, k) => {
      const r = rounds[k]!;
      expect(Number(item.global_accuracy?.N)).toBeCloseTo(r.test_accuracy as number, 12);
      expect(Number(item.privacy_budget?.N)).toBeCloseTo(r.privacy_epsilon as number, 12);
      expect(item.participating_clients?.L?.map((x) => x.S)).toEqual(['H1', 'H2']);
      expect(item.timestamp?.S).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    });

    // S3: the final model's object hashes to the summary's model_sha256.
    const objects = (await s3.send(new ListObjectsV2Command({ Bucket: 'fedcare-sim-models' }))).Contents ?? [];
    const model = objects.find((o) => o.Key?.startsWith('models/') && o.Key.endsWith(`${summary.model_sha256}.bin`));
    expect(model, objects.map((o) => o.Key).join(', ')).toBeDefined();
    const bytes = await (await s3.send(new GetObjectCommand({ Bucket: 'fedcare-sim-models', Key: model!.Key! }))).Body!.transformToByteArray();
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(summary.model_sha256);
    expect(bytes.byteLength).toBe(569_091 * 4);

    // EMF: one record per round whose values are the JSON lines'.
    const records = readFileSync(emf, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string | Record<string, unknown>>);
    expect(records).toHaveLength(2);
    records.forEach((rec, k) => {
      const r = rounds[k]!;
      expect(rec.TrainingRound).toBe(r.round);
      expect(rec.GlobalModelAccuracy).toBeCloseTo(100 * (r.test_accuracy as number), 10);
      expect(rec.ActiveClients).toBe(r.num_participating_clients);
      expect(rec.PrivacyBudget).toBe(r.privacy_epsilon);
      expect(rec.CommunicationOverhead).toBe(r.communication_bytes);
      expect(rec.ModelSize).toBeCloseTo((569_091 * 4) / 1e6, 9);
      expect(rec.run_id).toBe(summary.run_id);
      const directive = (rec._aws as { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] }).CloudWatchMetrics[0]!;
      expect(directive.Namespace).toBe('FederatedLearning');
      expect(directive.Metrics.map((m) => m.Name).sort()).toEqual(['ActiveClients', 'CommunicationOverhead', 'GlobalModelAccuracy', 'ModelSize', 'PrivacyBudget', 'TrainingRound']);
    });
  }, 600_000);
});
