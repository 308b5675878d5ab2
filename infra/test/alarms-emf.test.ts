// The alarms read what the coordinator writes: `fedcare simulate --cloudwatch-emf FILE` runs a real
// federation (two hospitals, one differentially private round, so PrivacyBudget is written) and
// every alarm's namespace, metric and dimensions must be those of the records in FILE, and its
// threshold seed spec 6.3's in the unit the record carries.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesize, text, type Synthesized } from './synth';

/** Seed spec 6.3, as written there (the accuracy threshold is a fraction). */
const SEED_6_3 = {
  training_failures: { metric: 'TrainingRound', threshold: 0, evaluation_periods: 2, datapoints_to_alarm: 2 },
  low_accuracy: { metric: 'GlobalModelAccuracy', threshold: 0.6, comparison: 'LessThanThreshold' },
  privacy_budget_exceeded: { metric: 'PrivacyBudget', threshold: 5.0, comparison: 'GreaterThanThreshold' },
  client_dropout: { metric: 'ActiveClients', threshold: 2, comparison: 'LessThanThreshold' },
} as const;
/** Seed spec 6.2. */
const SEED_6_2 = ['TrainingRound', 'GlobalModelAccuracy', 'ActiveClients', 'PrivacyBudget', 'ModelSize', 'CommunicationOverhead'];

interface EmfRecord {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

const BIN = path.join(path.dirname(createRequire(import.meta.url).resolve('@fedcare/cli/package.json')), 'bin', 'fedcare.mjs');

function fedcare(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`fedcare ${args[0]} exited ${code}:\n${out.slice(-2000)}`))));
  });
}

let records: EmfRecord[];
let s: Synthesized;
beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fedcare-emf-'));
  const emf = path.join(dir, 'metrics.emf.jsonl');
  await fedcare(['generate', '--hospitals', 'H1,H2', '--seed', '7', '--out', path.join(dir, 'data'), '--patients', '40']);
  const run = fedcare(['simulate', '--data', path.join(dir, 'data'), '--hospitals', 'H1,H2', '--rounds', '1', '--seq-len', '8', '--batch-size', '16', '--dp', '--target-epsilon', '50', '--delta', '1e-3', '--db', path.join(dir, 'sim.db'), '--cloudwatch-emf', emf, '--json']);
  // Synthesized while the federation runs. `fedcare simulate` writes the coordinator's default
  // Deployment ("default"); a deployment passes its own as FEDCARE_DEPLOYMENT, checked below.
  s = synthesize({ deployment: 'default' });
  await run;
  records = readFileSync(emf, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EmfRecord);
}, 300_000);

type Alarm = { AlarmName: string; Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[]; Threshold: number; ComparisonOperator: string; Statistic: string; EvaluationPeriods: number; DatapointsToAlarm: number; TreatMissingData: string };
const seedAlarms = (): Record<string, Alarm> =>
  Object.fromEntries(
    Object.values(s.templates.monitoring.findResources('AWS::CloudWatch::Alarm'))
      .map((r) => (r as { Properties: Alarm }).Properties)
      .filter((a) => a.Namespace !== 'AWS/ECS' && a.Namespace !== 'AWS/ApplicationELB')
      .map((a) => [a.AlarmName.replace(/^fedcare-default-/, ''), a]),
  );

