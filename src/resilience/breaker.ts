/**
 * Circuit breaker over a sliding time window (resilience4j's time-based
 * window): failure rate and slow-call rate over `buckets` buckets spanning
 * `windowMs`, judged only once `minCalls` calls are in the window. Open for
 * `openMs`, then half-open: `halfOpenProbes` probe permits; it closes when the
 * probes' success ratio reaches `halfOpenSuccessRatio`, and opens again as
 * soon as that ratio can no longer be reached.
 *
 * Half-open is bounded twice. The front thread takes a probe permit per
 * request it lets through (`tryAdmit`), so a burst cannot all become probes;
 * a worker's call turns a permit into a running probe (`acquire`). Every
 * permit carries a deadline (`probeTimeoutMs`): a permit that was let through
 * but never called (the charge was answered from the database) is released
 * when it expires; a running probe that never reported (a hung call, a dead
 * worker, a lost promise) counts as a failed probe, because no healthy call
 * takes that long: the breaker reopens, and probes again after `openMs`. So
 * half-open always ends, whatever happens to the threads holding permits.
 *
 * Calls cut short by their caller (see guards.ts) are neutral: `release`
 * gives the permit back without an outcome.
 *
 * A fixed open period is a bet on how long the outage lasts: a provider
 * that heals a second after the breaker opened is refused for the other
 * four (measured in the lab: 3.3 s of 503 `breaker_open` after the provider
 * had healed, at 200 charges/s). So the open period can also end early, no
 * sooner than `minOpenMs`, when an out-of-band health check (Envoy's active
 * health checking beside outlier ejection) finds the downstream answering
 * fast again: `healthCheckPassed`. That only makes the breaker due for
 * half-open; real calls, as probes, still decide whether it closes.
 *
 * State lives in a Region so one breaker is shared by every thread: the state
 * word is read lock-free (the front thread's fast path while closed or
 * open), every change is made under the region's lock. Time comes from the
 * caller (epoch ms, which all threads agree on), so tests drive it with plain
 * numbers.
 */
import { withLock, type Region, type RegionSpec } from '../shm/regions.js';

export interface BreakerConfig {
  windowMs: number;
  buckets: number;
  minCalls: number;
  /** Open when failures / calls >= this (0..1). */
  failureRateThreshold: number;
  /** A call slower than this counts as slow. */
  slowCallMs: number;
  /** Open when slow calls / calls >= this (0..1). */
  slowCallRateThreshold: number;
  openMs: number;
  /**
   * The earliest an out-of-band health check may end an open period
   * (`healthCheckPassed`): a downstream that answers a lookup may still fail
   * charges, and this bounds how often real probes find that out.
   */
  minOpenMs: number;
  halfOpenProbes: number;
  halfOpenSuccessRatio: number;
  /** Life of a half-open probe permit, from the front thread's admission or from the call's start. */
  probeTimeoutMs: number;
}

/**
 * Buckets a breaker's window is counted in: the window slides a tenth at a
 * time, fine enough for the rates to follow a change within a window and
 * coarse enough to keep the shared region small.
 */
export const BREAKER_BUCKETS = 10;

export type BreakerState = 'closed' | 'open' | 'half_open' | 'forced_open';
const STATES: readonly BreakerState[] = ['closed', 'open', 'half_open', 'forced_open'];
const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;
const FORCED_OPEN = 3;

// Int32 slots
const LOCK = 0;
const STATE = 1;
const REJECTIONS = 2;
const TRANSITIONS = 3;
const PROBES_EXPIRED = 4;
// Float64 slots
const OPENED_AT = 0;
/** Probe permits handed out so far: each permit's ticket, so a late or repeated report of an old permit counts for nothing. */
const TICKETS = 1;
const PROBES_OK = 2;
const PROBES_FAILED = 3;
const BUCKETS = 4; // then per bucket: [epoch, calls, failures, slow], then per probe permit: [state, expiresAt, ticket]
// Probe permit states
const FREE = 0;
/** Let through by the front thread; no call made yet. */
const RESERVED = 1;
const CALLING = 2;
/** Reported (or expired running): not reusable in this round. */
const DONE = 3;

export function breakerRegionSpec(c: Pick<BreakerConfig, 'buckets' | 'halfOpenProbes'>): RegionSpec {
  return { ints: 5, floats: BUCKETS + 4 * c.buckets + 3 * c.halfOpenProbes };
}

