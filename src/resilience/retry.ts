/**
 * Capped retries of one downstream call: never past the deadline, never
 * sleeping into it, never beyond the shared retry budget, and never after a
 * guard refused the call (an open breaker is not retried into). The call
 * classifies its own outcome (`retryable`); this module only decides whether
 * and when to try again, and says why it stopped.
 */
import type { Clock } from '../lib/clock.js';
import type { Random } from '../lib/random.js';
import { fullJitterDelayMs } from './backoff.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  capMs: number;
  /** Per-attempt timeout; each attempt gets min(this, time left). */
  attemptTimeoutMs: number;
  /** Do not start an attempt with less time than this left. */
  minAttemptMs: number;
}

export interface Budget {
  deposit(nowMs: number): void;
  tryWithdraw(nowMs: number): boolean;
}

/** Why a retryable result was not retried ('breaker_open' is reported by callers whose retry was refused by a guard). */
export type StopReason = 'attempts' | 'deadline' | 'budget' | 'breaker_open';

/** `Result`: what an attempt returns, handed to `onRetry` as it is. */
export interface RetryEnv<Result = unknown> {
  clock: Clock;
  random: Random;
  sleep: (ms: number) => Promise<void>;
  budget?: Budget;
  /** A retry is about to be made after `result`. */
  onRetry?: (result: Result) => void;
  /** A retryable result was not retried. */
  onSuppressed?: (reason: StopReason) => void;
}

export interface RetryResult<T> {
  result: T | undefined;
  attempts: number;
  /** Why the loop stopped without a non-retryable result. */
  stopped?: StopReason;
}

export async function withRetries<T>(
  env: RetryEnv<T>,
  policy: RetryPolicy,
  deadlineEpochMs: number,
  attempt: (timeoutMs: number, attemptNo: number) => Promise<T>,
  retryable: (r: T) => boolean,
): Promise<RetryResult<T>> {
  let last: T | undefined;
  const stop = (reason: StopReason, attempts: number): RetryResult<T> => {
    if (attempts > 0) env.onSuppressed?.(reason);
    return { result: last, attempts, stopped: reason };
  };
  env.budget?.deposit(env.clock.epochMs());
  for (let n = 1; n <= policy.maxAttempts; n++) {
    const left = deadlineEpochMs - env.clock.epochMs();
    if (left < policy.minAttemptMs) return stop('deadline', n - 1);
    last = await attempt(Math.min(policy.attemptTimeoutMs, left), n);
    if (!retryable(last)) return { result: last, attempts: n };
    if (n === policy.maxAttempts) return stop('attempts', n);
    const delay = fullJitterDelayMs(n, policy.baseMs, policy.capMs, env.random);
    if (env.clock.epochMs() + delay + policy.minAttemptMs > deadlineEpochMs) return stop('deadline', n);
    if (env.budget && !env.budget.tryWithdraw(env.clock.epochMs())) return stop('budget', n);
    env.onRetry?.(last);
    await env.sleep(delay);
  }
  return stop('attempts', policy.maxAttempts);
}
