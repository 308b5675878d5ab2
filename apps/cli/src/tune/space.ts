/**
 * `fedcare tune`'s search space: per parameter a distribution, read from YAML (`--space FILE`) or
 * the seed spec 3.3 default. Forms, each a one-line YAML value or a one-key mapping:
 *
 *   learning_rate: loguniform [1e-4, 1e-2]     # log-uniform between the bounds
 *   dropout: uniform [0, 0.5]                  # uniform between the bounds
 *   local_epochs: int [1, 5]                   # integer, both bounds included
 *   strategy: choice [fedavg, fedprox, fedadam]
 *   epsilon: { choice: [1, 5, inf] }           # target ε; inf: no differential privacy
 *
 * The keys are run configuration keys (those below) plus `epsilon`; errors name the key and its line.
 * Sampling is seeded: trial i of a study with seed s draws from its own stream `tune/s/i`, so a
 * study's configurations are the same on every machine and after a restart.
 */
import { isMap, LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import { STRATEGY_NAMES } from '@fedcare/shared/protocol';
import { Rng } from '@fedcare/shared/util';
import { CliError } from '../io';

export type ParamValue = number | string;

export type ParamSpec =
  | { kind: 'loguniform' | 'uniform'; low: number; high: number }
  | { kind: 'int'; low: number; high: number }
  | { kind: 'choice'; values: ParamValue[] };

export type Space = Record<string, ParamSpec>;

/** What each key may be: numeric run config keys (with their schema range) and the strategy / ε. */
const KEYS: Readonly<Record<string, { min: number; max: number; integer?: boolean } | 'strategy' | 'epsilon'>> = {
  learning_rate: { min: 1e-8, max: 10 },
  batch_size: { min: 1, max: 4096, integer: true },
  local_epochs: { min: 1, max: 100, integer: true },
  hidden_dim: { min: 2, max: 1024, integer: true },
  dropout: { min: 0, max: 0.9 },
  proximal_mu: { min: 0, max: 100 },
  epsilon: 'epsilon',
  strategy: 'strategy',
};

/** Seed spec 3.3's space. */
export const DEFAULT_SPACE: Readonly<Space> = Object.freeze({
  learning_rate: { kind: 'loguniform', low: 1e-4, high: 1e-2 },
  batch_size: { kind: 'choice', values: [16, 32, 64] },
  local_epochs: { kind: 'int', low: 1, high: 5 },
  hidden_dim: { kind: 'choice', values: [16, 32, 64] },
  dropout: { kind: 'uniform', low: 0, high: 0.5 },
  epsilon: { kind: 'choice', values: [1, 5, 'inf'] },
  strategy: { kind: 'choice', values: ['fedavg', 'fedprox', 'fedadam'] },
});

function checkValue(key: string, v: unknown, where: string): ParamValue {
  const rule = KEYS[key];
  if (rule === 'strategy') {
    if (typeof v !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(v)) throw new CliError(`${where}: ${key}: "${String(v)}" is not a strategy (${STRATEGY_NAMES.join(', ')})`, 2);
    return v;
  }
  if (rule === 'epsilon') {
    if (v === Number.POSITIVE_INFINITY || v === 'inf' || v === '∞' || v === null) return 'inf';
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new CliError(`${where}: ${key}: ${String(v)} is not a positive number or inf`, 2);
    return v;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CliError(`${where}: ${key}: ${String(v)} is not a number`, 2);
  if (rule && (v < rule.min || v > rule.max)) throw new CliError(`${where}: ${key}: ${v} is outside [${rule.min}, ${rule.max}]`, 2);
  if (rule?.integer && !Number.isInteger(v)) throw new CliError(`${where}: ${key}: ${v} is not an integer`, 2);
  return v;
}

/** One parameter's distribution from its YAML value (`loguniform [a, b]` or `{ loguniform: [a, b] }`). */
export function parseParam(key: string, raw: unknown, where: string): ParamSpec {
  if (!(key in KEYS)) throw new CliError(`${where}: ${key}: not a tunable key (${Object.keys(KEYS).join(', ')})`, 2);
  let kind: string;
  let args: unknown;
  if (typeof raw === 'string') {
    const m = /^\s*([a-z]+)\s*(\[.*\])\s*$/.exec(raw);
    if (!m) throw new CliError(`${where}: ${key}: expected "loguniform [a, b]", "uniform [a, b]", "int [a, b]" or "choice [x, y, …]", got "${raw}"`, 2);
    kind = m[1] as string;
    args = parseYaml(m[2] as string) as unknown;
  } else if (raw && typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).length === 1) {
    [[kind, args]] = Object.entries(raw) as [[string, unknown]];
  } else throw new CliError(`${where}: ${key}: expected one distribution (loguniform, uniform, int, choice) with its arguments in [ ]`, 2);
  if (!Array.isArray(args) || args.length === 0) throw new CliError(`${where}: ${key}: ${kind} needs a list of arguments in [ ]`, 2);
  if (kind === 'choice') {
    const values = args.map((v) => checkValue(key, v, where));
    if (new Set(values).size !== values.length) throw new CliError(`${where}: ${key}: a choice is listed twice`, 2);
    return { kind, values };
  }
  if (kind !== 'loguniform' && kind !== 'uniform' && kind !== 'int') throw new CliError(`${where}: ${key}: unknown distribution "${kind}" (loguniform, uniform, int, choice)`, 2);
  if (KEYS[key] === 'strategy' || KEYS[key] === 'epsilon') throw new CliError(`${where}: ${key}: takes a choice [..], not ${kind}`, 2);
  if (args.length !== 2) throw new CliError(`${where}: ${key}: ${kind} takes two bounds [low, high]`, 2);
  const [low, high] = args.map((v) => checkValue(key, v, where)) as [number, number];
  if (!(low < high)) throw new CliError(`${where}: ${key}: the low bound ${low} must be below the high bound ${high}`, 2);
  if (kind === 'loguniform' && !(low > 0)) throw new CliError(`${where}: ${key}: loguniform needs bounds > 0`, 2);
  if (kind === 'int' && !(Number.isInteger(low) && Number.isInteger(high))) throw new CliError(`${where}: ${key}: int takes integer bounds`, 2);
  return { kind, low, high };
}

/** A space file's text → the space; errors name the file, line and key. */
export function parseSpace(file: string, text: string): Space {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) throw new CliError(`${file}${err.linePos ? `:${err.linePos[0].line}` : ''}: not valid YAML: ${err.message.split('\n')[0]}`, 2);
  if (!isMap(doc.contents)) throw new CliError(`${file}: a search space is a mapping (learning_rate: loguniform [1e-4, 1e-2], …)`, 2);
  const space: Space = {};
  for (const pair of doc.contents.items) {
    const key = String((pair.key as { value?: unknown } | null)?.value);
    const range = (pair.key as { range?: [number, number, number] } | null)?.range;
    const where = `${file}${range ? `:${lines.linePos(range[0]).line}` : ''}`;
    const value = (pair.value as { toJSON?: () => unknown } | null)?.toJSON?.() ?? null;
    space[key] = parseParam(key, value, where);
  }
  if (Object.keys(space).length === 0) throw new CliError(`${file}: the search space is empty`, 2);
  return space;
}

