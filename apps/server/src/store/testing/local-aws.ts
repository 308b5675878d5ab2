// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the stand-ins ship no types; hosts that import this file (the CLI tests) need the declarations too
/// <reference path="./stand-ins.d.ts" />
/**
 * Local stand-ins for the aws store's tests: dynalite (DynamoDB, in memory) and s3rver (S3, files in
 * a temporary directory), both on 127.0.0.1 port 0, each behind a small front of ours that adds what
 * the stand-in lacks:
 *
 * - DynamoDB: dynalite 4 has no TransactWriteItems (and no UpdateTimeToLive). The front serialises
 *   every request and runs a TransactWriteItems as dynalite's own conditional single-item writes,
 *   undoing the ones made when any condition fails: all or nothing, as DynamoDB's, both for every
 *   other request (they wait their turn) and for a client killed mid-request (a request runs only
 *   once its body has arrived whole, and then runs to the end whatever became of the client).
 *   UpdateTimeToLive is answered as dynalite answers it (UnknownOperationException), or with
 *   `ttl: 'emulated'` recorded (ttlRequests) and reported by DescribeTimeToLive.
 * - S3: s3rver writes an object's file as its bytes arrive, so a client killed mid-upload would leave
 *   a torn object. S3 stores a PUT whole or not at all; the front forwards a request only once its
 *   body has arrived whole.
 *
 * Credentials: s3rver checks signatures against the key pair S3RVER / S3RVER; dynalite checks none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import dynalite from 'dynalite';
import S3rver from 's3rver';

export interface TtlRequest {
  table: string;
  attribute: string;
  enabled: boolean;
}

export interface LocalAws {
  /** The DynamoDB front, http://127.0.0.1:PORT. */
  dynamodbEndpoint: string;
  /** The S3 front, http://127.0.0.1:PORT (path-style requests). */
  s3Endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** What a process needs to reach both through the SDK's standard variables. */
  env: Record<string, string>;
  /** UpdateTimeToLive requests the front accepted (ttl: 'emulated' only). */
  ttlRequests: TtlRequest[];
  /** Fresh SDK clients on the stand-ins (destroyed by close()). */
  clients(): { dynamodb: DynamoDBClient; s3: S3Client };
  close(): Promise<void>;
}

export interface LocalAwsOptions {
  /** 'unsupported' (dynalite's own answer, the default) or 'emulated'. */
  ttl?: 'unsupported' | 'emulated';
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A DynamoDB attribute map on the wire (AttributeValue JSON), passed through untouched. */
type WireItem = Record<string, unknown>;

const JSON_TYPE = 'application/x-amz-json-1.0';

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The whole body, or undefined when the client went away before sending all of it. */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(undefined));
    req.on('aborted', () => resolve(undefined));
  });
}

function send(res: ServerResponse, reply: Reply): void {
  res.on('error', () => {}); // the client may be gone (killed): nothing to tell it
  if (res.destroyed) return;
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(reply.body.length) });
  res.end(reply.body);
}

function jsonReply(status: number, value: unknown): Reply {
  return { status, headers: { 'content-type': JSON_TYPE }, body: Buffer.from(JSON.stringify(value)) };
}

