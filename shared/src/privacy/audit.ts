/**
 * The statistics of a one-run privacy audit (Steinke, Nasr & Jagielski 2023, "Privacy Auditing with
 * One (1) Training Run", NeurIPS; arXiv:2305.08846): m canaries each join the training data with
 * probability ½, the auditor guesses membership for r of them from the final model and gets v right.
 * For an ε-DP algorithm the number of correct guesses is stochastically dominated by
 * Binomial(r, e^ε / (1 + e^ε)) (their Theorem 3.1 with δ = 0), so the largest ε whose binomial tail
 * P[Bin(r, p_ε) ≥ v] stays below 1 − confidence is an empirical lower bound on the ε of the run.
 *
 * The δ term of their theorem is omitted: it can only lower the bound, so a bound computed this way
 * is at least theirs — a check "lower bound ≤ claimed ε" is, if anything, stricter than theirs.
 */

/** log C(n, k) by a sum of logs (exact enough for n ≤ 10^5; no lgamma in JavaScript). */
function logChoose(n: number, k: number): number {
  let s = 0;
  const kk = Math.min(k, n - k);
  for (let i = 1; i <= kk; i++) s += Math.log(n - kk + i) - Math.log(i);
  return s;
}

/** P[Binomial(r, p) ≥ v], summed in log space. */
export function binomialTail(r: number, p: number, v: number): number {
  if (!(Number.isInteger(r) && r >= 0)) throw new RangeError(`r must be a non-negative integer, got ${r}`);
  if (!(Number.isInteger(v) && v >= 0 && v <= r + 1)) throw new RangeError(`v must be an integer in [0, r + 1], got ${v}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
  if (v <= 0) return 1;
  if (v > r) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  let max = Number.NEGATIVE_INFINITY;
  const terms: number[] = [];
  for (let k = v; k <= r; k++) {
    const t = logChoose(r, k) + k * lp + (r - k) * lq;
    terms.push(t);
    if (t > max) max = t;
  }
  let s = 0;
  for (const t of terms) s += Math.exp(t - max);
  return Math.min(1, Math.exp(max) * s);
}

/**
 * The empirical ε lower bound of a one-run audit: the largest ε with
 * P[Bin(r, e^ε/(1+e^ε)) ≥ v] ≤ 1 − confidence (0 when even ε = 0 explains v correct guesses).
 */
export function epsilonLowerBound(r: number, v: number, confidence = 0.95): number {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  const alpha = 1 - confidence;
  const tail = (eps: number) => binomialTail(r, 1 / (1 + Math.exp(-eps)), v);
  if (r === 0 || tail(0) > alpha) return 0;
  // tail grows with ε: find the crossing by bisection on [0, hi].
  let lo = 0;
  let hi = 1;
  while (tail(hi) <= alpha && hi < 100) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (tail(mid) <= alpha) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface AuditGuesses {
  /** Guesses made (k "in" + k "out"). */
  guesses: number;
  correct: number;
}

/**
 * Guesses from scores (higher: more likely a member): the top k are guessed "in", the bottom k
 * "out", the rest abstain; k is fixed before looking at the scores (a fraction of m).
 */
export function guessMembership(scores: ArrayLike<number>, included: ArrayLike<boolean>, k: number): AuditGuesses {
  const m = scores.length;
  if (included.length !== m) throw new RangeError(`scores (${m}) and membership (${included.length}) differ in length`);
  if (!(Number.isInteger(k) && k >= 0 && 2 * k <= m)) throw new RangeError(`k must be an integer in [0, m/2], got ${k}`);
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let correct = 0;
  for (let j = 0; j < k; j++) if (included[order[j] as number]) correct++;
  for (let j = m - k; j < m; j++) if (!included[order[j] as number]) correct++;
  return { guesses: 2 * k, correct };
}
