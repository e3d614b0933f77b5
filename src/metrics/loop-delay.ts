/**
 * bulwark_event_loop_lag_seconds: a histogram of the front thread's event-loop
 * delay over the whole process life, so a stall between two scrapes reaches
 * every scraper. prom-client's nodejs_eventloop_lag_* gauges reset at every
 * collect: with two Prometheus replicas (or a person with curl) the one that
 * scrapes second after a stall sees nothing, and none sees a stall that ended
 * before the interval's last few samples.
 *
 * Samples come from monitorEventLoopDelay, which records in C++ the time
 * between two ticks of its own libuv timer: nothing runs in JavaScript per
 * tick. A tick every RESOLUTION_MS; a stall of d ms is one sample of about
 * d + RESOLUTION_MS (the loop cannot tick while blocked), which is why the
 * buckets count ticks, not time: a 200 ms stall adds one sample, and `_sum`
 * (seconds of delay) is what says how long the loop was stuck.
 *
 * Cost is render-time only: the monitor is never reset (its reset() forgets
 * the previous tick, so the first tick after a reset, the one that would show
 * a stall, is dropped: prom-client's per-collect gauges lose exactly that
 * one), and a render reads the buckets off it, a binary search over its
 * percentiles per `le`: ~15 × log2(ticks since start) lookups.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Exposition, LE_SECONDS } from './prometheus.js';

export const LOOP_LAG_METRIC = 'bulwark_event_loop_lag_seconds';
const RESOLUTION_MS = 10;

export class LoopDelayHistogram {
  readonly #monitor: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #sumSeconds = 0;

  constructor() {
    this.#monitor.enable();
  }

  render(): string {
    const h = this.#monitor;
    const n = h.count;
    const resolutionNs = RESOLUTION_MS * 1e6;
    // Largest k with percentile(100·k/n) ≤ threshold = ticks at or below it
    // (to the monitor's HDR precision); thresholds rise, so k only grows.
    let k = 0;
    const buckets = LE_SECONDS.map((le) => {
      const threshold = le * 1e9 + resolutionNs;
      let hi = n;
      while (k < hi) {
        const mid = Math.ceil((k + hi) / 2);
        if (h.percentile((100 * mid) / n) <= threshold) k = mid;
        else hi = mid - 1;
      }
      return k;
    });
    // A tick can fire a hair early (a negative delay): the sum is a counter
    // and must never go down.
    if (n > 0) this.#sumSeconds = Math.max(this.#sumSeconds, ((h.mean - resolutionNs) * n) / 1e9);
    const x = new Exposition().family(
      LOOP_LAG_METRIC,
      'histogram',
      `Front-thread event-loop delay since start: how late each ${RESOLUTION_MS} ms tick came (a stall is one tick; _sum is seconds stalled).`,
    );
    LE_SECONDS.forEach((le, i) => x.sample(`${LOOP_LAG_METRIC}_bucket`, buckets[i]!, { le: String(le) }));
    return x
      .sample(`${LOOP_LAG_METRIC}_bucket`, n, { le: '+Inf' })
      .sample(`${LOOP_LAG_METRIC}_sum`, this.#sumSeconds)
      .sample(`${LOOP_LAG_METRIC}_count`, n)
      .text();
  }
  close(): void {
    this.#monitor.disable();
  }
}
