// Strangers stay out (issue 13, build item 3), tried as an attacker would against a real coordinator
// on loopback: the default and unknown namespaces, anonymous sockets sending large messages, the
// per-address and total connection caps, bad-token floods (REST and Socket.IO) and the audit log's
// size under a flood. Each test failed on the coordinator before the fix (see README, "Adversarial tests").
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DASHBOARD_NAMESPACE, HOSPITAL_NAMESPACE, PROTOCOL_VERSION, type ProtocolErrorPayload } from '@fedcare/shared/protocol';
import { UNAUTHENTICATED_MESSAGE_BYTES } from '../message-limit';
import type { RunningServer, ServerLimits } from '../server';
import { ADMIN_TOKEN, HOSPITAL_TOKENS, startTestServer } from '../testing/fake-hospital';

let server: RunningServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await server?.close();
  server = undefined;
});

async function start(limits: Partial<ServerLimits> = {}): Promise<RunningServer> {
  server = await startTestServer({}, { limits });
  return server;
}

/** Connects a socket.io-client socket and resolves to 'connected' or its connect_error (message and data). */
function connect(url: string, auth: Record<string, unknown>, transports: ('polling' | 'websocket')[] = ['websocket'], headers: Record<string, string> = {}): Promise<{ socket: Socket; outcome: 'connected' | (Error & { data?: ProtocolErrorPayload }) }> {
  const socket = io(url, { auth, transports, reconnection: false, forceNew: true, extraHeaders: headers });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket, outcome: 'connected' }));
    socket.once('connect_error', (e: Error & { data?: ProtocolErrorPayload }) => resolve({ socket, outcome: e }));
    // The server closed the connection without a reply (a message over the strangers' limit).
    // (socket.io-client closes its side itself on a connect_error, 'forced close', just before emitting it.)
    socket.io.once('close', (reason: string) => setTimeout(() => resolve({ socket, outcome: new Error(`connection closed: ${reason}`) }), 50));
  });
}

const hello = (hospital: string, token: string) => ({ hospital_id: hospital, token, client_version: PROTOCOL_VERSION });