/** Trial `index`'s parameters: a seeded draw from the space, the same for the same (seed, index). */
export function sampleParams(space: Readonly<Space>, seed: number, index: number): Record<string, ParamValue> {
  const rng = new Rng(`tune/${seed}/${index}`);
  const out: Record<string, ParamValue> = {};
  for (const [k, p] of Object.entries(space)) {
    if (p.kind === 'choice') out[k] = p.values[rng.int(0, p.values.length - 1)] as ParamValue;
    else if (p.kind === 'int') out[k] = rng.int(p.low, p.high);
    else if (p.kind === 'uniform') out[k] = Number(rng.uniform(p.low, p.high).toPrecision(4));
    else out[k] = Number(Math.exp(rng.uniform(Math.log(p.low), Math.log(p.high))).toPrecision(4));
  }
  return out;
}

/** A value's position on its axis in [0, 1] (log scale for loguniform, index for choices), for the plot. */
export function normalise(p: ParamSpec, v: ParamValue): number {
  if (p.kind === 'choice') return p.values.length === 1 ? 0.5 : p.values.indexOf(v) / (p.values.length - 1);
  const x = Number(v);
  if (p.kind === 'loguniform') return (Math.log(x) - Math.log(p.low)) / (Math.log(p.high) - Math.log(p.low));
  return (x - p.low) / (p.high - p.low);
}
