/**
 * Error-budget arithmetic for the /charge SLO (docs/design.md §6): plain numbers in,
 * plain numbers out, no clock and no I/O, so the lab, the CLI and the tests
 * share one definition of "burn" with the Prometheus rules.
 *
 * The budget is the share of requests allowed to be bad, 1 − objective. A
 * burn rate of 1 spends exactly the window's budget over the window; 14.4
 * spends it in window / 14.4. A run of `durationSeconds` at burn rate b
 * spends b × duration / window of the window's budget.
 */

export interface SloTarget {
  /** Share of requests that must be good, strictly between 0 and 1. Default 0.999. */
  objective: number;
  /** Length of the SLO window, days. Default 28. */
  windowDays: number;
}

export interface SliCounts {
  /** Requests answered (every status). */
  total: number;
  /** Requests that met the SLI: a non-5xx answer within the latency threshold. */
  good: number;
  /** Time the counts were gathered over, seconds. */
  durationSeconds: number;
}

export interface Burn {
  total: number;
  good: number;
  bad: number;
  /** bad / total; 0 when there were no requests (nothing was spent). */
  errorRatio: number;
  /** The allowed error ratio, 1 − objective. */
  errorBudget: number;
  /** errorRatio / errorBudget: 1 spends the whole budget in exactly one window. */
  burnRate: number;
  /** Share of the window's budget this run spent: burnRate × duration / window. */
  budgetConsumed: number;
  /** Budget left in a window whose only spend was this run: 1 − budgetConsumed. */
  remainingAfterRun: number;
  /** Budget left at the end of a window that burned like this run throughout: 1 − burnRate (negative when overspent). */
  projectedRemaining: number;
  /** Time a full budget lasts at this burn rate, seconds; Infinity at burn 0. */
  exhaustionSeconds: number;
}

/** The SLO of docs/design.md §6: 99.9 % of /charge answered non-5xx within 300 ms over 28 days. */
export const DEFAULT_SLO = Object.freeze({ objective: 0.999, windowDays: 28, latencyThresholdMs: 300 });

export const SECONDS_PER_DAY = 86_400;

/**
 * 1 − objective, rounded to 12 significant digits: 1 − 0.999 is
 * 0.0010000000000000009 in binary floating point, and the rules file, the
 * messages and the hand-computed tests all mean 0.001.
 */
export function errorBudget(objective: number): number {
  if (!(Number.isFinite(objective) && objective > 0 && objective < 1)) {
    throw new RangeError(`objective must be a number greater than 0 and less than 1; got ${objective}`);
  }
  return Number((1 - objective).toPrecision(12));
}

export function computeBurn(counts: SliCounts, target: SloTarget): Burn {
  const { total, good, durationSeconds } = counts;
  if (!(Number.isFinite(total) && total >= 0)) throw new RangeError(`total must be a finite number >= 0; got ${total}`);
  if (!(Number.isFinite(good) && good >= 0 && good <= total))
    throw new RangeError(`good must be a finite number from 0 to total (${total}); got ${good}`);
  if (!(Number.isFinite(durationSeconds) && durationSeconds > 0))
    throw new RangeError(`durationSeconds must be a finite number > 0; got ${durationSeconds}`);
  if (!(Number.isFinite(target.windowDays) && target.windowDays > 0))
    throw new RangeError(`windowDays must be a finite number > 0; got ${target.windowDays}`);
  const budget = errorBudget(target.objective);
  const bad = total - good;
  const errorRatio = total === 0 ? 0 : bad / total;
  const burnRate = errorRatio / budget;
  const windowSeconds = target.windowDays * SECONDS_PER_DAY;
  const budgetConsumed = (burnRate * durationSeconds) / windowSeconds;
  return {
    total,
    good,
    bad,
    errorRatio,
    errorBudget: budget,
    burnRate,
    budgetConsumed,
    remainingAfterRun: 1 - budgetConsumed,
    projectedRemaining: 1 - burnRate,
    exhaustionSeconds: burnRate === 0 ? Infinity : windowSeconds / burnRate,
  };
}
