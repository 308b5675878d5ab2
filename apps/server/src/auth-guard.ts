/**
 * Strangers stay out: failed sign-ins are rate-limited per address and audited in aggregate, and
 * engine.io connections are capped per address and in total.
 *
 * Rate limit: rate-limiter-flexible's in-memory limiter (a kept library: atomic counters with
 * expiry, block duration, no timers left holding the process). Each failed authentication (an
 * unknown, revoked or expired token, on REST or either Socket.IO namespace) consumes one point of
 * the caller's address; past `authFailuresPerMinute` in a minute the address is blocked for a
 * minute: REST answers 429 with `Retry-After`, Socket.IO refuses the handshake with a typed
 * RATE_LIMITED error (`retry_after_s`) and closes the connection. A blocked address is refused
 * before its token is even looked up, a valid one included, so a guesser learns nothing more.
 *
 * Audit: refusals are counted per address and written once per window (`auditWindowMs`) as one
 * row `{ actor: <address>, action: 'auth.refused', detail: { count, by: {surface:code: n}, … } }`;
 * a flood from one address costs one row a minute, not one row an attempt. At most
 * `maxTrackedAddresses` addresses are tallied per window; the rest are counted under '*'.
 */
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { AuditEntryInput } from '@fedcare/shared/fl';

export interface StrangerLimits {
  /** Open engine.io connections from one address (default 32). */
  maxConnectionsPerIp: number;
  /** Open engine.io connections in all (default 1000). */
  maxConnections: number;
  /** Failed authentications per address per minute before it is blocked for a minute (default 20). */
  authFailuresPerMinute: number;
  /** How often the aggregated refusals are written to the audit log (default 60 s). */
  auditWindowMs: number;
  /** Addresses tallied per window before the rest are counted together under '*' (default 10,000). */
  maxTrackedAddresses: number;
  /** Take the client's address from X-Forwarded-For (behind a load balancer that sets it); default false. */
  trustProxy: boolean;
}

export const DEFAULT_STRANGER_LIMITS: StrangerLimits = {
  maxConnectionsPerIp: 32,
  maxConnections: 1000,
  authFailuresPerMinute: 20,
  auditWindowMs: 60_000,
  maxTrackedAddresses: 10_000,
  trustProxy: false,
};

/** The client's address: the TCP peer, or with trustProxy the address the load balancer appended last to X-Forwarded-For. */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const last = (Array.isArray(xff) ? xff.join(',') : xff)?.split(',').map((s) => s.trim()).filter(Boolean).pop();
    if (last) return last;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

interface Tally {
  count: number;
  by: Record<string, number>;
  since: string;
}

export class AuthGuard {
  private readonly limiter: RateLimiterMemory;
  private tallies = new Map<string, Tally>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly limits: Pick<StrangerLimits, 'authFailuresPerMinute' | 'auditWindowMs' | 'maxTrackedAddresses'>,
    private readonly audit: (entry: AuditEntryInput) => Promise<unknown>,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.limiter = new RateLimiterMemory({ points: limits.authFailuresPerMinute, duration: 60, blockDuration: 60 });
    this.timer = setInterval(() => void this.flush(), limits.auditWindowMs);
    this.timer.unref();
  }

  /** Seconds until this address may try again; undefined when it is not blocked. */
  async retryAfter(address: string): Promise<number | undefined> {
    const res = await this.limiter.get(address);
    if (res === null || res.consumedPoints <= this.limits.authFailuresPerMinute) return undefined;
    return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  }

  /**
   * A failed authentication from `address` (what: 'rest:401', 'hospital:UNAUTHORIZED', …); consumes
   * a point when `counts` (a wrong credential, not a valid one used outside its role). Resolves to
   * the seconds the address is now blocked for, if this failure blocked it.
   */
  async failed(address: string, what: string, counts = true): Promise<number | undefined> {
    this.refused(address, what);
    if (!counts) return undefined;
    try {
      await this.limiter.consume(address);
      return undefined;
    } catch (e) {
      if (e instanceof RateLimiterRes) return Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      throw e;
    }
  }

  /** Counts a refusal for the aggregated audit row (a blocked attempt, a wrong role, a bad handshake). */
  refused(address: string, what: string): void {
    const key = this.tallies.has(address) || this.tallies.size < this.limits.maxTrackedAddresses ? address : '*';
    let t = this.tallies.get(key);
    if (!t) {
      t = { count: 0, by: {}, since: this.now().toISOString() };
      this.tallies.set(key, t);
    }
    t.count++;
    t.by[what] = (t.by[what] ?? 0) + 1;
  }

  /** Writes one audit row per address for the window that ends now; resolves when they are written. */
  async flush(): Promise<void> {
    if (this.tallies.size === 0) return;
    const tallies = this.tallies;
    this.tallies = new Map();
    const until = this.now().toISOString();
    await Promise.all(
      [...tallies].map(([address, t]) => this.audit({ actor: address, action: 'auth.refused', outcome: 'rejected', detail: { count: t.count, by: t.by, since: t.since, until } })),
    );
  }

  /** Stops the window timer and writes the last window. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/** Open engine.io connections per address and in total. */
export class ConnectionCaps {
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: Pick<StrangerLimits, 'maxConnections' | 'maxConnectionsPerIp'>) {}

  /** Why a new connection from `address` is refused; undefined when it may open. */
  refusal(address: string): string | undefined {
    if (this.total >= this.limits.maxConnections) return `the coordinator has ${this.total} connections open (its limit, FEDCARE_MAX_CONNECTIONS)`;
    if ((this.perAddress.get(address) ?? 0) >= this.limits.maxConnectionsPerIp) {
      return `${this.limits.maxConnectionsPerIp} connections are open from this address (the limit, FEDCARE_MAX_CONNECTIONS_PER_IP)`;
    }
    return undefined;
  }

  /** A connection opened; the returned function closes it (once). */
  open(address: string): () => void {
    this.total++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.total--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    };
  }

  get openCount(): number {
    return this.total;
  }
}
