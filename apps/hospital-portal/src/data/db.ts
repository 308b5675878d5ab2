/**
 * The portal's IndexedDB (via idb): the hospital's records stay in this browser profile.
 * Uses only `indexedDB` / `IDBKeyRange`, so it works on the main thread and in a Web Worker.
 *
 * Database 'fedcare-portal', version 1:
 *   records  key [hospital_id, patient_id]: every hospital's records in one store, each hospital a
 *            contiguous key range, so replacing or clearing one hospital touches no other
 *   imports  key hospital_id: what the last import was (ImportInfo)
 *   kv       out-of-line string keys: small state for later (e.g. the privacy accountant)
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { PatientRecord } from '@fedcare/shared/data';

export const DB_NAME = 'fedcare-portal';
export const DB_VERSION = 1;

export interface ImportInfo {
  readonly hospital_id: string;
  /** ISO timestamp. */
  readonly imported_at: string;
  /** Names of the files imported. */
  readonly files: string[];
  readonly record_count: number;
  readonly issue_count: number;
}

export interface PortalDbSchema extends DBSchema {
  records: { key: [string, string]; value: PatientRecord };
  imports: { key: string; value: ImportInfo };
  kv: { key: string; value: unknown };
}

export type PortalDb = IDBPDatabase<PortalDbSchema>;

let opening: Promise<PortalDb> | undefined;

/** Opens (once per realm) and upgrades the database; a later call reuses the connection. */
export function openPortalDb(): Promise<PortalDb> {
  opening ??= openDB<PortalDbSchema>(DB_NAME, DB_VERSION, {
    upgrade(db) {
      db.createObjectStore('records', { keyPath: ['hospital_id', 'patient_id'] });
      db.createObjectStore('imports', { keyPath: 'hospital_id' });
      db.createObjectStore('kv');
    },
    // Another tab wants a newer version: let it, and reopen on the next call.
    blocking() {
      void opening?.then((db) => db.close());
      opening = undefined;
    },
    terminated() {
      opening = undefined;
    },
  }).catch((e: unknown) => {
    opening = undefined;
    throw e;
  });
  return opening;
}

/**
 * Every key of one hospital: [h] sorts before [h, any id] and, since an array key sorts after
 * every string key, [h, []] sorts after all of them.
 */
function hospitalRange(hospitalId: string): IDBKeyRange {
  return IDBKeyRange.bound([hospitalId], [hospitalId, []]);
}

/** One transaction: drop the hospital's records, store the new set and the import's metadata. */
export async function replaceRecords(
  hospitalId: string,
  records: readonly PatientRecord[],
  meta: { readonly files: readonly string[]; readonly issues: number },
): Promise<void> {
  const other = records.find((r) => r.hospital_id !== hospitalId);
  if (other) throw new Error(`replaceRecords(${hospitalId}): record ${other.patient_id} belongs to ${other.hospital_id}`);
  const db = await openPortalDb();
  const tx = db.transaction(['records', 'imports'], 'readwrite');
  const store = tx.objectStore('records');
  const info: ImportInfo = {
    hospital_id: hospitalId,
    imported_at: new Date().toISOString(),
    files: [...meta.files],
    record_count: records.length,
    issue_count: meta.issues,
  };
  // Requests run in the order issued; awaiting tx.done commits all or nothing.
  await Promise.all([
    store.delete(hospitalRange(hospitalId)),
    ...records.map((r) => store.put(r)),
    tx.objectStore('imports').put(info),
    tx.done,
  ]);
}

export async function loadRecords(hospitalId: string): Promise<PatientRecord[]> {
  const db = await openPortalDb();
  return db.getAll('records', hospitalRange(hospitalId));
}

export async function importInfo(hospitalId: string): Promise<ImportInfo | undefined> {
  const db = await openPortalDb();
  return db.get('imports', hospitalId);
}

/** Removes the hospital's records and its import metadata (one transaction). */
export async function clearRecords(hospitalId: string): Promise<void> {
  const db = await openPortalDb();
  const tx = db.transaction(['records', 'imports'], 'readwrite');
  await Promise.all([tx.objectStore('records').delete(hospitalRange(hospitalId)), tx.objectStore('imports').delete(hospitalId), tx.done]);
}

/** Where a hospital's imported table (a CSV, for tabular runs) is kept, as its text: `{ name, text }`. */
export function tableKey(hospitalId: string): string {
  return `tabular/${hospitalId}`;
}

export async function kvGet<T>(key: string): Promise<T | undefined> {
  const db = await openPortalDb();
  return (await db.get('kv', key)) as T | undefined;
}

export async function kvSet(key: string, value: unknown): Promise<void> {
  const db = await openPortalDb();
  await db.put('kv', value, key);
}
