/**
 * The Store on AWS: DynamoDB for records, S3 for model weights (AWS SDK v3), with SqliteStore's
 * semantics: the same checks and StoreError codes, rounds committed once, contiguously and all or
 * nothing, the same retention of weights, an append-only audit log, tokens kept as SHA-256 only.
 *
 * Tables — `${tablePrefix}` + the name below; a deployment owns them, `createMissing` makes them
 * (PAY_PER_REQUEST) for local use:
 *
 *   fl-training-metadata  run_id (S) + round_number (N). One item per committed round, seed spec 5.1:
 *                         timestamp (the round's completedAt, ISO), global_accuracy (= test_accuracy),
 *                         privacy_budget (= privacy_epsilon), participating_clients
 *                         (the list of hospitals whose update is in the model), every metric as its own attribute (a metric
 *                         named like one of the item's own attributes only in metrics_json), and what
 *                         getRoundMetrics / listModelVersions read back exactly: started_at,
 *                         completed_at, metrics_json, per_hospital_json, participation_json (JSON;
 *                         NaN and ±Infinity as the strings "NaN", "Infinity", "-Infinity"),
 *                         model_sha256, model_size_bytes, model_key, checkpoint, best, created_at.
 *   fl-client-status      client_id (S, the hospital) + timestamp (S: `<completedAt>#<round, 10 digits>#<run_id>`).
 *                         One item per hospital per committed round: run_id, round_number, status ('ok' or
 *                         the first stage status that was not), stages [{stage, status, reason, bytes_up,
 *                         bytes_down}], bytes_up, bytes_down, metrics (its federated evaluation),
 *                         recorded_at, expires_at (TTL: epoch seconds, 7 days after the commit).
 *   fl-coordinator        pk (S) + sk (S), everything else:
 *                           'run'          <run_id>     the run: status, config, progress, best, and pointers to
 *                                                       the latest weights, the strategy state and the feature statistics
 *                           'lock'         'running'    run_id of the one running run (kept in step with the
 *                                                       run's status in the same transactions)
 *                           'counter'      'audit' | 'run' | 'token'   value (N), taken with an atomic ADD
 *                           'audit'        <id, 16 digits>   one audit entry (written once, never updated: give the
 *                                                       coordinator's IAM role no dynamodb:UpdateItem on pk 'audit';
 *                                                       only pruneAudit deletes them, oldest first, for retention)
 *                           'token'        <token_id>   token metadata (role, hospital_id, created_at, revoked_at,
 *                                                       token_expires_at, token_sha256)
 *                           'token-sha256' <sha256>     hash → principal, verifyToken's lookup
 *
 * S3 objects in `bucket` (<run> is the run id with every byte but [A-Za-z0-9_-] percent-encoded, or
 * `~<sha256 of the id>` when that is longer than 200 characters):
 *
 *   models/<run>/<round, 10 digits>-<sha256>.bin   a round's weights: kept while it is the latest round, the
 *                                                  run's best or a checkpoint, deleted after the commit that
 *                                                  ends that (best effort: an orphan is harmless)
 *   state/<run>/<round, 10 digits>-<sha256>.bin    the latest round's strategy state
 *   feature-stats/<run>/<sha256>.json              the run's feature statistics
 *
 * Every object's bytes hash to the SHA-256 in its name, which DynamoDB records; every read checks it.
 *
 * A commit uploads the weights and the strategy state first (new keys: an upload whose commit never
 * happens is an orphan, not a change), then writes the round in ONE TransactWriteItems conditioned
 * on the run item (running, lastCompletedRound = round − 1), so a retried or concurrent commit of
 * the same round can never land twice. Up to 98 fl-client-status items ride in that transaction;
 * beyond that (TransactWriteItems takes 100 items, 4 MB) the rest are written right after it, best
 * effort: fl-client-status is a TTL'd operational view, getRoundMetrics reads the round item.
 *
 * Reads that must see the latest commit (all of them here) are strongly consistent (ConsistentRead);
 * S3 reads see every PUT and DELETE acknowledged before them (strong read-after-write consistency).
 * Limits SQLite does not have: a round is one DynamoDB item (400 KB), which holds the per-hospital
 * metrics and participation of some hundreds of hospitals; a larger round is refused by DynamoDB
 * (the commit rejects, nothing is written).
 *
 * Endpoints: the SDK's own configuration (AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3, else the
 * region's AWS endpoints). The SDK is loaded when a store is opened, not when this module is.
 */
import { createHash, randomUUID } from 'node:crypto';
import type * as DynamoDbSdk from '@aws-sdk/client-dynamodb';
import type {
  AttributeDefinition,
  AttributeValue,
  DynamoDBClient,
  KeySchemaElement,
  QueryCommandInput,
  TableDescription,
  TransactWriteItem,
  WriteRequest,
} from '@aws-sdk/client-dynamodb';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { BucketLocationConstraint, S3Client } from '@aws-sdk/client-s3';
import {
  StoreError,
  type AuditEntry,
  type AuditEntryInput,
  type AuditOutcome,
  type AuditQuery,
  type AuditRetention,
  type CreatedToken,
  type ModelSelector,
  type ModelVersion,
  type Participation,
  type ResumePoint,
  type RoundCommit,
  type RoundMetrics,
  type RunRecord,
  type RunStats,
  type RunStatus,
  type Store,
  type StoredModel,
  type TokenInfo,
  type TokenPrincipal,
  type TokenRole,
  type TokenSpec,
} from '@fedcare/shared/fl';
import { generateToken, generateTokenId, hashToken } from './tokens';
import {
  jsonText,
  plausibleToken,
  selectedRound,
  sha256Hex,
  validateAuditEntry,
  validateAuditQuery,
  validateAuditRetention,
  unexpired,
  validateCommit,
  validateNewRun,
  validateRoundFilter,
  validateRunStatus,
  validateTokenSpec,
} from './validate';

/** Table names after the prefix. */
export const AWS_TABLES = {
  trainingMetadata: 'fl-training-metadata',
  clientStatus: 'fl-client-status',
  coordinator: 'fl-coordinator',
} as const;
type TableRole = keyof typeof AWS_TABLES;
const TABLE_ROLES: readonly TableRole[] = ['trainingMetadata', 'clientStatus', 'coordinator'];

const KEY_SCHEMAS: Record<TableRole, readonly { name: string; type: 'S' | 'N'; keyType: 'HASH' | 'RANGE' }[]> = {
  trainingMetadata: [
    { name: 'run_id', type: 'S', keyType: 'HASH' },
    { name: 'round_number', type: 'N', keyType: 'RANGE' },
  ],
  clientStatus: [
    { name: 'client_id', type: 'S', keyType: 'HASH' },
    { name: 'timestamp', type: 'S', keyType: 'RANGE' },
  ],
  coordinator: [
    { name: 'pk', type: 'S', keyType: 'HASH' },
    { name: 'sk', type: 'S', keyType: 'RANGE' },
  ],
};

/** fl-client-status items expire this long after their commit (DynamoDB TTL on expires_at). */
export const CLIENT_STATUS_TTL_SECONDS = 7 * 24 * 60 * 60;
export const CLIENT_STATUS_TTL_ATTRIBUTE = 'expires_at';

/** TransactWriteItems takes at most 100 items and 4 MB (DynamoDB limits). */
const MAX_TRANSACTION_ITEMS = 100;
const MAX_TRANSACTION_BYTES = 3_500_000;
/** BatchWriteItem takes at most 25 puts. */
const BATCH_WRITE_ITEMS = 25;
const DEFAULT_OPEN_TIMEOUT_MS = 5_000;
/** How long createMissing waits for a new table or bucket to become usable. */
const CREATE_WAIT_MS = 120_000;

