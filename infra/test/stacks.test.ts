// The four stacks against the deployment checklist (issue 12, seed spec 5.1 and 10): every item's
// resource present with the stated properties, read from the synthesized CloudFormation. One app
// with every parameter set, synthesized once, with both cdk-nag packs (so this configuration must
// pass them too); a second, smaller synth for WAF off and an image outside ECR.
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SECRET_KEYS } from '../src/data-stack';
import { DEREGISTRATION_DELAY, DRAIN_SECONDS, STOP_TIMEOUT } from '../src/service-stack';
import { TEST_CONTEXT, list, policyStatements, synthesize, text, type Json, type Statement, type Synthesized } from './synth';

let s: Synthesized;
let noWaf: Synthesized;
beforeAll(() => {
  s = synthesize(TEST_CONTEXT, { nag: true });
  noWaf = synthesize({ ...TEST_CONTEXT, waf: 'false', imageUri: 'ghcr.io/consortium/fedcare:1.0.0', alarmEmail: undefined });
});

const resourcesOf = (t: Synthesized['templates'][keyof Synthesized['templates']], type: string): [string, { Properties: Json; DeletionPolicy?: string; UpdateReplacePolicy?: string }][] =>
  Object.entries(t.findResources(type)) as [string, { Properties: Json; DeletionPolicy?: string }][];
const one = (t: Synthesized['templates'][keyof Synthesized['templates']], type: string) => {
  const all = resourcesOf(t, type);
  expect(all, type).toHaveLength(1);
  return all[0]![1].Properties;
};
const attributes = (p: Json, key: string): Record<string, string> =>
  Object.fromEntries((p[key] as { Key: string; Value: unknown }[]).map((a) => [a.Key, text(a.Value)]));

describe('network (seed spec 5.1)', () => {
  it('is one VPC, 10.0.0.0/16, over the two given AZs, with the seed\'s public and private subnets and no public IPs by default', () => {
    expect(one(s.templates.network, 'AWS::EC2::VPC').CidrBlock).toBe('10.0.0.0/16');
    const subnets = resourcesOf(s.templates.network, 'AWS::EC2::Subnet').map(([, r]) => r.Properties);
    const byType = (type: string) =>
      subnets
        .filter((p) => list(p.Tags as { Key: string; Value: string }[]).some((t) => t.Key === 'aws-cdk:subnet-type' && t.Value === type))
        .map((p) => [p.AvailabilityZone, p.CidrBlock, p.MapPublicIpOnLaunch]);
    expect(byType('Public')).toEqual([
      ['eu-central-1b', '10.0.1.0/24', false],
      ['eu-central-1c', '10.0.2.0/24', false],
    ]);
    expect(byType('Private')).toEqual([
      ['eu-central-1b', '10.0.10.0/24', false],
      ['eu-central-1c', '10.0.11.0/24', false],
    ]);
    expect(subnets).toHaveLength(4);
  });

  it('sends the private subnets out through one NAT gateway in a public subnet, and only the public ones to the internet gateway', () => {
    const nat = resourcesOf(s.templates.network, 'AWS::EC2::NatGateway');
    expect(nat).toHaveLength(1);
    expect(text(nat[0]![1].Properties.SubnetId)).toContain('publicSubnet1');
    const routes = resourcesOf(s.templates.network, 'AWS::EC2::Route').map(([id, r]) => [id, r.Properties] as const);
    for (const [id, p] of routes) {
      expect(p.DestinationCidrBlock).toBe('0.0.0.0/0');
      if (id.includes('private')) expect(p.NatGatewayId, id).toBeDefined();
      else expect(p.GatewayId, id).toBeDefined();
    }
    expect(routes.filter(([id]) => id.includes('private'))).toHaveLength(2);
  });

  it('has gateway endpoints for S3 and DynamoDB on the private route tables and interface endpoints for ECR, Secrets Manager and Logs', () => {
    const endpoints = resourcesOf(s.templates.network, 'AWS::EC2::VPCEndpoint').map(([, r]) => r.Properties);
    const gateways = endpoints.filter((p) => p.VpcEndpointType === 'Gateway');
    expect(gateways.map((p) => text(p.ServiceName).replace(/.*"\.(\w+)".*/, '$1')).sort()).toEqual(['dynamodb', 's3']);
    for (const g of gateways) expect(text(g.RouteTableIds)).toMatch(/private.*private/);
    for (const g of gateways) expect(text(g.RouteTableIds)).not.toContain('public');
    const interfaces = endpoints.filter((p) => p.VpcEndpointType === 'Interface');
    expect(interfaces.map((p) => p.ServiceName).sort()).toEqual(['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'].map((x) => `com.amazonaws.eu-central-1.${x}`));
    for (const i of interfaces) {
      expect(i.PrivateDnsEnabled).toBe(true);
      expect(text(i.SubnetIds)).not.toContain('public');
    }
    // Their one security group: HTTPS from the VPC, nothing else.
    s.templates.network.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('interface endpoints'),
      SecurityGroupIngress: [{ CidrIp: '10.0.0.0/16', FromPort: 443, ToPort: 443, IpProtocol: 'tcp', Description: Match.anyValue() }],
    });
  });

  it('logs all VPC traffic to the log bucket and closes the default security group', () => {
    const flow = one(s.templates.network, 'AWS::EC2::FlowLog');
    expect(flow.TrafficType).toBe('ALL');
    expect(flow.LogDestinationType).toBe('s3');
    expect(text(flow.LogDestination)).toMatch(/LogBucket.*vpc-flow-logs\//);
    s.templates.network.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
    // The log bucket lets log delivery write this account's flow logs, under that prefix only.
    const write = policyStatements(s.templates.data).find((x) => x.statement.Sid === 'FlowLogsWrite')!.statement;
    expect(write.Principal).toEqual({ Service: 'delivery.logs.amazonaws.com' });
    expect(text(write.Resource)).toContain('/vpc-flow-logs/AWSLogs/');
  });
});

