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
 * counts in the short RTT as twice the baseline: load the service cannot take.
 *
 * The baseline is what "no queue" looks like, so a surge must not move it, or
 * the limit chases its own overload upward (it reached 1 739 that way, and
 * swung 19–305 under CPU saturation). Drops never touch it, and a slower
 * answer teaches it only when our own queue cannot explain it: when it comes
 * at no more concurrency than answers used to be fast at (or at the floor).
 * A downstream that is slower for good (a cold database after a crash) is
 * exactly that case once the gradient has brought the limit down: the
 * baseline then learns the new latency until answers are within tolerance
 * again, instead of holding the limit at its floor (the fix that only froze
 * the baseline did that, and was reverted). When answers become faster than
 * a learned slower baseline, the shift is over and the baseline goes straight
 * back to the one before it.
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
  /** Typical concurrency of the answers as fast as the baseline (an average over them). */
  #baseInflight = 0;
  /** The limit came down and answers stayed slow: the baseline is learning a new latency. */
  #relearning = false;
  /** While a slower latency is learned (or kept): the baseline before it; 0 otherwise. */
  #beforeShift = 0;
  constructor(private readonly config: GradientConfig = DEFAULT_GRADIENT) {
    this.#limit = config.initial;
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
      // A drop says "too much", not how long an answer takes: it weighs on the
      // short RTT only (as at least twice the baseline), never on the baseline.
      if (this.#samples === 0) {
        // No answer yet, so no baseline to compare with: shrink as hard as the gradient can.
        gradient = 0.5;
      } else {
        this.#short += (Math.max(rttMs, 2 * this.#long) - this.#short) * (2 / (this.config.shortWindow + 1));
        gradient = this.#gradient();
      }
    } else {
      this.#samples++;
      if (this.#samples === 1) {
        this.#long = this.#short = rttMs;
        this.#baseInflight = inflight;
        return;
      }
      this.#short += (rttMs - this.#short) * (2 / (this.config.shortWindow + 1));
      this.#learn(rttMs, inflight);
      // App-limited: with so little in flight the RTT says nothing about capacity.
      if (inflight < this.#limit / 2) return;
      gradient = this.#gradient();
    }
    const next = this.#limit * gradient + Math.sqrt(this.#limit);
    this.#limit = Math.max(
      this.config.min,
      Math.min(this.config.max, this.#limit * (1 - this.config.smoothing) + next * this.config.smoothing),
    );
  }

  #gradient(): number {
    return Math.max(0.5, Math.min(1, (this.config.tolerance * this.#long) / this.#short));
  }

  /** Move the baseline with an answer, unless its slowness may be our own queue. */
  #learn(rttMs: number, inflight: number): void {
    const alpha = 2 / (this.config.longWindow + 1);
    if (this.#short <= this.config.tolerance * this.#long) this.#relearning = false;
    else if (rttMs > this.#long && inflight <= Math.max(this.config.min, this.#baseInflight)) {
      // Slow at no more concurrency than answers used to be fast at (or at
      // the floor): a queue of ours would not be there, so the downstream
      // itself is slower. Learn it until latency is back within tolerance.
      if (this.#beforeShift === 0) this.#beforeShift = this.#long;
      this.#relearning = true;
    }
    if (rttMs <= this.#long) this.#baseInflight += (inflight - this.#baseInflight) * alpha;
    if (this.#beforeShift > 0 && this.#short < this.#long) {
      // Answers faster than a learned slower baseline: the shift is over. Go
      // straight back to the baseline from before it; easing down would let
      // the limit grow, faster, into a queue that looks like the shifted one.
      this.#long = Math.min(this.#long, this.#beforeShift);
      this.#beforeShift = 0;
      this.#relearning = false;
    } else if (rttMs <= this.#long || this.#short <= this.#long || this.#relearning) {
      this.#long += (rttMs - this.#long) * alpha;
    }
    // A baseline far above what answers take now (say, from the first, cold
    // answers) falls back fast, or the limit would stay inflated (Gradient2).
    if (this.#long / this.#short > 2) this.#long *= 0.95;
  }
}
