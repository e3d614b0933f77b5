/**
 * Named counters in shared memory: every thread adds with Atomics, /metrics
 * reads them all without a message per event. Int32 slots wrap after 2^31
 * events, far beyond any lab run; Prometheus treats a wrap as a reset.
 */
import type { Region, RegionSpec } from './regions.js';

export class SharedCounters<N extends string> {
  readonly #index: Map<N, number>;
  constructor(
    private readonly region: Region,
    readonly names: readonly N[],
  ) {
    this.#index = new Map(names.map((n, i) => [n, i]));
  }

  static spec(count: number): RegionSpec {
    return { ints: count, floats: 0 };
  }

  inc(name: N, by = 1): void {
    Atomics.add(this.region.i32, this.#index.get(name)!, by);
  }

  get(name: N): number {
    return Atomics.load(this.region.i32, this.#index.get(name)!);
  }

  snapshot(): Record<N, number> {
    const out = {} as Record<N, number>;
    for (const n of this.names) out[n] = this.get(n);
    return out;
  }
}
