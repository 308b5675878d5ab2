/**
 * The coordinator process: HTTP (REST + OpenAPI + Prometheus) and Socket.IO (hospitals on
 * `/hospital`, dashboards on `/dashboard`) on one port, a Store, the round engine.
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino, { type Logger as PinoLogger } from 'pino';
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import { Server, type Namespace } from 'socket.io';
import type { Store, TokenPrincipal } from '@fedcare/shared/fl';
import {
  DASHBOARD_NAMESPACE,
  HOSPITAL_NAMESPACE,
  helloSchema,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  validate,
  type DashboardClientToServer,
  type DashboardServerToClient,
  type ProtocolErrorPayload,
} from '@fedcare/shared/protocol';
import { Coordinator } from './coordinator';
import { SocketGrid, type HospitalNamespace } from './grid';
import { writeRoundEmf, type EmfOptions } from './emf';
import { AuthGuard, clientAddress, ConnectionCaps, DEFAULT_STRANGER_LIMITS, type StrangerLimits } from './auth-guard';
import { apiRoutes, bearer, createHttpHandler, forbidden, HttpError, rateLimited, unauthorized } from './http';
import { raiseMessageLimit, UNAUTHENTICATED_MESSAGE_BYTES } from './message-limit';
import { originRefusal, securityHeaders, surfaceOf } from './security';
import { viewClients, viewRound, viewStage, viewStatus } from './views';
import { serveStatic, type StaticApp } from './static';
import { openSqliteStore } from './store/sqlite';
import { TokenAuthority } from './store/tokens';

/**
 * Socket.IO message limit (`MAX_MESSAGE_BYTES`, in the shared protocol so that hospitals check it
 * before sending): the largest thing a hospital sends is an HE-encrypted update (4.5 MB seeded
 * symmetric, 9.05 MB with the public key, for 569,091 weights); plain weights are 2.28 MB.
 * 10 MiB: the seed spec's per-client upload cap (8.3), and no more.
 */
export { MAX_MESSAGE_BYTES };

