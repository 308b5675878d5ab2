/** Test helper: a small finished run in a fresh SQLite database, for the commands that read one (export, predict). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateHospital, type PatientRecord } from '@fedcare/shared/data';
import type { RoundReport } from '@fedcare/shared/fl';
import { runSimulation } from './commands/simulate';

export interface SmallRun {
  dir: string;
  db: string;
  runId: string;
  hospitals: string[];
  /** Each hospital's records, in `hospitals` order. */
  cohort: PatientRecord[][];
  rounds: RoundReport[];
  /** The simulation's summary (the final model's pooled test metrics). */
  summary: Record<string, unknown>;
}

/** H1 and H2 (generated with `seed`, `patients` each), in-process, FedAvg for `rounds` rounds of one epoch at T = `seqLen`; `config` adds run settings. */
export async function smallFinishedRun(o: { prefix: string; seed: number; patients: number; rounds: number; seqLen: number; config?: Record<string, unknown> }): Promise<SmallRun> {
  const dir = mkdtempSync(path.join(tmpdir(), o.prefix));
  const db = path.join(dir, 'fedcare.db');
  const hospitals = ['H1', 'H2'];
  const cohort = hospitals.map((h) => generateHospital(h, { seed: o.seed, patients: o.patients }).records);
  const res = await runSimulation({
    records: cohort.flat(),
    hospitals,
    config: { rounds: o.rounds, local_epochs: 1, batch_size: 16, seq_len: o.seqLen, min_fit_clients: 2, min_evaluate_clients: 2, min_available_clients: 2, early_stopping_patience: 0, ...o.config } as never,
    clients: 'inprocess',
    store: { kind: 'sqlite', file: db },
  });
  if (res.summary.status !== 'completed') throw new Error(`the small run ended ${res.summary.status}`);
  return { dir, db, runId: res.rounds[0]!.runId, hospitals, cohort, rounds: res.rounds, summary: res.summary };
}
