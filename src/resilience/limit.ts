/**
 * Concurrency limits for the front thread. `onSample(rttMs, inflight,
 * didDrop)` never reads a clock (Netflix concurrency-limits' shape), so the
 * algorithm is tested with plain numbers.
 *
 * GradientLimit follows Netflix's Gradient2: compare a short-term RTT with a
 * long-term baseline; while they agree the limit grows by a queue allowance
 * (sqrt(limit)), when the short RTT rises past the tolerance (1.5× the
 * baseline, or `allowanceMs` over it if that is more) the gradient
 * (threshold/short, clamped to [0.5, 1]) shrinks it. Changes are smoothed,
 * so the limit moves in steps, never from everything to nothing. A drop
 * (timeout, downstream refusal) counts in the short RTT as 4/3 of that
 * threshold (twice the baseline when the factor sets it): load the service
 * cannot take.
 *
 * Drops (timeouts, downstream refusals, answers the service never gave)
 * never move the baseline: they feed only the short RTT. Before, a drop
 * counted in the baseline as twice the baseline, so a sustained surge of
 * drops ratcheted the baseline up and the limit with it (it reached 1 739
 * once). Answered requests do teach the baseline, as in Gradient2: a
 * service that is genuinely slower at a higher healthy rate (two shared
 * cores doing 10× the work) must be allowed a higher baseline, or the limit
 * collapses to its floor at a load the service can carry (measured: an
 * attempt that kept queue-inflated answers out of the baseline too shed 42 %
 * at 2 000/s where the service without mechanisms served all of it).
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
  /**
   * ...or by this many ms, whichever is more (default 0: the factor alone).
   * A fast service's baseline is a few ms, and 1.5× of it is a GC pause or a
   * busy second core, not a queue worth refusing charges for.
   */
  allowanceMs?: number;
  /** Samples in the long-term RTT average. */
  longWindow: number;
  /** Samples in the short-term RTT average. */
  shortWindow: number;
}

/** Below this share of the limit in flight an answer moves nothing (Gradient2's ½), and a drop below half of it. */
const APP_LIMITED_SHARE = 0.5;

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
    const shortAlpha = 2 / (this.config.shortWindow + 1);
    if (didDrop) {
      // A drop with under a quarter of the limit in use comes from a
      // bottleneck the limit does not govern (a CPU-saturated front thread,
      // measured: in-flight 105-311 under a limit of 510-804, which such drops
      // halved to 117 while answers grew it again; or a dependency failing
      // fast, which queues nothing): it moves nothing, not even the short RTT,
      // or it would cut the limit later, in the recovery. With more in use (a
      // crash failing the requests the limit let in) it counts.
      //
      // Before the first answer there is no baseline to compare a drop with,
      // and a drop moves nothing either. A fresh process's first second is a
      // deploy's backlog of client retries on top of the offered rate; the
      // provider bulkhead refuses what it cannot carry, which says the
      // provider is full, not that the gateway queues. Those refusals come
      // after the 100 ms acquire timeout, mostly before any 100-300 ms
      // provider answer, and each cut the limit by a tenth: measured in
      // deploy (300/s), the limit was at its floor of 16 a second after a
      // restart, and 500-1 560 charges/s were shed on concurrency while the
      // 64-slot bulkhead had room.
      if (this.#samples === 0 || inflight < (this.#limit * APP_LIMITED_SHARE) / 2) return;
      // A drop says "too much", not how long an answer takes: it weighs on the
      // short RTT only, never on the baseline, as 4/3 of the queueing
      // threshold (twice the baseline when the tolerance factor sets it).
      this.#short += (Math.max(rttMs, (2 * this.#threshold()) / this.config.tolerance) - this.#short) * shortAlpha;
    } else {
      this.#samples++;
      if (this.#samples === 1) {
        this.#long = this.#short = rttMs;
        return;
      }
      this.#short += (rttMs - this.#short) * shortAlpha;
      this.#long += (rttMs - this.#long) * (2 / (this.config.longWindow + 1));
      // After a long slow spell the baseline has crept up; let it fall back
      // fast once latency recovers, or the limit would stay inflated.
      if (this.#long / this.#short > 2) this.#long *= 0.95;
      // App-limited: with so little in flight the RTT says nothing about capacity.
      if (inflight < this.#limit * APP_LIMITED_SHARE) return;
    }
    const gradient = Math.max(0.5, Math.min(1, this.#threshold() / this.#short));
    const next = this.#limit * gradient + Math.sqrt(this.#limit);
    this.#limit = Math.max(
      this.config.min,
      Math.min(this.config.max, this.#limit * (1 - this.config.smoothing) + next * this.config.smoothing),
    );
  }

  /** The short RTT above which the limit shrinks: the baseline times the tolerance, or plus the allowance. */
  #threshold(): number {
    return Math.max(this.config.tolerance * this.#long, this.#long + (this.config.allowanceMs ?? 0));
  }
}
