/**
 * State shared by every thread of the process: one SharedArrayBuffer carved
 * into named regions, created on the front thread and handed to the workers
 * in workerData. Generic on purpose: resilience keeps its breakers,
 * bulkheads and retry budget here (which makes them global and exact; Envoy
 * keeps them per worker and approximate), metrics its counters and
 * histograms. A region is an Int32Array (atomics: locks, states, counters)
 * plus a Float64Array (fields only touched under the region's lock).
 *
 * Tests build regions on plain ArrayBuffers with `localRegion`; the algorithms
 * cannot tell the difference.
 */

export interface Region {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

export interface RegionSpec {
  ints: number;
  floats: number;
}

/** A region on ordinary (unshared) memory, for tests and single-thread use. */
export function localRegion(spec: RegionSpec): Region {
  return { i32: new Int32Array(spec.ints), f64: new Float64Array(spec.floats) };
}

export interface SharedLayout {
  buffer: SharedArrayBuffer;
  /** name → [int offset (elements), ints, float offset (elements), floats] */
  regions: Record<string, [number, number, number, number]>;
}

/** Lay out named regions in one SharedArrayBuffer. */
export function allocateShared(specs: Record<string, RegionSpec>): SharedLayout {
  const names = Object.keys(specs);
  let floats = 0;
  let ints = 0;
  const placed: SharedLayout['regions'] = {};
  for (const n of names) {
    const s = specs[n]!;
    placed[n] = [ints, s.ints, floats, s.floats];
    ints += s.ints;
    floats += s.floats;
  }
  // Float64 part first (8-byte aligned), then the Int32 part.
  const floatBytes = floats * 8;
  const buffer = new SharedArrayBuffer(floatBytes + ints * 4);
  for (const n of names) placed[n] = [placed[n]![0] + floatBytes / 4, placed[n]![1], placed[n]![2], placed[n]![3]];
  return { buffer, regions: placed };
}

export function openRegion(layout: SharedLayout, name: string): Region {
  const r = layout.regions[name];
  if (!r) throw new Error(`no shared region named ${name}`);
  return { i32: new Int32Array(layout.buffer, r[0] * 4, r[1]), f64: new Float64Array(layout.buffer, r[2] * 8, r[3]) };
}

const SPINS_BEFORE_YIELD = 200;

/**
 * Run fn holding the spinlock at i32[index]. Critical sections are a few
 * arithmetic operations, so contention is rare and short; after a bounded
 * spin the waiter parks for a moment instead of burning the core the holder
 * may need (two cores here, shared with Postgres and the load generator).
 */
export function withLock<T>(i32: Int32Array, index: number, fn: () => T): T {
  let spins = 0;
  while (Atomics.compareExchange(i32, index, 0, 1) !== 0) {
    if (++spins > SPINS_BEFORE_YIELD && i32.buffer instanceof SharedArrayBuffer) {
      Atomics.wait(i32, index, 1, 1);
      spins = 0;
    }
  }
  try {
    return fn();
  } finally {
    Atomics.store(i32, index, 0);
    if (i32.buffer instanceof SharedArrayBuffer) Atomics.notify(i32, index, 1);
  }
}
