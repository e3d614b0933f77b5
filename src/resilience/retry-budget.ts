/**
 * Retry budget (Finagle's RetryBudget, Envoy's retry_budget): retries may be
 * at most `ratio` of first attempts, plus a small floor of `minPerSecond` so a
 * quiet service can still retry. Every first attempt deposits `ratio` tokens,
 * every retry withdraws one, and the floor trickles in with time; the balance
 * is capped so a long calm spell cannot bank a storm. Shared by all threads:
 * when the downstream fails everywhere at once, retries stay a bounded share
 * of traffic instead of multiplying it.
 */
import { withLock, type Region, type RegionSpec } from '../shm/regions.js';

export interface RetryBudgetConfig {
  /** Retries allowed per first attempt (0.2 = 20 %). */
  ratio: number;
  /** Retries per second always allowed. */
  minPerSecond: number;
  /** Most tokens that can be banked. */
  maxTokens: number;
}

/**
 * The bank is capped at this many seconds of the floor (and never below
 * RETRY_BUDGET_MIN_TOKENS): a burst of retries after a calm spell stays the
 * size of a few seconds of trickle, not of the whole spell.
 */
export const RETRY_BUDGET_BANKED_SECONDS = 10;
export const RETRY_BUDGET_MIN_TOKENS = 10;

/** The most tokens a budget with this floor may bank. */
export function retryBudgetMaxTokens(minPerSecond: number): number {
  return Math.max(RETRY_BUDGET_MIN_TOKENS, minPerSecond * RETRY_BUDGET_BANKED_SECONDS);
}

const LOCK = 0;
const DEPOSITS = 1;
const WITHDRAWN = 2;
const REFUSED = 3;
const TOKENS = 0;
const LAST_MS = 1;

export const RETRY_BUDGET_REGION: RegionSpec = { ints: 4, floats: 2 };

export function initRetryBudgetRegion(r: Region, c: RetryBudgetConfig, nowMs: number): void {
  r.i32.fill(0);
  r.f64[TOKENS] = c.maxTokens;
  r.f64[LAST_MS] = nowMs;
}

export class RetryBudget {
  constructor(
    private readonly region: Region,
    private readonly config: RetryBudgetConfig,
  ) {}

  /** A first attempt is made: earn `ratio` tokens. */
  deposit(nowMs: number): void {
    withLock(this.region.i32, LOCK, () => {
      this.#refill(nowMs);
      this.region.f64[TOKENS] = Math.min(this.config.maxTokens, this.region.f64[TOKENS]! + this.config.ratio);
    });
    Atomics.add(this.region.i32, DEPOSITS, 1);
  }

  /** May a retry be made now? Takes a token if so. */
  tryWithdraw(nowMs: number): boolean {
    const ok = withLock(this.region.i32, LOCK, () => {
      this.#refill(nowMs);
      if (this.region.f64[TOKENS]! < 1) return false;
      this.region.f64[TOKENS] = this.region.f64[TOKENS]! - 1;
      return true;
    });
    Atomics.add(this.region.i32, ok ? WITHDRAWN : REFUSED, 1);
    return ok;
  }

  stats(): { tokens: number; deposits: number; retries: number; refused: number } {
    return {
      tokens: this.region.f64[TOKENS]!,
      deposits: Atomics.load(this.region.i32, DEPOSITS),
      retries: Atomics.load(this.region.i32, WITHDRAWN),
      refused: Atomics.load(this.region.i32, REFUSED),
    };
  }

  #refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.region.f64[LAST_MS]!);
    this.region.f64[LAST_MS] = Math.max(nowMs, this.region.f64[LAST_MS]!);
    this.region.f64[TOKENS] = Math.min(
      this.config.maxTokens,
      this.region.f64[TOKENS]! + (elapsed / 1000) * this.config.minPerSecond,
    );
  }
}
