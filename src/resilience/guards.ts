/**
 * The guards around every downstream call, in one visible order:
 *
 *   bulkhead (bounded wait) → breaker (permit) → call → breaker.record → release
 *
 * The bulkhead comes first so a call that cannot get a slot never takes a
 * half-open probe permit.
 *
 * What the breaker learns is only what the downstream did. A call the
 * downstream answered counts as usual (success or failure, slow or not),
 * whatever its budget. A call that ran out of time counts as a failure only
 * if its caller gave it a fair budget: the full per-attempt timeout
 * (PROVIDER_TIMEOUT_MS / FX_TIMEOUT_MS), or at least the breaker's own
 * slow-call threshold (a downstream that does not answer within the time the
 * breaker itself calls slow has failed that call, whoever asked; and a charge
 * with the default 1 s deadline whose claim was slow under load still tells
 * on a hung provider). With less, it was cut short by its caller's own
 * deadline and says nothing about the downstream, or any client could open a
 * shared breaker by sending tiny deadlines. Such a call is neutral, however
 * long it ran: its duration is the caller's deadline plus our own event-loop
 * lag, which the same client's flood can inflate. (The price: a hung
 * downstream whose every caller allows less than the slow-call threshold
 * does not open the breaker; the bulkhead and those deadlines still bound
 * what it holds.)
 * A call aborted by us, and a refusal by our own bulkhead or breaker, are
 * neutral too. Otherwise the breaker records failure
 * unless the call classified itself a success, so a call that throws feeds it.
 *
 * Calls the downstream answered usefully also feed `answers`, the recent
 * fastest answer time that admission compares deadlines with.
 */
import type { Clock } from '../lib/clock.js';
import type { AnswerTime } from './answer-time.js';
import type { Breaker } from './breaker.js';
import type { Bulkhead } from './bulkhead.js';

export interface Guard {
  breaker?: Breaker;
  bulkhead?: Bulkhead;
  acquireTimeoutMs: number;
  /** The full per-attempt timeout of this downstream: a call given less that ran out was cut short by its caller. */
  attemptTimeoutMs: number;
  clock: Clock;
  /** Where the durations of useful answers go (the deadline floor at admission). */
  answers?: AnswerTime;
  /** Time spent waiting for a bulkhead slot (ms), granted or not. */
  onWait?: (ms: number) => void;
  /** Duration of a call that was made (ms). */
  onCall?: (ms: number) => void;
}

export type Refusal = { refused: 'breaker_open' | 'bulkhead_full' };

/** How a call's result counts: the downstream answered usefully, failed, or did not answer in the time it was given. */
export type Verdict = 'success' | 'failure' | 'timeout';

/** Run `call` under the guard. `classify` says how a result counts for the breaker. */
export async function guarded<T>(
  guard: Guard,
  timeoutMs: number,
  call: (timeoutMs: number) => Promise<T>,
  classify: (r: T) => Verdict,
): Promise<T | Refusal> {
  const start = guard.clock.now();
  if (guard.bulkhead) {
    const slot = await guard.bulkhead.acquire(Math.min(guard.acquireTimeoutMs, timeoutMs));
    guard.onWait?.(slot.waitedMs);
    if (!slot.ok) return { refused: 'bulkhead_full' };
  }
  try {
    const permit = guard.breaker ? guard.breaker.acquire(guard.clock.epochMs()) : null;
    if (guard.breaker && permit === null) return { refused: 'breaker_open' };
    const callStart = guard.clock.now();
    const budget = Math.max(1, timeoutMs - (callStart - start));
    let verdict: Verdict | 'aborted' = 'failure';
    try {
      const result = await call(budget);
      verdict = classify(result);
      return result;
    } catch (e) {
      if ((e as Error | undefined)?.name === 'AbortError') verdict = 'aborted';
      throw e;
    } finally {
      const took = guard.clock.now() - callStart;
      const now = guard.clock.epochMs();
      guard.onCall?.(took);
      if (verdict === 'success') guard.answers?.note(now, took);
      if (guard.breaker && permit) {
        // Within a millisecond of the full timeout is the full timeout (the clock moved between the caller's reading and ours).
        // The caller's budget decides, not what our own bulkhead wait left of it: under a hung downstream most
        // callers wait for a slot, so counting only unwaited calls would keep the breaker closed.
        const cutShort =
          verdict === 'timeout' && timeoutMs + 1 < Math.min(guard.attemptTimeoutMs, guard.breaker.slowCallMs);
        if (verdict === 'aborted' || cutShort) guard.breaker.release(permit, now);
        else guard.breaker.record(permit, now, verdict === 'success', took);
      }
    }
  } finally {
    guard.bulkhead?.release();
  }
}

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && 'refused' in value;
}
