/**
 * When the reconciler tries a charge whose outcome is unknown again, and when
 * it stops. Pure: the attempt number and the random source come in, a delay
 * or a verdict goes out.
 *
 * - Per-row backoff, exponential and capped, with "equal jitter": try n
 *   (1-based, the try that just failed) waits a uniform time in [c/2, c],
 *   c = min(cap, base * 2^(n-1)). The half that is fixed keeps the gaps
 *   growing (the shortest wait after try n+1 is the longest after try n), so
 *   a provider that cannot answer is asked less and less often; the half that
 *   is random spreads the thousands of rows an incident leaves behind, so
 *   they do not come due in the same second.
 * - A bounded number of tries: after `maxAttempts` provider calls whose
 *   outcome stayed unknown the row moves to `needs_attention` and is never
 *   charged automatically again; an operator resolves it (docs/runbook.md).
 *   A final answer always wins, whatever the count: the cap only ends the
 *   asking, it never decides an outcome.
 * With the defaults (1 s, capped at 5 min, 20 tries) a row is asked for
 * between about 29 and 59 minutes before it needs an operator: longer than
 * most provider incidents, well inside the 72 h a provider keeps its
 * idempotency keys.
 */
import type { Random } from '../lib/random.js';

export interface ReconcilePolicy {
  /** Wait after the first unknown try, ms. */
  baseMs: number;
  /** Longest wait between tries, ms. */
  capMs: number;
  /** Provider calls with an unknown outcome before the row needs an operator. */
  maxAttempts: number;
}

export const DEFAULT_RECONCILE_POLICY: Readonly<ReconcilePolicy> = Object.freeze({
  baseMs: 1000,
  capMs: 300_000,
  maxAttempts: 20,
});

/** Ceiling of the wait after try `attempt` (1-based): min(cap, base * 2^(attempt-1)). */
export function reconcileCeilingMs(attempt: number, p: Pick<ReconcilePolicy, 'baseMs' | 'capMs'>): number {
  return Math.min(p.capMs, p.baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The wait after try `attempt` left the outcome unknown: uniform in [ceiling/2, ceiling]. */
export function reconcileDelayMs(
  attempt: number,
  p: Pick<ReconcilePolicy, 'baseMs' | 'capMs'>,
  random: Random,
): number {
  const c = reconcileCeilingMs(attempt, p);
  return c / 2 + random() * (c / 2);
}

/** After try `attempt` left the outcome unknown: ask again later, or give the row to an operator. */
export function afterUnknown(attempt: number, p: Pick<ReconcilePolicy, 'maxAttempts'>): 'retry' | 'give_up' {
  return attempt >= p.maxAttempts ? 'give_up' : 'retry';
}
