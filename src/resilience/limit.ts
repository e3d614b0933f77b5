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
 * counts in the short RTT as twice the long one: load the service cannot take.
 *
 * The long RTT is the healthy baseline everything is measured against, so a
 * surge must not move it, or the limit chases its own overload upward (it
 * reached 1 739 that way, and under CPU saturation swung 19–305). Three paths
 * did: drops fed it; samples inflated by queueing fed it (with gradient 1 up
 * to 1.5× the baseline, the limit grows, its own queue inflates the RTT, the
 * baseline follows, and so on up); and a 5 %-per-sample collapse when the
 * short RTT fell under half the baseline let a burst of fast requests yank it
 * down. Now drops never touch it, and a sample teaches it only while the
 * short RTT is not above it (no queue in sight) or when it is itself faster
 * than the baseline. The price: a dependency that becomes slower for good
 * (RTT up by more than the tolerance whatever the concurrency) holds the
 * limit at its floor until its latency comes back; from RTT alone that looks
 * exactly like a surge, and a surge is the case this limit exists for.
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

export const DEFAULT_GRADIENT: GradientConfig = { initial: 64, min: 8, max: 2048, smoothing: 0.2, tolerance: 1.5, longWindow: 600, shortWindow: 10 };

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
    let gradient: number;
    if (didDrop) {
      this.#short += (Math.max(rttMs, 2 * this.#long) - this.#short) * (2 / (this.c.shortWindow + 1));
      // Before the first answer there is no baseline to compare with: every drop shrinks as hard as the gradient can.
      gradient = this.#samples === 0 ? 0.5 : Math.max(0.5, Math.min(1, (this.c.tolerance * this.#long) / this.#short));
    } else {
      this.#samples++;
      if (this.#samples === 1) {
        this.#long = this.#short = rttMs;
        return;
      }
      this.#short += (rttMs - this.#short) * (2 / (this.c.shortWindow + 1));
      if (this.#short <= this.#long || rttMs < this.#long) this.#long += (rttMs - this.#long) * (2 / (this.c.longWindow + 1));
      // App-limited: with so little in flight the RTT says nothing about capacity.
      if (inflight < this.#limit / 2) return;
      gradient = Math.max(0.5, Math.min(1, (this.c.tolerance * this.#long) / this.#short));
    }
    const next = this.#limit * gradient + Math.sqrt(this.#limit);
    this.#limit = Math.max(this.c.min, Math.min(this.c.max, this.#limit * (1 - this.c.smoothing) + next * this.c.smoothing));
  }
}
