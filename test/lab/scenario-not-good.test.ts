/**
 * Why charges were not SLO-good (src/lab/scenario/measure/not-good.ts), on
 * plain outcomes and scrapes: each non-good charge lands in exactly one
 * bucket by what the client was finally told, good ones in none, and the
 * service's refusals are the sum of the per-scrape deltas (ratesBetween's,
 * tested in scenario-timeline.test.ts), not one scrape's totals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notGoodOf } from '../../src/lab/scenario/measure/not-good.js';
import { COUNTERS, type CounterName, type ScrapePoint } from '../../src/lab/scenario/measure/scrape.js';
import type { ChargeOutcome } from '../../src/lab/load/types.js';

function outcome(status: ChargeOutcome['status'], latencyMs: number, attempts = 1): ChargeOutcome {
  return {
    key: 'k',
    status,
    attempts,
    history: [status],
    latency_ms: latencyMs,
    intended_ms: 0,
    replayed: false,
  };
}

function scrape(t: number, deltas: Partial<Record<CounterName, number>>): ScrapePoint {
  const zero = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<CounterName, number>;
  const d = { ...zero, ...deltas };
  return { t, snapshot: { breaker: {}, counters: zero, chargeBuckets: {} }, rates: d, deltas: d };
}

test('each charge that is not good is counted once, by what the client was finally told', () => {
  const n = notGoodOf(
    [
      outcome(201, 120),
      outcome(402, 299),
      outcome(201, 300), // at the threshold: good
      outcome(201, 301),
      outcome(201, 1_400, 2), // a refusal, then the retry answered: slow, on a retry
      outcome(409, 2_000, 3),
      outcome(503, 5),
      outcome(504, 1_000),
      outcome(500, 3),
      outcome('timeout', 1_200),
      outcome('error', 1),
      outcome('error', 40, 2),
    ],
    300,
    [],
  );
  assert.deepEqual(n, { threshold_ms: 300, failed_5xx: 3, timeout: 1, error: 2, slow: 3, slow_after_retry: 2 });
});

test("the service's refusals are summed over the run's scrapes, not read from one", () => {
  const n = notGoodOf([outcome(503, 1)], 300, [
    // The first scrape carries no deltas (what came before it is the prewarm's).
    scrape(0, {}),
    scrape(1, { shed_downstream: 40, shed_concurrency: 3, bulkhead_rejections_provider: 2 }),
    // A restarted process: the scraper already turned its reset into an increase.
    scrape(2, { shed_downstream: 10, shed_deadline: 1, bulkhead_rejections_provider: 5, bulkhead_rejections_fx: 9 }),
  ]);
  assert.deepEqual(n.shed, { concurrency: 3, event_loop: 0, deadline: 1, downstream: 50 });
  assert.equal(n.bulkhead_refusals, 7, "the provider's bulkhead only");
});

test('a service without /metrics (the Fastify peers) has the client side only', () => {
  const n = notGoodOf([outcome(503, 1)], 300, []);
  assert.equal(n.shed, undefined);
  assert.equal(n.bulkhead_refusals, undefined);
});
