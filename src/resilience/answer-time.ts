/**
 * How fast a downstream can answer right now: the fastest useful answer
 * (success, decline, rejection) of the last `buckets` × `bucketMs`, in
 * shared memory so every worker feeds it and the front thread reads it.
 *
 * Why the fastest and not a mean or p50: admission uses it to refuse a
 * request whose remaining deadline is below it, i.e. one that could not
 * possibly be answered in time. Only a floor is safe for that: a request
 * with a little more time than the fastest answer may still be served, and
 * refusing it would shed healthy traffic. Calls that ran out of time are not
 * answers and are not fed in (a client with tiny deadlines cannot drag the
 * floor down), and when nothing was answered for the whole window the floor
 * is 0: no evidence, no refusal.
 *
 * Writers take the region's lock (a few arithmetic operations); the reader
 * is lock-free over plain float slots: at worst it sees a bucket a moment
 * before or after a concurrent update, which moves the floor by one sample.
 * No allocation on either path.
 */
import { withLock, type Region, type RegionSpec } from '../shm/regions.js';

const LOCK = 0;
const BUCKETS = 10;
/** Floats per bucket: [epoch, fastest ms]. */
const WIDTH = 2;

export const ANSWER_TIME_REGION: RegionSpec = { ints: 1, floats: BUCKETS * WIDTH };

export function initAnswerTimeRegion(r: Region): void {
  r.i32.fill(0);
  // Every bucket stale: an empty window.
  for (let b = 0; b < BUCKETS; b++) {
    r.f64[b * WIDTH] = -Infinity;
    r.f64[b * WIDTH + 1] = Infinity;
  }
}

export class AnswerTime {
  constructor(
    private readonly region: Region,
    /** Width of one bucket; the window is ten of them. */
    private readonly bucketMs = 1000,
  ) {}

  /** A useful answer took `ms`, observed at `nowMs` (epoch ms). */
  note(nowMs: number, ms: number): void {
    const epoch = Math.floor(nowMs / this.bucketMs);
    const at = (epoch % BUCKETS) * WIDTH;
    const f = this.region.f64;
    withLock(this.region.i32, LOCK, () => {
      if (f[at] !== epoch) {
        f[at] = epoch;
        f[at + 1] = ms;
      } else if (ms < f[at + 1]!) f[at + 1] = ms;
    });
  }

  /** The fastest answer of the window ending at nowMs; 0 when there was none. */
  floorMs(nowMs: number): number {
    const epoch = Math.floor(nowMs / this.bucketMs);
    const f = this.region.f64;
    let min = Infinity;
    for (let b = 0; b < BUCKETS; b++) {
      const age = epoch - f[b * WIDTH]!;
      if (age >= 0 && age < BUCKETS && f[b * WIDTH + 1]! < min) min = f[b * WIDTH + 1]!;
    }
    return min === Infinity ? 0 : min;
  }
}
