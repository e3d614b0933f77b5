/**
 * The generator measures truth. Against servers whose behaviour the test
 * knows: a fixed 50 ms answer reads as ~50 ms; a one-second stall shows in
 * p99 — and a closed-loop client (one request at a time, latency from its
 * actual send, like autocannon) run against the same stall reports a p99 that
 * hides it, which is why `bulwark load` is open-loop. No assertion on
 * absolute speed: lower bounds are exact, upper bounds generous (shared
 * machines).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { runLoad } from '../../src/lab/load/run.js';
import { answerAfter, charged, send, startServer, type TestServer } from './fixtures/load-servers.js';

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args);
  servers.push(s);
  return s;
}

/** The histogram's relative precision (2 significant digits, < 1 %). */
const PRECISION = 0.99;

test('a server that answers after 50 ms reads as 50 ms: p50 and p99 >= 50 ms, not far above', async () => {
  const s = await server((seen, _req, res) => answerAfter(seen, 50, () => send(res, 201, charged(seen.key))));
  const r = await runLoad({ url: s.url, rate: 100, durationSeconds: 2, seed: 1 });
  const lat = r.classes.charge!.latency_ms;
  assert.equal(r.totals.offered, 200);
  assert.equal(s.seen.length, 200, 'the server saw every scheduled request');
  assert.deepEqual(r.totals.statuses, { '201': 200 });
  assert.equal(r.totals.goodput, 200);
  assert.ok(lat.p50 >= 50 * PRECISION, `p50 ${lat.p50}`);
  assert.ok(lat.p99 >= 50 * PRECISION, `p99 ${lat.p99}`);
  assert.ok(lat.p50 < 150, `p50 ${lat.p50}`);
  assert.ok(lat.p99 < 500, `p99 ${lat.p99}`);
  assert.ok(
    s.seen.every((x) => x.deadlineHeader === '1000'),
    'each request carries its deadline',
  );
  assert.equal(r.slo.total, 200);
});

/** Stall every request that arrives during the second second (1000..2000 ms after the first arrival) for 1 s. */
function stallingServer(): Promise<TestServer> {
  let first: number | undefined;
  return server((seen, _req, res) => {
    first ??= seen.at;
    const t = seen.at - first;
    const delay = t >= 1000 && t < 2000 ? 1000 : 0;
    answerAfter(seen, delay, () => send(res, 201, charged(seen.key)));
  });
}

/** The closed-loop way: one request at a time, every `paceMs` at best, latency from the actual send. */
async function closedLoop(url: string, durationMs: number, paceMs: number): Promise<number[]> {
  const pool = new Pool(url, { connections: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const latencies: number[] = [];
  const end = performance.now() + durationMs;
  let n = 0;
  try {
    while (performance.now() < end) {
      const t = performance.now();
      const res = await pool.request({
        path: '/charge',
        method: 'POST',
        headers: { 'idempotency-key': `closed-${++n}`, 'content-type': 'application/json' },
        body: '{}',
      });
      await res.body.text();
      latencies.push(performance.now() - t);
      const wait = paceMs - (performance.now() - t);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  } finally {
    await pool.close();
  }
  return latencies;
}

function nearestRank(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

test('a 1 s stall shows in the open-loop p99; a closed-loop client at the same pace hides it', async () => {
  const [open, closed] = await Promise.all([stallingServer(), stallingServer()]);
  // Both clients aim at 100 requests/s for 4 s against identical servers, at the same time.
  const [r, closedLatencies] = await Promise.all([
    runLoad({ url: open.url, rate: 100, durationSeconds: 4, deadlineMs: 3000, seed: 2 }),
    closedLoop(closed.url, 4000, 10),
  ]);
  const lat = r.classes.charge!.latency_ms;
  // Open loop: the ~100 requests scheduled during the stall all waited about a second.
  assert.ok(lat.p99 >= 900, `open-loop p99 ${lat.p99} ms`);
  assert.ok(lat.p50 < 200, `most requests were fast: p50 ${lat.p50} ms`);
  assert.equal(r.totals.goodput, r.totals.offered, 'every answer came within the 3 s deadline');
  assert.ok(
    r.seconds.some((s) => (s.latency_ms.charge?.p99 ?? 0) >= 900),
    'the stall is visible in the per-second view',
  );

  // Closed loop: the one request in flight during the stall waited a second, and the ~100
  // requests it should have sent meanwhile were never sent, so the stall is one sample in hundreds.
  const closedP99 = nearestRank(closedLatencies, 0.99);
  assert.ok(Math.max(...closedLatencies) >= 900, 'the closed-loop client did hit the stall');
  assert.ok(
    closedP99 < 200,
    `closed-loop p99 ${closedP99} ms hides a 1 s stall that held ~25 % of the intended requests`,
  );
  assert.ok(
    closedLatencies.length < r.totals.offered,
    `closed loop sent ${closedLatencies.length}, the schedule ${r.totals.offered}`,
  );
});

test('a generator that falls behind its schedule flags the run and charges its lag to latency', async () => {
  const s = await server((seen, _req, res) => send(res, 201, charged(seen.key)));
  // Block this process (the generator's own event loop) for 300 ms, half a second in.
  const blocker = setTimeout(() => {
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy: nothing else on this thread runs, the pacer included
    }
  }, 500);
  const r = await runLoad({ url: s.url, rate: 200, durationSeconds: 1.5, seed: 3 });
  clearTimeout(blocker);
  assert.equal(r.behind_schedule, true);
  assert.ok(r.schedule_lag.max_ms >= 250, `worst lag ${r.schedule_lag.max_ms}`);
  assert.ok(r.schedule_lag.max_at_ms >= 400 && r.schedule_lag.max_at_ms < 1000, `at ${r.schedule_lag.max_at_ms}`);
  assert.equal(r.totals.offered, 300, 'no arrival dropped: the overdue ones were sent late');
  // The server answers at once, yet the requests meant for the blocked window waited: that wait is latency.
  assert.ok(r.classes.charge!.latency_ms.max >= 250, `max latency ${r.classes.charge!.latency_ms.max}`);
  // Per second, the generator measured itself: the lag lands in the second the stalled arrivals were meant
  // for, and the 300 ms busy loop is CPU this process used in that second (one core = 1000 ms/s).
  const [s0, s1] = r.seconds;
  assert.ok(s0?.generator && s1?.generator, JSON.stringify(r.seconds.map((x) => x.generator)));
  assert.ok(s0.generator.lag_max_ms >= 250, `second 0 lag ${s0.generator.lag_max_ms}`);
  assert.ok((s0.generator.cpu_ms ?? 0) >= 250, `second 0 CPU ${s0.generator.cpu_ms} ms/s`);
  assert.ok(r.generator_cpu_s >= 0.3, `run CPU ${r.generator_cpu_s} s`);
});
