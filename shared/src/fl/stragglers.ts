/**
 * Stragglers (issue 13): a stage deadline that adapts to the round's observed answer times, and a
 * policy that excludes a hospital that keeps answering last.
 *
 * Rule: once at least half of a stage's targets have answered (results and rejections alike), the
 * stage waits at most max(minMs, factor × the median answer time so far), measured from the start
 * of the stage, and never past the fixed stage timeout. A hospital that slow-walks each stage to
 * just before `stage_timeout_s` is cut at a few times the honest hospitals' pace instead.
 *
 * Strike: in a round, a hospital was dropped for a timeout (either deadline) in some stage, or it
 * answered a stage last, later than twice the stage's median answer time and than the deadline's floor. `strikes` consecutive
 * rounds with a strike exclude it for the rest of the run (policy 'exclude'), unless that would
 * leave fewer hospitals than the run needs.
 */
import { median } from './influence';
import type { StageOutcome } from './grid';

export interface AdaptiveDeadline {
  factor: number;
  minMs: number;
}

/** The adaptive deadline (ms from the stage's start) given the answer times so far, or undefined while fewer than half of `targets` answered. */
export function adaptiveDeadlineMs(answeredMs: readonly number[], targets: number, rule: AdaptiveDeadline): number | undefined {
  if (rule.factor <= 0 || targets === 0 || answeredMs.length < Math.ceil(targets / 2)) return undefined;
  return Math.max(rule.minMs, rule.factor * median(answeredMs));
}

/**
 * Who straggled in one stage: dropped for a timeout, or last, slower than twice the median and
 * slower than `minMs` (the deadline's floor: milliseconds of noise between fast hospitals never count).
 */
export function stageStragglers(outcome: Pick<StageOutcome, 'dropped' | 'elapsedMs'>, minMs: number): string[] {
  const out = outcome.dropped.filter((d) => d.reason === 'timeout').map((d) => d.hospitalId);
  const times = [...(outcome.elapsedMs ?? new Map<string, number>())];
  if (times.length >= 3) {
    const med = median(times.map(([, t]) => t));
    const [last, t] = times.reduce((a, b) => (b[1] > a[1] ? b : a));
    if (t > 2 * med && t > minMs) out.push(last);
  }
  return [...new Set(out)];
}

/** Consecutive rounds with a strike per hospital, and who is excluded. */
export class StragglerPolicy {
  private readonly streak = new Map<string, number>();
  readonly excluded = new Set<string>();
  constructor(
    readonly strikes: number,
    readonly enabled: boolean,
  ) {}

  /**
   * Ends a round: hospitals in `struck` gain a strike, the others who took part reset theirs.
   * Returns those newly excluded (at most so many that `keepAtLeast` of `available` remain).
   */
  endRound(participants: readonly string[], struck: ReadonlySet<string>, available: readonly string[], keepAtLeast: number): { hospitalId: string; strikes: number }[] {
    for (const h of participants) this.streak.set(h, struck.has(h) ? (this.streak.get(h) ?? 0) + 1 : 0);
    if (!this.enabled) return [];
    const out: { hospitalId: string; strikes: number }[] = [];
    for (const h of [...struck].sort()) {
      const n = this.streak.get(h) ?? 0;
      if (n < this.strikes || this.excluded.has(h)) continue;
      const remaining = available.filter((x) => !this.excluded.has(x) && x !== h).length;
      if (remaining < keepAtLeast) continue;
      this.excluded.add(h);
      out.push({ hospitalId: h, strikes: n });
    }
    return out;
  }
}
