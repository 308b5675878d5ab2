/**
 * Asynchronous successive halving (ASHA): Li et al. 2020, "A System for Massively Parallel
 * Hyperparameter Tuning" (MLSys), Algorithm 2. Chosen over TPE (Bergstra et al. 2011) because it
 * stops bad trials early by construction (a trial runs more rounds only when it is in the top 1/η of
 * its rung), keeps every worker busy without waiting for a rung to fill (the asynchronous rule), and
 * is a few dozen lines with behaviour that is easy to test; random (seeded) sampling proposes new
 * trials. The resource is federated rounds: rung k trains `rungs[k]` rounds (e.g. R/4, R/2, R).
 *
 * Pure bookkeeping, no I/O: `next()` says which job to run, `report()` records its result. A
 * restarted study rebuilds the scheduler from its stored results (`restore`) and runs the jobs that
 * were in flight when it stopped first.
 */

export interface AshaOptions {
  /** Rounds per rung, ascending (the last one is the full budget R). */
  rungs: readonly number[];
  /** Reduction factor η ≥ 2: the top 1/η of a rung is promoted. */
  eta: number;
  /** Trials to start in all (new configurations). */
  maxTrials: number;
}

export type Job = { trial: number; rung: number };

/** One trial: its result per rung (higher is better; NaN or −∞: failed), and where it is running. */
export interface TrialState {
  id: number;
  results: (number | undefined)[];
  running: number | undefined;
}

/** The rungs for a budget of R rounds and η: R, R/η, R/η², … (at least one round, distinct), ascending, at most `max`. */
export function rungsFor(budget: number, eta: number, max = 3): number[] {
  const out: number[] = [];
  for (let r = budget; out.length < max; r /= eta) {
    const rounds = Math.max(1, Math.round(r));
    if (out.includes(rounds)) break;
    out.unshift(rounds);
    if (rounds === 1) break;
  }
  return out;
}

const score = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v);

export class Asha {
  readonly trials: TrialState[] = [];
  private readonly pending: Job[] = [];

  constructor(readonly o: AshaOptions) {
    if (!(Number.isInteger(o.eta) && o.eta >= 2)) throw new RangeError(`eta must be an integer >= 2, got ${o.eta}`);
    if (o.rungs.length === 0 || o.rungs.some((r, i) => !(Number.isInteger(r) && r >= 1) || (i > 0 && r <= (o.rungs[i - 1] as number)))) throw new RangeError(`rungs must be ascending positive integers, got ${o.rungs.join(', ')}`);
    if (!(Number.isInteger(o.maxTrials) && o.maxTrials >= 1)) throw new RangeError(`maxTrials must be >= 1, got ${o.maxTrials}`);
  }

  /**
   * Rebuilds the state of a stopped study: `results[trial][rung]` as stored; `started` the jobs
   * that had begun without a result (run again first, before anything new).
   */
  restore(results: ReadonlyMap<number, ReadonlyMap<number, number>>, started: readonly Job[]): void {
    const ids = new Set([...results.keys(), ...started.map((j) => j.trial)]);
    for (const id of [...ids].sort((a, b) => a - b)) {
      const t = this.trial(id);
      for (const [rung, v] of results.get(id) ?? []) t.results[rung] = v;
    }
    for (const j of started) if (this.trial(j.trial).results[j.rung] === undefined) this.pending.push(j);
  }

  private trial(id: number): TrialState {
    let t = this.trials.find((x) => x.id === id);
    if (!t) {
      t = { id, results: [], running: undefined };
      this.trials.push(t);
      this.trials.sort((a, b) => a.id - b.id);
    }
    return t;
  }

  /** The trials a rung promotes now: its top ⌊n/η⌋ by result, among the n with a result there. */
  promotable(rung: number): number[] {
    const done = this.trials.filter((t) => t.results[rung] !== undefined);
    const k = Math.floor(done.length / this.o.eta);
    return done
      .sort((a, b) => score(b.results[rung]) - score(a.results[rung]) || a.id - b.id)
      .slice(0, k)
      .filter((t) => Number.isFinite(score(t.results[rung])))
      .map((t) => t.id);
  }

  /**
   * The next job (marked running), or undefined: wait for a running job (`running() > 0`) or the
   * study is done. Algorithm 2's get_job: the highest rung with a promotable trial not yet promoted,
   * else a new trial at the bottom rung while the trial budget lasts.
   */
  next(): Job | undefined {
    const again = this.pending.shift();
    if (again) {
      this.trial(again.trial).running = again.rung;
      return again;
    }
    for (let k = this.o.rungs.length - 2; k >= 0; k--) {
      for (const id of this.promotable(k)) {
        const t = this.trial(id);
        if (t.results[k + 1] === undefined && t.running === undefined) {
          t.running = k + 1;
          return { trial: id, rung: k + 1 };
        }
      }
    }
    if (this.trials.length < this.o.maxTrials) {
      const id = this.trials.length === 0 ? 0 : Math.max(...this.trials.map((t) => t.id)) + 1;
      this.trial(id).running = 0;
      return { trial: id, rung: 0 };
    }
    return undefined;
  }

  report(job: Job, value: number): void {
    const t = this.trial(job.trial);
    t.results[job.rung] = Number.isNaN(value) ? Number.NEGATIVE_INFINITY : value;
    t.running = undefined;
  }

  running(): number {
    return this.trials.filter((t) => t.running !== undefined).length;
  }

  /** The highest rung a trial reached and its result there. */
  static reached(t: TrialState): { rung: number; value: number } {
    for (let k = t.results.length - 1; k >= 0; k--) if (t.results[k] !== undefined) return { rung: k, value: t.results[k] as number };
    return { rung: -1, value: Number.NaN };
  }

  /** Trials best first: higher rung reached first (results at fewer rounds are not comparable), then the result. */
  ranking(): TrialState[] {
    return [...this.trials].sort((a, b) => {
      const x = Asha.reached(a);
      const y = Asha.reached(b);
      return y.rung - x.rung || score(y.value) - score(x.value) || a.id - b.id;
    });
  }
}
