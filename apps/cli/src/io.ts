/** File helpers for the CLI: atomic writes (nothing half-written) and reading record files. */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface WriteOptions {
  /** The file's mode from its creation (the temporary file is created with it; nothing is chmod-ed after). */
  mode?: number;
  /** The mode of directories created on the way. */
  dirMode?: number;
}

/** Secrets and patient records: 0600 files in 0700 directories, from the start. */
export const PRIVATE: WriteOptions = { mode: 0o600, dirMode: 0o700 };

/** Writes via a temporary file in the same directory and renames, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: WriteOptions = {}): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true, ...(options.dirMode === undefined ? {} : { mode: options.dirMode }) });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    // 'wx': a fresh file, so the mode is the one it is created with (an existing one is never reused).
    writeFileSync(tmp, data, { flag: 'wx', ...(options.mode === undefined ? {} : { mode: options.mode }) });
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
