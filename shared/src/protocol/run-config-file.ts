/**
 * Run configuration files: YAML 1.2 or JSON with the run config's own keys, as the REST API takes
 * them (`fedcare simulate|serve --config run.yaml`, the dashboard's Import / Export), and `--set
 * key=value` overrides (dotted keys reach into `dp`), validated by the same zod schema as `POST
 * /api/v1/train/start`. Precedence: flags > --set > the file > the defaults. An error names the key
 * and where it came from — the file and line, the --set, or the flag — as Flower's `flwr run
 * --run-config` and NVFlare's job configs do for their users. YAML through the `yaml` package (its
 * line counter gives the lines). Pure: the CLI, the coordinator and the dashboard share it.
 */
import { LineCounter, parseDocument, parse as parseYaml, stringify, isMap, type Document } from 'yaml';
import { runConfigSchema, type RunConfig, type RunConfigInput } from './messages';

/** A run configuration that is not one, with the key and where it came from in the message. */
export class RunConfigError extends Error {
  override readonly name = 'RunConfigError';
}

type Json = Record<string, unknown>;
type Path = readonly (string | number)[];

/** A parsed file and where each of its keys is (1-based line). */
export interface RunConfigFile {
  file: string;
  values: Json;
  lineOf(path: Path): number | undefined;
}

const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Parses a run configuration file's text (`file` names it in errors). */
export function parseRunConfigFile(file: string, text: string): RunConfigFile {
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const at = err.linePos?.[0];
    throw new RunConfigError(`${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  if (!isMap(doc.contents)) throw new RunConfigError(`${file}: a run configuration is a mapping of keys (rounds: 5, strategy: fedavg, …), not ${doc.contents === null ? 'empty' : 'a list or a value'}`);
  const values = doc.toJS() as unknown;
  if (!isObj(values)) throw new RunConfigError(`${file}: a run configuration is a mapping of keys`);
  return {
    file,
    values,
    lineOf(path) {
      // The key's own line: the pair's key node where there is one, else the value's.
      for (let n = path.length; n > 0; n--) {
        const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === path[n - 1]);
          const range = (pair?.key as { range?: [number, number, number] } | null)?.range;
          if (range) return lines.linePos(range[0]).line;
        }
      }
      return undefined;
    },
  };
}

/** `--set key=value` → [path, value]; the value is a YAML scalar (5, 0.01, true, fedavg, null). */
export function parseSet(arg: string): { path: string[]; value: unknown } {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new RunConfigError(`--set ${arg}: expected key=value (e.g. --set rounds=10, --set dp.noise_multiplier=1.1)`);
  const key = arg.slice(0, eq).trim();
  const path = key.split('.');
  if (path.some((p) => !/^[a-z][a-z0-9_]*$/.test(p))) throw new RunConfigError(`--set ${arg}: "${key}" is not a run configuration key (lower-case words joined by _ , nested with .)`);
  let value: unknown;
  try {
    value = parseYaml(arg.slice(eq + 1));
  } catch (e) {
    throw new RunConfigError(`--set ${key}: the value is not a YAML scalar: ${(e as Error).message.split('\n')[0]}`);
  }
  if (isObj(value) || Array.isArray(value)) throw new RunConfigError(`--set ${key}: give one value per --set (a nested key takes a dotted name: --set dp.delta=1e-5)`);
  return { path, value };
}

function setIn(target: Json, path: readonly string[], value: unknown): void {
  let cur = target;
  for (const p of path.slice(0, -1)) {
    if (!isObj(cur[p])) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[path.at(-1) as string] = value;
}

export interface RunConfigLayers {
  /** The command's defaults (its flags' defaults included). */
  defaults: RunConfigInput;
  file?: RunConfigFile;
  sets?: readonly string[];
  /** The values of the flags given on the command line, by config key, with the flag's name. */
  flags?: Readonly<Record<string, { value: unknown; flag: string }>>;
}

/**
 * flags > --set > file > defaults, validated by the REST schema. Errors name the key and its
 * source: `run.yaml:7: rounds: …`, `--set dp.delta: …`, `--rounds: …`.
 */
export function resolveRunConfig(l: RunConfigLayers): RunConfig {
  const merged: Json = structuredClone(l.defaults) as Json;
  const from = new Map<string, string>();
  const source = (top: string) => from.get(top);
  if (l.file) {
    for (const [k, v] of Object.entries(l.file.values)) {
      merged[k] = structuredClone(v);
      from.set(k, 'file');
    }
  }
  const sets = (l.sets ?? []).map(parseSet);
  for (const s of sets) {
    setIn(merged, s.path, s.value);
    from.set(s.path.join('.'), 'set');
    from.set(s.path[0] as string, from.get(s.path[0] as string) ?? 'set');
  }
  for (const [k, f] of Object.entries(l.flags ?? {})) {
    merged[k] = f.value;
    from.set(k, 'flag');
  }
  const parsed = runConfigSchema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
  const path = (keys[0] ?? []) as Path;
  const dotted = path.join('.') || '(run configuration)';
  const message = issue.code === 'unrecognized_keys' ? `not a run configuration key${keys.length > 1 ? ` (also ${keys.slice(1).map((p) => p.join('.')).join(', ')})` : ''}` : issue.message;
  const exactSet = sets.find((s) => s.path.join('.') === dotted);
  const flag = Object.entries(l.flags ?? {}).find(([k]) => k === path[0]);
  let where: string;
  if (flag) where = `${flag[1].flag} (${dotted})`;
  else if (exactSet || (source(String(path[0])) === 'set' && !l.file?.values[String(path[0])])) where = `--set ${dotted}`;
  else if (l.file && (source(String(path[0])) === 'file' || source(String(path[0])) === 'set')) {
    const line = l.file.lineOf(path);
    where = `${l.file.file}${line ? `:${line}` : ''}: ${dotted}`;
  } else where = dotted;
  throw new RunConfigError(`invalid run configuration: ${where}: ${message}`);
}

/** A run configuration as a file people read: YAML, keys in the schema's order, `dp` nested. */
export function runConfigToYaml(config: RunConfigInput, comment?: string): string {
  const order = Object.keys(runConfigSchema.shape);
  const sorted = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)));
  return `${comment ? `${comment.split('\n').map((l) => `# ${l}`).join('\n')}\n` : ''}${stringify(sorted)}`;
}
