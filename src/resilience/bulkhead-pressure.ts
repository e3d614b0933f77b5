/**
 * How long a charge dispatched now would wait for a downstream bulkhead
 * slot, read on the front thread from the bulkhead's shared counters.
 *
 * Why: a bulkhead turns a saturated downstream into 503s only after each
 * waiter has spent its acquire timeout (100 ms by default) in a worker, and
 * under a sustained surge most of the excess takes that path: slow refusals
 * that hold an admission slot, a worker task and a client connection each.
 * A queue of waiters drains at the rate slots are acquired, so `waiting /
 * rate` is the wait a new caller would see; when that exceeds the acquire
 * timeout the caller would be refused anyway, so admission refuses it at
 * once, before its body is read. Callers the bulkhead can still serve in
 * time are admitted, which keeps the downstream's slots full: goodput stays
 * at the downstream's capacity while the excess gets a 503 in microseconds.
 *
 * The acquire rate is measured from the bulkhead's monotonic `acquired`
 * counter over windows of at least `windowMs`, smoothed; a full bulkhead
 * whose last window saw no acquisition (a hung downstream) has an unbounded
 * wait (only a full one: any caller counted ahead was enough before, and a
 * stall before the bulkhead, with slots free, then shed 1 378 charges in one
 * second of capacity at 3 300/s in a build that waited 500 ms), and one
 * with no window measured yet is left to the bulkhead itself.
 * Pure arithmetic over the counters it is given and the time it is told.
 */

/** The bulkhead counters the estimate reads: a Bulkhead (live getters, nothing allocated per read) or plain numbers in tests. */
export interface SlotCounters {
  readonly inUse: number;
  readonly limit: number;
  readonly waiting: number;
  readonly acquired: number;
}

export interface PressureConfig {
  /** Shortest window over which the acquire rate is measured (ms). */
  windowMs: number;
  /** Weight of each new window's rate in the estimate (0..1). */
  weight: number;
  /**
   * How long an admitted charge takes to reach the bulkhead (its body, the
   * hop to a worker, the claim committed in Postgres), in ms: the slots turn
   * over meanwhile, for the charges on their way and for the new caller alike.
   */
  arrivalMs: number;
}

const DEFAULT_PRESSURE: PressureConfig = { windowMs: 100, weight: 0.5, arrivalMs: 25 };

export class BulkheadPressure {
  #ratePerMs = 0;
  #lastAt: number | null = null;
  #lastAcquired = 0;
  #idleWindow = false;

  constructor(private readonly config: PressureConfig = DEFAULT_PRESSURE) {}

  /**
   * Expected wait (ms) for a slot for a caller arriving at nowMs; 0 while it
   * would find one free. `inFlight` counts this process's admitted callers
   * of the downstream that have not finished: the ones still on their way to
   * the bulkhead (parsing, the worker queue, the claim in Postgres) are not
   * yet waiters, but they are ahead of the new caller all the same, and
   * counting only waiters lets a burst through before any of it shows.
   */
  expectedWaitMs(s: SlotCounters, nowMs: number, inFlight = 0): number {
    this.#observe(s.acquired, nowMs);
    const limit = s.limit;
    // Charges on their way (at most those in flight that hold no slot and
    // wait for none; the count includes charges already past the provider)
    // reach the bulkhead over the next arrivalMs, as does the new caller.
    // Meanwhile the free slots and the slots released at the measured rate
    // seat them: only the rest queue ahead of it. At a provider that turns
    // slots over fast (healthy load, however busy the CPU), hundreds in
    // flight are no queue; at a saturated one (400/s) a burst of 40 beyond
    // the slots is, before any of it waits. Two cruder forms failed in the
    // lab: all of them counted, in the share of slots held, refused
    // thousands of charges at a healthy 2 000/s on a CPU-bound machine
    // (capacity); waiters alone let bursts through to wait out the acquire
    // timeout in a worker (overload: shed p99 185-218 ms in the service).
    const onTheWay = Math.max(0, inFlight - s.inUse - s.waiting);
    const seated = limit - s.inUse + this.#ratePerMs * this.config.arrivalMs;
    // And only in the share of slots held: at an idle provider nothing
    // queues for it, however many charges are held up elsewhere (bodies
    // trickling in, a slow Postgres); counting them refused ordinary charges
    // as `downstream` while 300 trickled bodies were in flight.
    const ahead = s.waiting + Math.max(0, onTheWay - seated) * Math.min(1, s.inUse / limit);
    if (s.inUse < limit && ahead <= 0) return 0;
    // Full, and the last whole window saw nothing acquired: the downstream
    // holds every slot and returns none. With slots free, nothing acquired
    // means no caller reached it: a stall before it (Postgres, the worker),
    // which refusing charges cannot shorten; the rate estimate judges then.
    if (this.#idleWindow && s.inUse >= limit) return Infinity;
    // Full before a first window has been measured: no estimate, let the bulkhead's own timeout judge.
    if (this.#ratePerMs <= 0) return 0;
    // This caller queues behind everyone ahead and needs one release more.
    return (ahead + 1) / this.#ratePerMs;
  }

  #observe(acquired: number, nowMs: number): void {
    if (this.#lastAt === null) {
      this.#lastAt = nowMs;
      this.#lastAcquired = acquired;
      return;
    }
    const dt = nowMs - this.#lastAt;
    if (dt < this.config.windowMs) return;
    const rate = (acquired - this.#lastAcquired) / dt;
    this.#idleWindow = acquired === this.#lastAcquired;
    this.#ratePerMs = this.#ratePerMs === 0 ? rate : this.#ratePerMs + (rate - this.#ratePerMs) * this.config.weight;
    this.#lastAt = nowMs;
    this.#lastAcquired = acquired;
  }
}
