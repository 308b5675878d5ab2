/**
 * The personalisation comparison of `fedcare simulate --personalise`: for every hospital, its own
 * test split scored by (a) a model trained on its data alone, (b) the federation's final global
 * model, (c) that model personalised on its data (shared/src/train/personalise.ts, through the same
 * HospitalClient.personalise a hospital runs). This harness holds every hospital's records; a real
 * deployment never does — each hospital computes its own row (the portal's Patients view).
 */
import { encodeRecords, OBSERVATION_WINDOW_DAYS, type FeatureStats, type PatientRecord } from '@fedcare/shared/data';
import { HospitalClient, type PersonalisationReport } from '@fedcare/shared/fl';
import { createModel, type ModelName } from '@fedcare/shared/model';
import { evaluate, trainLocal } from '@fedcare/shared/train';
import type { RunConfig } from '@fedcare/shared/protocol';
import { fileLedgerStore } from './privacy-ledger-file';

export interface PersonalisationRow {
  hospital: string;
  /** Own test split size (labelled). */
  n: number;
  local_only: number;
  global: number;
  personalised: number;
  /** personalised − max(local_only, global): ≥ 0 is the goal. */
  margin: number;
  best_epoch: number;
  temperature: number;
  privacy_epsilon?: number;
}

export interface PersonaliseHospitalsOptions {
  records: readonly PatientRecord[];
  hospitals: readonly string[];
  runId: string;
  round: number;
  stats: FeatureStats;
  weights: Uint8Array;
  sha256: string;
  config: RunConfig;
  /** Each hospital's privacy ledger file (the simulation's clients wrote them), for DP runs. */
  ledgerFile?: (hospital: string) => string;
  onInfo?: (msg: string) => void;
}

/** Local-only baseline: the run's initial model trained on the hospital's training split for as many epochs as the federation ran. */
async function localOnlyAuc(client: HospitalClient, o: PersonaliseHospitalsOptions, epochs: number): Promise<number> {
  const cfg = { seqLen: o.config.seq_len, windowDays: OBSERVATION_WINDOW_DAYS };
  const train = encodeRecords(client.train, o.stats, cfg);
  const test = encodeRecords(client.test, o.stats, cfg);
  const model = createModel(o.config.model as ModelName, 0, o.config);
  try {
    await trainLocal(model, train, { epochs, batchSize: o.config.batch_size, learningRate: o.config.learning_rate, seed: o.config.seed });
    return (await evaluate(model, test)).auc_roc;
  } finally {
    model.dispose();
  }
}

export async function personaliseHospitals(o: PersonaliseHospitalsOptions): Promise<PersonalisationRow[]> {
  const rows: PersonalisationRow[] = [];
  const epochs = o.round * o.config.local_epochs;
  for (const h of o.hospitals) {
    const client = new HospitalClient(h, o.records.filter((r) => r.hospital_id === h), o.ledgerFile ? { privacyLedger: fileLedgerStore(o.ledgerFile(h)) } : {});
    try {
      client.setStats(o.runId, o.stats, o.config.seq_len);
      await client.adoptGlobal(o.runId, o.round, o.weights, o.sha256, o.config.model as ModelName, { ...(o.config.dp ? { dp: o.config.dp } : {}), batchSize: o.config.batch_size }, o.config);
      const report: PersonalisationReport = await client.personalise();
      o.onInfo?.(`${h}: personalised (best epoch ${report.best_epoch} of ${report.epochs_run}); training a local-only model for ${epochs} epochs`);
      const local = await localOnlyAuc(client, o, epochs);
      const row: PersonalisationRow = {
        hospital: h,
        n: report.personalised.test.num_examples,
        local_only: local,
        global: report.global.test.auc_roc,
        personalised: report.personalised.test.auc_roc,
        margin: report.personalised.test.auc_roc - Math.max(local, report.global.test.auc_roc),
        best_epoch: report.best_epoch,
        temperature: report.temperature,
        ...(report.privacy_epsilon !== undefined ? { privacy_epsilon: report.privacy_epsilon } : {}),
      };
      rows.push(row);
    } finally {
      client.dispose();
    }
  }
  return rows;
}
