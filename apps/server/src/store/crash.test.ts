/**
 * kill -9 durability: a child process commits rounds in a loop and is SIGKILLed, once inside a
 * commit transaction on purpose and then at random moments; after each kill the file is reopened
 * and must pass PRAGMA integrity_check, hold every round it reported committed, and hold each
 * stored round completely (all metrics, per-hospital metrics, participation, model version, the
 * retained weights and a resume point), with nothing of a half-written round.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from './sqlite';
import { committed, runChild, verifyCrashRun } from './testing/crash-harness';

const dir = mkdtempSync(join(tmpdir(), 'fedcare-crash-'));
const file = join(dir, 'fedcare.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    return await verifyCrashRun(store, atLeast);
  } finally {
    await store.close();
  }
}

describe('SqliteStore survives kill -9', () => {
  it('killed inside the commit transaction: the round is absent, the earlier ones intact', async () => {
    const { lines } = await runChild(file, ['3']);
    expect(lines).toEqual(['resumed 0', 'begin 1', 'committed 1', 'begin 2', 'committed 2', 'begin 3', 'dying 3']);
    expect(await verify(2)).toBe(2);
  });

  it('killed at random moments, restarted on the same file each time: resumes and loses nothing', async () => {
    let last = 2;
    let inFlight = 0;
    const kills = 8;
    for (let i = 0; i < kills; i++) {
      const { lines } = await runChild(file, [], (ls) => {
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
    const { lines } = await runChild(file, [String(last + 2)]);
    expect(lines.slice(0, 2)).toEqual([`resumed ${last}`, `begin ${last + 1}`]);
    expect(await verify(last + 1)).toBe(last + 1);
    console.log(`kill -9 test: ${kills} random kills (${inFlight} during a commit) + 2 inside a transaction; ${last + 1} rounds intact`);
  });
});
