/**
 * Data (seed spec 5.1): the customer-managed key, the coordinator's S3 buckets and DynamoDB tables,
 * its token secret, a log bucket, and an AWS Backup plan for the tables. Everything that holds data
 * is retained when the stack is deleted (buckets, tables, key, backup vault).
 *
 * The seed's per-hospital data buckets (fl-demo-data-hospital-N) are deliberately not created:
 * in this design patient records never leave a hospital — each hospital trains in its own browser
 * or machine and sends only (noised, masked or encrypted) model updates.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { BackupPlan, BackupPlanRule, BackupResource, BackupVault } from 'aws-cdk-lib/aws-backup';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, StorageClass, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

/** The aws store's table names after its prefix (apps/server/src/store/aws.ts, AWS_TABLES and KEY_SCHEMAS). */
export const TABLE_PREFIX = 'fedcare-';
export const TABLES = {
  trainingMetadata: { name: 'fl-training-metadata', partitionKey: { name: 'run_id', type: AttributeType.STRING }, sortKey: { name: 'round_number', type: AttributeType.NUMBER } },
  clientStatus: { name: 'fl-client-status', partitionKey: { name: 'client_id', type: AttributeType.STRING }, sortKey: { name: 'timestamp', type: AttributeType.STRING } },
  coordinator: { name: 'fl-coordinator', partitionKey: { name: 'pk', type: AttributeType.STRING }, sortKey: { name: 'sk', type: AttributeType.STRING } },
} as const;
export type TableRole = keyof typeof TABLES;
/** fl-client-status items carry their expiry (epoch seconds, 7 days after the commit) here. */
export const CLIENT_STATUS_TTL_ATTRIBUTE = 'expires_at';

/** Where the VPC flow logs go in the log bucket (the network stack's flow log names it). */
export const FLOW_LOGS_PREFIX = 'vpc-flow-logs/';

/** The S3 key prefixes the aws store writes in its bucket (models/, state/, feature-stats/). */
export const MODEL_BUCKET_PREFIXES = ['models', 'state', 'feature-stats'] as const;

/** The JSON keys of the token secret, each one environment variable of the coordinator. */
export const SECRET_KEYS = {
  FEDCARE_ADMIN_TOKEN: 'admin_token',
  FEDCARE_HOSPITAL_TOKENS: 'hospital_tokens',
  FEDCARE_METRICS_TOKEN: 'metrics_token',
} as const;

export class DataStack extends Stack {
  /** Encrypts the buckets of data, the tables, the secret, the log groups, the alarm topic and the backups. */
  readonly key: Key;
  /** FEDCARE_S3_BUCKET: model weights, strategy state, feature statistics. */
  readonly modelsBucket: Bucket;
  /** Exported models and reports kept beyond the models bucket's 365 days (operators' use; the coordinator has no access). */
  readonly artifactsBucket: Bucket;
  /** Server access logs of the buckets above, ALB access logs, VPC flow logs. */
  readonly logBucket: Bucket;
  readonly tables: Readonly<Record<TableRole, Table>>;
  /** The coordinator's tokens, one JSON key per variable (SECRET_KEYS). */
  readonly tokens: Secret;
  /** Everything the coordinator's task role may do with this stack's data; the service stack attaches it. */
  readonly coordinatorAccess: ManagedPolicy;

