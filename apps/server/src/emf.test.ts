// CloudWatch Embedded Metric Format records (seed spec 6.2), checked against the EMF specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// the _aws metadata, metric directives, dimension sets and root members it requires.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RoundReport } from '@fedcare/shared/fl';
import { EMF_NAMESPACE, writeRoundEmf } from './emf';

/** The units CloudWatch accepts (the specification's MetricDefinition.Unit). */
const UNITS = [
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits',
  'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second',
  'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
] as const;

/** The specification's schema of the `_aws` member, as zod. */
const emfSchema = z.object({
  _aws: z.object({
    Timestamp: z.number().int().nonnegative(),
    CloudWatchMetrics: z
      .array(
        z.object({
          Namespace: z.string().min(1).max(1024),
          Dimensions: z.array(z.array(z.string().min(1).max(250)).max(30)),
          Metrics: z.array(z.object({ Name: z.string().min(1).max(1024), Unit: z.enum(UNITS).optional(), StorageResolution: z.union([z.literal(1), z.literal(60)]).optional() })).max(100),
        }),
      )
      .min(1),
  }),
});

/** Parses one record and checks the rules the schema cannot: every dimension and metric named is a root member of the right type. */
function parseEmf(line: string): { record: Record<string, unknown>; metrics: Map<string, { value: number; unit?: string | undefined }>; dimensions: string[][]; namespace: string } {
  expect(line).not.toContain('\n');
  const record = JSON.parse(line) as Record<string, unknown>;
  const aws = emfSchema.parse(record)._aws;
  const directive = aws.CloudWatchMetrics[0]!;
  for (const set of directive.Dimensions) for (const d of set) expect(typeof record[d], `dimension ${d} is a root string member`).toBe('string');
  const metrics = new Map<string, { value: number; unit?: string | undefined }>();
  for (const m of directive.Metrics) {
    const v = record[m.Name];
    expect(typeof v, `metric ${m.Name} is a root number member`).toBe('number');
    expect(Number.isFinite(v as number), `metric ${m.Name} is finite`).toBe(true);
    metrics.set(m.Name, { value: v as number, unit: m.Unit });
  }
  return { record, metrics, dimensions: directive.Dimensions, namespace: directive.Namespace };
}

function report(metrics: Record<string, number>): RoundReport {
  return { runId: 'run-20261207000000-abcdef01', round: 4, metrics, perHospital: {}, participation: [], bytes: {}, modelBytes: 2_276_364 };
}

describe('CloudWatch EMF records of a round', () => {
  it('carry the seed spec 6.2 metrics with their units and values, one stable dimension set, run and round as properties', async () => {
    const lines: string[] = [];
    await writeRoundEmf(report({ test_accuracy: 0.6875, num_participating_clients: 3, privacy_epsilon: 2.5, communication_bytes: 14_000_123 }), { write: (l) => lines.push(l), deployment: 'staging' });
    expect(lines).toHaveLength(1);
    const { record, metrics, dimensions, namespace } = parseEmf(lines[0]!);
    expect(namespace).toBe(EMF_NAMESPACE);
    expect(Object.fromEntries(metrics)).toEqual({
      TrainingRound: { value: 4, unit: 'Count' },
      GlobalModelAccuracy: { value: 68.75, unit: 'Percent' },
      ActiveClients: { value: 3, unit: 'Count' },
      PrivacyBudget: { value: 2.5, unit: 'None' },
      ModelSize: { value: 2.276364, unit: 'Megabytes' },
      CommunicationOverhead: { value: 14_000_123, unit: 'Bytes' },
    });
    expect(dimensions).toEqual([['Service', 'Deployment']]);
    expect(record).toMatchObject({ Service: 'fedcare-coordinator', Deployment: 'staging', run_id: 'run-20261207000000-abcdef01', round: 4 });
    expect(Math.abs((record._aws as { Timestamp: number }).Timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('leave PrivacyBudget out without DP (ε = ∞) and an undefined accuracy out too; the dimension set stays the same', async () => {
    const lines: string[] = [];
    await writeRoundEmf(report({ test_accuracy: Number.NaN, num_participating_clients: 2, privacy_epsilon: Number.POSITIVE_INFINITY, communication_bytes: 10 }), { write: (l) => lines.push(l) });
    const { metrics, dimensions, record } = parseEmf(lines[0]!);
    expect([...metrics.keys()].sort()).toEqual(['ActiveClients', 'CommunicationOverhead', 'ModelSize', 'TrainingRound']);
    expect(record.PrivacyBudget).toBeUndefined();
    expect(dimensions).toEqual([['Service', 'Deployment']]);
    expect(record.Deployment).toBe('default');
  });

  it('a multi-task round (task_weights) adds the pooled readmission AUC-ROC and days MAE / RMSE', async () => {
    const lines: string[] = [];
    await writeRoundEmf(report({ test_accuracy: 0.7, num_participating_clients: 3, communication_bytes: 10, readmission_auc_roc: 0.71, days_mae: 6.5, days_rmse: 8.25 }), { write: (l) => lines.push(l) });
    const { metrics } = parseEmf(lines[0]!);
    expect(metrics.get('ReadmissionAucRoc')).toEqual({ value: 0.71, unit: 'None' });
    expect(metrics.get('DaysToReadmissionMae')).toEqual({ value: 6.5, unit: 'None' });
    expect(metrics.get('DaysToReadmissionRmse')).toEqual({ value: 8.25, unit: 'None' });
  });

  it('the schema check itself refuses what the specification refuses', () => {
    const good = { _aws: { Timestamp: 1, CloudWatchMetrics: [{ Namespace: 'N', Dimensions: [['A']], Metrics: [{ Name: 'M', Unit: 'Count' }] }] }, A: 'x', M: 1 };
    expect(() => parseEmf(JSON.stringify(good))).not.toThrow();
    expect(() => parseEmf(JSON.stringify({ ...good, M: 'one' }))).toThrow(/root number member/);
    expect(() => parseEmf(JSON.stringify({ ...good, A: undefined }))).toThrow(/root string member/);
    expect(() => parseEmf(JSON.stringify({ ...good, _aws: { ...good._aws, Timestamp: 1.5 } }))).toThrow();
    expect(() => parseEmf(JSON.stringify({ ...good, _aws: { ...good._aws, CloudWatchMetrics: [{ ...good._aws.CloudWatchMetrics[0], Metrics: [{ Name: 'M', Unit: 'Parsecs' }] }] } }))).toThrow();
  });
});
