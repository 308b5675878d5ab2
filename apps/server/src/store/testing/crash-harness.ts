/**
 * The kill -9 tests' shared parts: running crash-child.ts and killing it, and checking through the
 * Store interface what a reopened store holds after a kill (crash.test.ts for SQLite,
 * crash-aws.test.ts for DynamoDB + S3).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Store } from '@fedcare/shared/fl';
import { commitFor, metricsFor, sha256Hex, weightsFor } from './rounds';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
/** 1 MiB of weights per round, so that commits take long enough for kills to land inside them. */
export const CRASH_WEIGHTS = 262_144;

export interface ChildResult {
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
}

/**
 * Runs the child on `store` (a SQLite file or aws:PREFIX:BUCKET); kills it with SIGKILL once
 * `killWhen(lines)` returns a delay (or lets it kill itself). Rejects if it ends any other way.
 */
export function runChild(store: string, args: string[], killWhen?: (lines: string[]) => number | undefined, env?: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, store, String(CRASH_WEIGHTS), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
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
      if (signal !== 'SIGKILL') reject(new Error(`child exited with code ${code}, signal ${signal}; stdout: ${lines.slice(-5).join(' | ')}; stderr: ${stderr}`));
      else resolve({ lines, signal, code });
    });
  });
}

export function committed(lines: string[]): number[] {
  return lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice('committed '.length)));
}

/**
 * Checks a store reopened after a kill: the run 'crash' holds rounds 1..last contiguously, each
 * complete (metrics, per-hospital metrics, participation, model version), the weights of exactly the
 * rounds to keep (latest, checkpoints every 5, the last best: every round not divisible by 4), and a
 * resume point for `last`. Returns last, which is at least `atLeast` (no reported commit lost).
 */
export async function verifyCrashRun(store: Store, atLeast: number): Promise<number> {
  const run = await store.activeRun();
  expect(run?.runId).toBe('crash');
  const last = run?.lastCompletedRound ?? 0;
  expect(last).toBeGreaterThanOrEqual(atLeast);
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
    expect(v.sha256, `round ${v.round} sha`).toBe(sha256Hex(weightsFor(v.round, CRASH_WEIGHTS)));
    expect(v.sizeBytes).toBe(CRASH_WEIGHTS * 4);
    expect(v.stored, `round ${v.round} weights kept`).toBe(v.round === last || v.round % 5 === 0 || v.round === lastBest);
    if (v.stored) expect((await store.getModel('crash', v.round))?.sha256, `round ${v.round} weights readable`).toBe(v.sha256);
  }
  expect(run?.bestRound).toBe(lastBest);
  if (last > 0) {
    const resume = await store.resumePoint('crash');
    expect(resume?.round).toBe(last);
    expect(resume && sha256Hex(resume.weights)).toBe(sha256Hex(weightsFor(last, CRASH_WEIGHTS)));
    expect(new TextDecoder().decode(resume?.strategyState)).toBe(JSON.stringify({ step: last }));
  }
  return last;
}