  constructor(scope: Construct, id: string, props: StackProps) {
    super(scope, id, props);

    this.key = new Key(this, 'Key', {
      alias: 'alias/fedcare',
      description: 'fedcare: S3 models and artifacts, DynamoDB tables, the token secret, CloudWatch log groups, the alarm topic, backups',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts the coordinator's, the flow logs' and WAF's log groups of this account and region.
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccount',
        principals: [new ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${this.partition}:logs:${this.region}:${this.account}:log-group:*` } },
      }),
    );
    // CloudWatch alarms publish to the KMS-encrypted alarm topic (without this, notifications are silently dropped).
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsToEncryptedTopic',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    this.logBucket = new Bucket(this, 'LogBucket', {
      // S3 server access logs and ALB access logs can only be delivered to SSE-S3 buckets.
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      lifecycleRules: [
        { id: 'logs-ia-then-expire', transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }], expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // VPC flow logs (log delivery, for this account's flow logs only). Written here because this
    // stack owns the bucket policy: the statements EC2 would add when the flow log is created would
    // be lost on the next deployment of this stack.
    const logDelivery = new ServicePrincipal('delivery.logs.amazonaws.com');
    const thisAccountsLogs = { 'aws:SourceArn': `arn:${this.partition}:logs:${this.region}:${this.account}:*` };
    this.logBucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'FlowLogsWrite',
        principals: [logDelivery],
        actions: ['s3:PutObject'],
        resources: [this.logBucket.arnForObjects(`${FLOW_LOGS_PREFIX}AWSLogs/${this.account}/*`)],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account, 's3:x-amz-acl': 'bucket-owner-full-control' }, ArnLike: thisAccountsLogs },
      }),
    );
    this.logBucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'FlowLogsAclCheck',
        principals: [logDelivery],
        actions: ['s3:GetBucketAcl', 's3:ListBucket'],
        resources: [this.logBucket.bucketArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account }, ArnLike: thisAccountsLogs },
      }),
    );
    Validations.of(this.logBucket).acknowledge(
      { id: 'HIPAA.Security-S3DefaultEncryptionKMS', reason: 'S3 server access logs and ALB access logs are delivered only to buckets with SSE-S3 (AES-256) default encryption, not SSE-KMS; the logs hold no patient data.' },
      { id: 'HIPAA.Security-S3BucketReplicationEnabled', reason: 'Operational logs of a single-region deployment: versioned and retained on stack deletion; cross-region replication is not needed for them.' },
    );

    // What both data buckets share: KMS with the one key, no public access, no ACLs, TLS ≥ 1.2 only,
    // versioned, access-logged, retained when the stack goes.
    const dataBucket = (prefix: string) =>
      ({
        encryption: BucketEncryption.KMS,
        encryptionKey: this.key,
        bucketKeyEnabled: true,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        versioned: true,
        serverAccessLogsBucket: this.logBucket,
        serverAccessLogsPrefix: prefix,
        removalPolicy: RemovalPolicy.RETAIN,
      }) as const;

    this.modelsBucket = new Bucket(this, 'ModelsBucket', {
      ...dataBucket('s3/models/'),
      // Seed spec 5.1 fl-demo-models: infrequent access after 90 days, expire after 365. A run's
      // weights (its best round included) are gone a year after they were written: copy a model
      // that must live longer to the artifacts bucket. Superseded weights the coordinator deletes
      // stay as noncurrent versions for 30 days (recoverable), then go.
      lifecycleRules: [
        {
          id: 'models-ia-then-expire',
          transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(90) }],
          expiration: Duration.days(365),
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
        { id: 'expired-delete-markers', expiredObjectDeleteMarker: true },
      ],
    });

    // Seed spec 5.1 fl-demo-artifacts: encryption and nothing else, so no lifecycle: kept until deleted.
    this.artifactsBucket = new Bucket(this, 'ArtifactsBucket', dataBucket('s3/artifacts/'));
    for (const bucket of [this.modelsBucket, this.artifactsBucket]) {
      Validations.of(bucket).acknowledge({
        id: 'HIPAA.Security-S3BucketReplicationEnabled',
        reason: 'Single-region deployment: objects are versioned (deleted or overwritten ones recoverable), the bucket is retained on stack deletion, and the records that index them are in DynamoDB with PITR and AWS Backup; no patient data is stored.',
      });
    }

    const tables: Partial<Record<TableRole, Table>> = {};
    for (const role of Object.keys(TABLES) as TableRole[]) {
      const spec = TABLES[role];
      tables[role] = new Table(this, `Table-${spec.name}`, {
        tableName: `${TABLE_PREFIX}${spec.name}`,
        partitionKey: spec.partitionKey,
        sortKey: spec.sortKey,
        billingMode: BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: this.key,
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
        ...(role === 'clientStatus' ? { timeToLiveAttribute: CLIENT_STATUS_TTL_ATTRIBUTE } : {}),
      });
    }
    this.tables = tables as Record<TableRole, Table>;

    // Daily backups kept 35 days and monthly ones kept a year, in a vault encrypted with the key:
    // copies outside the tables themselves (PITR restores into new tables only for 35 days).
    const vault = new BackupVault(this, 'BackupVault', { encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
    const plan = new BackupPlan(this, 'BackupPlan', {
      backupVault: vault,
      backupPlanRules: [BackupPlanRule.daily(), BackupPlanRule.monthly1Year()],
    });
    const selection = plan.addSelection('Tables', {
      resources: Object.values(this.tables).map((t) => BackupResource.fromDynamoDbTable(t)),
    });
    // The selection's role has AWS's managed backup policy; acknowledged on that role alone.
    Validations.of(selection.node.findChild('Role')).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
      reason: 'AWS Backup\'s own service-role policy, maintained by AWS for the backup service; the role is assumable by backup.amazonaws.com only.',
    });

    this.coordinatorAccess = this.coordinatorAccessPolicy();

    this.tokens = new Secret(this, 'CoordinatorTokens', {
      description: 'fedcare coordinator tokens: admin_token (FEDCARE_ADMIN_TOKEN), hospital_tokens ("H1:token,H2:token"; FEDCARE_HOSPITAL_TOKENS), metrics_token (FEDCARE_METRICS_TOKEN). Set with `aws secretsmanager put-secret-value`, then redeploy the service.',
      encryptionKey: this.key,
      // Every key the task definition names must exist or the task does not start; an empty value
      // is "not set" for the coordinator. The admin token is generated; put the rest.
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ [SECRET_KEYS.FEDCARE_HOSPITAL_TOKENS]: '', [SECRET_KEYS.FEDCARE_METRICS_TOKEN]: '' }),
        generateStringKey: SECRET_KEYS.FEDCARE_ADMIN_TOKEN,
        passwordLength: 48,
        excludePunctuation: true,
      },
    });
    new CfnOutput(this, 'TokensSecretArn', { value: this.tokens.secretArn, description: 'put-secret-value here: {"admin_token","hospital_tokens","metrics_token"}' });
    new CfnOutput(this, 'ModelsBucketName', { value: this.modelsBucket.bucketName });
    new CfnOutput(this, 'ArtifactsBucketName', { value: this.artifactsBucket.bucketName });
    new CfnOutput(this, 'LogBucketName', { value: this.logBucket.bucketName });

    Validations.of(this.tokens).acknowledge(
      { id: 'AwsSolutions-SMG4', reason: 'The tokens are shared with hospitals out of band (each hospital holds its own); a rotation Lambda cannot hand a new token to a hospital, so rotation is an operator step: put-secret-value, then force a new deployment (README "Deploy on AWS").' },
      { id: 'HIPAA.Security-SecretsManagerRotationEnabled', reason: 'The tokens are shared with hospitals out of band (each hospital holds its own); a rotation Lambda cannot hand a new token to a hospital, so rotation is an operator step: put-secret-value, then force a new deployment (README "Deploy on AWS").' },
    );
  }

  /**
   * The coordinator's task policy: what apps/server/src/store/aws.ts calls, on its own tables and
   * the key prefixes it writes, nothing else. No cloudwatch:PutMetricData: the metrics travel as
   * EMF in the log stream, which the execution role writes.
   */
  private coordinatorAccessPolicy(): ManagedPolicy {
    const policy = new ManagedPolicy(this, 'CoordinatorDataAccess', {
      description: 'fedcare coordinator (ECS task role): its DynamoDB tables, the models/, state/ and feature-stats/ prefixes of its bucket, the data key through S3 and DynamoDB',
      statements: [
        // DescribeTable and DescribeTimeToLive when the store opens, GetItem/Query (consistent
        // reads), PutItem/UpdateItem, TransactWriteItems (authorized as its Put, Update, Delete and
        // ConditionCheck items), BatchWriteItem. No CreateTable or UpdateTimeToLive (the deployment
        // owns the tables: FEDCARE_CREATE_MISSING stays off), no Scan, no DeleteTable.
        new PolicyStatement({
          sid: 'Tables',
          actions: ['dynamodb:DescribeTable', 'dynamodb:DescribeTimeToLive', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:BatchWriteItem'],
          resources: Object.values(this.tables).map((t) => t.tableArn),
        }),
        // HeadBucket when the store opens is authorized as ListBucket (which also makes a missing
        // key NoSuchKey rather than AccessDenied).
        new PolicyStatement({ sid: 'Bucket', actions: ['s3:ListBucket'], resources: [this.modelsBucket.bucketArn] }),
        new PolicyStatement({
          sid: 'Objects',
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          resources: MODEL_BUCKET_PREFIXES.map((p) => this.modelsBucket.arnForObjects(`${p}/*`)),
        }),
        // SSE-KMS objects and the tables: S3 and DynamoDB ask KMS on the caller's behalf.
        new PolicyStatement({
          sid: 'DataKey',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': [`s3.${this.region}.amazonaws.com`, `dynamodb.${this.region}.amazonaws.com`] } },
        }),
      ],
    });
    const bucketArn = `<${this.getLogicalId(this.modelsBucket.node.defaultChild as CfnBucket)}.Arn>`;
    Validations.of(policy).acknowledge(
      ...MODEL_BUCKET_PREFIXES.map((p) => ({
        id: `AwsSolutions-IAM5[Resource::${bucketArn}/${p}/*]`,
        reason: `The objects under ${p}/ of the coordinator's own bucket: the store names each by run, round and SHA-256, so the prefix is as narrow as the keys it writes.`,
      })),
    );
    return policy;
  }
}
