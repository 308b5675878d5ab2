/**
 * kill -9 durability: a child process commits rounds in a loop and is SIGKILLed, once inside a
 * commit transaction on purpose and then at random moments; after each kill the file is reopened
 * and must pass PRAGMA integrity_check, hold every round it reported committed, and hold each
 * stored round completely (all metrics, per-hospital metrics, participation, model version, the
 * retained weights and a resume point), with nothing of a half-written round.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from './sqlite';
import { commitFor, metricsFor, sha256Hex, weightsFor } from './testing/rounds';

const CHILD = fileURLToPath(new URL('./testing/crash-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** 1 MiB of weights per round, so that commits take long enough for kills to land inside them. */
const WEIGHTS = 262_144;

const dir = mkdtempSync(join(tmpdir(), 'fedcare-crash-'));
const file = join(dir, 'fedcare.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ChildResult {
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
}

/** Runs the child; kills it with SIGKILL once `killWhen(lines)` says so (or lets it die itself). */
function runChild(args: string[], killWhen?: (lines: string[]) => number | undefined): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, String(WEIGHTS), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let pending = '';
    let killing = false;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not finish in time; stdout: ${lines.slice(-5).join(' | ')}; stderr: ${stderr}`));
    }, 90_000);
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      lines.push(...parts);
      const delay = killing ? undefined : killWhen?.(lines);
      if (delay !== undefined) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), delay);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (pending) lines.push(pending);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with code ${code}, signal ${signal}; stderr: ${stderr}`));
      else resolve({ lines, signal, code });
    });
  });
}

function committed(lines: string[]): number[] {
  return lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice('committed '.length)));
}

/** Checks the file after a crash; returns the last completed round. */
async function verify(atLeast: number): Promise<number> {
  const raw = new Database(file);
  try {
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(raw.pragma('foreign_key_check')).toEqual([]);
    // Nothing of any round beyond the last completed one, in any table.
    const last = raw.prepare(`SELECT last_completed_round FROM runs WHERE run_id = 'crash'`).pluck().get() as number;
    for (const table of ['rounds', 'round_metrics', 'hospital_metrics', 'participation', 'model_versions', 'model_blobs']) {
      const beyond = raw.prepare(`SELECT count(*) FROM ${table} WHERE run_id = 'crash' AND round > ?`).pluck().get(last);
      expect(beyond, `${table} rows beyond round ${last}`).toBe(0);
    }
  } finally {
    raw.close();
  }

  const store = openSqliteStore(file);
  try {
    const run = await store.activeRun();
    expect(run?.runId).toBe('crash');
    const last = run?.lastCompletedRound ?? 0;
    expect(last).toBeGreaterThanOrEqual(atLeast); // no reported commit lost
    const rounds = await store.getRoundMetrics('crash');
    expect(rounds.map((r) => r.round)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    for (const r of rounds) {
      const want = commitFor({ runId: 'crash', round: r.round, weightCount: 1 });
      expect(r.metrics, `round ${r.round} metrics`).toEqual(metricsFor(r.round));
      expect(r.perHospital).toEqual(want.perHospital);
      expect(r.participation).toEqual(want.participation);
    }
    const versions = await store.listModelVersions('crash');
    expect(versions.map((v) => v.round)).toEqual(rounds.map((r) => r.round));
    const lastBest = Array.from({ length: last }, (_, i) => i + 1).filter((r) => r % 4 !== 0).at(-1);
    for (const v of versions) {
      expect(v.sha256, `round ${v.round} sha`).toBe(sha256Hex(weightsFor(v.round, WEIGHTS)));
      expect(v.sizeBytes).toBe(WEIGHTS * 4);
      expect(v.stored, `round ${v.round} weights kept`).toBe(v.round === last || v.round % 5 === 0 || v.round === lastBest);
    }
    expect(run?.bestRound).toBe(lastBest);
    if (last > 0) {
      const resume = await store.resumePoint('crash');
      expect(resume?.round).toBe(last);
      expect(resume && sha256Hex(resume.weights)).toBe(sha256Hex(weightsFor(last, WEIGHTS)));
      expect(new TextDecoder().decode(resume?.strategyState)).toBe(JSON.stringify({ step: last }));
    }
    return last;
  } finally {
    await store.close();
  }
}

describe('SqliteStore survives kill -9', () => {
  it('killed inside the commit transaction: the round is absent, the earlier ones intact', async () => {
    const { lines } = await runChild(['3']);
    expect(lines).toEqual(['resumed 0', 'begin 1', 'committed 1', 'begin 2', 'committed 2', 'begin 3', 'dying 3']);
    expect(await verify(2)).toBe(2);
  });

  it('killed at random moments, restarted on the same file each time: resumes and loses nothing', async () => {
    let last = 2;
    let inFlight = 0;
    const kills = 8;
    for (let i = 0; i < kills; i++) {
      const { lines } = await runChild([], (ls) => {
        const done = committed(ls);
        // Let it commit a few rounds after resuming, then kill after a random 0–40 ms.
        return done.length >= 3 ? Math.floor(Math.random() * 40) : undefined;
      });
      expect(lines[0]).toBe(`resumed ${last}`);
      const reported = committed(lines);
      const tail = lines.at(-1) ?? '';
      if (tail.startsWith('begin ')) inFlight++;
      last = await verify(Math.max(last, ...reported));
    }
    // The next resume after all the kills continues where the file says.
    const { lines } = await runChild([String(last + 2)]);
    expect(lines.slice(0, 2)).toEqual([`resumed ${last}`, `begin ${last + 1}`]);
    expect(await verify(last + 1)).toBe(last + 1);
    console.log(`kill -9 test: ${kills} random kills (${inFlight} during a commit) + 2 inside a transaction; ${last + 1} rounds intact`);
  });
});
