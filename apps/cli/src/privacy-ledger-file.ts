/** The headless hospital's privacy ledger on disk: a JSON file written atomically (mode 0600). */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PrivacyLedgerState, PrivacyLedgerStore } from '@fedcare/shared/fl';
import { writeFileAtomic } from './io';

export function fileLedgerStore(file: string): PrivacyLedgerStore {
  return {
    load: async () => {
      if (!existsSync(file)) return undefined;
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as PrivacyLedgerState;
      } catch (e) {
        // A damaged ledger must not silently become a fresh budget.
        throw new Error(`privacy ledger ${file} cannot be read (${(e as Error).message}); fix or remove it deliberately`);
      }
    },
    save: async (state) => {
      writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
      chmodSync(file, 0o600);
    },
  };
}

/** Default ledger path for a data file: H1.ndjson → H1.privacy.json beside it. */
export function defaultLedgerPath(dataFile: string, hospitalId: string): string {
  const dir = path.extname(dataFile) ? path.dirname(dataFile) : dataFile;
  return path.join(dir, `${hospitalId}.privacy.json`);
}
