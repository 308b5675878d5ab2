/** Shared test factories (no host imports: usable from any test). */
import { generateHospital } from '../data/generator';
import type { PatientRecord } from '../data/schema';

const cache = new Map<string, PatientRecord[]>();

/** A small, cached synthetic cohort (deep-copied so tests may mutate it). */
export function sampleRecords(hospital = 'H1', patients = 40, seed = 7): PatientRecord[] {
  const key = `${hospital}/${patients}/${seed}`;
  let recs = cache.get(key);
  if (!recs) {
    recs = generateHospital(hospital, { seed, patients }).records;
    cache.set(key, recs);
  }
  return structuredClone(recs);
}
