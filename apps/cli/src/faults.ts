/** Fault injection for simulations: `H2:disconnect@train:round=2`. */
import { STAGES, type StageName } from '@fedcare/shared/protocol';
import { CliError } from './io';

export interface Fault {
  hospital: string;
  action: 'disconnect';
  stage: StageName;
  round: number;
}

const PATTERN = /^([A-Za-z][A-Za-z0-9_-]*):(disconnect)@([a-z-]+):round=(\d+)$/;

export function parseFault(spec: string): Fault {
  const m = PATTERN.exec(spec.trim());
  if (!m) throw new CliError(`--fault "${spec}": expected HOSPITAL:disconnect@STAGE:round=N, e.g. H2:disconnect@train:round=2`, 2);
  const stage = m[3] as StageName;
  if (!(STAGES as readonly string[]).includes(stage)) throw new CliError(`--fault "${spec}": unknown stage "${stage}" (${STAGES.join(', ')})`, 2);
  return { hospital: m[1] as string, action: 'disconnect', stage, round: Number(m[4]) };
}

export function formatFault(f: Fault): string {
  return `${f.hospital}:${f.action}@${f.stage}:round=${f.round}`;
}