describe('the alarms and the dashboard against `fedcare simulate --cloudwatch-emf`', () => {
  it('has one EMF record for the round, with the six seed spec 6.2 metrics (PrivacyBudget too: DP is on)', () => {
    expect(records).toHaveLength(1);
    const directive = records[0]!._aws.CloudWatchMetrics[0]!;
    expect(directive.Metrics.map((m) => m.Name).sort()).toEqual([...SEED_6_2].sort());
  });

  it('selects exactly the namespace, metric and dimensions the coordinator writes, for each seed spec 6.3 alarm', () => {
    const alarms = seedAlarms();
    expect(Object.keys(alarms).sort()).toEqual(Object.keys(SEED_6_3).sort());
    for (const record of records) {
      for (const directive of record._aws.CloudWatchMetrics) {
        for (const [name, seed] of Object.entries(SEED_6_3)) {
          const alarm = alarms[name]!;
          expect(alarm.Namespace, name).toBe(directive.Namespace);
          expect(alarm.MetricName, name).toBe(seed.metric);
          expect(directive.Metrics.map((m) => m.Name), name).toContain(alarm.MetricName);
          expect(typeof record[alarm.MetricName], name).toBe('number');
          // CloudWatch matches a metric by its whole dimension set: the alarm must name all of them, with the record's values.
          const dims = Object.fromEntries(alarm.Dimensions.map((d) => [d.Name, d.Value]));
          expect(directive.Dimensions.map((set) => [...set].sort()), name).toContainEqual(Object.keys(dims).sort());
          for (const [k, v] of Object.entries(dims)) expect(v, `${name} ${k}`).toBe(record[k]);
        }
      }
    }
  });

  it('uses seed spec 6.3\'s thresholds and comparisons, in the unit the record carries', () => {
    const alarms = seedAlarms();
    const unit = (metric: string) => records[0]!._aws.CloudWatchMetrics[0]!.Metrics.find((m) => m.Name === metric)!.Unit;
    for (const [name, seed] of Object.entries(SEED_6_3)) {
      const alarm = alarms[name]!;
      // GlobalModelAccuracy is written in Percent (100 × accuracy): the seed's 0.60 is 60.
      const expected = unit(seed.metric) === 'Percent' ? 100 * seed.threshold : seed.threshold;
      expect(alarm.Threshold, name).toBeCloseTo(expected, 9);
      if ('comparison' in seed) expect(alarm.ComparisonOperator, name).toBe(seed.comparison);
      if ('evaluation_periods' in seed) {
        expect([alarm.EvaluationPeriods, alarm.DatapointsToAlarm], name).toEqual([seed.evaluation_periods, seed.datapoints_to_alarm]);
      }
    }
    expect(unit('GlobalModelAccuracy')).toBe('Percent');
    // "No new round": how many rounds were committed in the period, at most 0; a silent coordinator breaches too.
    expect(alarms.training_failures).toMatchObject({ Statistic: 'SampleCount', ComparisonOperator: 'LessThanOrEqualToThreshold', TreatMissingData: 'breaching' });
    // On this round's own figures: 43.75 % (or whatever it is) is judged against 60, not 0.6.
    const accuracy = records[0]!.GlobalModelAccuracy as number;
    expect(accuracy).toBeGreaterThan(1);
    expect(records[0]!.ActiveClients).toBe(2);
  });

  it('graphs the six metrics of the record on the dashboard, and passes the alarms\' Deployment to the coordinator', () => {
    const body = JSON.parse(
      (Object.values(s.templates.monitoring.findResources('AWS::CloudWatch::Dashboard'))[0] as { Properties: { DashboardBody: { 'Fn::Join': [string, unknown[]] } } }).Properties.DashboardBody['Fn::Join'][1]
        .map((part) => (typeof part === 'string' ? part : 'TOKEN'))
        .join(''),
    ) as { widgets: { properties: { metrics?: unknown[][] } }[] };
    const graphed = body.widgets.flatMap((w) => w.properties.metrics ?? []).filter((m) => m[0] === records[0]!._aws.CloudWatchMetrics[0]!.Namespace);
    expect(graphed.map((m) => m[1]).sort()).toEqual([...SEED_6_2].sort());
    for (const m of graphed) {
      const dims = Object.fromEntries(Array.from({ length: (m.length - 2) / 2 }, (_, i) => [m[2 + 2 * i], m[3 + 2 * i]]).filter(([k]) => typeof k === 'string'));
      expect(dims).toEqual({ Service: records[0]!.Service, Deployment: records[0]!.Deployment });
    }
    const td = Object.values(s.templates.service.findResources('AWS::ECS::TaskDefinition'))[0] as { Properties: { ContainerDefinitions: { Environment: { Name: string; Value: unknown }[] }[] } };
    const deployment = td.Properties.ContainerDefinitions[0]!.Environment.find((e) => e.Name === 'FEDCARE_DEPLOYMENT')!.Value;
    expect(deployment).toBe(records[0]!.Deployment);
    expect(text(seedAlarms().low_accuracy!.Dimensions)).toContain(`"Value":"${deployment as string}"`);
  });
});
