/** File helpers for the CLI: atomic writes (nothing half-written) and reading record files. */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes via a temporary file in the same directory and renames, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

/** A user-facing failure: printed without a stack trace, exit code 1 (2 for usage errors). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The coordinator's database when --db is not given: FEDCARE_HOME (default .fedcare)/fedcare.db, as `fedcare start` lays it out. */
export function defaultDbPath(): string {
  return path.join(process.env.FEDCARE_HOME ?? '.fedcare', 'fedcare.db');
}
