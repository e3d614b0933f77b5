/**
 * A stall of the front thread between two scrapes shows in
 * bulwark_event_loop_lag_seconds for every scraper, however many scrape in
 * between: the histogram accumulates over the process life (prom-client's
 * nodejs_eventloop_lag_* gauges reset at each collect, by anyone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parsePrometheus } from '../../src/lab/scenario/measure/scrape.js';
import { LOOP_LAG_METRIC, LoopDelayHistogram } from '../../src/metrics/loop-delay.js';
import { createProcessMetrics } from '../../src/metrics/process-metrics.js';
import { LE_SECONDS } from '../../src/metrics/prometheus.js';
import { promtoolTool } from '../support/system-tools.js';

const promtool = promtoolTool();

interface Lag {
  buckets: Map<string, number>;
  count: number;
  sum: number;
}

function lag(text: string): Lag {
  const samples = parsePrometheus(text);
  const one = (name: string) => {
    const s = samples.filter((x) => x.name === name);
    assert.equal(s.length, 1, name);
    return s[0]!.value;
  };
  const buckets = new Map(
    samples.filter((s) => s.name === `${LOOP_LAG_METRIC}_bucket`).map((s) => [s.labels.le!, s.value] as const),
  );
  assert.deepEqual([...buckets.keys()], [...LE_SECONDS.map(String), '+Inf']);
  const values = [...buckets.values()];
  assert.deepEqual(
    values,
    [...values].sort((a, b) => a - b),
    'cumulative buckets',
  );
  const count = one(`${LOOP_LAG_METRIC}_count`);
  assert.equal(buckets.get('+Inf'), count);
  return { buckets, count, sum: one(`${LOOP_LAG_METRIC}_sum`) };
}

/** Ticks above `le` seconds that happened between two scrapes of one scraper. */
const above = (before: Lag, after: Lag, le: string) =>
  after.count - after.buckets.get(le)! - (before.count - before.buckets.get(le)!);

/**
 * Scrape once the histogram holds at least `count` ticks. On a loaded machine
 * (CI runs test files in parallel) a process can be descheduled for most of a
 * sleep, and the 10 ms timer then ticks once where it would tick ten times:
 * wait for the ticks instead of for the clock.
 */
async function scrapeWith(h: LoopDelayHistogram, count: number): Promise<Lag> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    const l = lag(h.render());
    if (l.count >= count || performance.now() > deadline) return l;
    await sleep(10);
  }
}

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a 200 ms stall between two scrapes reaches a scraper even when another scraped in between', async () => {
  const h = new LoopDelayHistogram();
  try {
    const a1 = await scrapeWith(h, 3); // some ordinary ticks
    assert.ok(a1.count >= 3, `ticks recorded while idle: ${a1.count}`);
    block(200);
    await sleep(40); // the first tick after the stall records it
    const b = lag(h.render()); // another scraper (a second Prometheus, a curl) in between
    assert.ok(above(a1, b, '0.1') >= 1, 'the stall is a tick later than 100 ms');
    const a2 = await scrapeWith(h, b.count + 1);
    assert.equal(above(a1, a2, '0.1'), above(a1, b, '0.1'), 'still there for the first scraper');
    assert.ok(a2.sum - a1.sum >= 0.15, `seconds stalled: ${a2.sum - a1.sum}`);
    assert.ok(a2.count > b.count, 'ordinary ticks keep counting');
    for (const [le, v] of b.buckets) assert.ok(a2.buckets.get(le)! >= v, `bucket ${le} never goes down`);
    // An idle stretch adds ticks but no stall.
    const a3 = await scrapeWith(h, a2.count + 3);
    assert.equal(above(a2, a3, '0.1'), 0);
    assert.ok(a3.sum - a2.sum < 0.1, `idle delay: ${a3.sum - a2.sum}`);
  } finally {
    h.close();
  }
});

test('the process families with the lag histogram are promtool-clean', { skip: promtool.skip }, async () => {
  const m = createProcessMetrics();
  try {
    await sleep(30);
    block(120);
    await sleep(30);
    const text = await m.render();
    assert.ok(lag(text).count > 0);
    assert.match(text, /^# TYPE nodejs_eventloop_lag_p99_seconds gauge$/m);
    const r = spawnSync(promtool.path!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.ok(!r.error, String(r.error));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    m.close();
  }
});
