// Integration: a real coordinator on port 0 (real Socket.IO, real SQLite file) and three real
// hospital clients; a short run must complete with every seed spec 6.1 metric and a falling loss.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHospital, toNdjson } from '@fedcare/shared/data';
import { ROUND_METRIC_NAMES } from '@fedcare/shared/fl';
import { TEMPERATURE_GRID } from '@fedcare/shared/train';
import { MAX_MESSAGE_BYTES, wireSize } from '@fedcare/shared/protocol';
import { startServer, type RunningServer } from '@fedcare/server';
import { startHospital, type HeadlessHospital } from './hospital';
import { fedcareProcess } from './testing-processes';

const TOKENS = { H1: 'h1-token-0123456789abcdef', H2: 'h2-token-0123456789abcdef', H3: 'h3-token-0123456789abcdef' };
const ADMIN = 'admin-token-0123456789abcdef';

/** A coordinator on port 0 with a fresh SQLite file, the admin token and H1–H3's tokens. */
function coordinator(logLevel: 'warn' | 'silent'): Promise<RunningServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fc-fed-'));
  const env = { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') };
  return startServer({ port: 0, host: '127.0.0.1', db: path.join(dir, 'fedcare.db'), env, logLevel });
}

describe('federation over Socket.IO', () => {
  let server: RunningServer;
  const hospitals: HeadlessHospital[] = [];

  beforeAll(async () => {
    server = await coordinator('warn');
    for (const [h, token] of Object.entries(TOKENS)) {
      hospitals.push(startHospital({ server: server.url, hospitalId: h, token, records: generateHospital(h, { seed: 3, patients: 80 }).records }));
    }
  });

  afterAll(async () => {
    for (const h of hospitals) h.close();
    await server?.close();
  });

  it('runs 3 rounds of FedAvg to completion with all metrics and a falling loss', async () => {
    const res = await fetch(`${server.url}/api/v1/train/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ config: { rounds: 3, local_epochs: 2, batch_size: 16, seq_len: 12, stage_timeout_s: 120, wait_for_clients_s: 30 } }),
    });
    expect(res.status).toBe(200);
    const { run_id } = (await res.json()) as { run_id: string };
    const summary = await server.coordinator.idle();
    expect(summary?.status).toBe('completed');
    const rounds = await server.store.getRoundMetrics(run_id);
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
    for (const r of rounds) {
      for (const name of ROUND_METRIC_NAMES) expect(r.metrics, name).toHaveProperty(name);
      expect(r.metrics.num_participating_clients).toBe(3);
      expect(Object.keys(r.perHospital).sort()).toEqual(['H1', 'H2', 'H3']);
      expect(r.metrics.communication_bytes).toBeGreaterThan(3 * 2 * 2_276_364);
      // Calibration, every round: each hospital's ECE and reliability bins (counts adding up to its test examples), the temperature from the grid.
      expect(TEMPERATURE_GRID as readonly number[]).toContain(r.metrics.temperature);
      expect(r.metrics.ece).toBeGreaterThan(0);
      expect(r.metrics.ece_calibrated).toBeLessThanOrEqual(1);
      for (const h of ['H1', 'H2', 'H3']) {
        const m = r.perHospital[h]!;
        expect(m.ece, `${h} ece`).toBeGreaterThanOrEqual(0);
        const counts = Array.from({ length: 10 }, (_, b) => m[`reliability_${b}_count`]!);
        expect(counts.reduce((a, b) => a + b, 0), `${h} bins`).toBe(m.num_examples);
      }
      // Each model goes down once: the initial one with preprocessing (round 0), then each round's new
      // model with its evaluate; the next train instruction names it alone. So one model a round.
      for (const h of ['H1', 'H2', 'H3']) {
        const down = r.perHospital[h]!.communication_bytes_down!;
        expect(down, `${h} round ${r.round} bytes down`).toBeGreaterThan(2_276_364);
        expect(down, `${h} round ${r.round} bytes down`).toBeLessThan(2_276_364 + 200_000);
      }
    }
    expect(rounds[2]!.metrics.train_loss).toBeLessThan(rounds[0]!.metrics.train_loss!);
    const m = await fetch(`${server.url}/api/v1/metrics?run_id=${run_id}&round_number=2`, { headers: { authorization: `Bearer ${TOKENS.H1}` } });
    expect(m.status).toBe(200);
    const body = (await m.json()) as { rounds: { round_number: number; metrics: Record<string, number | null> }[] };
    expect(body.rounds).toHaveLength(1);
    expect(body.rounds[0]!.metrics.privacy_epsilon).toBeNull(); // ε = ∞: not private yet
  }, 300_000);
});

describe('GetStatus over Socket.IO', () => {
  it('answers a hospital with the coordinator status', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-status-'));
    const server = await startServer({ port: 0, host: '127.0.0.1', db: path.join(dir, 'db'), env: { FEDCARE_HOSPITAL_TOKENS: `H1:${TOKENS.H1}` }, logLevel: 'silent' });
    const h = startHospital({ server: server.url, hospitalId: 'H1', token: TOKENS.H1, records: generateHospital('H1', { seed: 3, patients: 10 }).records });
    try {
      await new Promise<void>((resolve) => h.socket.once('connect', () => resolve()));
      const res = await h.socket.timeout(5000).emitWithAck('fl:status');
      expect(res.ok).toBe(true);
      if (res.ok) {
        expect(res.value.status).toBe('idle');
        expect(res.value.active_clients).toEqual(['H1']);
        expect(res.value.protocol_version).toBe(3);
      }
      // a dashboard that connects later is told at once who is connected
      const { io } = await import('socket.io-client');
      const dash = io(`${server.url}/dashboard`, { auth: { token: TOKENS.H1 }, transports: ['websocket'] });
      const clients = await new Promise<{ hospitals: { hospital_id: string }[] }>((resolve) => dash.once('dash:clients', resolve));
      dash.close();
      expect(clients.hospitals.map((c) => c.hospital_id)).toEqual(['H1']);
    } finally {
      h.close();
      await server.close();
    }
  });
});

describe('a result over the message limit', () => {
  it('is measured as Socket.IO frames it, declined by the hospital with the reason, and the hospital stays for the next round', async () => {
    const server = await coordinator('silent');
    const records = (h: string) => generateHospital(h, { seed: 5, patients: 24 }).records;
    // H3's round-1 weights grow one byte past the limit (a model too large for the coordinator).
    const hospitals = [
      startHospital({ server: server.url, hospitalId: 'H1', token: TOKENS.H1, records: records('H1') }),
      startHospital({ server: server.url, hospitalId: 'H2', token: TOKENS.H2, records: records('H2') }),
      startHospital({
        server: server.url,
        hospitalId: 'H3',
        token: TOKENS.H3,
        records: records('H3'),
        tamper: (r) => (r.stage === 'train' && r.round === 1 ? { ...r, weights: new Uint8Array(MAX_MESSAGE_BYTES + 1) } : r),
      }),
    ];
    // What H3's socket really puts on the wire (engine.io packets), to hold wireSize to it.
    const frames: (string | ArrayBuffer | Uint8Array)[] = [];
    hospitals[2]!.socket.io.on('open', () => {
      hospitals[2]!.socket.io.engine.on('packetCreate', (p: { type: string; data?: string | ArrayBuffer | Uint8Array }) => {
        if (p.type === 'message' && p.data !== undefined) frames.push(p.data);
      });
    });
    let disconnects = 0;
    hospitals[2]!.socket.on('disconnect', () => disconnects++);
    try {
      await Promise.all(hospitals.map((h) => new Promise<void>((resolve) => (h.socket.connected ? resolve() : h.socket.once('connect', () => resolve())))));
      const { runId } = await server.coordinator.start({ rounds: 2, local_epochs: 1, batch_size: 16, seq_len: 12, stage_timeout_s: 120, wait_for_clients_s: 30, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2 }, 'test');
      const summary = await server.coordinator.idle();
      expect(summary?.status, summary?.reason).toBe('completed');
      const rounds = await server.store.getRoundMetrics(runId);
      const h3train = (i: number) => rounds[i]!.participation.find((p) => p.hospitalId === 'H3' && p.stage === 'train');
      expect(h3train(0)).toMatchObject({
        status: 'declined',
        reason: `declined: MESSAGE_TOO_LARGE: fl:result: weights is 10,485,761 bytes, over the coordinator's limit of 10,485,760 bytes per message`,
      });
      expect(rounds[0]!.metrics.num_participating_clients).toBe(2);
      expect(h3train(1)?.status).toBe('ok');
      expect(rounds[1]!.metrics.num_participating_clients).toBe(3);
      expect(disconnects).toBe(0);
      expect(hospitals[2]!.socket.connected).toBe(true);

      // wireSize predicts the frames: round 2's train result is one text packet and one attachment.
      const at = frames.findIndex((f) => typeof f === 'string' && f.includes('"fl:result"') && f.includes('"stage":"train"'));
      expect(at).toBeGreaterThanOrEqual(0);
      const text = frames[at] as string;
      const sent = JSON.parse(text.slice(text.indexOf('['))) as [string, Record<string, unknown>];
      const binary = frames[at + 1]!;
      expect(typeof binary).not.toBe('string');
      const bytes = (binary as ArrayBuffer | Uint8Array).byteLength;
      const predicted = wireSize('fl:result', { ...sent[1], weights: new Uint8Array(bytes) });
      expect(predicted.attachments).toEqual([{ path: 'weights', bytes }]);
      expect(bytes).toBeGreaterThan(2_000_000);
      const textBytes = new TextEncoder().encode(text).length;
      expect(predicted.text).toBeGreaterThanOrEqual(textBytes);
      expect(predicted.text - textBytes).toBeLessThan(64);
    } finally {
      for (const h of hospitals) h.close();
      await server.close();
    }
  }, 300_000);
});

