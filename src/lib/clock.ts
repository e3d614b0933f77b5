/**
 * Time is injected into every time-based mechanism so tests advance it instead
 * of sleeping. `now()` is milliseconds on a monotonic scale; `epochMs()` is
 * wall-clock milliseconds, comparable across threads and processes (used for
 * deadlines that travel with a task to another thread). Timers belong to the
 * clock too: a deadline armed with `setTimeout` fires when a ManualClock is
 * advanced past it, so deadline tests need no real waiting.
 */
export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (fractional). */
  epochMs(): number;
  /** Run `fn` once after `ms`; the returned function cancels it (a no-op once it ran). */
  setTimeout(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  // timeOrigin + now() is monotonic within a thread and agrees across threads
  // to well under a millisecond, unlike Date.now() which can step.
  epochMs: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that moves only when told to: for tests. Its timers fire during `advance`. */
export class ManualClock implements Clock {
  #t: number;
  readonly #origin: number;
  #timers: ManualTimer[] = [];
  #seq = 0;
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
  setTimeout(fn: () => void, ms: number): () => void {
    const timer: ManualTimer = { at: this.#t + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }
  /** Timers armed and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#timers.length;
  }
  /**
   * Move time forward, firing every timer that falls due on the way, in time
   * order, with the clock set to each timer's time (a timer armed by another
   * fires too if it falls within the step).
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(ms) needs ms >= 0, got ${ms}`);
    const end = this.#t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers)
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (!next) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#t = Math.max(this.#t, next.at);
      next.fn();
    }
    this.#t = end;
  }
}
