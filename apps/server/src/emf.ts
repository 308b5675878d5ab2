/**
 * CloudWatch metrics of seed spec 6.2, one Embedded Metric Format record per completed round
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
 * built with AWS's own `aws-embedded-metrics` library and written as one JSON line to a writer —
 * stdout in `fedcare serve` (on ECS the awslogs driver ships it and CloudWatch extracts the
 * metrics), a file in `fedcare simulate --cloudwatch-emf FILE`.
 *
 * Namespace FederatedLearning; metrics TrainingRound (Count), GlobalModelAccuracy (Percent,
 * 100 × test accuracy), ActiveClients (Count, hospitals whose update is in the round's model),
 * PrivacyBudget (None: the largest ε any hospital has spent; omitted without DP), ModelSize
 * (Megabytes: weight bytes / 10⁶), CommunicationOverhead (Bytes, both directions, all hospitals);
 * a multi-task run (run config task_weights) adds ReadmissionAucRoc (None) and DaysToReadmissionMae /
 * DaysToReadmissionRmse (None: days; CloudWatch has no day unit), pooled over the hospitals.
 * One dimension set, {Service, Deployment}, the same for every record, so that alarms can name
 * each metric by it; run and round go in as properties (searchable, not dimensions: a dimension
 * per run would make a new metric per run).
 */
import { MetricsLogger, Unit } from 'aws-embedded-metrics';
import type { IEnvironment } from 'aws-embedded-metrics/lib/environment/IEnvironment';
import { MetricsContext } from 'aws-embedded-metrics/lib/logger/MetricsContext';
import { LogSerializer } from 'aws-embedded-metrics/lib/serializers/LogSerializer';
import type { RoundReport } from '@fedcare/shared/fl';

export const EMF_NAMESPACE = 'FederatedLearning';
export const EMF_SERVICE = 'fedcare-coordinator';

export interface EmfOptions {
  /** Receives each record, one JSON document (no newline). */
  write(line: string): void;
  /** The Deployment dimension's value (FEDCARE_DEPLOYMENT; default "default"). */
  deployment?: string;
}

/** The seed spec 6.2 values of one round; PrivacyBudget only for a differentially private run. */
export function roundMetricValues(r: RoundReport): { name: string; value: number; unit: Unit }[] {
  const m = r.metrics;
  const out = [
    { name: 'TrainingRound', value: r.round, unit: Unit.Count },
    { name: 'GlobalModelAccuracy', value: 100 * (m.test_accuracy ?? Number.NaN), unit: Unit.Percent },
    { name: 'ActiveClients', value: m.num_participating_clients ?? 0, unit: Unit.Count },
    { name: 'PrivacyBudget', value: m.privacy_epsilon ?? Number.POSITIVE_INFINITY, unit: Unit.None },
    { name: 'ModelSize', value: (r.modelBytes ?? Number.NaN) / 1e6, unit: Unit.Megabytes },
    { name: 'CommunicationOverhead', value: m.communication_bytes ?? 0, unit: Unit.Bytes },
    { name: 'ReadmissionAucRoc', value: m.readmission_auc_roc ?? Number.NaN, unit: Unit.None },
    { name: 'DaysToReadmissionMae', value: m.days_mae ?? Number.NaN, unit: Unit.None },
    { name: 'DaysToReadmissionRmse', value: m.days_rmse ?? Number.NaN, unit: Unit.None },
  ];
  // CloudWatch takes finite numbers only: ε = ∞ (no DP), an undefined accuracy and a single-task run's heads are left out.
  return out.filter((v) => Number.isFinite(v.value));
}

/** An environment for the library that hands each serialized record to `write` (no agent, no probing). */
function environment(write: (line: string) => void): IEnvironment {
  const serializer = new LogSerializer();
  return {
    probe: () => Promise.resolve(true),
    getName: () => EMF_SERVICE,
    getType: () => 'fedcare',
    getLogGroupName: () => '',
    configureContext: () => undefined,
    getSink: () => ({
      name: 'fedcare',
      accept: (context: MetricsContext) => {
        for (const line of serializer.serialize(context)) write(line);
        return Promise.resolve();
      },
    }),
  };
}

/** Writes the round's record. */
export async function writeRoundEmf(r: RoundReport, options: EmfOptions): Promise<void> {
  const env = environment(options.write);
  const logger = new MetricsLogger(() => Promise.resolve(env), MetricsContext.empty());
  logger.setNamespace(EMF_NAMESPACE);
  logger.setDimensions({ Service: EMF_SERVICE, Deployment: options.deployment ?? 'default' });
  for (const v of roundMetricValues(r)) logger.putMetric(v.name, v.value, v.unit);
  logger.setProperty('run_id', r.runId);
  logger.setProperty('round', r.round);
  await logger.flush();
}
