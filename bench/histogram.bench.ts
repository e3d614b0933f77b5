// Recording one latency into the shared histogram (the per-request cost on every thread).
import assert from 'node:assert/strict';
import { bucketIndex, HISTOGRAM_BUCKETS, SharedHistogram, summarize } from '../src/metrics/histogram.js';
import type { Suite } from './harness.js';

const h = new SharedHistogram(new Int32Array(new SharedArrayBuffer(HISTOGRAM_BUCKETS * 4)));
let v = 0;

export const suite: Suite = {
  name: 'histogram',
  cases: [
    {
      name: 'record (Atomics.add into shared buckets)',
      check: () => {
        const probe = new SharedHistogram(new Int32Array(HISTOGRAM_BUCKETS));
        for (let i = 1; i <= 100; i++) probe.recordMs(i);
        const s = summarize(probe.snapshot());
        assert.equal(s.count, 100);
        assert.ok(Math.abs(s.quantiles['0.99']! - 0.099) < 0.002);
        assert.equal(bucketIndex(1000), bucketIndex(1000.4));
      },
      fn: () => h.recordMs((v = (v + 7) % 5000) + 0.5),
    },
  ],
};
