/**
 * Monitoring (seed spec 6.2, 6.3): the alarm topic, the four seed alarms on the coordinator's EMF
 * metrics, ECS CPU/memory and load-balancer alarms, and a dashboard of the six round metrics.
 */
import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { FargateService } from 'aws-cdk-lib/aws-ecs';
import { HttpCodeElb, HttpCodeTarget, type ApplicationLoadBalancer, type ApplicationTargetGroup } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { FedcareConfig } from './config';
import { EMF_NAMESPACE, ROUND_ALARMS, ROUND_METRICS, emfDimensions, type RoundMetric } from './metrics';

export interface MonitoringStackProps extends StackProps {
  readonly config: FedcareConfig;
  readonly key: IKey;
  readonly service: FargateService;
  readonly loadBalancer: ApplicationLoadBalancer;
  readonly targetGroup: ApplicationTargetGroup;
}

/** Infrastructure alarms besides seed spec 6.3: name → threshold, for the README and the tests. */
export const INFRA_ALARMS = {
  'ecs-cpu-high': { threshold: 80, evaluationPeriods: 3 },
  'ecs-memory-high': { threshold: 80, evaluationPeriods: 3 },
  'alb-elb-5xx': { threshold: 5, evaluationPeriods: 1 },
  'alb-target-5xx': { threshold: 5, evaluationPeriods: 1 },
  'no-healthy-coordinator': { threshold: 1, evaluationPeriods: 3 },
} as const;

export class MonitoringStack extends Stack {
  readonly topic: Topic;
  readonly alarms: Record<string, Alarm> = {};
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.topic = new Topic(this, 'AlarmTopic', { displayName: `fedcare ${config.deployment} alarms`, masterKey: props.key, enforceSSL: true });
    if (config.alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
    const notify = new SnsAction(this.topic);

    const roundMetric = (name: RoundMetric, statistic: string, period: Duration): Metric =>
      new Metric({ namespace: EMF_NAMESPACE, metricName: name, dimensionsMap: emfDimensions(config.deployment), statistic, period });

    const add = (name: string, metric: IMetric, o: { threshold: number; comparison: ComparisonOperator; evaluationPeriods: number; datapointsToAlarm?: number; treatMissingData: TreatMissingData; description: string }): void => {
      const alarm = new Alarm(this, `Alarm-${name}`, {
        alarmName: `fedcare-${config.deployment}-${name}`,
        alarmDescription: o.description,
        metric,
        threshold: o.threshold,
        comparisonOperator: o.comparison,
        evaluationPeriods: o.evaluationPeriods,
        datapointsToAlarm: o.datapointsToAlarm ?? o.evaluationPeriods,
        treatMissingData: o.treatMissingData,
      });
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
      this.alarms[name] = alarm;
    };

    for (const a of ROUND_ALARMS) {
      add(a.name, roundMetric(a.metric, a.statistic, a.period), {
        threshold: a.threshold,
        comparison: a.comparison,
        evaluationPeriods: a.evaluationPeriods,
        datapointsToAlarm: a.datapointsToAlarm,
        treatMissingData: a.treatMissingData,
        description: a.description,
      });
    }

    const five = Duration.minutes(5);
    const cpu = props.service.metricCpuUtilization({ period: five, statistic: 'Average' });
    const memory = props.service.metricMemoryUtilization({ period: five, statistic: 'Average' });
    add('ecs-cpu-high', cpu, { ...INFRA_ALARMS['ecs-cpu-high'], comparison: ComparisonOperator.GREATER_THAN_THRESHOLD, treatMissingData: TreatMissingData.MISSING, description: 'The coordinator task used more than 80 % of its 2 vCPU for 15 minutes.' });
    add('ecs-memory-high', memory, { ...INFRA_ALARMS['ecs-memory-high'], comparison: ComparisonOperator.GREATER_THAN_THRESHOLD, treatMissingData: TreatMissingData.MISSING, description: 'The coordinator task used more than 80 % of its 4 GB for 15 minutes.' });
    const elb5xx = props.loadBalancer.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { period: five, statistic: 'Sum' });
    const target5xx = props.targetGroup.metrics.httpCodeTarget(HttpCodeTarget.TARGET_5XX_COUNT, { period: five, statistic: 'Sum' });
    add('alb-elb-5xx', elb5xx, { ...INFRA_ALARMS['alb-elb-5xx'], comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, treatMissingData: TreatMissingData.NOT_BREACHING, description: 'The load balancer answered 5 or more 5xx itself in 5 minutes (502/503/504: no healthy coordinator, or it failed to answer).' });
    add('alb-target-5xx', target5xx, { ...INFRA_ALARMS['alb-target-5xx'], comparison: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, treatMissingData: TreatMissingData.NOT_BREACHING, description: 'The coordinator answered 5 or more 5xx in 5 minutes.' });
    const healthy = props.targetGroup.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' });
    add('no-healthy-coordinator', healthy, { ...INFRA_ALARMS['no-healthy-coordinator'], comparison: ComparisonOperator.LESS_THAN_THRESHOLD, treatMissingData: TreatMissingData.BREACHING, description: 'No coordinator has answered /readyz 200 for 3 minutes (a deployment, a crash loop or a store that does not open).' });

    // Seed spec 6.2: one graph per round metric (a point per round), then the alarms and the task.
    const graphs = (Object.keys(ROUND_METRICS) as RoundMetric[]).map(
      (name) =>
        new GraphWidget({
          title: `${name} (${ROUND_METRICS[name]})`,
          left: [roundMetric(name, name === 'TrainingRound' ? 'Maximum' : 'Average', Duration.minutes(1))],
          width: 8,
          height: 6,
        }),
    );
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `fedcare-${config.deployment}`,
      widgets: [
        graphs.slice(0, 3),
        graphs.slice(3, 6),
        [new AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24, height: 4 })],
        [
          new GraphWidget({ title: 'Coordinator CPU and memory (%)', left: [cpu, memory], width: 12, height: 6 }),
          new GraphWidget({ title: 'Load balancer 5xx', left: [elb5xx, target5xx], right: [healthy], width: 12, height: 6 }),
        ],
      ],
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: `fedcare-${config.deployment}` });
  }
}
