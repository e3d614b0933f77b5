/**
 * Time is injected into every time-based mechanism so tests advance it instead
 * of sleeping. `now()` is milliseconds on a monotonic scale; `epochMs()` is
 * wall-clock milliseconds, comparable across threads and processes (used for
 * deadlines that travel with a task to another thread).
 */
export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (fractional). */
  epochMs(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  // timeOrigin + now() is monotonic within a thread and agrees across threads
  // to well under a millisecond, unlike Date.now() which can step.
  epochMs: () => performance.timeOrigin + performance.now(),
};

/** A clock that moves only when told to: for tests. */
export class ManualClock implements Clock {
  #t: number;
  readonly #origin: number;
  constructor(startMs = 0, originEpochMs = 1_700_000_000_000) {
    this.#t = startMs;
    this.#origin = originEpochMs;
  }
  now(): number {
    return this.#t;
  }
  epochMs(): number {
    return this.#origin + this.#t;
  }
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(ms) needs ms >= 0, got ${ms}`);
    this.#t += ms;
  }
}