describe('service (ECS Fargate)', () => {
  const container = () => (one(s.templates.service, 'AWS::ECS::TaskDefinition').ContainerDefinitions as Json[])[0]!;
  const env = () => Object.fromEntries((container().Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));

  it('runs the coordinator task with 2 vCPU and 4 GB (seed spec 5.1), `serve --store aws`, from the given image', () => {
    const td = one(s.templates.service, 'AWS::ECS::TaskDefinition');
    expect([td.Cpu, td.Memory, td.NetworkMode, td.RequiresCompatibilities]).toEqual(['2048', '4096', 'awsvpc', ['FARGATE']]);
    expect(container().Command).toEqual(['serve', '--store', 'aws']);
    // The repository's own account and region, the tag as given (the URL suffix stays a token).
    expect(text(container().Image)).toMatch(/"123456789012\.dkr\.ecr\.eu-central-1\.",\{"Ref":"AWS::URLSuffix"\},"\/fedcare:2026\.12\.1"/);
    expect(container().PortMappings).toEqual([{ ContainerPort: 8080, Name: 'http', Protocol: 'tcp' }]);
  });

  it('configures it by environment — EMF on, the deployment, the bucket, the table prefix, the origins — and no token among the values', () => {
    const e = env();
    expect(e).toMatchObject({
      PORT: '8080',
      FEDCARE_CLOUDWATCH_EMF: '1',
      FEDCARE_DEPLOYMENT: 'staging',
      FEDCARE_DYNAMODB_TABLE_PREFIX: 'fedcare-',
      FEDCARE_ALLOWED_ORIGINS: 'https://portal.hospital-a.example,https://fl.consortium.example',
      AWS_REGION: 'eu-central-1',
      FEDCARE_DRAIN_SECONDS: String(DRAIN_SECONDS),
    });
    expect(text(e.FEDCARE_S3_BUCKET)).toMatch(/FedcareData:ExportsOutputRefModelsBucket/);
    expect(Object.keys(e).filter((k) => /TOKEN|SECRET|PASSWORD|KEY/i.test(k))).toEqual([]);
    expect(e.FEDCARE_CREATE_MISSING).toBeUndefined();
  });

  it('takes the admin, hospital and metrics tokens from the Secrets Manager secret, one JSON key each', () => {
    const secrets = container().Secrets as { Name: string; ValueFrom: unknown }[];
    expect(secrets.map((x) => x.Name).sort()).toEqual(['FEDCARE_ADMIN_TOKEN', 'FEDCARE_HOSPITAL_TOKENS', 'FEDCARE_METRICS_TOKEN']);
    for (const x of secrets) expect(text(x.ValueFrom)).toMatch(new RegExp(`CoordinatorTokens.*:${SECRET_KEYS[x.Name as keyof typeof SECRET_KEYS]}::`));
    // The secret the data stack creates has exactly those keys.
    const generate = one(s.templates.data, 'AWS::SecretsManager::Secret').GenerateSecretString as Json;
    expect([generate.GenerateStringKey, ...Object.keys(JSON.parse(generate.SecretStringTemplate as string) as Json)].sort()).toEqual(Object.values(SECRET_KEYS).sort());
  });

  it('logs to a KMS-encrypted CloudWatch log group with a retention (awslogs)', () => {
    expect((container().LogConfiguration as Json).LogDriver).toBe('awslogs');
    expect(text((container().LogConfiguration as { Options: Json }).Options['awslogs-group'])).toContain('CoordinatorLogs');
    s.templates.service.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/fedcare/coordinator', RetentionInDays: 365, KmsKeyId: Match.anyValue() });
  });

  it('keeps one coordinator: desired 1, minimum healthy 0 % / maximum 100 %, circuit breaker with rollback, private subnets, no public IP', () => {
    const svc = one(s.templates.service, 'AWS::ECS::Service');
    expect(svc.DesiredCount).toBe(1);
    expect(svc.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100, DeploymentCircuitBreaker: { Enable: true, Rollback: true } });
    const net = (svc.NetworkConfiguration as { AwsvpcConfiguration: Json }).AwsvpcConfiguration;
    expect(net.AssignPublicIp).toBe('DISABLED');
    expect(text(net.Subnets)).toMatch(/privateSubnet1.*privateSubnet2/);
    expect(text(net.Subnets)).not.toContain('public');
    expect(svc.EnableExecuteCommand).toBe(false);
    expect(one(s.templates.service, 'AWS::ECS::Cluster').ClusterSettings).toEqual([{ Name: 'containerInsights', Value: 'enabled' }]);
  });

  it('lets the task be reached on 8080 from the load balancer only, and lets it out on 443 only', () => {
    const ingress = resourcesOf(s.templates.service, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);
    expect(ingress).toHaveLength(1);
    expect(ingress[0]).toMatchObject({ FromPort: 8080, ToPort: 8080, IpProtocol: 'tcp' });
    expect(text(ingress[0]!.SourceSecurityGroupId)).toContain('LoadBalancerSecurityGroup');
    s.templates.service.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^fedcare coordinator'),
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443 })],
    });
  });

  it('stops a task in order: drained by the load balancer, then SIGTERM, the coordinator\'s drain, exit well before SIGKILL', () => {
    expect(container().StopTimeout).toBe(STOP_TIMEOUT.toSeconds());
    expect(STOP_TIMEOUT.toSeconds()).toBeGreaterThan(DRAIN_SECONDS + 15);
    expect(STOP_TIMEOUT.toSeconds()).toBeLessThanOrEqual(120); // Fargate's maximum
    expect(attributes(one(s.templates.service, 'AWS::ElasticLoadBalancingV2::TargetGroup'), 'TargetGroupAttributes')['deregistration_delay.timeout_seconds']).toBe(String(DEREGISTRATION_DELAY.toSeconds()));
  });
});