export interface Transition {
  from: BreakerState;
  to: BreakerState;
  /** Failure and slow-call rates of the window that decided it (closed → open). */
  failureRate?: number;
  slowCallRate?: number;
}

/** A permitted call: an ordinary one while closed, or a half-open probe (permit `slot`, handed out as `ticket`). */
export type Permit = 'call' | { readonly slot: number; readonly ticket: number };

export interface BreakerStats {
  state: BreakerState;
  calls: number;
  failureRate: number;
  slowCallRate: number;
  rejections: number;
  transitions: number;
  /** Probe permits taken (let through or running) in the current half-open round. */
  probesInFlight: number;
  /** Running probes that never reported within probeTimeoutMs (counted as failed). */
  probesExpired: number;
}

export class Breaker {
  readonly #bucketMs: number;
  readonly #slots: number;
  /** Transitions made under the lock, announced after it is released. */
  readonly #pending: Transition[] = [];
  constructor(
    readonly name: string,
    private readonly region: Region,
    private readonly config: BreakerConfig,
    private readonly onTransition?: (t: Transition) => void,
  ) {
    this.#bucketMs = config.windowMs / config.buckets;
    this.#slots = BUCKETS + 4 * config.buckets;
  }

  state(): BreakerState {
    return STATES[Atomics.load(this.region.i32, STATE)]!;
  }

  /** The duration this breaker calls slow (guards.ts: a caller that allowed this long asked nothing unreasonable). */
  get slowCallMs(): number {
    return this.config.slowCallMs;
  }

