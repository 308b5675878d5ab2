/**
 * Input checks every Store implementation makes, in the same order and with the same messages, so
 * that SQLite and DynamoDB + S3 reject the same calls with the same StoreError ('invalid').
 * Each function throws; the stores call them inside their promise so that a bad call rejects.
 */
import { createHash } from 'node:crypto';
import {
  AUDIT_OUTCOMES,
  BEST_METRIC,
  PARTICIPATION_STATUSES,
  RUN_STATUSES,
  StoreError,
  type AuditEntryInput,
  type AuditQuery,
  type Participation,
  type RoundCommit,
  type RunStatus,
  type AuditRetention,
  type TokenSpec,
} from '@fedcare/shared/fl';
import { MAX_TOKEN_LENGTH, isValidHospitalId } from './tokens';

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function invalid(message: string): never {
  throw new StoreError('invalid', message);
}

export function checkId(what: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) invalid(`${what} must be a non-empty string of at most 200 characters`);
}

export function checkIso(what: string, s: unknown): asserts s is string {
  if (typeof s !== 'string' || Number.isNaN(Date.parse(s))) invalid(`${what} must be an ISO-8601 timestamp, got ${JSON.stringify(s)}`);
}

export function checkMetrics(what: string, m: unknown): asserts m is Record<string, number> {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) invalid(`${what} must be an object of metric name → number`);
  for (const [name, v] of Object.entries(m)) {
    if (name.length === 0) invalid(`${what} has an empty metric name`);
    if (typeof v !== 'number') invalid(`${what}.${name} must be a number, got ${typeof v}`);
  }
}

/** JSON text of a value the store keeps as JSON (config, feature statistics, audit detail). */
export function jsonText(what: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    invalid(`${what} is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (text === undefined) invalid(`${what} is not JSON-serialisable`);
  return text;
}

export function checkParticipation(what: string, p: Participation): void {
  if (typeof p !== 'object' || p === null) invalid(`${what} must be an object`);
  if (typeof p.hospitalId !== 'string' || p.hospitalId.length === 0) invalid(`${what}.hospitalId must be a non-empty string`);
  if (typeof p.stage !== 'string' || p.stage.length === 0) invalid(`${what}.stage must be a non-empty string`);
  if (!PARTICIPATION_STATUSES.includes(p.status)) invalid(`${what}.status must be one of ${PARTICIPATION_STATUSES.join(', ')}`);
  if (p.reason !== undefined && typeof p.reason !== 'string') invalid(`${what}.reason must be a string`);
  for (const k of ['bytesUp', 'bytesDown'] as const) {
    if (!Number.isSafeInteger(p[k]) || p[k] < 0) invalid(`${what}.${k} must be a non-negative integer`);
  }
}

/** createRun's arguments; returns the config as JSON text. */
export function validateNewRun(runId: string, config: Record<string, unknown>, totalRounds: number): string {
  checkId('runId', runId);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) invalid('config must be a JSON object');
  const configJson = jsonText('config', config);
  if (!Number.isSafeInteger(totalRounds) || totalRounds < 1) invalid(`totalRounds must be a positive integer, got ${totalRounds}`);
  return configJson;
}

export function validateRunStatus(status: RunStatus, reason: string | undefined): void {
  if (!RUN_STATUSES.includes(status)) invalid(`status must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
  if (reason !== undefined && typeof reason !== 'string') invalid('reason must be a string');
}

/** Everything commitRound checks before it looks at the store; returns the commit's val_loss. */
export function validateCommit(c: RoundCommit): number | undefined {
  checkId('runId', c.runId);
  if (!Number.isSafeInteger(c.round) || c.round < 1) invalid(`round must be a positive integer, got ${c.round}`);
  checkIso('startedAt', c.startedAt);
  checkIso('completedAt', c.completedAt);
  checkMetrics('metrics', c.metrics);
  if (typeof c.perHospital !== 'object' || c.perHospital === null) invalid('perHospital must be an object');
  for (const [hospitalId, m] of Object.entries(c.perHospital)) {
    if (hospitalId.length === 0) invalid('perHospital has an empty hospital id');
    checkMetrics(`perHospital.${hospitalId}`, m);
  }
  if (!Array.isArray(c.participation)) invalid('participation must be an array');
  c.participation.forEach((p, i) => checkParticipation(`participation[${i}]`, p));
  if (!(c.model?.bytes instanceof Uint8Array)) invalid('model.bytes must be a Uint8Array');
  if (typeof c.model.sha256 !== 'string' || !SHA256_HEX.test(c.model.sha256)) invalid('model.sha256 must be 64 lower-case hex characters');
  const actualSha = sha256Hex(c.model.bytes);
  if (actualSha !== c.model.sha256) invalid(`model.sha256 ${c.model.sha256} does not match the weights (their SHA-256 is ${actualSha})`);
  if (!(c.strategyState instanceof Uint8Array)) invalid('strategyState must be a Uint8Array');
  const valLoss = c.metrics[BEST_METRIC];
  if (c.best && (valLoss === undefined || !Number.isFinite(valLoss))) invalid(`a best round needs a finite ${BEST_METRIC} metric`);
  return valLoss;
}

/** A getRoundMetrics round filter. */
export function validateRoundFilter(round: number | undefined): void {
  if (round !== undefined && !Number.isSafeInteger(round)) invalid(`round must be an integer, got ${round}`);
}

/** A getModel selector; undefined when it selects nothing (no round completed, no best yet). */
export function selectedRound(which: unknown, lastCompletedRound: number, bestRound: number | undefined): number | undefined {
  if (which === 'latest') return lastCompletedRound === 0 ? undefined : lastCompletedRound;
  if (which === 'best') return bestRound;
  if (typeof which === 'number' && Number.isSafeInteger(which)) return which;
  invalid(`which must be 'latest', 'best' or a round number, got ${JSON.stringify(which)}`);
}

/** appendAudit's entry; returns the detail as JSON text (null without one). */
export function validateAuditEntry(entry: AuditEntryInput): string | null {
  if (typeof entry.actor !== 'string' || entry.actor.length === 0) invalid('audit actor must be a non-empty string');
  if (typeof entry.action !== 'string' || entry.action.length === 0) invalid('audit action must be a non-empty string');
  if (!AUDIT_OUTCOMES.includes(entry.outcome)) invalid(`audit outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`);
  return entry.detail === undefined ? null : jsonText('audit detail', entry.detail);
}

/** listAudit's query; `since` normalised to toISOString() ('' for none), which compares as text. */
export function validateAuditQuery(query: AuditQuery): { limit: number; sinceIso: string } {
  const { limit, since } = query;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000) invalid(`limit must be an integer in 1..100000, got ${limit}`);
  let sinceIso = '';
  if (since !== undefined) {
    checkIso('since', since);
    sinceIso = new Date(since).toISOString();
  }
  return { limit, sinceIso };
}

