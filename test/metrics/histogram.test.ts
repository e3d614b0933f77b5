import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  bucketIndex,
  bucketLowerUs,
  bucketUpperUs,
  cumulativeAt,
  HISTOGRAM_BUCKETS,
  SharedHistogram,
  summarize,
} from '../../src/metrics/histogram.js';
import { allocateShared, openRegion } from '../../src/shm/regions.js';

test('every value lands in the bucket whose bounds contain it; relative bucket width stays under 1 %', () => {
  for (let v = 0; v < 2 ** 27; v = v < 2000 ? v + 1 : Math.floor(v * 1.0007) + 1) {
    const i = bucketIndex(v);
    assert.ok(bucketLowerUs(i) <= v && v < bucketUpperUs(i), `${v} in bucket ${i}`);
    if (v >= 256) assert.ok((bucketUpperUs(i) - bucketLowerUs(i)) / bucketLowerUs(i) <= 1 / 128 + 1e-12);
  }
  assert.equal(bucketIndex(2 ** 40), HISTOGRAM_BUCKETS - 1, 'too large values land in the last bucket');
  assert.equal(bucketIndex(-5), 0);
});

test('quantiles agree with the exact ones within 1 %', () => {
  const h = new SharedHistogram(new Int32Array(HISTOGRAM_BUCKETS));
  const values: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const v = Math.exp((i % 97) / 10) + (i % 13); // skewed, 1 ms .. ~15 s
    values.push(v);
    h.recordMs(v);
  }
  values.sort((a, b) => a - b);
  const s = summarize(h.snapshot());
  assert.equal(s.count, 10_000);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = values[Math.ceil(q * values.length) - 1]! / 1000;
    const got = s.quantiles[String(q)]!;
    assert.ok(Math.abs(got - exact) / exact < 0.01, `p${q * 100}: ${got} vs ${exact}`);
  }
  const exactSum = values.reduce((a, b) => a + b, 0) / 1000;
  assert.ok(Math.abs(s.sumSeconds - exactSum) / exactSum < 0.01);
});

test('cumulative counts at each le include whole buckets at or below it', () => {
  const h = new SharedHistogram(new Int32Array(HISTOGRAM_BUCKETS));
  for (const ms of [0.5, 2, 9, 40, 299, 301, 5000]) h.recordMs(ms);
  assert.deepEqual(cumulativeAt(h.snapshot(), [0.001, 0.01, 0.3, 10]), [1, 3, 5, 7]);
});

test('four threads recording at once lose no count (one Atomics.add per record, no lock)', async () => {
  const layout = allocateShared({ h: { ints: HISTOGRAM_BUCKETS, floats: 0 } });
  const n = 50_000;
  await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL('./fixtures/record-worker.js', import.meta.url), { workerData: { layout, n } });
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    ),
  );
  const counts = new SharedHistogram(openRegion(layout, 'h').i32).snapshot();
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    4 * n,
  );
  // Every thread recorded 1..1000 ms fifty times each: each value's bucket holds exactly its share.
  const expected = new Int32Array(HISTOGRAM_BUCKETS);
  for (let i = 0; i < n; i++) expected[bucketIndex(((i % 1000) + 1) * 1000)]! += 4;
  assert.deepEqual(counts, expected);
});
