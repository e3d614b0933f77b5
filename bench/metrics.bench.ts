// Rendering the histogram part of a /metrics scrape: the front thread does it,
// so its cost is a stall every request on that thread shares. The gateway has
// 32 histograms (8 routes × 3 status classes + 8 stages) and 3 summaries.
import assert from 'node:assert/strict';
import { HISTOGRAM_BUCKETS, SharedHistogram } from '../src/metrics/histogram.js';
import { Exposition } from '../src/metrics/prometheus.js';
import { parsePrometheus as parsePromText } from '../src/lab/scenario/measure/scrape.js';
import type { Suite } from './harness.js';

const histograms = Array.from(
  { length: 32 },
  () => new SharedHistogram(new Int32Array(new SharedArrayBuffer(HISTOGRAM_BUCKETS * 4))),
);
// Ten busy series with a spread of latencies, the rest idle, as on a gateway serving charges.
let seed = 1;
const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
for (const h of histograms.slice(0, 10)) for (let i = 0; i < 20_000; i++) h.recordMs(next() * 200);

function render(): string {
  const x = new Exposition();
  x.family('bulwark_bench_seconds', 'histogram', 'bench');
  histograms.forEach((h, i) => x.histogram('bulwark_bench_seconds', h.snapshot(), { series: String(i) }));
  x.family('bulwark_bench_recent_seconds', 'summary', 'bench');
  histograms
    .slice(0, 3)
    .forEach((h, i) => x.summary('bulwark_bench_recent_seconds', h.snapshot(), { series: String(i) }));
  return x.text();
}

export const suite: Suite = {
  name: 'metrics',
  cases: [
    {
      name: 'render 32 histograms + 3 summaries',
      check: () => {
        const samples = parsePromText(render());
        const inf = samples.filter((s) => s.name === 'bulwark_bench_seconds_bucket' && s.labels.le === '+Inf');
        assert.equal(inf.length, 32);
        assert.deepEqual(
          inf.slice(0, 10).map((s) => s.value),
          Array(10).fill(20_000),
        );
        const p99 = samples.find((s) => s.name === 'bulwark_bench_recent_seconds' && s.labels.quantile === '0.99')!;
        assert.ok(Math.abs(p99.value - 0.198) < 0.004, `p99 ${p99.value}`);
      },
      fn: render,
    },
  ],
};