/** Strangers' limits (auth-guard.ts) and the audit log's retention. */
export interface ServerLimits extends StrangerLimits {
  /** The audit log keeps at most this many entries (default 100,000)… */
  auditMaxRows: number;
  /** …none older than this many days (default 365). */
  auditMaxAgeDays: number;
  /** How often retention runs (default 10 minutes; also once at start). */
  auditPruneIntervalMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = { ...DEFAULT_STRANGER_LIMITS, auditMaxRows: 100_000, auditMaxAgeDays: 365, auditPruneIntervalMs: 600_000 };

export interface ServerOptions {
  port?: number;
  /** Interface to listen on; default 127.0.0.1 (a deployment says 0.0.0.0 on purpose: `--host`, FEDCARE_HOST). */
  host?: string;
  /** Connection caps, the failed-authentication rate and audit retention; defaults in DEFAULT_LIMITS. */
  limits?: Partial<ServerLimits>;
  /** SQLite file (':memory:' for tests); used when no `store` is given. */
  db?: string;
  /** An opened Store (the aws store, say); the server closes it on close(). */
  store?: Store;
  /** HTTPS and WSS with this certificate (PEM); TLS 1.2 minimum, 1.3 offered. Without it, plain HTTP (TLS ends at a load balancer). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Browser origins answered besides the coordinator's own (FEDCARE_ALLOWED_ORIGINS). */
  allowedOrigins?: readonly string[];
  /** One CloudWatch Embedded Metric Format record per completed round (seed spec 6.2). */
  cloudwatchEmf?: EmfOptions;
  env?: Record<string, string | undefined>;
  logLevel?: string;
  /** Pino destination; defaults to stdout. */
  logStream?: NodeJS.WritableStream;
  /** Built web apps to serve (dashboard at /dashboard/, portal at /hospital/). */
  staticApps?: StaticApp[];
}

export interface RunningServer {
  url: string;
  port: number;
  coordinator: Coordinator;
  store: Store;
  grid: SocketGrid;
  tokens: TokenAuthority;
  log: PinoLogger;
  http: HttpServer;
  /** Writes the refusals counted so far (one audit row per address) now, not at the end of the window. */
  flushRefusals(): Promise<void>;
  /** Runs audit retention now; resolves to how many entries it removed. */
  pruneAudit(): Promise<number>;
  /** 'round' (RoundReport), 'stage' (StageProgress), 'status' (ServerStatus), 'runEnd' (FederationSummary), 'cspViolation' (the browser's report). */
  events: EventEmitter;
  /**
   * Drains and stops: /readyz answers 503 at once (a load balancer stops sending new work), for
   * `drainMs` the process keeps serving (default 0), then a running run is interrupted (it resumes
   * at the next start) and everything closes.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const log = pino({ level: o.logLevel ?? 'info', base: { service: 'fedcare-coordinator' } }, o.logStream ?? process.stdout);
  if (!o.store && o.db === undefined) throw new Error('startServer: give a store or a SQLite file (db)');
  const store = o.store ?? openSqliteStore(o.db as string);
  const tls = o.tls !== undefined;
  const allowedOrigins = o.allowedOrigins ?? [];
  const setSecurityHeaders = securityHeaders(tls);
  /** false while starting (store opened, run not yet resumed) and while draining: /readyz answers 503. */
  let ready = false;
  let draining = false;
  const tokens = TokenAuthority.fromEnv(store, o.env ?? process.env);
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...o.limits };

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gRound = new Gauge({ name: 'fedcare_round', help: 'Last completed round of the active run', registers: [registry] });
  const gClients = new Gauge({ name: 'fedcare_active_clients', help: 'Connected, authenticated hospitals', registers: [registry] });
  const gAccuracy = new Gauge({ name: 'fedcare_global_accuracy', help: 'Test accuracy of the global model (federated evaluation)', registers: [registry] });
  const gAuc = new Gauge({ name: 'fedcare_global_auc_roc', help: 'Macro AUC-ROC of the global model', registers: [registry] });
  const gDuration = new Gauge({ name: 'fedcare_round_duration_seconds', help: 'Duration of the last round', registers: [registry] });
  const cBytes = new Counter({ name: 'fedcare_communication_bytes_total', help: 'Bytes moved with hospitals during rounds', labelNames: ['direction'], registers: [registry] });
  const cRejected = new Counter({ name: 'fedcare_rejected_messages_total', help: 'Hospital messages rejected', labelNames: ['code'], registers: [registry] });
  const cDenied = new Counter({ name: 'fedcare_auth_denied_total', help: 'Refused credentials', labelNames: ['surface', 'status'], registers: [registry] });
  const cOrigin = new Counter({ name: 'fedcare_origin_refused_total', help: 'Browser requests refused for their Origin', labelNames: ['surface'], registers: [registry] });
  new Gauge({
    name: 'fedcare_socket_connections',
    help: 'Open Socket.IO (engine.io) connections, authenticated or not',
    registers: [registry],
    collect(this: Gauge) {
      this.set(caps.openCount);
    },
  });
  const cConnRefused = new Counter({ name: 'fedcare_connections_refused_total', help: 'Socket.IO connections refused by the per-address or total cap', registers: [registry] });
  const cCsp = new Counter({ name: 'fedcare_csp_violations_total', help: 'Content-Security-Policy violation reports received', registers: [registry] });