describe('load balancer', () => {
  it('is internet-facing in the public subnets, idle timeout ≥ 120 s for Socket.IO, drops invalid headers, logs access to the log bucket, deletion-protected', () => {
    const alb = one(s.templates.service, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(alb.Scheme).toBe('internet-facing');
    expect(text(alb.Subnets)).toMatch(/publicSubnet1.*publicSubnet2/);
    const a = attributes(alb, 'LoadBalancerAttributes');
    expect(Number(a['idle_timeout.timeout_seconds'])).toBeGreaterThanOrEqual(120);
    expect(a['routing.http.drop_invalid_header_fields.enabled']).toBe('true');
    expect(a['deletion_protection.enabled']).toBe('true');
    expect(a['access_logs.s3.enabled']).toBe('true');
    expect(a['access_logs.s3.bucket']).toContain('LogBucket');
  });

  it('serves HTTPS on 443 with the given certificate and a TLS 1.2+ policy that offers 1.3, and redirects 80 to 443', () => {
    const listeners = resourcesOf(s.templates.service, 'AWS::ElasticLoadBalancingV2::Listener').map(([, r]) => r.Properties);
    expect(listeners.map((l) => l.Port).sort()).toEqual([443, 80]);
    const https = listeners.find((l) => l.Port === 443)!;
    expect(https.Protocol).toBe('HTTPS');
    expect(https.Certificates).toEqual([{ CertificateArn: TEST_CONTEXT.certificateArn }]);
    expect(https.SslPolicy).toBe('ELBSecurityPolicy-TLS13-1-2-2021-06');
    const http = listeners.find((l) => l.Port === 80)!;
    expect(http.DefaultActions).toEqual([{ Type: 'redirect', RedirectConfig: { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' } }]);
  });

  it('checks /readyz, keeps a client on its task (stickiness for the polling fallback), and never forwards /metrics', () => {
    const tg = one(s.templates.service, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(tg).toMatchObject({ HealthCheckPath: '/readyz', Matcher: { HttpCode: '200' }, Port: 8080, Protocol: 'HTTP', TargetType: 'ip' });
    const a = attributes(tg, 'TargetGroupAttributes');
    expect([a['stickiness.enabled'], a['stickiness.type']]).toEqual(['true', 'lb_cookie']);
    s.templates.service.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/metrics', '/metrics/*'] } }],
      Actions: [Match.objectLike({ Type: 'fixed-response', FixedResponseConfig: Match.objectLike({ StatusCode: '404' }) })],
    });
  });

  it('has WAF in front of it by default: AWS managed common rules and a per-IP rate rule, logged with tokens redacted', () => {
    const acl = one(s.templates.service, 'AWS::WAFv2::WebACL');
    expect(acl.Scope).toBe('REGIONAL');
    const rules = acl.Rules as Json[];
    const managed = rules.find((r) => text(r.Statement).includes('AWSManagedRulesCommonRuleSet'))!;
    expect(managed.OverrideAction).toEqual({ None: {} });
    // Only the two rules that would break Socket.IO are counted rather than blocked.
    expect(((managed.Statement as Json).ManagedRuleGroupStatement as { RuleActionOverrides: { Name: string }[] }).RuleActionOverrides.map((o) => o.Name).sort()).toEqual(['NoUserAgent_HEADER', 'SizeRestrictions_BODY']);
    const rate = rules.find((r) => (r.Statement as Json).RateBasedStatement !== undefined)!;
    expect(rate.Action).toEqual({ Block: {} });
    expect((rate.Statement as { RateBasedStatement: Json }).RateBasedStatement).toMatchObject({ AggregateKeyType: 'IP' });
    expect(text(one(s.templates.service, 'AWS::WAFv2::WebACLAssociation').ResourceArn)).toContain('LoadBalancer');
    const logging = one(s.templates.service, 'AWS::WAFv2::LoggingConfiguration');
    expect(text(logging.RedactedFields)).toMatch(/authorization/);
    expect(text(logging.LogDestinationConfigs)).toMatch(/:log-group:",\{"Ref":"WafLogs\w+"\}/);
    s.templates.service.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: 'aws-waf-logs-fedcare', RetentionInDays: 365, KmsKeyId: Match.anyValue() });
  });

  it('has no WAF when waf=false, and no ECR permissions for an image from another registry', () => {
    noWaf.templates.service.resourceCountIs('AWS::WAFv2::WebACL', 0);
    noWaf.templates.service.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
    expect(text(noWaf.templates.service.toJSON())).not.toContain('ecr:');
    expect((one(noWaf.templates.service, 'AWS::ECS::TaskDefinition').ContainerDefinitions as Json[])[0]!.Image).toBe('ghcr.io/consortium/fedcare:1.0.0');
    noWaf.templates.monitoring.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('data (seed spec 5.1)', () => {
  it('has the aws store\'s three tables, exactly as it names them: on demand, PITR, KMS, deletion protection, retained', () => {
    const tables = resourcesOf(s.templates.data, 'AWS::DynamoDB::Table');
    const keys = Object.fromEntries(
      tables.map(([, r]) => {
        const p = r.Properties;
        const types = Object.fromEntries((p.AttributeDefinitions as { AttributeName: string; AttributeType: string }[]).map((a) => [a.AttributeName, a.AttributeType]));
        return [p.TableName as string, (p.KeySchema as { AttributeName: string; KeyType: string }[]).map((k) => `${k.AttributeName}(${types[k.AttributeName]}) ${k.KeyType}`)];
      }),
    );
    expect(keys).toEqual({
      'fedcare-fl-training-metadata': ['run_id(S) HASH', 'round_number(N) RANGE'],
      'fedcare-fl-client-status': ['client_id(S) HASH', 'timestamp(S) RANGE'],
      'fedcare-fl-coordinator': ['pk(S) HASH', 'sk(S) RANGE'],
    });
    for (const [id, r] of tables) {
      expect(r.Properties, id).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: expect.anything() },
        DeletionProtectionEnabled: true,
      });
      expect(text((r.Properties.SSESpecification as Json).KMSMasterKeyId)).toContain('Key');
      expect(r.DeletionPolicy, id).toBe('Retain');
    }
    const status = tables.find(([, r]) => r.Properties.TableName === 'fedcare-fl-client-status')![1].Properties;
    expect(status.TimeToLiveSpecification).toEqual({ AttributeName: 'expires_at', Enabled: true });
    expect(tables.filter(([, r]) => r.Properties.TimeToLiveSpecification !== undefined)).toHaveLength(1);
  });

  it('backs the tables up with AWS Backup into a KMS-encrypted vault', () => {
    const selection = one(s.templates.data, 'AWS::Backup::BackupSelection').BackupSelection as Json;
    expect(text(selection.Resources).match(/Tablefl\w+/g)).toHaveLength(3);
    expect(one(s.templates.data, 'AWS::Backup::BackupVault').EncryptionKeyArn).toBeDefined();
  });

  it('has models and artifacts buckets — versioned, KMS-encrypted, public access blocked, SSL-only, access-logged — and no per-hospital data bucket', () => {
    const buckets = resourcesOf(s.templates.data, 'AWS::S3::Bucket');
    expect(buckets.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['ArtifactsBucket', 'LogBucket', 'ModelsBucket']);
    for (const [id, r] of buckets) {
      const p = r.Properties;
      expect(p.VersioningConfiguration, id).toEqual({ Status: 'Enabled' });
      expect(p.PublicAccessBlockConfiguration, id).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      expect(r.DeletionPolicy, id).toBe('Retain');
      const sse = ((p.BucketEncryption as { ServerSideEncryptionConfiguration: Json[] }).ServerSideEncryptionConfiguration[0]! as { ServerSideEncryptionByDefault: Json }).ServerSideEncryptionByDefault;
      if (id.startsWith('LogBucket')) {
        // Server access logs and ALB access logs are only delivered to SSE-S3 buckets.
        expect(sse.SSEAlgorithm).toBe('AES256');
      } else {
        expect(sse.SSEAlgorithm, id).toBe('aws:kms');
        expect(text(sse.KMSMasterKeyID)).toContain('Key');
        expect(text((p.LoggingConfiguration as Json).DestinationBucketName)).toContain('LogBucket');
      }
    }
    // SSL-only (and TLS ≥ 1.2) bucket policies on all three.
    const denies = policyStatements(s.templates.data).filter((x) => x.type === 'AWS::S3::BucketPolicy' && x.statement.Effect === 'Deny');
    expect(denies.filter((x) => x.statement.Condition?.Bool !== undefined).map((x) => text(x.statement.Resource).match(/(\w+Bucket)[0-9A-F]{8}/)?.[1]).sort()).toEqual(['ArtifactsBucket', 'LogBucket', 'ModelsBucket']);
  });

  it('moves model objects to infrequent access after 90 days and expires them after 365; artifacts never expire', () => {
    const models = resourcesOf(s.templates.data, 'AWS::S3::Bucket').find(([id]) => id.startsWith('ModelsBucket'))![1].Properties;
    const rules = (models.LifecycleConfiguration as { Rules: Json[] }).Rules;
    expect(rules.find((r) => r.ExpirationInDays !== undefined)).toMatchObject({ Status: 'Enabled', ExpirationInDays: 365, Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 90 }] });
    const artifacts = resourcesOf(s.templates.data, 'AWS::S3::Bucket').find(([id]) => id.startsWith('ArtifactsBucket'))![1].Properties;
    expect(artifacts.LifecycleConfiguration).toBeUndefined();
  });

  it('encrypts with one customer-managed key with rotation, retained, which CloudWatch Logs and alarm notifications may use', () => {
    const [[, key]] = resourcesOf(s.templates.data, 'AWS::KMS::Key') as [[string, { Properties: Json; DeletionPolicy?: string }]];
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    const principals = policyStatements(s.templates.data).filter((x) => x.type === 'AWS::KMS::Key').map((x) => text(x.statement.Principal));
    expect(principals.some((p) => p.includes('logs.eu-central-1.amazonaws.com'))).toBe(true);
    expect(principals.some((p) => p.includes('cloudwatch.amazonaws.com'))).toBe(true);
    s.templates.data.hasResourceProperties('AWS::SecretsManager::Secret', { KmsKeyId: Match.anyValue() });
  });
});

describe('monitoring (seed spec 6.3)', () => {
  const alarms = () => resourcesOf(s.templates.monitoring, 'AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);

  it('has a KMS-encrypted, SSL-only alarm topic with the given e-mail subscribed', () => {
    expect(text(one(s.templates.monitoring, 'AWS::SNS::Topic').KmsMasterKeyId)).toContain('Key');
    s.templates.monitoring.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'fl-ops@consortium.example' });
    const deny = policyStatements(s.templates.monitoring).find((x) => x.type === 'AWS::SNS::TopicPolicy' && x.statement.Effect === 'Deny')!;
    expect(deny.statement.Condition).toEqual({ Bool: { 'aws:SecureTransport': 'false' } });
  });

  it('has the four seed alarms, ECS CPU and memory, load balancer 5xx and healthy-target alarms, each notifying the topic', () => {
    expect(alarms().map((a) => a.AlarmName).sort()).toEqual(
      ['alb-elb-5xx', 'alb-target-5xx', 'client_dropout', 'ecs-cpu-high', 'ecs-memory-high', 'low_accuracy', 'no-healthy-coordinator', 'privacy_budget_exceeded', 'training_failures'].map((n) => `fedcare-staging-${n}`),
    );
    for (const a of alarms()) {
      expect(text(a.AlarmActions), String(a.AlarmName)).toContain('AlarmTopic');
      expect(a.ActionsEnabled ?? true).toBe(true);
    }
    const byName = (n: string) => alarms().find((a) => a.AlarmName === `fedcare-staging-${n}`)!;
    expect(byName('ecs-cpu-high')).toMatchObject({ Namespace: 'AWS/ECS', MetricName: 'CPUUtilization', Threshold: 80 });
    expect(byName('ecs-memory-high')).toMatchObject({ Namespace: 'AWS/ECS', MetricName: 'MemoryUtilization', Threshold: 80 });
    expect(text(byName('ecs-cpu-high').Dimensions)).toMatch(/ClusterName.*ServiceName/);
    expect(byName('alb-elb-5xx')).toMatchObject({ Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_ELB_5XX_Count', Statistic: 'Sum' });
    expect(byName('alb-target-5xx')).toMatchObject({ Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_Target_5XX_Count', Statistic: 'Sum' });
  });

  it('has a dashboard with the six seed spec 6.2 metrics', () => {
    const body = text(one(s.templates.monitoring, 'AWS::CloudWatch::Dashboard').DashboardBody);
    for (const m of ['TrainingRound', 'GlobalModelAccuracy', 'ActiveClients', 'PrivacyBudget', 'ModelSize', 'CommunicationOverhead']) {
      expect(body).toContain(`[\\"FederatedLearning\\",\\"${m}\\"`);
    }
  });
});

describe('IAM', () => {
  const all = () => (['data', 'network', 'service', 'monitoring'] as const).flatMap((n) => policyStatements(s.templates[n]).map((x) => ({ ...x, stack: n })));
  const allows = (st: Statement) => st.Effect === 'Allow';

  it('has no statement anywhere that allows * on *', () => {
    const offenders = all().filter((x) => allows(x.statement) && list(x.statement.Action).includes('*') && list(x.statement.Resource as unknown[] | undefined).includes('*'));
    expect(offenders).toEqual([]);
    expect(all().filter((x) => x.statement.NotAction !== undefined && allows(x.statement))).toEqual([]);
  });

  it('gives identities no service-wide action, and "*" as a resource only to ecr:GetAuthorizationToken', () => {
    const identity = all().filter((x) => x.kind === 'identity' && allows(x.statement));
    expect(identity.length).toBeGreaterThan(5);
    for (const x of identity) {
      expect(list(x.statement.Action).filter((a) => a === '*' || a.endsWith(':*')), `${x.stack} ${x.resource}`).toEqual([]);
      if (list(x.statement.Resource as unknown[]).includes('*')) expect(x.statement.Action, `${x.stack} ${x.resource}`).toBe('ecr:GetAuthorizationToken');
    }
  });

  it('lets the coordinator use its three tables and its bucket\'s models/, state/ and feature-stats/ prefixes, and nothing else', () => {
    const statements = policyStatements(s.templates.data).filter((x) => x.resource.startsWith('CoordinatorDataAccess')).map((x) => x.statement);
    const bySid = Object.fromEntries(statements.map((st) => [st.Sid, st]));
    expect(Object.keys(bySid).sort()).toEqual(['Bucket', 'DataKey', 'Objects', 'Tables']);
    expect(list(bySid.Tables!.Action).sort()).toEqual(['dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:DeleteItem', 'dynamodb:DescribeTable', 'dynamodb:DescribeTimeToLive', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(text(bySid.Tables!.Resource).match(/Tablefl\w+/g)).toHaveLength(3);
    expect(list(bySid.Objects!.Action).sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
    expect(list(bySid.Objects!.Resource as unknown[]).map((r) => text(r).match(/\/([\w-]+)\/\*/)?.[1])).toEqual(['models', 'state', 'feature-stats']);
    expect(text(bySid.Objects!.Resource)).toContain('ModelsBucket');
    expect(text(bySid.Bucket!.Resource)).not.toContain('/');
    expect(bySid.DataKey!.Condition).toEqual({ StringEquals: { 'kms:ViaService': ['s3.eu-central-1.amazonaws.com', 'dynamodb.eu-central-1.amazonaws.com'] } });
    // Not the artifacts bucket, not the secret, no CreateTable, no metric API.
    const everything = text(statements);
    for (const absent of ['ArtifactsBucket', 'CoordinatorTokens', 'secretsmanager', 'CreateTable', 'cloudwatch:']) expect(everything).not.toContain(absent);
    // The task role has that policy and nothing else.
    const role = resourcesOf(s.templates.service, 'AWS::IAM::Role').find(([id]) => id.startsWith('TaskRole'))![1].Properties;
    expect(role.Policies).toBeUndefined();
    expect(text(role.ManagedPolicyArns)).toMatch(/^\[\{"Fn::ImportValue":"FedcareData:ExportsOutputRefCoordinatorDataAccess\w+"\}\]$/);
    expect(text(role.AssumeRolePolicyDocument)).toContain('aws:SourceAccount');
  });

  it('lets the ECS agent pull the one image, write the one log group and read the one secret', () => {
    const statements = policyStatements(s.templates.service).filter((x) => x.resource.startsWith('ExecutionPolicy')).map((x) => x.statement);
    const bySid = Object.fromEntries(statements.map((st) => [st.Sid, st]));
    expect(Object.keys(bySid).sort()).toEqual(['DecryptTokens', 'EcrLogin', 'PullImage', 'ReadTokens', 'WriteLogStream']);
    expect(text(bySid.PullImage!.Resource)).toContain(':ecr:eu-central-1:123456789012:repository/fedcare');
    expect(text(bySid.ReadTokens!.Resource)).toContain('CoordinatorTokens');
    expect(text(bySid.WriteLogStream!.Resource)).toContain('CoordinatorLogs');
    expect(bySid.DecryptTokens!.Condition).toEqual({ StringEquals: { 'kms:ViaService': 'secretsmanager.eu-central-1.amazonaws.com' } });
    // No inline policies on the service's roles (HIPAA.Security-IAMNoInlinePolicy).
    expect(resourcesOf(s.templates.service, 'AWS::IAM::Policy')).toEqual([]);
  });
});
