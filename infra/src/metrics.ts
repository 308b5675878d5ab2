/**
 * What the coordinator writes to CloudWatch and what the alarms read: the EMF namespace, the
 * dimension set and the seed spec 6.2 metric names of `apps/server/src/emf.ts`, and the seed spec
 * 6.3 alarms. They are copied here, not imported, so that the CDK app loads nothing of the server;
 * `test/alarms-emf.test.ts` runs `fedcare simulate --cloudwatch-emf` and checks every alarm against
 * the records it writes, so a rename on either side fails a test.
 */
import { Duration } from 'aws-cdk-lib';
import { ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';

export const EMF_NAMESPACE = 'FederatedLearning';
/** The `Service` dimension's value (the coordinator's EMF_SERVICE). */
export const EMF_SERVICE = 'fedcare-coordinator';

/** Seed spec 6.2, with the units the coordinator writes. */
export const ROUND_METRICS = {
  TrainingRound: 'Count',
  GlobalModelAccuracy: 'Percent',
  ActiveClients: 'Count',
  PrivacyBudget: 'None',
  ModelSize: 'Megabytes',
  CommunicationOverhead: 'Bytes',
} as const;
export type RoundMetric = keyof typeof ROUND_METRICS;

/** The one dimension set of every record: {Service, Deployment}. */
export function emfDimensions(deployment: string): { Service: string; Deployment: string } {
  return { Service: EMF_SERVICE, Deployment: deployment };
}

export interface RoundAlarm {
  /** The seed spec 6.3 name. */
  readonly name: string;
  readonly metric: RoundMetric;
  readonly statistic: 'SampleCount' | 'Minimum' | 'Maximum' | 'Average';
  readonly period: Duration;
  readonly comparison: ComparisonOperator;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly treatMissingData: TreatMissingData;
  readonly description: string;
}

/**
 * The period of the round alarms (seed spec 6.3 gives none). With the run config's default
 * stage_timeout_s (600 s for each of train and evaluate) a round ends within 20 minutes, so two
 * 15-minute periods without one mean a stall; runs with longer deadlines want a longer period.
 */
export const ROUND_PERIOD = Duration.minutes(15);

/** Seed spec 6.3, on the coordinator's metrics. */
export const ROUND_ALARMS: readonly RoundAlarm[] = [
  {
    name: 'training_failures',
    metric: 'TrainingRound',
    // How many rounds completed in the period: the coordinator writes one TrainingRound per
    // committed round, so "no new round" is a count of 0 — or no data at all.
    statistic: 'SampleCount',
    period: ROUND_PERIOD,
    comparison: ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
    threshold: 0,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    // Missing data is breaching: a stalled or crashed coordinator writes nothing, so an absent
    // metric is exactly the failure this alarm is for; "not breaching" or "ignore" would keep it OK
    // forever once rounds stop. CloudWatch cannot know whether a run is active, so the price is
    // that the alarm also goes to ALARM (and notifies once) 30 minutes after a run ends, and stays
    // there until the next run's first round sets it OK again.
    treatMissingData: TreatMissingData.BREACHING,
    description: 'No training round completed in 2 consecutive 15-minute periods (missing data counts as breaching: a stalled or crashed coordinator writes no metric). Also enters ALARM once after a run ends.',
  },
  {
    name: 'low_accuracy',
    metric: 'GlobalModelAccuracy',
    // The best round of the period: early rounds of a run are expected to be poor, so the alarm
    // asks that no round of two whole periods reached the threshold.
    statistic: 'Maximum',
    period: ROUND_PERIOD,
    comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
    // Seed spec 6.3 says 0.60 (a fraction); the coordinator writes the accuracy in Percent.
    threshold: 60,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    treatMissingData: TreatMissingData.NOT_BREACHING,
    description: 'The global model\'s test accuracy stayed below 60 % in every round of two 15-minute periods.',
  },
  {
    name: 'privacy_budget_exceeded',
    metric: 'PrivacyBudget',
    statistic: 'Maximum',
    period: Duration.minutes(5),
    comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
    threshold: 5,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: TreatMissingData.NOT_BREACHING,
    // Seed spec 6.3's "stop training" is the coordinator's own job: a hospital declines a round that
    // would take it past the run's target ε and the run ends when too few have budget left.
    description: 'A hospital has spent more than ε = 5 (PrivacyBudget is the largest ε any hospital has spent). The coordinator stops a run at its own target ε; this alarm notifies when a run was configured above 5.',
  },
  {
    name: 'client_dropout',
    metric: 'ActiveClients',
    statistic: 'Minimum',
    period: Duration.minutes(5),
    comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
    threshold: 2,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: TreatMissingData.NOT_BREACHING,
    // Seed spec 6.3 also says "auto-scale": the hospitals are the consortium's browsers and
    // machines, not tasks of this deployment, so there is nothing to scale; the alarm notifies.
    description: 'A round was aggregated from fewer than 2 hospitals.',
  },
];
