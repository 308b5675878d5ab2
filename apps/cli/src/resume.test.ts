// Acceptance: a coordinator killed with SIGKILL during round 3 of a 6-round run and restarted on the
// same database finishes all 6 rounds, and the metrics of rounds 1–2 are unchanged; a graceful
// SIGTERM during round 5 interrupts the run without ending it, and the next start finishes it.
// Real processes: `fedcare serve` and three `fedcare client`s.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@fedcare/server';
import { generateToDir } from './commands/generate';
import { fedcareProcess, waitFor, type Proc } from './testing-processes';

const dir = mkdtempSync(path.join(tmpdir(), 'fc-resume-'));
const db = path.join(dir, 'fedcare.db');
const ADMIN = 'resume-admin-token-0123456789';
const TOKENS = { H1: 'resume-h1-token-0123456789', H2: 'resume-h2-token-0123456789', H3: 'resume-h3-token-0123456789' };
const env = { FEDCARE_ADMIN_TOKEN: ADMIN, FEDCARE_HOSPITAL_TOKENS: Object.entries(TOKENS).map(([h, t]) => `${h}:${t}`).join(',') };
const procs: Proc[] = [];

async function api(url: string, p: string, init: RequestInit = {}) {
  const res = await fetch(`${url}${p}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  return res.json() as Promise<Record<string, unknown>>;
}

function serve(port: number): Proc {
  const p = fedcareProcess(['serve', '--port', String(port), '--host', '127.0.0.1', '--db', db, '--log-level', 'warn'], env);
  procs.push(p);
  return p;
}

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

describe('coordinator kill -9 (and SIGTERM) and restart', () => {
  it('resumes from the last completed round and keeps completed rounds intact', async () => {
    generateToDir(['H1', 'H2', 'H3'], 11, path.join(dir, 'data'), 60);
    let server = serve(0);
    const url = await waitFor(() => /coordinator on (http:\/\/[0-9.:]+)/.exec(server.output())?.[1], 60_000, 'the coordinator to listen');
    const port = Number(new URL(url).port);
    for (const [h, token] of Object.entries(TOKENS)) {
      procs.push(fedcareProcess(['client', '--server', url, '--hospital', h, '--data', path.join(dir, 'data', `${h}.ndjson`), '--once', '--quiet'], { FEDCARE_TOKEN: token }));
    }
    const start = await api(url, '/api/v1/train/start', {
      method: 'POST',
      body: JSON.stringify({ config: { rounds: 6, local_epochs: 1, batch_size: 16, seq_len: 12, stage_timeout_s: 120, wait_for_clients_s: 120, early_stopping_patience: 0 } }),
    });
    const runId = start.run_id as string;
    expect(runId).toMatch(/^run-/);

    // Wait until round 3 is under way, then kill the coordinator without warning.
    await waitFor(async () => {
      const s = await api(url, '/api/v1/status');
      return (s.current_round as number) >= 3 && s.stage === 'train' ? true : undefined;
    }, 240_000, 'round 3 to start');
    server.child.kill('SIGKILL');
    await server.exited;

    const before = openSqliteStore(db);
    const completed = (await before.getRun(runId))!.lastCompletedRound;
    const early = await before.getRoundMetrics(runId);
    await before.close();
    expect(completed).toBe(2);
    expect(early.map((r) => r.round)).toEqual([1, 2]);

    // Restart on the same database and port; the clients reconnect on their own.
    server = serve(port);
    // Then a graceful shutdown (a deploy's SIGTERM) during round 5: the run is interrupted, not
    // stopped — still running in the database, audited — and the next start resumes it again.
    await waitFor(async () => {
      const s = await api(url, '/api/v1/status').catch(() => undefined);
      return s && s.run_id === runId && (s.current_round as number) >= 5 && s.stage === 'train' ? true : undefined;
    }, 400_000, 'round 5 to start after the first restart');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const paused = openSqliteStore(db);
    const interrupted = await paused.getRun(runId);
    const interruptAudit = (await paused.listAudit({ limit: 200 })).filter((a) => a.action === 'run.interrupt' && a.runId === runId);
    await paused.close();
    expect(interrupted).toMatchObject({ status: 'running', lastCompletedRound: 4 });
    expect(interruptAudit).toHaveLength(1);
    server = serve(port);
    await waitFor(async () => {
      const runs = (await api(url, '/api/v1/runs').catch(() => ({ runs: [] }))) as { runs?: { run_id: string; status: string }[] };
      const r = runs.runs?.find((x) => x.run_id === runId);
      return r && r.status !== 'running' ? r.status : undefined;
    }, 400_000, 'the resumed run to finish');

    const after = openSqliteStore(db);
    const run = await after.getRun(runId);
    const rounds = await after.getRoundMetrics(runId);
    const audit = await after.listAudit({ limit: 200 });
    await after.close();
    expect(run?.status).toBe('completed');
    expect(rounds.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rounds.slice(0, 2)).toEqual(early); // rounds 1–2 exactly as before the crash
    expect(audit.filter((a) => a.action === 'run.resume' && a.runId === runId)).toHaveLength(2); // after the kill and after the SIGTERM
  }, 900_000);
});
