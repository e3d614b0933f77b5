/**
 * Recent percentiles: Prometheus histograms are cumulative (rate() them), but
 * the admin page and the quantile gauges want "p99 over the last 10 s". A
 * ring of per-second snapshots of each histogram gives that window as a
 * difference of two snapshots, without touching the hot path.
 */
import { diff, type SharedHistogram } from './histogram.js';

export class RecentWindow {
  readonly #rings = new Map<string, Int32Array[]>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly histograms: () => Map<string, SharedHistogram>,
    private readonly seconds = 10,
  ) {
    this.#timer = setInterval(() => this.tick(), 1000);
    this.#timer.unref();
  }

  tick(): void {
    for (const [name, h] of this.histograms()) {
      const ring = this.#rings.get(name) ?? [];
      ring.push(h.snapshot());
      if (ring.length > this.seconds) ring.shift();
      this.#rings.set(name, ring);
    }
  }

  /** Counts recorded over the last `seconds` (or since start). */
  recent(name: string, h: SharedHistogram): Int32Array {
    return diff(h.snapshot(), this.#rings.get(name)?.[0]);
  }

  /** Seconds the window currently spans (shorter right after start). */
  spanSeconds(): number {
    const ring = this.#rings.values().next().value as Int32Array[] | undefined;
    return Math.max(1, ring?.length ?? 1);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
