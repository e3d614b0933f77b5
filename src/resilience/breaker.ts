/**
 * Circuit breaker over a sliding time window (resilience4j's time-based
 * window): failure rate and slow-call rate over `buckets` buckets spanning
 * `windowMs`, judged only once `minCalls` calls are in the window. Open for
 * `openMs`, then half-open: up to `halfOpenProbes` probes; it closes when the
 * probes' success ratio reaches `halfOpenSuccessRatio`, and opens again as
 * soon as that ratio can no longer be reached.
 *
 * State lives in a Region so one breaker is shared by every thread: the state
 * word is read lock-free (the front thread's fast reject), every change is
 * made under the region's lock. Time comes from the caller (epoch ms, which
 * all threads agree on), so tests drive it with plain numbers.
 */
import { withLock, type Region, type RegionSpec } from './shared-memory.js';

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
  halfOpenProbes: number;
  halfOpenSuccessRatio: number;
}

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
// Float64 slots
const OPENED_AT = 0;
const PROBES_ISSUED = 1;
const PROBES_OK = 2;
const PROBES_FAILED = 3;
const BUCKETS = 4; // then per bucket: [epoch, calls, failures, slow]

export function breakerRegionSpec(c: Pick<BreakerConfig, 'buckets'>): RegionSpec {
  return { ints: 4, floats: BUCKETS + 4 * c.buckets };
}

export interface Transition {
  from: BreakerState;
  to: BreakerState;
  /** Failure and slow-call rates of the window that decided it (closed → open). */
  failureRate?: number;
  slowCallRate?: number;
}

export type Permit = 'call' | 'probe';

export interface BreakerStats {
  state: BreakerState;
  calls: number;
  failureRate: number;
  slowCallRate: number;
  rejections: number;
  transitions: number;
}

export class Breaker {
  readonly #bucketMs: number;
  constructor(
    readonly name: string,
    private readonly r: Region,
    private readonly c: BreakerConfig,
    private readonly onTransition?: (t: Transition) => void,
  ) {
    this.#bucketMs = c.windowMs / c.buckets;
  }

  state(): BreakerState {
    return STATES[Atomics.load(this.r.i32, STATE)]!;
  }

  /**
   * Lock-free early check for the front thread: false only when the breaker
   * is surely refusing (open inside its open period, or forced open).
   */
  admits(nowMs: number): boolean {
    const s = Atomics.load(this.r.i32, STATE);
    if (s === FORCED_OPEN) return false;
    if (s === OPEN) return nowMs - this.r.f64[OPENED_AT]! >= this.c.openMs;
    return true;
  }

  /** Ask to make a call. null = rejected (counted). */
  acquire(nowMs: number): Permit | null {
    const t = withLock(this.r.i32, LOCK, () => {
      const f = this.r.f64;
      let s = this.r.i32[STATE]!;
      let transition: Transition | undefined;
      if (s === OPEN && nowMs - f[OPENED_AT]! >= this.c.openMs) {
        transition = this.#set(HALF_OPEN);
        f[PROBES_ISSUED] = f[PROBES_OK] = f[PROBES_FAILED] = 0;
        s = HALF_OPEN;
      }
      let permit: Permit | null = null;
      if (s === CLOSED) permit = 'call';
      else if (s === HALF_OPEN && f[PROBES_ISSUED]! < this.c.halfOpenProbes) {
        f[PROBES_ISSUED]!++;
        permit = 'probe';
      }
      if (permit === null) Atomics.add(this.r.i32, REJECTIONS, 1);
      return { permit, transition };
    });
    if (t.transition) this.onTransition?.(t.transition);
    return t.permit;
  }

