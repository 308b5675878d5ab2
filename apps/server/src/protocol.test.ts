import { afterEach, describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES } from './server';
import type { RunningServer } from './server';
import { FakeHospital, HOSPITAL_TOKENS, startTestServer, type TrainInstruction } from './testing/fake-hospital';

let server: RunningServer | undefined;
const fakes: FakeHospital[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) f.close();
  await server?.close();
  server = undefined;
});

describe('scratch', () => {
  it('happy', async () => {
    const t0 = Date.now();
    server = await startTestServer();
    console.log('server', Date.now() - t0);
    for (const h of ['H1', 'H2', 'H3']) fakes.push(await FakeHospital.connect({ url: server.url, hospitalId: h, token: HOSPITAL_TOKENS[h]! }));
    console.log('connected', Date.now() - t0);
    const { runId } = await server.coordinator.start({ rounds: 2, seq_len: 12, stage_timeout_s: 5, wait_for_clients_s: 5, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2 }, 'test');
    const s = await server.coordinator.idle();
    console.log('done', Date.now() - t0, s?.status, s?.reason);
    const rounds = await server.store.getRoundMetrics(runId);
    console.log(rounds.map((r) => [r.round, r.participation]));
  });
  it('oversized', async () => {
    server = await startTestServer();
    server.grid.nsp.on('connection', (s) => s.on('disconnect', (reason, desc) => console.log('server disconnect', s.data.hospitalId, reason, desc)));
    for (const h of ['H1', 'H2', 'H3']) fakes.push(await FakeHospital.connect({ url: server.url, hospitalId: h, token: HOSPITAL_TOKENS[h]! }));
    fakes[2]!.socket.on('disconnect', (reason, details) => console.log('client disconnect', reason, details));
    fakes[2]!.behaviour.train = async (instr, f) => {
      const r = await f.trainResult(instr as TrainInstruction, () => new Float32Array(MAX_MESSAGE_BYTES / 4 + 16));
      console.log('ack', await f.send('fl:result', r, 3000));
    };
    const { runId } = await server.coordinator.start({ rounds: 2, seq_len: 12, stage_timeout_s: 5, wait_for_clients_s: 5, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2 }, 'test');
    const s = await server.coordinator.idle();
    console.log('done', s?.status, s?.reason);
    const rounds = await server.store.getRoundMetrics(runId);
    console.log(JSON.stringify(rounds.map((r) => [r.round, r.participation])));
    console.log(JSON.stringify(await server.store.listAudit({ limit: 50 })));
  });
});