  /**
   * The front thread's check before dispatching a request that will call
   * this downstream. Lock-free while closed (true) or open (false). While
   * half-open (or once the open period is over) it takes a probe permit, so
   * at most `halfOpenProbes` requests get through per round; false when none
   * is left (counted as a rejection).
   */
  tryAdmit(nowMs: number): boolean {
    const s = Atomics.load(this.region.i32, STATE);
    if (s === CLOSED) return true;
    if (s === FORCED_OPEN) return false;
    if (s === OPEN && nowMs - this.region.f64[OPENED_AT]! < this.config.openMs) return false;
    return this.#locked(() => {
      if (!this.#enterHalfOpen(nowMs)) return this.region.i32[STATE] === CLOSED;
      const slot = this.#find(FREE);
      if (slot < 0) {
        Atomics.add(this.region.i32, REJECTIONS, 1);
        return false;
      }
      this.#setSlot(slot, RESERVED, nowMs + this.config.probeTimeoutMs);
      return true;
    });
  }

  /** Ask to make a call. null = rejected (counted). */
  acquire(nowMs: number): Permit | null {
    return this.#locked(() => {
      let permit: Permit | null = null;
      if (this.region.i32[STATE] === CLOSED) permit = 'call';
      else if (this.#enterHalfOpen(nowMs)) {
        // A permit the front thread let through becomes this call; a call
        // from elsewhere (the reconciler) may take a free one.
        let slot = this.#find(RESERVED);
        if (slot < 0) slot = this.#find(FREE);
        if (slot >= 0) {
          this.#setSlot(slot, CALLING, nowMs + this.config.probeTimeoutMs);
          const ticket = ++this.region.f64[TICKETS]!;
          this.region.f64[this.#slots + 3 * slot + 2] = ticket;
          permit = { slot, ticket };
        }
      }
      if (permit === null) Atomics.add(this.region.i32, REJECTIONS, 1);
      return permit;
    });
  }

  /** Report how a permitted call ended. Timeouts of calls that had their full budget are failures. */
  record(permit: Permit, nowMs: number, ok: boolean, durationMs: number): void {
    this.#locked(() => {
      const s = this.region.i32[STATE]!;
      if (permit !== 'call') {
        if (s === HALF_OPEN) this.#expire(nowMs);
        if (this.#current(permit)) {
          this.#setSlot(permit.slot, DONE, 0);
          this.#probeResult(ok, nowMs);
        }
        return;
      }
      if (s !== CLOSED) return; // a call that began before the breaker opened
      this.#add(nowMs, ok, durationMs >= this.config.slowCallMs);
      const w = this.#window(nowMs);
      if (w.calls < this.config.minCalls) return;
      const failureRate = w.failures / w.calls;
      const slowCallRate = w.slow / w.calls;
      if (failureRate >= this.config.failureRateThreshold || slowCallRate >= this.config.slowCallRateThreshold) {
        this.region.f64[OPENED_AT] = nowMs;
        this.#set(OPEN, { failureRate, slowCallRate });
      }
    });
  }

  /**
   * A permitted call that says nothing about the downstream (cut short by
   * its caller's deadline, aborted): no outcome, and a probe permit goes
   * back to the pool of the current round.
   */
  release(permit: Permit, nowMs: number): void {
    if (permit === 'call') return;
    this.#locked(() => {
      if (this.region.i32[STATE] === HALF_OPEN) this.#expire(nowMs);
      if (this.#current(permit)) this.#setSlot(permit.slot, FREE, 0);
    });
  }

  /**
   * How long this breaker has been open (ms), or null when it is not open
   * (closed, half-open, forced open): lock-free, for the timer that decides
   * whether to run a health check.
   */
  openForMs(nowMs: number): number | null {
    if (Atomics.load(this.region.i32, STATE) !== OPEN) return null;
    return nowMs - this.region.f64[OPENED_AT]!;
  }

  /**
   * An out-of-band health check, started at `startedAtMs`, found the
   * downstream answering in time: an open breaker (open at least
   * `minOpenMs`) is due for half-open now instead of at the end of `openMs`.
   * A check started before this open period began says nothing about it (a
   * half-open round may have failed meanwhile) and counts for nothing. True
   * when it shortened the open period.
   */
  healthCheckPassed(nowMs: number, startedAtMs: number): boolean {
    return this.#locked(() => {
      const f = this.region.f64;
      if (this.region.i32[STATE] !== OPEN || startedAtMs < f[OPENED_AT]!) return false;
      const openFor = nowMs - f[OPENED_AT]!;
      if (openFor < this.config.minOpenMs || openFor >= this.config.openMs) return false;
      f[OPENED_AT] = nowMs - this.config.openMs;
      return true;
    });
  }

  /** Admin: force open until reset. */
  forceOpen(): void {
    this.#locked(() => this.#set(FORCED_OPEN));
  }

  /** Admin: closed, window cleared. */
  reset(): void {
    this.#locked(() => {
      this.#clearWindow();
      this.#set(CLOSED);
    });
  }

  stats(nowMs: number): BreakerStats {
    const { w, inFlight } = this.#locked(() => {
      if (this.region.i32[STATE] === HALF_OPEN) this.#expire(nowMs);
      let inFlight = 0;
      if (this.region.i32[STATE] === HALF_OPEN) {
        for (let i = 0; i < this.config.halfOpenProbes; i++) {
          const st = this.region.f64[this.#slots + 3 * i];
          if (st === RESERVED || st === CALLING) inFlight++;
        }
      }
      return { w: this.#window(nowMs), inFlight };
    });
    return {
      state: this.state(),
      calls: w.calls,
      failureRate: w.calls ? w.failures / w.calls : 0,
      slowCallRate: w.calls ? w.slow / w.calls : 0,
      rejections: Atomics.load(this.region.i32, REJECTIONS),
      transitions: Atomics.load(this.region.i32, TRANSITIONS),
      probesInFlight: inFlight,
      probesExpired: Atomics.load(this.region.i32, PROBES_EXPIRED),
    };
  }

  /** Run fn under the region's lock, then announce the transitions it made (outside the lock: listeners log). */
  #locked<T>(fn: () => T): T {
    const out = withLock(this.region.i32, LOCK, fn);
    if (this.#pending.length > 0) {
      for (const t of this.#pending.splice(0)) this.onTransition?.(t);
    }
    return out;
  }

  /**
   * Under the lock: settle expired permits and move open → half-open when
   * the open period is over (a new round, every permit free). True when the
   * breaker is half-open afterwards.
   */
  #enterHalfOpen(nowMs: number): boolean {
    if (this.region.i32[STATE] === HALF_OPEN) this.#expire(nowMs);
    const f = this.region.f64;
    if (this.region.i32[STATE] === OPEN && nowMs - f[OPENED_AT]! >= this.config.openMs) {
      this.#set(HALF_OPEN);
      f[PROBES_OK] = f[PROBES_FAILED] = 0;
      f.fill(0, this.#slots, this.#slots + 3 * this.config.halfOpenProbes);
    }
    return this.region.i32[STATE] === HALF_OPEN;
  }

  /** Under the lock, while half-open: expired permits are released (never called) or failed (running). */
  #expire(nowMs: number): void {
    const f = this.region.f64;
    for (let i = 0; i < this.config.halfOpenProbes && this.region.i32[STATE] === HALF_OPEN; i++) {
      const at = this.#slots + 3 * i;
      if ((f[at] !== RESERVED && f[at] !== CALLING) || f[at + 1]! > nowMs) continue;
      const expiredAt = f[at + 1]!;
      if (f[at] === RESERVED) {
        this.#setSlot(i, FREE, 0);
        continue;
      }
      this.#setSlot(i, DONE, 0);
      Atomics.add(this.region.i32, PROBES_EXPIRED, 1);
      // Reopened as of the moment the probe expired: a breaker nobody asked
      // for a while is due to probe again at once.
      this.#probeResult(false, expiredAt);
    }
  }

  #current(permit: Exclude<Permit, 'call'>): boolean {
    const at = this.#slots + 3 * permit.slot;
    return (
      this.region.i32[STATE] === HALF_OPEN &&
      this.region.f64[at] === CALLING &&
      this.region.f64[at + 2] === permit.ticket
    );
  }

  #find(state: number): number {
    for (let i = 0; i < this.config.halfOpenProbes; i++) if (this.region.f64[this.#slots + 3 * i] === state) return i;
    return -1;
  }

  #setSlot(i: number, state: number, expiresAt: number): void {
    this.region.f64[this.#slots + 3 * i] = state;
    this.region.f64[this.#slots + 3 * i + 1] = expiresAt;
  }

  #probeResult(ok: boolean, nowMs: number): void {
    const f = this.region.f64;
    if (ok) f[PROBES_OK]!++;
    else f[PROBES_FAILED]!++;
    const needed = Math.ceil(this.config.halfOpenProbes * this.config.halfOpenSuccessRatio);
    if (f[PROBES_OK]! >= needed) {
      this.#clearWindow();
      this.#set(CLOSED);
    } else if (this.config.halfOpenProbes - f[PROBES_FAILED]! < needed) {
      f[OPENED_AT] = nowMs;
      this.#set(OPEN);
    }
  }

  #set(to: number, rates?: { failureRate: number; slowCallRate: number }): void {
    const from = this.region.i32[STATE]!;
    if (from === to) return;
    Atomics.store(this.region.i32, STATE, to);
    Atomics.add(this.region.i32, TRANSITIONS, 1);
    this.#pending.push({ from: STATES[from]!, to: STATES[to]!, ...rates });
  }

  #add(nowMs: number, ok: boolean, slow: boolean): void {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const base = BUCKETS + 4 * (epoch % this.config.buckets);
    const f = this.region.f64;
    if (f[base] !== epoch) {
      f[base] = epoch;
      f[base + 1] = f[base + 2] = f[base + 3] = 0;
    }
    f[base + 1]!++;
    if (!ok) f[base + 2]!++;
    if (slow) f[base + 3]!++;
  }

  #window(nowMs: number): { calls: number; failures: number; slow: number } {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const f = this.region.f64;
    let calls = 0;
    let failures = 0;
    let slow = 0;
    for (let b = 0; b < this.config.buckets; b++) {
      const base = BUCKETS + 4 * b;
      if (epoch - f[base]! < this.config.buckets) {
        calls += f[base + 1]!;
        failures += f[base + 2]!;
        slow += f[base + 3]!;
      }
    }
    return { calls, failures, slow };
  }

  #clearWindow(): void {
    this.region.f64.fill(0, BUCKETS, this.#slots);
    // epoch 0 buckets would count as current at time 0 only; mark them stale.
    for (let b = 0; b < this.config.buckets; b++) this.region.f64[BUCKETS + 4 * b] = -Infinity;
  }
}

/** Initialise a fresh breaker region (closed, empty window). */
export function initBreakerRegion(r: Region, c: Pick<BreakerConfig, 'buckets'>): void {
  r.i32.fill(0);
  r.f64.fill(0);
  for (let b = 0; b < c.buckets; b++) r.f64[BUCKETS + 4 * b] = -Infinity;
}