/** The round item's own attributes: a metric of the same name is kept in metrics_json only. */
const ROUND_ATTRIBUTES = new Set([
  'run_id', 'round_number', 'timestamp', 'global_accuracy', 'privacy_budget', 'participating_clients',
  'started_at', 'completed_at', 'metrics_json', 'per_hospital_json', 'participation_json',
  'model_sha256', 'model_size_bytes', 'model_key', 'checkpoint', 'best', 'created_at',
]);
/** Seed spec 5.1's summary attributes and the metrics they repeat (participating_clients is the list of hospitals, see participants()). */
const SUMMARY_ATTRIBUTES: readonly [attribute: string, metric: string][] = [
  ['global_accuracy', 'test_accuracy'],
  ['privacy_budget', 'privacy_epsilon'],
];

/**
 * Seed spec 5.1's participating_clients (List): the hospitals whose update is in the round's model —
 * trained, and not lost in a later aggregation stage (SecAgg+, HE); evaluation does not count.
 */
export function participants(participation: readonly RoundCommit['participation'][number][]): string[] {
  const lost = new Set(participation.filter((p) => p.status !== 'ok' && p.stage !== 'evaluate').map((p) => p.hospitalId));
  return [...new Set(participation.filter((p) => p.stage === 'train' && p.status === 'ok' && !lost.has(p.hospitalId)).map((p) => p.hospitalId))].sort();
}

export interface AwsStoreOptions {
  /** Prepended to every table name: `${tablePrefix}fl-training-metadata`, …. */
  tablePrefix: string;
  /** The S3 bucket for weights, strategy state and feature statistics. */
  bucket: string;
  /** Else the SDK's (AWS_REGION, the shared config file). */
  region?: string;
  /** Create missing tables (PAY_PER_REQUEST, TTL on fl-client-status) and the bucket, and wait until they are usable. */
  createMissing?: boolean;
  /** Clients to use instead of the SDK defaults; the store does not destroy clients it was given. */
  clients?: { dynamodb?: DynamoDBClient; s3?: S3Client };
  /** How long each check at open may take (default 5000 ms). */
  openTimeoutMs?: number;
  /** Clock for timestamps (tests). */
  now?: () => Date;
  /** Best-effort work that failed after a commit (overflow fl-client-status items, deleting dropped weights). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Fault injection for crash tests, in commitRound: after the uploads / after the transaction. */
  testHooks?: { beforeTransaction?: (round: number) => void; afterTransaction?: (round: number) => void };
}

interface Sdk {
  ddb: typeof DynamoDbSdk;
  s3: typeof S3Sdk;
}

type Item = Record<string, AttributeValue>;

/** A run item, decoded. */
interface RunState {
  record: RunRecord;
  seq: number;
  latestModelKey?: string;
  latestModelSha256?: string;
  stateKey?: string;
  stateSha256?: string;
  statsKey?: string;
  statsSha256?: string;
}

// ---- encoding ----------------------------------------------------------------------------------

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const BOOL = (b: boolean): AttributeValue => ({ BOOL: b });

/**
 * A metric as a DynamoDB attribute: a number (DynamoDB holds 38 digits, magnitudes 1E-130 to below
 * 1E+126) when it fits, else its JavaScript text in a string ("NaN", "Infinity", "5e-324").
 */
function numberValue(v: number): AttributeValue {
  const a = Math.abs(v);
  return Number.isFinite(v) && (a === 0 || (a >= 1e-130 && a < 1e126)) ? { N: String(v) } : { S: String(v) };
}

function decodeNumber(a: AttributeValue | undefined): number | undefined {
  if (a?.N !== undefined) return Number(a.N);
  if (a?.S !== undefined) {
    const n = Number(a.S);
    if (!Number.isNaN(n) || a.S === 'NaN') return n;
  }
  return undefined;
}

/** JSON for metric maps, nested or not: NaN and ±Infinity (which JSON lacks) as "NaN", "Infinity", "-Infinity". */
function metricsJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** SQLite orders names by their bytes (BINARY collation); so do we. */
function byUtf8([a]: [string, unknown], [b]: [string, unknown]): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function decodeMetrics(value: unknown, where: string): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: not an object of metrics`);
  const out: [string, number][] = [];
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === 'number') out.push([name, v]);
    else if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') out.push([name, Number(v)]);
    else throw new Error(`${where}.${name}: not a number`);
  }
  return Object.fromEntries(out.sort(byUtf8));
}

function decodePerHospital(text: string, where: string): Record<string, Record<string, number>> {
  const value = JSON.parse(text) as Record<string, unknown>;
  const out = Object.entries(value).map(([h, m]): [string, Record<string, number>] => [h, decodeMetrics(m, `${where}.${h}`)]);
  return Object.fromEntries(out.sort(byUtf8));
}

/** Reads typed attributes off an item, naming the item when one is missing or of the wrong type. */
class Row {
  constructor(
    readonly item: Item,
    private readonly where: string,
  ) {}
  private bad(name: string, what: string): never {
    throw new Error(`${this.where}: attribute ${name} is missing or not ${what}`);
  }
  s(name: string): string {
    const v = this.item[name]?.S;
    return v ?? this.bad(name, 'a string');
  }
  optS(name: string): string | undefined {
    return this.item[name] === undefined ? undefined : this.s(name);
  }
  int(name: string): number {
    const v = this.item[name]?.N;
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n)) this.bad(name, 'an integer');
    return n;
  }
  optInt(name: string): number | undefined {
    return this.item[name] === undefined ? undefined : this.int(name);
  }
  bool(name: string): boolean {
    const v = this.item[name]?.BOOL;
    return v ?? this.bad(name, 'a boolean');
  }
  optNum(name: string): number | undefined {
    const a = this.item[name];
    if (a === undefined) return undefined;
    return decodeNumber(a) ?? this.bad(name, 'a number');
  }
}

/** The run id as one S3 key segment: unreserved bytes kept, the rest percent-encoded; hashed when long. */
function runSegment(runId: string): string {
  let out = '';
  for (const b of Buffer.from(runId, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out.length <= 200 ? out : `~${createHash('sha256').update(runId, 'utf8').digest('hex')}`;
}

const pad10 = (round: number): string => String(round).padStart(10, '0');
const pad16 = (id: number): string => String(id).padStart(16, '0');

export function modelKey(runId: string, round: number, sha256: string): string {
  return `models/${runSegment(runId)}/${pad10(round)}-${sha256}.bin`;
}
function stateKey(runId: string, round: number, sha256: string): string {
  return `state/${runSegment(runId)}/${pad10(round)}-${sha256}.bin`;
}
function statsKey(runId: string, sha256: string): string {
  return `feature-stats/${runSegment(runId)}/${sha256}.json`;
}

// ---- errors ------------------------------------------------------------------------------------

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
}

function errorShape(e: unknown): SdkErrorShape {
  return typeof e === 'object' && e !== null ? (e as SdkErrorShape) : { message: String(e) };
}

/** One line of what went wrong (Node joins "connect ECONNREFUSED" for every address in an AggregateError). */
function errorText(e: unknown): string {
  const x = errorShape(e);
  let text = x.message ?? '';
  if (!text && Array.isArray(x.errors)) text = x.errors.map((inner) => errorShape(inner).message ?? String(inner)).join('; ');
  if (!text) text = x.code ?? x.name ?? 'unknown error';
  return text.replace(/\s*\n\s*/g, ' ');
}

function httpStatus(e: unknown): number | undefined {
  return errorShape(e).$metadata?.httpStatusCode;
}

function isNamed(e: unknown, ...names: string[]): boolean {
  return names.includes(errorShape(e).name ?? '');
}

interface EndpointConfig {
  endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
  serviceConfiguredEndpoint?: () => Promise<string | undefined>;
  region: () => Promise<string>;
}

/** The endpoint a client talks to, for error messages: its endpoint, AWS_ENDPOINT_URL_*, or the region's. */
async function endpointOf(config: EndpointConfig, service: 'dynamodb' | 's3'): Promise<string> {
  try {
    if (config.endpoint) {
      const e = await config.endpoint();
      return `${e.protocol}//${e.hostname}${e.port === undefined ? '' : `:${e.port}`}${e.path === '/' ? '' : e.path}`;
    }
    const configured = await config.serviceConfiguredEndpoint?.();
    if (configured) return configured.replace(/\/$/, '');
    return `https://${service}.${await config.region()}.amazonaws.com`;
  } catch {
    return `the default ${service} endpoint`;
  }
}

