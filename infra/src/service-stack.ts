/**
 * Service: the coordinator (`fedcare serve --store aws`) as one ECS Fargate task behind an
 * internet-facing Application Load Balancer with TLS, optional AWS WAF, and least-privilege roles.
 */
import { Annotations, ArnFormat, CfnOutput, Duration, RemovalPolicy, Size, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Peer, Port, SecurityGroup, SubnetType, type IVpc } from 'aws-cdk-lib/aws-ec2';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import {
  AwsLogDriverMode,
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  FargatePlatformVersion,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  PropagatedTagSource,
  Secret as EcsSecret,
} from 'aws-cdk-lib/aws-ecs';
import {
  ApplicationLoadBalancer,
  ApplicationProtocol,
  ApplicationTargetGroup,
  ListenerAction,
  ListenerCertificate,
  ListenerCondition,
  SslPolicy,
  TargetType,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal, type IManagedPolicy } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret as SmSecret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { CfnLoggingConfiguration, CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import type { Construct } from 'constructs';
import { parseEcrUri, type FedcareConfig } from './config';
import { SECRET_KEYS, TABLE_PREFIX } from './data-stack';

/** The coordinator's port (PORT; the image's EXPOSE). */
export const CONTAINER_PORT = 8080;
/** Seed spec 5.1 FL_Server: 2 vCPU, 4 GB. */
export const TASK_CPU = 2048;
export const TASK_MEMORY_MIB = 4096;
/**
 * Stopping a task: ECS first deregisters it and lets the load balancer drain it for
 * DEREGISTRATION_DELAY (open Socket.IO connections keep working, so a round in flight can finish),
 * then sends SIGTERM. The coordinator answers /readyz 503 for DRAIN_SECONDS, interrupts its run
 * (stored, resumed by the next task) and exits 0 well within STOP_TIMEOUT, after which ECS would
 * SIGKILL it.
 */
export const DEREGISTRATION_DELAY = Duration.seconds(30);
export const DRAIN_SECONDS = 10;
export const STOP_TIMEOUT = Duration.seconds(60);
/** Socket.IO pings every 25 s; the ALB must not close an idle connection sooner than a few of them. */
export const IDLE_TIMEOUT = Duration.seconds(120);
/** WAF's rate rule: requests per client IP per 5 minutes (all of a hospital's machines behind one NAT share it). */
export const WAF_RATE_LIMIT = 3000;

export interface ServiceStackProps extends StackProps {
  readonly config: FedcareConfig;
  readonly vpc: IVpc;
  readonly key: IKey;
  readonly modelsBucket: IBucket;
  readonly logBucket: IBucket;
  readonly tokens: ISecret;
  /** The task role's one policy (DataStack.coordinatorAccess). */
  readonly coordinatorAccess: IManagedPolicy;
}

export class ServiceStack extends Stack {
  readonly cluster: Cluster;
  readonly service: FargateService;
  readonly loadBalancer: ApplicationLoadBalancer;
  readonly targetGroup: ApplicationTargetGroup;
  readonly taskRole: Role;
  readonly executionRole: Role;
  readonly logGroup: LogGroup;
  readonly webAcl?: CfnWebACL;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { config, vpc, key } = props;

    this.cluster = new Cluster(this, 'Cluster', { vpc, containerInsightsV2: ContainerInsights.ENABLED });

    this.logGroup = new LogGroup(this, 'CoordinatorLogs', {
      logGroupName: '/fedcare/coordinator',
      encryptionKey: key,
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- roles: each with one customer-managed policy that names exactly what it may do ----------

    const image = this.containerImage(config);
    const execution = new ManagedPolicy(this, 'ExecutionPolicy', {
      description: 'fedcare coordinator (ECS task execution role): pull its image, write its log stream, read its token secret',
      statements: [
        ...(image.repositoryArn
          ? [
              new PolicyStatement({ sid: 'EcrLogin', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
              new PolicyStatement({ sid: 'PullImage', actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], resources: [image.repositoryArn] }),
            ]
          : []),
        new PolicyStatement({ sid: 'WriteLogStream', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }),
        new PolicyStatement({ sid: 'ReadTokens', actions: ['secretsmanager:GetSecretValue'], resources: [props.tokens.secretArn] }),
        new PolicyStatement({
          sid: 'DecryptTokens',
          actions: ['kms:Decrypt'],
          resources: [key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
        }),
      ],
    });
    // Attached when the role is created, so no task starts before its permissions exist.
    this.executionRole = new Role(this, 'ExecutionRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'ECS agent for the fedcare coordinator: pull its image, write its log stream, read its token secret',
      managedPolicies: [execution],
    });
    if (image.repositoryArn) {
      Validations.of(execution).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ecr:GetAuthorizationToken has no resource-level permissions (it returns a registry login); the image layers themselves are read from the one repository only.',
      });
    }

    // The coordinator's own permissions are the data stack's CoordinatorDataAccess policy (next to
    // the tables and the bucket it names), attached here and nothing else.
    this.taskRole = new Role(this, 'TaskRole', {
      // Only ECS tasks of this account and region may assume it (confused-deputy conditions).
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': `arn:${this.partition}:ecs:${this.region}:${this.account}:*` },
        },
      }),
      description: 'The fedcare coordinator: its DynamoDB tables and the key prefixes of its S3 bucket, nothing else',
      managedPolicies: [props.coordinatorAccess],
    });

    // ---- task definition ----------------------------------------------------------------------

    const taskDefinition = new FargateTaskDefinition(this, 'CoordinatorTask', {
      cpu: TASK_CPU,
      memoryLimitMiB: TASK_MEMORY_MIB,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.X86_64, operatingSystemFamily: OperatingSystemFamily.LINUX },
      taskRole: this.taskRole,
      // The managed policy above is all it gets: CDK's own grants for the image, the log group and
      // the secrets (an inline policy each) are left out rather than duplicated.
      executionRole: this.executionRole.withoutPolicyUpdates(),
    });
    const environment: Record<string, string> = {
      PORT: String(CONTAINER_PORT),
      FEDCARE_S3_BUCKET: props.modelsBucket.bucketName,
      FEDCARE_DYNAMODB_TABLE_PREFIX: TABLE_PREFIX,
      AWS_REGION: this.region,
      FEDCARE_CLOUDWATCH_EMF: '1',
      FEDCARE_DEPLOYMENT: config.deployment,
      FEDCARE_DRAIN_SECONDS: String(DRAIN_SECONDS),
      FEDCARE_LOG_LEVEL: 'info',
    };
    if (config.allowedOrigins.length > 0) environment.FEDCARE_ALLOWED_ORIGINS = config.allowedOrigins.join(',');
    // Referenced by ARN: the execution policy above already grants the read (and the key's decrypt
    // via Secrets Manager); CDK's grant on the secret object would write the data stack's key policy.
    const tokens = SmSecret.fromSecretCompleteArn(this, 'Tokens', props.tokens.secretArn);
    const secrets = Object.fromEntries(Object.entries(SECRET_KEYS).map(([variable, field]) => [variable, EcsSecret.fromSecretsManager(tokens, field)]));
    taskDefinition.addContainer('coordinator', {
      image: image.image,
      command: ['serve', '--store', 'aws'],
      environment,
      secrets,
      portMappings: [{ containerPort: CONTAINER_PORT, name: 'http' }],
      stopTimeout: STOP_TIMEOUT,
      // One EMF record per round rides in this stream; non-blocking so that a CloudWatch Logs
      // hiccup never stalls the round engine (25 MB of buffer holds far more than a round's lines).
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'coordinator', mode: AwsLogDriverMode.NON_BLOCKING, maxBufferSize: Size.mebibytes(25) }),
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds configuration only (bucket name, table prefix, region, EMF on, deployment name, drain seconds, allowed origins); every token comes from Secrets Manager through `secrets`.',
    });

    // ---- service ------------------------------------------------------------------------------

    const serviceSg = new SecurityGroup(this, 'CoordinatorSecurityGroup', { vpc, allowAllOutbound: false, description: 'fedcare coordinator: 8080 from the load balancer; HTTPS out' });
    serviceSg.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS: AWS APIs through the VPC endpoints, else through the NAT gateway');

    this.service = new FargateService(this, 'Coordinator', {
      cluster: this.cluster,
      taskDefinition,
      // One coordinator: the round engine is single-writer (one running run, committed by one
      // process) until a later issue adds replicas. Minimum healthy 0 % / maximum 100 %: a
      // deployment stops the old task before starting the new one, so two coordinators never
      // drive one run; the new one resumes the interrupted run from the store.
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      securityGroups: [serviceSg],
      platformVersion: FargatePlatformVersion.LATEST,
      // Opening the store and resuming an interrupted run happen before /readyz answers 200.
      healthCheckGracePeriod: Duration.seconds(120),
      enableECSManagedTags: true,
      propagateTags: PropagatedTagSource.SERVICE,
      enableExecuteCommand: false,
    });

    // ---- load balancer ------------------------------------------------------------------------

    const albSg = new SecurityGroup(this, 'LoadBalancerSecurityGroup', { vpc, allowAllOutbound: false, description: 'fedcare load balancer: HTTPS (and HTTP, redirected) from anywhere; to the coordinator only' });
    this.loadBalancer = new ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroup: albSg,
      idleTimeout: IDLE_TIMEOUT,
      dropInvalidHeaderFields: true,
      deletionProtection: true,
      http2Enabled: true,
    });
    this.loadBalancer.logAccessLogs(props.logBucket, 'alb');
    Validations.of(albSg).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: `The hospitals' portals and headless clients reach the coordinator from the internet on 443 (80 only redirects to 443); ${config.waf ? 'WAF filters the requests, and ' : ''}the tasks accept traffic from this security group only.`,
    });

    this.targetGroup = new ApplicationTargetGroup(this, 'CoordinatorTargets', {
      vpc,
      port: CONTAINER_PORT,
      protocol: ApplicationProtocol.HTTP,
      targetType: TargetType.IP,
      healthCheck: { path: '/readyz', healthyHttpCodes: '200', interval: Duration.seconds(15), timeout: Duration.seconds(5), healthyThresholdCount: 2, unhealthyThresholdCount: 3 },
      // Socket.IO's HTTP long-polling fallback must reach the task that holds its session.
      stickinessCookieDuration: Duration.days(1),
      deregistrationDelay: DEREGISTRATION_DELAY,
    });
    this.service.attachToApplicationTargetGroup(this.targetGroup);

    const https = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: ApplicationProtocol.HTTPS,
      certificates: [ListenerCertificate.fromArn(config.certificateArn)],
      // TLS 1.2 and 1.3 only (ELBSecurityPolicy-TLS13-1-2-2021-06).
      sslPolicy: SslPolicy.RECOMMENDED_TLS,
      defaultTargetGroups: [this.targetGroup],
      open: true,
    });
    // Prometheus /metrics is for a scraper inside the VPC, never the internet (FEDCARE_METRICS_TOKEN
    // guards it as well once set).
    https.addAction('NoPublicMetrics', {
      priority: 10,
      conditions: [ListenerCondition.pathPatterns(['/metrics', '/metrics/*'])],
      action: ListenerAction.fixedResponse(404, { contentType: 'text/plain', messageBody: 'not found' }),
    });
    const redirect = this.loadBalancer.addRedirect({ sourcePort: 80, sourceProtocol: ApplicationProtocol.HTTP, targetPort: 443, targetProtocol: ApplicationProtocol.HTTPS });
    Validations.of(redirect).acknowledge({
      id: 'HIPAA.Security-ELBv2ACMCertificateRequired',
      reason: 'Port 80 only answers every request with a redirect to HTTPS on 443 (HIPAA.Security-ALBHttpToHttpsRedirection); it forwards nothing, so it has no certificate to carry.',
    });

    if (config.certificatePlaceholder) {
      Annotations.of(this).addWarningV2('fedcare:certificate-placeholder', 'No certificateArn given: the HTTPS listener names a placeholder certificate; synth works, a deploy fails. Pass -c certificateArn=arn:aws:acm:…');
    }

    if (config.waf) this.webAcl = this.addWaf(key);

    // For the README's commands (DNS, smoke test, token rotation, teardown).
    new CfnOutput(this, 'LoadBalancerDnsName', { value: this.loadBalancer.loadBalancerDnsName, description: 'Point the certificate\'s name here (CNAME or alias record)' });
    new CfnOutput(this, 'LoadBalancerArn', { value: this.loadBalancer.loadBalancerArn });
    new CfnOutput(this, 'ClusterName', { value: this.cluster.clusterName });
    new CfnOutput(this, 'ServiceName', { value: this.service.serviceName });
  }

  /** The image and, for a private ECR image, its repository's ARN (the execution role may pull from it only). */
  private containerImage(config: FedcareConfig): { image: ContainerImage; repositoryArn?: string } {
    if (config.image.kind === 'ecr') {
      const repository = Repository.fromRepositoryName(this, 'Repository', config.image.repositoryName);
      return { image: ContainerImage.fromEcrRepository(repository, config.image.tag), repositoryArn: repository.repositoryArn };
    }
    const ecr = parseEcrUri(config.image.uri);
    if (!ecr) return { image: ContainerImage.fromRegistry(config.image.uri) };
    const repositoryArn = `arn:${this.partition}:ecr:${ecr.region}:${ecr.account}:repository/${ecr.repositoryName}`;
    const repository = Repository.fromRepositoryAttributes(this, 'Repository', { repositoryName: ecr.repositoryName, repositoryArn });
    return { image: ContainerImage.fromEcrRepository(repository, ecr.tagOrDigest), repositoryArn };
  }

  private addWaf(key: IKey): CfnWebACL {
    const visibility = (name: string) => ({ metricName: name, cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true });
    const acl = new CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('fedcare-web-acl'),
      rules: [
        {
          name: 'aws-common-rules',
          priority: 0,
          overrideAction: { none: {} },
          statement: {
            managedRuleGroupStatement: {
              vendorName: 'AWS',
              name: 'AWSManagedRulesCommonRuleSet',
              // Counted, not blocked: model updates (MBs) over Socket.IO's HTTP polling fallback
              // exceed the 8 KB body limit, and the headless hospitals' WebSocket upgrade (Node's
              // ws) sends no User-Agent. Every other rule of the set blocks.
              ruleActionOverrides: [
                { name: 'SizeRestrictions_BODY', actionToUse: { count: {} } },
                { name: 'NoUserAgent_HEADER', actionToUse: { count: {} } },
              ],
            },
          },
          visibilityConfig: visibility('fedcare-aws-common-rules'),
        },
        {
          name: 'rate-per-ip',
          priority: 1,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: WAF_RATE_LIMIT, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
          visibilityConfig: visibility('fedcare-rate-per-ip'),
        },
      ],
    });
    new CfnWebACLAssociation(this, 'WebAclLoadBalancer', { resourceArn: this.loadBalancer.loadBalancerArn, webAclArn: acl.attrArn });

    // WAF writes only to log groups named aws-waf-logs-*; bearer tokens and cookies are redacted.
    const wafLogs = new LogGroup(this, 'WafLogs', { logGroupName: 'aws-waf-logs-fedcare', encryptionKey: key, retention: RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    new CfnLoggingConfiguration(this, 'WafLogging', {
      resourceArn: acl.attrArn,
      logDestinationConfigs: [this.formatArn({ service: 'logs', resource: 'log-group', resourceName: wafLogs.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      redactedFields: [{ singleHeader: { Name: 'authorization' } }, { singleHeader: { Name: 'cookie' } }],
    });
    return acl;
  }
}
