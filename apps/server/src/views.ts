/**
 * What each role may see (least privilege). One place decides it, for REST, the dashboard
 * namespace and `fl:status` alike:
 *
 * - admin: everything.
 * - observer: everything the dashboard shows (every hospital's metrics, participation and host);
 *   no credentials and no run control (the REST route table refuses those, see http.ts).
 * - hospital: the global figures and its own rows; never another hospital's per-hospital metrics,
 *   sample counts, participation, dropouts or host — not even that it is connected.
 *
 * Global aggregates (a round's metrics, how many hospitals a stage targeted) are shown to every
 * role: they are what the federation publishes.
 */
import type { TokenPrincipal } from '@fedcare/shared/fl';
import type { DashboardServerToClient, ServerStatus } from '@fedcare/shared/protocol';

type Payload<E extends keyof DashboardServerToClient> = Parameters<DashboardServerToClient[E]>[0];

/** The hospital a principal is limited to; undefined when it sees every hospital (admin, observer). */
export function ownHospital(p: TokenPrincipal | undefined): string | undefined {
  return p?.role === 'hospital' ? p.hospitalId : undefined;
}

function only<T>(rows: readonly T[], own: string | undefined, id: (row: T) => string): T[] {
  return own === undefined ? [...rows] : rows.filter((r) => id(r) === own);
}

function onlyKey<V>(byHospital: Record<string, V>, own: string | undefined): Record<string, V> {
  if (own === undefined) return byHospital;
  return Object.hasOwn(byHospital, own) ? { [own]: byHospital[own] as V } : {};
}

export function viewStatus(p: TokenPrincipal | undefined, s: ServerStatus): ServerStatus {
  const own = ownHospital(p);
  return own === undefined ? s : { ...s, active_clients: s.active_clients.filter((h) => h === own) };
}

export function viewClients(p: TokenPrincipal | undefined, msg: Payload<'dash:clients'>): Payload<'dash:clients'> {
  return { hospitals: only(msg.hospitals, ownHospital(p), (h) => h.hospital_id) };
}

export function viewStage(p: TokenPrincipal | undefined, msg: Payload<'dash:stage'>): Payload<'dash:stage'> {
  const own = ownHospital(p);
  return own === undefined ? msg : { ...msg, dropped: msg.dropped.filter((h) => h === own) };
}

export function viewRound(p: TokenPrincipal | undefined, msg: Payload<'dash:round'>): Payload<'dash:round'> {
  const own = ownHospital(p);
  if (own === undefined) return msg;
  return { ...msg, per_hospital: onlyKey(msg.per_hospital, own), participation: only(msg.participation, own, (x) => x.hospitalId) };
}

/** A stored round as REST returns it (GET /api/v1/metrics). */
export interface RoundWire {
  round_number: number;
  metrics: Record<string, number>;
  per_hospital: Record<string, Record<string, number>>;
  participation: readonly { hospitalId: string }[];
  timestamp: string;
}

export function viewRoundWire<R extends RoundWire>(p: TokenPrincipal | undefined, r: R): R {
  const own = ownHospital(p);
  if (own === undefined) return r;
  return { ...r, per_hospital: onlyKey(r.per_hospital, own), participation: only(r.participation, own, (x) => x.hospitalId) };
}
