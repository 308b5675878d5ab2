/**
 * `--config FILE` and `--set key=value` for the commands (simulate, serve): the file read from disk
 * and the shared parser and resolver (shared/src/protocol/run-config-file.ts), their errors as
 * usage errors (exit code 2).
 */
import { parseRunConfigFile, resolveRunConfig as resolve, RunConfigError, type RunConfig, type RunConfigFile, type RunConfigLayers } from '@fedcare/shared/protocol';
import { CliError, readText } from './io';

export { parseSet } from '@fedcare/shared/protocol';

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RunConfigError) throw new CliError(e.message, 2);
    throw e;
  }
}

export function readRunConfigFile(file: string, text?: string): RunConfigFile {
  let content = text;
  if (content === undefined) {
    try {
      content = readText(file);
    } catch (e) {
      throw new CliError(`--config ${file}: ${(e as Error).message}`, 2);
    }
  }
  return usage(() => parseRunConfigFile(file, content));
}

export function resolveRunConfig(l: RunConfigLayers): RunConfig {
  return usage(() => resolve(l));
}
