/**
 * Latency histograms that every thread records into without a lock and
 * without a message: counts live in shared memory (an Int32Array on the
 * gateway's SharedArrayBuffer) and a record is one Atomics.add. hdr-histogram-js
 * cannot be backed by shared memory, so the buckets here follow its
 * log-linear idea (2 significant digits: 128 linear sub-buckets per power of
 * two, relative error under 1 %) and a scrape copies the counts into an
 * hdr-histogram-js histogram for percentiles and merging.
 *
 * Values are microseconds from 0 to 2^27-1 (134 s); larger values land in
 * the last bucket.
 */
import { createRequire } from 'node:module';
import type * as Hdr from 'hdr-histogram-js';

// Loaded on the first summary: worker threads record into shared counts and
// never summarize, so they do not pay its ~40 ms of start-up CPU (measured).
let hdrModule: typeof Hdr | undefined;
const hdr = (): typeof Hdr => (hdrModule ??= createRequire(import.meta.url)('hdr-histogram-js') as typeof Hdr);

const SUB_BITS = 7; // 128 sub-buckets per octave
const MAX_US = 2 ** 27 - 1;
export const HISTOGRAM_BUCKETS = ((27 - SUB_BITS) << SUB_BITS) + (1 << (SUB_BITS + 1)) - (1 << SUB_BITS); // 2688

export function bucketIndex(us: number): number {
  const v = us <= 0 ? 0 : us >= MAX_US ? MAX_US : Math.trunc(us);
  if (v < 1 << (SUB_BITS + 1)) return v;
  const e = 31 - Math.clz32(v) - SUB_BITS;
  return (e << SUB_BITS) + (v >>> e);
}

/** Smallest value (µs) that lands in bucket i. */
export function bucketLowerUs(i: number): number {
  if (i < 1 << (SUB_BITS + 1)) return i;
  const e = (i >> SUB_BITS) - 1;
  return (i - (e << SUB_BITS)) * 2 ** e;
}

/** Smallest value (µs) above bucket i. */
export function bucketUpperUs(i: number): number {
  return i + 1 >= HISTOGRAM_BUCKETS ? MAX_US + 1 : bucketLowerUs(i + 1);
}

/** One histogram over a shared Int32Array of HISTOGRAM_BUCKETS counts. */
export class SharedHistogram {
  constructor(readonly counts: Int32Array) {
    if (counts.length !== HISTOGRAM_BUCKETS)
      throw new RangeError(`a histogram needs ${HISTOGRAM_BUCKETS} counts, got ${counts.length}`);
  }

  recordMs(ms: number): void {
    Atomics.add(this.counts, bucketIndex(ms * 1000), 1);
  }

  /** A consistent-enough copy: each count is read atomically. */
  snapshot(): Int32Array {
    const out = new Int32Array(HISTOGRAM_BUCKETS);
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) out[i] = Atomics.load(this.counts, i);
    return out;
  }
}

/** counts - base, element-wise (a window between two snapshots). */
export function diff(counts: Int32Array, base: Int32Array | undefined): Int32Array {
  if (!base) return counts;
  const out = new Int32Array(HISTOGRAM_BUCKETS);
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) out[i] = counts[i]! - base[i]!;
  return out;
}

export function add(into: Int32Array, counts: Int32Array): void {
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) into[i] = into[i]! + counts[i]!;
}

export interface Summary {
  count: number;
  /** Seconds, derived from bucket midpoints (within 1 %). */
  sumSeconds: number;
  /** Seconds by quantile (0.5, 0.9, 0.99, 0.999), via hdr-histogram-js. */
  quantiles: Record<string, number>;
}

const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;

/** Count and sum (seconds, from bucket midpoints) without percentiles: what a Prometheus histogram needs. */
export function countAndSum(counts: Int32Array): { count: number; sumSeconds: number } {
  let count = 0;
  let sumUs = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    const n = counts[i]!;
    if (n <= 0) continue;
    count += n;
    sumUs += ((bucketLowerUs(i) + bucketUpperUs(i) - 1) / 2) * n;
  }
  return { count, sumSeconds: sumUs / 1e6 };
}

/** Percentiles through hdr-histogram-js (bucket midpoints recorded with their counts). */
export function summarize(counts: Int32Array): Summary {
  // An empty window is common (an idle route, a status class never seen):
  // no need to build an hdr histogram to say zero.
  const cs = countAndSum(counts);
  if (cs.count === 0) return { ...cs, quantiles: Object.fromEntries(QUANTILES.map((q) => [String(q), 0])) };
  // 32-bit buckets, not 'packed': packed recording is ten times slower and a
  // scrape summarizes on the front thread. Our own counts are 32-bit anyway.
  const h = hdr().build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_US + 1,
    numberOfSignificantValueDigits: 2,
    useWebAssembly: false,
  });
  let count = 0;
  let sumUs = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    const n = counts[i]!;
    if (n <= 0) continue;
    const mid = (bucketLowerUs(i) + bucketUpperUs(i) - 1) / 2;
    h.recordValueWithCount(Math.max(1, Math.round(mid)), n);
    count += n;
    sumUs += mid * n;
  }
  const quantiles: Record<string, number> = {};
  for (const q of QUANTILES) quantiles[String(q)] = count === 0 ? 0 : h.getValueAtPercentile(q * 100) / 1e6;
  h.destroy();
  return { count, sumSeconds: sumUs / 1e6, quantiles };
}

/** For each `le` (seconds), the number of buckets wholly at or below it; computed once per ladder. */
const ladderEnds = new WeakMap<readonly number[], number[]>();
function endsOf(les: readonly number[]): number[] {
  let ends = ladderEnds.get(les);
  if (!ends) {
    ends = [];
    let i = 0;
    for (const le of les) {
      while (i < HISTOGRAM_BUCKETS && bucketUpperUs(i) - 1 <= le * 1e6) i++;
      ends.push(i);
    }
    ladderEnds.set(les, ends);
  }
  return ends;
}

/** Cumulative counts at each `le` (seconds): buckets wholly at or below it. */
export function cumulativeAt(counts: Int32Array, les: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let acc = 0;
  for (const end of endsOf(les)) {
    while (i < end) acc += counts[i++]!;
    out.push(acc);
  }
  return out;
}