  /** Report how a permitted call ended. Timeouts are failures. */
  record(permit: Permit, nowMs: number, ok: boolean, durationMs: number): void {
    const transition = withLock(this.r.i32, LOCK, () => {
      const s = this.r.i32[STATE]!;
      if (permit === 'probe') return s === HALF_OPEN ? this.#probeResult(ok, nowMs) : undefined;
      if (s !== CLOSED) return undefined; // a call that began before the breaker opened
      this.#add(nowMs, ok, durationMs >= this.c.slowCallMs);
      const w = this.#window(nowMs);
      if (w.calls < this.c.minCalls) return undefined;
      const failureRate = w.failures / w.calls;
      const slowCallRate = w.slow / w.calls;
      if (failureRate >= this.c.failureRateThreshold || slowCallRate >= this.c.slowCallRateThreshold) {
        this.r.f64[OPENED_AT] = nowMs;
        const t = this.#set(OPEN);
        return t && { ...t, failureRate, slowCallRate };
      }
      return undefined;
    });
    if (transition) this.onTransition?.(transition);
  }

  /** Admin: force open until reset. */
  forceOpen(): void {
    const t = withLock(this.r.i32, LOCK, () => this.#set(FORCED_OPEN));
    if (t) this.onTransition?.(t);
  }

  /** Admin: closed, window cleared. */
  reset(): void {
    const t = withLock(this.r.i32, LOCK, () => {
      this.#clearWindow();
      return this.#set(CLOSED);
    });
    if (t) this.onTransition?.(t);
  }

  stats(nowMs: number): BreakerStats {
    const w = withLock(this.r.i32, LOCK, () => this.#window(nowMs));
    return {
      state: this.state(),
      calls: w.calls,
      failureRate: w.calls ? w.failures / w.calls : 0,
      slowCallRate: w.calls ? w.slow / w.calls : 0,
      rejections: Atomics.load(this.r.i32, REJECTIONS),
      transitions: Atomics.load(this.r.i32, TRANSITIONS),
    };
  }

  #probeResult(ok: boolean, nowMs: number): Transition | undefined {
    const f = this.r.f64;
    if (ok) f[PROBES_OK]!++;
    else f[PROBES_FAILED]!++;
    const needed = Math.ceil(this.c.halfOpenProbes * this.c.halfOpenSuccessRatio);
    if (f[PROBES_OK]! >= needed) {
      this.#clearWindow();
      return this.#set(CLOSED);
    }
    if (this.c.halfOpenProbes - f[PROBES_FAILED]! < needed) {
      f[OPENED_AT] = nowMs;
      return this.#set(OPEN);
    }
    return undefined;
  }

  #set(to: number): Transition | undefined {
    const from = this.r.i32[STATE]!;
    if (from === to) return undefined;
    Atomics.store(this.r.i32, STATE, to);
    Atomics.add(this.r.i32, TRANSITIONS, 1);
    return { from: STATES[from]!, to: STATES[to]! };
  }

  #add(nowMs: number, ok: boolean, slow: boolean): void {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const base = BUCKETS + 4 * (epoch % this.c.buckets);
    const f = this.r.f64;
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
    const f = this.r.f64;
    let calls = 0;
    let failures = 0;
    let slow = 0;
    for (let b = 0; b < this.c.buckets; b++) {
      const base = BUCKETS + 4 * b;
      if (epoch - f[base]! < this.c.buckets) {
        calls += f[base + 1]!;
        failures += f[base + 2]!;
        slow += f[base + 3]!;
      }
    }
    return { calls, failures, slow };
  }

  #clearWindow(): void {
    this.r.f64.fill(0, BUCKETS);
    // epoch 0 buckets would count as current at time 0 only; mark them stale.
    for (let b = 0; b < this.c.buckets; b++) this.r.f64[BUCKETS + 4 * b] = -Infinity;
  }
}

/** Initialise a fresh breaker region (closed, empty window). */
export function initBreakerRegion(r: Region, c: Pick<BreakerConfig, 'buckets'>): void {
  r.i32.fill(0);
  r.f64.fill(0);
  for (let b = 0; b < c.buckets; b++) r.f64[BUCKETS + 4 * b] = -Infinity;
}
