/** Deterministic train/test splits by patient id, per hospital, independent of record order. */
import { hashUnit } from '../util/random';
import type { PatientRecord } from './schema';

export interface Split {
  train: PatientRecord[];
  test: PatientRecord[];
}

/**
 * Splits each hospital's records so that exactly round(testFraction·n) go to test, chosen by a
 * seeded hash of the patient id: the same patients are held out whatever else is loaded.
 */
export function splitByHospital(records: readonly PatientRecord[], testFraction = 0.2, seed = 0): Split {
  const byHospital = new Map<string, PatientRecord[]>();
  for (const r of records) {
    const list = byHospital.get(r.hospital_id) ?? [];
    list.push(r);
    byHospital.set(r.hospital_id, list);
  }
  const train: PatientRecord[] = [];
  const test: PatientRecord[] = [];
  for (const list of byHospital.values()) {
    const keyed = list.map((r) => ({ r, k: hashUnit(`split/${seed}/${r.hospital_id}/${r.patient_id}`) }));
    keyed.sort((a, b) => a.k - b.k || (a.r.patient_id < b.r.patient_id ? -1 : 1));
    const nTest = Math.round(testFraction * list.length);
    const held = new Set(keyed.slice(0, nTest).map((x) => x.r));
    for (const r of list) (held.has(r) ? test : train).push(r);
  }
  return { train, test };
}
