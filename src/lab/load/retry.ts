/**
 * Client retry policies, as the clients the lab imitates would behave. Pure:
 * a policy looks at the attempt that just ended and says "stop" or "wait
 * this long, then resend" (with the same Idempotency-Key: the caller reuses
 * the planned request). Retries are extra sends of one scheduled arrival,
 * never new arrivals, so offered load stays what the schedule says and the
 * amplification shows up as `retries`.
 *
 * - none: one attempt.
 * - capped: a well-behaved client (AWS/Stripe SDK style): up to 3 attempts on
 *   5xx, 409 (in progress), 429, timeout or connection error, waiting a full
 *   jitter backoff, or the server's Retry-After when longer, both capped.
 * - storm: a naive client: resends at once on the same failures, up to 10
 *   attempts, however long it has already waited. Each attempt carries the
 *   full deadline, so a slow service turns every timeout into another
 *   request (the amplification that keeps a metastable failure going), and
 *   fast 503s come back as ten. This is the storm the gateway must survive.
 */
import { fullJitterDelayMs } from '../../resilience/backoff.js';
import type { Random } from '../../lib/random.js';
import type { RetryPolicyName } from './types.js';

export type AttemptOutcome =
  { kind: 'status'; status: number; retryAfterMs?: number } | { kind: 'timeout' } | { kind: 'error'; code: string };

export interface RetryPolicy {
  readonly name: RetryPolicyName;
  readonly maxAttempts: number;
  /**
   * After attempt number `attempt` (1-based) ended with `outcome`, `elapsedMs`
   * after the request's intended send: the delay before the next attempt in
   * ms, or undefined to stop.
   */
  decide(attempt: number, outcome: AttemptOutcome, elapsedMs: number): number | undefined;
}

export interface RetrySettings {
  /** Attempts including the first; 0 = the policy's default. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  random: Random;
}

export const DEFAULT_ATTEMPTS: Readonly<Record<RetryPolicyName, number>> = { none: 1, capped: 3, storm: 10 };

/** What a retrying client treats as "try again": the answer is not final and may change. */
export function isRetryable(o: AttemptOutcome): boolean {
  if (o.kind !== 'status') return true;
  return o.status >= 500 || o.status === 409 || o.status === 429;
}

export function retryPolicy(name: RetryPolicyName, s: RetrySettings): RetryPolicy {
  const maxAttempts = name === 'none' ? 1 : s.maxAttempts > 0 ? s.maxAttempts : DEFAULT_ATTEMPTS[name];
  switch (name) {
    case 'none':
      return { name, maxAttempts, decide: () => undefined };
    case 'capped':
      return {
        name,
        maxAttempts,
        decide(attempt, outcome) {
          if (attempt >= maxAttempts || !isRetryable(outcome)) return undefined;
          const jitter = fullJitterDelayMs(attempt, s.baseMs, s.capMs, s.random);
          // Retry-After is the server asking for room; honour it, but a client has its own patience.
          const asked =
            outcome.kind === 'status' && outcome.retryAfterMs !== undefined
              ? Math.min(outcome.retryAfterMs, s.capMs)
              : 0;
          return Math.max(jitter, asked);
        },
      };
    case 'storm':
      return {
        name,
        maxAttempts,
        decide(attempt, outcome) {
          if (attempt >= maxAttempts || !isRetryable(outcome)) return undefined;
          return 0;
        },
      };
  }
}

/** Retry-After as delta-seconds or an HTTP date → ms from nowEpochMs; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowEpochMs: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowEpochMs);
}
