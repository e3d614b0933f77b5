import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exposition } from '../../src/metrics/prometheus.js';
import { HISTOGRAM_BUCKETS, SharedHistogram } from '../../src/metrics/histogram.js';

test('families, escaped labels, and histograms with sorted le up to +Inf', () => {
  const h = new SharedHistogram(new Int32Array(HISTOGRAM_BUCKETS));
  h.recordMs(2);
  h.recordMs(400);
  const text = new Exposition()
    .family('x_total', 'counter', 'A counter.')
    .sample('x_total', 3, { route: 'a"b\\c\nd' })
    .family('x_seconds', 'histogram', 'A histogram.')
    .histogram('x_seconds', h.snapshot(), { route: '/charge' })
    .text();
  assert.match(text, /^# HELP x_total A counter\.\n# TYPE x_total counter\nx_total\{route="a\\"b\\\\c\\nd"\} 3\n/);
  const les = [...text.matchAll(/x_seconds_bucket\{route="\/charge",le="([^"]+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])] as const);
  assert.equal(les.at(-1)![0], '+Inf');
  assert.equal(les.at(-1)![1], 2);
  const finite = les.slice(0, -1).map(([le]) => Number(le));
  assert.deepEqual(finite, [...finite].sort((a, b) => a - b));
  assert.equal(les.find(([le]) => le === '0.3')![1], 1);
  assert.match(text, /x_seconds_count\{route="\/charge"\} 2\n/);
  assert.ok(text.endsWith('\n'));
});