  const http = tls ? createHttpsServer({ cert: o.tls!.cert, key: o.tls!.key, minVersion: 'TLSv1.2' }) : createHttpServer();
  // REST is registered before Socket.IO attaches: engine.io then hands it only the requests that are
  // not its own. Registered after, it also answered /socket.io/ polling requests (404) while engine.io
  // was answering them, and engine.io's second writeHead threw: one polling GET killed the process.
  let rest: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.writeHead(503).end();
  http.on('request', (req, res) => {
    const surface = surfaceOf(new URL(req.url ?? '/', 'http://localhost').pathname);
    setSecurityHeaders(req, res, surface);
    const why = originRefusal(req, allowedOrigins, tls);
    if (why) {
      cOrigin.inc({ surface });
      res.writeHead(403, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: { code: 'FORBIDDEN', message: why } }));
      return;
    }
    const origin = req.headers.origin?.toLowerCase();
    if (origin !== undefined && allowedOrigins.includes(origin)) {
      // A listed origin (a dashboard served elsewhere) may call the API; nobody else is echoed.
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { 'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' }).end();
        return;
      }
    }
    rest(req, res);
  });
  const audit = (entry: Parameters<Store['appendAudit']>[0]): Promise<unknown> =>
    store.appendAudit(entry).catch((e: unknown) => log.error({ err: (e as Error).message }, 'audit write failed'));
  const guard = new AuthGuard(limits, audit);
  const caps = new ConnectionCaps(limits);
  const addressOf = (req: IncomingMessage) => clientAddress(req, limits.trustProxy);
  const io = new Server(http, {
    // Strangers' limit: raised to MAX_MESSAGE_BYTES for a connection once a hospital's handshake is
    // accepted (message-limit.ts). Anything larger before that closes the connection unread.
    maxHttpBufferSize: UNAUTHENTICATED_MESSAGE_BYTES,
    // A connection that joins no namespace is closed after this long (Socket.IO's default is 45 s).
    connectTimeout: 10_000,
    serveClient: false,
    // No CORS answer at all: a browser page of another origin gets no session (checked for every
    // transport, WebSocket included — CORS does not apply to WebSocket, so allowRequest does it).
    cors: { origin: (origin, callback) => callback(null, origin !== undefined && allowedOrigins.includes(origin.toLowerCase())) },
    allowRequest: (req, callback) => {
      const why = originRefusal(req, allowedOrigins, tls);
      if (why) {
        cOrigin.inc({ surface: 'socket' });
        log.warn({ origin: req.headers.origin, address: req.socket.remoteAddress }, 'socket.io connection refused: origin not allowed');
        return callback(why, false);
      }
      const full = caps.refusal(addressOf(req));
      if (full) {
        cConnRefused.inc();
        guard.refused(addressOf(req), 'socket:TOO_MANY_CONNECTIONS');
        return callback(full, false);
      }
      callback(null, true);
    },
  });
  /**
   * Closes a refused socket's connection once its typed error is on its way: Socket.IO queues the
   * CONNECT_ERROR a tick after the middleware answers, and engine.io's close() waits for queued
   * packets to drain (a polling client gets it with its next GET).
   */
  const closeAfterReply = (socket: { conn: { close(): void } }) => setImmediate(() => socket.conn.close());
  // Counted from the handshake to the close, per address and in all.
  io.engine.on('connection', (conn: { request: IncomingMessage; once(event: 'close', fn: () => void): void }) => {
    conn.once('close', caps.open(addressOf(conn.request)));
  });
  // The default namespace serves nobody: hospitals use /hospital, dashboards /dashboard. Unknown
  // namespaces are refused by Socket.IO itself (no dynamic namespaces).
  io.of('/').use((socket, next) => {
    guard.refused(addressOf(socket.request), 'socket:/');
    const err = new Error('the default namespace is closed: hospitals connect to /hospital, dashboards to /dashboard') as Error & { data: ProtocolErrorPayload };
    err.data = { code: 'FORBIDDEN', message: err.message, event: 'connect' };
    next(err);
    closeAfterReply(socket);
  });
  io.engine.on('headers', (headers: Record<string, string>) => {
    headers['x-content-type-options'] = 'nosniff';
    headers['cache-control'] = 'no-store';
  });
  /** Refuses a blocked address's handshake with RATE_LIMITED and closes its connection (after the error is sent). */
  const refuseBlocked = (socket: { conn: { close(): void } }, next: (err?: Error) => void, retryAfterS: number) => {
    const err = new Error(`too many failed authentications from this address; try again in ${retryAfterS} s`) as Error & { data: ProtocolErrorPayload };
    err.data = { code: 'RATE_LIMITED', message: err.message, field: 'token', event: 'connect', retry_after_s: retryAfterS };
    next(err);
    closeAfterReply(socket);
  };

  // Hospitals: a credential bound to one hospital; nobody can act as another.
  const hospitals = io.of(HOSPITAL_NAMESPACE) as unknown as HospitalNamespace;
  hospitals.use((socket, next) => {
    const address = addressOf(socket.request);
    // Refusals are audited in aggregate (one row per address per window, AuthGuard), not one row each.
    const deny = (code: ProtocolErrorPayload['code'], message: string, field?: string) => {
      const err = new Error(message) as Error & { data: ProtocolErrorPayload };
      err.data = { code, message, ...(field ? { field } : {}), event: 'connect' };
      cDenied.inc({ surface: 'socket', status: code });
      log.warn({ address, code, message }, 'hospital connection refused');
      void guard.failed(address, `hospital:${code}`, code === 'UNAUTHORIZED').then(
        (blocked) => (blocked === undefined ? next(err) : refuseBlocked(socket, next, blocked)),
        () => next(err),
      );
    };
    const hello = validate(helloSchema, socket.handshake.auth);
    if (!hello.ok) return deny('INVALID_PAYLOAD', `handshake ${hello.message}`, hello.field);
    if (hello.value.client_version !== PROTOCOL_VERSION) return deny('INVALID_PAYLOAD', `protocol version ${hello.value.client_version} unsupported (server speaks ${PROTOCOL_VERSION})`, 'client_version');
    guard
      .retryAfter(address)
      .then(async (wait) => {
        if (wait !== undefined) {
          guard.refused(address, 'hospital:RATE_LIMITED');
          return refuseBlocked(socket, next, wait);
        }
        const p = await tokens.verify(hello.value.token);
        if (!p) return deny('UNAUTHORIZED', 'unknown or revoked token', 'token');
        if (p.role !== 'hospital') return deny('FORBIDDEN', `an ${p.role} token cannot join as a hospital`, 'token');
        if (p.hospitalId !== hello.value.hospital_id) return deny('FORBIDDEN', `this token belongs to ${p.hospitalId}, not ${hello.value.hospital_id}`, 'hospital_id');
        socket.data.hospitalId = p.hospitalId;
        if (hello.value.host) socket.data.host = hello.value.host;
        if (hello.value.num_records !== undefined) socket.data.numRecords = hello.value.num_records;
        audit({ actor: `hospital:${p.hospitalId}`, action: 'join', outcome: 'ok', detail: { host: hello.value.host ?? 'unknown' } });
        log.info({ hospital: p.hospitalId, host: hello.value.host }, 'hospital joined');
        // An authenticated hospital may send updates up to MAX_MESSAGE_BYTES (HE ciphertexts).
        raiseMessageLimit(socket.conn, MAX_MESSAGE_BYTES);
        next();
      })
      .catch((e: unknown) => next(e as Error));
  });

  // Dashboards: any valid token may watch, each seeing what its role may (views.ts): admin and
  // observer every hospital, a hospital only itself and the global figures. Run control is REST.
  const dashboards = io.of(DASHBOARD_NAMESPACE) as unknown as Namespace<DashboardClientToServer, DashboardServerToClient>;
  dashboards.use((socket, next) => {
    const address = addressOf(socket.request);
    const token = (socket.handshake.auth as { token?: unknown }).token;
    guard
      .retryAfter(address)
      .then(async (wait) => {
        if (wait !== undefined) {
          guard.refused(address, 'dashboard:RATE_LIMITED');
          return refuseBlocked(socket, next, wait);
        }
        const p = await tokens.verify(token);
        if (!p) {
          cDenied.inc({ surface: 'dashboard', status: 'UNAUTHORIZED' });
          const err = new Error('unknown or missing token') as Error & { data: ProtocolErrorPayload };
          err.data = { code: 'UNAUTHORIZED', message: 'unknown or missing token', field: 'token' };
          const blocked = await guard.failed(address, 'dashboard:UNAUTHORIZED');
          return blocked === undefined ? next(err) : refuseBlocked(socket, next, blocked);
        }
        socket.data.principal = p;
        next();
      })
      .catch((e: unknown) => next(e as Error));
  });
  /** Sends each dashboard the view of `payload` its role may see. */
  const toDashboards = <E extends keyof DashboardServerToClient>(event: E, payload: Parameters<DashboardServerToClient[E]>[0], view: (p: TokenPrincipal | undefined, v: typeof payload) => typeof payload) => {
    for (const socket of dashboards.sockets.values()) {
      const args = [view(socket.data.principal as TokenPrincipal | undefined, payload)] as unknown as Parameters<DashboardServerToClient[E]>;
      socket.emit(event, ...args);
    }
  };
  const whole = <T>(_p: TokenPrincipal | undefined, v: T): T => v;

  const grid = new SocketGrid(hospitals, {
    onReject: (h, err) => {
      cRejected.inc({ code: err.code });
      audit({ actor: `hospital:${h}`, action: err.event ?? 'message', outcome: 'rejected', detail: { ...err } });
      log.warn({ hospital: h, ...err }, 'message rejected');
    },
    onDecline: (h, reason) => audit({ actor: `hospital:${h}`, action: 'decline', outcome: 'ok', detail: { reason } }),
    onDisconnect: (h, reason, detail) => {
      // ws ("Max payload size exceeded") and HTTP polling ("payload too large") report MAX_MESSAGE_BYTES this way.
      const tooLarge = detail !== undefined && /Max payload size exceeded|payload too large/.test(detail);
      if (tooLarge) {
        cRejected.inc({ code: 'MESSAGE_TOO_LARGE' });
        log.warn({ hospital: h, reason, detail }, `message over ${MAX_MESSAGE_BYTES} bytes: connection closed`);
      }
      audit({ actor: `hospital:${h}`, action: 'leave', outcome: tooLarge ? 'rejected' : 'ok', detail: { reason, ...(detail ? { detail } : {}), ...(tooLarge ? { code: 'MESSAGE_TOO_LARGE' } : {}) } });
    },
    onConnectionChange: (list) => {
      gClients.set(list.length);
      toDashboards('dash:clients', connectedHospitals(list), viewClients);
    },
    onRun: (e) => toDashboards('dash:run', e, whole),
  });

  function connectedHospitals(list: string[]) {
    return {
      hospitals: list.map((h) => {
        const host = grid.hostOf(h);
        const n = grid.numRecordsOf(h);
        return { hospital_id: h, state: 'connected', ...(host ? { host } : {}), ...(n !== undefined ? { num_records: n } : {}) };
      }),
    };
  }

  const events = new EventEmitter();
  const coordinator = new Coordinator(store, grid, log, {
    onStatus: (s) => {
      events.emit('status', s);
      toDashboards('dash:status', s, viewStatus);
    },
    onRunEnd: (s) => events.emit('runEnd', s),
    onStage: (p) => {
      events.emit('stage', p);
      toDashboards('dash:stage', { run_id: p.runId, round: p.round, stage: p.stage, done: p.phase === 'end' ? p.targets.length - p.dropped.length : 0, total: p.targets.length, dropped: p.dropped }, viewStage);
    },
    onRound: (r) => {
      events.emit('round', r);
      if (o.cloudwatchEmf) writeRoundEmf(r, o.cloudwatchEmf).catch((e: unknown) => log.error({ err: (e as Error).message }, 'CloudWatch EMF record not written'));
      gRound.set(r.round);
      if (Number.isFinite(r.metrics.test_accuracy)) gAccuracy.set(r.metrics.test_accuracy as number);
      if (Number.isFinite(r.metrics.auc_roc)) gAuc.set(r.metrics.auc_roc as number);
      gDuration.set(r.metrics.round_duration_seconds ?? 0);
      for (const b of Object.values(r.bytes)) {
        cBytes.inc({ direction: 'up' }, b.up);
        cBytes.inc({ direction: 'down' }, b.down);
      }
      toDashboards('dash:round', {
        run_id: r.runId,
        round: r.round,
        metrics: r.metrics,
        per_hospital: r.perHospital,
        participation: r.participation.map((p) => ({ hospitalId: p.hospitalId, stage: p.stage, status: p.status, ...(p.reason ? { reason: p.reason } : {}) })),
        completed_at: new Date().toISOString(),
      }, viewRound);
    },
  });
  dashboards.on('connection', (socket) => {
    const p = socket.data.principal as TokenPrincipal | undefined;
    socket.emit('dash:status', viewStatus(p, coordinator.status()));
    socket.emit('dash:clients', viewClients(p, connectedHospitals(grid.available())));
  });
  // GetStatus (seed spec 7.1): a hospital asks where the federation is (and sees itself, not the others).
  hospitals.on('connection', (socket) => {
    socket.on('fl:status', (ack) => {
      if (typeof ack === 'function') ack({ ok: true, value: viewStatus({ role: 'hospital', hospitalId: String(socket.data.hospitalId) }, coordinator.status()) });
    });
  });

  const verify = (t: string | undefined): Promise<TokenPrincipal | undefined> => tokens.verify(t);
  // Refused REST credentials: counted, rate-limited per address (401s) and audited in aggregate.
  const denied = (req: IncomingMessage, status: 401 | 403, path: string): Promise<number | undefined> => {
    cDenied.inc({ surface: 'rest', status: String(status) });
    return guard.failed(addressOf(req), `rest:${status} ${path.slice(0, 64)}`, status === 401);
  };
  const httpGuard = {
    retryAfter: (req: IncomingMessage) => guard.retryAfter(addressOf(req)),
    denied,
    internal: (err: unknown, id: string, req: IncomingMessage) => {
      log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), correlation_id: id, method: req.method, url: req.url?.split('?')[0] }, 'internal error answered as 500');
    },
  };
  // A revoked token's connections close at once (not at their next reconnect): every socket's
  // handshake token is checked again, and those no longer valid are told why and disconnected.
  const dropRevoked = async (): Promise<number> => {
    let dropped = 0;
    for (const ns of [hospitals, dashboards] as unknown as Namespace[]) {
      for (const socket of ns.sockets.values()) {
        if (await tokens.verify((socket.handshake.auth as { token?: unknown }).token)) continue;
        socket.emit('fl:error', { code: 'UNAUTHORIZED', message: 'this token was revoked', field: 'token' } satisfies ProtocolErrorPayload);
        socket.disconnect(true);
        audit({ actor: socket.data.hospitalId ? `hospital:${String(socket.data.hospitalId)}` : 'dashboard', action: 'leave', outcome: 'rejected', detail: { reason: 'token revoked' } });
        dropped++;
      }
    }
    return dropped;
  };
  rest = createHttpHandler(
    apiRoutes(coordinator, store, { onRevoke: dropRevoked }),
    verify,
    async (req, res, url) => {
      if (url.pathname === '/metrics' && req.method === 'GET') {
        // Open for a scraper on a private network unless FEDCARE_METRICS_TOKEN is set.
        const token = bearer(req);
        if (tokens.metricsProtected) {
          const wait = await guard.retryAfter(addressOf(req));
          if (wait !== undefined) throw rateLimited(wait);
        }
        const access = await tokens.verifyMetrics(token);
        if (access !== 'ok') {
          const blocked = await denied(req, access === 'unauthorized' ? 401 : 403, url.pathname);
          if (blocked !== undefined) throw rateLimited(blocked);
          throw access === 'unauthorized' ? unauthorized(token) : forbidden('/metrics needs the metrics token (FEDCARE_METRICS_TOKEN) or the admin token');
        }
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(await registry.metrics());
        return true;
      }
      if (o.staticApps && serveStatic(o.staticApps, req, res, url)) return true;
      if (url.pathname === '/healthz') {
        // Alive: the process answers (a load balancer's liveness, the image's HEALTHCHECK).
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end('{"ok":true}');
        return true;
      }
      if (url.pathname === '/readyz') {
        // Ready: the store is open, an interrupted run has been resumed, and the process is not draining.
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ ready, ...(ready ? {} : { reason: draining ? 'shutting down' : 'starting' }) }));
        return true;
      }
      if (url.pathname === '/csp-report' && req.method === 'POST') {
        const report = await readReport(req);
        cCsp.inc();
        log.warn({ report }, 'Content-Security-Policy violation reported by a browser');
        events.emit('cspViolation', report);
        res.writeHead(204).end();
        return true;
      }
      return false;
    },
    httpGuard,
  );

  // Audit retention: at start and every auditPruneIntervalMs.
  const pruneAudit = () =>
    store
      .pruneAudit({ maxRows: limits.auditMaxRows, maxAgeMs: limits.auditMaxAgeDays * 86_400_000 })
      .then((n) => {
        if (n > 0) log.info({ removed: n }, 'audit log retention: oldest entries removed');
        return n;
      })
      .catch((e: unknown) => {
        log.error({ err: (e as Error).message }, 'audit log retention failed');
        return 0;
      });
  const pruneTimer = setInterval(() => void pruneAudit(), limits.auditPruneIntervalMs);
  pruneTimer.unref();
  void pruneAudit();

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const url = `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}`;
  log.info({ url, store: o.store ? 'given' : o.db, tls }, 'coordinator listening');
  await coordinator.boot();
  ready = true;

  return {
    url,
    port,
    coordinator,
    store,
    grid,
    tokens,
    log,
    http,
    events,
    flushRefusals: () => guard.flush(),
    pruneAudit,
    async close(options: { drainMs?: number } = {}) {
      draining = true;
      ready = false;
      if (options.drainMs) await new Promise((resolve) => setTimeout(resolve, options.drainMs));
      // A running run is interrupted, not stopped: the next start on this database resumes it.
      await coordinator.shutdown().catch(() => undefined);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      clearInterval(pruneTimer);
      // The last window's aggregated refusals are written before the store closes.
      await guard.close();
      await store.close();
    },
  };
}

/** A browser's CSP report (report-uri: application/csp-report JSON), at most 16 KiB; malformed ones are kept as text. */
async function readReport(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 16 * 1024) throw new HttpError(413, 'MESSAGE_TOO_LARGE', 'CSP report over 16 KiB');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.slice(0, 2000);
  }
}
