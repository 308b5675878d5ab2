/**
 * A `fedcare tune` study in one SQLite file (better-sqlite3, as the coordinator's store): its
 * settings (space, seed, rungs, η, trial budget, base run config), each trial's parameters, and one
 * row per job (trial × rung) — 'running' when it starts, 'done' with its validation and test AUC
 * when it ends. Each write is its own transaction, so a study killed at any point reopens with every
 * finished job intact; the 'running' rows are the jobs to run again.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Job } from './asha';
import type { ParamValue } from './space';

export interface StudySettings {
  space: unknown;
  seed: number;
  rungs: number[];
  eta: number;
  trials: number;
  base: unknown;
}

export interface JobRow {
  trial: number;
  rung: number;
  rounds: number;
  status: 'running' | 'done';
  val_auc: number | null;
  test_auc: number | null;
  seconds: number | null;
  error: string | null;
}

export class Study {
  private readonly db: Database.Database;

  constructor(file: string) {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS trials (id INTEGER PRIMARY KEY, params TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS jobs (trial INTEGER NOT NULL, rung INTEGER NOT NULL, rounds INTEGER NOT NULL, status TEXT NOT NULL,
        val_auc REAL, test_auc REAL, seconds REAL, error TEXT, PRIMARY KEY (trial, rung));
    `);
  }

  /** The stored settings, or these stored when the study is new. A study resumed with other settings is refused (by key). */
  settings(s: StudySettings): { resumed: boolean; mismatch?: string } {
    const row = this.db.prepare('SELECT value FROM study WHERE key = ?').get('settings') as { value: string } | undefined;
    if (!row) {
      this.db.prepare('INSERT INTO study (key, value) VALUES (?, ?)').run('settings', JSON.stringify(s));
      return { resumed: false };
    }
    const stored = JSON.parse(row.value) as Record<string, unknown>;
    for (const k of ['space', 'seed', 'rungs', 'eta', 'base'] as const) {
      if (JSON.stringify(stored[k]) !== JSON.stringify(s[k])) return { resumed: true, mismatch: k };
    }
    // A larger trial budget extends the study.
    if (stored.trials !== s.trials) this.db.prepare('UPDATE study SET value = ? WHERE key = ?').run(JSON.stringify(s), 'settings');
    return { resumed: true };
  }

  params(trial: number): Record<string, ParamValue> | undefined {
    const row = this.db.prepare('SELECT params FROM trials WHERE id = ?').get(trial) as { params: string } | undefined;
    return row ? (JSON.parse(row.params) as Record<string, ParamValue>) : undefined;
  }

  start(job: Job, rounds: number, params: Record<string, ParamValue>): void {
    this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO trials (id, params) VALUES (?, ?)').run(job.trial, JSON.stringify(params));
      this.db.prepare("INSERT OR REPLACE INTO jobs (trial, rung, rounds, status) VALUES (?, ?, ?, 'running')").run(job.trial, job.rung, rounds);
    })();
  }

  finish(job: Job, r: { val_auc: number; test_auc: number; seconds: number; error?: string }): void {
    const num = (v: number) => (Number.isFinite(v) ? v : null);
    this.db
      .prepare("UPDATE jobs SET status = 'done', val_auc = ?, test_auc = ?, seconds = ?, error = ? WHERE trial = ? AND rung = ?")
      .run(num(r.val_auc), num(r.test_auc), r.seconds, r.error ?? null, job.trial, job.rung);
  }

  jobs(): JobRow[] {
    return this.db.prepare('SELECT trial, rung, rounds, status, val_auc, test_auc, seconds, error FROM jobs ORDER BY trial, rung').all() as JobRow[];
  }

  close(): void {
    this.db.close();
  }
}
