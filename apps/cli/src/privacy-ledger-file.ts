/** The headless hospital's privacy ledger and SecAgg+ pins on disk: JSON files written atomically (mode 0600). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PinStore, PrivacyLedgerState, PrivacyLedgerStore } from '@fedcare/shared/fl';
import { parseRoster } from '@fedcare/shared/secagg';
import { CliError, PRIVATE, writeFileAtomic } from './io';

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
      writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, PRIVATE);
    },
  };
}

/** Default ledger path for a data file: H1.ndjson → H1.privacy.json beside it. */
export function defaultLedgerPath(dataFile: string, hospitalId: string): string {
  const dir = path.extname(dataFile) ? path.dirname(dataFile) : dataFile;
  return path.join(dir, `${hospitalId}.privacy.json`);
}

/** The hospital's SecAgg+ pins (other hospitals' identity keys, hex) in a JSON file beside its ledger. */
export function filePinStore(file: string): PinStore {
  return {
    load: async () => {
      if (!existsSync(file)) return undefined;
      let raw: Record<string, string>;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
      } catch (e) {
        // Losing pins silently would re-open trust on first use: refuse instead.
        throw new Error(`pin file ${file} cannot be read (${(e as Error).message}); fix or remove it deliberately`);
      }
      return Object.fromEntries(Object.entries(raw).map(([h, hex]) => [h, Uint8Array.from(Buffer.from(hex, 'hex'))]));
    },
    save: async (pins) => {
      writeFileAtomic(file, `${JSON.stringify(Object.fromEntries(Object.entries(pins).map(([h, pk]) => [h, Buffer.from(pk).toString('hex')])), null, 2)}\n`, PRIVATE);
    },
  };
}

/** A roster file (see `parseRoster`); a missing, unreadable or malformed one is a CliError naming the file. */
export function readRoster(file: string): Record<string, Uint8Array> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`roster ${file} cannot be read: ${(e as Error).message}`);
  }
  try {
    return parseRoster(raw);
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`);
  }
}

/** Default pin file for a data file: H1.ndjson → H1.pins.json beside it. */
export function defaultPinPath(dataFile: string, hospitalId: string): string {
  const dir = path.extname(dataFile) ? path.dirname(dataFile) : dataFile;
  return path.join(dir, `${hospitalId}.pins.json`);
}