export function validateTokenSpec(spec: TokenSpec): void {
  if (spec.role === 'hospital') {
    if (!isValidHospitalId(spec.hospitalId)) invalid(`hospitalId ${JSON.stringify(spec.hospitalId)} is not valid (a letter, then letters, digits, '_' or '-'; at most 32 characters)`);
  } else if (spec.role === 'admin' || spec.role === 'observer') {
    const role = spec.role;
    if (spec.hospitalId !== undefined) invalid(`an ${role} token names no hospital`);
  } else {
    invalid(`role must be 'hospital', 'admin' or 'observer', got ${JSON.stringify((spec as unknown as { role: unknown }).role)}`);
  }
  if (spec.expiresAt !== undefined) checkIso('expiresAt', spec.expiresAt);
}

/** pruneAudit's retention: maxRows a positive integer, maxAgeMs (if given) a positive number of milliseconds. */
export function validateAuditRetention(r: AuditRetention): { maxRows: number; maxAgeMs: number | undefined } {
  if (!Number.isSafeInteger(r.maxRows) || r.maxRows < 1) invalid(`maxRows must be a positive integer, got ${r.maxRows}`);
  if (r.maxAgeMs !== undefined && !(Number.isFinite(r.maxAgeMs) && r.maxAgeMs > 0)) invalid(`maxAgeMs must be a positive number, got ${r.maxAgeMs}`);
  return { maxRows: r.maxRows, maxAgeMs: r.maxAgeMs };
}

/** Whether a token with this expiry (ISO-8601 or none) is still valid at `now`. */
export function unexpired(expiresAt: string | null | undefined, now: Date): boolean {
  return expiresAt === null || expiresAt === undefined || Date.parse(expiresAt) > now.getTime();
}

/** Whether a presented token is worth hashing and looking up at all. */
export function plausibleToken(token: unknown): token is string {
  return typeof token === 'string' && token.length > 0 && token.length <= MAX_TOKEN_LENGTH;
}