/** Resolves when the socket's engine.io connection closes (the server closed it), or 'open' after `ms`. */
function engineClosed(socket: Socket, ms: number): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    if (socket.io.engine?.readyState === 'closed') return resolve('closed');
    const t = setTimeout(() => resolve('open'), ms);
    socket.io.on('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
    socket.io.engine?.on('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

describe('namespaces', () => {
  it('the default namespace / refuses every connection, with or without a valid token', async () => {
    const { url } = await start();
    for (const auth of [{}, { token: ADMIN_TOKEN }, hello('H1', HOSPITAL_TOKENS.H1 as string)]) {
      const { outcome } = await connect(`${url}/`, auth);
      expect(outcome, JSON.stringify(auth)).not.toBe('connected');
      expect((outcome as Error & { data?: ProtocolErrorPayload }).data?.code).toBe('FORBIDDEN');
    }
  });

  it('unknown namespaces refuse every connection', async () => {
    const { url } = await start();
    for (const ns of ['/admin', '/hospital2', '/dashboard/x', '/%2e%2e']) {
      const { outcome } = await connect(`${url}${ns}`, { token: ADMIN_TOKEN });
      expect(outcome, ns).not.toBe('connected');
    }
  });
});

/** `count` anonymous engine.io WebSockets in a child process, each sending `messages` Socket.IO events of `bytes` to `/`, reconnecting when closed, for `ms`. */
function anonymousFlood(url: string, o: { count: number; messages: number; bytes: number; ms: number }): Promise<{ sent: number; opened: number }> {
  const wsPath = createRequire(import.meta.url).resolve('ws');
  const script = `
    const WebSocket = require(${JSON.stringify(wsPath)});
    const o = ${JSON.stringify(o)};
    const big = '42["flood","' + 'x'.repeat(o.bytes) + '"]';
    let sent = 0, opened = 0;
    const end = Date.now() + o.ms;
    function one() {
      if (Date.now() > end) return;
      const ws = new WebSocket(${JSON.stringify(url.replace(/^http/, 'ws'))} + '/socket.io/?EIO=4&transport=websocket');
      ws.on('error', () => {});
      ws.on('close', () => setTimeout(one, 20));
      ws.on('message', (m) => {
        if (String(m).startsWith('0')) {
          opened++;
          ws.send('40');
          let left = o.messages;
          const next = () => { if (left-- > 0 && ws.readyState === 1) ws.send(big, () => { sent++; next(); }); };
          next();
        }
        if (String(m) === '2') ws.send('3');
      });
    }
    for (let i = 0; i < o.count; i++) one();
    setTimeout(() => { console.log(JSON.stringify({ sent, opened })); process.exit(0); }, o.ms + 500);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { sent: number; opened: number }));
  });
}

describe('anonymous sockets and message size', () => {
  it('3 anonymous sockets sending 8 MiB messages raise the server process memory by a few MiB at most', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { url } = await start();
    const mem = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    // Warm up (the first connections allocate Socket.IO's and ws's own structures), then measure.
    await anonymousFlood(url, { count: 3, messages: 1, bytes: 1024, ms: 300 });
    gc();
    const base = mem();
    const baseRss = process.memoryUsage().rss;
    let peak = base;
    let peakRss = baseRss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, mem());
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 5);
    const flood = await anonymousFlood(url, { count: 3, messages: 4, bytes: 8 * 1024 * 1024, ms: 3000 });
    clearInterval(sampler);
    // Let the closes finish, then collect (twice: external buffers are freed by the first's callbacks).
    await new Promise((r) => setTimeout(r, 500));
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const retained = mem() - base;
    const MiB = 1024 * 1024;
    // Reported in the README's table (heap + external: what the server allocated for the strangers).
    console.log(`anonymous flood: ${flood.opened} connections, ${flood.sent} messages of 8 MiB sent; peak +${(Math.max(0, peak - base) / MiB).toFixed(1)} MiB, rss peak +${(Math.max(0, peakRss - baseRss) / MiB).toFixed(1)} MiB, retained +${(retained / MiB).toFixed(1)} MiB`);
    expect(flood.opened).toBeGreaterThanOrEqual(3);
    // What stays allocated (the "pinned" memory): a few MiB at most.
    expect(retained).toBeLessThan(4 * MiB);
    // A message is refused when its frame header announces it, before its payload is buffered; what
    // ws reads and discards until the socket closes is garbage, collected at V8's external-memory
    // threshold — the peak is that, never the messages themselves (3 × 8 MiB, parsed: > 100 MiB).
    expect(peak - base).toBeLessThan(48 * MiB);
    // The coordinator still answers.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  }, 30_000);

  it.each([['websocket'], ['polling']] as const)('a stranger’s message over %s above the unauthenticated limit closes its connection before any namespace sees it', async (transport) => {
    const { url } = await start();
    const { socket, outcome } = await connect(`${url}${HOSPITAL_NAMESPACE}`, { ...hello('H1', 'not-a-token-0123456789abcdef'), padding: 'x'.repeat(UNAUTHENTICATED_MESSAGE_BYTES + 1024) }, [transport]);
    expect(outcome).not.toBe('connected');
    // Closed unread: no typed answer to the handshake (it was never parsed), the transport was closed.
    expect((outcome as Error & { data?: ProtocolErrorPayload }).data).toBeUndefined();
    expect((outcome as Error).message).toMatch(/connection closed|websocket error|xhr post error|transport/);
    expect(await engineClosed(socket, 3000)).toBe('closed');
  });

  it.each([['websocket'], ['polling'], ['polling', 'websocket']] as const)('an authenticated hospital over %s may still send 1 MiB messages (the 10 MiB limit is theirs)', async (...transports) => {
    const { url } = await start();
    const { socket, outcome } = await connect(`${url}${HOSPITAL_NAMESPACE}`, hello('H1', HOSPITAL_TOKENS.H1 as string), [...transports]);
    expect(outcome).toBe('connected');
    if (transports.length === 2) await new Promise<void>((resolve) => (socket.io.engine.transport.name === 'websocket' ? resolve() : socket.io.engine.once('upgrade', () => resolve())));
    // An invalid decline of 1 MiB: answered INVALID_PAYLOAD (it was received and read), the connection stays.
    const reply = (await socket.timeout(10_000).emitWithAck('fl:decline', { run_id: 'r', round: 1, stage: 'train', reason: 'x'.repeat(1024 * 1024) })) as { ok: boolean; error?: ProtocolErrorPayload };
    expect(reply.ok).toBe(false);
    expect(reply.error?.code).toBeDefined();
    expect(socket.connected).toBe(true);
  });
});

describe('connection caps', () => {
  /** An engine.io polling handshake as a stranger from `address` (behind a proxy that says so). */
  const handshake = (url: string, address: string) => fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { 'x-forwarded-for': address } });

  it('caps open connections per address and in total', async () => {
    const { url } = await start({ maxConnectionsPerIp: 3, maxConnections: 5, trustProxy: true });
    const a = await Promise.all([1, 2, 3].map(() => handshake(url, '10.0.0.1')));
    expect(a.map((r) => r.status)).toEqual([200, 200, 200]);
    const fourth = await handshake(url, '10.0.0.1');
    expect(fourth.status).toBe(403);
    expect(await fourth.text()).toMatch(/3 connections are open from this address/);
    expect((await handshake(url, '10.0.0.2')).status).toBe(200);
    expect((await handshake(url, '10.0.0.3')).status).toBe(200);
    const sixth = await handshake(url, '10.0.0.4');
    expect(sixth.status).toBe(403);
    expect(await sixth.text()).toMatch(/5 connections open/);
    // Hospitals over WebSocket are counted and capped the same way.
    const { outcome } = await connect(`${url}${HOSPITAL_NAMESPACE}`, hello('H1', HOSPITAL_TOKENS.H1 as string), ['websocket'], { 'x-forwarded-for': '10.0.0.5' });
    expect(outcome).not.toBe('connected');
  });
});

describe('bad-token floods', () => {
  it('REST: a guessing address gets 429 with Retry-After after the limit, even with a valid token, and one audit row', async () => {
    const { url, store, flushRefusals } = await start({ authFailuresPerMinute: 5 });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer guess-${i}-0123456789abcdef` } });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expect(await res.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
      }
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    // Blocked means blocked: a guesser learns nothing, not even when it guesses right.
    expect((await fetch(`${url}/api/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(429);
    await flushRefusals();
    const rows = (await store.listAudit({ limit: 1000 })).filter((e) => e.outcome === 'rejected');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ action: 'auth.refused', detail: { count: 51 } });
  });

  it('Socket.IO: past the limit the handshake is refused with a typed RATE_LIMITED error and the connection is closed', async () => {
    const { url } = await start({ authFailuresPerMinute: 3 });
    const codes: (string | undefined)[] = [];
    let last: { socket: Socket; outcome: 'connected' | (Error & { data?: ProtocolErrorPayload }) } | undefined;
    for (let i = 0; i < 6; i++) {
      last = await connect(`${url}${i % 2 ? DASHBOARD_NAMESPACE : HOSPITAL_NAMESPACE}`, i % 2 ? { token: `guess-${i}-0123456789abcdef` } : hello('H1', `guess-${i}-0123456789abcdef`));
      codes.push(last.outcome === 'connected' ? 'connected' : last.outcome.data?.code);
    }
    expect(codes.slice(0, 3)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED']);
    expect(codes.slice(3)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
    const err = last?.outcome as Error & { data?: ProtocolErrorPayload };
    expect(err.data?.retry_after_s).toBeGreaterThan(0);
    // …and the server closed the refused connections (its own count, not the client's side of it).
    for (const s of sockets.splice(0)) s.close();
    const open = async () => /^fedcare_socket_connections (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1];
    const t0 = Date.now();
    while ((await open()) !== '0' && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 50));
    expect(await open()).toBe('0');
    // The real hospital from the same address waits too.
    const real = await connect(`${url}${HOSPITAL_NAMESPACE}`, hello('H1', HOSPITAL_TOKENS.H1 as string));
    expect(real.outcome === 'connected' ? 'connected' : real.outcome.data?.code).toBe('RATE_LIMITED');
  });
});

describe('the audit log under a flood', () => {
  it('stays bounded: refusals are one row per address per window, and retention keeps the newest rows', async () => {
    const { url, store, flushRefusals, pruneAudit } = await start({ authFailuresPerMinute: 1000, trustProxy: true, auditMaxRows: 50 });
    for (let window = 0; window < 3; window++) {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => fetch(`${url}/api/v1/runs`, { headers: { authorization: `Bearer guess-${i}-0123456789abcdef`, 'x-forwarded-for': `10.1.${window}.${i}` } })),
      );
      // 40 addresses × 5 guesses: 200 refusals, 40 rows.
      for (let k = 0; k < 4; k++) await Promise.all(Array.from({ length: 40 }, (_, i) => fetch(`${url}/api/v1/runs`, { headers: { authorization: `Bearer guess-${k}-0123456789abcdef`, 'x-forwarded-for': `10.1.${window}.${i}` } })));
      await flushRefusals();
    }
    const before = await store.listAudit({ limit: 100_000 });
    expect(before.filter((e) => e.action === 'auth.refused')).toHaveLength(120);
    expect(before.every((e) => e.action !== 'auth.refused' || e.detail?.count === 5)).toBe(true);
    expect(await pruneAudit()).toBeGreaterThanOrEqual(70);
    const after = await store.listAudit({ limit: 100_000 });
    expect(after.length).toBeLessThanOrEqual(50);
    // The newest are the ones kept.
    expect(after[0]).toEqual(before[0]);
  });
});
