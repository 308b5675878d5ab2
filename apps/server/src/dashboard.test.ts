// The /dashboard namespace as the dashboard sees it: who is connected (and on what), each round
// with its participation and the server's completion time, and the end of the run — pushed, never polled.
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_NAMESPACE, type DashboardClientToServer, type DashboardServerToClient } from '@fedcare/shared/protocol';
import type { RunningServer } from './server';
import { FakeHospital, HOSPITAL_TOKENS, startTestServer } from './testing/fake-hospital';

type DashSocket = Socket<DashboardServerToClient, DashboardClientToServer>;
type Events = { [K in keyof DashboardServerToClient]: Parameters<DashboardServerToClient[K]>[0][] };

let server: RunningServer;
let dash: DashSocket;
const seen: Events = { 'dash:status': [], 'dash:stage': [], 'dash:round': [], 'dash:clients': [], 'dash:run': [] };

beforeAll(async () => {
  server = await startTestServer();
  // An observer sees every hospital (a hospital's token sees only itself: adversarial/privilege.test.ts).
  const { token } = await server.store.createToken({ role: 'observer' });
  dash = io(`${server.url}${DASHBOARD_NAMESPACE}`, { auth: { token }, transports: ['websocket'], forceNew: true });
  for (const k of Object.keys(seen) as (keyof Events)[]) dash.on(k, ((m: never) => (seen[k] as unknown[]).push(m)) as never);
  await new Promise<void>((resolve, reject) => {
    dash.once('connect', () => resolve());
    dash.once('connect_error', reject);
  });
});

afterAll(async () => {
  dash?.close();
  await server?.close();
});

describe('dashboard namespace', () => {
  it('pushes the connected hospitals with their host, every round with participation and completion time, and the run end', async () => {
    const h1 = await FakeHospital.connect({ url: server.url, hospitalId: 'H1', token: HOSPITAL_TOKENS.H1 as string, auth: { host: 'browser/webgl', num_records: 321 } });
    // H2 drops out of round 1's training: the round still completes with H1, and says so.
    const h2 = await FakeHospital.connect({
      url: server.url,
      hospitalId: 'H2',
      token: HOSPITAL_TOKENS.H2 as string,
      behaviour: { train: (_i, fake) => fake.close() },
    });
    const last = () => seen['dash:clients'].at(-1)?.hospitals ?? [];
    const t0 = Date.now();
    while (last().length < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(last()).toEqual([
      { hospital_id: 'H1', state: 'connected', host: 'browser/webgl', num_records: 321 },
      { hospital_id: 'H2', state: 'connected', host: 'test' },
    ]);

    const before = Date.now();
    const { runId } = await server.coordinator.start({ rounds: 1, seq_len: 12, min_fit_clients: 1, min_evaluate_clients: 1, min_available_clients: 1, stage_timeout_s: 60, wait_for_clients_s: 20, rejoin_grace_s: 0 }, 'test');
    expect((await server.coordinator.idle())?.status).toBe('completed');
    const t1 = Date.now();
    while (seen['dash:run'].length === 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 20));

    const [round] = seen['dash:round'];
    expect(round).toMatchObject({ run_id: runId, round: 1 });
    const completed = Date.parse(round!.completed_at);
    expect(completed).toBeGreaterThanOrEqual(before);
    expect(completed).toBeLessThanOrEqual(Date.now());
    expect(round!.participation).toContainEqual({ hospitalId: 'H1', stage: 'train', status: 'ok' });
    expect(round!.participation).toContainEqual(expect.objectContaining({ hospitalId: 'H2', stage: 'train', status: 'dropped' }));
    expect(seen['dash:run']).toEqual([{ run_id: runId, status: 'completed', round: 1, total_rounds: 1 }]);
    // after H2 left, the list says so
    expect(last().map((h) => h.hospital_id)).toEqual(['H1']);
    h1.close();
    h2.close();
  }, 60_000);
});
