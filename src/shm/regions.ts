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

import { threadId } from 'node:worker_threads';

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
 * How long a waiter lets one holder keep a lock before taking it over. A
 * critical section is a few arithmetic operations; a holder that keeps the
 * lock this long has died inside it: a worker thread terminated (or killed
 * by an error) mid-section runs no `finally`, and the lock would stay taken
 * forever, hanging every thread that reaches it, the front thread included.
 * That happened once in CI: a gateway whose workers were being stopped
 * spun in withLock on its front thread for 28 minutes. A second is far
 * beyond any live holder's pause (GC, a descheduled core) and a short
 * stall for the survivors.
 */
export const STALE_LOCK_MS = 1000;

/** This thread's lock tokens: its id in the high bits, a counter in the low (never 0, which means free). */
let tokenCounter = 0;
const THREAD_BITS = (threadId & 0x3ff) << 20;
function nextToken(): number {
  tokenCounter = (tokenCounter + 1) & 0xfffff;
  return THREAD_BITS | tokenCounter || 1;
}

/**
 * Run fn holding the spinlock at i32[index]. Critical sections are a few
 * arithmetic operations, so contention is rare and short; after a bounded
 * spin the waiter parks for a moment instead of burning the core the holder
 * may need (two cores here, shared with Postgres and the load generator).
 * The lock word holds its holder's token: a waiter that sees the same token
 * for longer than `staleMs` takes the lock over (one waiter wins the
 * exchange), and a holder releases only its own token, so a holder that was
 * merely slow never frees the lock of the one that took it over.
 */
export function withLock<T>(i32: Int32Array, index: number, fn: () => T, staleMs = STALE_LOCK_MS): T {
  const token = nextToken();
  let spins = 0;
  let seen = 0;
  let seenSince = 0;
  for (;;) {
    const held = Atomics.compareExchange(i32, index, 0, token);
    if (held === 0) break;
    if (++spins <= SPINS_BEFORE_YIELD || !(i32.buffer instanceof SharedArrayBuffer)) continue;
    spins = 0;
    const now = performance.now();
    if (held !== seen) {
      seen = held;
      seenSince = now;
    } else if (now - seenSince >= staleMs && Atomics.compareExchange(i32, index, held, token) === held) break;
    Atomics.wait(i32, index, held, 1);
  }
  try {
    return fn();
  } finally {
    if (Atomics.compareExchange(i32, index, token, 0) === token && i32.buffer instanceof SharedArrayBuffer)
      Atomics.notify(i32, index, 1);
  }
}
