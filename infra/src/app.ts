/**
 * The fedcare CDK app: four stacks a reader finds by name — FedcareData, FedcareNetwork,
 * FedcareService, FedcareMonitoring — in one region, account-agnostic (the CLI's account), with no
 * lookups, and cdk-nag's AwsSolutions and HIPAA.Security packs run on every synth: any open finding
 * fails it. Findings that do not apply are acknowledged on the construct they concern, each with its
 * reason (never for a whole stack).
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import type { FedcareConfig } from './config';
import { DataStack } from './data-stack';
import { MonitoringStack } from './monitoring-stack';
import { NetworkStack } from './network-stack';
import { ServiceStack } from './service-stack';

export interface FedcareStacks {
  readonly data: DataStack;
  readonly network: NetworkStack;
  readonly service: ServiceStack;
  readonly monitoring: MonitoringStack;
}

/**
 * Feature flags this app relies on, set before any construct reads them (so that the app is the same
 * with or without cdk.json): S3 server access logs delivered under a bucket policy (not the
 * LogDeliveryWrite ACL, which ACL-less buckets refuse); cross-stack references as CloudFormation
 * exports, which keep a stack from deleting what another still uses.
 */
const FEATURE_FLAGS: Record<string, boolean | string> = {
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  '@aws-cdk/core:defaultCrossStackReferences': 'strong',
};

/** Adds the stacks to `app`; with `nag` (the default) the two cdk-nag packs validate every synth. */
export function addFedcareStacks(app: App, config: FedcareConfig, options: { nag?: boolean } = {}): FedcareStacks {
  for (const [flag, value] of Object.entries(FEATURE_FLAGS)) app.node.setContext(flag, value);
  const env = { region: config.region };
  const tags = { project: 'fedcare', deployment: config.deployment };

  const data = new DataStack(app, 'FedcareData', { env, tags, description: 'fedcare data: KMS key, S3 buckets (models, artifacts, logs), DynamoDB tables, token secret, backups' });
  const network = new NetworkStack(app, 'FedcareNetwork', {
    env,
    tags,
    description: 'fedcare network: VPC over two AZs, NAT, VPC endpoints, flow logs',
    availabilityZones: config.availabilityZones,
    natGateways: config.natGateways,
    logBucket: data.logBucket,
  });
  const service = new ServiceStack(app, 'FedcareService', {
    env,
    tags,
    description: 'fedcare service: the coordinator on ECS Fargate behind an HTTPS load balancer (and WAF)',
    config,
    vpc: network.vpc,
    key: data.key,
    modelsBucket: data.modelsBucket,
    logBucket: data.logBucket,
    tokens: data.tokens,
    coordinatorAccess: data.coordinatorAccess,
  });
  const monitoring = new MonitoringStack(app, 'FedcareMonitoring', {
    env,
    tags,
    description: 'fedcare monitoring: alarm topic, seed spec 6.3 alarms, ECS and ALB alarms, dashboard',
    config,
    key: data.key,
    service: service.service,
    loadBalancer: service.loadBalancer,
    targetGroup: service.targetGroup,
  });

  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app));
  return { data, network, service, monitoring };
}
