/**
 * Concurrency limits for the front thread. `onSample(rttMs, inflight,
 * didDrop)` never reads a clock (Netflix concurrency-limits' shape), so the
 * algorithm is tested with plain numbers.
 *
 * GradientLimit follows Netflix's Gradient2: compare a short-term RTT with a
 * long-term baseline; while they agree the limit grows by a queue allowance
 * (sqrt(limit)), when the short RTT rises the gradient (long/short, clamped to
 * [0.5, 1]) shrinks it. Changes are smoothed, so the limit moves in steps,
 * never from everything to nothing. A drop (timeout, downstream refusal)
 * counts as a sample at twice the long RTT: load the service cannot take.
 */

export interface Limit {
  readonly current: number;
  onSample(rttMs: number, inflight: number, didDrop: boolean): void;
}

export class FixedLimit implements Limit {
  constructor(readonly current: number) {}
  onSample(_rttMs: number, _inflight: number, _didDrop: boolean): void {}
}

export interface GradientConfig {
  initial: number;
  min: number;
  max: number;
  /** Weight of each new estimate (0..1). */
  smoothing: number;
  /** Short RTT may exceed the long one by this factor before the limit shrinks. */
  tolerance: number;
  /** Samples in the long-term RTT average. */
  longWindow: number;
  /** Samples in the short-term RTT average. */
  shortWindow: number;
}

export const DEFAULT_GRADIENT: GradientConfig = {
  initial: 64,
  min: 8,
  max: 2048,
  smoothing: 0.2,
  tolerance: 1.5,
  longWindow: 600,
  shortWindow: 10,
};

export class GradientLimit implements Limit {
  #limit: number;
  #long = 0;
  #short = 0;
  #samples = 0;
  constructor(private readonly c: GradientConfig = DEFAULT_GRADIENT) {
    this.#limit = c.initial;
  }

  get current(): number {
    return Math.floor(this.#limit);
  }

  get longRttMs(): number {
    return this.#long;
  }

  onSample(rttMs: number, inflight: number, didDrop: boolean): void {
    const rtt = didDrop && this.#long > 0 ? Math.max(rttMs, 2 * this.#long) : rttMs;
    this.#samples++;
    if (this.#samples === 1) {
      this.#long = this.#short = rtt;
      return;
    }
    this.#short += (rtt - this.#short) * (2 / (this.c.shortWindow + 1));
    this.#long += (rtt - this.#long) * (2 / (this.c.longWindow + 1));
    // After a long overload the baseline has crept up; let it fall back fast
    // once latency recovers, or the limit would stay inflated.
    if (this.#long / this.#short > 2) this.#long *= 0.95;
    // App-limited: with so little in flight the RTT says nothing about capacity.
    if (inflight < this.#limit / 2 && !didDrop) return;
    const gradient = Math.max(0.5, Math.min(1, (this.c.tolerance * this.#long) / this.#short));
    const next = this.#limit * gradient + Math.sqrt(this.#limit);
    this.#limit = Math.max(
      this.c.min,
      Math.min(this.c.max, this.#limit * (1 - this.c.smoothing) + next * this.c.smoothing),
    );
  }
}