describe('a headless hospital whose token is revoked', () => {
  it('ends with the coordinator’s reason instead of waiting for a reconnect that will not come', async () => {
    const server = await coordinator('silent');
    const created = await server.store.createToken({ role: 'hospital', hospitalId: 'H2' });
    const h = startHospital({ server: server.url, hospitalId: 'H2', token: created.token, records: generateHospital('H2', { seed: 3, patients: 10 }).records });
    try {
      await new Promise<void>((resolve) => (h.socket.connected ? resolve() : h.socket.once('connect', () => resolve())));
      const res = await fetch(`${server.url}/api/v1/tokens/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token_id: created.tokenId }),
      });
      expect(await res.json()).toEqual({ token_id: created.tokenId, revoked: true, disconnected: 1 });
      await expect(h.done).rejects.toThrow('H2: the coordinator closed the connection: UNAUTHORIZED: this token was revoked');
      // `fedcare client` with that token: refused at sign-in, said in one line, exit 1 (not an internal error)
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'fc-revoked-')), 'H2.ndjson');
      writeFileSync(file, toNdjson(generateHospital('H2', { seed: 3, patients: 10 }).records));
      const p = fedcareProcess(['client', '--server', server.url, '--hospital', 'H2', '--data', file, '--quiet'], { FEDCARE_TOKEN: created.token });
      expect(await p.exited).toBe(1);
      expect(p.output()).toContain('fedcare client: H2: the coordinator refused the connection: UNAUTHORIZED: unknown or revoked token');
      expect(p.output()).not.toContain('internal error');
    } finally {
      h.close();
      await server.close();
    }
  }, 60_000);
});

describe('fedcare token --server', () => {
  it('creates, lists and revokes a hospital token on a running coordinator over REST, with the admin token from the environment', async () => {
    const server = await coordinator('silent');
    try {
      const create = fedcareProcess(['token', 'create', '--hospital', 'H7', '--server', server.url, '--json'], { FEDCARE_ADMIN_TOKEN: ADMIN });
      expect(await create.exited, create.output()).toBe(0);
      const created = JSON.parse(create.output().split('\n').find((l) => l.startsWith('{'))!) as { token_id: string; token: string; hospital_id: string };
      expect(created.hospital_id).toBe('H7');
      expect(await (await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${created.token}` } })).json()).toEqual({ role: 'hospital', hospital_id: 'H7' });
      const list = fedcareProcess(['token', 'list', '--server', server.url], { FEDCARE_ADMIN_TOKEN: ADMIN });
      expect(await list.exited).toBe(0);
      expect(list.output()).toMatch(new RegExp(`${created.token_id}\\s+hospital\\s+H7`));
      expect(list.output()).not.toContain(created.token);
      const revoke = fedcareProcess(['token', 'revoke', created.token_id, '--server', server.url], { FEDCARE_ADMIN_TOKEN: ADMIN });
      expect(await revoke.exited).toBe(0);
      expect(revoke.output()).toContain(`token ${created.token_id} revoked; 0 open connection(s) closed`);
      expect((await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${created.token}` } })).status).toBe(401);
      // a hospital token is not an admin token: refused by the coordinator, said in one line
      const denied = fedcareProcess(['token', 'list', '--server', server.url], { FEDCARE_ADMIN_TOKEN: TOKENS.H1 });
      expect(await denied.exited).toBe(1);
      expect(denied.output()).toContain(`fedcare token: ${server.url}: 403 FORBIDDEN: /api/v1/tokens needs the admin token; this is hospital H1's token`);
      const none = fedcareProcess(['token', 'list', '--server', server.url], { FEDCARE_ADMIN_TOKEN: '' });
      expect(await none.exited).toBe(2);
      expect(none.output()).toContain('--server needs the admin token in FEDCARE_ADMIN_TOKEN');
    } finally {
      await server.close();
    }
  }, 60_000);
});
