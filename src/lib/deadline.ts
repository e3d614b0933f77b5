/**
 * A request's deadline, as an error and as a bound on a promise. Shared by the
 * charge lifecycle and the database layer: a statement abandoned at the
 * deadline and a phase that ran out of time are the same answer (504, "may
 * still complete").
 */
import type { Clock } from './clock.js';

/** The deadline passed before the work finished; the work may still complete. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

export function isDeadline(e: unknown): boolean {
  return e instanceof DeadlineError;
}

/** Resolve with the promise, or reject with DeadlineError at the deadline (a timer of `clock`). */
export function beforeDeadline<T>(clock: Clock, deadlineEpochMs: number, p: Promise<T>): Promise<T> {
  const left = deadlineEpochMs - clock.epochMs();
  if (left <= 0) {
    p.catch(() => {});
    return Promise.reject(new DeadlineError());
  }
  if (!Number.isFinite(left)) return p;
  let cancel = () => {};
  const timeout = new Promise<never>((_, reject) => {
    cancel = clock.setTimeout(() => reject(new DeadlineError()), left);
  });
  return Promise.race([p, timeout]).finally(cancel);
}