/** An error already worded for opening: passed through as it is. */
class OpenError extends Error {}

interface OpenCheck {
  /** Runs one request, aborted after the timeout; any failure becomes one line naming the endpoint and what was checked. */
  request<T>(send: (abortSignal: AbortSignal) => Promise<T>): Promise<T>;
  /** An error for a finding (a missing table, a wrong key schema), naming the endpoint. */
  fail(message: string): Error;
}

function openCheck(service: 'DynamoDB' | 'S3', endpoint: string, what: string, timeoutMs: number): OpenCheck {
  const at = `${service} at ${endpoint}`;
  return {
    async request<T>(send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        return await send(signal);
      } catch (e) {
        if (e instanceof OpenError) throw e;
        if (signal.aborted) throw new OpenError(`${at} is unreachable (${what}): no answer within ${timeoutMs / 1000} s`);
        const status = httpStatus(e);
        // No HTTP status: nothing answered (connection refused, DNS, TLS, reset).
        if (status === undefined) throw new OpenError(`${at} is unreachable (${what}): ${errorText(e)}`);
        if (status === 401 || status === 403 || isNamed(e, 'UnrecognizedClientException', 'AccessDeniedException', 'InvalidSignatureException')) {
          throw new OpenError(`${at} refused access (${what}): ${errorText(e)} (HTTP ${status})`);
        }
        throw new OpenError(`${at} failed (${what}): ${errorText(e)} (HTTP ${status})`);
      }
    },
    fail: (message) => new OpenError(`${at}: ${message}`),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the store ---------------------------------------------------------------------------------

export class AwsStore implements Store {
  /** Full table names. */
  readonly tables: Readonly<Record<TableRole, string>>;
  readonly bucket: string;
  /** TTL on fl-client-status after a createMissing open: 'enabled', or 'unsupported' where the service has no UpdateTimeToLive (dynalite). */
  ttl: 'enabled' | 'unsupported' | undefined;
  private closed = false;
  private readonly now: () => Date;
  private readonly warn: (message: string) => void;
  private readonly hooks: NonNullable<AwsStoreOptions['testHooks']>;

  constructor(
    private readonly sdk: Sdk,
    private readonly dynamodb: DynamoDBClient,
    private readonly s3: S3Client,
    private readonly owned: readonly { destroy(): void }[],
    options: AwsStoreOptions,
  ) {
    this.tables = {
      trainingMetadata: `${options.tablePrefix}${AWS_TABLES.trainingMetadata}`,
      clientStatus: `${options.tablePrefix}${AWS_TABLES.clientStatus}`,
      coordinator: `${options.tablePrefix}${AWS_TABLES.coordinator}`,
    };
    this.bucket = options.bucket;
    this.now = options.now ?? (() => new Date());
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { type: 'FedcareAwsStoreWarning' }));
    this.hooks = options.testHooks ?? {};
  }

  /** What this store is, for messages. */
  describe(): string {
    return `aws store (DynamoDB tables ${this.tables.trainingMetadata}, …; bucket ${this.bucket})`;
  }

  private iso(): string {
    return this.now().toISOString();
  }

  private live(): void {
    if (this.closed) throw new StoreError('closed', `the ${this.describe()} is closed`);
  }

  // ---- opening -------------------------------------------------------------------------------

  /** Checks (or with createMissing creates) the tables and the bucket; every request bounded by timeoutMs. */
  async verify(createMissing: boolean, timeoutMs: number): Promise<void> {
    const ddb = await endpointOf(this.dynamodb.config, 'dynamodb');
    for (const role of TABLE_ROLES) {
      const name = this.tables[role];
      await this.verifyTable(role, createMissing, openCheck('DynamoDB', ddb, `table ${name}`, timeoutMs));
    }
    await this.verifyBucket(createMissing, openCheck('S3', await endpointOf(this.s3.config, 's3'), `bucket ${this.bucket}`, timeoutMs));
  }

  /** The table's description; undefined when it does not exist. */
  private async describeTable(name: string, check: OpenCheck): Promise<TableDescription | undefined> {
    return check.request(async (abortSignal) => {
      try {
        return (await this.dynamodb.send(new this.sdk.ddb.DescribeTableCommand({ TableName: name }), { abortSignal })).Table;
      } catch (e) {
        if (isNamed(e, 'ResourceNotFoundException')) return undefined;
        throw e;
      }
    });
  }

  private async verifyTable(role: TableRole, createMissing: boolean, check: OpenCheck): Promise<void> {
    const name = this.tables[role];
    let table = await this.describeTable(name, check);
    if (table === undefined) {
      if (!createMissing) throw check.fail(`table ${name} does not exist (a deployment creates it; for local use open with createMissing)`);
      table = await this.createTable(role, check);
    }
    const want = KEY_SCHEMAS[role].map((k) => `${k.name} ${k.keyType}`).join(', ');
    const got = (table.KeySchema ?? []).map((k) => `${k.AttributeName} ${k.KeyType}`).join(', ');
    if (got !== want) throw check.fail(`table ${name} has the key (${got}); this store needs (${want})`);
    if (table.TableStatus !== 'ACTIVE' && table.TableStatus !== 'UPDATING') throw check.fail(`table ${name} is ${table.TableStatus ?? 'in no known state'}, not ACTIVE`);
    if (createMissing && role === 'clientStatus') await this.enableTtl(name, check);
  }

  private async createTable(role: TableRole, check: OpenCheck): Promise<TableDescription> {
    const name = this.tables[role];
    const keys = KEY_SCHEMAS[role];
    const AttributeDefinitions: AttributeDefinition[] = keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type }));
    const KeySchema: KeySchemaElement[] = keys.map((k) => ({ AttributeName: k.name, KeyType: k.keyType }));
    await check.request(async (abortSignal) => {
      try {
        await this.dynamodb.send(new this.sdk.ddb.CreateTableCommand({ TableName: name, AttributeDefinitions, KeySchema, BillingMode: 'PAY_PER_REQUEST' }), { abortSignal });
      } catch (e) {
        if (!isNamed(e, 'ResourceInUseException')) throw e; // created by another process meanwhile: fine
      }
    });
    // A new table is CREATING for a while; it takes reads and writes once ACTIVE.
    const deadline = Date.now() + CREATE_WAIT_MS;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      const table = await this.describeTable(name, check);
      if (table?.TableStatus === 'ACTIVE') return table;
      if (Date.now() > deadline) throw check.fail(`table ${name} did not become ACTIVE within ${CREATE_WAIT_MS / 1000} s (${table?.TableStatus ?? 'absent'})`);
      await sleep(delay);
    }
  }

  private async enableTtl(name: string, check: OpenCheck): Promise<void> {
    const ttl = await check.request(async (abortSignal) => (await this.dynamodb.send(new this.sdk.ddb.DescribeTimeToLiveCommand({ TableName: name }), { abortSignal })).TimeToLiveDescription);
    if ((ttl?.TimeToLiveStatus === 'ENABLED' || ttl?.TimeToLiveStatus === 'ENABLING') && ttl.AttributeName === CLIENT_STATUS_TTL_ATTRIBUTE) {
      this.ttl = 'enabled';
      return;
    }
    this.ttl = await check.request(async (abortSignal) => {
      try {
        const spec = { AttributeName: CLIENT_STATUS_TTL_ATTRIBUTE, Enabled: true };
        await this.dynamodb.send(new this.sdk.ddb.UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: spec }), { abortSignal });
        return 'enabled';
      } catch (e) {
        // dynalite (the local stand-in) has no UpdateTimeToLive: the items keep expires_at, nothing expires them.
        if (isNamed(e, 'UnknownOperationException')) return 'unsupported';
        throw e;
      }
    });
  }

  private async verifyBucket(createMissing: boolean, check: OpenCheck): Promise<void> {
    const head = (): Promise<boolean> =>
      check.request(async (abortSignal) => {
        try {
          await this.s3.send(new this.sdk.s3.HeadBucketCommand({ Bucket: this.bucket }), { abortSignal });
          return true;
        } catch (e) {
          if (httpStatus(e) === 404) return false;
          if (httpStatus(e) === 301) throw check.fail(`bucket ${this.bucket} is in another region than the client's`);
          throw e;
        }
      });
    if (await head()) return;
    if (!createMissing) throw check.fail(`bucket ${this.bucket} does not exist (a deployment creates it; for local use open with createMissing)`);
    const region = await this.s3.config.region();
    await check.request(async (abortSignal) => {
      try {
        const location = region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } };
        await this.s3.send(new this.sdk.s3.CreateBucketCommand({ Bucket: this.bucket, ...location }), { abortSignal });
      } catch (e) {
        if (!isNamed(e, 'BucketAlreadyOwnedByYou')) throw e;
      }
    });
    const deadline = Date.now() + CREATE_WAIT_MS;
    for (let delay = 50; !(await head()); delay = Math.min(delay * 2, 1000)) {
      if (Date.now() > deadline) throw check.fail(`bucket ${this.bucket} did not appear within ${CREATE_WAIT_MS / 1000} s`);
      await sleep(delay);
    }
  }

  // ---- DynamoDB and S3 primitives --------------------------------------------------------------

  /** Strongly consistent reads: a read returns every write DynamoDB acknowledged before it. */
  private async getItem(table: string, key: Item, projection?: string): Promise<Item | undefined> {
    const out = await this.dynamodb.send(
      new this.sdk.ddb.GetItemCommand({ TableName: table, Key: key, ConsistentRead: true, ...(projection ? { ProjectionExpression: projection } : {}) }),
    );
    return out.Item;
  }

  /** Every item of a Query (strongly consistent), following LastEvaluatedKey. */
  private async queryAll(input: QueryCommandInput): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const out = await this.dynamodb.send(new this.sdk.ddb.QueryCommand({ ...input, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Runs one TransactWriteItems; the cancellation reason codes when DynamoDB cancelled it, undefined when it committed. */
  private async transact(items: TransactWriteItem[]): Promise<string[] | undefined> {
    // DynamoDB applies every item or none, and only when every ConditionExpression holds.
    for (let attempt = 1; ; attempt++) {
      try {
        // ClientRequestToken makes the SDK's own retries of this request idempotent: a retry of one that
        // committed (its answer lost) succeeds without writing again (10-minute window).
        await this.dynamodb.send(new this.sdk.ddb.TransactWriteItemsCommand({ TransactItems: items, ClientRequestToken: randomUUID() }));
        return undefined;
      } catch (e) {
        if (!(e instanceof this.sdk.ddb.TransactionCanceledException)) throw e;
        const codes = (e.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
        // A conflict with another transaction on the same items, or throttling: nothing was written; try again.
        const transient = codes.some((c) => c === 'TransactionConflict' || c === 'ThrottlingError' || c === 'ProvisionedThroughputExceeded');
        if (!transient || codes.includes('ConditionalCheckFailed') || attempt >= 4) return codes;
        await sleep(25 * 2 ** attempt);
      }
    }
  }

  /** S3 keeps a PUT whole or not at all, and reads after it see it (strong read-after-write consistency). */
  private async putObject(key: string, bytes: Uint8Array, sha256: string, contentType: string): Promise<void> {
    await this.s3.send(
      new this.sdk.s3.PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: bytes,
        ContentType: contentType,
        // S3 refuses the upload when the bytes it received do not hash to this.
        ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
      }),
    );
  }

  /** The object's bytes (an offset-0 copy), or undefined when there is no such object. */
  private async getObject(key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.s3.send(new this.sdk.s3.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array(0);
      return new Uint8Array(bytes);
    } catch (e) {
      if (isNamed(e, 'NoSuchKey', 'NotFound')) return undefined;
      throw e;
    }
  }

  /** The bytes, if they hash to what the store recorded; otherwise StoreError 'conflict' naming the object. */
  private verified(key: string, bytes: Uint8Array, recorded: string): Uint8Array {
    const actual = sha256Hex(bytes);
    if (actual !== recorded) throw new StoreError('conflict', `s3://${this.bucket}/${key}: bytes hash to ${actual}, the store recorded ${recorded}`);
    return bytes;
  }

  private missing(runId: string, key: string, what: string): Error {
    return new Error(`the ${this.describe()} is inconsistent: run ${JSON.stringify(runId)} ${what}: s3://${this.bucket}/${key} does not exist`);
  }

  private async deleteObjects(keys: string[], why: string): Promise<void> {
    await Promise.all(
      keys.map(async (key) => {
        try {
          await this.s3.send(new this.sdk.s3.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
        } catch (e) {
          this.warn(`s3://${this.bucket}/${key} (${why}) could not be deleted, it stays as an orphan: ${errorText(e)}`);
        }
      }),
    );
  }

  /** The next value of a counter; DynamoDB applies an ADD to one item atomically, so no two callers get the same. */
  private async nextCounter(name: 'audit' | 'run' | 'token'): Promise<number> {
    const out = await this.dynamodb.send(
      new this.sdk.ddb.UpdateItemCommand({
        TableName: this.tables.coordinator,
        Key: { pk: S('counter'), sk: S(name) },
        UpdateExpression: 'ADD #v :one',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: { ':one': N(1) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return new Row(out.Attributes ?? {}, `${this.tables.coordinator} counter ${name}`).int('value');
  }

  // ---- runs ----------------------------------------------------------------------------------

  private runKey(runId: string): Item {
    return { pk: S('run'), sk: S(runId) };
  }

  private decodeRun(item: Item): RunState {
    const r = new Row(item, `${this.tables.coordinator} run`);
    const record: RunRecord = {
      runId: r.s('run_id'),
      status: r.s('status') as RunStatus,
      config: JSON.parse(r.s('config_json')) as Record<string, unknown>,
      totalRounds: r.int('total_rounds'),
      lastCompletedRound: r.int('last_completed_round'),
      createdAt: r.s('created_at'),
      updatedAt: r.s('updated_at'),
    };
    const bestRound = r.optInt('best_round');
    const bestValLoss = r.optNum('best_val_loss');
    const reason = r.optS('reason');
    if (bestRound !== undefined) record.bestRound = bestRound;
    if (bestValLoss !== undefined) record.bestValLoss = bestValLoss;
    if (reason !== undefined) record.reason = reason;
    const state: RunState = { record, seq: r.int('seq') };
    const optional = [
      ['latestModelKey', 'latest_model_key'],
      ['latestModelSha256', 'latest_model_sha256'],
      ['stateKey', 'resume_state_key'],
      ['stateSha256', 'resume_state_sha256'],
      ['statsKey', 'feature_stats_key'],
      ['statsSha256', 'feature_stats_sha256'],
    ] as const;
    for (const [field, attribute] of optional) {
      const v = r.optS(attribute);
      if (v !== undefined) state[field] = v;
    }
    return state;
  }

  private async runState(runId: string): Promise<RunState | undefined> {
    if (typeof runId !== 'string' || runId.length === 0) return undefined; // DynamoDB keys are never empty
    const item = await this.getItem(this.tables.coordinator, this.runKey(runId));
    return item === undefined ? undefined : this.decodeRun(item);
  }

  private async requireRun(runId: string): Promise<RunState> {
    const run = await this.runState(runId);
    if (run === undefined) throw new StoreError('not_found', `run ${JSON.stringify(runId)} does not exist`);
    return run;
  }

  private async runningRunId(): Promise<string | undefined> {
    const lock = await this.getItem(this.tables.coordinator, { pk: S('lock'), sk: S('running') });
    return lock === undefined ? undefined : new Row(lock, `${this.tables.coordinator} lock`).s('run_id');
  }

  async createRun(runId: string, config: Record<string, unknown>, totalRounds: number): Promise<RunRecord> {
    this.live();
    const configJson = validateNewRun(runId, config, totalRounds);
    const conflict = async (): Promise<StoreError | undefined> => {
      if ((await this.runState(runId)) !== undefined) return new StoreError('conflict', `run ${JSON.stringify(runId)} already exists`);
      const active = await this.runningRunId();
      if (active !== undefined) return new StoreError('conflict', `run ${JSON.stringify(active)} is still running; stop it before starting ${JSON.stringify(runId)}`);
      return undefined;
    };
    const before = await conflict();
    if (before) throw before;
    const seq = await this.nextCounter('run');
    const now = this.iso();
    const item: Item = {
      ...this.runKey(runId),
      run_id: S(runId),
      status: S('running'),
      config_json: S(configJson),
      total_rounds: N(totalRounds),
      last_completed_round: N(0),
      created_at: S(now),
      updated_at: S(now),
      seq: N(seq),
    };
    // The run and the lock are written together or not at all; each only if absent, so two
    // coordinators starting runs at once cannot both succeed.
    const codes = await this.transact([
      { Put: { TableName: this.tables.coordinator, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
      {
        Put: {
          TableName: this.tables.coordinator,
          Item: { pk: S('lock'), sk: S('running'), run_id: S(runId), since: S(now) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ]);
    if (codes) throw (await conflict()) ?? new StoreError('conflict', `run ${JSON.stringify(runId)} could not be created (${codes.join(', ')}); try again`);
    return this.decodeRun(item).record;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    this.live();
    return (await this.runState(runId))?.record;
  }

  async listRuns(): Promise<RunRecord[]> {
    this.live();
    const items = await this.queryAll({
      TableName: this.tables.coordinator,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S('run') },
    });
    const runs = items.map((i) => this.decodeRun(i));
    runs.sort((a, b) => (a.record.createdAt < b.record.createdAt ? 1 : a.record.createdAt > b.record.createdAt ? -1 : b.seq - a.seq));
    return runs.map((r) => r.record);
  }

  async activeRun(): Promise<RunRecord | undefined> {
    this.live();
    const runId = await this.runningRunId();
    if (runId === undefined) return undefined;
    const run = await this.runState(runId);
    return run?.record.status === 'running' ? run.record : undefined;
  }

  async setRunStatus(runId: string, status: RunStatus, reason?: string): Promise<RunRecord> {
    this.live();
    validateRunStatus(status, reason);
    const refuse = (run: RunState): StoreError =>
      new StoreError('conflict', `run ${JSON.stringify(runId)} is ${run.record.status}; only a running run can become completed, stopped or failed (asked: ${status})`);
    const run = await this.requireRun(runId);
    if (run.record.status !== 'running' || status === 'running') throw refuse(run);
    const now = this.iso();
    const codes = await this.transact([
      {
        Update: {
          TableName: this.tables.coordinator,
          Key: this.runKey(runId),
          UpdateExpression: reason === undefined ? 'SET #s = :status, updated_at = :now REMOVE reason' : 'SET #s = :status, updated_at = :now, reason = :reason',
          ConditionExpression: '#s = :running',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':status': S(status), ':now': S(now), ':running': S('running'), ...(reason === undefined ? {} : { ':reason': S(reason) }) },
        },
      },
      {
        Delete: {
          TableName: this.tables.coordinator,
          Key: { pk: S('lock'), sk: S('running') },
          ConditionExpression: 'attribute_not_exists(pk) OR run_id = :run',
          ExpressionAttributeValues: { ':run': S(runId) },
        },
      },
    ]);
    if (codes) {
      const now2 = await this.requireRun(runId);
      throw now2.record.status !== 'running' ? refuse(now2) : new StoreError('conflict', `run ${JSON.stringify(runId)} changed while its status was being set; try again`);
    }
    const record: RunRecord = { ...run.record, status, updatedAt: now };
    if (reason === undefined) delete record.reason;
    else record.reason = reason;
    return record;
  }

  // ---- rounds --------------------------------------------------------------------------------

  /** Why round `round` cannot be committed to this run now, in SqliteStore's order; undefined when it can. */
  private commitRefusal(run: RunRecord, round: number): StoreError | undefined {
    const id = JSON.stringify(run.runId);
    if (round <= run.lastCompletedRound) return new StoreError('replay', `round ${round} of run ${id} is already committed; a round is committed once`);
    if (run.status !== 'running') return new StoreError('conflict', `run ${id} is ${run.status}; rounds are committed only to a running run`);
    if (round !== run.lastCompletedRound + 1) return new StoreError('out_of_order', `round ${round} of run ${id} is out of order: the next round is ${run.lastCompletedRound + 1}`);
    if (round > run.totalRounds) return new StoreError('out_of_order', `round ${round} is past the run's ${run.totalRounds} rounds`);
    return undefined;
  }

  private roundItem(c: RoundCommit, key: string, now: string): Item {
    const item: Item = {};
    for (const [name, value] of Object.entries(c.metrics)) if (!ROUND_ATTRIBUTES.has(name)) item[name] = numberValue(value);
    for (const [attribute, metric] of SUMMARY_ATTRIBUTES) {
      const value = c.metrics[metric];
      if (value !== undefined) item[attribute] = numberValue(value);
    }
    item.participating_clients = { L: participants(c.participation).map((h) => S(h)) };
    return Object.assign(item, {
      run_id: S(c.runId),
      round_number: N(c.round),
      timestamp: S(c.completedAt),
      started_at: S(c.startedAt),
      completed_at: S(c.completedAt),
      metrics_json: S(metricsJson(c.metrics)),
      per_hospital_json: S(metricsJson(c.perHospital)),
      participation_json: S(JSON.stringify(c.participation.map(participationJson))),
      model_sha256: S(c.model.sha256),
      model_size_bytes: N(c.model.bytes.byteLength),
      model_key: S(key),
      checkpoint: BOOL(c.checkpoint),
      best: BOOL(c.best),
      created_at: S(now),
    });
  }

  private clientStatusItems(c: RoundCommit, nowMs: number): Item[] {
    const hospitals = [...new Set([...c.participation.map((p) => p.hospitalId), ...Object.keys(c.perHospital)])];
    return hospitals.map((hospitalId) => {
      const stages = c.participation.filter((p) => p.hospitalId === hospitalId);
      const metrics = c.perHospital[hospitalId];
      const item: Item = {
        client_id: S(hospitalId),
        timestamp: S(`${c.completedAt}#${pad10(c.round)}#${c.runId}`),
        run_id: S(c.runId),
        round_number: N(c.round),
        status: S(stages.find((p) => p.status !== 'ok')?.status ?? 'ok'),
        stages: {
          L: stages.map((p) => ({
            M: { stage: S(p.stage), status: S(p.status), ...(p.reason === undefined ? {} : { reason: S(p.reason) }), bytes_up: N(p.bytesUp), bytes_down: N(p.bytesDown) },
          })),
        },
        bytes_up: N(stages.reduce((s, p) => s + p.bytesUp, 0)),
        bytes_down: N(stages.reduce((s, p) => s + p.bytesDown, 0)),
        recorded_at: S(new Date(nowMs).toISOString()),
        [CLIENT_STATUS_TTL_ATTRIBUTE]: N(Math.floor(nowMs / 1000) + CLIENT_STATUS_TTL_SECONDS),
      };
      if (metrics) item.metrics = { M: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, numberValue(v)])) };
      return item;
    });
  }

  async commitRound(c: RoundCommit): Promise<RunRecord> {
    this.live();
    const valLoss = validateCommit(c);
    const run = await this.requireRun(c.runId);
    const refusal = this.commitRefusal(run.record, c.round);
    if (refusal) throw refusal;

    const nowDate = this.now();
    const now = nowDate.toISOString();
    const weightsKey = modelKey(c.runId, c.round, c.model.sha256);
    const stateSha256 = sha256Hex(c.strategyState);
    const resumeKey = stateKey(c.runId, c.round, stateSha256);
    // New keys (round and content in the name): an upload whose transaction never happens is an orphan.
    await Promise.all([
      this.putObject(weightsKey, c.model.bytes, c.model.sha256, 'application/octet-stream'),
      this.putObject(resumeKey, c.strategyState, stateSha256, 'application/octet-stream'),
    ]);
    this.hooks.beforeTransaction?.(c.round);

    const bestRound = c.best ? c.round : run.record.bestRound;
    const bestValLoss = c.best ? (valLoss as number) : run.record.bestValLoss;
    const round = this.roundItem(c, weightsKey, now);
    const items: TransactWriteItem[] = [
      {
        // The guard of the whole commit: exactly one commit can move lastCompletedRound from round − 1.
        Update: {
          TableName: this.tables.coordinator,
          Key: this.runKey(c.runId),
          UpdateExpression:
            'SET last_completed_round = :round, updated_at = :now, latest_model_key = :mk, latest_model_sha256 = :ms, resume_state_key = :sk, resume_state_sha256 = :ss' +
            (c.best ? ', best_round = :round, best_val_loss = :bvl' : ''),
          ConditionExpression: 'attribute_exists(pk) AND #s = :running AND last_completed_round = :prev AND total_rounds >= :round',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':round': N(c.round),
            ':prev': N(c.round - 1),
            ':now': S(now),
            ':mk': S(weightsKey),
            ':ms': S(c.model.sha256),
            ':sk': S(resumeKey),
            ':ss': S(stateSha256),
            ':running': S('running'),
            ...(c.best ? { ':bvl': numberValue(valLoss as number) } : {}),
          },
        },
      },
      { Put: { TableName: this.tables.trainingMetadata, Item: round, ConditionExpression: 'attribute_not_exists(run_id)' } },
    ];
    const clientItems = this.clientStatusItems(c, nowDate.getTime());
    let bytes = Buffer.byteLength(JSON.stringify(round));
    let inTransaction = 0;
    for (const item of clientItems) {
      const size = Buffer.byteLength(JSON.stringify(item));
      if (items.length >= MAX_TRANSACTION_ITEMS || bytes + size > MAX_TRANSACTION_BYTES) break;
      items.push({ Put: { TableName: this.tables.clientStatus, Item: item } });
      bytes += size;
      inTransaction++;
    }
    const codes = await this.transact(items);
    if (codes) {
      const now2 = await this.requireRun(c.runId);
      throw this.commitRefusal(now2.record, c.round) ?? new StoreError('conflict', `round ${c.round} of run ${JSON.stringify(c.runId)} was not committed: the run changed meanwhile (${codes.join(', ')}); nothing was written`);
    }
    this.hooks.afterTransaction?.(c.round);

    // Committed. The rest is best effort.
    await Promise.all([this.writeClientStatus(clientItems.slice(inTransaction)), this.prune(c, run, bestRound, resumeKey)]);
    const record: RunRecord = { ...run.record, lastCompletedRound: c.round, updatedAt: now };
    if (bestRound !== undefined) record.bestRound = bestRound;
    if (bestValLoss !== undefined) record.bestValLoss = bestValLoss;
    return record;
  }

  private async writeClientStatus(items: Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += BATCH_WRITE_ITEMS) {
      let pending: WriteRequest[] = items.slice(i, i + BATCH_WRITE_ITEMS).map((Item) => ({ PutRequest: { Item } }));
      try {
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt === 5) throw new Error(`${pending.length} items stayed unprocessed`);
          if (attempt > 0) await sleep(50 * 2 ** attempt);
          const out = await this.dynamodb.send(new this.sdk.ddb.BatchWriteItemCommand({ RequestItems: { [this.tables.clientStatus]: pending } }));
          pending = out.UnprocessedItems?.[this.tables.clientStatus] ?? [];
        }
      } catch (e) {
        this.warn(`${this.tables.clientStatus}: ${Math.min(BATCH_WRITE_ITEMS, items.length - i)} client-status items were not written: ${errorText(e)}`);
      }
    }
  }

  /** After round c: drop the weights no longer kept (the previous latest and the previous best, unless checkpoints) and the old strategy state. */
  private async prune(c: RoundCommit, before: RunState, bestRound: number | undefined, resumeKey: string): Promise<void> {
    try {
      const keys: string[] = [];
      const candidates = new Set([before.record.lastCompletedRound, before.record.bestRound ?? 0]);
      for (const r of candidates) {
        if (r < 1 || r === bestRound || r === c.round) continue;
        const v = await this.getItem(this.tables.trainingMetadata, { run_id: S(c.runId), round_number: N(r) }, 'model_key, checkpoint');
        if (v === undefined) continue;
        const row = new Row(v, `${this.tables.trainingMetadata} ${c.runId} round ${r}`);
        if (!row.bool('checkpoint')) keys.push(row.s('model_key'));
      }
      if (before.stateKey !== undefined && before.stateKey !== resumeKey) keys.push(before.stateKey);
      await this.deleteObjects(keys, `no longer kept after round ${c.round} of run ${JSON.stringify(c.runId)}`);
    } catch (e) {
      this.warn(`pruning after round ${c.round} of run ${JSON.stringify(c.runId)} failed; unreferenced objects may stay: ${errorText(e)}`);
    }
  }

  async getRoundMetrics(runId: string, round?: number): Promise<RoundMetrics[]> {
    this.live();
    validateRoundFilter(round);
    if (typeof runId !== 'string' || runId.length === 0) return [];
    const items = await this.queryAll({
      TableName: this.tables.trainingMetadata,
      KeyConditionExpression: round === undefined ? 'run_id = :run' : 'run_id = :run AND round_number = :round',
      ExpressionAttributeValues: { ':run': S(runId), ...(round === undefined ? {} : { ':round': N(round) }) },
      ProjectionExpression: 'round_number, started_at, completed_at, metrics_json, per_hospital_json, participation_json',
    });
    // Query returns items in sort-key order: round_number ascending.
    return items.map((item) => {
      const r = new Row(item, `${this.tables.trainingMetadata} ${runId}`);
      const n = r.int('round_number');
      const where = `${this.tables.trainingMetadata} ${runId} round ${n}`;
      return {
        round: n,
        metrics: decodeMetrics(JSON.parse(r.s('metrics_json')), `${where} metrics`),
        perHospital: decodePerHospital(r.s('per_hospital_json'), `${where} perHospital`),
        participation: JSON.parse(r.s('participation_json')) as Participation[],
        startedAt: r.s('started_at'),
        completedAt: r.s('completed_at'),
      };
    });
  }

  async resumePoint(runId: string): Promise<ResumePoint | undefined> {
    this.live();
    for (let attempt = 1; ; attempt++) {
      const run = await this.requireRun(runId);
      const last = run.record.lastCompletedRound;
      if (last === 0) return undefined;
      const { latestModelKey: mk, latestModelSha256: ms, stateKey: sk, stateSha256: ss } = run;
      if (mk === undefined || ms === undefined || sk === undefined || ss === undefined) {
        throw new Error(`the ${this.describe()} is inconsistent: run ${JSON.stringify(runId)} round ${last} has no weights or strategy state`);
      }
      const [weights, state] = await Promise.all([this.getObject(mk), this.getObject(sk)]);
      if (weights === undefined || state === undefined) {
        // A commit that moved past `last` meanwhile deletes its objects: read the run again.
        if (attempt < 3 && (await this.requireRun(runId)).record.lastCompletedRound !== last) continue;
        throw this.missing(runId, weights === undefined ? mk : sk, `round ${last}`);
      }
      return { round: last, weights: this.verified(mk, weights, ms), sha256: ms, strategyState: this.verified(sk, state, ss) };
    }
  }

  async getModel(runId: string, which: ModelSelector): Promise<StoredModel | undefined> {
    this.live();
    for (let attempt = 1; ; attempt++) {
      const run = await this.runState(runId);
      if (run === undefined) return undefined;
      const { lastCompletedRound: last, bestRound } = run.record;
      const round = selectedRound(which, last, bestRound);
      if (round === undefined || round < 1 || round > last) return undefined;
      const item = await this.getItem(this.tables.trainingMetadata, { run_id: S(runId), round_number: N(round) }, 'model_key, model_sha256, checkpoint');
      if (item === undefined) return undefined;
      const v = new Row(item, `${this.tables.trainingMetadata} ${runId} round ${round}`);
      // Kept: the latest round, the run's best, checkpoints (as SqliteStore keeps them).
      if (!(round === last || round === bestRound || v.bool('checkpoint'))) return undefined;
      const key = v.s('model_key');
      const bytes = await this.getObject(key);
      if (bytes === undefined) {
        if (attempt < 3) continue; // a commit meanwhile may have stopped keeping it
        throw this.missing(runId, key, `round ${round}`);
      }
      const sha256 = v.s('model_sha256');
      return { round, sha256, bytes: this.verified(key, bytes, sha256) };
    }
  }

  async listModelVersions(runId: string): Promise<ModelVersion[]> {
    this.live();
    const run = await this.runState(runId);
    if (run === undefined) return [];
    const { lastCompletedRound: last, bestRound } = run.record;
    const items = await this.queryAll({
      TableName: this.tables.trainingMetadata,
      KeyConditionExpression: 'run_id = :run',
      ExpressionAttributeValues: { ':run': S(runId) },
      ProjectionExpression: 'round_number, model_sha256, model_size_bytes, checkpoint, best, created_at',
    });
    return items.map((item) => {
      const v = new Row(item, `${this.tables.trainingMetadata} ${runId}`);
      const round = v.int('round_number');
      const checkpoint = v.bool('checkpoint');
      return {
        round,
        sha256: v.s('model_sha256'),
        sizeBytes: v.int('model_size_bytes'),
        checkpoint,
        best: v.bool('best'),
        stored: round === last || round === bestRound || checkpoint,
        createdAt: v.s('created_at'),
      };
    });
  }

  // ---- feature statistics --------------------------------------------------------------------

  async saveFeatureStats(runId: string, stats: unknown): Promise<void> {
    this.live();
    const json = jsonText('feature stats', stats);
    const fixed = (): StoreError => new StoreError('conflict', `run ${JSON.stringify(runId)} has completed rounds; its feature statistics are fixed`);
    const run = await this.requireRun(runId);
    if (run.record.lastCompletedRound > 0) throw fixed();
    const bytes = Buffer.from(json, 'utf8');
    const sha256 = sha256Hex(bytes);
    const key = statsKey(runId, sha256);
    await this.putObject(key, bytes, sha256, 'application/json');
    let old: string | undefined;
    try {
      // Only while no round is committed: commitRound moves last_completed_round off 0 on this same item.
      const out = await this.dynamodb.send(
        new this.sdk.ddb.UpdateItemCommand({
          TableName: this.tables.coordinator,
          Key: this.runKey(runId),
          UpdateExpression: 'SET feature_stats_key = :k, feature_stats_sha256 = :s, feature_stats_saved_at = :now',
          ConditionExpression: 'attribute_exists(pk) AND last_completed_round = :zero',
          ExpressionAttributeValues: { ':k': S(key), ':s': S(sha256), ':now': S(this.iso()), ':zero': N(0) },
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      old = out.Attributes?.feature_stats_key?.S;
    } catch (e) {
      if (!(e instanceof this.sdk.ddb.ConditionalCheckFailedException)) throw e;
      await this.requireRun(runId);
      throw fixed();
    }
    if (old !== undefined && old !== key) await this.deleteObjects([old], `feature statistics of run ${JSON.stringify(runId)} replaced`);
  }

  async getFeatureStats(runId: string): Promise<RunStats | undefined> {
    this.live();
    for (let attempt = 1; ; attempt++) {
      const run = await this.runState(runId);
      if (run?.statsKey === undefined || run.statsSha256 === undefined) return undefined;
      const bytes = await this.getObject(run.statsKey);
      if (bytes === undefined) {
        if (attempt < 3) continue; // replaced meanwhile
        throw this.missing(runId, run.statsKey, 'feature statistics');
      }
      // What saveFeatureStats was given, as it was given (the store keeps the JSON, not its kind).
      return JSON.parse(Buffer.from(this.verified(run.statsKey, bytes, run.statsSha256)).toString('utf8')) as RunStats;
    }
  }

  // ---- audit ---------------------------------------------------------------------------------

  async appendAudit(entry: AuditEntryInput): Promise<AuditEntry> {
    this.live();
    const detailJson = validateAuditEntry(entry);
    const at = this.iso();
    const id = await this.nextCounter('audit');
    const item: Item = {
      pk: S('audit'),
      sk: S(pad16(id)),
      id: N(id),
      at: S(at),
      actor: S(entry.actor),
      action: S(entry.action),
      outcome: S(entry.outcome),
    };
    if (entry.runId !== undefined) item.run_id = S(entry.runId);
    if (detailJson !== null) item.detail_json = S(detailJson);
    // Written once, never over another entry.
    await this.dynamodb.send(new this.sdk.ddb.PutItemCommand({ TableName: this.tables.coordinator, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    return this.decodeAudit(item);
  }

  private decodeAudit(item: Item): AuditEntry {
    const r = new Row(item, `${this.tables.coordinator} audit`);
    const out: AuditEntry = { id: r.int('id'), at: r.s('at'), actor: r.s('actor'), action: r.s('action'), outcome: r.s('outcome') as AuditOutcome };
    const runId = r.optS('run_id');
    const detail = r.optS('detail_json');
    if (runId !== undefined) out.runId = runId;
    if (detail !== undefined) out.detail = JSON.parse(detail) as Record<string, unknown>;
    return out;
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    this.live();
    const { limit, sinceIso } = validateAuditQuery(query);
    const out: AuditEntry[] = [];
    let start: Item | undefined;
    do {
      // Newest first (sort key descending). Limit counts items read before the filter, so page on.
      const page = await this.dynamodb.send(
        new this.sdk.ddb.QueryCommand({
          TableName: this.tables.coordinator,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': S('audit'), ...(sinceIso ? { ':since': S(sinceIso) } : {}) },
          ...(sinceIso ? { FilterExpression: '#at >= :since', ExpressionAttributeNames: { '#at': 'at' } } : {}),
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: Math.min(limit - out.length, 1000),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) out.push(this.decodeAudit(item));
      start = page.LastEvaluatedKey;
    } while (start && out.length < limit);
    return out.slice(0, limit);
  }

  async pruneAudit(retention: AuditRetention): Promise<number> {
    this.live();
    const { maxRows, maxAgeMs } = validateAuditRetention(retention);
    const counter = await this.getItem(this.tables.coordinator, { pk: S('counter'), sk: S('audit') });
    const lastId = counter === undefined ? 0 : new Row(counter, `${this.tables.coordinator} counter audit`).int('value');
    const byCount = lastId - maxRows;
    const cutoff = maxAgeMs === undefined ? undefined : new Date(this.now().getTime() - maxAgeMs).toISOString();
    let removed = 0;
    let start: Item | undefined;
    // Oldest first; stops at the first entry that is both within the newest maxRows and young enough.
    for (;;) {
      const page = await this.dynamodb.send(
        new this.sdk.ddb.QueryCommand({
          TableName: this.tables.coordinator,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': S('audit') },
          ProjectionExpression: 'pk, sk, id, #at',
          ExpressionAttributeNames: { '#at': 'at' },
          ScanIndexForward: true,
          ConsistentRead: true,
          Limit: 500,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const items = page.Items ?? [];
      const expired = [];
      let done = false;
      for (const item of items) {
        const r = new Row(item, `${this.tables.coordinator} audit`);
        if (r.int('id') <= byCount || (cutoff !== undefined && r.s('at') < cutoff)) expired.push({ pk: item.pk as AttributeValue, sk: item.sk as AttributeValue });
        else {
          done = true;
          break;
        }
      }
      for (let i = 0; i < expired.length; i += BATCH_WRITE_ITEMS) {
        let pending: WriteRequest[] = expired.slice(i, i + BATCH_WRITE_ITEMS).map((Key) => ({ DeleteRequest: { Key } }));
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt === 5) throw new StoreError('conflict', `${this.tables.coordinator}: ${pending.length} expired audit entries stayed unprocessed; prune again later`);
          if (attempt > 0) await sleep(50 * 2 ** attempt);
          const out = await this.dynamodb.send(new this.sdk.ddb.BatchWriteItemCommand({ RequestItems: { [this.tables.coordinator]: pending } }));
          pending = out.UnprocessedItems?.[this.tables.coordinator] ?? [];
        }
        removed += Math.min(BATCH_WRITE_ITEMS, expired.length - i);
      }
      start = page.LastEvaluatedKey;
      if (done || !start) return removed;
    }
  }

  // ---- tokens --------------------------------------------------------------------------------

  async createToken(spec: TokenSpec): Promise<CreatedToken> {
    this.live();
    validateTokenSpec(spec);
    const token = generateToken();
    const tokenId = generateTokenId();
    const hash = hashToken(token);
    const seq = await this.nextCounter('token');
    const principal: Item = {
      role: S(spec.role),
      ...(spec.hospitalId === undefined ? {} : { hospital_id: S(spec.hospitalId) }),
      ...(spec.expiresAt === undefined ? {} : { token_expires_at: S(new Date(spec.expiresAt).toISOString()) }),
    };
    // Only the SHA-256 is written, under both keys, together.
    const codes = await this.transact([
      {
        Put: {
          TableName: this.tables.coordinator,
          Item: { pk: S('token'), sk: S(tokenId), token_id: S(tokenId), token_sha256: S(hash), ...principal, created_at: S(this.iso()), seq: N(seq) },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Put: {
          TableName: this.tables.coordinator,
          Item: { pk: S('token-sha256'), sk: S(hash), token_id: S(tokenId), ...principal },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ]);
    if (codes) throw new StoreError('conflict', `token ${tokenId} could not be stored (${codes.join(', ')}); try again`);
    return { tokenId, token };
  }

  async verifyToken(token: string): Promise<TokenPrincipal | undefined> {
    this.live();
    if (!plausibleToken(token)) return undefined;
    return this.verifyTokenHash(hashToken(token));
  }

  async verifyTokenHash(sha256Hex: string): Promise<TokenPrincipal | undefined> {
    this.live();
    if (!/^[0-9a-f]{64}$/.test(sha256Hex)) return undefined;
    // Strongly consistent: a revoked token stops working at once.
    const item = await this.getItem(this.tables.coordinator, { pk: S('token-sha256'), sk: S(sha256Hex) });
    if (item === undefined || item.revoked_at !== undefined) return undefined;
    const r = new Row(item, `${this.tables.coordinator} token`);
    if (!unexpired(r.optS('token_expires_at'), this.now())) return undefined;
    const role = r.s('role') as TokenRole;
    if (role === 'admin' || role === 'observer') return { role };
    const hospitalId = r.optS('hospital_id');
    return hospitalId === undefined ? undefined : { role: 'hospital', hospitalId };
  }

  async revokeToken(tokenId: string): Promise<boolean> {
    this.live();
    if (typeof tokenId !== 'string' || tokenId.length === 0) return false;
    const item = await this.getItem(this.tables.coordinator, { pk: S('token'), sk: S(tokenId) });
    if (item === undefined || item.revoked_at !== undefined) return false;
    const hash = new Row(item, `${this.tables.coordinator} token ${tokenId}`).s('token_sha256');
    const now = this.iso();
    const revoke = (Key: Item): TransactWriteItem => ({
      Update: {
        TableName: this.tables.coordinator,
        Key,
        UpdateExpression: 'SET revoked_at = :now',
        ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revoked_at)',
        ExpressionAttributeValues: { ':now': S(now) },
      },
    });
    // Both or neither: a concurrent revocation makes this one a no-op (false), as in SQLite.
    return (await this.transact([revoke({ pk: S('token'), sk: S(tokenId) }), revoke({ pk: S('token-sha256'), sk: S(hash) })])) === undefined;
  }

  async listTokens(): Promise<TokenInfo[]> {
    this.live();
    const items = await this.queryAll({
      TableName: this.tables.coordinator,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S('token') },
      ProjectionExpression: 'token_id, #role, hospital_id, created_at, revoked_at, token_expires_at, seq',
      ExpressionAttributeNames: { '#role': 'role' },
    });
    const rows = items.map((item) => new Row(item, `${this.tables.coordinator} token`));
    rows.sort((a, b) => (a.s('created_at') < b.s('created_at') ? -1 : a.s('created_at') > b.s('created_at') ? 1 : a.int('seq') - b.int('seq')));
    return rows.map((r) => {
      const out: TokenInfo = { tokenId: r.s('token_id'), role: r.s('role') as TokenRole, createdAt: r.s('created_at') };
      const hospitalId = r.optS('hospital_id');
      const revokedAt = r.optS('revoked_at');
      const expiresAt = r.optS('token_expires_at');
      if (hospitalId !== undefined) out.hospitalId = hospitalId;
      if (revokedAt !== undefined) out.revokedAt = revokedAt;
      if (expiresAt !== undefined) out.expiresAt = expiresAt;
      return out;
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const client of this.owned) client.destroy();
    }
    return Promise.resolve();
  }
}

function participationJson(p: Participation): Participation {
  const out: Participation = { hospitalId: p.hospitalId, stage: p.stage, status: p.status, bytesUp: p.bytesUp, bytesDown: p.bytesDown };
  if (p.reason !== undefined) out.reason = p.reason;
  return out;
}

async function loadSdk(): Promise<Sdk> {
  const [ddb, s3] = await Promise.all([import('@aws-sdk/client-dynamodb'), import('@aws-sdk/client-s3')]);
  return { ddb, s3 };
}

/**
 * Opens the aws store: checks that the three tables and the bucket exist and answer (each check
 * bounded by openTimeoutMs, default 5 s), or creates them with createMissing. Rejects with one
 * line naming the endpoint and the table or bucket.
 */
export async function openAwsStore(options: AwsStoreOptions): Promise<AwsStore> {
  if (typeof options.tablePrefix !== 'string' || !/^[A-Za-z0-9_.-]{0,200}$/.test(options.tablePrefix)) {
    throw new StoreError('invalid', `tablePrefix must be at most 200 of A-Z a-z 0-9 _ . - (DynamoDB table names), got ${JSON.stringify(options.tablePrefix)}`);
  }
  if (typeof options.bucket !== 'string' || options.bucket.length === 0) throw new StoreError('invalid', 'bucket must name an S3 bucket');
  const sdk = await loadSdk();
  const region = options.region === undefined ? {} : { region: options.region };
  // Bounded connects; requestTimeout is the socket's idle limit, not a cap on an upload.
  const requestHandler = { connectionTimeout: 3_000, requestTimeout: 60_000 };
  const owned: { destroy(): void }[] = [];
  const dynamodb = options.clients?.dynamodb ?? new sdk.ddb.DynamoDBClient({ ...region, maxAttempts: 3, requestHandler });
  if (!options.clients?.dynamodb) owned.push(dynamodb);
  // With an endpoint URL (s3rver, MinIO, LocalStack) the bucket goes in the path (http://host:port/bucket/key):
  // such servers have no per-bucket host names, which virtual-hosted addressing needs.
  const s3Endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL;
  const s3 = options.clients?.s3 ?? new sdk.s3.S3Client({ ...region, maxAttempts: 3, requestHandler, forcePathStyle: Boolean(s3Endpoint) });
  if (!options.clients?.s3) owned.push(s3);
  const store = new AwsStore(sdk, dynamodb, s3, owned, options);
  try {
    try {
      await dynamodb.config.region();
    } catch {
      throw new Error(`the ${store.describe()} needs a region: pass region or set AWS_REGION`);
    }
    await store.verify(options.createMissing === true, options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