function forward(port: number, agent: Agent, method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Reply> {
  const out: IncomingHttpHeaders = { ...headers, 'content-length': String(body.length) };
  delete out['transfer-encoding'];
  delete out.expect;
  delete out.connection;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: out, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined || k === 'transfer-encoding' || k === 'connection' || k === 'content-length' || k === 'keep-alive') continue;
          h[k] = Array.isArray(v) ? v.join(', ') : v;
        }
        resolve({ status: res.statusCode ?? 500, headers: h, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs tasks one at a time, in arrival order. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const p = this.tail.then(task);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

interface TxOp {
  table: string;
  key: WireItem;
  /** The single-item write that carries the operation and its condition. */
  write: { op: 'PutItem' | 'UpdateItem' | 'DeleteItem'; payload: Record<string, unknown> };
  /** A ConditionCheck writes only to test its condition: always undone. */
  probe: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The expression fields of a transaction item, as the single-item call takes them. */
function expressionFields(x: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['ConditionExpression', 'ExpressionAttributeNames', 'ExpressionAttributeValues']) if (x[k] !== undefined) out[k] = x[k];
  return out;
}

class DynamoFront {
  readonly ttlRequests: TtlRequest[] = [];
  private readonly ttl = new Map<string, string>();
  private readonly serial = new Serial();
  private readonly keyNames = new Map<string, string[]>();

  constructor(
    private readonly backPort: number,
    private readonly agent: Agent,
    private readonly ttlMode: 'unsupported' | 'emulated',
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (body === undefined) return; // never arrived whole: never happened
    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const reply = await this.serial.run(async () => {
      if (op === 'TransactWriteItems') return this.transact(JSON.parse(body.toString('utf8')) as unknown);
      if (this.ttlMode === 'emulated' && (op === 'UpdateTimeToLive' || op === 'DescribeTimeToLive')) {
        const r = this.timeToLive(op, JSON.parse(body.toString('utf8')) as unknown);
        if (r) return r;
      }
      return forward(this.backPort, this.agent, req.method ?? 'POST', req.url ?? '/', req.headers, body);
    });
    send(res, reply);
  }

  private async call(op: string, payload: unknown): Promise<{ status: number; json: Record<string, unknown>; reply: Reply }> {
    const headers: IncomingHttpHeaders = {
      host: `127.0.0.1:${this.backPort}`,
      'content-type': JSON_TYPE,
      'x-amz-target': `DynamoDB_20120810.${op}`,
      'x-amz-date': '20250101T000000Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
    };
    const reply = await forward(this.backPort, this.agent, 'POST', '/', headers, Buffer.from(JSON.stringify(payload)));
    const json = reply.body.length ? (JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>) : {};
    return { status: reply.status, json, reply };
  }

  private async keyOf(table: string, item: WireItem): Promise<WireItem> {
    let names = this.keyNames.get(table);
    if (!names) {
      const d = await this.call('DescribeTable', { TableName: table });
      const schema = isObject(d.json.Table) && Array.isArray(d.json.Table.KeySchema) ? (d.json.Table.KeySchema as { AttributeName: string }[]) : [];
      names = schema.map((k) => k.AttributeName);
      this.keyNames.set(table, names);
    }
    return Object.fromEntries(names.map((n) => [n, item[n]]));
  }

  private async parse(items: unknown[]): Promise<TxOp[] | Reply> {
    const ops: TxOp[] = [];
    for (const entry of items) {
      if (!isObject(entry)) return jsonReply(400, { __type: 'com.amazon.coral.validate#ValidationException', message: 'a TransactItem must be an object' });
      const [kind, x] = Object.entries(entry)[0] ?? [];
      if (!isObject(x) || typeof x.TableName !== 'string') return jsonReply(400, { __type: 'com.amazon.coral.validate#ValidationException', message: 'a TransactItem needs a TableName' });
      const table = x.TableName;
      if (kind === 'Put' && isObject(x.Item)) {
        ops.push({ table, key: await this.keyOf(table, x.Item), write: { op: 'PutItem', payload: { TableName: table, Item: x.Item, ...expressionFields(x) } }, probe: false });
      } else if (kind === 'Update' && isObject(x.Key)) {
        const payload = { TableName: table, Key: x.Key, UpdateExpression: x.UpdateExpression, ...expressionFields(x) };
        ops.push({ table, key: x.Key, write: { op: 'UpdateItem', payload }, probe: false });
      } else if (kind === 'Delete' && isObject(x.Key)) {
        ops.push({ table, key: x.Key, write: { op: 'DeleteItem', payload: { TableName: table, Key: x.Key, ...expressionFields(x) } }, probe: false });
      } else if (kind === 'ConditionCheck' && isObject(x.Key)) {
        // Item is filled in with the current item (or the bare key) once it has been read.
        ops.push({ table, key: x.Key, write: { op: 'PutItem', payload: { TableName: table, ...expressionFields(x) } }, probe: true });
      } else {
        return jsonReply(400, { __type: 'com.amazon.coral.validate#ValidationException', message: `unsupported TransactItem ${String(kind)}` });
      }
    }
    return ops;
  }

  /** TransactWriteItems, all or nothing (runs inside the serial section: nobody else sees the steps). */
  private async transact(input: unknown): Promise<Reply> {
    const items = isObject(input) && Array.isArray(input.TransactItems) ? input.TransactItems : [];
    if (items.length < 1 || items.length > 100) {
      return jsonReply(400, { __type: 'com.amazon.coral.validate#ValidationException', message: `TransactItems must hold 1 to 100 items, got ${items.length}` });
    }
    const parsed = await this.parse(items);
    if (!Array.isArray(parsed)) return parsed;
    const seen = new Set<string>();
    for (const op of parsed) {
      const id = `${op.table}\u0000${JSON.stringify(Object.entries(op.key).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
      if (seen.has(id)) return jsonReply(400, { __type: 'com.amazon.coral.validate#ValidationException', message: 'Transaction request cannot include multiple operations on one item' });
      seen.add(id);
    }
    const before: (WireItem | undefined)[] = [];
    for (const op of parsed) {
      const got = await this.call('GetItem', { TableName: op.table, Key: op.key, ConsistentRead: true });
      if (got.status !== 200) return got.reply;
      before.push(isObject(got.json.Item) ? got.json.Item : undefined);
    }
    const applied: number[] = [];
    const reasons: { Code: string; Message?: string }[] = [];
    let failed = false;
    for (const [i, op] of parsed.entries()) {
      const payload = op.probe ? { ...op.write.payload, Item: before[i] ?? op.key } : op.write.payload;
      const r = await this.call(op.write.op, payload);
      if (r.status === 200) {
        applied.push(i);
        reasons.push({ Code: 'None' });
      } else if (String(r.json.__type ?? '').endsWith('#ConditionalCheckFailedException')) {
        failed = true;
        reasons.push({ Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' });
      } else {
        await this.undo(parsed, before, applied);
        return r.reply;
      }
    }
    await this.undo(parsed, before, failed ? applied : applied.filter((i) => parsed[i]?.probe));
    if (!failed) return jsonReply(200, {});
    return jsonReply(400, {
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
      CancellationReasons: reasons,
    });
  }

  private async undo(ops: TxOp[], before: (WireItem | undefined)[], applied: number[]): Promise<void> {
    for (const i of [...applied].reverse()) {
      const op = ops[i] as TxOp;
      const old = before[i];
      const r = old ? await this.call('PutItem', { TableName: op.table, Item: old }) : await this.call('DeleteItem', { TableName: op.table, Key: op.key });
      if (r.status !== 200) throw new Error(`local DynamoDB front: undoing a cancelled transaction failed: ${r.reply.body.toString('utf8')}`);
    }
  }

  private timeToLive(op: string, input: unknown): Reply | undefined {
    if (!isObject(input) || typeof input.TableName !== 'string') return undefined;
    if (op === 'UpdateTimeToLive') {
      const spec = isObject(input.TimeToLiveSpecification) ? input.TimeToLiveSpecification : {};
      const attribute = String(spec.AttributeName);
      const enabled = spec.Enabled === true;
      this.ttlRequests.push({ table: input.TableName, attribute, enabled });
      if (enabled) this.ttl.set(input.TableName, attribute);
      else this.ttl.delete(input.TableName);
      return jsonReply(200, { TimeToLiveSpecification: spec });
    }
    const attribute = this.ttl.get(input.TableName);
    return attribute === undefined ? undefined : jsonReply(200, { TimeToLiveDescription: { TimeToLiveStatus: 'ENABLED', AttributeName: attribute } });
  }
}

export async function startLocalAws(options: LocalAwsOptions = {}): Promise<LocalAws> {
  const agent = new Agent({ keepAlive: false });
  const dyn = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const dynPort = await listen(dyn);
  const s3Dir = mkdtempSync(join(tmpdir(), 'fedcare-s3rver-'));
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3Dir });
  const s3Port = (await s3rver.run()).port;

  const dynamo = new DynamoFront(dynPort, agent, options.ttl ?? 'unsupported');
  const fail = (res: ServerResponse, e: unknown): void => send(res, jsonReply(500, { __type: 'InternalServerError', message: (e as Error).message }));
  const dynFront = createServer((req, res) => void dynamo.handle(req, res).catch((e: unknown) => fail(res, e)));
  const s3Front = createServer((req, res) => {
    void readBody(req)
      .then(async (body) => {
        if (body === undefined) return;
        send(res, await forward(s3Port, agent, req.method ?? 'GET', req.url ?? '/', req.headers, body));
      })
      .catch((e: unknown) => fail(res, e));
  });
  const dynamodbEndpoint = `http://127.0.0.1:${await listen(dynFront)}`;
  const s3Endpoint = `http://127.0.0.1:${await listen(s3Front)}`;

  const region = 'us-east-1';
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const made: { destroy(): void }[] = [];
  return {
    dynamodbEndpoint,
    s3Endpoint,
    region,
    credentials,
    env: {
      AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint,
      AWS_ENDPOINT_URL_S3: s3Endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    },
    ttlRequests: dynamo.ttlRequests,
    clients() {
      const dynamodb = new DynamoDBClient({ region, endpoint: dynamodbEndpoint, credentials });
      const s3 = new S3Client({ region, endpoint: s3Endpoint, credentials, forcePathStyle: true });
      made.push(dynamodb, s3);
      return { dynamodb, s3 };
    },
    async close() {
      for (const c of made) c.destroy();
      await Promise.all([closeServer(dynFront), closeServer(s3Front)]);
      agent.destroy();
      await new Promise<void>((resolve) => dyn.close(() => resolve()));
      await s3rver.close();
      rmSync(s3Dir, { recursive: true, force: true });
    },
  };
}
