/**
 * The pure parts between raw measurements and the report: the /metrics
 * parser and its per-second rates (a restarted process resets counters),
 * breaker events from the services' logs, the timeline and the phase totals,
 * and the recovery arithmetic the checks use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SecondStats } from '../../src/lab/load/types.js';
import { breakerEvents, scrapedBreakerEvents } from '../../src/lab/scenario/measure/events.js';
import {
  parsePrometheus,
  quantileBetween,
  ratesBetween,
  snapshotOf,
  type ScrapePoint,
} from '../../src/lab/scenario/measure/scrape.js';
import { buildTimeline, percentile, phaseTotals } from '../../src/lab/scenario/measure/timeline.js';
import { recoveryCheck, recoverySeconds } from '../../src/lab/scenario/plan/checks.js';
import type { VariantRun } from '../../src/lab/scenario/plan/definition.js';
import type { Phase, TimelinePoint } from '../../src/lab/report/types.js';

const METRICS = `# HELP bulwark_breaker_state Circuit breaker state.
# TYPE bulwark_breaker_state gauge
bulwark_breaker_state{downstream="provider",state="closed"} 0
bulwark_breaker_state{downstream="provider",state="open"} 1
bulwark_breaker_state{downstream="fx",state="closed"} 1
bulwark_admission_limit 48
bulwark_admission_in_flight 12
bulwark_shed_total{reason="concurrency"} 30
bulwark_shed_total{reason="deadline"} 5
bulwark_bulkhead_rejections_total{downstream="provider",reason="full"} 2
bulwark_bulkhead_rejections_total{downstream="provider",reason="timeout"} 3
bulwark_bulkhead_rejections_total{downstream="fx",reason="timeout"} 7
bulwark_db_pool_acquire_timeouts_total 4
bulwark_build_info{version="0.1.0",git_commit="a\\"b"} 1
`;

test('a /metrics text reduces to breaker states, gauges and summed counters', () => {
  const samples = parsePrometheus(METRICS);
  assert.equal(
    samples.find((s) => s.name === 'bulwark_build_info')?.labels.git_commit,
    'a"b',
    'escaped quotes in labels',
  );
  const snap = snapshotOf(samples);
  assert.deepEqual(snap.breaker, { provider: 'open', fx: 'closed' });
  assert.equal(snap.admissionLimit, 48);
  assert.equal(snap.inFlight, 12);
  assert.equal(snap.counters.shed, 35);
  assert.deepEqual(
    [snap.counters.shed_concurrency, snap.counters.shed_deadline, snap.counters.shed_downstream],
    [30, 5, 0],
    'and by reason',
  );
  assert.equal(snap.counters.bulkhead_rejections_provider, 5);
  assert.equal(snap.counters.bulkhead_rejections_fx, 7);
  assert.equal(snap.counters.db_acquire_timeouts, 4);
});

test('counter rates come from consecutive scrapes; a counter that went down restarted from zero', () => {
  const a = snapshotOf(parsePrometheus('bulwark_shed_total{reason="x"} 100\n'));
  const b = snapshotOf(parsePrometheus('bulwark_shed_total{reason="x"} 150\n'));
  const c = snapshotOf(parsePrometheus('bulwark_shed_total{reason="x"} 20\n'));
  assert.equal(ratesBetween(undefined, 1, a).rates.shed, 0, 'the first scrape has no rate');
  assert.equal(ratesBetween({ t: 1, snapshot: a }, 1.5, b).rates.shed, 100, '50 in half a second');
  assert.equal(ratesBetween({ t: 1.5, snapshot: b }, 2.5, c).deltas.shed, 20, 'a new process counts from zero');
  // A new process that shed more than the old one had by the next scrape:
  // its uptime went down, so all of its count is new.
  const old = { ...snapshotOf(parsePrometheus('bulwark_shed_total{reason="x"} 100\n')), uptimeS: 30 };
  const fresh = { ...snapshotOf(parsePrometheus('bulwark_shed_total{reason="x"} 140\n')), uptimeS: 0.8 };
  assert.equal(ratesBetween({ t: 5, snapshot: old }, 6, fresh).deltas.shed, 140);
  assert.equal(ratesBetween({ t: 5, snapshot: old }, 6, { ...fresh, uptimeS: 31 }).deltas.shed, 40, 'same process');
});

test('breaker transitions from both log shapes become events, one per transition', () => {
  const start = Date.parse('2025-01-01T00:00:00.000Z');
  const line = (ms: number, rec: Record<string, unknown>) => ({
    at: start + ms,
    rec: { time: new Date(start + ms).toISOString(), ...rec },
  });
  const events = breakerEvents(
    [
      line(1500, { msg: 'breaker transition', breaker: 'provider', from: 'closed', to: 'open' }),
      // The same transition logged by a second thread.
      line(1510, { msg: 'breaker transition', breaker: 'provider', from: 'closed', to: 'open' }),
      line(6500, { msg: 'breaker transition', breaker: 'provider', from: 'open', to: 'half_open' }),
      // opossum's shape (the hardened baseline).
      line(7000, { msg: 'breaker transition', breaker: 'provider', state: 'closed' }),
      line(8000, { msg: 'listening' }),
    ],
    start,
  );
  assert.deepEqual(events, [
    { t: 1.5, what: 'provider breaker opened' },
    { t: 6.5, what: 'provider breaker half-open' },
    { t: 7, what: 'provider breaker closed' },
  ]);
});

test('scraped breaker changes no log line explains become "(scraped)" events; a restart is not a transition', () => {
  const point = (t: number, state: string, uptimeS: number): ScrapePoint => {
    const startS = Date.now() / 1000 - uptimeS;
    const snapshot = snapshotOf(
      parsePrometheus(
        `bulwark_breaker_state{downstream="provider",state="${state}"} 1\nprocess_start_time_seconds ${startS}\n`,
      ),
    );
    return { t, snapshot, ...ratesBetween(undefined, t, snapshot) };
  };
  const points = [
    point(0.9, 'closed', 10),
    point(1.9, 'open', 11),
    point(2.9, 'open', 12),
    point(3.9, 'half_open', 13),
    point(4.9, 'closed', 0.5),
  ];
  // The open at 1.9 was logged at 1.2; the half-open was not logged; the closed at 4.9 is a new process.
  const events = scrapedBreakerEvents(points, [{ t: 1.2, what: 'provider breaker opened' }]);
  assert.deepEqual(events, [{ t: 3.9, what: 'provider breaker half-open (scraped)' }]);
});

function second(n: number, over: Partial<SecondStats>): SecondStats {
  return {
    second: n,
    offered: 0,
    sent: 0,
    retries: 0,
    completed: 0,
    goodput: 0,
    statuses: {},
    attempt_statuses: {},
    timeouts: 0,
    connection_errors: 0,
    latency_ms: {},
    ...over,
  };
}

test("the timeline joins the load generator's seconds with the scrape that fell inside each second", () => {
  const seconds = [
    second(0, {
      offered: 10,
      goodput: 10,
      completed: 10,
      statuses: { '201': 10 },
      latency_ms: { charge: { count: 10, p50: 5, p99: 9, p999: 9, max: 9 } },
    }),
    second(1, { offered: 10, goodput: 4, completed: 10, statuses: { '201': 4, '503': 6 }, timeouts: 0 }),
  ];
  const snap = snapshotOf(parsePrometheus(METRICS));
  const scrapes: ScrapePoint[] = [{ t: 1.9, snapshot: snap, ...ratesBetween(undefined, 1.9, snap) }];
  const reads = [second(1, { latency_ms: { read: { count: 3, p50: 2, p99: 3, p999: 3, max: 3 } } })];
  const tl = buildTimeline(seconds, scrapes, reads);
  assert.equal(tl[0]!.p99_ms, 9);
  assert.equal(tl[0]!.breaker_provider, undefined, 'no scrape in second 0');
  assert.equal(tl[0]!.read_p99_ms, null);
  assert.equal(tl[1]!.rate_503, 6);
  assert.equal(tl[1]!.p99_ms, null);
  assert.equal(tl[1]!.breaker_provider, 'open');
  assert.equal(tl[1]!.admission_limit, 48);
  assert.equal(tl[1]!.read_p99_ms, 3);
});

test('a second that shed names its reasons with their rates; a second that shed nothing names none', () => {
  const seconds = [second(0, { offered: 10 }), second(1, { offered: 10 }), second(2, { offered: 10 })];
  const before = snapshotOf(parsePrometheus(METRICS));
  const after = snapshotOf(parsePrometheus(METRICS.replace('reason="concurrency"} 30', 'reason="concurrency"} 40')));
  const quiet = snapshotOf(parsePrometheus(METRICS.replace('reason="concurrency"} 30', 'reason="concurrency"} 40')));
  const p0: ScrapePoint = { t: 0.5, snapshot: before, ...ratesBetween(undefined, 0.5, before) };
  const p1: ScrapePoint = { t: 1.5, snapshot: after, ...ratesBetween(p0, 1.5, after) };
  const p2: ScrapePoint = { t: 2.5, snapshot: quiet, ...ratesBetween(p1, 2.5, quiet) };
  const tl = buildTimeline(seconds, [p0, p1, p2]);
  assert.equal(tl[1]!.shed_per_s, 10);
  assert.deepEqual(tl[1]!.shed_reasons_per_s, { concurrency: 10 });
  assert.equal(tl[2]!.shed_per_s, 0);
  assert.equal(tl[2]!.shed_reasons_per_s, undefined);
});

test('phase totals: goodput per second of the phase, 503 share of answers, p99 by intended send time', () => {
  const phases: Phase[] = [
    { name: 'warm-up', start_s: 0, end_s: 1 },
    { name: 'fault', start_s: 1, end_s: 3 },
  ];
  const seconds = [
    second(0, { goodput: 10, completed: 10, statuses: { '201': 10 } }),
    second(1, { goodput: 2, completed: 10, statuses: { '201': 2, '503': 8 }, timeouts: 1 }),
    second(2, { goodput: 4, completed: 10, statuses: { '201': 4, '503': 6 } }),
  ];
  const tl = buildTimeline(seconds, []);
  // A charge sent in the fault and answered late counts for the fault.
  const outcomes = [
    { intended_ms: 100, latency_ms: 5 },
    { intended_ms: 1200, latency_ms: 900 },
    { intended_ms: 2500, latency_ms: 10 },
  ];
  const t = phaseTotals(phases, tl, seconds, outcomes);
  assert.deepEqual(t['warm-up'], { goodput_per_s: 10, p99_ms: 5, rate_503: 0, timeouts: 0 });
  assert.deepEqual(t.fault, { goodput_per_s: 3, p99_ms: 900, rate_503: 0.7, timeouts: 1 });
  assert.equal(percentile([], 0.99), null);
  assert.equal(percentile([3, 1, 2], 0.5), 2);
});

test('the SLO-good share per second counts charges by the second they were sent: slow answers, 5xx and no answer are not good', () => {
  const seconds = [0, 1, 2, 3].map((n) => second(n, { goodput: 1, completed: 1, statuses: { '201': 1 } }));
  const outcomes = [
    // Second 0: a quick 201, a quick 402 (not 5xx: good), and a 201 after 450 ms (past the 300 ms threshold).
    { status: 201, intended_ms: 10, latency_ms: 20 },
    { status: 402, intended_ms: 500, latency_ms: 30 },
    { status: 201, intended_ms: 900, latency_ms: 450 },
    // Second 1: a 503 in 1 ms, a timeout, an error, and one 201 exactly at the threshold.
    { status: 503, intended_ms: 1000, latency_ms: 1 },
    { status: 'timeout' as const, intended_ms: 1100, latency_ms: 1200 },
    { status: 'error' as const, intended_ms: 1200, latency_ms: 5 },
    { status: 201, intended_ms: 1999, latency_ms: 300 },
    // Second 3: one sent, answered well (in second 4, which the generator has no row for).
    { status: 201, intended_ms: 3999, latency_ms: 250 },
  ];
  const tl = buildTimeline(seconds, [], undefined, [], { outcomes, thresholdMs: 300 });
  assert.deepEqual(
    tl.map((p) => p.slo_good_pct),
    [66.7, 25, null, 100],
    'second 2 sent nothing: no share, not 0 %',
  );
  assert.equal(buildTimeline(seconds, [])[0]!.slo_good_pct, undefined, 'not computed without outcomes');
});

test('recovery: time until goodput holds the target two seconds running, and the check compares with the warm-up', () => {
  const phases: Phase[] = [
    { name: 'warm-up', start_s: 0, end_s: 3 },
    { name: 'fault', start_s: 3, end_s: 5 },
    { name: 'recovery', start_s: 5, end_s: 10 },
  ];
  const goodput = [0, 100, 100, 0, 0, 10, 90, 50, 95, 100];
  const timeline: TimelinePoint[] = goodput.map((g, t) => ({
    t,
    offered: 100,
    goodput: g,
    p99_ms: null,
    rate_503: 0,
    timeouts: 0,
  }));
  const run = { result: { variant: 'gateway', timeline } } as unknown as VariantRun;
  assert.equal(recoverySeconds(run, phases, 0.8), 3, '90 then 50 is not held; 95 then 100 is, from t = 8');
  const check = recoveryCheck(run, phases, 0.8, 2);
  assert.equal(check.passed, true, check.detail);
  assert.match(check.detail, /last 2 s of recovery 97.5\/s vs warm-up 100.0\/s/);
  assert.equal(recoveryCheck(run, phases, 0.99, 2).passed, false);
});

test('server-side quantiles from two scrapes of a cumulative histogram, interpolated like histogram_quantile', () => {
  const buckets = (pairs: [number, number][]) => new Map(pairs);
  const before = buckets([
    [0.001, 10],
    [0.01, 10],
    [0.1, 10],
    [Infinity, 10],
  ]);
  // Between the scrapes: 90 answers under 1 ms, 10 between 10 and 100 ms.
  const after = buckets([
    [0.001, 100],
    [0.01, 100],
    [0.1, 110],
    [Infinity, 110],
  ]);
  const p50 = quantileBetween(before, after, 0.5);
  assert.equal(p50.count, 100);
  assert.ok(Math.abs(p50.value! - 0.001 * (50 / 90)) < 1e-9, `p50 ${p50.value}`);
  const p99 = quantileBetween(before, after, 0.99);
  assert.ok(Math.abs(p99.value! - (0.01 + 0.09 * 0.9)) < 1e-9, `p99 ${p99.value}`);
  assert.deepEqual(
    quantileBetween(after, after, 0.5),
    { value: null, count: 0 },
    'nothing recorded between the scrapes',
  );
  // A restart between the scrapes (counts went down): no answer rather than a wrong one.
  assert.equal(quantileBetween(after, before, 0.5).value, null);
  // Everything past the last finite bound: the highest finite bound, as Prometheus answers.
  assert.equal(
    quantileBetween(
      undefined,
      buckets([
        [0.1, 0],
        [Infinity, 5],
      ]),
      0.5,
    ).value,
    0.1,
  );
  // The scrape reduction keeps /charge's buckets by status class.
  const snap = snapshotOf(
    parsePrometheus(
      'bulwark_http_request_duration_seconds_bucket{route="/charge",status_class="5xx",le="0.001"} 7\nbulwark_http_request_duration_seconds_bucket{route="/charge",status_class="5xx",le="+Inf"} 9\nbulwark_http_request_duration_seconds_bucket{route="/quote",status_class="5xx",le="+Inf"} 4\n',
    ),
  );
  assert.deepEqual(
    [...snap.chargeBuckets['5xx']!.entries()],
    [
      [0.001, 7],
      [Infinity, 9],
    ],
  );
});
