/**
 * Capped retries of one downstream call, deadline-aware: never past the
 * deadline, and never sleeping into it. The call classifies its own outcome
 * (`retryable`); this module decides only whether and when to try again.
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

export interface RetryEnv {
  clock: Clock;
  random: Random;
  sleep: (ms: number) => Promise<void>;
}

export interface RetryResult<T> {
  result: T | undefined;
  attempts: number;
  /** Why the loop stopped without a non-retryable result. */
  stopped?: 'attempts' | 'deadline';
}

export async function withRetries<T>(
  env: RetryEnv,
  policy: RetryPolicy,
  deadlineEpochMs: number,
  attempt: (timeoutMs: number, attemptNo: number) => Promise<T>,
  retryable: (r: T) => boolean,
): Promise<RetryResult<T>> {
  let last: T | undefined;
  for (let n = 1; n <= policy.maxAttempts; n++) {
    const left = deadlineEpochMs - env.clock.epochMs();
    if (left < policy.minAttemptMs) return { result: last, attempts: n - 1, stopped: 'deadline' };
    last = await attempt(Math.min(policy.attemptTimeoutMs, left), n);
    if (!retryable(last)) return { result: last, attempts: n };
    if (n === policy.maxAttempts) return { result: last, attempts: n, stopped: 'attempts' };
    const delay = fullJitterDelayMs(n, policy.baseMs, policy.capMs, env.random);
    if (env.clock.epochMs() + delay + policy.minAttemptMs > deadlineEpochMs) return { result: last, attempts: n, stopped: 'deadline' };
    await env.sleep(delay);
  }
  return { result: last, attempts: policy.maxAttempts, stopped: 'attempts' };
}
