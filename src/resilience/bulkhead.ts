/**
 * A bulkhead: a counting semaphore shared by every thread, so the limit on
 * concurrent calls to one downstream is global and exact. Acquiring is a CAS
 * on the in-use count; a caller that finds it full may wait, bounded both by
 * the acquire timeout and by a cap on the number of waiters, using
 * Atomics.waitAsync so no thread blocks. A release wakes one waiter.
 *
 * The acquire timeout is what turns a slow downstream into fast, clean 503s
 * instead of a queue that eats every request's deadline.
 *
 * Each thread's part of the counts is also kept under its thread slot
 * (thread-slots.ts), so when a worker thread dies, `reclaim` gives back the
 * slots it held and removes its waiters: otherwise every death would shrink
 * the limit for good. The per-slot count moves right next to the global one,
 * with no JavaScript call or loop between them: V8 acts on `terminate()` at
 * its interrupt checks (function entries, loop back-edges), not between two
 * Atomics builtins, so a terminated thread does not stop between the two.
 * (A sweep runs only after the thread's 'exit': see gateway/worker-exits.ts.)
 */
import { systemClock, type Clock } from '../lib/clock.js';
import type { Region, RegionSpec } from '../shm/regions.js';
import { SHARED_SLOT, THREAD_SLOTS } from './thread-slots.js';

// Int32 slots
const IN_USE = 0;
const WAITING = 1;
const LIMIT = 2;
const MAX_WAITING = 3;
const ACQUIRED = 4;
const REJECTED_FULL = 5;
const REJECTED_TIMEOUT = 6;
/** Slots given back on behalf of dead threads (a count, never reset). */
const RECLAIMED = 7;
/** Per thread slot: slots held, then callers waiting. */
const HELD_BY = 8;
const WAITING_BY = HELD_BY + THREAD_SLOTS;

export const BULKHEAD_REGION: RegionSpec = { ints: WAITING_BY + THREAD_SLOTS, floats: 0 };

export interface BulkheadConfig {
  limit: number;
  /** Callers allowed to wait at once; more are rejected at once. */
  maxWaiting: number;
}

export function initBulkheadRegion(r: Region, c: BulkheadConfig): void {
  r.i32.fill(0);
  r.i32[LIMIT] = c.limit;
  r.i32[MAX_WAITING] = c.maxWaiting;
}

export type AcquireResult =
  { ok: true; waitedMs: number } | { ok: false; reason: 'full' | 'timeout'; waitedMs: number };

export interface BulkheadStats {
  inUse: number;
  limit: number;
  waiting: number;
  acquired: number;
  rejectedFull: number;
  rejectedTimeout: number;
  /** Slots given back on behalf of threads that died holding them. */
  reclaimed: number;
}

/** What a dead thread held on one bulkhead, now given back. */
export interface Reclaimed {
  held: number;
  waiting: number;
}

export class Bulkhead {
  readonly #heldBy: number;
  readonly #waitingBy: number;

  /** `slot`: this thread's slot (thread-slots.ts); SHARED_SLOT when untracked. */
  constructor(
    readonly name: string,
    private readonly region: Region,
    private readonly clock: Clock = systemClock,
    slot = SHARED_SLOT,
  ) {
    this.#heldBy = HELD_BY + slot;
    this.#waitingBy = WAITING_BY + slot;
  }

