/**
 * Front-thread event-loop signals for admission: p99 loop delay of the last
 * interval, and event-loop utilization. monitorEventLoopDelay takes no
 * samples while the loop is blocked, so a long stall would be under-reported;
 * the lateness of our own interval timer catches exactly that case, and the
 * larger of the two is used.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';

const SMOOTHING = 0.2;

export class LoopMonitor {
  /** Smoothed p99 delay and utilization: what admission uses. */
  delayMs = 0;
  utilization = 0;
  /** The last interval's raw values: what metrics show. */
  rawDelayMs = 0;
  rawUtilization = 0;
  readonly #h: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  #elu: EventLoopUtilization;
  #last = performance.now();

  constructor(private readonly intervalMs = 100) {
    this.#h = monitorEventLoopDelay({ resolution: 10 });
    this.#h.enable();
    this.#elu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    this.#timer.unref();
  }

  #sample(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.#last - this.intervalMs);
    this.#last = now;
    const p99 = this.#h.count > 0 ? this.#h.percentile(99) / 1e6 : 0;
    this.#h.reset();
    this.rawDelayMs = Math.max(p99, late);
    const elu = performance.eventLoopUtilization();
    this.rawUtilization = performance.eventLoopUtilization(elu, this.#elu).utilization;
    this.#elu = elu;
    this.delayMs += (this.rawDelayMs - this.delayMs) * SMOOTHING;
    this.utilization += (this.rawUtilization - this.utilization) * SMOOTHING;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#h.disable();
  }
}