  /** Non-blocking attempt. */
  tryAcquire(): boolean {
    const a = this.region.i32;
    const limit = Atomics.load(a, LIMIT);
    for (;;) {
      const cur = Atomics.load(a, IN_USE);
      if (cur >= limit) return false;
      if (Atomics.compareExchange(a, IN_USE, cur, cur + 1) === cur) {
        Atomics.add(a, this.#heldBy, 1);
        Atomics.add(a, ACQUIRED, 1);
        return true;
      }
    }
  }

  /** Acquire, waiting at most timeoutMs (0 = do not wait). */
  async acquire(timeoutMs: number): Promise<AcquireResult> {
    if (this.tryAcquire()) return { ok: true, waitedMs: 0 };
    const a = this.region.i32;
    if (timeoutMs <= 0) return this.#reject('full', 0);
    const full = Atomics.add(a, WAITING, 1) >= Atomics.load(a, MAX_WAITING);
    Atomics.add(a, this.#waitingBy, 1);
    if (full) {
      Atomics.sub(a, this.#waitingBy, 1);
      Atomics.sub(a, WAITING, 1);
      return this.#reject('full', 0);
    }
    const start = this.clock.now();
    try {
      for (;;) {
        const observed = Atomics.load(a, IN_USE);
        if (observed < Atomics.load(a, LIMIT) && this.tryAcquire())
          return { ok: true, waitedMs: this.clock.now() - start };
        const left = timeoutMs - (this.clock.now() - start);
        if (left <= 0) return this.#reject('timeout', this.clock.now() - start);
        // Whole milliseconds: on Node 20 a fractional waitAsync timeout never fires.
        const waitMs = Math.ceil(left);
        const w = Atomics.waitAsync(a, IN_USE, observed, waitMs);
        if (w.async) {
          // waitAsync does not keep the event loop alive, and its timeout may
          // fire a little after a timer of the same length: outlast it. A real
          // timer, not the clock's: it holds the process open for a wait the
          // runtime times (waitAsync), and a fake clock cannot shorten that.
          const keepAlive = setTimeout(() => {}, waitMs + 50);
          await w.value;
          clearTimeout(keepAlive);
        }
      }
    } finally {
      Atomics.sub(a, this.#waitingBy, 1);
      Atomics.sub(a, WAITING, 1);
    }
  }

  release(): void {
    Atomics.sub(this.region.i32, this.#heldBy, 1);
    Atomics.sub(this.region.i32, IN_USE, 1);
    Atomics.notify(this.region.i32, IN_USE, 1);
  }

  /**
   * Give back what the thread in `slot` held and drop its waiters. Only for a
   * thread that has exited (its 'exit' event fired): a live one would release
   * the same slots again.
   */
  reclaim(slot: number): Reclaimed {
    if (slot === SHARED_SLOT) return { held: 0, waiting: 0 };
    const a = this.region.i32;
    const held = Atomics.exchange(a, HELD_BY + slot, 0);
    const waiting = Atomics.exchange(a, WAITING_BY + slot, 0);
    if (waiting !== 0) Atomics.sub(a, WAITING, waiting);
    if (held !== 0) {
      Atomics.sub(a, IN_USE, held);
      Atomics.add(a, RECLAIMED, held);
      Atomics.notify(a, IN_USE, held);
    }
    return { held, waiting };
  }

  // Single counters for the front thread's per-request reads (no object built per call).
  get inUse(): number {
    return Atomics.load(this.region.i32, IN_USE);
  }

  get limit(): number {
    return Atomics.load(this.region.i32, LIMIT);
  }

  get waiting(): number {
    return Atomics.load(this.region.i32, WAITING);
  }

  get acquired(): number {
    return Atomics.load(this.region.i32, ACQUIRED);
  }

  stats(): BulkheadStats {
    const a = this.region.i32;
    return {
      inUse: Atomics.load(a, IN_USE),
      limit: Atomics.load(a, LIMIT),
      waiting: Atomics.load(a, WAITING),
      acquired: Atomics.load(a, ACQUIRED),
      rejectedFull: Atomics.load(a, REJECTED_FULL),
      rejectedTimeout: Atomics.load(a, REJECTED_TIMEOUT),
      reclaimed: Atomics.load(a, RECLAIMED),
    };
  }

  #reject(reason: 'full' | 'timeout', waitedMs: number): AcquireResult {
    Atomics.add(this.region.i32, reason === 'full' ? REJECTED_FULL : REJECTED_TIMEOUT, 1);
    return { ok: false, reason, waitedMs };
  }
}
